"""`make up` / `make status` / `make down` as a new user runs them, next to the test session's own Ray.

A subprocess with a fresh, empty HOME (no ~/.ray), a fresh SIENN_HOME and free ports for the
API, the Ray head and the dashboard. In a new shell, the README's `eval` line makes
`ray status`, `serve status` and the README's `ray job submit ... train` work against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
TINY_TRAINING = {"num_epochs": 1, "batch_size": 8, "max_length": 64, "learning_rate": 0.005}


def _new_user_env(tmp_path: Path) -> dict[str, str]:
    """This machine's environment less every Ray / sienn variable of the test session, plus a fresh HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SIENN_", "PYTEST_"))}
    (tmp_path / "home").mkdir()
    env.update(HOME=str(tmp_path / "home"), SIENN_HOME=str(tmp_path / "sienn"), PYTHONPATH=str(ROOT),
               SIENN_HTTP_PORT=str(free_port()), SIENN_RAY_PORT=str(free_port()),
               SIENN_DASHBOARD_PORT=str(free_port()))
    return env


def _make(target: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(ROOT), target], env=env, capture_output=True, text=True, timeout=timeout)


def _shell(script: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """``script`` in a new bash after the README's eval line."""
    line = f'eval "$({PYTHON} -m sienn_ray env)" && {script}'
    return subprocess.run(["bash", "-c", line], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def _processes_of_stack(head_pid: int, home: str) -> list[str]:
    """Live processes in the head's session, or whose command line or environment names this SIENN_HOME."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if not cmdline:  # zombie or kernel thread
            continue
        if (_session_of(int(entry.name)) == head_pid or home.encode() in cmdline
                or f"SIENN_HOME={home}".encode() in environ.split(b"\0")):
            shown = cmdline.replace(b"\0", b" ")[:120].decode(errors="replace")
            found.append(f"{entry.name}: {shown}")
    return found


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_make_up_status_env_and_down_as_a_new_user(tmp_path, ray_session):
    env = _new_user_env(tmp_path)
    home = env["SIENN_HOME"]
    api = f"http://127.0.0.1:{env['SIENN_HTTP_PORT']}"
    head_pid = None
    try:
        started = time.time()
        first = _make("up", env)
        print(f"make up: {time.time() - started:.1f} s")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "sienn-ray is up" in first.stdout
        record = json.loads((Path(home) / "run" / "head.json").read_text())
        head_pid = record["pid"]
        assert httpx.get(f"{api}/health", timeout=30).json()["status"] == "healthy"

        cli = _shell("ray status && serve status", env)
        assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
        assert "Active:" in cli.stdout
        serve = yaml.safe_load(cli.stdout[cli.stdout.index("applications:"):])
        app = serve["applications"]["sienn"]
        assert app["status"] == "RUNNING"
        assert {name: d["status"] for name, d in app["deployments"].items()} == {
            "ApiIngress": "HEALTHY", "InferenceDeployment": "HEALTHY"}

        # The README's batch-training line, in a new shell, on the demo data with a few steps.
        demo = subprocess.run([str(PYTHON), "-m", "sienn_ray.data.demo"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=True).stdout
        (tmp_path / "demo.jsonl").write_text(demo)
        (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_TRAINING))
        job = _shell(f"ray job submit --working-dir . -- python -m sienn_ray train --dataset {tmp_path}/demo.jsonl "
                     f"--model sienn-tiny-gpt2 --config {tmp_path}/tiny.yaml", env)
        assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
        assert "completed: Training completed" in job.stdout and "succeeded" in job.stdout
        listed = httpx.get(f"{api}/api/jobs", timeout=30).json()["jobs"]  # the same registry as the API
        assert [j["status"] for j in listed] == ["completed"]

        started = time.time()
        second = _make("up", env)
        print(f"second make up: {time.time() - started:.1f} s")
        assert second.returncode == 0 and "already up" in second.stdout and "nothing to do" in second.stdout
        assert json.loads((Path(home) / "run" / "head.json").read_text()) == record

        status = _make("status", env, timeout=120)
        assert status.returncode == 0, status.stdout + status.stderr
        for expected in ("sienn-ray is up", f"{api}/docs", f"http://127.0.0.1:{env['SIENN_DASHBOARD_PORT']}",
                         "sienn/ApiIngress: HEALTHY", "sienn/InferenceDeployment: HEALTHY"):
            assert expected in status.stdout, status.stdout
        assert not (Path(env["HOME"]) / ".ray").exists()
    finally:
        down = _make("down", env, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    assert head_pid is not None
    assert _processes_of_stack(head_pid, home) == []
    after = _make("status", env, timeout=120)
    assert after.returncode != 0 and "is down" in after.stdout
    # The test session's own Ray was left alone.
    assert ray_session.get(ray_session.remote(lambda: 41 + 1).remote(), timeout=120) == 42
