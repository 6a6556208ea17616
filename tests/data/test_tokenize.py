"""Tokenization with loss masks from segment boundaries: EOS learned, prompts masked, truncation counted."""

from __future__ import annotations

import pytest

from sienn_ray.data.templates import render_example, render_prompt, template_for
from sienn_ray.data.tokenize import IGNORE_INDEX, encode_text, tokenize_example, tokenize_records


@pytest.fixture(scope="module")
def tokenizer(embedded_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_models["sienn-tiny-gpt2"])


@pytest.fixture(scope="module")
def alpaca(tokenizer):
    return template_for("alpaca", tokenizer)


RECORD = {"instruction": "Add the two numbers.", "input": "12 and 30", "output": "12 + 30 = 42."}


def test_alpaca_masks_the_prompt_and_trains_response_plus_eos(tokenizer, alpaca):
    ex = tokenize_example(tokenizer, alpaca, RECORD, max_length=512)
    prompt = encode_text(tokenizer, render_prompt(alpaca, RECORD["instruction"], RECORD["input"]))
    response = encode_text(tokenizer, RECORD["output"])
    assert ex.input_ids == prompt + response + [tokenizer.eos_token_id]
    assert ex.labels == [IGNORE_INDEX] * len(prompt) + response + [tokenizer.eos_token_id]
    assert not ex.truncated


def test_inference_prompt_ends_on_the_training_token_boundary(tokenizer, alpaca):
    """What inference feeds the model is exactly the masked prefix the model was trained after."""
    ex = tokenize_example(tokenizer, alpaca, RECORD, max_length=512)
    prompt = encode_text(tokenizer, render_prompt(alpaca, RECORD["instruction"], RECORD["input"]))
    assert ex.input_ids[: len(prompt)] == prompt
    assert ex.labels[len(prompt) - 1] == IGNORE_INDEX and ex.labels[len(prompt)] != IGNORE_INDEX


def test_no_special_tokens_are_added_besides_the_final_eos(tokenizer, alpaca):
    ex = tokenize_example(tokenizer, alpaca, {"instruction": "Hi", "output": "Hello"}, max_length=512)
    assert ex.input_ids.count(tokenizer.eos_token_id) == 1 and ex.input_ids[-1] == tokenizer.eos_token_id


def test_train_on_inputs_trains_every_token(tokenizer, alpaca):
    ex = tokenize_example(tokenizer, alpaca, RECORD, max_length=512, train_on_inputs=True)
    assert ex.labels == ex.input_ids


def test_pad_and_eos_inside_the_text_are_trained_not_masked(tokenizer, alpaca):
    """Masks come from segments, never from token values (the original pad==eos bug)."""
    record = {"instruction": "Echo", "output": f"a {tokenizer.pad_token} b {tokenizer.eos_token} c"}
    ex = tokenize_example(tokenizer, alpaca, record, max_length=512)
    trained = [t for t in ex.labels if t != IGNORE_INDEX]
    assert tokenizer.pad_token_id in trained
    assert trained.count(tokenizer.eos_token_id) == 2  # the one in the text and the appended one


def test_truncation_keeps_max_length_and_drops_the_eos(tokenizer, alpaca):
    full = tokenize_example(tokenizer, alpaca, RECORD, max_length=512)
    cut = tokenize_example(tokenizer, alpaca, RECORD, max_length=len(full) - 3)
    assert len(cut) == len(full) - 3 and cut.truncated
    assert cut.input_ids == full.input_ids[: len(cut)]
    assert cut.input_ids[-1] != tokenizer.eos_token_id  # a cut answer must not teach the model to stop


def test_examples_whose_response_is_cut_away_are_dropped_and_counted(tokenizer, alpaca):
    prompt_len = len(encode_text(tokenizer, render_prompt(alpaca, RECORD["instruction"], RECORD["input"])))
    records = [RECORD, {"instruction": "Hi", "output": "Hello"}]
    examples, stats = tokenize_records(tokenizer, alpaca, records, max_length=prompt_len)
    assert len(examples) == 1 and stats.dropped == 1 and stats.truncated == 1 and stats.dropped_rows == [0]
    # train_on_inputs does not rescue it: the response is what must survive.
    assert tokenize_example(tokenizer, alpaca, RECORD, max_length=prompt_len, train_on_inputs=True) is None


def test_chat_trains_assistant_turns_with_their_closing_tokens_and_eos(tokenizer):
    chat = template_for("chat", tokenizer)
    record = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                           {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
                           {"role": "assistant", "content": "Goodbye."}]}
    ex = tokenize_example(tokenizer, chat, record, max_length=512)
    expected_ids, expected_labels = [], []
    for seg in render_example(chat, record):
        ids = encode_text(tokenizer, seg.text)
        expected_ids += ids
        expected_labels += ids if seg.trainable else [IGNORE_INDEX] * len(ids)
    assert ex.input_ids == expected_ids + [tokenizer.eos_token_id]
    assert ex.labels == expected_labels + [tokenizer.eos_token_id]
    trained_text = tokenizer.decode([t for t in ex.labels if t != IGNORE_INDEX])
    assert trained_text == "Hello!<|im_end|>\nGoodbye.<|im_end|>\n<|endoftext|>"
    # Chat markers are single special tokens, not spelled out byte by byte.
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") in ex.input_ids
