"""A job's state changes as plain functions on its record (no store, no Ray): the registry's rules.

  queued ──launch──> launching ──first report──> training ──fit returns──> [evaluating] ──> completed / failed
     ^                   │                           │
     │                   └──── stop (cancel/pause) ──┴──> stopping ──> cancelled / paused ──resume──┐
     └──────────────────────────── lease expired (relaunch, counted) / resume ─────────────────────┘
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..schemas.jobs import JobPhase, JobRecord, JobStatus, Lease, RunOutcome, StopKind, TrainingMetrics

# Fields a training worker may set through report_progress.
PROGRESS_FIELDS = {"progress", "current_epoch", "total_epochs", "step", "total_steps", "message",
                   "estimated_completion", "last_checkpoint", "truncated_examples", "trained_tokens"}
# Phases in which a runner holds the job's lease.
HELD = (JobPhase.LAUNCHING, JobPhase.TRAINING, JobPhase.STOPPING, JobPhase.EVALUATING)


def grant_lease(rec: JobRecord, holder: str, now: datetime, ttl_s: float) -> Lease:
    """A new lease with the next fencing token; every launch counts as an attempt."""
    rec.last_token += 1
    rec.attempts += 1
    rec.lease = Lease(token=rec.last_token, holder=holder, granted_at=now, expires_at=now + timedelta(seconds=ttl_s))
    rec.status, rec.phase = JobStatus.PENDING, JobPhase.LAUNCHING
    return rec.lease


def holds_lease(rec: JobRecord, token: int | None) -> bool:
    """Whether ``token`` is the job's current lease (a stale or missing token is not)."""
    return rec.lease is not None and token is not None and rec.lease.token == token


def renew_lease(rec: JobRecord, now: datetime, ttl_s: float) -> None:
    rec.lease.heartbeat_at = now
    rec.lease.expires_at = max(rec.lease.expires_at, now + timedelta(seconds=ttl_s))


def lease_expired(rec: JobRecord, now: datetime) -> bool:
    return rec.phase in HELD and (rec.lease is None or rec.lease.expires_at <= now)


def requeue(rec: JobRecord, message: str) -> None:
    """Back into the queue, holding nothing (the store gives it its place)."""
    rec.status, rec.phase, rec.lease = JobStatus.PENDING, JobPhase.QUEUED, None
    rec.message = message


def apply_progress(rec: JobRecord, update: dict, now: datetime) -> bool:
    """Apply rank 0's report; True if it is the job's first (the workers got their resources)."""
    started = rec.status == JobStatus.PENDING
    if started:
        rec.status = JobStatus.RUNNING
        rec.phase = JobPhase.TRAINING if rec.phase == JobPhase.LAUNCHING else rec.phase
        rec.started_at = rec.started_at or now
    for key, value in update.items():
        if key in PROGRESS_FIELDS and value is not None:
            # Validated as the field's type: the update crosses from the trainer as plain values (the time
            # left as ISO text), and a bare setattr would keep a str where the record holds a datetime.
            rec.__pydantic_validator__.validate_assignment(rec, key, value)
    if update.get("metrics"):
        rec.metrics = _merged(rec.metrics, update["metrics"])
    if update.get("estimated_completion") is None and rec.total_steps and rec.step and rec.started_at:
        elapsed = (now - rec.started_at).total_seconds()
        rec.estimated_completion = now + timedelta(seconds=elapsed / rec.step * max(rec.total_steps - rec.step, 0))
    return started


def request_stop(rec: JobRecord, kind: StopKind, now: datetime, grace_s: float) -> None:
    """A training job stops at its next checkpoint; an evaluating one (trained already) skips the rest
    of its evaluation and completes."""
    rec.stop_request = kind
    rec.stop_deadline = now + timedelta(seconds=grace_s)
    if rec.phase != JobPhase.EVALUATING:
        rec.phase = JobPhase.STOPPING


def begin_evaluation(rec: JobRecord, adapter_path: str) -> None:
    """Training is done and its adapter written; the comparison with the base runs next."""
    rec.phase, rec.adapter_path = JobPhase.EVALUATING, adapter_path
    rec.message = "Trained; evaluating against the base model"


def pause(rec: JobRecord, message: str) -> None:
    rec.status, rec.phase, rec.lease = JobStatus.PAUSED, JobPhase.PAUSED, None
    rec.stop_request = rec.stop_deadline = None
    rec.message = message


def resume(rec: JobRecord) -> None:
    """A paused job goes back to the queue with a fresh launch budget."""
    requeue(rec, "Resumed; waiting in the queue")
    rec.attempts = 0


def finish(rec: JobRecord, status: JobStatus, message: str, now: datetime, *, error_code: str | None = None,
           adapter_path: str | None = None, metrics: dict | None = None) -> None:
    """Terminal. Progress, step and epoch stay what the workers really reached."""
    rec.status, rec.phase, rec.lease = status, JobPhase.DONE, None
    rec.stop_request = rec.stop_deadline = None
    rec.message, rec.error_code, rec.completed_at = message, error_code, now
    if adapter_path is not None:
        rec.adapter_path = adapter_path
    if metrics:
        rec.metrics = _merged(rec.metrics, metrics)


def settle_position(rec: JobRecord, outcome: RunOutcome) -> None:
    """Where the run really stopped, from the trainer's own result (its last reports may still be
    on their way, and arrive after the job is finished, when they no longer count)."""
    if outcome.step is not None:
        rec.step = outcome.step
    if outcome.epoch is not None:
        rec.current_epoch = min(outcome.epoch, rec.total_epochs)
    if rec.total_steps:
        rec.progress = round(100.0 * rec.step / rec.total_steps, 2)


def outcome_status(rec: JobRecord, outcome: RunOutcome) -> tuple[JobStatus, str, str | None]:
    """The status a finished run gives its job: what was asked (cancel/pause) decides a stopped run.
    A job that reached its evaluation is trained: it completes whatever happened to the evaluation."""
    if rec.phase == JobPhase.EVALUATING and outcome.result == "finished":
        return JobStatus.COMPLETED, _with_evaluation(outcome.message or "Training completed", outcome), None
    if rec.stop_request == "cancel":
        kept = f"; last checkpoint kept at {rec.last_checkpoint}" if rec.last_checkpoint else ""
        return JobStatus.CANCELLED, "Cancelled by user" + kept, None
    if rec.stop_request == "pause" and outcome.result != "failed":
        return JobStatus.PAUSED, f"Paused at step {rec.step}; resume continues from there", None
    if outcome.result == "failed":
        return JobStatus.FAILED, outcome.message or "Training failed", outcome.error_code or "TRAINING_FAILED"
    if outcome.result == "stopped":
        return JobStatus.FAILED, "Training stopped without being asked to", "TRAINING_FAILED"
    return JobStatus.COMPLETED, outcome.message or "Training completed", None


def _with_evaluation(message: str, outcome: RunOutcome) -> str:
    evaluation = outcome.evaluation
    if evaluation is None:
        return message
    if evaluation.status == "failed":
        return f"{message}; evaluation failed: {evaluation.error}"
    return f"{message}; evaluated against the base on {evaluation.rows_used} held-out rows"


def _merged(current: TrainingMetrics, update: dict) -> TrainingMetrics:
    return TrainingMetrics.model_validate(current.model_dump() | {k: v for k, v in update.items() if v is not None})
