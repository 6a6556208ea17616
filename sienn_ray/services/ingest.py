"""Ingest: an uploaded file becomes the caller's dataset (validated, normalized, stored)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from ..auth.quotas import check_storage
from ..data import storage
from ..data.ingest import ingest_file
from ..schemas.datasets import DatasetRecord
from ..settings import get_settings
from .context import Services
from .principal import Principal


async def ingest(services: Services, principal: Principal, source: Path, filename: str,
                 name: str | None = None) -> DatasetRecord:
    """Validate ``source`` and store it as a dataset of the principal's tenant. The same bytes uploaded
    again by the same tenant give the same record; another tenant gets a record of its own. Over the key's
    storage quota: 429, nothing stored."""
    quota = principal.quota
    if quota is not None:  # already full: refuse before validating the file
        check_storage(quota, services.reader.storage_used(principal.tenant), 1)
    staging = storage.staging_dir()
    try:
        report = await asyncio.to_thread(ingest_file, source, staging / "data.jsonl", filename,
                                         get_settings().max_upload_bytes)
        record = storage.record_from_report(report, filename, name, principal.tenant)
        existing = services.reader.get_dataset(record.dataset_id)
        if existing is not None:
            return existing
        if quota is not None:
            check_storage(quota, services.reader.storage_used(principal.tenant), record.size_bytes)
        await asyncio.to_thread(storage.install_dataset, staging / "data.jsonl", record)
        try:  # the registry checks the quota again, serialized with every other upload
            return await services.registry.put_dataset(record, quota.storage_bytes if quota else None)
        except Exception:  # over quota, or the store could not write: no record names these files
            await asyncio.to_thread(_drop_unrecorded, services, record.dataset_id)
            raise
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)


def _drop_unrecorded(services: Services, dataset_id: str) -> None:
    """Files whose record could not be written (a full or read-only database) are removed: a dataset
    is its record and its files, or nothing. A record that exists (the same bytes stored meanwhile)
    keeps them."""
    if services.reader.get_dataset(dataset_id) is None:
        storage.remove_dataset_files(dataset_id)
