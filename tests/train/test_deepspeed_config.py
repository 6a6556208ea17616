"""The generated DeepSpeed config: ZeRO stage, torch AdamW (no op build), bf16 only on GPUs."""

from __future__ import annotations

import pytest

from sienn_ray.schemas.jobs import DeepSpeedConfig, TrainingConfig
from sienn_ray.train.deepspeed_config import deepspeed_config


def test_stage_and_torch_adam():
    config = TrainingConfig(batch_size=4, gradient_accumulation_steps=2, learning_rate=1e-3, weight_decay=0.1,
                            max_grad_norm=0.5, deepspeed=DeepSpeedConfig(stage=2))
    ds = deepspeed_config(config, world_size=3, on_gpu=False)
    assert ds["zero_optimization"] == {"stage": 2}
    assert ds["optimizer"] == {"type": "AdamW",
                               "params": {"lr": 1e-3, "weight_decay": 0.1, "torch_adam": True}}
    assert ds["train_batch_size"] == 24 and ds["gradient_accumulation_steps"] == 2
    assert ds["gradient_clipping"] == 0.5 and "bf16" not in ds


def test_offload_and_bf16_on_gpu():
    config = TrainingConfig(bf16=True, deepspeed=DeepSpeedConfig(stage=3, offload_optimizer=True))
    ds = deepspeed_config(config, world_size=1, on_gpu=True)
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["bf16"] == {"enabled": True}
    assert "bf16" not in deepspeed_config(config, world_size=1, on_gpu=False)


def test_needs_a_deepspeed_section():
    with pytest.raises(ValueError):
        deepspeed_config(TrainingConfig(), world_size=1, on_gpu=False)
