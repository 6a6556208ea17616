"""The API replicas' read memo: no query while nothing changed, the newest rows once anything has (no Ray)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa
from jobs_fakes import job

from sienn_ray.errors import JobNotFound
from sienn_ray.schemas.jobs import JobRecord, JobStatus, LossPoint
from sienn_ray.services import jobs as job_service
from sienn_ray.services.context import Services
from sienn_ray.services.principal import DEFAULT_PRINCIPAL, Principal
from sienn_ray.store import ReadStore, Store
from sienn_ray.store.read_memo import ReadMemo


def statements(reader: ReadStore) -> list[str]:
    """The SQL the reader's own engine sends from now on (the memo's version check is not among them)."""
    sent: list[str] = []
    sa.event.listen(reader.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: sent.append(sql))
    return sent


def job_parses(monkeypatch) -> list[int]:
    """A list that gets one item each time a job record is parsed from here on."""
    parsed: list[int] = []
    real_parse = JobRecord.model_validate_json
    monkeypatch.setattr(JobRecord, "model_validate_json", lambda raw: parsed.append(1) or real_parse(raw))
    return parsed


def stores(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'sienn.db'}")
    return store, ReadStore(store.url, memo=True)


def test_a_repeated_read_sends_no_query_until_something_is_committed(tmp_path):
    store, reader = stores(tmp_path)
    rec = job()
    store.put_job(rec)
    sent = statements(reader)
    assert reader.get_job(rec.job_id).status == JobStatus.PENDING
    first = len(sent)
    assert first >= 1
    for _ in range(5):
        reader.get_job(rec.job_id)
        reader.list_jobs(None, limit=50)
    after_list = len(sent)
    assert reader.list_jobs(None, limit=50)[1] == 1 and len(sent) == after_list  # the list too, once read
    assert after_list == first + 2  # the list's count and page, once; the repeated status reads nothing

    store.put_job(rec.model_copy(update={"status": JobStatus.RUNNING, "step": 3}))  # the registry's commit
    again = reader.get_job(rec.job_id)
    assert (again.status, again.step) == (JobStatus.RUNNING, 3)
    assert len(sent) > after_list


def test_a_commit_by_another_process_is_seen_by_the_next_read(tmp_path):
    store, reader = stores(tmp_path)
    rec = job()
    store.put_job(rec)
    reader.get_job(rec.job_id)
    reader.loss_history(rec.job_id)
    changed = rec.model_copy(update={"step": 7}).model_dump_json()
    script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
              "c.execute('UPDATE jobs SET record = ? WHERE job_id = ?', (sys.argv[2], sys.argv[3])); c.commit()")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "sienn.db"), changed, rec.job_id], check=True)
    assert reader.get_job(rec.job_id).step == 7
    store.add_loss_point(rec.job_id, LossPoint(step=1, epoch=0, train_loss=2.5, learning_rate=1e-4))
    assert [p.train_loss for p in reader.loss_history(rec.job_id)] == [2.5]


def test_every_caller_gets_records_of_its_own(tmp_path):
    store, reader = stores(tmp_path)
    rec = job()
    store.put_job(rec)
    mine = reader.get_job(rec.job_id)
    mine.queue_position, mine.message = 99, "changed by a caller"
    fresh = reader.get_job(rec.job_id)
    assert fresh.queue_position != 99 and fresh.message != "changed by a caller"
    listed, _ = reader.list_jobs(None)
    listed.clear()
    assert len(reader.list_jobs(None)[0]) == 1


def test_tenants_do_not_share_entries(tmp_path):
    store, reader = stores(tmp_path)
    rec = job(tenant="team-a")
    store.put_job(rec)
    assert reader.get_job(rec.job_id, "team-a") is not None
    assert reader.get_job(rec.job_id, "team-b") is None
    assert reader.list_jobs("team-b")[1] == 0 and reader.list_jobs("team-a")[1] == 1


def test_the_version_is_read_from_the_wal_index_and_a_rollback_journal_still_works(tmp_path):
    store, reader = stores(tmp_path)
    rec = job()
    store.put_job(rec)
    reader.get_job(rec.job_id)
    assert reader._memo.reads_wal_index  # the registry's database is in WAL mode

    db = tmp_path / "journal.db"  # a database in rollback-journal mode has no WAL-index
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES ('old')")
    memo = ReadMemo(str(db))
    read = lambda: sqlite3.connect(db).execute("SELECT v FROM t").fetchone()[0]  # noqa: E731
    assert memo.get("v", read) == "old" and not memo.reads_wal_index
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE t SET v = 'new'")
    assert memo.get("v", read) == "new"


class FrozenHeader:
    """A WAL-index header that never moves: what the cross-check is there to catch."""

    def __init__(self, header: bytes):
        self.header = header

    def __getitem__(self, item):
        return (self.header * 2)[item]

    def close(self):
        pass


def test_a_header_that_misses_a_commit_is_dropped_for_sqlites_own_version(tmp_path, caplog):
    store, _ = stores(tmp_path)
    rec = job()
    store.put_job(rec)
    reader = ReadStore(store.url, memo=True)
    reader._memo.verify_s = 0  # cross-check at every read
    assert reader.get_job(rec.job_id).step == 0
    memo = reader._memo
    memo._index = FrozenHeader(memo._index[:48])
    assert reader.get_job(rec.job_id).step == 0
    store.put_job(rec.model_copy(update={"step": 5}))
    assert reader.get_job(rec.job_id).step == 5
    assert not memo.reads_wal_index and "missed a commit" in caplog.text


def test_the_memo_is_bounded_in_bytes(tmp_path):
    db = tmp_path / "plain.db"
    sqlite3.connect(db).close()
    memo = ReadMemo(str(db), max_bytes=16 * 1024)
    calls = []

    def fetch(value):
        calls.append(value)
        return value

    memo.get("big", lambda: fetch("x" * 2048))  # over a sixteenth of the budget: never kept
    memo.get("big", lambda: fetch("x" * 2048))
    assert len(calls) == 2
    for i in range(40):  # 40 x ~0.5 KiB > 16 KiB: the oldest go first
        memo.get(i, lambda i=i: fetch(f"{i:0>400}"))
    before = len(calls)
    memo.get(39, lambda: fetch("newest"))
    memo.get(0, lambda: fetch("oldest"))
    assert calls[before:] == ["oldest"]


def test_an_unreadable_database_leaves_each_read_to_the_store(tmp_path):
    memo = ReadMemo(str(tmp_path / "no-such-dir" / "sienn.db"))
    calls = []
    assert memo.get("k", lambda: calls.append(1) or "value") == "value"
    assert memo.get("k", lambda: calls.append(1) or "value") == "value"
    assert len(calls) == 2  # nothing kept without a version to keep it under


def test_without_memo_or_on_another_database_every_read_queries(tmp_path):
    store, _ = stores(tmp_path)
    rec = job()
    store.put_job(rec)
    plain = ReadStore(store.url)
    sent = statements(plain)
    plain.get_job(rec.job_id)
    plain.get_job(rec.job_id)
    assert len(sent) == 2
    assert ReadStore("sqlite://", memo=True)._memo is None  # an in-memory database has no other connections


def test_the_status_answer_is_rendered_once_per_database_version(tmp_path, monkeypatch):
    """The status route's body: the job with its queue position, as ``get_job`` gives it, parsed and
    serialized once while nothing is committed, newly rendered after a commit, and scoped by tenant."""
    store, reader = stores(tmp_path)
    first, second = job(), job()
    store.enqueue_job(first)
    store.enqueue_job(second)
    services = Services(registry=None, reader=reader)
    parsed = job_parses(monkeypatch)

    body = job_service.job_json(services, DEFAULT_PRINCIPAL, second.job_id)
    assert json.loads(body) == json.loads(job_service.get_job(services, DEFAULT_PRINCIPAL, second.job_id)
                                          .model_dump_json())
    assert json.loads(body)["queue_position"] == 2
    parsed.clear()
    for _ in range(5):
        assert job_service.job_json(services, DEFAULT_PRINCIPAL, second.job_id) == body
    assert parsed == []  # nothing committed: no parse, no serialization

    store.put_job(second.model_copy(update={"step": 5, "message": "training"}))
    again = json.loads(job_service.job_json(services, DEFAULT_PRINCIPAL, second.job_id))
    assert (again["step"], again["message"]) == (5, "training")
    with pytest.raises(JobNotFound):
        job_service.job_json(services, Principal(tenant="team-b", key_name="b", is_admin=False), second.job_id)


def _versions(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT name, version FROM table_versions").all())


def test_a_commit_to_other_tables_keeps_the_rendered_status(tmp_path, monkeypatch):
    """Loss points, events and datasets commit all the time while jobs train; none of them is in a
    job's status, so the rendered status survives them, and is rendered again once the job is written."""
    from jobs_fakes import dataset

    store, reader = stores(tmp_path)
    rec = job()
    store.enqueue_job(rec)
    services = Services(registry=None, reader=reader)
    body = job_service.job_json(services, DEFAULT_PRINCIPAL, rec.job_id)
    parsed = job_parses(monkeypatch)
    sent = statements(reader)

    store.add_event(rec.job_id, rec.tenant, "epoch", {"epoch": 1})
    store.add_loss_point(rec.job_id, LossPoint(step=1, epoch=0.5, train_loss=2.0))
    store.put_dataset(dataset(7))
    assert job_service.job_json(services, DEFAULT_PRINCIPAL, rec.job_id) == body
    assert parsed == [] and sent == []
    # the reads of the tables written are fresh
    assert [e.type for e in reader.list_events(rec.job_id)][-1] == "epoch"
    assert reader.loss_history(rec.job_id)[0].train_loss == 2.0

    store.put_job(rec.model_copy(update={"message": "moved"}))
    assert json.loads(job_service.job_json(services, DEFAULT_PRINCIPAL, rec.job_id))["message"] == "moved"
    assert parsed  # read again: its table changed


