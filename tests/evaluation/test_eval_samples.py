"""Held-out rows -> prompts and references, and where a generated answer ends."""

from __future__ import annotations

import torch
from transformers import AutoTokenizer

from sienn_ray.data.templates import DEFAULT_CHAT_TEMPLATE, render_alpaca_prompt, render_chat_prompt, template_for
from sienn_ray.data.tokenize import encode_text
from sienn_ray.evaluation.passes import generate_answers, stop_token_ids
from sienn_ray.evaluation.samples import cut_at_stop, generation_case
from sienn_ray.schemas.evaluation import EvaluationSpec  # noqa: F401 (the schema imports without Ray or torch)

from evaluation_fixtures import gpt2_path  # noqa: F401 (fixture)


def _tokenizer(path):
    return AutoTokenizer.from_pretrained(path)


def test_alpaca_case_is_the_training_prompt_and_the_output(gpt2_path):
    tok = _tokenizer(gpt2_path)
    template = template_for("alpaca", tok)
    record = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "2 + 3 = 5."}
    case = generation_case(tok, template, 7, record)
    assert case.row == 7 and case.prompt == "Add the numbers." and case.input == "2 and 3"
    assert case.reference == "2 + 3 = 5."
    assert case.prompt_ids == encode_text(tok, render_alpaca_prompt("Add the numbers.", "2 and 3"))
    bare = generation_case(tok, template, 0, {"instruction": "Hi", "input": "", "output": "Hello"})
    assert bare.input is None


def test_chat_case_answers_the_last_assistant_turn(gpt2_path):
    tok = _tokenizer(gpt2_path)
    template = template_for("chat", tok)
    assert template.chat_template == DEFAULT_CHAT_TEMPLATE and template.stop_strings == ["<|im_end|>"]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Capital of Italy?"},
                {"role": "assistant", "content": "Rome."}]
    case = generation_case(tok, template, 3, {"messages": messages})
    assert case.prompt == "Capital of Italy?" and case.input is None
    assert case.reference == "Rome."  # the closing <|im_end|> is not part of the answer
    # Earlier turns are in the prompt, tokenized segment by segment as training does.
    assert tok.decode(case.prompt_ids) == render_chat_prompt(template, messages[:4])


def test_cut_at_stop():
    assert cut_at_stop("Rome.<|im_end|>\nmore", ["<|im_end|>", "</s>"]) == "Rome."
    assert cut_at_stop("a</s>b<|im_end|>", ["<|im_end|>", "</s>"]) == "a"
    assert cut_at_stop("nothing to cut", ["<|im_end|>"]) == "nothing to cut"


class _ScriptedModel:
    """Stands in for a causal LM: ``generate`` appends a fixed continuation to every row."""

    device = torch.device("cpu")

    def __init__(self, continuation: list[int]):
        self.continuation = continuation
        self.calls = []

    def generate(self, input_ids, attention_mask, generation_config):
        self.calls.append((input_ids.clone(), attention_mask.clone(), generation_config))
        tail = torch.tensor([self.continuation] * input_ids.shape[0])
        return torch.cat([input_ids, tail], dim=1)


def test_answers_end_at_eos_and_at_stop_strings_and_keep_their_order(gpt2_path):
    tok = _tokenizer(gpt2_path)
    # A stop string of several tokens is found in the text; EOS (one token) by its id.
    template = template_for("alpaca", tok).model_copy(update={"stop_strings": ["is ###"]})
    assert len(encode_text(tok, "is ###")) > 1
    words = encode_text(tok, "Yes it is ### Instruction")
    model = _ScriptedModel(words + [tok.eos_token_id] + encode_text(tok, " after"))
    records = [{"instruction": "A much longer question than the other one?", "output": "x"},
               {"instruction": "Short?", "output": "y"}]
    cases = [generation_case(tok, template, i, r) for i, r in enumerate(records)]
    answers = generate_answers(model, tok, template, cases, max_new_tokens=16, batch_size=8, context=1024)
    assert [a.text for a in answers] == ["Yes it ", "Yes it "]
    assert [a.tokens for a in answers] == [len(words)] * 2  # counted up to EOS, EOS excluded
    ids, mask, config = model.calls[0]
    assert config.do_sample is False and config.max_new_tokens == 16
    assert tok.eos_token_id in config.eos_token_id
    # Left padding: the shorter prompt (asked first, sorted by length) ends where the longer does.
    short, long_ = len(cases[1].prompt_ids), len(cases[0].prompt_ids)
    assert ids.shape[1] == long_ and mask[0].tolist() == [0] * (long_ - short) + [1] * short
    assert ids[0, -short:].tolist() == cases[1].prompt_ids


def test_a_prompt_too_long_for_the_context_keeps_its_end(gpt2_path):
    tok = _tokenizer(gpt2_path)
    template = template_for("alpaca", tok)
    case = generation_case(tok, template, 0, {"instruction": "word " * 200, "output": "x"})
    model = _ScriptedModel([tok.eos_token_id])
    generate_answers(model, tok, template, [case], max_new_tokens=40, batch_size=1, context=64)
    ids, _, config = model.calls[0]
    assert config.max_new_tokens == 40 and ids[0].tolist() == case.prompt_ids[-24:]


def test_stop_token_ids_hold_eos_and_single_token_stops(gpt2_path):
    tok = _tokenizer(gpt2_path)
    template = template_for("alpaca", tok).model_copy(update={"stop_strings": ["a long stop string"]})
    assert stop_token_ids(tok, template) == [tok.eos_token_id]
