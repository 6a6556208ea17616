"""The few collectives a training run needs across its ranks (no-ops in a world of one)."""

from __future__ import annotations

import torch


class Collectives:
    """Sums and maxima over every rank, as float64 tensors on the run's device."""

    def __init__(self, world_size: int, device: torch.device):
        self.world_size, self.device = world_size, device

    def reduce(self, values: list[float], op: str = "sum") -> list[float]:
        """``values`` summed (or, with ``op="max"``, maximised) over every rank."""
        if self.world_size == 1:
            return [float(v) for v in values]
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor.tolist()

    def agree(self, flag: bool) -> bool:
        """True on every rank if any rank says so (rank 0 holds the registry's cancel flag)."""
        return bool(self.reduce([1.0 if flag else 0.0], "max")[0])
