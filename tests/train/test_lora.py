"""Checking a training request against the model before it is queued, and default LoRA targets."""

from __future__ import annotations

import time

from sienn_ray.schemas.jobs import DeepSpeedConfig, TrainingConfig
from sienn_ray.train.lora import GPT2_TARGETS, LLAMA_TARGETS, resolve_target_modules, validate_training_request


def test_a_good_request_has_no_problems(embedded_models):
    for path in embedded_models.values():
        assert validate_training_request(path, TrainingConfig(max_length=1024)) == []


def test_every_problem_is_listed_at_once(embedded_models):
    config = TrainingConfig(max_length=4096, target_modules=["q_proj", "c_attn", "nope"],
                            deepspeed=DeepSpeedConfig(stage=0, offload_optimizer=True))
    problems = validate_training_request(embedded_models["sienn-tiny-gpt2"], config)
    assert len(problems) == 3
    assert "max_length 4096 exceeds the model's context length of 1024" in problems[0]
    assert "['q_proj', 'nope']" in problems[1] and "c_attn" in problems[1].split("adapt:")[1]
    assert "offload_optimizer" in problems[2]


def test_llama_modules_are_checked_against_llama(embedded_models):
    path = embedded_models["sienn-tiny-llama"]
    assert validate_training_request(path, TrainingConfig(target_modules=["q_proj", "down_proj"])) == []
    (problem,) = validate_training_request(path, TrainingConfig(target_modules=["c_fc"]))
    assert "['c_fc']" in problem and "gate_proj" in problem


def test_validation_is_fast_enough_for_a_request(embedded_models):
    path = embedded_models["sienn-tiny-llama"]
    validate_training_request(path, TrainingConfig(target_modules=["q_proj"]))  # warm imports
    start = time.perf_counter()
    validate_training_request(path, TrainingConfig(target_modules=["k_proj"], max_length=2048))
    assert time.perf_counter() - start < 0.5


def test_default_targets_per_architecture(embedded_models):
    assert resolve_target_modules(embedded_models["sienn-tiny-gpt2"], TrainingConfig()) == list(GPT2_TARGETS)
    assert resolve_target_modules(embedded_models["sienn-tiny-llama"], TrainingConfig()) == list(LLAMA_TARGETS)
    chosen = TrainingConfig(target_modules=["c_attn"])
    assert resolve_target_modules(embedded_models["sienn-tiny-gpt2"], chosen) == ["c_attn"]
