"""Model export: start an export, follow it, download it as a streamed ZIP."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ...export.run import export_formats
from ...export.zipstream import zip_stream
from ...schemas.exports import ExportFormats, ExportList, ExportRecord, ExportRequest, ExportResponse, Quantization
from ...services import exports
from ..deps import PrincipalDep, ServicesDep
from ..openapi import errors

router = APIRouter(tags=["export"])


@router.get("/api/export-formats", response_model=ExportFormats)
async def list_export_formats():
    """Supported export formats and their quantization levels."""
    return export_formats()


@router.post("/api/export-model/{job_id}", response_model=ExportResponse, responses=errors(400, 404, 409, 503))
async def export_model(job_id: str, req: ExportRequest, services: ServicesDep, principal: PrincipalDep):
    """Start exporting a completed job (or return the matching export already done or under way)."""
    rec = await exports.start_export(services, principal, job_id, req)
    return ExportResponse(**rec.model_dump(include=set(ExportResponse.model_fields)))


@router.get("/api/download-model/{job_id}",
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The export's files as a ZIP archive, streamed"},
                       **errors(400, 404, 409)})
async def download_model(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    format: Literal["pytorch", "gguf", "ollama"] = Query("pytorch", description="pytorch | gguf | ollama"),
    quantization: Quantization | None = Query(None, description="For gguf and ollama (default q8_0)"),
):
    """The export as a ZIP archive, streamed."""
    found = await exports.download(services, principal, job_id, format, quantization)
    return StreamingResponse(zip_stream(found.files), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{found.stem}.zip"'})


@router.get("/api/exports/{export_id}", response_model=ExportRecord, responses=errors(404))
async def get_export(export_id: str, services: ServicesDep, principal: PrincipalDep):
    """One export: status, message (the reason when failed), files with sizes and sha256."""
    return exports.get_export(services, principal, export_id)


@router.get("/api/jobs/{job_id}/exports", response_model=ExportList, responses=errors(404))
async def list_job_exports(job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Every export of one job, newest first."""
    return exports.list_exports(services, principal, job_id)
