"""Fine-tuning jobs: start, status, list, cancel, events and loss history."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ...jobs import launcher
from ...jobs.submit import build_job_record, past_throughput, queued_message
from ...schemas.common import format_duration
from ...schemas.jobs import (
    JobEvents, JobList, JobRecord, JobStatus, JobSummary, LossHistory, StartFinetuningRequest,
    StartFinetuningResponse,
)
from ...settings import get_settings
from ..deps import ServicesDep, known_id

router = APIRouter(tags=["fine-tuning"])


@router.post("/api/start-finetuning", response_model=StartFinetuningResponse)
async def start_finetuning(req: StartFinetuningRequest, services: ServicesDep):
    """Validate the request, queue a LoRA job and start its runner; returns at once."""
    dataset = await services.registry.call("get_dataset", known_id(req.dataset_id, "dataset_id"))
    completed, _ = await services.registry.call("list_jobs", JobStatus.COMPLETED.value, 200, 0)
    measured = past_throughput(completed, req.model_name or get_settings().default_model, req.config.num_workers)
    rec = await run_in_threadpool(build_job_record, req, dataset, measured, "api")
    rec.message = queued_message(rec)
    rec = await services.registry.call("create_job", rec)
    await run_in_threadpool(launcher.launch_runner, rec.job_id, get_settings().ray_namespace)
    return StartFinetuningResponse(
        job_id=rec.job_id, status=rec.status, message=rec.message,
        estimated_time=format_duration(rec.estimated_seconds or 0),
        estimated_seconds=rec.estimated_seconds or 0, created_at=rec.created_at,
    )


@router.get("/api/training-status/{job_id}", response_model=JobRecord)
async def training_status(job_id: str, services: ServicesDep):
    """Status, progress and metrics of one job."""
    return await services.registry.call("get_job", known_id(job_id, "job_id"))


@router.get("/api/jobs", response_model=JobList)
async def list_jobs(
    services: ServicesDep,
    status: JobStatus | None = Query(None, description="pending | running | completed | failed | cancelled"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
):
    """All jobs, newest first, with an optional status filter."""
    items, total = await services.registry.call("list_jobs", status.value if status else None, limit, offset)
    jobs = [JobSummary(**j.model_dump(include=set(JobSummary.model_fields))) for j in items]
    return JobList(jobs=jobs, total=total, limit=limit, offset=offset)


@router.get("/api/jobs/{job_id}", response_model=JobRecord)
async def get_job(job_id: str, services: ServicesDep):
    """One job's full record (same as training-status)."""
    return await services.registry.call("get_job", known_id(job_id, "job_id"))


@router.post("/api/jobs/{job_id}/cancel", response_model=JobRecord)
async def cancel_job(job_id: str, services: ServicesDep):
    """Stop a pending or running job; its last checkpoint is kept."""
    return await launcher.cancel_job(services.registry, known_id(job_id, "job_id"), get_settings().ray_namespace)


@router.get("/api/jobs/{job_id}/events", response_model=JobEvents)
async def job_events(job_id: str, services: ServicesDep):
    """Lifecycle events: started, epoch ends, checkpoints, evaluation, retries, failure, completion."""
    events = await services.registry.call("list_events", known_id(job_id, "job_id"))
    return JobEvents(job_id=job_id, events=events)


@router.get("/api/jobs/{job_id}/history", response_model=LossHistory)
async def loss_history(job_id: str, services: ServicesDep):
    """Per-step train/eval loss and learning rate, for plotting."""
    points = await services.registry.call("loss_history", known_id(job_id, "job_id"))
    return LossHistory(job_id=job_id, points=points)
