"""Ingest: an uploaded file becomes the caller's dataset (validated, normalized, stored)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from ..data import storage
from ..data.ingest import ingest_file
from ..schemas.datasets import DatasetRecord
from ..settings import get_settings
from .context import Services
from .principal import Principal


async def ingest(services: Services, principal: Principal, source: Path, filename: str,
                 name: str | None = None) -> DatasetRecord:
    """Validate ``source`` and store it as a dataset of the principal's tenant. The same bytes uploaded
    again by the same tenant give the same record; another tenant gets a record of its own."""
    staging = storage.staging_dir()
    try:
        report = await asyncio.to_thread(ingest_file, source, staging / "data.jsonl", filename,
                                         get_settings().max_upload_bytes)
        record = storage.record_from_report(report, filename, name, principal.tenant)
        existing = services.reader.get_dataset(record.dataset_id)
        if existing is not None:
            return existing
        await asyncio.to_thread(storage.install_dataset, staging / "data.jsonl", record)
        return await services.registry.put_dataset(record)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)
