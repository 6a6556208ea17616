"""Dataset endpoints over real HTTP against the real Serve app."""

from __future__ import annotations

import json

import httpx
import pytest

CSV = b'instruction,input,output\n"Say hi, politely","","Hello, ""friend""."\n"Multi\nline","x","y"\n'
JSONL = b'{"prompt": "2+2?", "completion": "4"}\n{"prompt": "3+3?", "completion": "6"}\n'
JSON_ARRAY = json.dumps([{"question": "Capital of France?", "answer": "Paris"}]).encode()
CHAT = (json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
        + "\n").encode()

BAD_FILES = {
    "empty.csv": b"",
    "garbage.jsonl": bytes(range(256)) * 4,
    "object.json": b'{"instruction": "a", "output": "b"}',
    "broken.jsonl": b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n',
    "nocols.csv": b"foo,bar\n1,2\n",
}


def _upload(url, filename, data, **form):
    return httpx.post(f"{url}/api/upload-dataset", files={"file": (filename, data)}, data=form, timeout=60)


def _assert_error(resp, status, code):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error_code"] == code and body["detail"] and body["timestamp"]
    return body


@pytest.mark.parametrize("name,data,fmt,kind", [
    ("train.csv", CSV, "csv", "instruction"),
    ("train.jsonl", JSONL, "jsonl", "instruction"),
    ("train.json", JSON_ARRAY, "json", "instruction"),
    ("chat.jsonl", CHAT, "jsonl", "chat"),
    ("mislabelled.txt", JSONL + b'{"prompt": "1+1?", "completion": "2"}\n', "jsonl", "instruction"),
])
def test_upload_each_format(api_url, name, data, fmt, kind):
    resp = _upload(api_url, name, data, name="my set")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["dataset_id"].startswith("ds_") and body["format"] == fmt and body["kind"] == kind
    assert body["filename"] == name and body["size_bytes"] == len(data) and body["name"] == "my set"
    assert body["validation"]["valid"] is True and body["total_samples"] >= 1
    assert body["preview"] and body["uploaded_at"]
    assert isinstance(body["validation"]["null_counts"], dict)
    stats = body["validation"]["statistics"]  # counted with the session's default base, the toy GPT-2
    assert stats["tokenizer"] == "sienn-tiny-gpt2" and stats["sampled_rows"] == body["total_samples"]
    assert 0 < stats["tokens"]["min"] <= stats["tokens"]["p50"] <= stats["tokens"]["max"]


def test_same_bytes_same_id_and_get_list_delete(api_url):
    data = b'{"instruction": "unique-get-list-delete", "output": "ok"}\n'
    first, second = _upload(api_url, "a.jsonl", data).json(), _upload(api_url, "b.jsonl", data).json()
    assert first["dataset_id"] == second["dataset_id"]
    ds = first["dataset_id"]
    got = httpx.get(f"{api_url}/api/datasets/{ds}").json()
    assert got["dataset_id"] == ds and got["total_samples"] == 1
    assert got["validation"]["statistics"] == first["validation"]["statistics"]
    listing = httpx.get(f"{api_url}/api/datasets", params={"limit": 1000}).json()
    assert ds in {d["dataset_id"] for d in listing["datasets"]} and listing["total"] >= 1
    page = httpx.get(f"{api_url}/api/datasets", params={"limit": 1, "offset": 0}).json()
    assert len(page["datasets"]) == 1 and page["limit"] == 1
    assert httpx.delete(f"{api_url}/api/datasets/{ds}").json() == {"deleted": True, "id": ds}
    _assert_error(httpx.get(f"{api_url}/api/datasets/{ds}"), 404, "DATASET_NOT_FOUND")
    _assert_error(httpx.delete(f"{api_url}/api/datasets/{ds}"), 404, "DATASET_NOT_FOUND")


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_are_400_and_store_nothing(api_url, name):
    before = httpx.get(f"{api_url}/api/datasets").json()["total"]
    body = _assert_error(_upload(api_url, name, BAD_FILES[name]), 400, "DATASET_INVALID")
    assert body["errors"]
    assert httpx.get(f"{api_url}/api/datasets").json()["total"] == before


def test_upload_limit_is_413(api_url):
    _assert_error(_upload(api_url, "big.jsonl", b" " * (9 * 1024 * 1024)), 413, "PAYLOAD_TOO_LARGE")


