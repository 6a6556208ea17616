"""Where a run stands, saved with each checkpoint so a resumed run continues at that exact step."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

STATE_FILE = "trainer_state.json"
RNG_FILE = "rng.pt"


@dataclass
class TrainState:
    """Counters of a run. ``epoch``/``micro_in_epoch`` locate the next micro-batch in the epoch's plan."""

    global_step: int = 0
    epoch: int = 0
    micro_in_epoch: int = 0
    total_steps: int = 0
    tokens_seen: int = 0
    best_eval_loss: float | None = None
    evals_without_improvement: int = 0
    last_eval_loss: float | None = None
    stopped: str | None = None

    def save(self, folder: Path) -> None:
        (Path(folder) / STATE_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        torch.save({"torch": torch.get_rng_state(), "python": random.getstate()}, Path(folder) / RNG_FILE)

    @classmethod
    def load(cls, folder: Path) -> "TrainState":
        return cls(**json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8")))


def restore_rng(folder: Path, rank: int, seed: int, step: int) -> None:
    """Rank 0 gets its saved RNG back; other ranks (whose state is not saved) reseed from (seed, rank, step)."""
    path = Path(folder) / RNG_FILE
    if rank == 0 and path.exists():
        state = torch.load(path, weights_only=False)
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
    else:
        torch.manual_seed(seed * 7919 + rank * 104729 + step)
