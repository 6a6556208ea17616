"""The Serve app of `make up`: its config rendered for this stack, deploy, and state from the dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from ..settings import PROJECT_DIR
from .head import HeadRecord

SERVE_CONFIG = PROJECT_DIR / "serve_config.yaml"
READY_STATES = ("HEALTHY", "RUNNING")
FAILED_STATES = ("DEPLOY_FAILED", "UNHEALTHY")


def render_serve_config(rec: HeadRecord, run_dir: Path, source: Path = SERVE_CONFIG) -> Path:
    """serve_config.yaml (the documented source) with this stack's HTTP host and port, in the run dir."""
    config = yaml.safe_load(source.read_text())
    config["http_options"] = dict(config.get("http_options") or {}, host=rec.http_host, port=rec.http_port)
    out = run_dir / "serve_config.yaml"
    out.write_text(f"# Rendered from {source} by `make up`; edit that file, not this one.\n"
                   + yaml.safe_dump(config, sort_keys=False))
    return out


def _auth_headers() -> dict[str, str]:
    """Ray's token (the file settings.apply_ray_env points RAY_AUTH_TOKEN_PATH at) for the dashboard."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if os.environ.get("RAY_AUTH_MODE") != "token" or not path or not Path(path).exists():
        return {}
    return {"Authorization": f"Bearer {Path(path).read_text().strip()}"}


def http_json(url: str, timeout: float = 3.0):
    """GET ``url`` and decode its JSON body (raises on any failure)."""
    request = urllib.request.Request(url, headers=_auth_headers())
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def dashboard_up(rec: HeadRecord) -> bool:
    try:
        http_json(f"{rec.dashboard_url}/api/version", timeout=2)
        return True
    except Exception:  # noqa: BLE001 - not up (yet)
        return False


def api_healthy(rec: HeadRecord) -> bool:
    try:
        return http_json(f"{rec.api_url}/health").get("status") == "healthy"
    except Exception:  # noqa: BLE001 - not up (yet)
        return False


def deployment_states(rec: HeadRecord) -> dict[str, str]:
    """"app/deployment" -> state, from the dashboard's Serve API ({} when unreachable or none)."""
    try:
        data = http_json(f"{rec.dashboard_url}/api/serve/applications/", timeout=5)
    except Exception:  # noqa: BLE001
        return {}
    return {f"{app_name}/{name}": dep.get("status", "UNKNOWN")
            for app_name, app in (data.get("applications") or {}).items()
            for name, dep in (app.get("deployments") or {}).items()}


def app_ready(states: dict[str, str]) -> bool:
    return bool(states) and all(state in READY_STATES for state in states.values())


def app_failed(states: dict[str, str]) -> bool:
    return any(state in FAILED_STATES for state in states.values())


def _serve_cli(*args: str, timeout: float) -> None:
    serve_bin = str(Path(sys.executable).parent / "serve")
    subprocess.run([serve_bin, *args], check=True, timeout=timeout)


def deploy(rec: HeadRecord, run_dir: Path) -> None:
    """`serve deploy` of the rendered config (returns once Serve accepted it, not when it is healthy)."""
    _serve_cli("deploy", str(render_serve_config(rec, run_dir)), "--address", rec.dashboard_url, timeout=300)


def shutdown(rec: HeadRecord) -> None:
    try:
        _serve_cli("shutdown", "-y", "--address", rec.dashboard_url, timeout=120)
    except (subprocess.SubprocessError, OSError) as err:
        print(f"serve shutdown did not finish ({err}); stopping the head anyway", file=sys.stderr)
