"""The security middleware on the real app with auth required, over a real RegistryCore and SQLite store
in this process (no Ray: TestClient drives the ASGI app). The same app under real HTTP and Ray is in
test_secure_http.py; here every route and every kind of refused key is cheap to sweep."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
from jobs_fakes import FakeCluster  # noqa: E402

from sienn_ray.api import deps  # noqa: E402
from sienn_ray.api.app import create_app  # noqa: E402
from sienn_ray.api.security import FIRST_KEY_HINT, NEED_KEY  # noqa: E402
from sienn_ray.auth.config import SecurityConfig  # noqa: E402
from sienn_ray.auth.keys import generate_key  # noqa: E402
from sienn_ray.auth.routes import is_open  # noqa: E402
from sienn_ray.jobs.client import RegistryClient  # noqa: E402
from sienn_ray.jobs.core import RegistryCore  # noqa: E402
from sienn_ray.schemas.auth import Quota  # noqa: E402
from sienn_ray.services import keys  # noqa: E402
from sienn_ray.services.context import Services  # noqa: E402
from sienn_ray.store import ReadStore, Store  # noqa: E402

CONFIG = SecurityConfig(auth_required=True, rate_limits=None, rate_limit_storage=None, quota_defaults=Quota(),
                        allowed_origins=frozenset(), allowed_hosts=frozenset(), loopback_listener=True,
                        key_cache_s=0.2)
OPEN = {"/health", "/", "/console/js/api.js"}


@pytest.fixture()
def app(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    services = Services(registry=RegistryClient.in_process(RegistryCore(Store(url), FakeCluster())),
                        reader=ReadStore(url))
    deps.set_services(services)
    with TestClient(create_app(CONFIG), base_url="http://127.0.0.1") as client:
        client.services = services
        yield client
    deps._services = None


def _new_key(app, name, **kwargs) -> str:
    return asyncio.run(keys.create_key(app.services, name, **kwargs))[1]


def _operations(app) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the OpenAPI document, plus the routes it does not list."""
    admin = _new_key(app, "sweeper", is_admin=True)
    spec = app.get("/openapi.json", headers={"X-API-Key": admin}).json()
    ops = [(method.upper(), path.replace("{job_id}", "job_0123456789abcdef").replace(
        "{dataset_id}", "ds_0123456789abcdef").replace("{export_id}", "exp_0123456789abcdef"))
        for path, item in spec["paths"].items() for method in item]
    return ops + [("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/no/such/route"), ("DELETE", "/api/jobs")]


def test_before_any_key_only_open_paths_answer_and_the_401_says_how_to_make_the_first(app):
    for path in OPEN:
        assert app.get(path).status_code == 200, path
    resp = app.get("/api/jobs")
    assert resp.status_code == 401 and resp.json()["detail"] == FIRST_KEY_HINT
    assert resp.json()["error_code"] == "UNAUTHORIZED" and {"detail", "error_code", "timestamp"} == set(resp.json())
    assert resp.headers["www-authenticate"] == 'Bearer realm="sienn-ray"'
    _new_key(app, "admin", is_admin=True)
    time.sleep(CONFIG.key_cache_s + 0.1)
    assert app.get("/api/jobs").json()["detail"] == NEED_KEY


def test_no_route_answers_without_a_valid_key(app):
    alice = _new_key(app, "alice")
    revoked = _new_key(app, "gone")
    asyncio.run(keys.revoke_key(app.services, "gone"))
    bad = {"none": {}, "malformed": {"Authorization": "Bearer nonsense"},
           "wrong scheme": {"Authorization": f"Basic {alice}"},
           "unknown": {"Authorization": f"Bearer {generate_key().key}"},
           "forged": {"X-API-Key": alice[:-4] + "AAAA"}, "revoked": {"X-API-Key": revoked}}
    operations = _operations(app)
    assert len(operations) > 25
    for method, path in operations:
        if is_open(path):
            assert app.request(method, path).status_code == 200, path
            continue
        for why, headers in bad.items():
            resp = app.request(method, path, headers=headers)
            assert resp.status_code == 401, (method, path, why, resp.status_code)
            assert resp.headers["www-authenticate"].startswith("Bearer")
            if path.startswith("/v1/"):
                assert resp.json()["error"]["code"] == "UNAUTHORIZED", (path, resp.json())
            else:
                assert resp.json()["error_code"] == "UNAUTHORIZED", (path, resp.json())
    for path in ("/api/jobs", "/api/datasets", "/openapi.json", "/docs", "/api/jobs/job_0123456789abcdef"):
        with_key = app.get(path, headers={"Authorization": f"Bearer {alice}"})
        assert with_key.status_code in (200, 404), (path, with_key.text)


