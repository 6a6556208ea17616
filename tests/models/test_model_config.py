"""A model's context length, read one way for every caller (pure: config dicts only)."""

from __future__ import annotations

import pytest

from sienn_ray.export.gguf_arch import config_problems
from sienn_ray.models.model_config import context_length


@pytest.mark.parametrize("config, expected", [
    ({"model_type": "llama", "max_position_embeddings": 8192}, 8192),
    ({"model_type": "gpt2", "n_positions": 1024, "n_ctx": 2048}, 1024),  # the more specific key first
    ({"model_type": "mpt", "max_seq_len": 1, "max_sequence_length": 4096}, 4096),
    ({"model_type": "x", "seq_length": 512, "max_position_embeddings": None}, 512),  # null is not stated
    ({"model_type": "x"}, None),
])
def test_context_length_reads_the_first_key_the_config_states(config, expected):
    assert context_length(config) == expected


def test_a_gguf_export_needs_a_stated_context_length():
    llama = {"model_type": "llama", "hidden_act": "silu", "max_position_embeddings": 2048}
    assert config_problems(llama) == []
    assert config_problems({k: v for k, v in llama.items() if k != "max_position_embeddings"}) == [
        "the model's config states no context length"]
