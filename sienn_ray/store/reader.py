"""Reading records: what the API replicas, the CLI and the registry itself ask the database.

Every query that a tenant can reach takes ``tenant``: ``None`` means every
tenant (an admin, or the registry), a name restricts to that tenant's records,
so another tenant's record reads exactly like a missing one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

import sqlalchemy as sa

from ..schemas.auth import ApiKeyRecord, AuditEntry
from ..schemas.datasets import DatasetRecord
from ..schemas.exports import ExportRecord
from ..schemas.jobs import JobEvent, JobPhase, JobRecord, JobStatus, LossPoint
from .read_memo import ReadMemo
from .tables import api_keys, audit_log, datasets, events, exports, jobs, make_engine, metrics

T = TypeVar("T")

# Statuses of jobs that still need their dataset (not finished, maybe resumed).
UNFINISHED = (JobStatus.PENDING.value, JobStatus.RUNNING.value, JobStatus.PAUSED.value)
# The queue's order: highest priority first, then first queued.
QUEUE_ORDER = (jobs.c.priority.desc(), jobs.c.queue_seq, jobs.c.created_at)


def _scoped(table: sa.Table, tenant: str | None) -> list:
    return [] if tenant is None else [table.c.tenant == tenant]


def _beyond(time_col: sa.Column, id_col: sa.Column, cursor: tuple[str, str] | None, newest_first: bool) -> list:
    """Rows strictly past ``cursor`` (a row's time and id) in (time, id) order: cursor paging."""
    if cursor is None:
        return []
    at, key = cursor
    if newest_first:
        return [sa.or_(time_col < at, sa.and_(time_col == at, id_col < key))]
    return [sa.or_(time_col > at, sa.and_(time_col == at, id_col > key))]


def _order(time_col: sa.Column, id_col: sa.Column, newest_first: bool) -> tuple:
    return (time_col.desc(), id_col.desc()) if newest_first else (time_col.asc(), id_col.asc())


class ReadStore:
    """Read-only access to the metadata database (SQLite: ``query_only``, so it can never write).

    ``memo``: the reads that clients poll (jobs, their events and losses, datasets, exports) keep their
    rows until the next commit (``read_memo.py``; SQLite only). Rows, not records: every caller still
    gets records of its own to change.
    """

    def __init__(self, url: str, *, read_only: bool = True, memo: bool = False):
        self.url = url
        self.engine = make_engine(url, read_only=read_only)
        database = self.engine.url.database
        sqlite_file = self.engine.url.get_backend_name() == "sqlite" and database not in (None, "", ":memory:")
        self._memo = ReadMemo(database) if memo and sqlite_file else None

    def close(self) -> None:
        if self._memo is not None:
            self._memo.close()
        self.engine.dispose()

    def remembered(self, key: Hashable, fetch: Callable[[], T], tables: Iterable[sa.Table]) -> T:
        """``fetch()``, kept while ``tables`` (those it reads) are unchanged when this store memoizes (for
        values derived from reads alone, such as a record rendered for the API)."""
        return fetch() if self._memo is None else self._memo.get(key, fetch, [table.name for table in tables])

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar() == 1

    def _one(self, query) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def _rows(self, query) -> tuple:
        with self.engine.connect() as conn:
            return tuple(conn.execute(query).all())

    def _page(self, table: sa.Table, where: list, order, limit: int | None, offset: int) -> tuple[tuple[str, ...], int]:
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()
            query = sa.select(table.c.record).where(*where).order_by(*order).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return tuple(conn.execute(query).scalars()), total

    # datasets
    def get_dataset(self, dataset_id: str, tenant: str | None = None) -> DatasetRecord | None:
        raw = self.remembered(("dataset", dataset_id, tenant), lambda: self._one(
            sa.select(datasets.c.record).where(datasets.c.dataset_id == dataset_id, *_scoped(datasets, tenant))),
            (datasets,))
        return DatasetRecord.model_validate_json(raw) if raw else None

    def list_datasets(self, tenant: str | None, limit: int, offset: int) -> tuple[list[DatasetRecord], int]:
        rows, total = self.remembered(("datasets", tenant, limit, offset), lambda: self._page(
            datasets, _scoped(datasets, tenant), (datasets.c.uploaded_at.desc(),), limit, offset), (datasets,))
        return [DatasetRecord.model_validate_json(r) for r in rows], total

    def datasets_after(self, tenant: str | None, after: DatasetRecord | None, limit: int,
                       newest_first: bool = True) -> list[DatasetRecord]:
        """Up to ``limit`` datasets following ``after`` in upload order (cursor paging)."""
        cursor = (after.uploaded_at.isoformat(), after.dataset_id) if after else None
        where = _scoped(datasets, tenant) + _beyond(datasets.c.uploaded_at, datasets.c.dataset_id, cursor, newest_first)
        query = sa.select(datasets.c.record).where(*where).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(*_order(datasets.c.uploaded_at, datasets.c.dataset_id, newest_first)))
            return [DatasetRecord.model_validate_json(r) for r in rows.scalars()]

    def dataset_count(self, tenant: str | None = None) -> int:
        return self._one(sa.select(sa.func.count()).select_from(datasets).where(*_scoped(datasets, tenant)))

    # jobs
    def get_job(self, job_id: str, tenant: str | None = None) -> JobRecord | None:
        raw = self.remembered(("job", job_id, tenant), lambda: self._one(
            sa.select(jobs.c.record).where(jobs.c.job_id == job_id, *_scoped(jobs, tenant))), (jobs,))
        return JobRecord.model_validate_json(raw) if raw else None

    def list_jobs(self, tenant: str | None = None, status: str | None = None, limit: int | None = None,
                  offset: int = 0) -> tuple[list[JobRecord], int]:
        rows, total = self.remembered(("jobs", tenant, status, limit, offset), lambda: self._page(
            jobs, _scoped(jobs, tenant) + ([jobs.c.status == status] if status else []),
            (jobs.c.created_at.desc(),), limit, offset), (jobs,))
        return [JobRecord.model_validate_json(r) for r in rows], total

    def jobs_after(self, tenant: str | None, after: JobRecord | None, limit: int, status: str | None = None,
                   newest_first: bool = True) -> list[JobRecord]:
        """Up to ``limit`` jobs following ``after`` in creation order (cursor paging)."""
        cursor = (after.created_at.isoformat(), after.job_id) if after else None
        where = _scoped(jobs, tenant) + _beyond(jobs.c.created_at, jobs.c.job_id, cursor, newest_first)
        query = sa.select(jobs.c.record).where(*where, *([jobs.c.status == status] if status else []))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(*_order(jobs.c.created_at, jobs.c.job_id, newest_first)).limit(limit))
            return [JobRecord.model_validate_json(r) for r in rows.scalars()]

    def jobs_in_phases(self, phases: Iterable[JobPhase], limit: int | None = None) -> list[JobRecord]:
        """Jobs in these phases; queued ones come in queue order."""
        query = sa.select(jobs.c.record).where(jobs.c.phase.in_([p.value for p in phases])).order_by(*QUEUE_ORDER)
        with self.engine.connect() as conn:
            return [JobRecord.model_validate_json(r) for r in conn.execute(query.limit(limit)).scalars()]

    def queue_position(self, job: JobRecord) -> int | None:
        """1 for the job launched next, 2 for the one after, ...; None for a job not in the queue."""
        if job.phase != JobPhase.QUEUED:
            return None
        return self.remembered(("queue_position", job.job_id), lambda: self._queue_position(job.job_id), (jobs,))

    def _queue_position(self, job_id: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs.c.priority, jobs.c.queue_seq).where(jobs.c.job_id == job_id)).first()
            if row is None:
                return None
            ahead = sa.or_(jobs.c.priority > row.priority,
                           sa.and_(jobs.c.priority == row.priority, jobs.c.queue_seq < row.queue_seq))
            count = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.phase == JobPhase.QUEUED.value, ahead)
            return conn.execute(count).scalar() + 1

    def unfinished_jobs_for_dataset(self, dataset_id: str) -> list[str]:
        """Unfinished jobs that train on the dataset or evaluate on it (``eval_dataset_id``)."""
        evaluates = jobs.c.record.contains(f'"eval_dataset_id":"{dataset_id}"', autoescape=True)
        query = sa.select(jobs.c.job_id, jobs.c.dataset_id, jobs.c.record).where(
            jobs.c.status.in_(UNFINISHED), sa.or_(jobs.c.dataset_id == dataset_id, evaluates))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        # The text match only narrows the rows down; the parsed record decides.
        return [r.job_id for r in rows if r.dataset_id == dataset_id
                or JobRecord.model_validate_json(r.record).eval_dataset_id == dataset_id]

    def job_counts(self, tenant: str | None = None) -> dict[str, int]:
        return dict(self.remembered(("job_counts", tenant), lambda: self._job_counts(tenant), (jobs,)))

    def _job_counts(self, tenant: str | None) -> tuple:
        query = sa.select(jobs.c.status, sa.func.count()).where(*_scoped(jobs, tenant)).group_by(jobs.c.status)
        with self.engine.connect() as conn:
            return tuple(conn.execute(query).all())

    # events and loss history
    def list_events(self, job_id: str, after: int = 0, limit: int | None = None) -> list[JobEvent]:
        """Events of a job with ``seq`` > ``after``, oldest first."""
        rows = self.remembered(("events", job_id, after, limit), lambda: self._rows(
            sa.select(events).where(events.c.job_id == job_id, events.c.id > after).order_by(events.c.id).limit(limit)),
            (events,))
        return [JobEvent(seq=r.id, job_id=r.job_id, type=r.type, timestamp=r.timestamp, data=json.loads(r.data))
                for r in rows]

    def events_before(self, job_id: str, before: int | None, limit: int | None,
                      types: Iterable[str] | None = None) -> list[JobEvent]:
        """Events of a job with ``seq`` < ``before`` (all when None), newest first; only ``types`` if given."""
        types = None if types is None else tuple(types)

        def fetch() -> tuple:
            where = [events.c.job_id == job_id] + ([events.c.id < before] if before is not None else [])
            if types is not None:
                where.append(events.c.type.in_(types))
            return self._rows(sa.select(events).where(*where).order_by(events.c.id.desc()).limit(limit))

        rows = self.remembered(("events_before", job_id, before, limit, types), fetch, (events,))
        return [JobEvent(seq=r.id, job_id=r.job_id, type=r.type, timestamp=r.timestamp, data=json.loads(r.data))
                for r in rows]

    def loss_history(self, job_id: str) -> list[LossPoint]:
        rows = self.remembered(("loss_history", job_id), lambda: tuple(r for (r,) in self._rows(
            sa.select(metrics.c.point).where(metrics.c.job_id == job_id).order_by(metrics.c.step))), (metrics,))
        return [LossPoint.model_validate_json(r) for r in rows]

    # exports
    def get_export(self, export_id: str, tenant: str | None = None) -> ExportRecord | None:
        raw = self.remembered(("export", export_id, tenant), lambda: self._one(
            sa.select(exports.c.record).where(exports.c.export_id == export_id, *_scoped(exports, tenant))),
            (exports,))
        return ExportRecord.model_validate_json(raw) if raw else None

    def list_exports(self, job_id: str | None = None, status: str | None = None,
                     tenant: str | None = None) -> list[ExportRecord]:
        def fetch() -> tuple:
            where = _scoped(exports, tenant)
            if job_id:
                where.append(exports.c.job_id == job_id)
            if status:
                where.append(exports.c.status == status)
            return self._page(exports, where, (exports.c.created_at.desc(),), None, 0)

        rows, _ = self.remembered(("exports", job_id, status, tenant), fetch, (exports,))
        return [ExportRecord.model_validate_json(r) for r in rows]

    def find_export(self, job_id: str, fmt: str, quantization: str | None,
                    tenant: str | None = None) -> ExportRecord | None:
        """The newest export of this job in this format/quantization, if any."""
        where = _scoped(exports, tenant) + [exports.c.job_id == job_id, exports.c.format == fmt,
                                            exports.c.quantization.is_(None) if quantization is None
                                            else exports.c.quantization == quantization]
        rows, _ = self._page(exports, where, (exports.c.created_at.desc(),), 1, 0)
        return ExportRecord.model_validate_json(rows[0]) if rows else None

    def export_count(self, status: str | None = None, tenant: str | None = None) -> int:
        where = _scoped(exports, tenant) + ([exports.c.status == status] if status else [])
        return self._one(sa.select(sa.func.count()).select_from(exports).where(*where))

    # quotas
    def storage_used(self, tenant: str) -> int:
        """Bytes the tenant keeps: its datasets plus its exports that did not fail."""
        with self.engine.connect() as conn:
            data = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(datasets.c.size_bytes), 0))
                                .where(datasets.c.tenant == tenant)).scalar()
            exported = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(exports.c.size_bytes), 0))
                                    .where(exports.c.tenant == tenant, exports.c.status != "failed")).scalar()
        return int(data) + int(exported)

    def jobs_in_phase_count(self, tenant: str, phases: Iterable[JobPhase]) -> int:
        query = sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.tenant == tenant, jobs.c.phase.in_([p.value for p in phases]))
        return self._one(query)

    # API keys
    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        raw = self._one(sa.select(api_keys.c.record).where(api_keys.c.key_id == key_id))
        return ApiKeyRecord.model_validate_json(raw) if raw else None

    def get_key_by_name(self, name: str) -> ApiKeyRecord | None:
        raw = self._one(sa.select(api_keys.c.record).where(api_keys.c.name == name))
        return ApiKeyRecord.model_validate_json(raw) if raw else None

    def list_keys(self) -> list[ApiKeyRecord]:
        rows, _ = self._page(api_keys, [], (api_keys.c.name,), None, 0)
        return [ApiKeyRecord.model_validate_json(r) for r in rows]

    def active_key_count(self) -> int:
        return self._one(sa.select(sa.func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None)))

    # audit trail
    def list_audit(self, key_name: str | None = None, tenant: str | None = None, limit: int = 100,
                   offset: int = 0) -> tuple[list[AuditEntry], int]:
        """Entries newest first, optionally of one key or one tenant."""
        where = ([audit_log.c.key_name == key_name] if key_name else []) + _scoped(audit_log, tenant)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(*where)).scalar()
            rows = conn.execute(sa.select(audit_log.c.seq, audit_log.c.record).where(*where)
                                .order_by(audit_log.c.seq.desc()).offset(offset).limit(limit)).all()
        return [AuditEntry.model_validate_json(r.record).model_copy(update={"seq": r.seq}) for r in rows], total