def test_both_headers_carry_a_key_and_a_revocation_holds_within_the_cache_time(app):
    key = _new_key(app, "bob")
    assert app.get("/api/datasets", headers={"X-API-Key": key}).status_code == 200
    assert app.get("/api/datasets", headers={"Authorization": f"bearer {key}"}).status_code == 200
    asyncio.run(keys.revoke_key(app.services, "bob"))
    deadline = time.monotonic() + CONFIG.key_cache_s + 3.0  # slack for a loaded machine
    while app.get("/api/datasets", headers={"X-API-Key": key}).status_code == 200:
        assert time.monotonic() < deadline, "a revoked key was still accepted after the cache time"
        time.sleep(0.05)


def test_openapi_declares_the_keys_and_every_refusal(app):
    key = _new_key(app, "reader")
    spec = app.get("/openapi.json", headers={"X-API-Key": key}).json()
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert spec["security"] == [{"bearer": []}, {"apiKey": []}]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert {"401", "421"} <= set(operation["responses"]), (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert {"403", "413"} <= set(operation["responses"]), (method, path)


def test_admin_only_audit_trail_and_health_details(app):
    admin, alice = _new_key(app, "root", is_admin=True), _new_key(app, "carol")
    assert app.get("/api/audit", headers={"X-API-Key": alice}).status_code == 403
    assert app.post("/api/jobs/job_0123456789abcdef/cancel", headers={"X-API-Key": alice}).status_code == 404
    assert app.delete("/api/datasets/ds_0123456789abcdef", headers={"X-API-Key": alice}).status_code == 404
    deadline = time.monotonic() + 10
    while True:
        trail = app.get("/api/audit", headers={"X-API-Key": admin}, params={"key_name": "carol"}).json()
        if trail["total"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(e["method"], e["route"], e["target_id"], e["status"], e["tenant"]) for e in trail["entries"]] == [
        ("DELETE", "/api/datasets/{dataset_id}", "ds_0123456789abcdef", 404, "carol"),
        ("POST", "/api/jobs/{job_id}/cancel", "job_0123456789abcdef", 404, "carol")]
    assert app.get("/api/audit", headers={"X-API-Key": admin}, params={"limit": 1}).json()["limit"] == 1
    assert app.get("/api/audit", headers={"X-API-Key": admin}, params={"key_name": "../x"}).status_code == 400


def test_auth_off_acts_as_the_default_tenant_and_keys_still_narrow_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    services = Services(registry=RegistryClient.in_process(RegistryCore(Store(url), FakeCluster())),
                        reader=ReadStore(url))
    deps.set_services(services)
    try:
        with TestClient(create_app(replace(CONFIG, auth_required=False)), base_url="http://127.0.0.1") as client:
            assert client.get("/api/audit").status_code == 200  # the operator, as the default admin
            key = asyncio.run(keys.create_key(services, "dave"))[1]
            assert client.get("/api/audit", headers={"X-API-Key": key}).status_code == 403
            assert client.get("/api/jobs", headers={"X-API-Key": "sienn_bogus"}).status_code == 401
            # Not a sienn key at all (what an SDK that needs some api_key sends): ignored, as no key.
            assert client.get("/api/audit", headers={"Authorization": "Bearer unused"}).status_code == 200
    finally:
        deps._services = None


def test_with_auth_left_to_the_listener_a_request_from_another_host_needs_a_key(tmp_path):
    """SIENN_AUTH unset and the settings say loopback, but the peer is remote (a Serve config edited to
    listen on 0.0.0.0): that request needs a key; local peers still do not."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    services = Services(registry=RegistryClient.in_process(RegistryCore(Store(url), FakeCluster())),
                        reader=ReadStore(url))
    deps.set_services(services)
    app = create_app(replace(CONFIG, auth_required=False, auth_auto=True))
    try:
        key = asyncio.run(keys.create_key(services, "erin"))[1]
        for peer, status in ((("127.0.0.1", 5000), 200), (("::1", 5000), 200), (("203.0.113.7", 5000), 401),
                             (("10.0.0.8", 5000), 401)):
            with TestClient(app, base_url="http://127.0.0.1", client=peer) as client:
                assert client.get("/api/jobs").status_code == status, peer
                assert client.get("/api/jobs", headers={"X-API-Key": key}).status_code == 200, peer
                assert client.get("/health").status_code == 200
    finally:
        deps._services = None
