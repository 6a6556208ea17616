"""OpenAI's fine-tuning jobs API (/v1/fine_tuning/jobs): each job is one of our jobs. Errors in OpenAI's shape."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from ...errors import BadRequest
from ...schemas.openai_jobs import (
    CreateFineTuningJobRequest, FineTuningJob, FineTuningJobCheckpointList, FineTuningJobEventList,
    FineTuningJobList,
)
from ...services import openai_fine_tuning as fine_tuning
from ..deps import PrincipalDep, ServicesDep
from ..openai_errors import OpenAIErrors
from ..openapi import OpenAIError, errors

router = APIRouter(tags=["openai fine-tuning"], route_class=OpenAIErrors)

_METADATA_DOC = {"parameters": [{
    "name": "metadata", "in": "query", "required": False, "style": "deepObject", "explode": True,
    "schema": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 512}, "maxProperties": 16},
    "description": "Only jobs whose metadata holds every pair: metadata[k]=v (metadata=null: jobs without any)",
}]}
MAX_METADATA_PAIRS, MAX_METADATA_VALUE = 16, 512


def _after(pattern: str):
    return Query(None, pattern=pattern, description="The last id of the page before")


def _metadata_filter(request: Request) -> tuple[dict[str, str], bool]:
    """``metadata[k]=v`` pairs of the query string, and whether it asked for ``metadata=null``."""
    given = [(key[len("metadata["):-1], value) for key, value in request.query_params.multi_items()
             if key.startswith("metadata[") and key.endswith("]")]
    pairs = dict(given)
    plain = request.query_params.get("metadata")
    problems = []
    if plain is not None and plain != "null":
        problems.append("metadata: use metadata[key]=value pairs, or metadata=null for jobs without metadata")
    if len(given) > MAX_METADATA_PAIRS:
        problems.append(f"metadata: at most {MAX_METADATA_PAIRS} pairs")
    if len(pairs) < len(given) or any("[" in key or "]" in key for key in pairs):
        problems.append("metadata: each key once, and no brackets inside a key")
    problems += [f"metadata[{key}]: values are at most {MAX_METADATA_VALUE} characters"
                 for key, value in pairs.items() if len(value) > MAX_METADATA_VALUE]
    if problems:
        raise BadRequest("; ".join(problems), errors=problems, param="metadata")
    return pairs, plain == "null"


@router.post("/v1/fine_tuning/jobs", response_model=FineTuningJob, responses=errors(400, 404, 503, model=OpenAIError))
async def create_job(req: CreateFineTuningJobRequest, services: ServicesDep, principal: PrincipalDep):
    """Create a fine-tuning job: "auto" hyperparameters are resolved and recorded, the job is queued."""
    return await fine_tuning.create(services, principal, req)


@router.get("/v1/fine_tuning/jobs", response_model=FineTuningJobList, openapi_extra=_METADATA_DOC,
            responses=errors(400, 404, model=OpenAIError))
async def list_jobs(request: Request, services: ServicesDep, principal: PrincipalDep,
                    after: str | None = _after(r"^ftjob-[0-9a-f]{8,64}$"), limit: int = Query(20, ge=1, le=100)):
    """Fine-tuning jobs, newest first."""
    metadata, without = _metadata_filter(request)
    return fine_tuning.list_jobs(services, principal, after, limit, metadata, without)


@router.get("/v1/fine_tuning/jobs/{fine_tuning_job_id}", response_model=FineTuningJob,
            responses=errors(404, model=OpenAIError))
async def retrieve_job(fine_tuning_job_id: str, services: ServicesDep, principal: PrincipalDep):
    """One fine-tuning job."""
    return fine_tuning.get(services, principal, fine_tuning_job_id)


@router.post("/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel", response_model=FineTuningJob,
             responses=errors(404, 409, 503, model=OpenAIError))
async def cancel_job(fine_tuning_job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Cancel a job (a training one stops at a checkpoint, which is kept)."""
    return await fine_tuning.cancel(services, principal, fine_tuning_job_id)


@router.post("/v1/fine_tuning/jobs/{fine_tuning_job_id}/pause", response_model=FineTuningJob,
             responses=errors(404, 409, 503, model=OpenAIError))
async def pause_job(fine_tuning_job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Pause a job at a checkpoint, freeing its resources; answers once it is paused."""
    return await fine_tuning.pause(services, principal, fine_tuning_job_id)


@router.post("/v1/fine_tuning/jobs/{fine_tuning_job_id}/resume", response_model=FineTuningJob,
             responses=errors(404, 409, 503, model=OpenAIError))
async def resume_job(fine_tuning_job_id: str, services: ServicesDep, principal: PrincipalDep):
    """Resume a paused job from its pause checkpoint (it queues again)."""
    return await fine_tuning.resume(services, principal, fine_tuning_job_id)


@router.get("/v1/fine_tuning/jobs/{fine_tuning_job_id}/events", response_model=FineTuningJobEventList,
            responses=errors(400, 404, model=OpenAIError))
async def list_events(fine_tuning_job_id: str, services: ServicesDep, principal: PrincipalDep,
                      after: str | None = _after(r"^ftevent-[0-9]{1,18}$"), limit: int = Query(20, ge=1, le=1000)):
    """The job's events, newest first."""
    return fine_tuning.events(services, principal, fine_tuning_job_id, after, limit)


@router.get("/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", response_model=FineTuningJobCheckpointList,
            responses=errors(400, 404, model=OpenAIError))
async def list_checkpoints(fine_tuning_job_id: str, services: ServicesDep, principal: PrincipalDep,
                           after: str | None = _after(r"^ftckpt_[0-9a-f]{8,64}_[0-9]{1,12}$"),
                           limit: int = Query(10, ge=1, le=100)):
    """The job's checkpoints still stored, newest first; each is servable as a model on /v1."""
    return fine_tuning.checkpoints(services, principal, fine_tuning_job_id, after, limit)
