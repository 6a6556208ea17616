"""Fine-tuning jobs: start, status, list, cancel, pause, resume, events and loss history."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from ...schemas.common import format_duration
from ...schemas.jobs import (
    JobEvents,
    JobList,
    JobRecord,
    JobStatus,
    LossHistory,
    StartFinetuningRequest,
    StartFinetuningResponse,
)
from ...services import control, jobs, submit
from ..deps import MAX_OFFSET, PrincipalDep, ServicesDep, current_services, principal_of
from ..openapi import errors

router = APIRouter(tags=["fine-tuning"])
# The status poll, every client's most frequent request, in a router of its own that the app includes
# before all others (api/app.py).
polled_router = APIRouter(tags=["fine-tuning"])


@router.post("/api/start-finetuning", response_model=StartFinetuningResponse, responses=errors(400, 404, 503))
async def start_finetuning(req: StartFinetuningRequest, services: ServicesDep, principal: PrincipalDep):
    """Validate the request and queue a LoRA job; returns at once."""
    rec = await submit.submit(services, principal, req)
    return StartFinetuningResponse(
        job_id=rec.job_id, status=rec.status, phase=rec.phase, queue_position=rec.queue_position,
        message=rec.message, estimated_time=format_duration(rec.estimated_seconds or 0),
        estimated_seconds=rec.estimated_seconds or 0, estimate_source=rec.estimate_source or "static",
        created_at=rec.created_at,
    )


# The polled route takes its services and principal itself, not through Depends: FastAPI's dependency
# solving was the largest cost left in a status poll in a Serve replica (bench/api_load.py, py-spy).
@polled_router.get("/api/training-status/{job_id}", response_model=JobRecord, responses=errors(404))
async def training_status(job_id: str, request: Request):
    """Status, phase, queue position, progress and metrics of one job."""
    return _rendered(jobs.job_json(current_services(), principal_of(request), job_id))


@router.get("/api/jobs", response_model=JobList, responses=errors(400))
async def list_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    status: JobStatus | None = Query(None, description="pending | running | paused | completed | failed | cancelled"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
):
    """All jobs, newest first, with an optional status filter."""
    return jobs.list_jobs(services, principal, status, limit, offset)


@router.get("/api/jobs/{job_id}", response_model=JobRecord, responses=errors(404))
async def get_job(job_id: str, request: Request):
    """One job's full record (same as training-status)."""
    return await training_status(job_id, request)


@router.post("/api/jobs/{job_id}/cancel", response_model=JobRecord, responses=errors(404, 409, 503))
async def cancel_job(job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Stop a queued, running or paused job for good; its last checkpoint is kept."""
    return await control.cancel(services, principal, job_id)


@router.post("/api/jobs/{job_id}/pause", response_model=JobRecord, responses=errors(404, 409, 503))
async def pause_job(job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Stop a job at a checkpoint and free its resources (status ``paused``)."""
    return await control.pause(services, principal, job_id)


@router.post("/api/jobs/{job_id}/resume", response_model=JobRecord, responses=errors(404, 409, 503))
async def resume_job(job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Put a paused job back in the queue; training continues from its pause checkpoint."""
    return await control.resume(services, principal, job_id)


@router.get("/api/jobs/{job_id}/events", response_model=JobEvents, responses=errors(400, 404))
async def job_events(job_id: str, services: ServicesDep, principal: PrincipalDep,
                     after: int = Query(0, ge=0, le=MAX_OFFSET, description="Only events with a higher seq"),
                     limit: int = Query(1000, ge=1, le=1000)):
    """Lifecycle events, oldest first: queued, launched, started, epoch ends, checkpoints, stops, the end."""
    return jobs.job_events(services, principal, job_id, after, limit)


@router.get("/api/jobs/{job_id}/history", response_model=LossHistory, responses=errors(404))
async def loss_history(job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Per-step train/eval loss and learning rate, for plotting."""
    return jobs.loss_history(services, principal, job_id)


def _rendered(body: bytes) -> Response:
    """A record already rendered as the route's ``response_model`` (FastAPI passes a Response through)."""
    return Response(body, media_type="application/json")
