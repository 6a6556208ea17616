"""The JobRegistry actor: named, detached, restarted by Ray if it dies.

It wraps one JobBook (the single writer to the Store). On (re)start it
reconciles: a pending/running job whose runner actor is gone is relaunched from
its last checkpoint, or marked failed with the reason, so no job stays running
forever.
"""

from __future__ import annotations

import logging

import ray

from ..schemas.common import utcnow
from ..schemas.datasets import DatasetRecord
from ..schemas.exports import ExportRecord
from ..schemas.jobs import JobRecord, JobStatus
from ..settings import get_settings
from ..store import Store
from .book import JobBook, relaunch_decision
from .client import REGISTRY_NAME
from .launcher import head_node_strategy, launch_runner, runner_alive

log = logging.getLogger(__name__)

# How many times reconciliation relaunches a job whose runner vanished.
MAX_RELAUNCHES = 3


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1)
class JobRegistry:
    """Every job, dataset and export record; persisted before each call returns."""

    def __init__(self, db_url: str, namespace: str, reconcile: bool = True):
        self.namespace = namespace
        self.book = JobBook(Store(db_url))
        self.started_at = utcnow()
        if reconcile:
            self.reconcile()

    def ping(self) -> dict:
        return {"ok": self.book.store.ping(), "started_at": self.started_at.isoformat()}

    # datasets
    def put_dataset(self, rec: DatasetRecord) -> DatasetRecord:
        return self.book.put_dataset(rec)

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        return self.book.get_dataset(dataset_id)

    def list_datasets(self, limit: int, offset: int):
        return self.book.store.list_datasets(limit, offset)

    def delete_dataset(self, dataset_id: str) -> DatasetRecord:
        return self.book.delete_dataset(dataset_id)

    # jobs
    def create_job(self, rec: JobRecord) -> JobRecord:
        return self.book.create_job(rec)

    def get_job(self, job_id: str) -> JobRecord:
        return self.book.get_job(job_id)

    def list_jobs(self, status: str | None = None, limit: int = 50, offset: int = 0):
        return self.book.list_jobs(status, limit, offset)

    def mark_waiting(self, job_id: str, message: str) -> JobRecord:
        return self.book.mark_waiting(job_id, message)

    def report_progress(self, job_id: str, update: dict) -> dict:
        return self.book.report_progress(job_id, update)

    def add_event(self, job_id: str, type: str, data: dict | None = None):
        return self.book.add_event(job_id, type, data)

    def add_loss_point(self, job_id: str, point: dict) -> None:
        self.book.add_loss_point(job_id, point)

    def list_events(self, job_id: str):
        self.book.get_job(job_id)
        return self.book.store.list_events(job_id)

    def loss_history(self, job_id: str):
        self.book.get_job(job_id)
        return self.book.store.loss_history(job_id)

    def finish(self, job_id: str, status: str, message: str, **kwargs) -> JobRecord:
        return self.book.finish(job_id, JobStatus(status), message, **kwargs)

    def request_cancel(self, job_id: str) -> JobRecord:
        return self.book.request_cancel(job_id)

    def metrics(self) -> dict:
        return self.book.metrics()

    # exports
    def put_export(self, rec: ExportRecord) -> ExportRecord:
        return self.book.put_export(rec)

    def get_export(self, export_id: str) -> ExportRecord:
        return self.book.get_export(export_id)

    def update_export(self, export_id: str, fields: dict) -> ExportRecord:
        return self.book.update_export(export_id, fields)

    def find_export(self, job_id: str, fmt: str, quantization: str | None):
        return self.book.store.find_export(job_id, fmt, quantization)

    def list_exports(self, job_id: str | None = None, status: str | None = None):
        return self.book.store.list_exports(job_id, status)

    # recovery
    def reconcile(self, min_age_s: float = 0.0) -> list[dict]:
        """Relaunch or fail every active job whose runner is gone; returns what it did.

        Runs at (re)start, and periodically from the API (``min_age_s`` skips jobs created
        so recently that their runner may still be registering its name).
        """
        actions = []
        now = utcnow()
        for rec in self.book.active_jobs():
            if (now - rec.created_at).total_seconds() < min_age_s or runner_alive(rec.job_id, self.namespace):
                continue
            action, reason = relaunch_decision(rec, MAX_RELAUNCHES)
            if action == "relaunch":
                self.book.add_event(rec.job_id, "retry", {"reason": reason, "checkpoint": rec.last_checkpoint})
                try:
                    launch_runner(rec.job_id, self.namespace, detach_call=True)
                except Exception as err:  # noqa: BLE001 - any launch failure fails the job, visibly
                    action, reason = "fail", f"Could not relaunch the job's runner: {err}"
            if action == "fail":
                self.book.finish(rec.job_id, JobStatus.FAILED, reason, error_code="TRAINING_FAILED")
            actions.append({"job_id": rec.job_id, "action": action, "reason": reason})
            log.warning("reconcile %s: %s (%s)", rec.job_id, action, reason)
        return actions


def get_or_create_registry(namespace: str):
    """The one registry of this namespace; created detached on first use."""
    try:
        return ray.get_actor(REGISTRY_NAME, namespace=namespace)
    except ValueError:
        pass
    settings = get_settings()
    return JobRegistry.options(
        name=REGISTRY_NAME,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        scheduling_strategy=head_node_strategy(),
    ).remote(settings.db_url, namespace)
