"""Evaluations run in this process on the toy models, without Ray."""

from __future__ import annotations

import math

import pytest

from sienn_ray.data.demo import demo_records
from sienn_ray.evaluation.record import evaluate_and_record
from sienn_ray.evaluation.reports import read_report
from sienn_ray.evaluation.run import input_problems, run_evaluation
from sienn_ray.schemas.common import new_id
from sienn_ray.schemas.evaluation import EvaluationSpec

from evaluation_fixtures import (  # noqa: F401 (fixtures)
    LEARNED, demo_file, gpt2_path, identity_adapter, learned_file, llama_path, overfit_adapter, random_adapter,
    save_adapter, write_jsonl,
)


def _spec(base: str, adapter: str, data: str, **kw) -> EvaluationSpec:
    return EvaluationSpec(job_id=new_id("job"), base_model_path=base, adapter_path=adapter, dataset_path=data, **kw)


def test_a_tuned_model_that_learned_the_answers_beats_its_base(gpt2_path, overfit_adapter, learned_file):
    report = run_evaluation(_spec(gpt2_path, overfit_adapter, learned_file, max_new_tokens=24))
    assert report.status == "completed" and report.rows_used == [0, 1, 2] and not report.rows_dropped
    assert [r.reference for r in report.rows] == [o for _, _, o in LEARNED]
    assert [r.tuned_output for r in report.rows] == [o for _, _, o in LEARNED]
    assert report.rows[2].prompt == "Name the colour." and report.rows[2].input == "grass"
    tuned, base = report.tuned, report.base
    assert (tuned.exact_match, tuned.token_f1, tuned.rouge_l) == (1.0, 1.0, 1.0)
    assert base.exact_match == 0.0 and report.deltas.exact_match == 1.0
    assert tuned.eval_loss < base.eval_loss - 1.0 and report.deltas.eval_loss < -1.0
    assert tuned.perplexity == pytest.approx(math.exp(tuned.eval_loss))
    # Each tuned answer stopped at its EOS, well inside the budget; the random base never does.
    assert tuned.generated_tokens < 3 * 12 and base.generated_tokens == 3 * 24
    assert all(r.tuned_scores.exact_match == 1.0 and r.base_scores.exact_match == 0.0 for r in report.rows)
    assert report.started_at <= report.finished_at and report.duration_seconds > 0


