"""A large dataset's shard comes from a memory-mapped Arrow cache: the same examples, the same training."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from safetensors.torch import load_file

from sienn_ray.data import tokenize
from sienn_ray.settings import reset_settings
from sienn_ray.data.arrow_examples import ArrowExamples
from sienn_ray.data.templates import template_for
from sienn_ray.train import inputs
from sienn_ray.train.hooks import LocalHooks
from sienn_ray.train.loop import run_training

KEYS = ("step", "epoch", "train_loss", "eval_loss", "eval_token_accuracy", "learning_rate", "truncated_examples")


@contextmanager
def arrow_always():
    """Every shard goes to the Arrow cache, whatever its size (SIENN_ARROW_MIN_BYTES=0), inside the block."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SIENN_ARROW_MIN_BYTES", "0")
        reset_settings()
        try:
            yield
        finally:
            env.undo()
            reset_settings()


@pytest.fixture()
def tokenizer(embedded_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_models["sienn-tiny-gpt2"])


@pytest.mark.parametrize("rank", [0, 1])
def test_an_arrow_shard_holds_the_examples_of_a_list_shard(make_spec, tokenizer, monkeypatch, rank):
    spec = make_spec(rows=31)  # 31 rows over 2 ranks: rank 1 gets a wrap-around copy
    template = template_for("alpaca", tokenizer)
    rows = list(range(2, 31))
    args = (spec.dataset_path, rows, rank, 2, tokenizer, template, 64, False)  # 64 tokens: some are cut away
    listed = inputs.load_shard(*args)
    with arrow_always():
        arrow = inputs.load_shard(*args)
    assert isinstance(arrow.examples._head, ArrowExamples)
    assert list(arrow.examples) == listed.examples and arrow.real == listed.real and arrow.stats == listed.stats
    assert arrow.stats.dropped and arrow.examples[-1] == listed.examples[-1]
    assert list(inputs.fill_to(arrow.examples, 40)) == inputs.fill_to(listed.examples, 40)
    assert inputs.fill_to(arrow.examples, 40)[5:9] == inputs.fill_to(listed.examples, 40)[5:9]

    def no_tokenizing(*a, **k):
        raise AssertionError("the cached shard was tokenized again")

    monkeypatch.setattr(inputs, "tokenize_example", no_tokenizing)
    monkeypatch.setattr(tokenize, "tokenize_example", no_tokenizing)
    if rank == 0:  # no wrap-around copy to tokenize (those stay a list): the whole shard comes from the cache
        with arrow_always():
            again = inputs.load_shard(*args)
        assert list(again.examples) == listed.examples and again.stats == listed.stats


def test_training_on_an_arrow_shard_gives_the_same_losses_and_adapter(make_spec, tmp_path):
    spec = make_spec(rows=40, checkpoint_every_steps=4, validation_split=0.1)
    listed = LocalHooks(tmp_path / "list")
    run_training(spec, listed)
    reference = load_file(f"{spec.adapter_dir}/adapter_model.safetensors")
    arrow_spec = spec.model_copy(update={"adapter_dir": str(tmp_path / "arrow-adapter")})
    arrow = LocalHooks(tmp_path / "arrow")
    with arrow_always():
        run_training(arrow_spec, arrow)
    assert [{k: r[k] for k in KEYS} for r in arrow.reported] == [{k: r[k] for k in KEYS} for r in listed.reported]
    weights = load_file(f"{arrow_spec.adapter_dir}/adapter_model.safetensors")
    assert weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in weights)
