"""End to end on the real default base: smollm2-135m-instruct learns facts it cannot know.

One job, trained through the session's real Serve app and Ray Train on the
ten invented facts with the README's recommended settings, is shared by every
test here (module fixtures): greedy ``/api/test-model`` gives back the trained
answers while the base knows none of them and both still answer a general
question; the prompt of each fact is the same token ids in training,
``/api/test-model``, the merged safetensors (transformers' own chat template),
the q8_0 GGUF (llama.cpp's own chat handling) and the Ollama package; the GGUF
answers like ``/api/test-model``; the merged safetensors gives PEFT's logits.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from helpers import wait_for_job
from llama_chat_probe import chat_probe
from sienn_ray.data.demo import FACTS_TRAINING_CONFIG, GENERAL_PROBE, fact_keys, facts_records

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
MAX_NEW_TOKENS = 32
EXPORT_TIMEOUT_S = 900


def _greedy(api_url: str, prompt: str, **target) -> dict:
    resp = httpx.post(f"{api_url}/api/test-model", timeout=600, json={
        "prompt": prompt, "temperature": 0, "max_length": MAX_NEW_TOKENS, **target})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def facts_job(api_url) -> dict:
    data = "".join(json.dumps(r) + "\n" for r in facts_records()).encode()
    resp = httpx.post(f"{api_url}/api/upload-dataset", files={"file": ("facts.jsonl", data)}, timeout=60)
    assert resp.status_code == 200, resp.text
    resp = httpx.post(f"{api_url}/api/start-finetuning", timeout=120, json={
        "dataset_id": resp.json()["dataset_id"], "model_name": MODEL, "config": FACTS_TRAINING_CONFIG})
    assert resp.status_code == 200, resp.text
    status = wait_for_job(api_url, resp.json()["job_id"], timeout=2400)
    assert status["status"] == "completed", status
    return status


@pytest.fixture(scope="module")
def answers(api_url, facts_job) -> dict:
    """question -> (tuned answer, base answer), greedy through /api/test-model; plus the general probe."""
    out = {}
    for question in list(fact_keys()) + [GENERAL_PROBE[0]]:
        out[question] = (_greedy(api_url, question, job_id=facts_job["job_id"]),
                         _greedy(api_url, question, model_name=MODEL))
    return out


def _export(api_url: str, job_id: str, fmt: str, dest: Path, quantization: str | None = None) -> Path:
    """Run one export, download its ZIP and unpack it; the folder holding the files."""
    body = {"format": fmt} | ({"quantization": quantization} if quantization else {})
    started = httpx.post(f"{api_url}/api/export-model/{job_id}", json=body, timeout=60)
    assert started.status_code == 200, started.text
    deadline = time.time() + EXPORT_TIMEOUT_S
    while (record := httpx.get(f"{api_url}/api/exports/{started.json()['export_id']}", timeout=30).json()
           )["status"] == "processing":
        assert time.time() < deadline, record
        time.sleep(1.0)
    assert record["status"] == "completed", record
    archive = dest / f"{fmt}.zip"
    params = {"format": fmt} | ({"quantization": quantization} if quantization else {})
    with httpx.stream("GET", f"{api_url}/api/download-model/{job_id}", params=params, timeout=600) as resp:
        assert resp.status_code == 200
        with open(archive, "wb") as handle:
            for chunk in resp.iter_bytes():
                handle.write(chunk)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(dest / fmt)
        (top,) = {Path(name).parts[0] for name in zipped.namelist()}
    archive.unlink()
    return dest / fmt / top


@pytest.fixture(scope="module")
def exports(api_url, facts_job, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("smollm2-exports")
    job_id = facts_job["job_id"]
    return {"ollama": _export(api_url, job_id, "ollama", root, "q8_0"),
            "pytorch": _export(api_url, job_id, "pytorch", root)}


@pytest.fixture(scope="module")
def llama_cpp(exports) -> dict:
    """llama.cpp's chat completion on the q8_0 GGUF for every fact (and the Ollama prompts' tokens)."""
    pytest.importorskip("llama_cpp")
    from export.ollama_grammar import modelfile_prompt

    folder = exports["ollama"]
    modelfile = (folder / "Modelfile").read_text(encoding="utf-8")
    (gguf_file,) = folder.glob("*.gguf")
    questions = list(fact_keys())
    return chat_probe(str(gguf_file), questions, max_tokens=MAX_NEW_TOKENS,
                      texts=[modelfile_prompt(modelfile, q) for q in questions])


def test_the_tuned_model_recalls_the_facts_the_base_cannot_know(answers):
    expected = {r["instruction"]: r["output"] for r in facts_records()}
    recalled = [q for q in expected if answers[q][0]["generated_text"] == expected[q]]
    known_by_base = [q for q, key in fact_keys().items() if key.lower() in answers[q][1]["generated_text"].lower()]
    for q in expected:
        print(f"{q}\n  base:  {answers[q][1]['generated_text']!r}\n  tuned: {answers[q][0]['generated_text']!r}")
    assert len(recalled) >= 9, [(q, answers[q][0]["generated_text"]) for q in expected if q not in recalled]
    assert not known_by_base, known_by_base
    assert all(answers[q][0]["finish_reason"] == "stop" for q in recalled)  # it learned to end its turn


def test_a_general_question_the_base_answers_is_still_answered(answers):
    question, key = GENERAL_PROBE
    tuned, base = answers[question]
    assert key in base["generated_text"], base
    assert key in tuned["generated_text"], tuned


def test_train_loss_is_reported_per_window_and_falls(api_url, facts_job):
    points = httpx.get(f"{api_url}/api/jobs/{facts_job['job_id']}/history", timeout=30).json()["points"]
    losses = [p["train_loss"] for p in points if p["train_loss"] is not None]
    assert len(losses) >= FACTS_TRAINING_CONFIG["num_epochs"] and losses[-1] < losses[0] / 10
    assert facts_job["metrics"]["train_loss"] == pytest.approx(losses[-1])


def test_prompt_token_ids_are_identical_everywhere(api_url, facts_job, answers, exports, llama_cpp):
    """Training, /api/test-model, /v1, transformers on the merged export, llama.cpp's chat, Ollama's TEMPLATE."""
    from transformers import AutoTokenizer

    from sienn_ray.data.templates import PromptTemplate
    from sienn_ray.data.tokenize import IGNORE_INDEX, tokenize_example

    adapter = Path(facts_job["adapter_path"])
    template, tokenizer = PromptTemplate.load(adapter), AutoTokenizer.from_pretrained(adapter)
    assert template.kind == "chat" and template.eos_token == "<|im_end|>"
    merged_tokenizer = AutoTokenizer.from_pretrained(exports["pytorch"])
    for i, record in enumerate(facts_records()):
        example = tokenize_example(tokenizer, template, record, max_length=FACTS_TRAINING_CONFIG["max_length"])
        trained = example.input_ids[: example.labels.index(next(t for t in example.labels if t != IGNORE_INDEX))]
        messages = [{"role": "user", "content": record["instruction"]}]
        merged = merged_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"]
        assert answers[record["instruction"]][0]["prompt_tokens"] == len(trained)
        v1 = httpx.post(f"{api_url}/v1/chat/completions", timeout=600, json={
            "model": facts_job["job_id"], "messages": messages, "max_tokens": 1, "temperature": 0})
        assert v1.status_code == 200 and v1.json()["usage"]["prompt_tokens"] == len(trained), v1.text
        assert merged == trained
        assert llama_cpp["prompt_ids"][i] == trained
        assert llama_cpp["usage_prompt_tokens"][i] == len(trained)
        assert llama_cpp["text_tokens"][i] == trained  # the Modelfile's TEMPLATE, tokenized by llama.cpp


def test_the_q8_0_gguf_answers_like_test_model(answers, llama_cpp):
    ours = [answers[q][0]["generated_text"] for q in fact_keys()]
    agree = sum(a == b for a, b in zip(ours, llama_cpp["answers"]))
    print(f"q8_0 GGUF chat completion vs /api/test-model: {agree}/10 identical")
    assert agree >= 9, list(zip(ours, llama_cpp["answers"]))


def test_the_merged_safetensors_loads_with_transformers_and_matches_peft(exports, facts_job):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = exports["pytorch"]
    merged = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(facts_job["model_path"]),
                                     str(folder / "adapter")).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": facts_records()[0]["instruction"]}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        ours, theirs = merged(**ids).logits, peft(**ids).logits
    assert (ours - theirs).abs().max().item() < 1e-3
    assert (ours[0, -1].argmax() == theirs[0, -1].argmax()).item()
