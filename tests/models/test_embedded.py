"""The embedded base models: layout, loading, tokenizer, determinism, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from sienn_ray.data.templates import DEFAULT_CHAT_TEMPLATE, render_chat_prompt, template_for
from sienn_ray.errors import ModelNotFound
from sienn_ray.models.embedded import (
    EMBEDDED_MODELS,
    STAMP_FILE,
    build_embedded_model,
    ensure_toy_models,
    is_built,
)

NAMES = sorted(EMBEDDED_MODELS)
ROUND_TRIP_TEXTS = [
    "Hello, world!",
    " leading space and trailing  ",
    "tabs\tand\nnewlines\r\n\n\n  indented",
    "digits 0123456789 3.14159 -42 1e-5 1,000,000",
    "emoji 🙂🚀👩‍💻🇫🇷 and ZWJ",
    "CJK 你好，世界 東京 안녕하세요",
    "accents café naïve Straße, Привет, مرحبا",
    "code: def f(x):\n    return {'a': [1, 2]}  # comment",
    "\u0000\u0007 control \x7f and \ufeff BOM",
    "",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    return ensure_toy_models(tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize("name", NAMES)
def test_hf_layout(built, name):
    files = {p.name for p in built[name].iterdir()}
    expected = {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}
    assert expected <= files
    assert not any(f.startswith(".") for f in files)


@pytest.mark.parametrize("name", NAMES)
def test_loads_and_runs_without_remote_code(built, name):
    tokenizer = AutoTokenizer.from_pretrained(built[name])
    model = AutoModelForCausalLM.from_pretrained(built[name]).eval()
    batch = tokenizer(["a short one", "a somewhat longer prompt here"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape[:2] == batch["input_ids"].shape
    assert logits.shape[-1] == len(tokenizer) == model.config.vocab_size
    assert torch.isfinite(logits).all()
    out = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == batch["input_ids"].shape[1] + 3


@pytest.mark.parametrize("name", NAMES)
def test_special_tokens_consistent(built, name):
    tokenizer = AutoTokenizer.from_pretrained(built[name])
    model_config = json.loads((built[name] / "config.json").read_text())
    generation = json.loads((built[name] / "generation_config.json").read_text())
    assert tokenizer.eos_token == tokenizer.bos_token == "<|endoftext|>"
    assert tokenizer.pad_token == "<|pad|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model_config["eos_token_id"] == model_config["bos_token_id"] == tokenizer.eos_token_id
    assert model_config["pad_token_id"] == tokenizer.pad_token_id
    assert generation["eos_token_id"] == tokenizer.eos_token_id
    for marker in ("<|im_start|>", "<|im_end|>"):
        assert len(tokenizer.encode(marker)) == 1
    # GPT-2 style: nothing is prepended or appended when encoding.
    assert tokenizer.encode("hi") == tokenizer.convert_tokens_to_ids(tokenizer.tokenize("hi"))
    assert json.loads((built[name] / "tokenizer_config.json").read_text())["add_bos_token"] is False


@pytest.mark.parametrize("name", NAMES)
def test_no_chat_template_so_chat_data_falls_back_to_chatml(built, name):
    """A random-weight model knows no template: instruction data uses Alpaca, chat data ChatML."""
    tokenizer = AutoTokenizer.from_pretrained(built[name])
    assert not tokenizer.chat_template
    assert template_for("auto", tokenizer).kind == "alpaca"
    chat = template_for("auto", tokenizer, data_kind="chat")
    assert chat.chat_template == DEFAULT_CHAT_TEMPLATE
    assert render_chat_prompt(chat, [{"role": "user", "content": "hi"}]) == \
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_any_text_round_trips(built, text):
    tokenizer = AutoTokenizer.from_pretrained(built["sienn-tiny-gpt2"])
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids


def test_tokenizer_is_shared_and_compact(built):
    gpt2, llama = (built[name] / "tokenizer.json" for name in NAMES)
    assert gpt2.read_bytes() == llama.read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(built["sienn-tiny-gpt2"])
    assert len(tokenizer.encode("The weather changed quickly in the mountains.")) <= 12


@pytest.mark.parametrize("name", NAMES)
def test_every_width_is_a_multiple_of_32(built, name):
    with safe_open(built[name] / "model.safetensors", "pt") as f:
        for key in f.keys():
            shape = f.get_slice(key).get_shape()
            assert all(dim % 32 == 0 for dim in shape), (key, shape)


def test_llama_has_gqa_and_untied_head(built):
    model = AutoModelForCausalLM.from_pretrained(built["sienn-tiny-llama"])
    config = model.config
    assert config.num_key_value_heads < config.num_attention_heads
    assert config.hidden_size // config.num_attention_heads == 32
    assert config.tie_word_embeddings is False
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert not torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    attention = model.model.layers[0].self_attn
    assert attention.k_proj.weight.shape[0] == config.num_key_value_heads * 32


def test_build_is_deterministic(tmp_path):
    for name in NAMES:
        first = build_embedded_model(name, tmp_path / "a" / name)
        second = build_embedded_model(name, tmp_path / "b" / name)
        for path in first.iterdir():
            assert path.read_bytes() == (second / path.name).read_bytes(), path.name
    other_seed = build_embedded_model("sienn-tiny-gpt2", tmp_path / "c", seed=1)
    assert (other_seed / "model.safetensors").read_bytes() != (tmp_path / "a/sienn-tiny-gpt2/model.safetensors").read_bytes()
    assert (other_seed / "tokenizer.json").read_bytes() == (tmp_path / "a/sienn-tiny-gpt2/tokenizer.json").read_bytes()


def test_build_leaves_the_callers_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_embedded_model("sienn-tiny-gpt2", tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


def test_build_replaces_dest_atomically(tmp_path):
    dest = tmp_path / "m"
    dest.mkdir()
    (dest / "stale.txt").write_text("old")
    assert build_embedded_model("sienn-tiny-gpt2", dest) == dest.absolute()
    assert not (dest / "stale.txt").exists()
    assert is_built(dest, "sienn-tiny-gpt2")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp or old dirs left


def test_unknown_name_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFound, match="sienn-tiny-gpt2"):
        build_embedded_model("gpt2", tmp_path / "x")


def test_ensure_skips_current_and_rebuilds_stale(built):
    before = {name: (path / "model.safetensors").stat().st_mtime_ns for name, path in built.items()}
    again = ensure_toy_models(next(iter(built.values())).parent)
    assert again == built
    assert {name: (path / "model.safetensors").stat().st_mtime_ns for name, path in built.items()} == before
    stamp_path = built["sienn-tiny-gpt2"] / STAMP_FILE
    stamp_path.write_text(json.dumps({**json.loads(stamp_path.read_text()), "recipe_version": 0}))
    ensure_toy_models(next(iter(built.values())).parent)
    assert is_built(built["sienn-tiny-gpt2"], "sienn-tiny-gpt2")


def test_ensure_is_safe_concurrently(tmp_path):
    results, errors = [], []

    def worker():
        try:
            results.append(ensure_toy_models(tmp_path))
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(result == results[0] for result in results)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".embedded.lock")) == NAMES
    assert all(is_built(path, name) for name, path in results[0].items())


@pytest.mark.slow
def test_module_entry_point_builds_into_sienn_home(tmp_path):
    """``python -m sienn_ray.models.embedded`` prepares every built-in base, the real one included."""
    env = {**os.environ, "SIENN_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "sienn_ray.models.embedded"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert f"smollm2-135m-instruct\t{tmp_path.resolve() / 'models' / 'smollm2-135m-instruct'}" in proc.stdout
    for name in NAMES:
        assert f"{name}\t{tmp_path.resolve() / 'models' / name}" in proc.stdout
        assert is_built(tmp_path / "models" / name, name)
