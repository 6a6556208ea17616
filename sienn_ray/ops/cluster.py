"""`make up` / `make down`: a local Ray head with the Serve app, started and stopped exactly.

The head runs as ``ray start --head --block`` in its own process group; its pid
is recorded, so ``down`` stops that group and nothing else on the machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..settings import PROJECT_DIR, apply_ray_env, get_settings

RAY_PORT = 6390
DASHBOARD_PORT = 8265
HEAD_CPUS = 4
SERVE_CONFIG = PROJECT_DIR / "serve_config.yaml"
UP_TIMEOUT_S = 600


def run_dir() -> Path:
    path = get_settings().home / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _state_file() -> Path:
    return run_dir() / "head.json"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _auth_headers() -> dict[str, str]:
    """The dashboard wants Ray's token when RAY_AUTH_MODE=token (the token Ray wrote on first start)."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not token and path.exists():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _http_json(url: str, timeout: float = 3.0):
    request = urllib.request.Request(url, headers=_auth_headers())
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def api_healthy() -> bool:
    settings = get_settings()
    try:
        return _http_json(f"http://{settings.http_host}:{settings.http_port}/health").get("status") == "healthy"
    except Exception:  # noqa: BLE001 - not up yet
        return False


def serve_status() -> dict[str, str]:
    """Deployment name -> status, from the dashboard's Serve API ({} when unreachable)."""
    try:
        data = _http_json(f"http://127.0.0.1:{DASHBOARD_PORT}/api/serve/applications/", timeout=5)
    except Exception:  # noqa: BLE001
        return {}
    out = {}
    for app in (data.get("applications") or {}).values():
        for name, dep in (app.get("deployments") or {}).items():
            out[name] = dep.get("status", "UNKNOWN")
    return out


def is_up() -> bool:
    statuses = serve_status()
    return bool(statuses) and all(s == "HEALTHY" or s == "RUNNING" for s in statuses.values()) and api_healthy()


def head_pid() -> int | None:
    try:
        pid = json.loads(_state_file().read_text())["pid"]
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, KeyError):
        return None


def start_head() -> int:
    pid = head_pid()
    if pid:
        return pid
    log = open(run_dir() / "ray-head.log", "ab")
    cmd = [_bin("ray"), "start", "--head", "--block", f"--port={RAY_PORT}", f"--num-cpus={HEAD_CPUS}",
           "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD_PORT}",
           "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ)
    _state_file().write_text(json.dumps({"pid": proc.pid, "address": f"127.0.0.1:{RAY_PORT}"}))
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"ray start failed; see {run_dir() / 'ray-head.log'}")
        try:
            _http_json(f"http://127.0.0.1:{DASHBOARD_PORT}/api/version", timeout=2)
            return proc.pid
        except Exception:  # noqa: BLE001
            time.sleep(1)
    raise SystemExit("Ray head did not come up within 120 s")


def deploy() -> None:
    subprocess.run([_bin("serve"), "deploy", str(SERVE_CONFIG), "--address", f"http://127.0.0.1:{DASHBOARD_PORT}"],
                   check=True)
    deadline = time.time() + UP_TIMEOUT_S
    last = None
    while time.time() < deadline:
        statuses = serve_status()
        if statuses != last:
            print("deployments:", statuses or "starting", flush=True)
            last = statuses
        if any(s in ("DEPLOY_FAILED", "UNHEALTHY") for s in statuses.values()):
            raise SystemExit(f"Serve deployment failed: {statuses}; see {run_dir()} and the Ray logs")
        if is_up():
            return
        time.sleep(2)
    raise SystemExit(f"Serve app not healthy within {UP_TIMEOUT_S} s: {serve_status()}")


def up() -> int:
    apply_ray_env()
    lock = open(run_dir() / "up.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("make up is already running in another shell; nothing to do.")
        return 0
    if head_pid() and is_up():
        print(f"sienn-ray is already up: http://127.0.0.1:{get_settings().http_port} (nothing to do)")
        return 0
    from ..models.embedded import ensure_embedded_models

    for name, path in ensure_embedded_models().items():
        print(f"base model {name}: {path}")
    pid = start_head()
    print(f"Ray head running (pid {pid}), dashboard http://127.0.0.1:{DASHBOARD_PORT}")
    deploy()
    print(f"sienn-ray is up: API http://127.0.0.1:{get_settings().http_port}  docs /docs  storage {get_settings().home}")
    return 0


def down() -> int:
    apply_ray_env()
    pid = head_pid()
    if not pid:
        print("Nothing to stop: no Ray head started by make up is running.")
        _state_file().unlink(missing_ok=True)
        return 0
    subprocess.run([_bin("serve"), "shutdown", "-y", "--address", f"http://127.0.0.1:{DASHBOARD_PORT}"],
                   check=False, timeout=120)
    os.killpg(pid, signal.SIGTERM)
    for _ in range(60):
        try:
            os.killpg(pid, 0)
        except OSError:
            break
        time.sleep(1)
    else:
        os.killpg(pid, signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    print("sienn-ray stopped (Serve app and the Ray head started by make up).")
    return 0
