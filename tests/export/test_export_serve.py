"""Export through the real Serve app: the export runs as a Ray task and the ZIP streams back."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

pytestmark = pytest.mark.slow


def _wait(httpx, url: str, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        record = httpx.get(url, timeout=30).json()
        if record["status"] != "processing":
            return record
        time.sleep(1.0)
    raise AssertionError(f"export still processing after {timeout}s: {record}")


def test_ollama_export_on_the_cluster(api_url, make_completed_job):
    import httpx

    job = make_completed_job("sienn-tiny-llama")
    response = httpx.post(f"{api_url}/api/export-model/{job}", json={"format": "ollama"}, timeout=60)
    assert response.status_code == 200, response.text
    started = response.json()
    assert started["status"] == "processing" and started["estimated_time"]

    record = _wait(httpx, f"{api_url}/api/exports/{started['export_id']}")
    assert record["status"] == "completed", record["message"]
    names = {f["name"] for f in record["files"]}
    assert {"Modelfile", "README.md", "template.json", f"sienn-tiny-llama-{job}-q8_0.gguf"} == names

    again = httpx.post(f"{api_url}/api/export-model/{job}", json={"format": "ollama", "quantization": "q8_0"},
                       timeout=60).json()
    assert again["export_id"] == started["export_id"] and again["status"] == "completed"

    download = httpx.get(api_url + started["download_url"], timeout=120)
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="{job}-ollama-q8_0.zip"'
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert archive.testzip() is None
    assert {n.split("/", 1)[1] for n in archive.namelist()} == names

    listed = httpx.get(f"{api_url}/api/jobs/{job}/exports", timeout=30).json()
    assert [e["export_id"] for e in listed["exports"]] == [started["export_id"]]
