"""bf16 + DeepSpeed ZeRO-2 on one GPU through Ray Train (skipped without CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sienn_ray.schemas.jobs import DeepSpeedConfig
from sienn_ray.train.launch import build_trainer

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_bf16_zero2_on_one_gpu(ray_session, make_spec):
    spec = make_spec(use_gpu=True, bf16=True, deepspeed=DeepSpeedConfig(stage=2).model_dump(), num_epochs=2)
    result = build_trainer(spec).fit()
    assert result.error is None and result.metrics["step"] == 16
    assert result.metrics["train_loss"] is not None and result.metrics["train_loss"] < 8.0
    assert Path(spec.adapter_dir, "adapter_model.safetensors").exists()