def test_malformed_requests_never_500(api_url):
    cases = [
        httpx.post(f"{api_url}/api/upload-dataset", content=b"not multipart",
                   headers={"content-type": "text/plain"}),
        httpx.post(f"{api_url}/api/upload-dataset", data={"name": "no file"}, files={"other": ("x", b"y")}),
        httpx.get(f"{api_url}/api/datasets/../../etc/passwd"),
        httpx.get(f"{api_url}/api/datasets/ds_nothere"),
        httpx.get(f"{api_url}/api/datasets", params={"limit": -1}),
        httpx.get(f"{api_url}/api/datasets", params={"offset": "abc"}),
        httpx.post(f"{api_url}/api/start-finetuning", content=b"{not json",
                   headers={"content-type": "application/json"}),
        httpx.post(f"{api_url}/api/start-finetuning", json=[]),
        httpx.get(f"{api_url}/api/training-status/job_doesnotexist"),
        httpx.put(f"{api_url}/health"),
        httpx.get(f"{api_url}/no/such/route"),
    ]
    for resp in cases:
        assert 400 <= resp.status_code < 500, (resp.request.url, resp.status_code, resp.text)
        body = resp.json()
        assert {"detail", "error_code", "timestamp"} <= set(body), body


def test_health_metrics_models_formats_openapi(api_url):
    assert httpx.get(f"{api_url}/health").json()["status"] == "healthy"
    detailed = httpx.get(f"{api_url}/api/health/detailed").json()
    assert detailed["services"]["database"] == "connected" and "cpu_percent" in detailed["system"]
    metrics = httpx.get(f"{api_url}/api/metrics").json()
    assert metrics["total_datasets"] >= 0 and "completed_jobs" in metrics
    models = httpx.get(f"{api_url}/api/models", timeout=60).json()
    names = {m["name"] for m in models["models"]}
    assert {"sienn-tiny-gpt2", "sienn-tiny-llama"} <= names and models["default"] in names
    assert all(m["num_parameters"] > 0 for m in models["models"])
    formats = httpx.get(f"{api_url}/api/export-formats").json()
    assert {f["name"] for f in formats["formats"]} == {"pytorch", "gguf", "ollama"}
    spec = httpx.get(f"{api_url}/openapi.json").json()
    for path in ("/api/upload-dataset", "/api/datasets", "/api/start-finetuning", "/api/training-status/{job_id}",
                 "/api/jobs", "/api/test-model", "/api/export-model/{job_id}", "/api/download-model/{job_id}",
                 "/v1/chat/completions"):
        assert path in spec["paths"], path
    assert httpx.get(f"{api_url}/docs").status_code == 200


def test_records_survive_registry_and_app_restart(api_url, registry, ray_session):
    import ray
    from ray import serve

    from sienn_ray.api.ingress import build_app
    from sienn_ray.jobs.client import REGISTRY_NAME
    from sienn_ray.settings import get_settings

    data = b'{"instruction": "survive a restart", "output": "yes"}\n'
    ds = _upload(api_url, "keep.jsonl", data).json()["dataset_id"]
    ray.kill(ray.get_actor(REGISTRY_NAME, namespace=get_settings().ray_namespace), no_restart=False)
    assert httpx.get(f"{api_url}/api/datasets/{ds}", timeout=60).json()["dataset_id"] == ds
    serve.delete("sienn")
    serve.run(build_app({}), name="sienn", route_prefix="/")
    assert httpx.get(f"{api_url}/api/datasets/{ds}", timeout=60).json()["dataset_id"] == ds


def test_an_upload_cut_off_inside_the_file_is_400_and_stores_nothing(api_url):
    before = httpx.get(f"{api_url}/api/datasets").json()["total"]
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="cut.jsonl"\r\n\r\n'
            b'{"instruction": "cut off", "output": "never whole"}\n{"instruction": "half a ro')

    def body():  # chunked, and it ends cleanly where the client gave up: inside the file part
        yield head

    resp = httpx.post(f"{api_url}/api/upload-dataset", content=body(),
                      headers={"content-type": "multipart/form-data; boundary=XyZ"}, timeout=60)
    assert resp.status_code == 400 and "closing boundary" in resp.json()["detail"], resp.text
    assert httpx.get(f"{api_url}/api/datasets").json()["total"] == before
