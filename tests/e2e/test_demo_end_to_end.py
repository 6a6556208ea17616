"""End to end: the trained demo, exported for Ollama, answers in llama.cpp as it does in sienn-ray.

After the 30-row demo training, the q8_0 GGUF run greedily by llama.cpp on the
text the Modelfile's TEMPLATE renders returns the same text as /api/test-model
greedy for the training prompts, and stops by itself (EOS).

Ollama has one prompt field, no separate ``input``: a record with an input is
asked on both sides as ``instruction + "\\n\\n" + input`` (how ``render_prompt``
joins them for chat templates), so that both sides render the identical text.
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path, PurePosixPath

import httpx
import pytest

from export.llama_probe import probe  # tests/ is on sys.path (tests/conftest.py); tests/export is a namespace

pytest.importorskip("llama_cpp")

MAX_NEW_TOKENS = 64
EXPORT_TIMEOUT_S = 600


def _export(api_url: str, job_id: str) -> dict:
    """Start the ollama q8_0 export and wait for it to finish."""
    started = httpx.post(f"{api_url}/api/export-model/{job_id}", timeout=60,
                         json={"format": "ollama", "quantization": "q8_0"})
    assert started.status_code == 200, started.text
    deadline = time.time() + EXPORT_TIMEOUT_S
    while time.time() < deadline:
        record = httpx.get(f"{api_url}/api/exports/{started.json()['export_id']}", timeout=30).json()
        if record["status"] != "processing":
            return record
        time.sleep(1.0)
    raise AssertionError(f"export still processing after {EXPORT_TIMEOUT_S}s: {record}")


def _download(api_url: str, job_id: str, dest: Path) -> Path:
    params = {"format": "ollama", "quantization": "q8_0"}
    with httpx.stream("GET", f"{api_url}/api/download-model/{job_id}", params=params, timeout=300) as resp:
        assert resp.status_code == 200, resp.read()
        with open(dest, "wb") as handle:
            for chunk in resp.iter_bytes():
                handle.write(chunk)
    return dest


def _unzip(archive_path: Path, dest: Path) -> Path:
    """Extract after checking every member is a plain file at a plain relative path; return its folder."""
    with zipfile.ZipFile(archive_path) as archive:
        assert archive.testzip() is None
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            assert not path.is_absolute() and "\\" not in info.filename, info.filename
            assert not {"", ".", ".."} & set(info.filename.split("/")), info.filename
            assert not info.is_dir() and ((info.external_attr >> 16) & 0o170000) in (0, 0o100000), info.filename
        folders = {PurePosixPath(n).parts[0] for n in archive.namelist()}
        assert len(folders) == 1 and all(len(PurePosixPath(n).parts) == 2 for n in archive.namelist())
        archive.extractall(dest)
    return dest / folders.pop()


def _gguf_of(folder: Path, modelfile: str) -> Path:
    """The GGUF named by the Modelfile's ``FROM ./file.gguf``, beside it."""
    match = re.search(r"^FROM[ \t]+\./(\S+\.gguf)$", modelfile, re.MULTILINE)
    assert match, modelfile
    path = folder / match.group(1)
    assert path.is_file() and path.parent == folder
    return path


def _eos_id(gguf_path: Path) -> int:
    import gguf

    return int(gguf.GGUFReader(gguf_path).get_field("tokenizer.ggml.eos_token_id").contents())


def _ollama_prompt(record: dict) -> str:
    return record["instruction"] if not record["input"] else f"{record['instruction']}\n\n{record['input']}"


def _api_greedy(api_url: str, job_id: str, prompt: str) -> dict:
    resp = httpx.post(f"{api_url}/api/test-model", timeout=300, json={
        "job_id": job_id, "prompt": prompt, "input": "", "temperature": 0, "max_length": MAX_NEW_TOKENS})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.slow
def test_ollama_q8_0_export_answers_like_test_model(api_url, demo_job, tmp_path):
    from transformers import AutoTokenizer

    from sienn_ray.data.demo import demo_records
    from sienn_ray.data.templates import PromptTemplate, render_prompt
    from export.ollama_grammar import modelfile_prompt

    job_id = demo_job["job_id"]
    record = _export(api_url, job_id)
    assert record["status"] == "completed", record["message"]
    folder = _unzip(_download(api_url, job_id, tmp_path / "ollama.zip"), tmp_path / "unzipped")
    modelfile = (folder / "Modelfile").read_text(encoding="utf-8")
    gguf_path, template = _gguf_of(folder, modelfile), PromptTemplate.load(folder)
    eos = _eos_id(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(demo_job["status"]["model_path"])  # the engine's own decoding

    prompts = [_ollama_prompt(r) for r in demo_records()]
    rendered = [modelfile_prompt(modelfile, p) for p in prompts]
    assert rendered == [render_prompt(template, p) for p in prompts]  # both sides see the same text
    prompt_ids = probe(str(gguf_path), texts=rendered)["tokens_default"]  # llama.cpp's tokens, BOS as the file says

    matched, unstopped, mismatches = 0, [], []
    for prompt, ids in zip(prompts, prompt_ids):
        api = _api_greedy(api_url, job_id, prompt)
        assert api["prompt_tokens"] == len(ids), (prompt, api["prompt_tokens"], ids)
        greedy = probe(str(gguf_path), prompt_ids=ids, n_greedy=MAX_NEW_TOKENS)["greedy"]
        if eos not in greedy:
            unstopped.append(prompt)
        answer = greedy[:greedy.index(eos) + 1] if eos in greedy else greedy
        text = tokenizer.decode(answer, skip_special_tokens=True)
        if text == api["generated_text"] and len(answer) == api["tokens_generated"]:
            matched += 1
        else:
            mismatches.append((prompt, api["generated_text"], text))
    print(f"ollama q8_0 vs /api/test-model: {matched}/{len(prompts)} identical, "
          f"{len(prompts) - len(unstopped)}/{len(prompts)} stopped by EOS")
    assert not mismatches, mismatches
    assert not unstopped, unstopped
