"""Where a run stands, saved with each checkpoint so a resumed run continues at that exact step.

Nothing here is unpickled: the counters are JSON, the RNG state is a tensor and
plain lists read with ``torch.load(weights_only=True)``, and early stopping's
best weights are safetensors (checkpoint storage is shared, so a file there
must not be able to run code when loaded).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

STATE_FILE = "trainer_state.json"
RNG_FILE = "rng.pt"
BEST_WEIGHTS_FILE = "best_adapter.safetensors"


@dataclass
class TrainState:
    """Counters of a run. ``epoch``/``micro_in_epoch`` locate the next micro-batch in the epoch's plan.

    The loss sums are token-weighted (loss x targets, targets): ``epoch_*`` over
    the epoch so far, ``window_*`` over the logging window (``window_steps``
    optimizer steps since the last reported train_loss).
    """

    global_step: int = 0
    epoch: int = 0
    micro_in_epoch: int = 0
    total_steps: int = 0
    tokens_seen: int = 0
    best_eval_loss: float | None = None
    evals_without_improvement: int = 0
    last_eval_loss: float | None = None
    last_eval_token_accuracy: float | None = None
    stopped: str | None = None
    epoch_loss_sum: float = 0.0
    epoch_loss_targets: int = 0
    window_loss_sum: float = 0.0
    window_loss_targets: int = 0
    window_steps: int = 0

    def add_loss(self, mean_loss: float, targets: int) -> None:
        """Count one micro-batch whose mean loss over ``targets`` target tokens is ``mean_loss``."""
        self.epoch_loss_sum += mean_loss * targets
        self.epoch_loss_targets += targets
        self.window_loss_sum += mean_loss * targets
        self.window_loss_targets += targets

    def window_mean(self) -> float | None:
        return self.window_loss_sum / self.window_loss_targets if self.window_loss_targets else None

    def clear_window(self) -> None:
        self.window_loss_sum, self.window_loss_targets, self.window_steps = 0.0, 0, 0

    def clear_running_losses(self) -> None:
        self.epoch_loss_sum, self.epoch_loss_targets = 0.0, 0
        self.clear_window()

    def save(self, folder: Path) -> None:
        (Path(folder) / STATE_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        version, internal, gauss = random.getstate()
        torch.save({"torch": torch.get_rng_state(), "python": [version, list(internal), gauss]},
                   Path(folder) / RNG_FILE)

    @classmethod
    def load(cls, folder: Path) -> "TrainState":
        return cls(**json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8")))


def restore_rng(folder: Path, rank: int, seed: int, step: int) -> None:
    """Rank 0 gets its saved RNG back; other ranks (whose state is not saved) reseed from (seed, rank, step)."""
    path = Path(folder) / RNG_FILE
    if rank == 0 and path.exists():
        state = torch.load(path, weights_only=True)
        torch.set_rng_state(state["torch"])
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    else:
        torch.manual_seed(seed * 7919 + rank * 104729 + step)


def save_best_weights(folder: Path, weights: dict[str, torch.Tensor] | None) -> None:
    """Early stopping's best trainable weights, beside the checkpoint's adapter (nothing when None)."""
    if weights is not None:
        from safetensors.torch import save_file

        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()},
                  str(Path(folder) / BEST_WEIGHTS_FILE))


def load_best_weights(folder: Path) -> dict[str, torch.Tensor] | None:
    """The best weights a checkpoint carries, or None."""
    path = Path(folder) / BEST_WEIGHTS_FILE
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    return load_file(str(path))
