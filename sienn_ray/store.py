"""Persistence of dataset, job, event, metric and export records.

SQLAlchemy Core over SQLite (WAL, synchronous=FULL: a write is on disk before it
is acknowledged) by default, or any database URL (Postgres) when configured.
Records are stored as their pydantic JSON plus the few columns we filter on, so
adding a field to a schema needs no migration. The job-registry actor is the one
writer; readers may open their own Store (WAL lets them read concurrently).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from .schemas.common import utcnow
from .schemas.datasets import DatasetRecord
from .schemas.exports import ExportRecord
from .schemas.jobs import JobEvent, JobRecord, JobStatus, LossPoint

_meta = sa.MetaData()

datasets = sa.Table(
    "datasets", _meta,
    sa.Column("dataset_id", sa.String(64), primary_key=True),
    sa.Column("uploaded_at", sa.String(40), nullable=False, index=True),
    sa.Column("record", sa.Text, nullable=False),
)
jobs = sa.Table(
    "jobs", _meta,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("dataset_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.String(40), nullable=False, index=True),
    sa.Column("record", sa.Text, nullable=False),
)
events = sa.Table(
    "job_events", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("timestamp", sa.String(40), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
metrics = sa.Table(
    "job_metrics", _meta,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("point", sa.Text, nullable=False),
)
exports = sa.Table(
    "exports", _meta,
    sa.Column("export_id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("quantization", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
)

ACTIVE = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


def _engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


class Store:
    """Typed access to the metadata database."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)
        _meta.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar() == 1

    def _upsert(self, table: sa.Table, key: str, row: dict) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                table.update().where(table.c[key] == row[key]).values(**row)
            ).rowcount
            if not updated:
                conn.execute(table.insert().values(**row))

    # datasets
    def put_dataset(self, rec: DatasetRecord) -> None:
        self._upsert(datasets, "dataset_id", {
            "dataset_id": rec.dataset_id,
            "uploaded_at": rec.uploaded_at.isoformat(),
            "record": rec.model_dump_json(),
        })

    def get_dataset(self, dataset_id: str) -> DatasetRecord | None:
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(datasets.c.record).where(datasets.c.dataset_id == dataset_id)).scalar()
        return DatasetRecord.model_validate_json(raw) if raw else None

    def list_datasets(self, limit: int, offset: int) -> tuple[list[DatasetRecord], int]:
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(datasets)).scalar()
            rows = conn.execute(
                sa.select(datasets.c.record).order_by(datasets.c.uploaded_at.desc()).limit(limit).offset(offset)
            ).scalars()
            return [DatasetRecord.model_validate_json(r) for r in rows], total

    def delete_dataset(self, dataset_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(datasets.delete().where(datasets.c.dataset_id == dataset_id)).rowcount > 0

    # jobs
    def put_job(self, rec: JobRecord) -> None:
        self._upsert(jobs, "job_id", {
            "job_id": rec.job_id,
            "status": rec.status.value,
            "dataset_id": rec.dataset_id,
            "created_at": rec.created_at.isoformat(),
            "record": rec.model_dump_json(),
        })

    def get_job(self, job_id: str) -> JobRecord | None:
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(jobs.c.record).where(jobs.c.job_id == job_id)).scalar()
        return JobRecord.model_validate_json(raw) if raw else None

    def list_jobs(
        self, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> tuple[list[JobRecord], int]:
        where = [jobs.c.status == status] if status else []
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where)).scalar()
            query = sa.select(jobs.c.record).where(*where).order_by(jobs.c.created_at.desc()).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return [JobRecord.model_validate_json(r) for r in conn.execute(query).scalars()], total

    def active_jobs_for_dataset(self, dataset_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(
                sa.select(jobs.c.job_id).where(jobs.c.dataset_id == dataset_id, jobs.c.status.in_(ACTIVE))
            ).scalars())

    def job_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)).all()
        return {status: count for status, count in rows}

    def dataset_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(datasets)).scalar()

    # events and loss history
    def add_event(self, job_id: str, type: str, data: dict, at: datetime | None = None) -> JobEvent:
        at = at or utcnow()
        with self.engine.begin() as conn:
            seq = conn.execute(events.insert().values(
                job_id=job_id, type=type, timestamp=at.isoformat(), data=json.dumps(data, default=str)
            )).inserted_primary_key[0]
        return JobEvent(seq=seq, job_id=job_id, type=type, timestamp=at, data=data)

    def list_events(self, job_id: str) -> list[JobEvent]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(events).where(events.c.job_id == job_id).order_by(events.c.id)).all()
        return [
            JobEvent(seq=r.id, job_id=r.job_id, type=r.type, timestamp=r.timestamp, data=json.loads(r.data))
            for r in rows
        ]

    def add_loss_point(self, job_id: str, point: LossPoint) -> None:
        with self.engine.begin() as conn:
            conn.execute(metrics.delete().where(metrics.c.job_id == job_id, metrics.c.step == point.step))
            conn.execute(metrics.insert().values(job_id=job_id, step=point.step, point=point.model_dump_json()))

    def loss_history(self, job_id: str) -> list[LossPoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(metrics.c.point).where(metrics.c.job_id == job_id).order_by(metrics.c.step)
            ).scalars()
            return [LossPoint.model_validate_json(r) for r in rows]

    # exports
    def put_export(self, rec: ExportRecord) -> None:
        self._upsert(exports, "export_id", {
            "export_id": rec.export_id,
            "job_id": rec.job_id,
            "format": rec.format,
            "quantization": rec.quantization,
            "status": rec.status,
            "created_at": rec.created_at.isoformat(),
            "record": rec.model_dump_json(),
        })

    def get_export(self, export_id: str) -> ExportRecord | None:
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(exports.c.record).where(exports.c.export_id == export_id)).scalar()
        return ExportRecord.model_validate_json(raw) if raw else None

    def list_exports(self, job_id: str | None = None, status: str | None = None) -> list[ExportRecord]:
        where = []
        if job_id:
            where.append(exports.c.job_id == job_id)
        if status:
            where.append(exports.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(exports.c.record).where(*where).order_by(exports.c.created_at.desc())
            ).scalars()
            return [ExportRecord.model_validate_json(r) for r in rows]

    def find_export(self, job_id: str, fmt: str, quantization: str | None) -> ExportRecord | None:
        """The newest export of this job in this format/quantization, if any."""
        for rec in self.list_exports(job_id):
            if rec.format == fmt and rec.quantization == quantization:
                return rec
        return None
