"""OpenAI's Files API (/v1/files): a fine-tune file is one of our datasets. Errors in OpenAI's shape."""

from __future__ import annotations

import shutil
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from ...data import storage
from ...schemas.openai_files import FileDeleted, FileList, FileObject
from ...services import openai_files
from ...settings import get_settings
from ..deps import PrincipalDep, ServicesDep
from ..openai_errors import OpenAIErrors
from ..openapi import OpenAIError, errors
from ..upload import receive_upload

router = APIRouter(tags=["openai fine-tuning"], route_class=OpenAIErrors)

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file", "purpose"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "Chat JSONL as OpenAI's fine-tuning guide describes (or any dataset "
                                        "/api/upload-dataset takes)"},
                "purpose": {"type": "string", "enum": ["fine-tune"]},
            },
        }}},
    }
}


@router.post("/v1/files", response_model=FileObject, openapi_extra=_UPLOAD_DOC,
             responses=errors(400, 413, 503, model=OpenAIError))
async def upload_file(request: Request, services: ServicesDep, principal: PrincipalDep):
    """Upload a fine-tuning file (multipart ``file`` and ``purpose=fine-tune``); it becomes a dataset."""
    staging = storage.staging_dir()
    try:
        upload = await receive_upload(request, staging / "upload.bin", get_settings().max_upload_bytes)
        return await openai_files.upload(services, principal, upload.path, upload.filename,
                                         upload.fields.get("purpose"))
    finally:
        await run_in_threadpool(shutil.rmtree, staging, True)


@router.get("/v1/files", response_model=FileList, responses=errors(400, 404, model=OpenAIError))
async def list_files(services: ServicesDep, principal: PrincipalDep,
                     after: str | None = Query(None, pattern=r"^file-(results-)?[0-9a-f]{8,64}$",
                                               description="The last file id of the page before"),
                     limit: int = Query(10000, ge=1, le=10000),
                     order: Literal["asc", "desc"] = Query("desc", description="By created_at"),
                     purpose: str | None = Query(None, max_length=64, description="fine-tune (datasets) or "
                                                 "fine-tune-results (jobs' results)")):
    """Files, newest first: the datasets (``fine-tune``), or jobs' results (``purpose=fine-tune-results``)."""
    return openai_files.list_files(services, principal, after, limit, order, purpose)


@router.get("/v1/files/{file_id}", response_model=FileObject, responses=errors(404, model=OpenAIError))
async def retrieve_file(file_id: str, services: ServicesDep, principal: PrincipalDep):
    """One file."""
    return openai_files.get_file(services, principal, file_id)


@router.get("/v1/files/{file_id}/content", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}, "text/csv": {}},
                             "description": "A dataset as stored (normalized JSONL), or a job's metrics as CSV"},
                       **errors(404, model=OpenAIError)})
async def file_content(file_id: str, services: ServicesDep, principal: PrincipalDep):
    """The file's content."""
    content = openai_files.file_content(services, principal, file_id)
    if content.path is not None:
        return FileResponse(content.path, media_type=content.media_type, filename=content.filename)
    return Response(content.text, media_type=content.media_type)


@router.delete("/v1/files/{file_id}", response_model=FileDeleted,
               responses=errors(400, 404, 409, 503, model=OpenAIError))
async def delete_file(file_id: str, services: ServicesDep, principal: PrincipalDep):
    """Delete a file (409 while an unfinished job trains or evaluates on it)."""
    return await openai_files.delete_file(services, principal, file_id)
