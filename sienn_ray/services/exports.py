"""Exports: start one (or find the matching one done or under way), follow it, prepare its download."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from .. import paths
from ..auth.quotas import check_storage
from ..errors import ExportFailed, ExportInProgress, JobStateConflict, ModelNotFound
from ..export.run import QUANTIZED_FORMATS, ExportSpec, estimate_seconds, export_problems, resolve_quantization
from ..schemas.common import format_duration, new_id, utcnow
from ..schemas.exports import ExportList, ExportRecord, ExportRequest
from ..schemas.jobs import JobStatus
from .context import Services
from .lookup import find_export, find_job
from .principal import Principal

# A processing export whose task stopped reporting for this long is considered dead and redone.
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Download:
    """The files of a completed export, as (path on disk, name in the archive), and the archive's stem."""

    files: list[tuple[Path, str]]
    stem: str


async def start_export(services: Services, principal: Principal, job_id: str, req: ExportRequest) -> ExportRecord:
    """Start exporting a completed job, or return the matching export already done or under way."""
    quantization = resolve_quantization(req.format, req.quantization)
    job = find_job(services, principal, job_id)
    if job.status != JobStatus.COMPLETED:
        raise JobStateConflict(f"Job {job.job_id} is {job.status.value}; only completed jobs can be exported",
                               job_status=job.status.value)
    existing = services.reader.find_export(job.job_id, req.format, quantization)
    if existing is not None and await asyncio.to_thread(reusable, existing):
        return existing
    # An export's size is known only once written: a new one starts while the tenant is under its quota.
    check_storage(principal.quota, services.reader.storage_used(job.tenant), 1)
    adapter_dir = Path(job.adapter_path) if job.adapter_path else paths.job_adapter(job.job_id)
    problems = await asyncio.to_thread(export_problems, req.format, Path(job.model_path), adapter_dir)
    if problems:
        raise ExportFailed(f"Cannot export job {job.job_id} as {req.format}: " + "; ".join(problems), errors=problems)
    dataset = services.reader.get_dataset(job.dataset_id)  # for the model card; it may be deleted by now
    seconds = await asyncio.to_thread(estimate_seconds, Path(job.model_path), req.format, quantization)
    now = utcnow()
    rec = await services.registry.put_export(ExportRecord(
        export_id=new_id("exp"), job_id=job.job_id, tenant=job.tenant, format=req.format, quantization=quantization,
        download_url=download_url(job.job_id, req.format, quantization), estimated_time=format_duration(seconds),
        created_at=now, updated_at=now,
    ))
    task = ExportSpec(
        export_id=rec.export_id, job_id=job.job_id, format=req.format, quantization=quantization,
        base_dir=str(job.model_path), adapter_dir=str(adapter_dir),
        out_dir=str(paths.export_dir(job.job_id, req.format, quantization)),
        job=job.model_dump(mode="json"), dataset=dataset.model_dump(mode="json") if dataset else None,
    )
    try:
        await asyncio.to_thread(services.launch_export, task)
    except Exception as err:
        await services.registry.update_export(rec.export_id, {
            "status": "failed", "message": f"Could not start the export: {err}", "error_code": "EXPORT_FAILED"})
        raise
    return rec


async def download(services: Services, principal: Principal, job_id: str, fmt: str,
                   quantization: str | None) -> Download:
    """The files of the job's completed export in this format, or why there are none."""
    if fmt not in QUANTIZED_FORMATS and quantization is not None:  # such an export cannot exist
        raise ModelNotFound(f"No {fmt} export is quantized; ask for format={fmt} without a quantization")
    quantization = resolve_quantization(fmt, quantization)
    job = find_job(services, principal, job_id)
    rec = services.reader.find_export(job.job_id, fmt, quantization)
    label = f"{fmt} ({quantization})" if quantization else fmt
    if rec is None:
        raise ModelNotFound(f"No {label} export of job {job.job_id}; "
                            f"start one with POST /api/export-model/{job.job_id}")
    if rec.status == "processing":
        raise ExportInProgress(f"The {label} export of job {job.job_id} is still processing: {rec.message}",
                               export_id=rec.export_id)
    if rec.status == "failed":
        raise ModelNotFound(f"The {label} export of job {job.job_id} failed ({rec.message}); export it again")
    if not await asyncio.to_thread(reusable, rec):
        raise ModelNotFound(f"The files of the {label} export of job {job.job_id} are gone; export it again")
    folder = paths.export_dir(job.job_id, fmt, quantization)
    stem = f"{job.job_id}-{folder.name}"
    return Download([(folder / f.name, f"{stem}/{f.name}") for f in rec.files], stem)


def get_export(services: Services, principal: Principal, export_id: str) -> ExportRecord:
    return find_export(services, principal, export_id)


def list_exports(services: Services, principal: Principal, job_id: str) -> ExportList:
    job = find_job(services, principal, job_id)
    return ExportList(job_id=job.job_id, exports=services.reader.list_exports(job.job_id))


def reusable(rec: ExportRecord) -> bool:
    """A completed export whose files are all there, or one still being worked on."""
    if rec.status == "processing":
        return utcnow() - rec.updated_at < STALE_AFTER
    if rec.status != "completed" or not rec.files:
        return False
    folder = paths.export_dir(rec.job_id, rec.format, rec.quantization)
    return all((folder / f.name).is_file() for f in rec.files)


def download_url(job_id: str, fmt: str, quantization: str | None) -> str:
    url = f"/api/download-model/{job_id}?format={fmt}"
    return url + (f"&quantization={quantization}" if quantization else "")
