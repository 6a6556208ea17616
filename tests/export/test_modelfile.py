"""Modelfiles follow Ollama's grammar, and their TEMPLATE renders prompts exactly like sienn-ray."""

from __future__ import annotations

import pytest

from ollama_grammar import ModelfileError, modelfile_prompt, validate_modelfile
from sienn_ray.data.templates import DEFAULT_CHAT_TEMPLATE, PromptTemplate, render_chat_prompt, render_prompt
from sienn_ray.export.modelfile import build_modelfile, quote
from sienn_ray.export.prompt_formats import (
    ALPACA_GO, CHATML_GO, TemplateNotSupported, gguf_chat_template, ollama_template,
    render_go_template,
)

ALPACA = PromptTemplate(kind="alpaca", eos_token="<|endoftext|>")
CHATML = PromptTemplate(kind="chat", eos_token="<|endoftext|>", chat_template=DEFAULT_CHAT_TEMPLATE,
                        stop_strings=["<|im_end|>"])


@pytest.mark.parametrize("template", [ALPACA, CHATML], ids=["alpaca", "chatml"])
def test_modelfile_is_valid_for_ollama(template, tmp_path):
    (tmp_path / "m-q8_0.gguf").write_bytes(b"GGUF")
    text = build_modelfile("m-q8_0.gguf", template, context_length=1024, title="m")
    commands = validate_modelfile(text, tmp_path)
    assert commands["template"] == [ollama_template(template)]
    assert commands["stop"] == ["<|endoftext|>"] + (["<|im_end|>"] if template.kind == "chat" else [])
    assert commands["num_ctx"] == ["1024"]
    assert "ADAPTER" not in text


