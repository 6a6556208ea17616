"""The real default base: prepared once from the packaged GGUF into a normal Hugging Face folder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from export.llama_probe import probe  # tests/ is on sys.path (tests/conftest.py)
from gguf_testkit import write_toy_gguf
from sienn_ray.models import gguf_import
from sienn_ray.models.pretrained import SMOLLM2, source_gguf

TEXTS = ["Hello 12345 world", "digits 0123456789 3.14159 -42 1e-5 1,000,000",
         "code: def f(x):\n    return {'a': [1, 2]}  # comment", "emoji 🙂🚀👩‍💻🇫🇷 and CJK 你好，世界",
         "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", "  leading   spaces\t\ttabs\n\n\nnl",
         "I'm you're they've 's", "The Pellan Bridge opened in 1887."]


@pytest.fixture(scope="module")
def folder(embedded_models) -> Path:
    return Path(embedded_models["smollm2-135m-instruct"])


def test_prepared_as_a_plain_hugging_face_folder(folder, sienn_home):
    assert folder == sienn_home / "models" / "smollm2-135m-instruct"
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja"} <= files
    assert not any(name.startswith(".") for name in files)
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
            config["num_key_value_heads"], config["vocab_size"]) == (30, 576, 9, 3, 49152)
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == 2
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert (tokenizer_config["eos_token"], tokenizer_config["add_bos_token"]) == ("<|im_end|>", False)
    stamp = json.loads((folder / gguf_import.STAMP_FILE).read_text())
    assert stamp["sha256"] == gguf_import.file_sha256(source_gguf(SMOLLM2)) and "Q4_1" in stamp["provenance"]


def test_tokenizes_exactly_like_llama_cpp_reads_the_gguf(folder):
    pytest.importorskip("llama_cpp")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ours = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in TEXTS]
    assert ours == probe(str(source_gguf(SMOLLM2)), texts=TEXTS)["tokens"]
    for text, ids in zip(TEXTS, ours):
        assert tokenizer.decode(ids) == text


@pytest.mark.slow
def test_answers_a_general_question_right(folder):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
    assert answer.startswith("The capital of France is Paris.<|im_end|>")


def test_a_conversion_is_rebuilt_when_stale_and_built_once_under_concurrency(embedded_models, tmp_path):
    gguf_file = write_toy_gguf(Path(embedded_models["sienn-tiny-llama"]), tmp_path / "toy.gguf")
    dest = tmp_path / "models" / "toy"
    results, errors = [], []

    def worker():
        try:
            results.append(gguf_import.ensure_converted(gguf_file, dest))
        except Exception as err:  # surfaced by the assert below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == [dest] * 3
    assert sorted(p.name for p in dest.parent.iterdir()) == [".toy.lock", "toy"]  # no temp or old dirs left
    built = (dest / "model.safetensors").stat().st_mtime_ns
    gguf_import.ensure_converted(gguf_file, dest)
    assert (dest / "model.safetensors").stat().st_mtime_ns == built
    stamp = dest / gguf_import.STAMP_FILE
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "version": 0}))
    gguf_import.ensure_converted(gguf_file, dest)
    assert (dest / "model.safetensors").stat().st_mtime_ns != built
    assert gguf_import.is_converted(dest, gguf_import.file_sha256(gguf_file))
