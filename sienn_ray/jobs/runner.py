"""The JobRunner actor: one per job, detached, drives one TorchTrainer.fit() and exits.

It is started by the API, the CLI or the registry's reconciliation, and returns
nothing to them: everything it learns goes to the registry.
"""

from __future__ import annotations

import logging
import threading

import ray

from .. import paths
from ..schemas.jobs import JobStatus
from .client import RegistryClient

log = logging.getLogger(__name__)

WAITING_POLL_S = 3.0


@ray.remote(num_cpus=0, max_restarts=0)
class JobRunner:
    def __init__(self, job_id: str, namespace: str):
        self.job_id = job_id
        self.namespace = namespace
        self.registry = RegistryClient(namespace=namespace)
        self._started = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        finally:
            ray.actor.exit_actor()

    def _run(self) -> None:
        from ..train.launch import build_trainer

        rec = self.registry.call_sync("get_job", self.job_id)
        if rec.status.is_terminal:
            return
        try:
            spec = self._spec(rec)
            trainer = build_trainer(spec)
        except Exception as err:  # noqa: BLE001 - a job that cannot start fails with its reason
            self._finish(JobStatus.FAILED, f"Could not start training: {err}", error_code="TRAINING_FAILED")
            return
        watcher = threading.Thread(target=self._report_waiting, args=(rec.config,), daemon=True)
        watcher.start()
        try:
            result = trainer.fit()
        except Exception as err:  # noqa: BLE001
            log.exception("job %s failed", self.job_id)
            self._finish(JobStatus.FAILED, f"Training failed: {_short(err)}", error_code="TRAINING_FAILED")
            return
        finally:
            self._started.set()
        self._complete(result, spec.adapter_dir)

    def _spec(self, rec):
        from ..train.spec import TrainJobSpec
        from .client import REGISTRY_NAME

        dataset = self.registry.call_sync("get_dataset", rec.dataset_id)
        return TrainJobSpec(
            job_id=rec.job_id,
            model_name=rec.model_name,
            model_path=rec.model_path,
            dataset_path=str(paths.dataset_data(rec.dataset_id)),
            config=rec.config,
            storage_path=str(paths.job_train_storage(rec.job_id)),
            adapter_dir=str(paths.job_adapter(rec.job_id)),
            registry_name=REGISTRY_NAME,
            namespace=self.namespace,
            data_kind=dataset.kind,
        )

    def _complete(self, result, adapter_dir: str) -> None:
        import os

        metrics = {k: v for k, v in (result.metrics or {}).items()
                   if k in ("train_loss", "eval_loss", "learning_rate", "tokens_per_second")}
        rec = self.registry.call_sync("get_job", self.job_id)
        if rec.cancel_requested:
            kept = f" at {rec.last_checkpoint}" if rec.last_checkpoint else ""
            self._finish(JobStatus.CANCELLED, f"Cancelled by user; last checkpoint kept{kept}", metrics=metrics)
        elif os.path.exists(os.path.join(adapter_dir, "adapter_config.json")):
            self._finish(JobStatus.COMPLETED, "Training completed", adapter_path=adapter_dir, metrics=metrics)
        else:
            self._finish(JobStatus.FAILED, "Training ended without writing the adapter", error_code="TRAINING_FAILED")

    def _finish(self, status: JobStatus, message: str, **kwargs) -> None:
        self.registry.call_sync("finish", self.job_id, status.value, message, timeout=120, **kwargs)

    def _report_waiting(self, config) -> None:
        """While the job is pending, say what resources it waits for."""
        need_cpu = config.num_workers * config.cpus_per_worker
        need_gpu = config.num_workers if config.use_gpu else 0
        while not self._started.wait(WAITING_POLL_S):
            try:
                rec = self.registry.call_sync("get_job", self.job_id, timeout=10)
                if rec.status != JobStatus.PENDING:
                    return
                total, free = ray.cluster_resources(), ray.available_resources()
                message = _waiting_message(need_cpu, need_gpu, total, free)
                if message and message != rec.message:
                    self.registry.call_sync("mark_waiting", self.job_id, message, timeout=10)
            except Exception:  # noqa: BLE001 - best effort status text only
                log.debug("waiting report failed", exc_info=True)


def _waiting_message(need_cpu: float, need_gpu: int, total: dict, free: dict) -> str | None:
    parts = []
    for name, need in (("CPU", need_cpu), ("GPU", need_gpu)):
        if not need:
            continue
        if total.get(name, 0) < need:
            parts.append(f"needs {need:g} {name} but the cluster has {total.get(name, 0):g} "
                         "(waiting for the autoscaler or more nodes)")
        elif free.get(name, 0) < need:
            parts.append(f"needs {need:g} {name}, {free.get(name, 0):g} free now")
    return "Waiting for resources: " + "; ".join(parts) if parts else None


def _short(err: Exception, limit: int = 2000) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= limit else text[:limit] + " ..."
