"""Two tenants and an admin through every route of the real Serve app (the session's, auth off: a key
sent still makes its principal). Another tenant's record answers exactly like a missing one."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from helpers import make_random_adapter
from security_testkit import HTTP

MISSING_JOB, MISSING_DS, MISSING_EXP = "job_0123456789abcdef", "ds_0123456789abcdef", "exp_0123456789abcdef"
ROWS = "".join(json.dumps({"instruction": f"tenant q{i}", "output": f"a{i}"}) + "\n" for i in range(6)).encode()


@pytest.fixture(scope="module")
def world(api_url, registry, make_key, embedded_models):
    """Alice's dataset, completed job and export; Bob with the same bytes uploaded; an admin."""
    from sienn_ray import paths
    from sienn_ray.models.resolve import resolve_model
    from sienn_ray.schemas.common import new_id, utcnow
    from sienn_ray.schemas.jobs import JobRecord, JobStatus, TrainingConfig

    alice, bob, admin = make_key("alice"), make_key("bob"), make_key("root", admin=True)
    up = [HTTP.post(f"{api_url}/api/upload-dataset", files={"file": ("same.jsonl", ROWS)}, headers=k.headers,
                     timeout=60) for k in (alice, bob)]
    assert [r.status_code for r in up] == [200, 200], [r.text for r in up]
    ds_alice, ds_bob = (r.json()["dataset_id"] for r in up)
    model = resolve_model("sienn-tiny-gpt2")
    job_id, now = new_id("job"), utcnow()
    adapter = make_random_adapter(model.path, paths.job_adapter(job_id), seed=3)
    rec = JobRecord(job_id=job_id, tenant=alice.tenant, model_name=model.name, model_path=model.path,
                    dataset_id=ds_alice, config=TrainingConfig(), total_epochs=1, created_at=now, updated_at=now)
    registry.adopt_job(rec, "fixture").result()
    registry.finish(job_id, JobStatus.COMPLETED.value, "fixture", adapter_path=str(adapter)).result()
    export = HTTP.post(f"{api_url}/api/export-model/{job_id}", json={"format": "pytorch"}, headers=alice.headers,
                        timeout=120)
    assert export.status_code == 200, export.text
    export_id = export.json()["export_id"]
    deadline = time.time() + 600
    while HTTP.get(f"{api_url}/api/exports/{export_id}", headers=alice.headers).json()["status"] == "processing":
        assert time.time() < deadline
        time.sleep(1)
    return {"alice": alice, "bob": bob, "admin": admin, "job": job_id, "dataset": ds_alice, "bob_dataset": ds_bob,
            "export": export_id}


