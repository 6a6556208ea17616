"""Putting an ingested dataset in its place under the storage root.

Datasets are named by the tenant and the sha256 of the uploaded bytes, so
re-uploading the same file gives the same ``dataset_id``, and another tenant
uploading it gets an id (and a record) of its own. Files are moved into place
with a rename, so a dataset folder is either complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from .. import paths
from ..schemas.common import utcnow
from ..schemas.datasets import DatasetRecord, DatasetValidation


def dataset_id_for(sha256: str, tenant: str) -> str:
    return "ds_" + hashlib.sha256(f"{tenant}\n{sha256}".encode()).hexdigest()[:16]


def staging_dir() -> Path:
    """A fresh folder for one upload (the client's filename never becomes a path)."""
    path = paths.tmp_dir() / f"upload-{uuid.uuid4().hex}"
    path.mkdir(parents=True)
    return path


def record_from_report(report, filename: str, name: str | None, tenant: str) -> DatasetRecord:
    return DatasetRecord(
        dataset_id=dataset_id_for(report.sha256, tenant),
        tenant=tenant,
        name=name or None,
        filename=filename,
        format=report.format,
        kind=report.kind,
        total_samples=report.total_samples,
        size_bytes=report.size_bytes,
        preview=report.preview,
        validation=DatasetValidation(
            valid=report.valid,
            columns=report.columns,
            null_counts=report.null_counts,
            errors=report.errors,
            warnings=report.warnings,
            column_mapping=report.column_mapping,
        ),
        uploaded_at=utcnow(),
        sha256=report.sha256,
        total_tokens_estimate=report.total_tokens_estimate,
        max_chars=report.max_chars,
    )


def install_dataset(normalized: Path, record: DatasetRecord) -> Path:
    """Move the normalized JSONL into ``datasets/<id>/`` (atomic rename of the folder)."""
    final = paths.dataset_dir(record.dataset_id)
    if (final / "data.jsonl").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    build = final.parent / f".{record.dataset_id}-{uuid.uuid4().hex[:8]}"
    build.mkdir()
    try:
        shutil.move(str(normalized), build / "data.jsonl")
        (build / "record.json").write_text(record.model_dump_json(indent=2), encoding="utf-8")
    except BaseException:  # e.g. a full disk: no half-built folder is left behind
        shutil.rmtree(build, ignore_errors=True)
        raise
    try:
        os.rename(build, final)
    except OSError:  # another upload of the same bytes won the race
        shutil.rmtree(build, ignore_errors=True)
    return final


def remove_dataset_files(dataset_id: str) -> None:
    shutil.rmtree(paths.dataset_dir(dataset_id), ignore_errors=True)


def read_records(path: Path):
    """Iterate the normalized JSONL records of a stored dataset."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
