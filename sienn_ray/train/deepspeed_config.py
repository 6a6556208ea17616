"""The DeepSpeed config a job's ``deepspeed`` setting turns into.

The optimizer is DeepSpeed's AdamW with ``torch_adam: true`` (PyTorch's own
AdamW), so no fused or CPU-Adam op is compiled at start, and it runs on CPU
workers with gloo as well as on GPUs. The learning-rate schedule is ours (passed
to ``deepspeed.initialize`` as a callable), so it matches the non-DeepSpeed path.
"""

from __future__ import annotations

from ..schemas.jobs import TrainingConfig


def deepspeed_config(config: TrainingConfig, world_size: int, on_gpu: bool) -> dict:
    """A DeepSpeed config dict for ``config`` (which must have ``deepspeed`` set)."""
    if config.deepspeed is None:
        raise ValueError("deepspeed_config needs config.deepspeed")
    ds = config.deepspeed
    zero: dict = {"stage": ds.stage}
    if ds.offload_optimizer and ds.stage > 0:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": on_gpu}
    if ds.stage == 3:
        # Keep small parameters whole: LoRA matrices are tiny and gathering them costs more than it saves.
        zero["stage3_param_persistence_threshold"] = 10_000
    out = {
        "train_micro_batch_size_per_gpu": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "train_batch_size": config.batch_size * config.gradient_accumulation_steps * world_size,
        "gradient_clipping": config.max_grad_norm,
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": config.learning_rate, "weight_decay": config.weight_decay, "torch_adam": True},
        },
        "zero_optimization": zero,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if config.bf16 and on_gpu:
        out["bf16"] = {"enabled": True}
    return out