def _requests(w) -> list[tuple[str, str, dict | None, dict | None]]:
    """(method, path, json, params) of every route that names one of Alice's records."""
    job, ds, exp = w["job"], w["dataset"], w["export"]
    chat = {"model": job, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    return [
        ("GET", f"/api/datasets/{ds}", None, None),
        ("DELETE", f"/api/datasets/{ds}", None, None),
        ("GET", f"/api/training-status/{job}", None, None),
        ("GET", f"/api/jobs/{job}", None, None),
        ("GET", f"/api/jobs/{job}/events", None, None),
        ("GET", f"/api/jobs/{job}/history", None, None),
        ("GET", f"/api/jobs/{job}/evaluation", None, None),
        ("GET", f"/api/jobs/{job}/exports", None, None),
        ("GET", "/api/jobs/compare", None, {"ids": job}),
        ("POST", f"/api/jobs/{job}/cancel", None, None),
        ("POST", f"/api/jobs/{job}/pause", None, None),
        ("POST", f"/api/jobs/{job}/resume", None, None),
        ("POST", "/api/test-model", {"job_id": job, "prompt": "hi", "max_length": 2}, None),
        ("POST", "/v1/completions", {"model": job, "prompt": "hi", "max_tokens": 2}, None),
        ("POST", "/v1/chat/completions", chat, None),
        ("POST", f"/api/export-model/{job}", {"format": "pytorch"}, None),
        ("GET", f"/api/download-model/{job}", None, {"format": "pytorch"}),
        ("GET", f"/api/exports/{exp}", None, None),
        ("POST", "/api/start-finetuning", {"dataset_id": ds, "model_name": "sienn-tiny-gpt2"}, None),
    ]


def _missing(path: str, body: dict | None, params: dict | None, w) -> tuple:
    swap = {w["job"]: MISSING_JOB, w["dataset"]: MISSING_DS, w["export"]: MISSING_EXP}
    text = json.dumps([path, body, params])
    for real, fake in swap.items():
        text = text.replace(real, fake)
    return tuple(json.loads(text))


def _shape(resp: httpx.Response, ids: tuple[str, ...]) -> tuple:
    """Status, error code and detail with ids blanked: what tells a missing record from another's."""
    body = resp.json()
    error = body.get("error") or body
    code = error.get("error_code") or error.get("code")
    detail = error.get("detail") or error.get("message")
    for value in ids:
        detail = detail.replace(value, "<id>")
    return resp.status_code, code, re.sub(r"\s+", " ", detail)


def test_another_tenants_records_are_404_exactly_like_missing_ones(api_url, world):
    bob = world["bob"].headers
    ids = (world["job"], world["dataset"], world["export"], MISSING_JOB, MISSING_DS, MISSING_EXP)
    for method, path, body, params in _requests(world):
        theirs = HTTP.request(method, api_url + path, json=body, params=params, headers=bob, timeout=60)
        m_path, m_body, m_params = _missing(path, body, params, world)
        missing = HTTP.request(method, api_url + m_path, json=m_body, params=m_params, headers=bob, timeout=60)
        assert theirs.status_code == 404, (method, path, theirs.status_code, theirs.text)
        assert _shape(theirs, ids) == _shape(missing, ids), (method, path)


def test_the_owner_and_the_admin_reach_every_route(api_url, world):
    expected = {"cancel": 409, "pause": 409, "resume": 409, "evaluation": 404}
    for who in ("alice", "admin"):
        headers = world[who].headers
        for method, path, body, params in _requests(world):
            if path == "/api/start-finetuning" or method == "DELETE":
                continue  # a real job, and the dataset's deletion: the last test deletes it
            resp = HTTP.request(method, api_url + path, json=body, params=params, headers=headers, timeout=120)
            want = next((code for word, code in expected.items() if word == method or path.endswith(word)), 200)
            assert resp.status_code == want, (who, method, path, resp.status_code, resp.text[:300])
            if want == 404:
                assert resp.json()["error_code"] == "EVALUATION_NOT_FOUND"  # the job is found, its report is not


def test_lists_counts_and_models_are_per_tenant(api_url, world):
    alice, bob, admin = (world[k].headers for k in ("alice", "bob", "admin"))
    assert world["bob_dataset"] != world["dataset"]  # the same bytes: Bob got a record of his own
    listed = {k: {d["dataset_id"] for d in HTTP.get(f"{api_url}/api/datasets", headers=h,
                                                     params={"limit": 1000}).json()["datasets"]}
              for k, h in (("alice", alice), ("bob", bob), ("admin", admin))}
    assert listed["alice"] == {world["dataset"]} and listed["bob"] == {world["bob_dataset"]}
    assert {world["dataset"], world["bob_dataset"]} <= listed["admin"]
    jobs = {k: {j["job_id"] for j in HTTP.get(f"{api_url}/api/jobs", headers=h, params={"limit": 1000})
                .json()["jobs"]} for k, h in (("alice", alice), ("bob", bob), ("admin", admin))}
    assert jobs["alice"] == {world["job"]} and jobs["bob"] == set() and world["job"] in jobs["admin"]
    models = {k: {m["id"] for m in HTTP.get(f"{api_url}/v1/models", headers=h).json()["data"]}
              for k, h in (("alice", alice), ("bob", bob))}
    assert world["job"] in models["alice"] and world["job"] not in models["bob"]
    assert "sienn-tiny-gpt2" in models["bob"]  # base models are everyone's
    metrics = {k: HTTP.get(f"{api_url}/api/metrics", headers=h).json() for k, h in (("alice", alice), ("bob", bob))}
    assert (metrics["alice"]["total_jobs"], metrics["alice"]["total_exports"]) == (1, 1)
    assert (metrics["bob"]["total_jobs"], metrics["bob"]["total_datasets"]) == (0, 1)
    assert HTTP.get(f"{api_url}/api/audit", headers=alice).status_code == 403
    trail = HTTP.get(f"{api_url}/api/audit", headers=admin, params={"key_name": world["alice"].name}).json()
    assert {"/api/upload-dataset", "/api/export-model/{job_id}"} <= {e["route"] for e in trail["entries"]}


def test_only_the_owner_or_an_admin_deletes(api_url, world):
    bob, alice, admin = (world[k].headers for k in ("bob", "alice", "admin"))
    assert HTTP.delete(f"{api_url}/api/datasets/{world['dataset']}", headers=bob).status_code == 404
    assert HTTP.delete(f"{api_url}/api/datasets/{world['dataset']}", headers=alice).status_code == 200
    assert HTTP.get(f"{api_url}/api/datasets/{world['dataset']}", headers=admin).status_code == 404
    assert HTTP.delete(f"{api_url}/api/datasets/{world['bob_dataset']}", headers=admin).status_code == 200
