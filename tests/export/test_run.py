"""One export end to end as plain Python (no Ray): validation, every format, outcome recording."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from export_testkit import ANSWER, PROMPT, TEMPLATE
from ollama_grammar import modelfile_prompt, validate_modelfile
from sienn_ray.data.templates import PromptTemplate
from sienn_ray.errors import BadRequest
from sienn_ray.export.run import (
    ExportSpec, estimate_seconds, export_formats, export_problems, resolve_quantization, run_export,
)

JOB = {"job_id": "job_00000000000000aa", "model_name": "sienn-tiny-llama", "dataset_id": "ds_00000000000000bb",
       "config": {"lora_r": 8, "num_epochs": 1}, "metrics": {"train_loss": 1.25, "eval_loss": None},
       "step": 30, "current_epoch": 1}
DATASET = {"dataset_id": "ds_00000000000000bb", "filename": "demo.jsonl", "format": "jsonl", "total_samples": 30,
           "kind": "instruction"}


def _task(tmp_path, family_models, family_adapters, family, fmt, quant, export_id="exp_00000000000000cc"):
    return ExportSpec(export_id=export_id, job_id=JOB["job_id"], format=fmt, quantization=quant,
                      base_dir=str(family_models[family]), adapter_dir=str(family_adapters[family]),
                      out_dir=str(tmp_path / "exports" / f"{fmt}-{quant}" if quant else tmp_path / "exports" / fmt),
                      job=JOB | {"model_name": f"sienn-tiny-{family}"}, dataset=DATASET)


def _check_files(task, files):
    folder = Path(task.out_dir)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        f.name for f in files]
    for f in files:
        data = (folder / f.name).read_bytes()
        assert (f.size_bytes, f.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert not [f.name for f in files if f.name.endswith((".bin", ".pt", ".pth", ".pkl"))], "never pickle"
    assert not list(folder.parent.glob(".*")), "no temp folders left behind"


def test_quantization_rules():
    assert resolve_quantization("gguf", None) == "q8_0"
    assert resolve_quantization("ollama", "q4_0") == "q4_0"
    assert resolve_quantization("pytorch", None) is None
    with pytest.raises(BadRequest):
        resolve_quantization("pytorch", "q4_0")
    with pytest.raises(BadRequest):
        resolve_quantization("gguf", "q3_k")
    formats = {f.name: f for f in export_formats().formats}
    assert set(formats) == {"pytorch", "gguf", "ollama"}
    assert not formats["pytorch"].supports_quantization
    assert {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0"} <= set(formats["gguf"].quantization_levels)


def test_export_problems(family_models, family_adapters, tmp_path):
    assert export_problems("gguf", family_models["qwen2"], family_adapters["qwen2"]) == []
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    problems = export_problems("gguf", bert, family_adapters["llama"])
    assert len(problems) == 1 and "gpt2, llama, mistral, qwen2" in problems[0] and "'bert'" in problems[0]
    assert export_problems("pytorch", bert, family_adapters["llama"]) == []
    assert "adapter is missing" in export_problems("gguf", family_models["llama"], tmp_path)[0]

    spm = tmp_path / "spm-adapter"
    shutil.copytree(family_adapters["llama"], spm)
    spec = json.loads((spm / "tokenizer.json").read_text())
    spec["model"]["byte_fallback"] = True
    (spm / "tokenizer.json").write_text(json.dumps(spec))
    assert "SentencePiece" in export_problems("ollama", family_models["llama"], spm)[0]

    zephyr = tmp_path / "zephyr-adapter"
    shutil.copytree(family_adapters["llama"], zephyr)
    PromptTemplate(kind="chat", eos_token="</s>", chat_template="{% for m in messages %}<|{{ m['role'] }}|>"
                   "{{ m['content'] }}{% endfor %}").save(zephyr)
    assert "ChatML" in export_problems("ollama", family_models["llama"], zephyr)[0]
    assert export_problems("gguf", family_models["llama"], zephyr) == []


def test_pytorch_export(family_models, family_adapters, tmp_path):
    task = _task(tmp_path, family_models, family_adapters, "gpt2", "pytorch", None)
    files = run_export(task)
    _check_files(task, files)
    names = {f.name for f in files}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "template.json",
            "README.md", "adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= names
    card = (Path(task.out_dir) / "README.md").read_text()
    for needle in ("sienn-tiny-gpt2", "ds_00000000000000bb", "demo.jsonl", '"lora_r": 8', "train_loss", "1.25",
                   "### Instruction:", "## Usage"):
        assert needle in card
    # Exporting again replaces the folder whole.
    assert [f.sha256 for f in run_export(task)] == [f.sha256 for f in files]


def test_ollama_export_runs_in_llama_cpp_through_the_modelfile(family_models, family_adapters, tmp_path):
    """A mini end-to-end: the prompt Ollama would build, run greedily by llama.cpp, gives transformers' text."""
    pytest.importorskip("llama_cpp")
    import torch
    from transformers import AutoTokenizer

    from llama_probe import probe

    task = _task(tmp_path, family_models, family_adapters, "llama", "ollama", "q8_0")
    files = run_export(task)
    _check_files(task, files)
    folder = Path(task.out_dir)
    modelfile = (folder / "Modelfile").read_text()
    commands = validate_modelfile(modelfile, folder)
    gguf = folder / commands["model"][0]
    assert gguf.name == "sienn-tiny-llama-job_00000000000000aa-q8_0.gguf"
    assert PromptTemplate.load(folder) == TEMPLATE

    question = "Name three colors of the rainbow."
    ollama_text = modelfile_prompt(modelfile, question)
    assert ollama_text == PROMPT
    ids = probe(str(gguf), texts=[ollama_text])["tokens"][0]  # llama.cpp tokenizes it, as Ollama would
    out = probe(str(gguf), prompt_ids=ids, n_greedy=12)
    tokenizer = AutoTokenizer.from_pretrained(family_adapters["llama"])
    assert ids == tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(family_models["llama"]),
                                      family_adapters["llama"]).eval()
    with torch.no_grad():
        reference = model.generate(torch.tensor([ids]), max_new_tokens=12, min_new_tokens=12, do_sample=False)
    assert out["greedy"] == reference[0, len(ids):].tolist()
    print("llama.cpp via Modelfile:", repr(tokenizer.decode(out["greedy"])))
    assert ANSWER.startswith(tokenizer.decode(out["greedy"])[:20])


