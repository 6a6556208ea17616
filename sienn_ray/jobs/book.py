"""The job book: every state change of jobs, datasets and exports, over the Store.

Plain Python (no Ray): the JobRegistry actor wraps one JobBook and is its only
writer. Each method persists before it returns, so an acknowledged write
survives the actor, the node or the cluster restarting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..errors import DatasetInUse, DatasetNotFound, ExportNotFound, JobNotFound, JobStateConflict
from ..schemas.common import utcnow
from ..schemas.datasets import DatasetRecord
from ..schemas.exports import ExportRecord
from ..schemas.jobs import JobEvent, JobRecord, JobStatus, LossPoint, TrainingMetrics
from ..store import Store

# Fields a training worker may set through report_progress.
_PROGRESS_FIELDS = {"progress", "current_epoch", "total_epochs", "step", "total_steps", "message",
                    "estimated_completion", "last_checkpoint", "truncated_examples"}


class JobBook:
    def __init__(self, store: Store):
        self.store = store

    # datasets
    def put_dataset(self, rec: DatasetRecord) -> DatasetRecord:
        self.store.put_dataset(rec)
        return rec

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        rec = self.store.get_dataset(dataset_id)
        if rec is None:
            raise DatasetNotFound(f"Dataset {dataset_id} not found")
        return rec

    def delete_dataset(self, dataset_id: str) -> DatasetRecord:
        rec = self.get_dataset(dataset_id)
        users = self.store.active_jobs_for_dataset(dataset_id)
        if users:
            raise DatasetInUse(f"Dataset {dataset_id} is used by active job(s): {', '.join(users)}", jobs=users)
        self.store.delete_dataset(dataset_id)
        return rec

    # jobs
    def get_job(self, job_id: str) -> JobRecord:
        rec = self.store.get_job(job_id)
        if rec is None:
            raise JobNotFound(f"Job {job_id} not found")
        return rec

    def create_job(self, rec: JobRecord) -> JobRecord:
        self.get_dataset(rec.dataset_id)
        self.store.put_job(rec)
        self.store.add_event(rec.job_id, "created", {"model_name": rec.model_name, "dataset_id": rec.dataset_id,
                                                     "source": rec.source})
        return rec

    def _save(self, rec: JobRecord) -> JobRecord:
        rec.updated_at = utcnow()
        self.store.put_job(rec)
        return rec

    def mark_waiting(self, job_id: str, message: str) -> JobRecord:
        """Pending with a reason (e.g. waiting for resources the cluster does not have now)."""
        rec = self.get_job(job_id)
        if rec.status.is_terminal:
            return rec
        rec.message = message
        return self._save(rec)

    def report_progress(self, job_id: str, update: dict) -> dict:
        """Apply a progress report from rank 0; answers whether the job should stop."""
        rec = self.get_job(job_id)
        if rec.status.is_terminal:
            return {"cancel_requested": True}
        started = rec.status == JobStatus.PENDING
        if started:  # the first report from the workers: resources were granted
            rec.status = JobStatus.RUNNING
            rec.started_at = rec.started_at or utcnow()
            rec.attempts += 1
        for key, value in update.items():
            if key in _PROGRESS_FIELDS and value is not None:
                setattr(rec, key, value)
        if update.get("metrics"):
            merged = rec.metrics.model_dump() | {k: v for k, v in update["metrics"].items() if v is not None}
            rec.metrics = TrainingMetrics.model_validate(merged)
        if update.get("estimated_completion") is None and rec.total_steps and rec.step and rec.started_at:
            rec.estimated_completion = _extrapolate(rec.started_at, rec.step, rec.total_steps)
        self._save(rec)
        if started:
            self.store.add_event(job_id, "started", {"attempt": rec.attempts})
        return {"cancel_requested": rec.cancel_requested}

    def add_event(self, job_id: str, type: str, data: dict | None = None) -> JobEvent:
        self.get_job(job_id)
        return self.store.add_event(job_id, type, data or {})

    def add_loss_point(self, job_id: str, point: dict) -> None:
        self.store.add_loss_point(job_id, LossPoint.model_validate(point))

    def finish(self, job_id: str, status: JobStatus, message: str, *, error_code: str | None = None,
               adapter_path: str | None = None, metrics: dict | None = None, event: dict | None = None) -> JobRecord:
        """Move a job to a terminal state (idempotent: a finished job stays as it is)."""
        rec = self.get_job(job_id)
        if rec.status.is_terminal:
            return rec
        rec.status = JobStatus(status)
        rec.message = message
        rec.error_code = error_code
        rec.completed_at = utcnow()
        if status == JobStatus.COMPLETED:
            rec.progress = 100.0
            rec.adapter_path = adapter_path
            if rec.total_steps:
                rec.step = rec.total_steps
            rec.current_epoch = rec.total_epochs
        if metrics:
            rec.metrics = TrainingMetrics.model_validate(rec.metrics.model_dump() | metrics)
        self._save(rec)
        self.store.add_event(job_id, {"completed": "completed", "failed": "failed",
                                      "cancelled": "cancelled"}[rec.status.value], {"message": message} | (event or {}))
        return rec

    def request_cancel(self, job_id: str) -> JobRecord:
        rec = self.get_job(job_id)
        if rec.status.is_terminal:
            raise JobStateConflict(f"Job {job_id} is already {rec.status.value}", job_status=rec.status.value)
        rec.cancel_requested = True
        self._save(rec)
        self.store.add_event(job_id, "cancel_requested", {})
        return rec

    def list_jobs(self, status: str | None, limit: int, offset: int) -> tuple[list[JobRecord], int]:
        return self.store.list_jobs(status, limit, offset)

    def active_jobs(self) -> list[JobRecord]:
        pending, _ = self.store.list_jobs(JobStatus.PENDING.value)
        running, _ = self.store.list_jobs(JobStatus.RUNNING.value)
        return pending + running

    # exports
    def put_export(self, rec: ExportRecord) -> ExportRecord:
        rec.updated_at = utcnow()
        self.store.put_export(rec)
        return rec

    def get_export(self, export_id: str) -> ExportRecord:
        rec = self.store.get_export(export_id)
        if rec is None:
            raise ExportNotFound(f"Export {export_id} not found")
        return rec

    def update_export(self, export_id: str, fields: dict) -> ExportRecord:
        rec = self.get_export(export_id)
        rec = ExportRecord.model_validate(rec.model_dump() | fields)
        return self.put_export(rec)

    def metrics(self) -> dict:
        counts = self.store.job_counts()
        return {
            "total_jobs": sum(counts.values()),
            "active_jobs": counts.get("pending", 0) + counts.get("running", 0),
            "pending_jobs": counts.get("pending", 0),
            "running_jobs": counts.get("running", 0),
            "completed_jobs": counts.get("completed", 0),
            "failed_jobs": counts.get("failed", 0),
            "cancelled_jobs": counts.get("cancelled", 0),
            "total_datasets": self.store.dataset_count(),
            "total_models": counts.get("completed", 0),
            "total_exports": len(self.store.list_exports(status="completed")),
        }


def relaunch_decision(rec: JobRecord, max_relaunches: int) -> tuple[str, str]:
    """What reconciliation does with an active job whose runner is gone."""
    if rec.cancel_requested:
        return "fail", "Job was being cancelled when its runner stopped"
    if rec.attempts > max_relaunches:
        return "fail", f"Runner lost {rec.attempts} times; giving up"
    if rec.last_checkpoint:
        return "relaunch", f"Runner lost; resuming from checkpoint at step {rec.step}"
    if rec.status.value == "pending" or rec.step == 0:
        return "relaunch", "Runner lost before training started; starting again"
    return "relaunch", "Runner lost before the first checkpoint; restarting from step 0"


def _extrapolate(started_at: datetime, step: int, total_steps: int) -> datetime:
    elapsed = (utcnow() - started_at).total_seconds()
    return utcnow() + timedelta(seconds=elapsed / max(step, 1) * max(total_steps - step, 0))
