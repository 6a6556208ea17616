"""Prompt templates: auto/chat/alpaca, instruction records as chats, system prompts, compiled once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sienn_ray.data import templates
from sienn_ray.data.demo import facts_records
from sienn_ray.data.templates import (
    DEFAULT_CHAT_TEMPLATE, PromptTemplate, render_chat_prompt, render_example, render_prompt, template_for,
)
from sienn_ray.data.tokenize import IGNORE_INDEX, encode_text, tokenize_example, tokenize_records
from sienn_ray.schemas.jobs import TrainingConfig

SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@pytest.fixture(scope="module")
def smollm(embedded_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_models["smollm2-135m-instruct"])


@pytest.fixture(scope="module")
def toy(embedded_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_models["sienn-tiny-gpt2"])


def test_auto_uses_the_bases_chat_template_when_it_has_one(smollm, toy):
    real = template_for("auto", smollm)
    assert real.kind == "chat" and real.chat_template == smollm.chat_template
    assert real.eos_token == "<|im_end|>" and real.stop_strings == []  # <|im_end|> is EOS itself
    assert template_for("auto", toy).kind == "alpaca"  # a random-weight base knows no template


def test_explicit_choices_override_auto(smollm, toy):
    assert template_for("alpaca", smollm).kind == "alpaca"
    chat = template_for("chat", toy)
    assert chat.kind == "chat" and chat.chat_template == DEFAULT_CHAT_TEMPLATE and chat.stop_strings == ["<|im_end|>"]
    assert template_for("alpaca", toy, data_kind="chat").kind == "chat"  # a chat dataset is always a chat


def test_an_instruction_record_is_a_user_assistant_exchange(smollm):
    template = template_for("auto", smollm)
    record = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5."}
    prompt, answer = render_example(template, record)
    assert not prompt.trainable and answer.trainable
    assert prompt.text == smollm.apply_chat_template(
        [{"role": "user", "content": "Add the numbers.\n\n2 and 3"}], tokenize=False, add_generation_prompt=True)
    assert prompt.text.startswith(f"<|im_start|>system\n{SMOLLM_SYSTEM}<|im_end|>\n")
    assert answer.text == "5.<|im_end|>\n"
    assert render_prompt(template, "Add the numbers.", "2 and 3") == prompt.text


def test_the_system_prompt_goes_first_unless_the_record_has_its_own(smollm):
    template = template_for("auto", smollm, system_prompt="Answer in one sentence.")
    text = render_prompt(template, "Hi")
    assert text == "<|im_start|>system\nAnswer in one sentence.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" \
                   "<|im_start|>assistant\n"
    own = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
    assert "Be terse." in render_chat_prompt(template, own) and "one sentence" not in render_chat_prompt(template, own)
    chat_record = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
    assert render_example(template, chat_record)[0].text == text


def test_training_and_inference_prompt_ids_agree_and_the_turn_end_is_the_eos(smollm):
    """The real model's EOS is <|im_end|>, which the template writes itself: no second EOS is appended."""
    template = template_for("auto", smollm)
    record = facts_records()[0]
    example = tokenize_example(smollm, template, record, max_length=256)
    prompt_ids = encode_text(smollm, render_prompt(template, record["instruction"]))
    assert example.input_ids[: len(prompt_ids)] == prompt_ids
    assert prompt_ids == smollm.apply_chat_template([{"role": "user", "content": record["instruction"]}],
                                                    add_generation_prompt=True, tokenize=True)["input_ids"]
    trained = [t for t in example.labels if t != IGNORE_INDEX]
    assert smollm.decode(trained) == record["output"] + "<|im_end|>\n"
    assert trained.count(smollm.eos_token_id) == 1


def test_alpaca_still_appends_eos(toy):
    template = template_for("auto", toy)
    example = tokenize_example(toy, template, {"instruction": "Hi", "output": "Hello"}, max_length=256)
    assert example.input_ids[-1] == toy.eos_token_id and example.labels[-1] == toy.eos_token_id


def test_a_chat_template_is_compiled_once_for_all_records(smollm):
    template = template_for("auto", smollm, system_prompt="Be brief.")
    templates._compiled.cache_clear()
    examples, _ = tokenize_records(smollm, template, facts_records() * 10, max_length=256)
    assert len(examples) == 100
    info = templates._compiled.cache_info()
    assert info.misses == 1 and info.hits >= 199  # two renders per record (200), one compile


def test_the_template_round_trips_through_template_json(smollm, tmp_path):
    template = template_for("chat", smollm, system_prompt="Be brief.")
    template.save(tmp_path)
    assert PromptTemplate.load(tmp_path) == template
    old = '{"kind": "alpaca", "eos_token": "<|endoftext|>", "chat_template": null, "stop_strings": []}'
    (tmp_path / "template.json").write_text(old)  # written before system_prompt and BOS were recorded
    assert PromptTemplate.load(tmp_path).add_bos is False


def test_system_prompt_needs_a_chat_template(toy, embedded_models):
    from sienn_ray.train.lora import validate_training_request

    with pytest.raises(ValidationError, match="system_prompt needs a chat template"):
        TrainingConfig(prompt_template="alpaca", system_prompt="x")
    with pytest.raises(ValueError, match="system_prompt"):
        template_for("auto", toy, system_prompt="x")
    config = TrainingConfig(system_prompt="x")
    assert any("system_prompt" in p for p in validate_training_request(embedded_models["sienn-tiny-gpt2"], config))
    assert validate_training_request(embedded_models["smollm2-135m-instruct"], config) == []
    assert validate_training_request(embedded_models["sienn-tiny-gpt2"],
                                     TrainingConfig(system_prompt="x", prompt_template="chat")) == []
