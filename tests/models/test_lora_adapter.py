"""The one reader of PEFT LoRA adapters: tensor names and scaling, as PEFT defines them (pure, no torch)."""

from __future__ import annotations

import math

import pytest

from sienn_ray.models.lora_adapter import NotPlainLora, lora_pairs, lora_scaling


def test_pairs_read_peft_names_with_or_without_the_prefix():
    tensors = {"base_model.model.h.0.attn.c_attn.lora_A.weight": "a0",
               "base_model.model.h.0.attn.c_attn.lora_B.weight": "b0",
               "h.1.mlp.c_fc.lora_A.weight": "a1", "h.1.mlp.c_fc.lora_B.weight": "b1"}
    assert lora_pairs(tensors) == {"h.0.attn.c_attn": ("a0", "b0"), "h.1.mlp.c_fc": ("a1", "b1")}


@pytest.mark.parametrize("tensors", [
    {"base_model.model.wte.weight": 0},  # modules_to_save-style full weight
    {"base_model.model.h.0.attn.c_attn.lora_A.weight": 0},  # B missing
    {"base_model.model.h.0.attn.c_attn.lora_magnitude_vector": 0},  # DoRA
])
def test_pairs_refuse_anything_but_complete_a_b_pairs(tensors):
    with pytest.raises(NotPlainLora):
        lora_pairs(tensors)


def test_scaling_follows_peft_patterns_and_rslora():
    config = {"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"layers.1.v_proj": 2}}
    assert lora_scaling(config, "model.layers.0.k_proj") == 2.0
    assert lora_scaling(config, "model.layers.0.q_proj") == 4.0
    assert lora_scaling(config, "model.layers.1.v_proj") == 0.25
    assert lora_scaling(config | {"use_rslora": True}, "model.layers.0.k_proj") == 16 / math.sqrt(8)
    assert lora_scaling({}, "x") == 1.0  # PEFT's defaults: r 8, lora_alpha 8
