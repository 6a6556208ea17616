"""OpenAI's chat fine-tuning format: every check of its guide, each problem with its line; weight 0 is not trained."""

from __future__ import annotations

import json

import pytest

from sienn_ray.data.chat_format import check_messages
from sienn_ray.data.ingest import ingest_file
from sienn_ray.data.templates import render_example, template_for
from sienn_ray.data.tokenize import IGNORE_INDEX, tokenize_example
from sienn_ray.errors import DatasetInvalid

USER = {"role": "user", "content": "Hi"}
BOT = {"role": "assistant", "content": "Hello."}

# (messages, the problem reported), one per check of the guide and of its format.
PROBLEMS = {
    "not a list": ("hello", "'messages' must be a non-empty list"),
    "empty list": ([], "'messages' must be a non-empty list"),
    "message not an object": ([USER, "hi", BOT], "message 2 is a string, expected an object"),
    "no role": ([{"content": "x"}, BOT], "message 1 has no role"),
    "no content": ([{"role": "user"}, BOT], "message 1 has no content"),
    "null content": ([{"role": "user", "content": None}, BOT], "message 1 has no content"),
    "empty content": ([USER, {"role": "assistant", "content": "  "}], "message 2 has empty content"),
    "content not text": ([{"role": "user", "content": 4}, BOT], "message 1 content is a number, expected a string"),
    "image part": ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, BOT],
                   "message 1 content parts must all be"),
    "unknown key": ([{**USER, "speaker": "x"}, BOT], "message 1 has an unrecognized key 'speaker'"),
    "unknown role": ([{"role": "bot", "content": "x"}, BOT], "message 1 has role 'bot'; expected one of"),
    "tool role": ([USER, {"role": "tool", "content": "x"}, BOT], "message 2 has role 'tool': tool and function"),
    "tool call": ([USER, {**BOT, "tool_calls": []}], "message 2 has 'tool_calls': tool and function calls"),
    "name not text": ([{**USER, "name": 3}, BOT], "message 1 name is a number"),
    "weight on user": ([{**USER, "weight": 1}, BOT], "message 1 has a weight, but only assistant messages"),
    "weight not 0/1": ([USER, {**BOT, "weight": 0.5}], "message 2 weight must be 0 or 1, got 0.5"),
    "weight a boolean": ([USER, {**BOT, "weight": True}], "message 2 weight must be 0 or 1, got True"),
    "no assistant": ([USER], "no assistant message"),
    "ends with the user": ([USER, BOT, USER], "the last message must be the assistant's reply"),
    "nothing trained": ([USER, {**BOT, "weight": 0}], "every assistant message has weight 0"),
}


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_each_check_of_the_guide(name):
    messages, problem = PROBLEMS[name]
    turns, problems = check_messages(messages)
    assert turns is None and any(problem in p for p in problems), problems


def test_every_problem_of_a_record_is_reported():
    _, problems = check_messages([{"role": "bot"}, {**BOT, "weight": 2, "extra": 1}])
    assert problems == ["message 1 has role 'bot'; expected one of system, user, assistant",
                        "message 1 has no content", "message 2 has an unrecognized key 'extra' (allowed: role, "
                        "content, name, weight)", "message 2 weight must be 0 or 1, got 2"]


def test_an_upload_lists_every_problem_with_its_line(tmp_path):
    good = {"messages": [USER, BOT]}
    rows = [good, {"messages": [USER]}, good, {"messages": [USER, {**BOT, "weight": 3}]},
            {"messages": [USER, BOT], "tools": [{"type": "function"}]}]
    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetInvalid) as info:
        ingest_file(src, tmp_path / "out.jsonl", "chat.jsonl")
    assert info.value.errors == [
        "line 2: no assistant message", "line 4: message 2 weight must be 0 or 1, got 3",
        "line 5: 'tools' (tool/function definitions) is not supported: only plain conversations are trained"]
    assert not (tmp_path / "out.jsonl").exists()


@pytest.fixture(scope="module")
def tokenizer(embedded_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_models["sienn-tiny-gpt2"])


def _trained_text(tokenizer, record) -> str:
    example = tokenize_example(tokenizer, template_for("chat", tokenizer), record, max_length=512)
    return tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX])


def test_a_weight_0_reply_is_context_only(tokenizer):
    record = {"messages": [USER, {"role": "assistant", "content": "Wrong.", "weight": 0},
                           {"role": "user", "content": "Again?"}, {"role": "assistant", "content": "Right."}]}
    segments = render_example(template_for("chat", tokenizer), record)
    assert [s.trainable for s in segments] == [False, False, False, True]
    assert _trained_text(tokenizer, record) == "Right.<|im_end|>\n<|endoftext|>"


def test_a_weight_0_last_reply_leaves_its_eos_untrained(tokenizer):
    record = {"messages": [USER, {"role": "assistant", "content": "Right."}, {"role": "user", "content": "Bye"},
                           {"role": "assistant", "content": "Wrong.", "weight": 0}]}
    assert _trained_text(tokenizer, record) == "Right.<|im_end|>\n"