def _plain_loss(model, tokenizer, records) -> float:
    """Token-weighted loss on response + EOS, computed with nothing but transformers' own labels."""
    import torch

    from sienn_ray.data.templates import render_alpaca_prompt

    total, count = 0.0, 0
    for rec in records:
        prompt = tokenizer(render_alpaca_prompt(rec["instruction"], rec["input"]), add_special_tokens=False)
        answer = tokenizer(rec["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = torch.tensor([prompt["input_ids"] + answer])
        labels = torch.tensor([[-100] * len(prompt["input_ids"]) + answer])
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss.item()
        total, count = total + loss * len(answer), count + len(answer)
    return total / count


def test_loss_is_on_response_tokens_as_plain_transformers_computes_it(gpt2_path, random_adapter, demo_file):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [0, 2, 4, 12, 20]
    report = run_evaluation(_spec(gpt2_path, random_adapter, demo_file, rows=rows, eval_samples=2,
                                  max_new_tokens=4, batch_size=3))
    records = [demo_records()[r] for r in rows]
    tokenizer = AutoTokenizer.from_pretrained(gpt2_path)
    base = AutoModelForCausalLM.from_pretrained(gpt2_path).eval()
    assert report.base.eval_loss == pytest.approx(_plain_loss(base, tokenizer, records), rel=1e-5)
    tuned = PeftModel.from_pretrained(base, random_adapter).eval()
    assert report.tuned.eval_loss == pytest.approx(_plain_loss(tuned, tokenizer, records), rel=1e-5)
    assert report.tuned.eval_loss != pytest.approx(report.base.eval_loss, rel=1e-4)
    answers = sum(len(tokenizer(r["output"], add_special_tokens=False)["input_ids"]) + 1 for r in records)
    assert report.base.loss_tokens == report.tuned.loss_tokens == answers
    assert len(report.rows) == 2 and report.rows_used == rows
    assert any(r.base_output != r.tuned_output for r in report.rows)


def test_identical_weights_give_identical_figures(gpt2_path, identity_adapter, demo_file):
    report = run_evaluation(_spec(gpt2_path, identity_adapter, demo_file, rows=[1, 3, 5], eval_samples=3,
                                  max_new_tokens=6))
    assert report.tuned.eval_loss == pytest.approx(report.base.eval_loss, abs=1e-9)
    assert [r.tuned_output for r in report.rows] == [r.base_output for r in report.rows]
    assert report.deltas.eval_loss == pytest.approx(0.0, abs=1e-9) and report.deltas.rouge_l == 0.0


def test_batched_generation_answers_as_one_row_at_a_time(llama_path, tmp_path_factory, demo_file):
    """Left padding must not change an answer: prompts of different lengths, batched or alone (Llama)."""
    from helpers import make_random_adapter

    adapter = str(make_random_adapter(llama_path, tmp_path_factory.mktemp("eval-llama"), seed=3))
    rows = [0, 2, 4, 12]  # with and without an input field: four prompt lengths
    alone = run_evaluation(_spec(llama_path, adapter, demo_file, rows=rows, eval_samples=4, max_new_tokens=8,
                                 batch_size=1, generation_batch_size=1))
    batched = run_evaluation(_spec(llama_path, adapter, demo_file, rows=rows, eval_samples=4, max_new_tokens=8,
                                   batch_size=4, generation_batch_size=4))
    assert [(r.base_output, r.tuned_output) for r in batched.rows] == \
        [(r.base_output, r.tuned_output) for r in alone.rows]
    assert batched.tuned.eval_loss == pytest.approx(alone.tuned.eval_loss, rel=1e-5)


def test_chat_records_are_asked_their_last_turn(gpt2_path, random_adapter, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from sienn_ray.data.templates import template_for

    chat_adapter = tmp_path / "chat-adapter"
    shutil.copytree(random_adapter, chat_adapter)
    template_for("chat", AutoTokenizer.from_pretrained(gpt2_path)).save(chat_adapter)
    conversations = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                      {"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]
                     for i in range(3)]
    data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": m} for m in conversations])
    report = run_evaluation(_spec(gpt2_path, str(chat_adapter), data, eval_samples=2, max_new_tokens=4))
    assert report.rows_used == [0, 1, 2] and len(report.rows) == 2
    assert [(r.prompt, r.reference) for r in report.rows] == [("Question 0?", "Answer 0."), ("Question 1?", "Answer 1.")]
    assert report.base.loss_tokens > 0


def test_rows_whose_response_is_truncated_away_are_reported(gpt2_path, random_adapter, demo_file):
    report = run_evaluation(_spec(gpt2_path, random_adapter, demo_file, rows=[0, 1], eval_samples=1,
                                  max_new_tokens=2, max_length=8))
    assert report.rows_dropped == [0, 1] and report.rows_used == []
    assert report.base.eval_loss is None and report.base.loss_tokens == 0 and len(report.rows) == 1


def test_failures_are_recorded_with_their_reason_not_raised(gpt2_path, random_adapter, demo_file, tmp_path):
    missing = _spec(gpt2_path, str(tmp_path / "no-adapter"), str(tmp_path / "no-data.jsonl"))
    summary = evaluate_and_record(missing)
    assert summary.status == "failed" and "adapter_config.json" in summary.error and "no-data.jsonl" in summary.error
    report = read_report(missing.job_id)
    assert report.status == "failed" and report.error == summary.error and report.rows == []
    assert summary.report_path.endswith(f"{missing.job_id}/evaluation.json")

    beyond = _spec(gpt2_path, random_adapter, demo_file, rows=[1, 999])
    summary = evaluate_and_record(beyond)
    assert summary.status == "failed" and "no rows [999]" in summary.error
    assert read_report(beyond.job_id).status == "failed"


def test_an_adapter_without_weights_is_an_input_problem(gpt2_path, demo_file, tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "template.json").write_text("{}")
    assert input_problems(_spec(gpt2_path, str(tmp_path), demo_file)) == [
        f"the job's adapter is incomplete (adapter_config.json or its weights not found in {tmp_path})"]
