"""Ingest: an uploaded file becomes the caller's dataset (validated, normalized, stored)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from functools import lru_cache
from pathlib import Path

from .. import paths
from ..auth.quotas import check_storage
from ..data import storage
from ..data.base_tokenizer import BaseTokenizer
from ..data.ingest import IngestReport, ingest_file
from ..data.stats import dataset_statistics
from ..data.templates import template_for
from ..models.roots import find_in_roots
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
    log line) when that base's tokenizer cannot be read: statistics never fail an upload."""
    defaults = TrainingConfig()
    name = get_settings().default_model
    try:
        tokenizer = _tokenizer(_base_folder(name))
        template = template_for(defaults.prompt_template, tokenizer, data_kind=report.kind)
    except (OSError, ValueError) as e:
        log.warning("dataset statistics skipped: the default base %r has no readable tokenizer (%s)", name, e)
        return None
    return dataset_statistics(normalized, report.total_samples, tokenizer, template, name, defaults.max_length)


def _base_folder(name: str) -> Path:
    """The default base's prepared folder: a built-in one under models/, or a model folder in the roots.
    Not ``resolve_model``: that imports torch and may build the model, which no upload should wait for."""
    for folder in (paths.models_dir() / name, find_in_roots(name)):
        if folder is not None and (folder / "tokenizer.json").is_file():
            return folder
    raise FileNotFoundError(f"no prepared model folder with a tokenizer.json for {name!r}")


@lru_cache(maxsize=4)
def _tokenizer(folder: Path) -> BaseTokenizer:
    return BaseTokenizer(folder)
