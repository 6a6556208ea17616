"""The JobRunner actor: one per lease, detached, drives one TorchTrainer.fit() and exits.

The registry launches it holding the job's lease (a fencing token). It renews
the lease with heartbeats while the trainer runs, passes the token to rank 0
(whose reports carry it), and reports the outcome of ``fit()`` with it. If the
registry answers that the lease is gone (it expired, a newer runner holds the
job), the runner exits at once, and the trainer it owns dies with it.
"""

from __future__ import annotations

import logging
import os
import threading

import ray

from .. import paths
from ..models.lora_adapter import adapter_present
from ..schemas.evaluation import EvaluationSummary
from ..schemas.jobs import JobRecord, RunOutcome
from .client import REGISTRY_NAME, RegistryClient

log = logging.getLogger(__name__)

PUBLIC_METRICS = ("train_loss", "eval_loss", "learning_rate", "tokens_per_second")


@ray.remote(num_cpus=0, max_restarts=0)
class JobRunner:
    def __init__(self, job_id: str, token: int, namespace: str, heartbeat_s: float):
        self.job_id, self.token, self.namespace = job_id, token, namespace
        self.registry = RegistryClient.for_actor(namespace)
        self.heartbeat_s = heartbeat_s
        self._done = threading.Event()
        self._stop: str | None = None  # a cancel or pause the registry asked for, as its last heartbeat said

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._done.set()
            ray.actor.exit_actor()

    def _run(self) -> None:
        from ..train.launch import build_trainer

        if not self._beat():
            return
        threading.Thread(target=self._heartbeats, daemon=True, name=f"lease-{self.job_id}").start()
        rec = self.registry.get_job(self.job_id).result()
        try:
            spec = self._spec(rec)
            trainer = build_trainer(spec)
        except Exception as err:  # noqa: BLE001 - a job that cannot start fails with its reason
            self._report(RunOutcome(result="failed", message=f"Could not start training: {_short(err)}"))
            return
        try:
            result = trainer.fit()
        except Exception as err:  # noqa: BLE001
            log.exception("job %s failed", self.job_id)
            self._report(RunOutcome(result="failed", message=f"Training failed: {_short(err)}"))
            return
        outcome = outcome_of(result.metrics or {}, spec.adapter_dir)
        if outcome.result == "finished":
            outcome.evaluation = self._evaluate(rec, outcome.adapter_path)
        self._report(outcome)

    def _evaluate(self, rec: JobRecord, adapter_path: str) -> EvaluationSummary | None:
        """Base vs tuned on the held-out rows, as a Ray task; None when there is nothing held out or the
        registry says to skip it. A failed evaluation is recorded, never raised: the job is trained."""
        from ..evaluation.plan import spec_for_job
        from ..evaluation.task import evaluate_job

        # An eval dataset is not read here: if it is gone, the evaluation task records that failure.
        eval_data = paths.dataset_data(rec.eval_dataset_id) if rec.eval_dataset_id else None
        spec = spec_for_job(rec, eval_dataset_path=eval_data, eval_samples=rec.config.eval_samples)
        if spec is None or not self.registry.begin_evaluation(self.job_id, self.token, adapter_path).result()["ok"]:
            return None
        return evaluate_job(spec, should_stop=self._stop_reason)

    def _stop_reason(self) -> str | None:
        return f"stopped: the job's {self._stop} was asked for during its evaluation" if self._stop else None

    def _spec(self, rec: JobRecord):
        from ..train.spec import TrainJobSpec

        dataset = self.registry.get_dataset(rec.dataset_id).result()
        return TrainJobSpec(
            job_id=rec.job_id, model_name=rec.model_name, model_path=rec.model_path,
            dataset_path=str(paths.dataset_data(rec.dataset_id)), config=rec.config,
            storage_path=str(paths.job_train_storage(rec.job_id)), adapter_dir=str(paths.job_adapter(rec.job_id)),
            registry_name=REGISTRY_NAME, namespace=self.namespace, data_kind=dataset.kind, lease_token=self.token,
            eval_dataset_path=str(paths.dataset_data(rec.eval_dataset_id)) if rec.eval_dataset_id else None,
        )

    def _report(self, outcome: RunOutcome) -> None:
        self.registry.finish_run(self.job_id, self.token, outcome).result(timeout=120)

    def _beat(self) -> bool:
        """Renew the lease; False when the registry says it is no longer ours."""
        try:
            answer = self.registry.heartbeat(self.job_id, self.token).result(timeout=max(self.heartbeat_s, 5))
            self._stop = answer.get("stop") if answer["ok"] else None
            return answer["ok"]
        except Exception:  # noqa: BLE001 - the registry may be restarting; the lease outlives a few misses
            log.warning("heartbeat of %s failed", self.job_id, exc_info=True)
            return True

    def _heartbeats(self) -> None:
        while not self._done.wait(self.heartbeat_s):
            if not self._beat():
                log.error("job %s: lease %d lost; this runner stops now", self.job_id, self.token)
                os._exit(1)  # the Train controller and workers this actor owns die with it


def outcome_of(metrics: dict, adapter_dir: str) -> RunOutcome:
    """What a finished ``fit()`` means, from the last metrics its workers reported."""
    public = {k: float(metrics[k]) for k in PUBLIC_METRICS if metrics.get(k) is not None}
    where = {"step": metrics.get("step"), "epoch": metrics.get("epoch"), "metrics": public}
    if metrics.get("stopped") == "cancelled":
        return RunOutcome(result="stopped", message="Stopped as asked", **where)
    if not adapter_present(adapter_dir):
        return RunOutcome(result="failed", message="Training ended without writing the adapter", **where)
    message = "Stopped early (no eval improvement)" if metrics.get("stopped") == "early_stopping" \
        else "Training completed"
    return RunOutcome(result="finished", message=message, adapter_path=adapter_dir, **where)


def _short(err: Exception, limit: int = 2000) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= limit else text[:limit] + " ..."