def test_every_write_moves_its_own_tables_version_and_no_other(tmp_path):
    store, _ = stores(tmp_path)
    rec = job()
    before = _versions(store)
    assert set(before) >= {"jobs", "job_events", "job_metrics", "datasets", "exports", "api_keys", "audit_log"}
    store.enqueue_job(rec)  # an insert
    store.put_job(rec.model_copy(update={"message": "x"}))  # an update
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM jobs WHERE job_id = ?", (rec.job_id,))
    after = _versions(store)
    assert after["jobs"] >= before["jobs"] + 3
    assert {k: v for k, v in after.items() if k != "jobs"} == {k: v for k, v in before.items() if k != "jobs"}
    with pytest.raises(RuntimeError), store.engine.begin() as conn:  # a write rolled back moves nothing
        conn.exec_driver_sql("DELETE FROM job_events")
        raise RuntimeError("roll back")
    assert _versions(store) == after
    Store(store.url)  # migrating again keeps the versions
    assert _versions(store) == after


def test_a_database_without_table_versions_drops_every_read_at_each_commit(tmp_path, monkeypatch):
    """A database its writer has not migrated yet: any commit may have changed anything."""
    store, reader = stores(tmp_path)
    rec = job()
    store.enqueue_job(rec)
    with store.engine.begin() as conn:
        for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").all():
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
        conn.exec_driver_sql("DROP TABLE table_versions")
    services = Services(registry=None, reader=reader)
    job_service.job_json(services, DEFAULT_PRINCIPAL, rec.job_id)
    parsed = job_parses(monkeypatch)
    store.add_event(rec.job_id, rec.tenant, "epoch", {})
    job_service.job_json(services, DEFAULT_PRINCIPAL, rec.job_id)
    assert parsed == [1]


