"""A run's checkpoints and its final adapter: saved through the hooks, resumed from, published whole.

A checkpoint holds the stepper's files (adapter, optimizer, scheduler or
DeepSpeed state), rank 0's ``TrainState`` and RNG, early stopping's best weights
and the adapter's ``template.json`` (so the checkpoint's adapter is servable as is).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from .. import paths
from ..models.atomic import build_dir
from .collectives import Collectives
from .early_stopping import Weights
from .steppers import ADAPTER_SUBDIR
from .hooks import Hooks
from .state import TrainState, load_best_weights, restore_rng, save_best_weights

log = logging.getLogger(__name__)


class Checkpoints:
    """Saves and restores one run's checkpoints on this rank (every method is called on every rank)."""

    def __init__(self, hooks: Hooks, stepper, template, collectives: Collectives):
        self.hooks, self.stepper, self.template, self.collectives = hooks, stepper, template, collectives
        self.rank, self.reporter = hooks.rank, hooks.reporter
        self.last_step = -1

    def restore(self, total_steps: int, seed: int) -> tuple[TrainState, Weights | None] | None:
        """The state and best weights of the checkpoint to resume from (stepper and RNG loaded), or None."""
        with self.hooks.restore() as folder:
            if folder is None:
                return None
            folder = Path(folder)
            self.stepper.load(folder)
            state = TrainState.load(folder)
            state.total_steps = total_steps
            state.stopped = None  # saved by a cancel or pause: the resumed run trains on
            if self.rank != 0:  # rank 0's file holds every rank's running sums (see save)
                state.clear_running_losses()
            best_weights = load_best_weights(folder)
            restore_rng(folder, self.rank, seed, state.global_step)
        self.last_step = state.global_step
        log.info("resumed at step %d (epoch %d)", state.global_step, state.epoch + 1)
        self.reporter.event("resumed", {"step": state.global_step, "epoch": state.epoch})
        return state, best_weights

    def save(self, state: TrainState, metrics: dict, best_weights: Weights | None) -> None:
        """Checkpoint the run at ``state.global_step``; rank 0 reports where it went."""
        step = state.global_step
        name = paths.checkpoint_name(step)
        # Rank 0 saves the state: it takes over every rank's running epoch sums, so none is lost on resume.
        total, count = self.collectives.reduce([state.epoch_loss_sum, state.epoch_loss_targets])
        state.epoch_loss_sum, state.epoch_loss_targets = (total, int(count)) if self.rank == 0 else (0.0, 0)
        # Mid-epoch: the epoch so far; at an epoch's end (sums cleared): that epoch's mean.
        train_loss = total / count if count else metrics.get("train_loss")
        with tempfile.TemporaryDirectory(prefix="sienn-ckpt-") as tmp:
            folder = Path(tmp)
            wrote = self.stepper.save(folder, self.rank)
            if self.rank == 0:
                state.save(folder)
                save_best_weights(folder, best_weights)
                self.template.save(folder / ADAPTER_SUBDIR)
            path = self.hooks.report(metrics, folder if (wrote or self.rank == 0) else None, name)
        self.last_step = step
        if self.rank == 0 and path:
            self.reporter.event("checkpoint", {"step": step, "epoch": state.epoch, "path": path,
                                               "train_loss": train_loss, "eval_loss": metrics.get("eval_loss"),
                                               "eval_token_accuracy": metrics.get("eval_token_accuracy")})
            self.reporter.report({"last_checkpoint": path, "step": step})

    def write_adapter(self, dest: Path, tokenizer) -> None:
        """Adapter + tokenizer + template.json, built beside ``dest`` and renamed into place (rank 0)."""
        if self.rank != 0:
            self.stepper.save_adapter(None, self.rank)  # its part of the collective under ZeRO-3
            return

        def write(folder: Path) -> None:
            self.stepper.save_adapter(folder, self.rank)
            tokenizer.save_pretrained(str(folder))
            self.template.save(folder)

        build_dir(Path(dest), write)
