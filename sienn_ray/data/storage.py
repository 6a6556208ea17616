"""Putting an ingested dataset in its place under the storage root.

Datasets are named by the tenant and the sha256 of the uploaded bytes, so
re-uploading the same file gives the same ``dataset_id``, and another tenant
uploading it gets an id (and a record) of its own. A dataset folder is built
beside its place and renamed into it (``models/atomic.build_dir``), so it is
either complete or absent.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

from .. import paths
from ..models.atomic import build_dir
from ..schemas.common import utcnow
from ..schemas.datasets import DatasetRecord, DatasetValidation


# What an IngestReport hands on under the same names.
_RECORD_FIELDS = {"format", "kind", "total_samples", "size_bytes", "preview", "sha256", "total_tokens_estimate",
                  "max_chars"}
_VALIDATION_FIELDS = {"valid", "columns", "null_counts", "errors", "warnings", "column_mapping"}


def dataset_id_for(sha256: str, tenant: str) -> str:
    return "ds_" + hashlib.sha256(f"{tenant}\n{sha256}".encode()).hexdigest()[:16]


def staging_dir() -> Path:
    """A fresh folder for one upload (the client's filename never becomes a path)."""
    path = paths.tmp_dir() / f"upload-{uuid.uuid4().hex}"
    path.mkdir(parents=True)
    return path


def record_from_report(report, filename: str, name: str | None, tenant: str) -> DatasetRecord:
    """The dataset record of an ``IngestReport``; ``validation.statistics`` is the caller's to fill."""
    return DatasetRecord(
        **report.model_dump(include=_RECORD_FIELDS),
        dataset_id=dataset_id_for(report.sha256, tenant),
        tenant=tenant,
        name=name or None,
        filename=filename,
        validation=DatasetValidation(**report.model_dump(include=_VALIDATION_FIELDS)),
        uploaded_at=utcnow(),
    )


def install_dataset(normalized: Path, record: DatasetRecord) -> Path:
    """Move the normalized JSONL into ``datasets/<id>/data.jsonl``, the folder published whole.

    The store's row is the dataset's record (no copy is kept beside the data). The same bytes uploaded
    twice at once build the same file twice; the later publish swaps the earlier one out.
    """
    final = paths.dataset_dir(record.dataset_id)
    if (final / "data.jsonl").exists():
        return final
    return build_dir(final, lambda folder: shutil.move(str(normalized), folder / "data.jsonl"))


def remove_dataset_files(dataset_id: str) -> None:
    shutil.rmtree(paths.dataset_dir(dataset_id), ignore_errors=True)
