"""The training run in one process (no Ray): resume, early stopping, truncation, reports, fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sienn_ray.data.templates import PromptTemplate
from sienn_ray.jobs.lifecycle import PROGRESS_FIELDS
from sienn_ray.schemas.jobs import LossPoint, TrainingMetrics
from sienn_ray.train import loop
from sienn_ray.train.evaluate import EvalResult
from sienn_ray.train.hooks import LocalHooks
from sienn_ray.train.loop import run_training
from sienn_ray.train.report import ProgressReporter
from sienn_ray.train.state import TrainState
from train_fakes import FakeRegistry


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / "adapter_model.safetensors"))


def _same(a: dict, b: dict, atol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol) for k in a)


def _reporter(registry: FakeRegistry, job_id: str) -> ProgressReporter:
    return ProgressReporter(lambda: registry, job_id, min_interval_s=0.0, poll=lambda ref: ref)


def test_a_resumed_run_continues_at_the_checkpoint_step_and_ends_where_an_uninterrupted_one_does(
        make_spec, tmp_path):
    spec = make_spec(lora_dropout=0.1, checkpoint_every_steps=3)  # dropout: the RNG state is resumed too
    full = LocalHooks(tmp_path / "full")
    run_training(spec, full)
    assert [r["step"] for r in full.reported] == [3, 6, 9, 12, 15, 16]
    reference = _weights(spec.adapter_dir)

    mid_epoch = tmp_path / "full" / "checkpoint_00000006"  # 6 steps = 24 of 30 examples into epoch 1
    assert TrainState.load(mid_epoch).micro_in_epoch == 6
    registry = FakeRegistry()
    resumed_spec = spec.model_copy(update={"adapter_dir": str(tmp_path / "resumed-adapter")})
    resumed = LocalHooks(tmp_path / "resumed", resume_from=mid_epoch, reporter=_reporter(registry, spec.job_id))
    run_training(resumed_spec, resumed)
    assert [r["step"] for r in resumed.reported] == [9, 12, 15, 16]
    assert ("resumed", {"step": 6, "epoch": 0}) in registry.events()
    assert _same(_weights(resumed_spec.adapter_dir), reference)


def test_the_final_adapter_is_a_complete_peft_folder(make_spec, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    spec = make_spec(num_epochs=1)
    run_training(spec, LocalHooks(tmp_path / "ckpt"))
    adapter = Path(spec.adapter_dir)
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "template.json"} <= {
        p.name for p in adapter.iterdir()}
    assert PromptTemplate.load(adapter).kind == "alpaca"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == spec.config.lora_r
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(spec.model_path), str(adapter))
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in model.named_parameters())
    assert not list(adapter.parent.glob(".adapter.tmp-*"))


def test_progress_reports_fit_the_registry_schema(make_spec, tmp_path):
    registry = FakeRegistry()
    spec = make_spec(rows=60)  # >= 50 rows: 10% held out, eval_loss each epoch
    run_training(spec, LocalHooks(tmp_path / "ckpt", reporter=_reporter(registry, spec.job_id)))
    updates = [args[1] for args in registry.args_of("report_progress")]
    assert all(set(u) <= PROGRESS_FIELDS | {"metrics"} for u in updates)
    for u in updates:
        TrainingMetrics.model_validate(u.get("metrics", {}))
    assert updates[-1]["progress"] == 100.0 and updates[-1]["step"] == updates[-1]["total_steps"] == 28
    assert any(u.get("last_checkpoint") for u in updates)
    points = [LossPoint.model_validate(args[1]) for args in registry.args_of("add_loss_point")]
    assert points and sum(p.eval_loss is not None for p in points) == 2
    types = [t for t, _ in registry.events()]
    assert types.count("epoch_end") == 2 and types.count("evaluation") == 2 and types.count("checkpoint") == 2


def test_truncation_is_reported(make_spec, tmp_path):
    registry = FakeRegistry()
    spec = make_spec(num_epochs=1, max_length=80)
    metrics = run_training(spec, LocalHooks(tmp_path / "ckpt", reporter=_reporter(registry, spec.job_id)))
    assert metrics["truncated_examples"] > 0
    (data,) = [d for t, d in registry.events() if t == "truncation"]
    assert data["truncated"] == metrics["truncated_examples"] and data["max_length"] == 80
    assert data["dropped"] > 0  # some prompts alone exceed 80 tokens
    assert any(args[1].get("truncated_examples") for args in registry.args_of("report_progress"))


def test_a_dataset_cut_away_entirely_fails_with_the_reason(make_spec, tmp_path):
    with pytest.raises(ValueError, match="max_length=40"):
        run_training(make_spec(num_epochs=1, max_length=40), LocalHooks(tmp_path / "ckpt"))


def test_early_stopping_stops_and_keeps_the_best_adapter(make_spec, tmp_path, monkeypatch):
    eval_losses = iter([2.0, 1.5, 1.6, 1.7, 1.8, 1.9])
    monkeypatch.setattr(loop._Run, "_evaluate", lambda self: EvalResult(next(eval_losses), None))
    registry = FakeRegistry()
    spec = make_spec(rows=60, num_epochs=6, early_stopping_patience=2)
    hooks = LocalHooks(tmp_path / "ckpt", reporter=_reporter(registry, spec.job_id))
    metrics = run_training(spec, hooks)
    assert metrics["stopped"] == "early_stopping" and [r["epoch"] for r in hooks.reported] == [1, 2, 3, 4]
    assert ("early_stopping", {"epoch": 4, "best_eval_loss": 1.5, "patience": 2}) in registry.events()
    best = _weights(Path(hooks.reported[1]["checkpoint"]) / "adapter")
    assert _same(_weights(spec.adapter_dir), best)


def test_models_that_cannot_pack_train_with_length_grouped_padding(make_spec, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "probe_packing", lambda *a: False)
    spec = make_spec(num_epochs=1, model="sienn-tiny-llama")
    metrics = run_training(spec, LocalHooks(tmp_path / "ckpt"))
    assert metrics["train_loss"] is not None and Path(spec.adapter_dir, "adapter_model.safetensors").exists()


@pytest.mark.parametrize("model", ["sienn-tiny-gpt2", "sienn-tiny-llama"])
def test_packing_probe_accepts_both_embedded_architectures(embedded_models, model):
    from sienn_ray.schemas.jobs import TrainingConfig
    from sienn_ray.train.model import load_lora_model, probe_packing

    peft_model = load_lora_model(embedded_models[model], TrainingConfig())
    assert probe_packing(peft_model, pad_id=1, vocab_size=peft_model.config.vocab_size)


def test_gradient_accumulation_counts_optimizer_steps(make_spec, tmp_path):
    spec = make_spec(num_epochs=1, batch_size=2, gradient_accumulation_steps=4)
    hooks = LocalHooks(tmp_path / "ckpt")
    metrics = run_training(spec, hooks)
    assert metrics["step"] == 4  # 15 micro-batches of 2 -> 4 optimizer steps (the last one short)


def test_chat_data_trains_with_the_chat_template(make_spec, tmp_path):
    data = tmp_path / "chat.jsonl"
    with open(data, "w", encoding="utf-8") as handle:
        for i in range(12):
            handle.write(json.dumps({"messages": [{"role": "user", "content": f"Say {i}"},
                                                  {"role": "assistant", "content": f"{i}!"}]}) + "\n")
    spec = make_spec(num_epochs=1, model="sienn-tiny-llama").model_copy(
        update={"dataset_path": str(data), "data_kind": "chat"})
    metrics = run_training(spec, LocalHooks(tmp_path / "ckpt"))
    assert metrics["step"] == 3
    template = PromptTemplate.load(Path(spec.adapter_dir))
    assert template.kind == "chat" and "<|im_start|>" in template.chat_template


def _mean(pairs) -> float:
    return sum(loss * n for loss, n in pairs) / sum(n for _, n in pairs)


def test_train_loss_is_the_token_weighted_mean_over_the_logging_window(make_spec, tmp_path, monkeypatch):
    """Status and history show a window of optimizer steps (and the epoch mean at epoch end), not a micro-batch."""
    seen: list[tuple[float, int]] = []
    real_loss = loop.batch_loss

    def recording(model, batch):
        loss = real_loss(model, batch)
        seen.append((loss.item(), batch.num_targets))
        return loss

    monkeypatch.setattr(loop, "batch_loss", recording)
    registry = FakeRegistry()
    spec = make_spec(rows=60, num_epochs=2, validation_split=0.0)  # 15 optimizer steps per epoch
    run_training(spec, LocalHooks(tmp_path / "ckpt", reporter=_reporter(registry, spec.job_id)))
    assert loop.LOSS_WINDOW_STEPS == 10 and len(seen) == 30
    points = {args[1]["step"]: args[1]["train_loss"] for args in registry.args_of("add_loss_point")}
    expected = {10: _mean(seen[:10]), 15: _mean(seen[:15]), 25: _mean(seen[15:25]), 30: _mean(seen[15:30])}
    assert points.keys() == expected.keys()
    assert all(abs(points[s] - expected[s]) < 1e-9 for s in expected)
    with_loss = {args[1]["step"] for args in registry.args_of("report_progress")
                 if "train_loss" in args[1].get("metrics", {})}
    assert with_loss == {10, 15, 25, 30}
    epoch_ends = [d["train_loss"] for t, d in registry.events() if t == "epoch_end"]
    assert epoch_ends == pytest.approx([expected[15], expected[30]], abs=1e-9)


def test_a_resumed_run_reports_the_same_epoch_loss_as_an_uninterrupted_one(make_spec, tmp_path):
    spec = make_spec(lora_dropout=0.1, checkpoint_every_steps=3)
    full_registry = FakeRegistry()
    run_training(spec, LocalHooks(tmp_path / "full", reporter=_reporter(full_registry, spec.job_id)))
    resumed_registry = FakeRegistry()
    resumed_spec = spec.model_copy(update={"adapter_dir": str(tmp_path / "resumed-adapter")})
    run_training(resumed_spec, LocalHooks(tmp_path / "resumed", resume_from=tmp_path / "full" / "checkpoint_00000006",
                                          reporter=_reporter(resumed_registry, spec.job_id)))

    def epoch_losses(registry):
        return [d["train_loss"] for t, d in registry.events() if t == "epoch_end"]

    assert epoch_losses(resumed_registry) == pytest.approx(epoch_losses(full_registry), abs=1e-6)


def test_after_a_resume_early_stopping_still_ends_on_the_best_adapter(make_spec, tmp_path, monkeypatch):
    eval_losses = {1: 2.0, 2: 1.5, 3: 1.6, 4: 1.7}
    monkeypatch.setattr(loop._Run, "_evaluate", lambda self: EvalResult(eval_losses[self.state.epoch], None))
    spec = make_spec(rows=60, num_epochs=6, early_stopping_patience=2)
    full = LocalHooks(tmp_path / "full")
    run_training(spec, full)
    best = _weights(Path(full.reported[1]["checkpoint"]) / "adapter")
    assert _same(_weights(spec.adapter_dir), best)

    after_epoch_3 = Path(full.reported[2]["checkpoint"])
    resumed_spec = spec.model_copy(update={"adapter_dir": str(tmp_path / "resumed-adapter")})
    resumed = LocalHooks(tmp_path / "resumed", resume_from=after_epoch_3)
    metrics = run_training(resumed_spec, resumed)
    assert metrics["stopped"] == "early_stopping" and [r["epoch"] for r in resumed.reported] == [4]
    last = _weights(Path(resumed.reported[-1]["checkpoint"]) / "adapter")
    assert not _same(last, best)  # epoch 4 trained on: ending on the best adapter is a choice, not a given
    assert _same(_weights(resumed_spec.adapter_dir), best)


def test_the_rng_state_round_trips_and_is_loaded_without_unpickling_code(tmp_path):
    import os
    import pickle
    import random

    from sienn_ray.train.state import RNG_FILE, restore_rng

    TrainState().save(tmp_path)
    expected = (torch.rand(3), random.random())
    restore_rng(tmp_path, 0, seed=0, step=0)
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    torch.save({"torch": torch.get_rng_state(), "python": Payload()}, tmp_path / RNG_FILE)
    with pytest.raises(pickle.UnpicklingError):
        restore_rng(tmp_path, 0, seed=0, step=0)
    assert not (tmp_path / "ran").exists()
