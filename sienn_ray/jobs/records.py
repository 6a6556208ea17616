"""The registry's records besides jobs: datasets, exports, API keys and the audit trail.

``RegistryCore`` (``core.py``) inherits these operations, so they run in the one
registry actor, serialized with every other write (a storage quota is checked
where uploads cannot race).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..auth.quotas import check_storage
from ..errors import DatasetInUse, DatasetNotFound, ExportNotFound, KeyExists, KeyNotFound
from ..schemas.auth import ApiKeyRecord, AuditEntry, Quota
from ..schemas.datasets import DatasetRecord
from ..schemas.exports import ExportRecord
from ..store import Store


class RecordOperations:
    """Dataset, export, API key and audit records over ``self.store``, timed by ``self.clock``."""

    store: Store
    clock: Callable[[], datetime]

    # datasets
    def put_dataset(self, rec: DatasetRecord, storage_quota: int | None = None) -> DatasetRecord:
        """Store a dataset record; the same id again returns the record already stored. With a storage
        quota, a record that would take its tenant past it is refused (429), here, where uploads are serialized."""
        existing = self.store.get_dataset(rec.dataset_id)
        if existing is not None:
            return existing
        if storage_quota is not None:
            check_storage(Quota(storage_bytes=storage_quota), self.store.storage_used(rec.tenant), rec.size_bytes)
        self.store.put_dataset(rec)
        return rec

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        return self._dataset(dataset_id, None)

    def delete_dataset(self, dataset_id: str, tenant: str | None = None) -> DatasetRecord:
        rec = self._dataset(dataset_id, tenant)
        users = self.store.unfinished_jobs_for_dataset(dataset_id)
        if users:
            raise DatasetInUse(f"Dataset {dataset_id} is used by unfinished job(s): {', '.join(users)}", jobs=users)
        self.store.delete_dataset(dataset_id)
        return rec

    # exports
    def put_export(self, rec: ExportRecord) -> ExportRecord:
        rec.updated_at = self.clock()
        self.store.put_export(rec)
        return rec

    def update_export(self, export_id: str, fields: dict) -> ExportRecord:
        rec = self.store.get_export(export_id)
        if rec is None:
            raise ExportNotFound(f"Export {export_id} not found")
        return self.put_export(ExportRecord.model_validate(rec.model_dump() | fields))

    # API keys and the audit trail
    def create_key(self, rec: ApiKeyRecord) -> ApiKeyRecord:
        """Store a new key (its hash); a name is never reused, not even after its key is revoked."""
        if self.store.get_key_by_name(rec.name) is not None:
            raise KeyExists(f"An API key named {rec.name!r} exists already (names are never reused)")
        self.store.put_key(rec)
        return rec

    def revoke_key(self, name: str) -> ApiKeyRecord:
        rec = self.store.get_key_by_name(name)
        if rec is None:
            raise KeyNotFound(f"No API key named {name!r}")
        if rec.revoked_at is None:
            rec.revoked_at = self.clock()
            self.store.put_key(rec)
        return rec

    def add_audit(self, entries: list[AuditEntry]) -> int:
        self.store.add_audit(entries)
        return len(entries)

    def _dataset(self, dataset_id: str, tenant: str | None) -> DatasetRecord:
        rec = self.store.get_dataset(dataset_id, tenant)
        if rec is None:
            raise DatasetNotFound(f"Dataset {dataset_id} not found")
        return rec

