"""Submit: validate a start-finetuning request against its model and dataset, estimate it, queue it.

Shared by the HTTP API and the CLI, so both accept exactly the same requests
and refuse bad ones with the same errors before anything is stored.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ..auth.quotas import capped_priority, check_job
from ..errors import BadRequest
from ..models.resolve import resolve_model
from ..schemas.common import format_duration, new_id, utcnow
from ..schemas.datasets import DatasetRecord
from ..schemas.jobs import JobRecord, JobStatus, StartFinetuningRequest
from ..schemas.openai_jobs import OpenAIJobSpec
from ..train.estimate import estimate_seconds
from ..train.lora import validate_training_request
from .context import Services
from .estimates import job_throughput, past_throughput
from .lookup import find_dataset
from .principal import Principal

# Completed jobs looked at for a measured throughput.
HISTORY_WINDOW = 200


async def submit(services: Services, principal: Principal, req: StartFinetuningRequest,
                 source: str = "api", openai: OpenAIJobSpec | None = None) -> JobRecord:
    """Queue a job for the principal's tenant; 400/404 before anything is stored if it is invalid, 429 if it
    is over the key's quotas (CPUs/GPUs per job here, queued jobs in the registry); priority is capped.
    ``openai``: what the OpenAI face was asked, kept on the job."""
    dataset = find_dataset(services, principal, req.dataset_id)
    eval_dataset = find_dataset(services, principal, req.eval_dataset_id) if req.eval_dataset_id else None
    quota = principal.quota
    check_job(quota, req.config)
    completed, _ = services.reader.list_jobs(status=JobStatus.COMPLETED.value, limit=HISTORY_WINDOW)
    rec = await asyncio.to_thread(build_job_record, req, dataset, completed, principal.tenant, source, eval_dataset)
    rec.openai = openai
    if quota is not None:
        rec.running_quota = quota.running_jobs
        if rec.priority > quota.max_priority:
            rec.priority = capped_priority(quota, rec.priority)
            rec.message += f"; priority capped at {rec.priority} by the API key"
    rec = await services.registry.submit_job(rec, quota.queued_jobs if quota else None)
    if rec.estimate_source == "static":
        services.launch_calibration(rec.model_path)
    return rec


def build_job_record(req: StartFinetuningRequest, dataset: DatasetRecord, completed: list[JobRecord],
                     tenant: str, source: str = "api", eval_dataset: DatasetRecord | None = None) -> JobRecord:
    """Validate the request against the model and dataset; a new JobRecord or BadRequest listing every problem."""
    model = resolve_model(req.model_name)
    problems = validate_training_request(model.path, req.config)
    if dataset.total_samples < 1:
        problems.append(f"Dataset {dataset.dataset_id} has no usable rows")
    if eval_dataset is not None and eval_dataset.kind != dataset.kind:
        problems.append(f"eval_dataset_id: dataset {eval_dataset.dataset_id} holds {eval_dataset.kind} records, "
                        f"the training dataset {dataset.kind} records; they are rendered with one template")
    if problems:
        raise BadRequest("Invalid training request: " + "; ".join(problems), errors=problems)
    past = past_throughput(completed, model.name, req.config.num_workers)
    tokens_per_second, source_of_estimate = job_throughput(model.path, model.num_parameters, req.config, past)
    seconds = estimate_seconds(dataset.total_tokens_estimate, req.config.num_epochs, tokens_per_second)
    now = utcnow()
    rec = JobRecord(
        job_id=new_id("job"), tenant=tenant, priority=req.priority, model_name=model.name, model_path=model.path,
        dataset_id=dataset.dataset_id, eval_dataset_id=eval_dataset.dataset_id if eval_dataset else None,
        config=req.config, source=source, total_epochs=req.config.num_epochs,
        created_at=now, updated_at=now, estimated_seconds=seconds, estimate_source=source_of_estimate,
        estimated_completion=now + timedelta(seconds=seconds),
    )
    rec.message = f"Fine-tuning job queued successfully (about {format_duration(seconds)})"
    return rec
