"""Ports, addresses and the Ray auth token come from settings; `python -m sienn_ray env` hands them to a shell."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sienn_ray.settings import Settings, ensure_ray_auth_token

ROOT = Path(__file__).resolve().parents[2]


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A new user's environment: fresh HOME, no Ray or sienn variables from this session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SIENN_"))}
    home = tmp_path / "user-home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), SIENN_HOME=str(tmp_path / "sienn"), **extra)
    return env


def test_ports_and_host_are_settings(monkeypatch):
    for name in ("SIENN_HTTP_PORT", "SIENN_RAY_PORT", "SIENN_DASHBOARD_PORT", "SIENN_HTTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    assert (defaults.http_port, defaults.ray_port, defaults.dashboard_port, defaults.http_host) == (
        8000, 6390, 8265, "127.0.0.1")
    monkeypatch.setenv("SIENN_HTTP_PORT", "18000")
    monkeypatch.setenv("SIENN_RAY_PORT", "16390")
    monkeypatch.setenv("SIENN_DASHBOARD_PORT", "18265")
    monkeypatch.setenv("SIENN_HTTP_HOST", "0.0.0.0")
    settings = Settings()
    assert (settings.http_port, settings.ray_port, settings.dashboard_port, settings.http_host) == (
        18000, 16390, 18265, "0.0.0.0")
    assert settings.ray_auth_token_path == settings.home / "run" / "ray_auth_token"


def test_token_is_created_once_private_and_in_rays_format(tmp_path):
    path = ensure_ray_auth_token(tmp_path / "run" / "ray_auth_token")
    token = path.read_text()
    assert len(token) == 64 and int(token, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_ray_auth_token(path).read_text() == token
    assert [p.name for p in path.parent.iterdir()] == ["ray_auth_token"]


def test_apply_ray_env_points_every_client_at_the_storage_roots_token(tmp_path):
    code = ("import os; from sienn_ray.settings import apply_ray_env; apply_ray_env(); "
            "print(os.environ['RAY_AUTH_TOKEN_PATH']); print(os.environ.get('RAY_AUTH_TOKEN'))")
    env = _clean_env(tmp_path, RAY_AUTH_TOKEN="stray-token-from-the-shell")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    token_path, leftover = out.stdout.split()
    assert token_path == str(tmp_path / "sienn" / "run" / "ray_auth_token") and Path(token_path).is_file()
    assert leftover == "None"
    assert not (Path(env["HOME"]) / ".ray").exists()


def test_env_lines_configure_a_new_shell_without_printing_the_token(tmp_path):
    env = _clean_env(tmp_path, SIENN_HTTP_PORT="18001", SIENN_RAY_PORT="16391", SIENN_DASHBOARD_PORT="18266",
                     RAY_AUTH_TOKEN="stray")
    printed = subprocess.run([sys.executable, "-m", "sienn_ray", "env"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    token = (tmp_path / "sienn" / "run" / "ray_auth_token").read_text()
    assert token not in printed.stdout
    script = (f'eval "$({sys.executable} -m sienn_ray env)"; '
              'for v in RAY_ADDRESS RAY_API_SERVER_ADDRESS RAY_DASHBOARD_ADDRESS RAY_AUTH_MODE RAY_AUTH_TOKEN_PATH '
              'SIENN_HOME SIENN_HTTP_PORT; do echo "$v=${!v}"; done; echo "RAY_AUTH_TOKEN=${RAY_AUTH_TOKEN-unset}"; '
              'command -v ray')
    shell = subprocess.run(["bash", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shell.returncode == 0, shell.stderr
    values = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert values == {
        "RAY_ADDRESS": "127.0.0.1:16391",
        "RAY_API_SERVER_ADDRESS": "http://127.0.0.1:18266",
        "RAY_DASHBOARD_ADDRESS": "http://127.0.0.1:18266",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(tmp_path / "sienn" / "run" / "ray_auth_token"),
        "SIENN_HOME": str(tmp_path / "sienn"),
        "SIENN_HTTP_PORT": "18001",
        "RAY_AUTH_TOKEN": "unset",
    }
    assert shell.stdout.splitlines()[-1] == str(Path(sys.executable).parent / "ray")


def test_status_of_a_stack_that_was_never_started_says_down_and_fails(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sienn_ray", "status"], env=_clean_env(tmp_path), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "sienn-ray is down" in out.stdout and str(tmp_path / "sienn") in out.stdout
