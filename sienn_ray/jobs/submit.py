"""Turning a start-finetuning request into a queued job: validate everything first.

Shared by the HTTP API and the CLI, so both accept exactly the same requests
and refuse bad ones with the same errors before anything is stored.
"""

from __future__ import annotations

from datetime import timedelta

from ..errors import BadRequest
from ..models.resolve import resolve_model
from ..schemas.common import format_duration, new_id, utcnow
from ..schemas.datasets import DatasetRecord
from ..schemas.jobs import JobRecord, StartFinetuningRequest


def past_throughput(jobs: list[JobRecord], model_name: str, num_workers: int) -> list[float]:
    """Tokens/s measured by completed jobs of the same model and worker count."""
    return [j.metrics.tokens_per_second for j in jobs
            if j.model_name == model_name and j.config.num_workers == num_workers and j.metrics.tokens_per_second]


def build_job_record(req: StartFinetuningRequest, dataset: DatasetRecord, past_tps: list[float],
                     source: str = "api") -> JobRecord:
    """Validate the request against the model and dataset; a pending JobRecord or BadRequest."""
    from ..train.estimate import estimate_seconds, throughput
    from ..train.lora import validate_training_request

    model = resolve_model(req.model_name)
    problems = validate_training_request(model.path, req.config)
    if dataset.total_samples < 1:
        problems.append(f"Dataset {dataset.dataset_id} has no usable rows")
    if problems:
        raise BadRequest("Invalid training request: " + "; ".join(problems), errors=problems)
    tokens_per_second = throughput(model.path, past_tps, num_workers=req.config.num_workers)
    seconds = estimate_seconds(dataset.total_tokens_estimate, req.config.num_epochs, tokens_per_second)
    now = utcnow()
    return JobRecord(
        job_id=new_id("job"),
        model_name=model.name,
        model_path=model.path,
        dataset_id=dataset.dataset_id,
        config=req.config,
        source=source,
        total_epochs=req.config.num_epochs,
        created_at=now,
        updated_at=now,
        estimated_seconds=seconds,
        estimated_completion=now + timedelta(seconds=seconds),
    )


def queued_message(rec: JobRecord) -> str:
    return f"Fine-tuning job queued successfully (about {format_duration(rec.estimated_seconds or 0)})"