def test_gguf_export_files(family_models, family_adapters, tmp_path):
    task = _task(tmp_path, family_models, family_adapters, "gpt2", "gguf", "q4_0")
    files = run_export(task)
    _check_files(task, files)
    assert [f.name for f in files] == ["README.md", "sienn-tiny-gpt2-job_00000000000000aa-q4_0.gguf",
                                       "template.json"]
    assert estimate_seconds(family_models["gpt2"], "gguf", "q4_0") > 0


class FakeRegistry:
    """Records ``update_export`` calls (the only registry operation an export task makes)."""

    def __init__(self):
        self.calls = []

    def update_export(self, export_id, fields):
        self.calls.append(("update_export", (export_id, fields)))
        return self

    def result(self):
        return None


def test_outcomes_are_recorded(family_models, family_adapters, tmp_path):
    from sienn_ray.export.ray_task import run_and_record

    registry = FakeRegistry()
    run_and_record(_task(tmp_path, family_models, family_adapters, "gpt2", "gguf", "f16"), registry)
    final = registry.calls[-1][1][1]
    assert final["status"] == "completed" and final["total_size_bytes"] > 0 and len(final["files"]) == 3

    registry = FakeRegistry()
    broken = _task(tmp_path, family_models, family_adapters, "gpt2", "gguf", "f16").model_copy(
        update={"base_dir": str(tmp_path / "gone")})
    run_and_record(broken, registry)
    final = registry.calls[-1][1][1]
    assert final["status"] == "failed" and final["error_code"] == "EXPORT_FAILED"
    assert final["message"].startswith("Export failed:")
