"""The tables, the engine (SQLite pragmas or any SQLAlchemy URL) and additive migrations.

Records are stored as their pydantic JSON plus the few columns we filter and
order on, so adding a field to a schema needs no migration; a new filter column
is added to older databases by ``migrate``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from . import table_versions

DEFAULT_TENANT = "default"

meta = sa.MetaData()


def _tenant() -> sa.Column:
    return sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT, index=True)


datasets = sa.Table(
    "datasets", meta,
    sa.Column("dataset_id", sa.String(64), primary_key=True),
    _tenant(),
    sa.Column("uploaded_at", sa.String(40), nullable=False, index=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),  # the storage quota's measure
    sa.Column("record", sa.Text, nullable=False),
)
jobs = sa.Table(
    "jobs", meta,
    sa.Column("job_id", sa.String(64), primary_key=True),
    _tenant(),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("phase", sa.String(16), nullable=False, server_default="done", index=True),
    sa.Column("dataset_id", sa.String(64), nullable=False, index=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("queue_seq", sa.Integer, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False, index=True),
    sa.Column("record", sa.Text, nullable=False),
)
# The queue's order: highest priority first, then first queued.
sa.Index("ix_jobs_queue", jobs.c.phase, jobs.c.priority.desc(), jobs.c.queue_seq)

events = sa.Table(
    "job_events", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    _tenant(),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("timestamp", sa.String(40), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
metrics = sa.Table(
    "job_metrics", meta,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("point", sa.Text, nullable=False),
)
exports = sa.Table(
    "exports", meta,
    sa.Column("export_id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    _tenant(),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("quantization", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("record", sa.Text, nullable=False),
)
# API keys: looked up by key_id (the key's public part); only a salted scrypt hash of the key is stored.
api_keys = sa.Table(
    "api_keys", meta,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("revoked_at", sa.String(40), nullable=True),
    sa.Column("record", sa.Text, nullable=False),
)
# Every state-changing request: who, what, which resource, the answer's status.
audit_log = sa.Table(
    "audit_log", meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("key_name", sa.String(64), nullable=True, index=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("record", sa.Text, nullable=False),
)


def make_engine(url: str, *, read_only: bool) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, full fsync, a busy timeout and, for readers, query_only."""
    if not url.startswith("sqlite"):
        engine = sa.create_engine(url, pool_pre_ping=True)
        return engine.execution_options(postgresql_readonly=True) if read_only else engine
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        if read_only:
            cur.execute("PRAGMA query_only=ON")
        else:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def migrate(engine: sa.Engine) -> None:
    """Create missing tables, then add filter columns (and their indexes) that older databases lack, and
    (SQLite) the per-table versions the read memo drops its reads by."""
    meta.create_all(engine)
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [column for column in table.columns if column.name not in present]
            for column in missing:
                ddl = sa.schema.CreateColumn(column).compile(dialect=engine.dialect)
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))
            if table is jobs and "phase" in {column.name for column in missing}:
                _phases_from_status(conn)
    for table in meta.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            table_versions.install(conn, [table.name for table in meta.sorted_tables])



def _phases_from_status(conn) -> None:
    """Jobs written before phases existed: pending ones join the queue (ahead of newer ones), running
    ones are held without a lease, so the registry relaunches them from their last checkpoint."""
    conn.execute(jobs.update().where(jobs.c.status == "pending").values(phase="queued", queue_seq=0))
    conn.execute(jobs.update().where(jobs.c.status == "running").values(phase="training"))
