"""Fixtures of the security tests: API keys made through the session registry, and API processes
with auth required (``secure_app.py``) next to the session's Serve app (auth off)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass(frozen=True)
class Key:
    name: str
    tenant: str
    key: str
    is_admin: bool

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="session")
def make_key(registry):
    """Factory: a new API key through the registry, as `keys create` makes one. Names get a random
    suffix: a name is never reused, and the session's database outlives each test."""
    from sienn_ray.auth.keys import generate_key, hash_key
    from sienn_ray.auth.quotas import parse_quotas
    from sienn_ray.schemas.auth import ApiKeyRecord
    from sienn_ray.schemas.common import utcnow

    def _make(name: str, *, tenant: str | None = None, admin: bool = False, quota: str = "") -> Key:
        name = f"{name}-{secrets.token_hex(3)}"
        new = generate_key()
        rec = ApiKeyRecord(key_id=new.key_id, name=name, tenant=tenant or name, is_admin=admin,
                           key_hash=hash_key(new.key), created_at=utcnow(), quota=parse_quotas(quota))
        registry.create_key(rec).result()
        return Key(name, rec.tenant, new.key, admin)

    return _make


class SecureApps:
    """Starts API processes (``secure_app.py``) with extra environment; stops them all at the end."""

    def __init__(self, gcs_address: str, logs: Path):
        self.gcs_address, self.logs = gcs_address, logs
        self.procs: list[subprocess.Popen] = []

    def start(self, **env: str) -> str:
        port = free_port()
        environ = dict(os.environ, RAY_ADDRESS=self.gcs_address, PYTHONPATH=str(ROOT), **env)
        log = open(self.logs / f"api-{port}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, str(HERE / "secure_app.py"), str(port)], env=environ,
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 240
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError((self.logs / f"api-{port}.log").read_text()[-4000:])
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"API process on {port} did not answer /health")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def secure_apps(ray_session, api_url, registry, tmp_path_factory):
    """Factory of auth-required API processes on this session's cluster (the inference deployment of
    the session app answers their inference calls)."""
    apps = SecureApps(ray_session.get_runtime_context().gcs_address, tmp_path_factory.mktemp("api-logs"))
    yield apps
    apps.stop()


# Generous limits except inference (which the rate-limit tests drive with bodies refused cheaply).
SECURE_ENV = {"SIENN_AUTH": "required", "SIENN_KEY_CACHE_S": "1",
              "SIENN_RATE_LIMITS": "standard=100000/minute,training=100000/minute,inference=3/2seconds"}


@pytest.fixture(scope="module")
def secure_url(secure_apps) -> str:
    return secure_apps.start(**SECURE_ENV)
