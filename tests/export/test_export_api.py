"""The export routes over a real RegistryCore and SQLite store, with the export run inline (no Ray)."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
from jobs_fakes import FakeCluster  # noqa: E402

from sienn_ray.api.deps import get_principal, get_services  # noqa: E402
from sienn_ray.api.errors import install_error_handlers  # noqa: E402
from sienn_ray.api.routes import exports as routes  # noqa: E402
from sienn_ray.export import ray_task as export_task  # noqa: E402
from sienn_ray.jobs.client import RegistryClient  # noqa: E402
from sienn_ray.jobs.core import RegistryCore  # noqa: E402
from sienn_ray.schemas.common import new_id, utcnow  # noqa: E402
from sienn_ray.schemas.datasets import DatasetRecord, DatasetValidation  # noqa: E402
from sienn_ray.schemas.jobs import JobRecord, JobStatus, TrainingConfig  # noqa: E402
from sienn_ray.services.context import Services  # noqa: E402
from sienn_ray.services.principal import DEFAULT_PRINCIPAL  # noqa: E402
from sienn_ray.store import ReadStore, Store  # noqa: E402


@pytest.fixture()
def api(tmp_path, family_models, family_adapters):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    registry = RegistryClient.in_process(RegistryCore(Store(url), FakeCluster()))
    launched = []

    def launch_inline(task):
        launched.append(task)
        if not getattr(launch_inline, "hold", False):
            export_task.run_and_record(task, registry)

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(routes.router)
    services = Services(registry=registry, reader=ReadStore(url), launch_export=launch_inline)
    app.dependency_overrides[get_services] = lambda: services
    app.dependency_overrides[get_principal] = lambda: DEFAULT_PRINCIPAL  # no security middleware here
    dataset = DatasetRecord(
        dataset_id=new_id("ds"), filename="demo.jsonl", format="jsonl", total_samples=30, size_bytes=1, preview=[],
        validation=DatasetValidation(valid=True, columns=["instruction", "output"], null_counts={}),
        uploaded_at=utcnow(), sha256="0" * 64)
    registry.put_dataset(dataset).result()

    def make_job(family="gpt2", status=JobStatus.COMPLETED, model_path=None):
        now = utcnow()
        job = JobRecord(job_id=new_id("job"), model_name=f"sienn-tiny-{family}",
                        model_path=str(model_path or family_models[family]), dataset_id=dataset.dataset_id,
                        config=TrainingConfig(), total_epochs=1, created_at=now, updated_at=now)
        registry.adopt_job(job, "fixture").result()
        if status != JobStatus.PENDING:
            registry.finish(job.job_id, status.value, "fixture", adapter_path=str(family_adapters[family])).result()
        return job.job_id

    with TestClient(app) as client:
        client.make_job, client.launched, client.launch_inline = make_job, launched, launch_inline
        client.services = services
        yield client


def _error(response, status, code):
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    return response.json()


def test_validation_before_any_work(api, tmp_path):
    _error(api.post("/api/export-model/job_0123456789abcdef", json={"format": "gguf"}), 404, "JOB_NOT_FOUND")
    _error(api.post("/api/export-model/../../etc", json={"format": "gguf"}), 404, "NOT_FOUND")
    _error(api.post("/api/export-model/nonsense", json={"format": "gguf"}), 404, "JOB_NOT_FOUND")
    running = api.make_job(status=JobStatus.PENDING)
    _error(api.post(f"/api/export-model/{running}", json={"format": "gguf"}), 409, "JOB_NOT_READY")
    job = api.make_job()
    _error(api.post(f"/api/export-model/{job}", json={"format": "onnx"}), 400, "VALIDATION_ERROR")
    _error(api.post(f"/api/export-model/{job}", json={"format": "gguf", "quantization": "q3_k"}), 400,
           "VALIDATION_ERROR")
    _error(api.post(f"/api/export-model/{job}", json={"format": "pytorch", "quantization": "q4_0"}), 400,
           "VALIDATION_ERROR")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text('{"model_type": "bert"}')
    body = _error(api.post(f"/api/export-model/{api.make_job(model_path=bert)}", json={"format": "gguf"}), 400,
                  "EXPORT_FAILED")
    assert "gpt2, llama, mistral, qwen2" in body["detail"]
    assert api.launched == []


def test_gguf_export_download_and_reuse(api):
    job = api.make_job("llama")
    response = api.post(f"/api/export-model/{job}", json={"format": "gguf"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"export_id", "format", "status", "download_url", "estimated_time"}
    assert body["download_url"] == f"/api/download-model/{job}?format=gguf&quantization=q8_0"

    record = api.get(f"/api/exports/{body['export_id']}").json()
    assert record["status"] == "completed" and record["quantization"] == "q8_0"
    assert {f["name"] for f in record["files"]} == {
        "README.md", "template.json", f"sienn-tiny-llama-{job}-q8_0.gguf"}
    assert all(len(f["sha256"]) == 64 and f["size_bytes"] > 0 for f in record["files"])

    again = api.post(f"/api/export-model/{job}", json={"format": "gguf", "quantization": "q8_0"}).json()
    assert again["export_id"] == body["export_id"] and len(api.launched) == 1

    download = api.get(body["download_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert download.headers["content-disposition"] == f'attachment; filename="{job}-gguf-q8_0.zip"'
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert archive.testzip() is None
    names = sorted(archive.namelist())
    assert names == sorted(f"{job}-gguf-q8_0/{f['name']}" for f in record["files"])
    listed = api.get(f"/api/jobs/{job}/exports").json()
    assert [e["export_id"] for e in listed["exports"]] == [body["export_id"]]


def test_download_errors(api):
    job = api.make_job()
    _error(api.get(f"/api/download-model/{job}?format=ollama"), 404, "MODEL_NOT_FOUND")
    _error(api.get("/api/download-model/job_0123456789abcdef?format=gguf"), 404, "JOB_NOT_FOUND")
    # No such export can exist (a query's dependency on another is no rule OpenAPI can state): 404, not 400.
    _error(api.get(f"/api/download-model/{job}?format=pytorch&quantization=q4_0"), 404, "MODEL_NOT_FOUND")
    api.launch_inline.hold = True  # the task never runs: the export stays processing
    started = api.post(f"/api/export-model/{job}", json={"format": "ollama", "quantization": "q4_0"}).json()
    assert started["status"] == "processing"
    body = _error(api.get(f"/api/download-model/{job}?format=ollama&quantization=q4_0"), 409, "EXPORT_IN_PROGRESS")
    assert body["export_id"] == started["export_id"]
    again = api.post(f"/api/export-model/{job}", json={"format": "ollama", "quantization": "q4_0"}).json()
    assert again["export_id"] == started["export_id"], "an export in progress is returned, not started twice"
    _error(api.get("/api/exports/exp_0123456789abcdef"), 404, "EXPORT_NOT_FOUND")


def test_failed_export_is_reported_and_can_be_redone(api, family_models, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text((family_models["gpt2"] / "config.json").read_text())
    job = api.make_job("gpt2", model_path=broken)  # passes validation, fails in the task (no weights)
    first = api.post(f"/api/export-model/{job}", json={"format": "pytorch"}).json()
    record = api.get(f"/api/exports/{first['export_id']}").json()
    assert record["status"] == "failed" and record["error_code"] == "EXPORT_FAILED"
    assert record["message"].startswith("Export failed:")
    _error(api.get(f"/api/download-model/{job}"), 404, "MODEL_NOT_FOUND")
    second = api.post(f"/api/export-model/{job}", json={"format": "pytorch"}).json()
    assert second["export_id"] != first["export_id"]


def test_export_formats(api):
    formats = {f["name"]: f for f in api.get("/api/export-formats").json()["formats"]}
    assert formats["gguf"]["supports_quantization"] and formats["gguf"]["default_quantization"] == "q8_0"
    assert formats["pytorch"]["supports_quantization"] is False


def test_pytorch_download_streams_a_loadable_model(api, tmp_path):
    from transformers import AutoModelForCausalLM

    job = api.make_job("gpt2")
    assert api.post(f"/api/export-model/{job}", json={"format": "pytorch"}).status_code == 200
    with api.stream("GET", f"/api/download-model/{job}") as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not buffered
        data = b"".join(response.iter_bytes())
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path / "unzipped")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "unzipped" / f"{job}-pytorch")
    assert model.config.model_type == "gpt2"


def test_reuse_checks_files_on_disk(api):
    job = api.make_job("gpt2")
    first = api.post(f"/api/export-model/{job}", json={"format": "gguf", "quantization": "f16"}).json()
    from sienn_ray import paths

    for path in paths.export_dir(job, "gguf", "f16").iterdir():
        path.unlink()
    _error(api.get(f"/api/download-model/{job}?format=gguf&quantization=f16"), 404, "MODEL_NOT_FOUND")
    second = api.post(f"/api/export-model/{job}", json={"format": "gguf", "quantization": "f16"}).json()
    assert second["export_id"] != first["export_id"]
    assert api.services.reader.get_export(second["export_id"]).status == "completed"
