"""Dataset statistics: token lengths exactly as training counts them, duplicates, the truncated share."""

from __future__ import annotations

import json

import pytest

from sienn_ray.data.demo import demo_records
from sienn_ray.data.stats import dataset_statistics
from sienn_ray.data.templates import template_for
from sienn_ray.data.tokenize import tokenize_example

CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
                     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."},
                     {"role": "assistant", "content": "Teal, a blue-green."}]}


@pytest.fixture(scope="module")
def tokenizer(embedded_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_models["sienn-tiny-gpt2"])


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _training_lengths(tokenizer, template, records):
    return sorted(len(tokenize_example(tokenizer, template, r, max_length=10**6)) for r in records)


@pytest.mark.parametrize("choice", ["alpaca", "chat"])
def test_lengths_duplicates_and_truncated_share_match_training(tokenizer, tmp_path, choice):
    records = demo_records() + demo_records()[:3]  # three rows repeated
    template = template_for(choice, tokenizer)
    lengths = _training_lengths(tokenizer, template, records)
    cut = lengths[len(lengths) // 2]
    stats = dataset_statistics(_write(tmp_path / "d.jsonl", records), len(records), tokenizer, template,
                               "sienn-tiny-gpt2", cut)
    assert (stats.tokens.min, stats.tokens.max) == (lengths[0], lengths[-1])
    assert stats.tokens.min <= stats.tokens.p50 <= stats.tokens.p90 <= stats.tokens.p99 <= stats.tokens.max
    assert stats.tokens.p50 in lengths and stats.duplicate_rows == 3 and stats.sampled_rows == len(records)
    truncated = [tokenize_example(tokenizer, template, r, max_length=cut) for r in records]
    assert stats.truncated_share == round(sum(1 for ex in truncated if ex is None or ex.truncated) / len(records), 4)
    assert (stats.tokenizer, stats.max_length) == ("sienn-tiny-gpt2", cut)


def test_chat_records_are_measured_with_their_turns(tokenizer, tmp_path):
    template = template_for("auto", tokenizer, data_kind="chat")
    stats = dataset_statistics(_write(tmp_path / "c.jsonl", [CHAT]), 1, tokenizer, template, "t", 512)
    assert stats.tokens.min == stats.tokens.max == _training_lengths(tokenizer, template, [CHAT])[0]
    assert stats.duplicate_rows == 0 and stats.truncated_share == 0.0


def test_a_large_dataset_is_sampled_but_every_duplicate_counted(tokenizer, tmp_path):
    records = [{"instruction": f"q{i % 40}", "input": "", "output": "a" * (i % 40 + 1)} for i in range(100)]
    template = template_for("alpaca", tokenizer)
    path = _write(tmp_path / "big.jsonl", records)
    stats = dataset_statistics(path, len(records), tokenizer, template, "t", 512, sample_rows=25)
    assert stats.sampled_rows == 25 and stats.duplicate_rows == 60
    assert stats == dataset_statistics(path, len(records), tokenizer, template, "t", 512, sample_rows=25)
    lengths = _training_lengths(tokenizer, template, records)
    assert lengths[0] <= stats.tokens.min <= stats.tokens.max <= lengths[-1]


@pytest.mark.parametrize("base", ["sienn-tiny-gpt2", "sienn-tiny-llama", "smollm2-135m-instruct"])
@pytest.mark.parametrize("kind", ["instruction", "chat"])
def test_the_upload_tokenizer_counts_as_the_training_tokenizer(base, kind, tmp_path):
    from transformers import AutoTokenizer

    from sienn_ray.data.base_tokenizer import BaseTokenizer
    from sienn_ray.models.resolve import resolve_model

    folder = resolve_model(base).path
    light, full = BaseTokenizer(folder), AutoTokenizer.from_pretrained(folder)
    records = [CHAT] * 2 if kind == "chat" else demo_records()
    path = _write(tmp_path / "d.jsonl", records)
    template = template_for("auto", full, data_kind=kind)
    assert template_for("auto", light, data_kind=kind) == template
    assert template_for("alpaca", light) == template_for("alpaca", full)
    assert (dataset_statistics(path, len(records), light, template, base, 64)
            == dataset_statistics(path, len(records), full, template, base, 64))
