"""Dataset upload, listing and deletion."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ...data import storage
from ...data.ingest import ingest_file
from ...errors import DatasetNotFound
from ...schemas.datasets import DatasetList, DatasetRecord, DeletedResponse
from ...settings import get_settings
from ..deps import ServicesDep, known_id
from ..upload import receive_upload

router = APIRouter(tags=["datasets"])

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary", "description": "CSV, JSON or JSONL dataset"},
                "name": {"type": "string", "description": "Dataset name (optional)"},
            },
        }}},
    }
}


@router.post("/api/upload-dataset", response_model=DatasetRecord, openapi_extra=_UPLOAD_DOC)
async def upload_dataset(request: Request, services: ServicesDep):
    """Upload and validate a dataset (multipart ``file``, optional ``name``)."""
    staging = storage.staging_dir()
    try:
        upload = await receive_upload(request, staging / "upload.bin", get_settings().max_upload_bytes)
        report = await run_in_threadpool(
            ingest_file, upload.path, staging / "data.jsonl", upload.filename, get_settings().max_upload_bytes
        )
        record = storage.record_from_report(report, upload.filename, upload.fields.get("name"))
        try:
            existing = await services.registry.call("get_dataset", record.dataset_id)
            return existing
        except DatasetNotFound:
            pass
        await run_in_threadpool(storage.install_dataset, staging / "data.jsonl", record)
        return await services.registry.call("put_dataset", record)
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


@router.get("/api/datasets", response_model=DatasetList)
async def list_datasets(services: ServicesDep, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)):
    """Uploaded datasets, newest first."""
    items, total = await services.registry.call("list_datasets", limit, offset)
    return DatasetList(datasets=items, total=total, limit=limit, offset=offset)


@router.get("/api/datasets/{dataset_id}", response_model=DatasetRecord)
async def get_dataset(dataset_id: str, services: ServicesDep):
    """One dataset's record and validation report."""
    return await services.registry.call("get_dataset", known_id(dataset_id, "dataset_id"))


@router.delete("/api/datasets/{dataset_id}", response_model=DeletedResponse)
async def delete_dataset(dataset_id: str, services: ServicesDep):
    """Delete a dataset (409 while a pending or running job uses it)."""
    rec = await services.registry.call("delete_dataset", known_id(dataset_id, "dataset_id"))
    await run_in_threadpool(storage.remove_dataset_files, rec.dataset_id)
    return DeletedResponse(deleted=True, id=rec.dataset_id)
