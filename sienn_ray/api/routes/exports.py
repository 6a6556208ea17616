"""Model export: start an export, follow it, download it as a streamed ZIP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ... import paths
from ...errors import (
    ExportFailed, ExportInProgress, JobStateConflict, ModelNotFound,
)
from ...export import task as export_task
from ...export.run import ExportTask, estimate_seconds, export_formats, export_problems, resolve_quantization
from ...export.zipstream import zip_stream
from ...schemas.common import format_duration, new_id, utcnow
from ...schemas.exports import ExportFormats, ExportList, ExportRecord, ExportRequest, ExportResponse, Quantization
from ...schemas.jobs import JobStatus
from ...settings import get_settings
from ..deps import ServicesDep, known_id

router = APIRouter(tags=["export"])

# A processing export whose task stopped reporting for this long is considered dead and redone.
STALE_AFTER = timedelta(minutes=10)


@router.get("/api/export-formats", response_model=ExportFormats)
async def list_export_formats():
    """Supported export formats and their quantization levels."""
    return export_formats()


@router.post("/api/export-model/{job_id}", response_model=ExportResponse)
async def export_model(job_id: str, req: ExportRequest, services: ServicesDep):
    """Start exporting a completed job (or return the matching export already done or under way)."""
    job_id = known_id(job_id, "job_id")
    quantization = resolve_quantization(req.format, req.quantization)
    job = await services.registry.call("get_job", job_id)
    if job.status != JobStatus.COMPLETED:
        raise JobStateConflict(f"Job {job_id} is {job.status.value}; only completed jobs can be exported",
                               job_status=job.status.value)
    existing = await services.registry.call("find_export", job_id, req.format, quantization)
    if existing is not None and await run_in_threadpool(_reusable, existing):
        return _response(existing)
    adapter_dir = Path(job.adapter_path) if job.adapter_path else paths.job_adapter(job_id)
    problems = await run_in_threadpool(export_problems, req.format, Path(job.model_path), adapter_dir)
    if problems:
        raise ExportFailed(f"Cannot export job {job_id} as {req.format}: " + "; ".join(problems), errors=problems)
    dataset = await _dataset(services, job.dataset_id)
    seconds = await run_in_threadpool(estimate_seconds, Path(job.model_path), req.format, quantization)
    now = utcnow()
    rec = ExportRecord(
        export_id=new_id("exp"), job_id=job_id, format=req.format, quantization=quantization,
        download_url=_download_url(job_id, req.format, quantization), estimated_time=format_duration(seconds),
        created_at=now, updated_at=now,
    )
    rec = await services.registry.call("put_export", rec)
    task = ExportTask(
        export_id=rec.export_id, job_id=job_id, format=req.format, quantization=quantization,
        base_dir=str(job.model_path), adapter_dir=str(adapter_dir),
        out_dir=str(paths.export_dir(job_id, req.format, quantization)),
        job=job.model_dump(mode="json"), dataset=dataset,
    )
    try:
        await run_in_threadpool(export_task.launch_export, task, get_settings().ray_namespace)
    except Exception as err:
        await services.registry.call("update_export", rec.export_id, {
            "status": "failed", "message": f"Could not start the export: {err}", "error_code": "EXPORT_FAILED"})
        raise
    return _response(rec)


@router.get("/api/download-model/{job_id}")
async def download_model(
    job_id: str,
    services: ServicesDep,
    format: Literal["pytorch", "gguf", "ollama"] = Query("pytorch", description="pytorch | gguf | ollama"),
    quantization: Quantization | None = Query(None, description="For gguf and ollama (default q8_0)"),
):
    """The export as a ZIP archive, streamed."""
    job_id = known_id(job_id, "job_id")
    quantization = resolve_quantization(format, quantization)
    await services.registry.call("get_job", job_id)
    rec = await services.registry.call("find_export", job_id, format, quantization)
    label = f"{format} ({quantization})" if quantization else format
    if rec is None:
        raise ModelNotFound(f"No {label} export of job {job_id}; start one with POST /api/export-model/{job_id}")
    if rec.status == "processing":
        raise ExportInProgress(f"The {label} export of job {job_id} is still processing: {rec.message}",
                               export_id=rec.export_id)
    if rec.status == "failed":
        raise ModelNotFound(f"The {label} export of job {job_id} failed ({rec.message}); export it again")
    folder = paths.export_dir(job_id, format, quantization)
    stem = f"{job_id}-{folder.name}"
    files = [(folder / f.name, f"{stem}/{f.name}") for f in rec.files]
    if not await run_in_threadpool(_reusable, rec):
        raise ModelNotFound(f"The files of the {label} export of job {job_id} are gone; export it again")
    return StreamingResponse(
        zip_stream(files), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{stem}.zip"'},
    )


@router.get("/api/exports/{export_id}", response_model=ExportRecord)
async def get_export(export_id: str, services: ServicesDep):
    """One export: status, message (the reason when failed), files with sizes and sha256."""
    return await services.registry.call("get_export", known_id(export_id, "export_id"))


@router.get("/api/jobs/{job_id}/exports", response_model=ExportList)
async def list_job_exports(job_id: str, services: ServicesDep):
    """Every export of one job, newest first."""
    job_id = known_id(job_id, "job_id")
    await services.registry.call("get_job", job_id)
    return ExportList(job_id=job_id, exports=await services.registry.call("list_exports", job_id))


def _reusable(rec: ExportRecord) -> bool:
    """A completed export whose files are all there, or one still being worked on."""
    if rec.status == "processing":
        return utcnow() - rec.updated_at < STALE_AFTER
    if rec.status != "completed" or not rec.files:
        return False
    folder = paths.export_dir(rec.job_id, rec.format, rec.quantization)
    return all((folder / f.name).is_file() for f in rec.files)


async def _dataset(services, dataset_id: str) -> dict | None:
    """The dataset's record for the model card; an export does not need the dataset to still exist."""
    try:
        return (await services.registry.call("get_dataset", dataset_id)).model_dump(mode="json")
    except Exception:  # noqa: BLE001 - deleted or unreadable: the card just says less
        return None


def _download_url(job_id: str, fmt: str, quantization: str | None) -> str:
    url = f"/api/download-model/{job_id}?format={fmt}"
    return url + (f"&quantization={quantization}" if quantization else "")


def _response(rec: ExportRecord) -> ExportResponse:
    return ExportResponse(**rec.model_dump(include=set(ExportResponse.model_fields)))
