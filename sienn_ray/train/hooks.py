"""What a training run needs from the process it runs in: ``worker.py`` plugs in Ray Train's pieces,
tests run the loop in one process with ``LocalHooks``."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import torch

from .report import NullReporter


class Hooks:
    """What a run needs from the process it runs in. The defaults: one process, nothing persisted."""

    rank = 0
    world_size = 1
    device = torch.device("cpu")
    reporter = NullReporter()

    def wrap_model(self, model):
        return model

    def restore(self):
        """Context manager giving the checkpoint folder to resume from, or None."""
        return contextlib.nullcontext(None)

    def report(self, metrics: dict, folder: Path | None, name: str) -> str | None:
        """Persist the checkpoint files in ``folder`` (called on every rank); the stored path."""
        return None


class LocalHooks(Hooks):
    """Single process: checkpoints are copied under ``checkpoint_root``; resume from ``resume_from``."""

    def __init__(self, checkpoint_root: Path, resume_from: Path | None = None, reporter=None):
        self.checkpoint_root = Path(checkpoint_root)
        self.resume_from = resume_from
        self.reporter = reporter or NullReporter()
        self.reported: list[dict] = []

    def restore(self):
        return contextlib.nullcontext(self.resume_from)

    def report(self, metrics, folder, name):
        dest = self.checkpoint_root / name
        if folder is not None:
            shutil.copytree(folder, dest, dirs_exist_ok=True)
        self.reported.append(dict(metrics, checkpoint=str(dest)))
        return str(dest)
