"""Dataset upload, listing and deletion."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ...data import storage
from ...schemas.datasets import DatasetList, DatasetRecord, DeletedResponse
from ...services import datasets, ingest
from ...settings import get_settings
from ..deps import MAX_OFFSET, PrincipalDep, ServicesDep
from ..openapi import errors
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


@router.post("/api/upload-dataset", response_model=DatasetRecord, openapi_extra=_UPLOAD_DOC,
             responses=errors(400, 413, 429, 503))
async def upload_dataset(request: Request, services: ServicesDep, principal: PrincipalDep):
    """Upload and validate a dataset (multipart ``file``, optional ``name``)."""
    staging = storage.staging_dir()
    try:
        upload = await receive_upload(request, staging / "upload.bin", get_settings().max_upload_bytes)
        return await ingest.ingest(services, principal, upload.path, upload.filename, upload.fields.get("name"))
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


@router.get("/api/datasets", response_model=DatasetList, responses=errors(400))
async def list_datasets(services: ServicesDep, principal: PrincipalDep, limit: int = Query(50, ge=1, le=1000),
                        offset: int = Query(0, ge=0, le=MAX_OFFSET)):
    """Uploaded datasets, newest first."""
    return datasets.list_datasets(services, principal, limit, offset)


@router.get("/api/datasets/{dataset_id}", response_model=DatasetRecord, responses=errors(404))
async def get_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep):
    """One dataset's record and validation report."""
    return datasets.get_dataset(services, principal, dataset_id)


@router.delete("/api/datasets/{dataset_id}", response_model=DeletedResponse, responses=errors(404, 409, 503))
async def delete_dataset(dataset_id: str, services: ServicesDep, principal: PrincipalDep):
    """Delete a dataset (409 while an unfinished job uses it)."""
    rec = await datasets.delete_dataset(services, principal, dataset_id)
    return DeletedResponse(deleted=True, id=rec.dataset_id)
