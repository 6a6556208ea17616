"""llama.cpp's pre-tokenizer names and tokenizer.json pre-tokenizers map both ways."""

from __future__ import annotations

import pytest

from sienn_ray.export.tokenizer_meta import hf_pre_tokenizer, pre_tokenizer_name


@pytest.mark.parametrize("pre", ["gpt-2", "llama-bpe", "qwen2", "smollm"])
def test_gguf_pre_tokenizer_names_map_both_ways(pre):
    spec = {"model": {"type": "BPE"}, "normalizer": None, "pre_tokenizer": hf_pre_tokenizer(pre)}
    assert pre_tokenizer_name(spec) == pre


def test_unknown_pre_tokenizers_are_not_guessed():
    assert hf_pre_tokenizer("no-such-pre") is None
    with pytest.raises(ValueError, match="no llama.cpp equivalent"):
        pre_tokenizer_name({"model": {"type": "BPE"}, "pre_tokenizer": {"type": "Whitespace"}})
