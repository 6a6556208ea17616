"""Turning a job spec into a Ray Train V2 ``TorchTrainer`` (the job runner calls ``.fit()`` on it)."""

from __future__ import annotations

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from .spec import TrainJobSpec
from .worker import train_func


def worker_env(spec: TrainJobSpec) -> dict[str, str]:
    """Environment of every worker: one BLAS/OpenMP thread per reserved CPU, so workers sharing a
    node do not oversubscribe its cores."""
    threads = str(max(1, int(spec.config.cpus_per_worker)))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}


def build_trainer(spec: TrainJobSpec, resume_from: str | None = None) -> TorchTrainer:
    """The trainer for ``spec``. A run with the same ``job_id`` and ``storage_path`` resumes from its own
    latest checkpoint (Ray Train restores it); ``resume_from`` names a checkpoint for a run that has none."""
    cfg = spec.config
    if resume_from is not None:
        spec = spec.model_copy(update={"resume_from": resume_from})
    resources = {"CPU": cfg.cpus_per_worker} | ({"GPU": 1} if cfg.use_gpu else {})
    return TorchTrainer(
        train_func,
        train_loop_config=spec.model_dump(mode="json"),
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker=resources),
        run_config=RunConfig(
            name=spec.job_id,
            storage_path=spec.storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.checkpoints_to_keep),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            worker_runtime_env={"env_vars": worker_env(spec)},
        ),
    )
