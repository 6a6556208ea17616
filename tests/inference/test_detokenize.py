"""Incremental detokenization: exact text, whole UTF-8 characters in every chunk, stop strings across chunks."""

from __future__ import annotations

import random

import pytest

from inference_fixtures import base_paths  # noqa: F401 (fixture)

from sienn_ray.inference.detokenize import TextStream

TEXT = "naïve café: 世界 🎉 «ok» — done. Ünïcödé ends here"


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tokenizer(request, base_paths):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_paths[request.param])


class CountingTokenizer:
    """The tokenizer, recording how many ids every ``decode`` call is given."""

    def __init__(self, tokenizer):
        self._tokenizer, self.decoded = tokenizer, []
        self.backend_tokenizer = tokenizer.backend_tokenizer

    def decode(self, ids, **kwargs):
        self.decoded.append(len(ids))
        return self._tokenizer.decode(ids, **kwargs)


def run(tokenizer, ids: list[int], stops: tuple[str, ...] = ()) -> tuple[list[str], TextStream]:
    stream = TextStream(tokenizer, stops)
    chunks = []
    for token in ids:
        chunks.append(stream.push(token))
        if stream.stopped:
            return chunks, stream
    chunks.append(stream.finish())
    return chunks, stream


def test_multibyte_characters_are_never_split_across_chunks(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    chunks, stream = run(tokenizer, ids)
    assert "".join(chunks) == stream.text == tokenizer.decode(ids, skip_special_tokens=True) == TEXT
    assert all("\ufffd" not in chunk for chunk in chunks)
    assert "" in chunks[:-1], "some character spans several tokens, so some step must release nothing"


def test_random_token_streams_equal_decoding_the_whole_output(tokenizer):
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(len(tokenizer)) for _ in range(rng.randrange(1, 40))]
        chunks, stream = run(tokenizer, ids)
        assert stream.text == "".join(chunks) == tokenizer.decode(ids, skip_special_tokens=True)


def test_a_step_decodes_a_few_tokens_whatever_the_length(tokenizer):
    counting = CountingTokenizer(tokenizer)
    ids = tokenizer(TEXT * 20, add_special_tokens=False)["input_ids"]
    chunks, stream = run(counting, ids)
    assert stream.text == TEXT * 20
    assert max(counting.decoded, default=0) <= 4  # only a split last character is ever decoded by us


@pytest.mark.parametrize("stop", ["café: 世", "🎉 «", "done.", "ends here", "Ü"])
def test_stop_strings_end_the_text_exactly_even_across_chunks(tokenizer, stop):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    chunks, stream = run(tokenizer, ids, stops=("never there", stop))
    assert stream.stopped
    assert "".join(chunks) == stream.text == TEXT[: TEXT.index(stop)]


def test_a_held_back_stop_prefix_is_released_when_the_stop_does_not_follow(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    chunks, stream = run(tokenizer, ids, stops=("café! no", "here!"))
    assert not stream.stopped and "".join(chunks) == TEXT
