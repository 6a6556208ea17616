"""The registry's operations: the one writer of every record, the job queue and the runner leases.

``RegistryCore`` owns every record the platform keeps: the jobs (here: the
queue, leases, progress, stops), and through ``RecordOperations``
(``records.py``) the datasets, exports, API keys and the audit trail. Plain
Python over a ``Store`` and a ``Cluster`` port, so every rule is tested without
Ray; ``registry.py`` runs one ``RegistryCore`` in a named actor, which Ray
restarts if it dies. Each operation persists before it returns.

Leases: a runner is launched holding a lease with a fencing token (one more
than the last granted). It renews the lease with heartbeats; rank 0's reports
carry the token, and a report with an older token is refused and told to stop.
A lease that expires (runner dead, hung or stopped) gets its runner killed and
the job relaunched with a new token, which counts as an attempt. So a job
trains at most once at a time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from ..auth.quotas import check_queued
from ..errors import InsufficientStorage, JobNotFound, JobStateConflict, ResourcesUnavailable, StorageUnavailable
from ..schemas.common import utcnow
from ..schemas.jobs import JobPhase, JobRecord, JobStatus, LossPoint, RunOutcome, StopKind
from ..store import Store
from . import lifecycle
from .policy import Cluster, ControlPolicy
from .queue import Capacity, job_needs, minus, plan_launches
from .records import RecordOperations

log = logging.getLogger(__name__)

# How far down the queue one scheduling pass looks (it stops at the first job that does not fit anyway).
SCHEDULE_WINDOW = 32


def runner_name(job_id: str, token: int) -> str:
    """One name per lease, so a new runner never collides with a dying one."""
    return f"sienn-runner-{job_id}-{token}"


class RegistryCore(RecordOperations):
    """Every dataset, job, event, export, API key and audit record; the queue; the leases."""

    def __init__(self, store: Store, cluster: Cluster, policy: ControlPolicy | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.store, self.cluster, self.clock = store, cluster, clock
        self.policy = policy or ControlPolicy()
        self.started_at = clock()
        self._capacity: tuple[float, Capacity] | None = None
        try:
            self._recover()
        except (InsufficientStorage, StorageUnavailable) as err:
            # Started on a full or read-only database: reads still work and every write says why it
            # fails (507/503), instead of the actor failing to start and every caller waiting on it.
            log.warning("registry started without writable storage (leases not extended): %s", err.detail)

    def ping(self) -> dict:
        return {"ok": self.store.ping(), "started_at": self.started_at.isoformat()}

    # jobs: submission
    def submit_job(self, rec: JobRecord, queued_quota: int | None = None) -> JobRecord:
        """Admit a validated job into the queue (400 if the cluster could never run it; 429 if its tenant
        already has ``queued_quota`` jobs waiting)."""
        self._dataset(rec.dataset_id, rec.tenant)
        check_queued(queued_quota, self.store.jobs_in_phase_count(rec.tenant, [JobPhase.QUEUED]))
        if rec.eval_dataset_id:
            self._dataset(rec.eval_dataset_id, rec.tenant)
        problems = self._cluster_capacity().problems(rec.config)
        if problems:
            raise ResourcesUnavailable("The cluster can never run this job: " + "; ".join(problems),
                                       errors=problems, requested=job_needs(rec.config),
                                       cluster=self._cluster_capacity().totals())
        rec.status, rec.queued_at = JobStatus.PENDING, self.clock()
        self.store.enqueue_job(rec)
        self._event(rec, "created", {"model_name": rec.model_name, "dataset_id": rec.dataset_id,
                                     "source": rec.source, "priority": rec.priority})
        self._schedule()
        return self.get_job(rec.job_id)

    def adopt_job(self, rec: JobRecord, holder: str, ttl_s: float = 3600.0) -> JobRecord:
        """Record a job its caller runs itself, outside the queue (a driver calling ``fit()`` in its own
        process: tests, benchmarks), and give the caller the lease (renew it with ``heartbeat``)."""
        self._dataset(rec.dataset_id, rec.tenant)
        now = self.clock()
        rec.queued_at = now
        lifecycle.grant_lease(rec, holder, now, ttl_s)
        self._save(rec)
        self._event(rec, "created", {"model_name": rec.model_name, "dataset_id": rec.dataset_id,
                                     "source": rec.source, "adopted_by": holder})
        return rec

    def get_job(self, job_id: str) -> JobRecord:
        rec = self._job(job_id, None)
        rec.queue_position = self.store.queue_position(rec)
        return rec

    # jobs: what runners and trainers report
    def heartbeat(self, job_id: str, token: int) -> dict:
        """Renew the lease; ``ok`` False tells a runner it lost the job and must stop."""
        rec = self._job(job_id, None)
        if not lifecycle.holds_lease(rec, token):
            return {"ok": False, "stop": "lease lost"}
        lifecycle.renew_lease(rec, self.clock(), self.policy.lease_ttl_s)
        self._save(rec)
        return {"ok": True, "stop": rec.stop_request}

    def report_progress(self, job_id: str, update: dict, token: int | None = None) -> dict:
        """Rank 0's progress; answers whether its trainer must stop (asked to, or fenced off)."""
        rec = self._job(job_id, None)
        if token is None or token != rec.last_token:
            return {"cancel_requested": True, "fenced": True}
        if rec.lease is None:  # finished or paused: a late report may still name the last checkpoint
            if update.get("last_checkpoint"):
                rec.last_checkpoint = update["last_checkpoint"]
                self._save(rec)
            return {"cancel_requested": True}
        started = lifecycle.apply_progress(rec, update, self.clock())
        self._save(rec)
        if started:
            self._event(rec, "started", {"attempt": rec.attempts, "token": token})
        return {"cancel_requested": rec.stop_request is not None}

    def add_event(self, job_id: str, type: str, data: dict | None = None, token: int | None = None) -> None:
        """An event from the trainer; one from a fenced-off trainer is dropped."""
        rec = self._job(job_id, None)
        if token is not None and token == rec.last_token:
            self._event(rec, type, data or {})

    def add_loss_point(self, job_id: str, point: dict, token: int | None = None) -> None:
        rec = self._job(job_id, None)
        if token is not None and token == rec.last_token:
            self.store.add_loss_point(job_id, LossPoint.model_validate(point))

    def begin_evaluation(self, job_id: str, token: int, adapter_path: str) -> dict:
        """The runner's word that training is done and the evaluation starts; ``ok`` False: skip it (the
        lease is gone, or a stop was asked for while the last steps ran)."""
        rec = self._job(job_id, None)
        if not lifecycle.holds_lease(rec, token) or rec.stop_request is not None:
            return {"ok": False}
        lifecycle.begin_evaluation(rec, adapter_path)
        self._save(rec)
        self._event(rec, "evaluation_started", {"step": rec.step})
        return {"ok": True}

    def finish_run(self, job_id: str, token: int, outcome: RunOutcome) -> JobRecord:
        """The runner's word when ``fit()`` returned: completed, failed, or stopped as asked (cancel, pause).
        A runner whose lease was taken from it is not heard."""
        rec = self._job(job_id, None)
        if not lifecycle.holds_lease(rec, token):
            return rec
        lifecycle.settle_position(rec, outcome)
        status, message, error_code = lifecycle.outcome_status(rec, outcome)
        if status == JobStatus.PAUSED:
            lifecycle.pause(rec, message)
            self._save(rec)
            self._event(rec, "paused", {"step": rec.step, "checkpoint": rec.last_checkpoint})
        else:
            adapter = outcome.adapter_path if status == JobStatus.COMPLETED else None
            if status == JobStatus.COMPLETED and outcome.evaluation is not None:
                rec.evaluation = outcome.evaluation
                self._event(rec, "evaluated", outcome.evaluation.model_dump(
                    mode="json", include={"status", "error", "rows_used", "base", "tuned", "deltas"}))
            self._finish(rec, status, message, error_code=error_code, adapter_path=adapter,
                         metrics=outcome.metrics)
        self._schedule()
        return rec

    def finish(self, job_id: str, status: str, message: str, *, error_code: str | None = None,
               adapter_path: str | None = None, metrics: dict | None = None) -> JobRecord:
        """End a job whoever runs it (idempotent: a finished job stays as it is); its runner is stopped."""
        rec = self._job(job_id, None)
        if rec.status.is_terminal:
            return rec
        if rec.lease is not None:
            self.cluster.stop_runner(rec.lease.holder)
        self._finish(rec, JobStatus(status), message, error_code=error_code, adapter_path=adapter_path,
                     metrics=metrics)
        self._schedule()
        return rec

    # jobs: what users ask
    def request_stop(self, job_id: str, kind: StopKind, tenant: str | None = None) -> JobRecord:
        """Cancel or pause. A queued, launching or paused job stops at once; a training one is asked to
        stop at a checkpoint (all ranks agree on the step, save, stop) and is stopped by force after
        the grace period."""
        rec = self._job(job_id, tenant)
        if rec.status.is_terminal:
            raise JobStateConflict(f"Job {job_id} is already {rec.status.value}", job_status=rec.status.value)
        if rec.status == JobStatus.PAUSED and kind == "pause":
            return self.get_job(job_id)
        if rec.status == JobStatus.PAUSED or rec.phase in (JobPhase.QUEUED, JobPhase.LAUNCHING):
            if rec.lease is not None:
                self.cluster.stop_runner(rec.lease.holder)
            self._stopped(rec, kind, "before it started training" if rec.status != JobStatus.PAUSED else "")
        elif rec.stop_request is not None:  # stopping already (or skipping the rest of an evaluation)
            if kind == "cancel" and rec.stop_request == "pause":
                rec.stop_request = "cancel"
                self._save(rec)
        else:
            lifecycle.request_stop(rec, kind, self.clock(), self.policy.stop_grace_s)
            self._save(rec)
            self._event(rec, "stop_requested", {"kind": kind, "step": rec.step})
        self._schedule()
        return self.get_job(job_id)

    def resume_job(self, job_id: str, tenant: str | None = None) -> JobRecord:
        """A paused job goes back to the queue; its trainer continues from the pause checkpoint."""
        rec = self._job(job_id, tenant)
        if rec.status != JobStatus.PAUSED:
            raise JobStateConflict(f"Job {job_id} is {rec.status.value}; only paused jobs can be resumed",
                                   job_status=rec.status.value)
        lifecycle.resume(rec)
        rec.updated_at = self.clock()
        self.store.enqueue_job(rec)
        self._event(rec, "requeued", {"step": rec.step, "checkpoint": rec.last_checkpoint})
        self._schedule()
        return self.get_job(job_id)

    # the clock: leases, stop deadlines, the queue
    def tick(self) -> list[dict]:
        """Expire silent leases, force overdue stops, launch what fits; returns what it did."""
        now = self.clock()
        actions = []
        for rec in self.store.jobs_in_phases(lifecycle.HELD):
            if rec.stop_request and rec.stop_deadline and rec.stop_deadline <= now:
                actions.append(self._force_stop(rec))
            elif lifecycle.lease_expired(rec, now):
                actions.append(self._lease_lost(rec))
        return actions + self._schedule()

    # internals
    def _recover(self) -> None:
        """After a (re)start: no heartbeat could arrive while the registry was down, so each lease gets a
        full TTL from now; a job held without a lease (written before leases existed) is relaunched."""
        now = self.clock()
        for rec in self.store.jobs_in_phases(lifecycle.HELD):
            if rec.lease is None:
                lifecycle.requeue(rec, "Registry restarted; relaunching")
                self._save(rec)
            else:
                rec.lease.expires_at = max(rec.lease.expires_at, now + timedelta(seconds=self.policy.lease_ttl_s))
                self._save(rec)

    def _schedule(self) -> list[dict]:
        queued = self.store.jobs_in_phases([JobPhase.QUEUED], limit=SCHEDULE_WINDOW)
        if not queued:
            return []
        free = self.cluster.free()
        for rec in self.store.jobs_in_phases([JobPhase.LAUNCHING]):
            free = minus(free, job_needs(rec.config))  # granted, but its workers do not hold them yet
        held = Counter(rec.tenant for rec in self.store.jobs_in_phases(lifecycle.HELD))
        plan = plan_launches(queued, free, held)
        actions = [self._launch(rec) for rec in plan.launch]
        for rec in plan.over_quota:
            message = f"Waiting: its tenant runs {rec.running_quota} job(s), its key's running_jobs quota"
            if rec.message != message:
                rec.message = message
                self._save(rec)
        if plan.blocked is not None and plan.waiting_for and plan.blocked.message != plan.waiting_for:
            plan.blocked.message = plan.waiting_for
            self._save(plan.blocked)
        return actions

    def _launch(self, rec: JobRecord) -> dict:
        if rec.attempts >= self.policy.max_launches:
            return self._give_up(rec)
        holder = runner_name(rec.job_id, rec.last_token + 1)
        lease = lifecycle.grant_lease(rec, holder, self.clock(), self.policy.launch_grace_s)
        rec.message = "Launching" if rec.attempts == 1 else f"Relaunching (attempt {rec.attempts})"
        self._save(rec)
        self._event(rec, "launched", {"attempt": rec.attempts, "token": lease.token})
        try:
            self.cluster.launch_runner(rec.job_id, lease.token, lease.holder)
        except Exception as err:  # noqa: BLE001 - a runner that cannot start fails the job, visibly
            log.exception("could not launch the runner of %s", rec.job_id)
            self._finish(rec, JobStatus.FAILED, f"Could not launch the job's runner: {err}",
                         error_code="TRAINING_FAILED")
            return {"job_id": rec.job_id, "action": "fail", "reason": str(err)}
        return {"job_id": rec.job_id, "action": "launch", "token": lease.token, "attempt": rec.attempts}

    def _lease_lost(self, rec: JobRecord) -> dict:
        holder = rec.lease.holder if rec.lease else None
        if holder:
            self.cluster.stop_runner(holder)
        self._event(rec, "lease_expired", {"token": rec.lease.token if rec.lease else None, "holder": holder,
                                           "step": rec.step})
        if rec.attempts >= self.policy.max_launches:
            return self._give_up(rec)
        where = f"its last checkpoint (step {rec.step})" if rec.last_checkpoint else "step 0 (no checkpoint yet)"
        lifecycle.requeue(rec, f"Runner lost; relaunching from {where}")
        self._save(rec)  # keeps its place in the queue: it was there first
        return {"job_id": rec.job_id, "action": "requeue", "reason": rec.message}

    def _give_up(self, rec: JobRecord) -> dict:
        reason = f"Runner lost {rec.attempts} times (the limit is {self.policy.max_launches}); giving up"
        self._finish(rec, JobStatus.FAILED, reason, error_code="TRAINING_FAILED")
        return {"job_id": rec.job_id, "action": "fail", "reason": reason}

    def _force_stop(self, rec: JobRecord) -> dict:
        if rec.lease is not None:
            self.cluster.stop_runner(rec.lease.holder)
        kind = rec.stop_request
        if rec.phase == JobPhase.EVALUATING:  # trained already: it completes, without its evaluation
            self._finish(rec, JobStatus.COMPLETED, f"Training completed; evaluation stopped ({kind} asked)")
            return {"job_id": rec.job_id, "action": f"forced {kind} of the evaluation"}
        self._stopped(rec, kind, f"by force after {self.policy.stop_grace_s:g} s")
        return {"job_id": rec.job_id, "action": f"forced {kind}"}

    def _stopped(self, rec: JobRecord, kind: StopKind, how: str) -> None:
        suffix = f" {how}" if how else ""
        if kind == "pause":
            lifecycle.pause(rec, f"Paused{suffix}")
            self._save(rec)
            self._event(rec, "paused", {"step": rec.step, "checkpoint": rec.last_checkpoint})
        else:
            kept = f"; last checkpoint kept at {rec.last_checkpoint}" if rec.last_checkpoint else ""
            self._finish(rec, JobStatus.CANCELLED, f"Cancelled{suffix}{kept}")

    def _finish(self, rec: JobRecord, status: JobStatus, message: str, **fields) -> None:
        lifecycle.finish(rec, status, message, self.clock(), **fields)
        self._save(rec)
        self._event(rec, status.value, {"message": message, "step": rec.step})

    def _cluster_capacity(self) -> Capacity:
        if self._capacity is None or time.monotonic() - self._capacity[0] > self.policy.capacity_cache_s:
            self._capacity = (time.monotonic(), self.cluster.capacity())
        return self._capacity[1]

    def _save(self, rec: JobRecord) -> None:
        rec.updated_at = self.clock()
        self.store.put_job(rec)

    def _event(self, rec: JobRecord, type: str, data: dict) -> None:
        self.store.add_event(rec.job_id, rec.tenant, type, data)

    def _job(self, job_id: str, tenant: str | None) -> JobRecord:
        rec = self.store.get_job(job_id, tenant)
        if rec is None:
            raise JobNotFound(f"Job {job_id} not found")
        return rec
