"""Auth required, over real HTTP, on the session's Ray cluster: two API processes (``secure_app.py``)
sharing one registry, one store and one rate-limit counter. Keys come from the CLI or the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from security_testkit import HTTP, ROOT, SECURE_ENV

TINY = {"num_epochs": 1, "batch_size": 2, "max_length": 32}


@pytest.fixture(scope="module")
def apps(secure_apps) -> tuple[str, str]:
    """Two API processes with the same settings: a limit must hold across both."""
    return secure_apps.start(**SECURE_ENV), secure_apps.start(**SECURE_ENV)


def _upload(url: str, key, rows: int = 4, tag: str = "") -> httpx.Response:
    data = "".join(json.dumps({"instruction": f"q{i}{tag}", "output": f"a{i}"}) + "\n" for i in range(rows))
    return HTTP.post(f"{url}/api/upload-dataset", files={"file": ("d.jsonl", data.encode())}, headers=key.headers,
                      timeout=60)


def test_no_operation_of_the_openapi_document_answers_without_a_key(apps, make_key):
    url = apps[0]
    admin = make_key("sweep", admin=True)
    assert HTTP.get(f"{url}/openapi.json").status_code == 401
    spec = HTTP.get(f"{url}/openapi.json", headers=admin.headers).json()
    assert "securitySchemes" in spec["components"]
    swept = 0
    for path, item in spec["paths"].items():
        concrete = path.replace("{job_id}", "job_0123456789abcdef").replace("{dataset_id}", "ds_0123456789abcdef")
        concrete = concrete.replace("{export_id}", "exp_0123456789abcdef")
        for method in item:
            resp = HTTP.request(method.upper(), url + concrete, timeout=30)
            expected = 200 if path == "/health" else 401
            assert resp.status_code == expected, (method, path, resp.status_code, resp.text)
            swept += 1
    for path in ("/docs", "/api/download-model/job_0123456789abcdef", "/nowhere"):
        assert HTTP.get(url + path).status_code == 401, path
    assert swept > 25
    assert HTTP.get(f"{url}/").status_code == 200 and HTTP.get(f"{url}/console/js/api.js").status_code == 200


def test_the_openai_sdk_raises_authentication_error_and_works_with_a_key(apps, make_key):
    url = apps[1]
    for key in ("wrong", "sienn_" + "0" * 16 + "_" + "A" * 43):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as err:
            client.models.list()
        assert err.value.status_code == 401 and err.value.body["code"] == "UNAUTHORIZED"
    user = make_key("sdk")
    models = openai.OpenAI(base_url=f"{url}/v1", api_key=user.key, max_retries=0).models.list()
    assert any(m.id == "sienn-tiny-gpt2" for m in models.data)


def test_rate_limit_holds_across_two_api_processes_with_headers_and_recovers(apps, make_key):
    first, second = apps
    key, other = make_key("limited"), make_key("bystander")
    answers = [HTTP.post(f"{url}/api/test-model", json={}, headers=key.headers, timeout=30)
               for url in (first, second, first)]
    assert [r.status_code for r in answers] == [400, 400, 400]  # counted, then refused by validation
    assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" and int(r.headers["x-ratelimit-reset"]) > 0 for r in answers)
    limited = HTTP.post(f"{second}/api/test-model", json={}, headers=key.headers, timeout=30)
    assert limited.status_code == 429 and limited.json()["error_code"] == "RATE_LIMITED"
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 10 and limited.headers["x-ratelimit-remaining"] == "0"
    assert HTTP.post(f"{first}/api/test-model", json={}, headers=other.headers).status_code == 400  # its own window
    sdk = openai.OpenAI(base_url=f"{first}/v1", api_key=key.key, max_retries=0)
    with pytest.raises(openai.RateLimitError):  # /v1 answers OpenAI's shape, so its SDK raises its own error
        sdk.chat.completions.create(model="sienn-tiny-gpt2", messages=[{"role": "user", "content": "hi"}])
    assert HTTP.get(f"{first}/api/jobs", headers=key.headers).status_code == 200  # another class
    time.sleep(retry_after + 0.3)
    assert HTTP.post(f"{second}/api/test-model", json={}, headers=key.headers).status_code == 400


def test_quotas_refuse_with_429_naming_them_and_store_nothing(apps, make_key):
    url = apps[0]
    small = make_key("small", quota="cpus_per_job=1,running_jobs=0,queued_jobs=1,max_priority=5")
    dataset = _upload(url, small).json()["dataset_id"]
    start = {"dataset_id": dataset, "model_name": "sienn-tiny-gpt2"}
    over = HTTP.post(f"{url}/api/start-finetuning", headers=small.headers, timeout=60,
                      json=start | {"config": TINY | {"num_workers": 2}})
    assert over.status_code == 429 and over.json()["error_code"] == "QUOTA_EXCEEDED"
    assert over.json()["quota"] == "cpus_per_job"
    queued = HTTP.post(f"{url}/api/start-finetuning", headers=small.headers, timeout=60,
                        json=start | {"config": TINY, "priority": 90})
    assert queued.status_code == 200, queued.text
    job_id = queued.json()["job_id"]
    try:
        status = HTTP.get(f"{url}/api/training-status/{job_id}", headers=small.headers).json()
        assert status["priority"] == 5  # capped by the key
        assert status["phase"] == "queued" and status["running_quota"] == 0  # held back by running_jobs=0
        assert "running_jobs quota" in status["message"]
        second = HTTP.post(f"{url}/api/start-finetuning", headers=small.headers, timeout=60,
                            json=start | {"config": TINY})
        assert second.status_code == 429 and second.json()["quota"] == "queued_jobs"
        assert HTTP.get(f"{url}/api/jobs", headers=small.headers).json()["total"] == 1  # nothing more stored
    finally:
        HTTP.post(f"{url}/api/jobs/{job_id}/cancel", headers=small.headers, timeout=60)

    big = make_key("big", quota="cpus_per_job=100000")
    dataset = _upload(url, big).json()["dataset_id"]
    never = HTTP.post(f"{url}/api/start-finetuning", headers=big.headers, timeout=60, json={
        "dataset_id": dataset, "model_name": "sienn-tiny-gpt2",
        "config": TINY | {"num_workers": 64, "cpus_per_worker": 64}})
    assert never.status_code == 400 and never.json()["error_code"] == "RESOURCES_UNAVAILABLE"

    tight = make_key("tight", quota="storage_bytes=100")
    refused = _upload(url, tight, rows=20)
    assert refused.status_code == 429 and refused.json()["quota"] == "storage_bytes"
    assert HTTP.get(f"{url}/api/datasets", headers=tight.headers).json()["total"] == 0


def test_health_details_for_admins_only(apps, make_key):
    url = apps[0]
    user, admin = make_key("peek"), make_key("ops", admin=True)
    summary = HTTP.get(f"{url}/api/health/detailed", headers=user.headers).json()
    assert set(summary) == {"status", "timestamp", "services"}
    detailed = HTTP.get(f"{url}/api/health/detailed", headers=admin.headers).json()
    assert {"ray", "storage", "system"} <= set(detailed)


def _cli(*args: str, gcs: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_ADDRESS=gcs)
    return subprocess.run([sys.executable, "-m", "sienn_ray", "keys", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_creates_lists_and_revokes_keys(apps, ray_session):
    url, gcs = apps[1], ray_session.get_runtime_context().gcs_address
    name = f"cli-{os.getpid()}-{int(time.time())}"
    created = _cli("create", "--name", name, "--quota", "running_jobs=1", gcs=gcs)
    assert created.returncode == 0, created.stderr[-3000:]
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sienn_") and "shown once" in created.stderr and key not in created.stderr
    headers = {"X-API-Key": key}
    assert HTTP.get(f"{url}/api/jobs", headers=headers).status_code == 200
    listed = _cli("list", gcs=gcs)
    assert listed.returncode == 0 and key not in listed.stdout
    mine = [json.loads(line) for line in listed.stdout.splitlines() if json.loads(line)["name"] == name]
    assert mine and mine[0]["tenant"] == name and not mine[0]["is_admin"] and mine[0]["quota"]["running_jobs"] == 1
    again = _cli("create", "--name", name, gcs=gcs)
    assert again.returncode == 2 and "KEY_EXISTS" in again.stderr
    revoked = _cli("revoke", name, gcs=gcs)
    assert revoked.returncode == 0, revoked.stderr[-3000:]
    at = time.monotonic()
    while HTTP.get(f"{url}/api/jobs", headers=headers).status_code == 200:
        assert time.monotonic() - at < float(SECURE_ENV["SIENN_KEY_CACHE_S"]) + 5, "revoked key still accepted"
        time.sleep(0.1)
    print(f"revoked key refused {time.monotonic() - at:.2f} s after `keys revoke` returned")
    assert _cli("revoke", "no-such-key", gcs=gcs).returncode == 2


def _text_files(folder: Path):
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                yield path, path.read_bytes()
            except OSError:
                continue


def test_no_key_or_ray_token_in_logs_records_or_answers(apps, make_key, ray_session, secure_apps, registry):
    """Last in this module: every key made this session and the Ray token, searched everywhere they
    must not be: the API processes' logs, Ray's and Serve's logs, every row of every table, answers."""
    import sqlalchemy as sa

    from sienn_ray.settings import get_settings

    admin = make_key("leakcheck", admin=True)
    url = apps[0]
    answers = [HTTP.get(f"{url}{path}", headers=admin.headers).text
               for path in ("/api/health/detailed", "/api/audit?limit=1000", "/api/jobs?limit=1000", "/openapi.json")]
    secrets_ = [k.key for k in make_key.created]
    token = Path(os.environ["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    assert len(secrets_) >= 10 and token
    places: dict[str, bytes] = {f"answer {i}": a.encode() for i, a in enumerate(answers)}
    places |= {str(p): data for p, data in _text_files(secure_apps.logs)}
    session_dir = Path(ray_session._private.worker._global_node.get_session_dir_path())
    places |= {str(p): data for p, data in _text_files(session_dir / "logs")}
    engine = sa.create_engine(get_settings().db_url)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            places[f"table {table.name}"] = "\n".join(map(repr, rows)).encode()
    engine.dispose()
    assert any(p.startswith("table api_keys") for p in places) and len(places) > 20
    leaks = [(where, "ray token" if s == token else "api key")
             for where, data in places.items() for s in (*secrets_, token) if s.encode() in data]
    assert not leaks, leaks
