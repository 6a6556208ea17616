"""The Ray Train worker function: Ray's pieces plugged into the plain training run."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import ray.train
import ray.train.torch
import torch

from .hooks import Hooks
from .loop import run_training
from .report import NullReporter, ProgressReporter, ray_registry_lookup
from .spec import TrainJobSpec

log = logging.getLogger(__name__)


class RayTrainHooks(Hooks):
    """Rank and device from the Train context, DDP from ``prepare_model``, checkpoints via ``ray.train.report``."""

    def __init__(self, spec: TrainJobSpec):
        ctx = ray.train.get_context()
        self.spec = spec
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.device = ray.train.torch.get_device() if spec.config.use_gpu else torch.device("cpu")
        if self.rank == 0 and spec.registry_name:
            self.reporter = ProgressReporter(ray_registry_lookup(spec.registry_name, spec.namespace), spec.job_id,
                                             token=spec.lease_token)
        else:
            self.reporter = NullReporter()

    def wrap_model(self, model):
        return ray.train.torch.prepare_model(model, move_to_device=False)

    @contextlib.contextmanager
    def restore(self):
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                yield Path(folder)
        elif self.spec.resume_from:
            yield Path(self.spec.resume_from)
        else:
            yield None

    def report(self, metrics: dict, folder: Path | None, name: str) -> str | None:
        checkpoint = ray.train.Checkpoint.from_directory(str(folder)) if folder is not None else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)
        return f"{self.spec.storage_path.rstrip('/')}/{self.spec.job_id}/{name}"


def _limit_threads(cpus: float) -> None:
    threads = max(1, int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def train_func(config: dict) -> None:
    """Entry point of every worker of a job's ``TorchTrainer``; ``config`` is a ``TrainJobSpec`` dict."""
    spec = TrainJobSpec.model_validate(config)
    _limit_threads(spec.config.cpus_per_worker)
    logging.basicConfig(level=logging.INFO)
    run_training(spec, RayTrainHooks(spec))