def test_num_ctx_is_capped(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    commands = validate_modelfile(build_modelfile("m.gguf", ALPACA, context_length=131072), tmp_path)
    assert commands["num_ctx"] == ["4096"]


def test_validator_rejects_what_ollama_rejects(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    bad = ['FROM ./m.gguf\nTEMPLTE "x"\n', 'FROM ./m.gguf\nPARAMETER stopp "x"\n', 'FROM ./m.gguf\nADAPTER ./a\n',
           'FROM ./m.gguf\nTEMPLATE """x\n', 'TEMPLATE "x"\n', 'FROM ./missing.gguf\n',
           'FROM ./m.gguf\nPARAMETER num_ctx big\n', 'FROM ./m.gguf\nMESSAGE robot hi\n']
    for text in bad:
        with pytest.raises((ModelfileError, ValueError)):
            validate_modelfile(text, tmp_path)


@pytest.mark.parametrize("value", [
    "plain", "two\nlines", 'has "quotes" inside', 'ends with a quote"', '"starts with one', "  padded  ",
    "tab\tand unicode ✓ 你好", "{{ .Prompt }}\n\n### Response:\n", "trailing newline\n", '""',
])
def test_quote_round_trips_through_ollamas_parser(value, tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    text = f"FROM ./m.gguf\nSYSTEM {quote(value)}\nTEMPLATE {quote(value)}\n"
    commands = validate_modelfile(text, tmp_path)
    assert commands["system"] == [value]
    assert commands["template"] == [value]


@pytest.mark.parametrize("value", ['has """ inside', "bell\x07"])
def test_quote_refuses_values_ollama_would_change(value):
    with pytest.raises(ValueError):
        quote(value)


@pytest.mark.parametrize("template", [ALPACA, CHATML], ids=["alpaca", "chatml"])
@pytest.mark.parametrize("prompt", ["Name three colors.", "Two\nlines and {{ braces }}", "  spaced  ", "✓ 你好"])
def test_modelfile_prompt_equals_sienn_prompt(template, prompt):
    text = build_modelfile("m.gguf", template, context_length=512)
    assert modelfile_prompt(text, prompt) == render_prompt(template, prompt)


def test_chatml_template_renders_system_and_history():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]
    expected = ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n")
    assert render_go_template(CHATML_GO, messages=messages) == expected


def test_go_template_subset():
    assert render_go_template("a {{- .Prompt -}} b", prompt="X") == "aXb"
    assert render_go_template("{{ if .System }}S:{{ .System }}{{ else }}none{{ end }}", system="hi") == "S:hi"
    assert render_go_template("{{ if .System }}S{{ else }}none{{ end }}") == "none"
    assert render_go_template("x  {{- range .Messages }} [{{ .Role }}]{{ end }}",
                              messages=[{"role": "user", "content": ""}]) == "x [user]"
    with pytest.raises(ValueError):
        render_go_template("{{ range .Messages }}")
    with pytest.raises(ValueError):
        render_go_template("{{ .Prompt | upper }}")
    assert "{{ .Prompt }}" in ALPACA_GO


def test_non_chatml_chat_template_is_refused():
    zephyr = PromptTemplate(kind="chat", eos_token="</s>", chat_template=(
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"))
    with pytest.raises(TemplateNotSupported):
        ollama_template(zephyr)


def test_gguf_chat_template_renders_the_alpaca_prompt():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    jinja = ImmutableSandboxedEnvironment().from_string(gguf_chat_template(ALPACA))
    text = jinja.render(messages=[{"role": "user", "content": "Say hi"}], add_generation_prompt=True,
                        eos_token="<|endoftext|>")
    assert text == render_prompt(ALPACA, "Say hi")
    assert gguf_chat_template(CHATML) == DEFAULT_CHAT_TEMPLATE


def _smollm_template(system_prompt: str | None = None) -> PromptTemplate:
    from pathlib import Path

    from sienn_ray.models.pretrained import SMOLLM2, source_gguf

    import gguf

    chat_template = gguf.GGUFReader(Path(source_gguf(SMOLLM2))).get_field("tokenizer.chat_template").contents()
    return PromptTemplate(kind="chat", eos_token="<|im_end|>", chat_template=chat_template,
                          system_prompt=system_prompt, bos_token="<|im_start|>")


SMOLLM = _smollm_template()
SMOLLM_SYSTEM = _smollm_template("Answer in one short sentence.")


@pytest.mark.parametrize("template", [SMOLLM, SMOLLM_SYSTEM], ids=["default-system", "job-system"])
@pytest.mark.parametrize("prompt", ["Who founded Vellmora?", "Two\nlines and {{ braces }}", "✓ 你好"])
def test_the_smollm2_chat_template_in_go_renders_like_the_job(template, prompt, tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    text = build_modelfile("m.gguf", template, context_length=8192)
    commands = validate_modelfile(text, tmp_path)
    assert commands["stop"] == ["<|im_end|>"]
    assert commands.get("system", []) == ([template.system_prompt] if template.system_prompt else [])
    (go,) = commands["template"]
    assert ".System" in go and ".Messages" in go
    assert modelfile_prompt(text, prompt) == render_prompt(template, prompt)


def test_the_default_system_message_appears_only_without_a_system_message():
    from sienn_ray.export.prompt_formats import render_ollama_messages

    go = ollama_template(SMOLLM)
    bare = render_ollama_messages(go, [{"role": "user", "content": "hi"}])
    assert bare.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    own = render_ollama_messages(go, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert own == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_the_gguf_chat_template_carries_the_job_system_prompt_for_llama_cpp():
    pytest.importorskip("llama_cpp")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    for template in (SMOLLM, SMOLLM_SYSTEM):
        formatter = Jinja2ChatFormatter(template=gguf_chat_template(template), eos_token="<|im_end|>",
                                        bos_token="<|im_start|>")
        for prompt in ("Who founded Vellmora?", "a 'quoted' \\ backslash"):
            rendered = formatter(messages=[{"role": "user", "content": prompt}]).prompt
            assert rendered == render_prompt(template, prompt)
        own = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "x"}]
        assert formatter(messages=own).prompt == render_chat_prompt(template, own)
