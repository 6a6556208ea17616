"""A stack of our own for the chaos tests: `python -m sienn_ray up` (the ops helpers of `make up`) with a
fresh HOME, a fresh SIENN_HOME (on a small tmpfs where the test may mount one) and free ports.

The session's built models are linked in, so `up` converts nothing. Calls into the
stack's Ray (killing its registry) run in a subprocess: the test process may already
be attached to the test session's own cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():
    PYTHON = Path(sys.executable)


class Stack:
    def __init__(self, tmp: Path, home: Path, models: Path):
        (tmp / "user").mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "models").exists():
            (home / "models").symlink_to(models, target_is_directory=True)
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SIENN_", "PYTEST_"))}
        self.env.update(
            HOME=str(tmp / "user"), SIENN_HOME=str(home), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
            SIENN_HTTP_PORT=str(free_port()), SIENN_RAY_PORT=str(free_port()), SIENN_DASHBOARD_PORT=str(free_port()),
            SIENN_DEFAULT_MODEL="sienn-tiny-gpt2", TOKENIZERS_PARALLELISM="false",
            # A lost runner is noticed within 10 s (not 30) and a restarted stack relaunches sooner.
            SIENN_LEASE_TTL_S="10",
        )
        self.api = f"http://127.0.0.1:{self.env['SIENN_HTTP_PORT']}"

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([str(PYTHON), "-m", "sienn_ray", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def up(self) -> float:
        started = time.monotonic()
        done = self.cli("up")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return time.monotonic() - started

    def down(self) -> None:
        self.cli("down", timeout=300)

    def head_record(self) -> dict:
        return json.loads((self.home / "run" / "head.json").read_text())

    def crash(self) -> int:
        """SIGKILL every process of the head's session at once (the head machine dies); how many."""
        from sienn_ray.ops.head import HeadRecord, stack_processes

        pids = stack_processes(HeadRecord(**self.head_record()))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 60
        while stack_processes(HeadRecord(**self.head_record())) and time.time() < deadline:
            time.sleep(0.5)
        return len(pids)

    def ray_script(self, code: str, timeout: float = 180) -> str:
        """Run ``code`` in a Python attached to the stack's Ray (its namespace); its stdout."""
        prelude = ("from sienn_ray.settings import apply_ray_env, get_settings\napply_ray_env()\nimport ray\n"
                   "ray.init(address=os.environ['RAY_ADDRESS'], namespace=get_settings().ray_namespace, "
                   "log_to_driver=False)\n")
        record = self.head_record()
        env = self.env | {"RAY_ADDRESS": f"127.0.0.1:{record['ray_port']}"}
        done = subprocess.run([str(PYTHON), "-c", "import os\n" + prelude + code], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    def restart_registry(self) -> None:
        """``ray.kill(registry, no_restart=False)`` and wait until it answers again (it reconnects)."""
        self.ray_script(
            "from sienn_ray.jobs.registry import connect_registry\n"
            "from sienn_ray.jobs.client import REGISTRY_NAME\n"
            "client = connect_registry()\n"
            "before = client.ping().result(timeout=120)['started_at']\n"
            "ray.kill(ray.get_actor(REGISTRY_NAME), no_restart=False)\n"
            "import time\n"
            "deadline = time.time() + 120\n"
            "while client.ping().result(timeout=120)['started_at'] == before and time.time() < deadline:\n"
            "    time.sleep(0.5)\n")

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.api + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.api + path, timeout=120, **kwargs)
