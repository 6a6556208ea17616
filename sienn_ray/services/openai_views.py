"""Our records as OpenAI's objects: a job as ``fine_tuning.job``, an event, a checkpoint, a dataset as a file.

Status mapping (ours -> OpenAI's):

    pending, phase queued     -> queued
    pending, phase launching  -> validating_files (the runner's workers read and tokenize the files)
    running (stopping too)    -> running
    paused                    -> paused
    completed                 -> succeeded
    failed                    -> failed
    cancelled                 -> cancelled
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..schemas.datasets import DatasetRecord
from ..schemas.jobs import JobEvent, JobPhase, JobRecord, JobStatus
from ..schemas.openai_files import FileObject
from ..schemas.openai_jobs import (
    CheckpointMetrics, FineTuningJob, FineTuningJobCheckpoint, FineTuningJobEvent, JobError, JobHyperparameters,
    MethodOut, OpenAIJobStatus, SupervisedMethodOut,
)
from . import openai_ids as ids
from .checkpoints import Checkpoint

_STATUS: dict[JobStatus, OpenAIJobStatus] = {
    JobStatus.RUNNING: "running", JobStatus.PAUSED: "paused", JobStatus.COMPLETED: "succeeded",
    JobStatus.FAILED: "failed", JobStatus.CANCELLED: "cancelled",
}


def unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def job_status(rec: JobRecord) -> OpenAIJobStatus:
    if rec.status == JobStatus.PENDING:
        return "queued" if rec.phase == JobPhase.QUEUED else "validating_files"
    # A status of ours OpenAI has no word for is an unfinished job at work (e.g. evaluating after training).
    return _STATUS.get(rec.status, "running")


def hyperparameters(rec: JobRecord, reference_rate: float | None) -> JobHyperparameters:
    """The numbers the job trains with; a job from ``/api`` gets its multiplier from its learning rate."""
    if rec.openai is not None:
        resolved = rec.openai.resolved
        return JobHyperparameters(n_epochs=resolved.n_epochs, batch_size=resolved.batch_size,
                                  learning_rate_multiplier=resolved.learning_rate_multiplier)
    multiplier = round(rec.config.learning_rate / reference_rate, 6) if reference_rate else "auto"
    return JobHyperparameters(n_epochs=rec.config.num_epochs, batch_size=rec.config.batch_size,
                              learning_rate_multiplier=multiplier)


def fine_tuning_job(rec: JobRecord, reference_rate: float | None = None) -> FineTuningJob:
    """``rec`` as OpenAI's job object (``reference_rate``: the base's, for jobs created through ``/api``)."""
    status = job_status(rec)
    succeeded = rec.status == JobStatus.COMPLETED
    error = None
    if rec.status == JobStatus.FAILED:
        error = JobError(code=rec.error_code or "TRAINING_FAILED", message=rec.message)
    hparams = hyperparameters(rec, reference_rate)
    running = status in ("running", "validating_files")
    return FineTuningJob(
        id=ids.fine_tuning_job_id(rec.job_id), created_at=unix(rec.created_at), error=error,
        fine_tuned_model=ids.fine_tuned_model(rec) if succeeded else None,
        finished_at=unix(rec.completed_at) if rec.status.is_terminal else None,
        hyperparameters=hparams, method=MethodOut(supervised=SupervisedMethodOut(hyperparameters=hparams)),
        model=rec.model_name, organization_id=rec.tenant,
        result_files=[ids.results_file_id(rec.job_id)] if succeeded else [], seed=rec.config.seed, status=status,
        trained_tokens=rec.trained_tokens if succeeded else None, training_file=ids.file_id(rec.dataset_id),
        validation_file=ids.file_id(rec.eval_dataset_id) if rec.eval_dataset_id else None,
        estimated_finish=unix(rec.estimated_completion) if running else None,
        metadata=rec.openai.metadata if rec.openai else None,
        user_provided_suffix=rec.openai.suffix if rec.openai else None,
    )


def file_object(rec: DatasetRecord) -> FileObject:
    return FileObject(id=ids.file_id(rec.dataset_id), bytes=rec.size_bytes, created_at=unix(rec.uploaded_at),
                      filename=rec.filename, purpose="fine-tune")


def results_file_object(job: JobRecord, size: int) -> FileObject:
    return FileObject(id=ids.results_file_id(job.job_id), bytes=size, created_at=unix(job.completed_at),
                      filename="step_metrics.csv", purpose="fine-tune-results")


def checkpoint_object(job: JobRecord, checkpoint: Checkpoint) -> FineTuningJobCheckpoint:
    # The whole validation file is evaluated, so the "full" figures are the same ones.
    metrics = CheckpointMetrics(step=checkpoint.step, train_loss=checkpoint.train_loss,
                                valid_loss=checkpoint.eval_loss, full_valid_loss=checkpoint.eval_loss,
                                valid_mean_token_accuracy=checkpoint.eval_token_accuracy,
                                full_valid_mean_token_accuracy=checkpoint.eval_token_accuracy)
    return FineTuningJobCheckpoint(
        id=ids.checkpoint_id(job.job_id, checkpoint.step), created_at=unix(checkpoint.created_at),
        fine_tuned_model_checkpoint=ids.checkpoint_model(job, checkpoint.step),
        fine_tuning_job_id=ids.fine_tuning_job_id(job.job_id), metrics=metrics, step_number=checkpoint.step)


# Events that carry training figures are OpenAI's "metrics" events; the rest are messages.
_METRICS = ("epoch_end", "evaluation", "checkpoint")
_LEVEL = {"failed": "error", "lease_expired": "warn", "truncation": "warn"}


def _message(type: str, data: dict) -> str:
    step = data.get("step")
    losses = ", ".join(f"{label}={data[key]:.4f}" for key, label in
                       (("train_loss", "training loss"), ("eval_loss", "validation loss"),
                        ("eval_token_accuracy", "validation token accuracy"))
                       if isinstance(data.get(key), (int, float)))
    text = {
        "created": "Created fine-tuning job", "launched": f"Launching (attempt {data.get('attempt')})",
        "started": "Fine-tuning job started", "paused": f"Paused at step {step}",
        "requeued": f"Resumed: queued to continue from step {step}", "resumed": f"Training resumed at step {step}",
        "stop_requested": f"{str(data.get('kind', 'stop')).capitalize()} requested at step {step}",
        "completed": "The job has successfully completed", "cancelled": "Fine-tuning job cancelled",
        "failed": f"Fine-tuning job failed: {data.get('message', '')}",
        "epoch_end": f"Epoch {data.get('epoch')} done at step {step}", "evaluation": f"Evaluated at step {step}",
        "checkpoint": f"Checkpoint created at step {step}",
        "lease_expired": f"The job's runner was lost at step {step}; relaunching",
        "truncation": f"{data.get('truncated')} example(s) longer than max_length were truncated",
    }.get(type, type.replace("_", " ").capitalize())
    return f"{text}: {losses}" if losses else text


def job_event(event: JobEvent) -> FineTuningJobEvent:
    data: dict[str, Any] = dict(event.data) | {"event": event.type}
    if event.type in _METRICS:
        data |= {"valid_loss": event.data.get("eval_loss"),
                 "valid_mean_token_accuracy": event.data.get("eval_token_accuracy")}
    return FineTuningJobEvent(id=ids.event_id(event.seq), created_at=unix(event.timestamp),
                              level=_LEVEL.get(event.type, "info"), message=_message(event.type, event.data),
                              type="metrics" if event.type in _METRICS else "message", data=data)
