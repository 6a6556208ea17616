"""Fixtures for the evaluation tests: adapters that change nothing, change outputs, or learned the answers.

Not a conftest.py (a second conftest module would shadow the root one that
other test packages import as ``conftest``): test modules import these.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import make_random_adapter

# What ``overfit_adapter`` learned by heart: instruction, input, response.
LEARNED = [("Say hello", "", "Hello there!"), ("Count to three", "", "one, two, three"),
           ("Name the colour.", "grass", "Green.")]


def write_jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def save_adapter(model, tokenizer, folder: Path, kind: str = "alpaca") -> str:
    """Save a PEFT model the way a job saves its adapter (weights, tokenizer, template.json)."""
    from sienn_ray.data.templates import template_for

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    template_for(kind, tokenizer).save(folder)
    return str(folder)


def _lora(base_path: str):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path)
    return get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn", "c_proj", "c_fc"],
                                           lora_dropout=0.0, task_type="CAUSAL_LM"))


@pytest.fixture(scope="session")
def gpt2_path(embedded_models) -> str:
    return str(embedded_models["sienn-tiny-gpt2"])


@pytest.fixture(scope="session")
def llama_path(embedded_models) -> str:
    return str(embedded_models["sienn-tiny-llama"])


@pytest.fixture(scope="session")
def random_adapter(gpt2_path, tmp_path_factory) -> str:
    """Non-zero random LoRA weights: the tuned model answers differently from its base."""
    return str(make_random_adapter(gpt2_path, tmp_path_factory.mktemp("eval-random"), seed=0))


@pytest.fixture(scope="session")
def identity_adapter(gpt2_path, tmp_path_factory) -> str:
    """PEFT's default LoRA init (B = 0): the tuned model is its base, weight for weight."""
    from transformers import AutoTokenizer

    return save_adapter(_lora(gpt2_path), AutoTokenizer.from_pretrained(gpt2_path),
                        tmp_path_factory.mktemp("eval-identity"))


@pytest.fixture(scope="session")
def overfit_adapter(gpt2_path, tmp_path_factory) -> str:
    """A LoRA over-fitted (a few seconds) on ``LEARNED``, loss on the response and EOS only."""
    import torch
    from transformers import AutoTokenizer

    from sienn_ray.data.templates import render_alpaca_prompt

    tokenizer = AutoTokenizer.from_pretrained(gpt2_path)
    torch.manual_seed(0)
    model = _lora(gpt2_path)
    batches = []
    for instruction, extra, response in LEARNED:
        prompt = tokenizer(render_alpaca_prompt(instruction, extra), add_special_tokens=False)["input_ids"]
        answer = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        batches.append((torch.tensor([prompt + answer]), torch.tensor([[-100] * len(prompt) + answer])))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(60):
        for ids, labels in batches:
            model(input_ids=ids, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return save_adapter(model.eval(), tokenizer, tmp_path_factory.mktemp("eval-overfit"))


@pytest.fixture(scope="session")
def learned_file(tmp_path_factory) -> str:
    records = [{"instruction": i, "input": x, "output": o} for i, x, o in LEARNED]
    return write_jsonl(tmp_path_factory.mktemp("eval-data") / "learned.jsonl", records)


@pytest.fixture(scope="session")
def demo_file(tmp_path_factory) -> str:
    """The 30-row demo twice over: 60 rows, so a job's default validation split holds out 6."""
    from sienn_ray.data.demo import demo_records

    return write_jsonl(tmp_path_factory.mktemp("eval-data") / "demo60.jsonl", demo_records() * 2)


@pytest.fixture(scope="session")
def evaluated_job(make_completed_job, reader, demo_file) -> dict:
    """A completed job (random adapter on sienn-tiny-gpt2, trained on ``demo_file``) evaluated by the
    Ray task on its validation split, as the job runner does after training."""
    from sienn_ray.evaluation.plan import spec_for_job
    from sienn_ray.evaluation.task import evaluate_job

    job_id = make_completed_job()
    spec = spec_for_job(reader.get_job(job_id), demo_file, eval_samples=3, max_new_tokens=8)
    return {"job_id": job_id, "spec": spec, "summary": evaluate_job(spec, timeout_s=600)}
