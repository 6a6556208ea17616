"""Writing records: used only by the job registry, the one writer.

Each method is one transaction, committed (and on SQLite fsync'd) before it returns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from ..errors import storage_error
from ..schemas.auth import ApiKeyRecord, AuditEntry
from ..schemas.common import utcnow
from ..schemas.datasets import DatasetRecord
from ..schemas.exports import ExportRecord
from ..schemas.jobs import JobEvent, JobPhase, JobRecord, LossPoint
from .reader import ReadStore
from .tables import api_keys, audit_log, datasets, events, exports, jobs, metrics, migrate


class Store(ReadStore):
    """The writer's connection: everything ``ReadStore`` reads, plus the writes."""

    def __init__(self, url: str):
        super().__init__(url, read_only=False)
        migrate(self.engine)

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """One committed transaction; a full or read-only storage is raised as our domain error (507/503)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as err:
            # Drop the pooled connections: one opened while the file was read-only stays read-only, so
            # the next write must reconnect to see the file writable again.
            self.engine.dispose()
            raise (storage_error(err) or err) from err

    def _upsert(self, table: sa.Table, key: str, row: dict, conn=None) -> None:
        if conn is None:
            with self._transaction() as conn:
                return self._upsert(table, key, row, conn)
        if not conn.execute(table.update().where(table.c[key] == row[key]).values(**row)).rowcount:
            conn.execute(table.insert().values(**row))

    # datasets
    def put_dataset(self, rec: DatasetRecord) -> None:
        self._upsert(datasets, "dataset_id", {
            "dataset_id": rec.dataset_id, "tenant": rec.tenant, "uploaded_at": rec.uploaded_at.isoformat(),
            "size_bytes": rec.size_bytes, "record": rec.model_dump_json(),
        })

    def delete_dataset(self, dataset_id: str) -> bool:
        with self._transaction() as conn:
            return conn.execute(datasets.delete().where(datasets.c.dataset_id == dataset_id)).rowcount > 0

    # jobs
    def put_job(self, rec: JobRecord) -> None:
        self._upsert(jobs, "job_id", _job_row(rec))

    def enqueue_job(self, rec: JobRecord) -> None:
        """Store ``rec`` as queued, behind every job queued before it."""
        rec.phase = JobPhase.QUEUED
        with self._transaction() as conn:
            last = conn.execute(sa.select(sa.func.max(jobs.c.queue_seq))).scalar() or 0
            self._upsert(jobs, "job_id", _job_row(rec) | {"queue_seq": last + 1}, conn)

    # events and loss history
    def add_event(self, job_id: str, tenant: str, type: str, data: dict, at: datetime | None = None) -> JobEvent:
        at = at or utcnow()
        with self._transaction() as conn:
            seq = conn.execute(events.insert().values(
                job_id=job_id, tenant=tenant, type=type, timestamp=at.isoformat(), data=json.dumps(data, default=str)
            )).inserted_primary_key[0]
        return JobEvent(seq=seq, job_id=job_id, type=type, timestamp=at, data=data)

    def add_loss_point(self, job_id: str, point: LossPoint) -> None:
        with self._transaction() as conn:
            conn.execute(metrics.delete().where(metrics.c.job_id == job_id, metrics.c.step == point.step))
            conn.execute(metrics.insert().values(job_id=job_id, step=point.step, point=point.model_dump_json()))

    # exports
    def put_export(self, rec: ExportRecord) -> None:
        self._upsert(exports, "export_id", {
            "export_id": rec.export_id, "job_id": rec.job_id, "tenant": rec.tenant, "format": rec.format,
            "quantization": rec.quantization, "status": rec.status, "created_at": rec.created_at.isoformat(),
            "size_bytes": rec.total_size_bytes, "record": rec.model_dump_json(),
        })

    # API keys and the audit trail
    def put_key(self, rec: ApiKeyRecord) -> None:
        self._upsert(api_keys, "key_id", {
            "key_id": rec.key_id, "name": rec.name, "tenant": rec.tenant,
            "revoked_at": rec.revoked_at.isoformat() if rec.revoked_at else None, "record": rec.model_dump_json(),
        })

    def add_audit(self, entries: list[AuditEntry]) -> None:
        """Append entries in one transaction (their order of arrival is their ``seq``)."""
        if not entries:
            return
        with self._transaction() as conn:
            conn.execute(audit_log.insert(), [
                {"at": e.at.isoformat(), "key_name": e.key_name, "tenant": e.tenant,
                 "record": e.model_dump_json(exclude={"seq"})} for e in entries])


def _job_row(rec: JobRecord) -> dict:
    return {"job_id": rec.job_id, "tenant": rec.tenant, "status": rec.status.value, "phase": rec.phase.value,
            "dataset_id": rec.dataset_id, "priority": rec.priority, "created_at": rec.created_at.isoformat(),
            "record": rec.model_dump_json(exclude={"queue_position"})}
