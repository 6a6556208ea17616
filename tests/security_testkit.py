"""What the security tests (and the console's auth test) share: keys made through the registry, and
API processes with auth required (``secure_app.py``) next to the session's Serve app."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import httpx
from helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
SECURE_APP = ROOT / "tests" / "security" / "secure_app.py"
# httpx with a generous default timeout (a call's own timeout wins): the box is shared, and a fresh API
# process's first keyed request also verifies the key (scrypt) and looks up the rate-limit actor.
HTTP = SimpleNamespace(**{verb: partial(getattr(httpx, verb), timeout=60)
                          for verb in ("get", "post", "put", "delete", "options", "request")})


@dataclass(frozen=True)
class Key:
    name: str
    tenant: str
    key: str
    is_admin: bool

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def create_key(registry, name: str, *, tenant: str | None = None, admin: bool = False, quota: str = "") -> Key:
    """A new API key through the registry, as `keys create` makes one. Names get a random suffix: a name
    is never reused, and the session's database outlives each test."""
    from sienn_ray.auth.keys import generate_key, hash_key
    from sienn_ray.auth.quotas import parse_quotas
    from sienn_ray.schemas.auth import ApiKeyRecord
    from sienn_ray.schemas.common import utcnow

    name = f"{name}-{secrets.token_hex(3)}"
    new = generate_key()
    rec = ApiKeyRecord(key_id=new.key_id, name=name, tenant=tenant or name, is_admin=admin,
                       key_hash=hash_key(new.key), created_at=utcnow(), quota=parse_quotas(quota))
    registry.create_key(rec).result()
    return Key(name, rec.tenant, new.key, admin)


class SecureApps:
    """Starts API processes (``secure_app.py``) with extra environment; stops them all at the end."""

    def __init__(self, gcs_address: str, logs: Path):
        self.gcs_address, self.logs = gcs_address, logs
        self.procs: list[subprocess.Popen] = []

    def start(self, **env: str) -> str:
        """Start one API process and return its URL once ``/health`` answers. A port another process took
        between ``free_port`` and the bind is retried on a new port; any other exit fails with its log."""
        for _ in range(3):
            port = free_port()
            environ = dict(os.environ, RAY_ADDRESS=self.gcs_address, PYTHONPATH=str(ROOT), **env)
            log_path = self.logs / f"api-{port}.log"
            with open(log_path, "wb") as log:  # the child keeps its own descriptor
                proc = subprocess.Popen([sys.executable, str(SECURE_APP), str(port)], env=environ,
                                        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            self.procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 240
            while time.time() < deadline:
                if proc.poll() is not None:
                    text = log_path.read_text(errors="replace")
                    if "address already in use" in text.lower():
                        break
                    raise AssertionError(f"API process on {port} exited {proc.returncode}:\n{text[-4000:]}")
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        return url
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise AssertionError(f"API process on {port} did not answer /health within 240 s:\n"
                                     f"{log_path.read_text(errors='replace')[-4000:]}")
        raise AssertionError("three ports were taken before an API process could bind one")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


# Generous limits except inference (which the rate-limit tests drive with bodies refused cheaply): a 10 s
# window, so four requests fit in it on a loaded machine.
SECURE_ENV = {"SIENN_AUTH": "required", "SIENN_KEY_CACHE_S": "1",
              "SIENN_RATE_LIMITS": "standard=100000/minute,training=100000/minute,inference=3/10seconds"}
