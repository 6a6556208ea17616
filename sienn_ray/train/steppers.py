"""Optimizer steps, two ways with one interface: plain PyTorch (one process or DDP) and DeepSpeed ZeRO.

The loop calls ``backward(loss, boundary)`` for every micro-batch and ``step()``
at the end of each accumulation window; checkpoints hold the LoRA adapter in
PEFT format (usable as is) plus what is needed to continue exactly: optimizer
and scheduler state (``optimizer.pt``), or DeepSpeed's own per-rank files.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch

from ..paths import CHECKPOINT_ADAPTER_DIR
from ..schemas.jobs import TrainingConfig

ADAPTER_SUBDIR = CHECKPOINT_ADAPTER_DIR
OPTIMIZER_FILE = "optimizer.pt"
DEEPSPEED_SUBDIR = "deepspeed"
DEEPSPEED_TAG = "state"


def make_scheduler(optimizer, config: TrainingConfig, total_steps: int):
    from transformers import get_scheduler

    name = "constant_with_warmup" if config.lr_scheduler == "constant" else config.lr_scheduler
    warmup = math.ceil(config.warmup_ratio * total_steps)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=max(total_steps, 1))


def load_adapter_weights(peft_model, folder: Path) -> None:
    """Put the LoRA weights saved in ``folder`` (PEFT format) into ``peft_model``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(Path(folder) / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(peft_model, state)
    if getattr(result, "unexpected_keys", None):
        raise RuntimeError(f"checkpoint adapter does not fit the model: {result.unexpected_keys[:5]}")


class TorchStepper:
    """AdamW + scheduler on the trainable (LoRA) parameters; DDP when the world has several ranks."""

    def __init__(self, peft_model, config: TrainingConfig, total_steps: int, world_size: int,
                 wrap=None):
        self.peft_model = peft_model
        self.model = wrap(peft_model) if (wrap is not None and world_size > 1) else peft_model
        self.params = [p for p in peft_model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, config, total_steps)
        self.config = config

    def micro_context(self, boundary: bool):
        """DDP syncs gradients only on the last micro-batch of an accumulation window."""
        if not boundary and hasattr(self.model, "no_sync"):
            return self.model.no_sync()
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        (loss / self.config.gradient_accumulation_steps).backward()

    def step(self) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    @property
    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, folder: Path, rank: int) -> bool:
        """Write the checkpoint files of this rank; True if it wrote any."""
        if rank != 0:
            return False
        self.save_adapter(folder / ADAPTER_SUBDIR, rank)
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                   folder / OPTIMIZER_FILE)
        return True

    def load(self, folder: Path) -> None:
        load_adapter_weights(self.peft_model, folder / ADAPTER_SUBDIR)
        state = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def save_adapter(self, folder: Path | None, rank: int) -> None:
        """Rank 0 writes the adapter in PEFT format into ``folder`` (None on the other ranks)."""
        if rank == 0:
            self.peft_model.save_pretrained(str(folder), safe_serialization=True)


class DeepSpeedStepper:
    """DeepSpeed ZeRO 0-3 over the LoRA parameters (frozen base weights stay out of checkpoints)."""

    def __init__(self, peft_model, config: TrainingConfig, total_steps: int, world_size: int, on_gpu: bool):
        import deepspeed

        from .deepspeed_config import deepspeed_config

        self.peft_model = peft_model
        self.config = config
        self.ds_config = deepspeed_config(config, world_size, on_gpu)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        self.model, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=peft_model, model_parameters=params, config=self.ds_config,
            lr_scheduler=lambda opt: make_scheduler(opt, config, total_steps),
        )
        self.stage = config.deepspeed.stage

    def micro_context(self, boundary: bool):
        self.model.set_gradient_accumulation_boundary(boundary)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        # DeepSpeed divides by gradient_accumulation_steps itself.
        self.model.backward(loss)
        if not boundary:
            self.model.step()  # a no-op off the boundary, but DeepSpeed counts micro-steps here

    def step(self) -> float:
        self.model.step()
        norm = self.model.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    @property
    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, folder: Path, rank: int) -> bool:
        # Collective: every rank writes its optimizer partition.
        self.model.save_checkpoint(str(folder / DEEPSPEED_SUBDIR), tag=DEEPSPEED_TAG, save_latest=False,
                                   exclude_frozen_parameters=True)
        self.save_adapter(folder / ADAPTER_SUBDIR, rank)
        return True

    def load(self, folder: Path) -> None:
        path, _ = self.model.load_checkpoint(str(folder / DEEPSPEED_SUBDIR), tag=DEEPSPEED_TAG,
                                             load_module_strict=False, load_optimizer_states=True,
                                             load_lr_scheduler_states=True)
        if path is None:
            raise RuntimeError(f"no DeepSpeed state in checkpoint {folder}")

    def save_adapter(self, folder: Path | None, rank: int) -> None:
        """Collective under ZeRO-3 (parameters are gathered); rank 0 writes into ``folder``."""
        with self.full_weights():
            if rank == 0:
                self.peft_model.save_pretrained(str(folder), safe_serialization=True)

    def full_weights(self):
        if self.stage != 3:
            return contextlib.nullcontext()
        import deepspeed

        params = [p for p in self.peft_model.parameters() if p.requires_grad]
        return deepspeed.zero.GatheredParameters(params, modifier_rank=None)
