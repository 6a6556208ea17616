"""Ingest: an uploaded file becomes the caller's dataset (validated, normalized, stored)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from functools import lru_cache
from pathlib import Path

from ..auth.quotas import check_storage
from ..data import storage
from ..data.ingest import IngestReport, ingest_file
from ..data.stats import dataset_statistics
from ..data.templates import template_for
from ..errors import BadRequest, ModelNotFound
from ..models.resolve import resolve_model
from ..schemas.datasets import DatasetRecord, DatasetStatistics
from ..schemas.jobs import TrainingConfig
from ..settings import get_settings
from .context import Services
from .principal import Principal

log = logging.getLogger(__name__)


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
        record.validation.statistics = await asyncio.to_thread(_statistics, staging / "data.jsonl", report)
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


def _statistics(normalized: Path, report: IngestReport) -> DatasetStatistics | None:
    """The dataset's statistics as a job on the default base with default settings would see it; None (and a
    log line) when that base's tokenizer cannot be loaded: statistics never fail an upload."""
    defaults = TrainingConfig()
    try:
        base = resolve_model(None)
        tokenizer = _tokenizer(base.path)
        template = template_for(defaults.prompt_template, tokenizer, data_kind=report.kind)
    except (ModelNotFound, BadRequest, OSError, ValueError) as e:
        log.warning("dataset statistics skipped: the default base's tokenizer is unavailable (%s)", e)
        return None
    return dataset_statistics(normalized, report.total_samples, tokenizer, template, base.name, defaults.max_length)


@lru_cache(maxsize=4)
def _tokenizer(model_path: str):
    """Loaded once per process (the first upload pays for importing transformers)."""
    from ..train.model import load_tokenizer

    return load_tokenizer(model_path)