def test_values_of_many_tables_go_when_any_of_them_changes(tmp_path):
    store, _ = stores(tmp_path)
    store.enqueue_job(job())
    memo = ReadMemo(store.engine.url.database)
    calls = []

    def read(tag):
        return lambda: calls.append(tag) or tag

    assert memo.get("both", read("both"), ["jobs", "job_events"]) == "both"
    assert memo.get("jobs", read("jobs"), ["jobs"]) == "jobs"
    assert memo.get("any", read("any")) == "any"  # names no table: read from any
    store.add_event("j", "default", "epoch", {})
    for key in ("both", "jobs", "any"):
        memo.get(key, read(key), {"both": ["jobs", "job_events"], "jobs": ["jobs"]}.get(key))
    assert calls == ["both", "jobs", "any", "both", "any"]  # "jobs" survived the event
    memo.close()


def test_migrating_a_migrated_database_writes_nothing(tmp_path):
    """The registry's Store migrates on start; on a read-only file (chattr +i, a read-only mount) that must
    only read, so the registry still starts and answers (its writes then fail as 503)."""
    from sienn_ray.store.tables import migrate

    store, _ = stores(tmp_path)
    store.enqueue_job(job())
    store.engine.dispose()
    read_only = sa.create_engine(f"sqlite:///file:{tmp_path / 'sienn.db'}?mode=ro&uri=true")
    migrate(read_only)
    with read_only.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM jobs").scalar() == 1
