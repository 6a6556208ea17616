"""The local Ray head of `make up`: its ports, its command line and its record in the run dir.

The head runs as ``ray start --head --block`` as the leader of a new session. Every
port it would otherwise take at a fixed default (GCS 6379, dashboard 8265, Ray Client
10001, dashboard agent 52365, workers 10002-19999) is either a setting or a free port
picked at start and recorded, so stacks with different ``SIENN_HOME`` and ports run side
by side. Ray gives each worker its own process group but keeps the session, so the
session id is how ``down`` finds every process of exactly this stack and nothing else
(the environment is no marker: Ray's setproctitle overwrites part of it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..settings import Settings, free_ports

HEAD_CPUS = 4
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class HeadRecord:
    """What a running head was started with (ports are fixed for its lifetime)."""

    ray_port: int
    dashboard_port: int
    http_host: str
    http_port: int
    client_server_port: int = 0
    dashboard_agent_port: int = 0
    # Serve's HAProxy ingress (SIENN_SERVE_INGRESS=haproxy) also binds a stats and a metrics port.
    haproxy_stats_port: int = 0
    haproxy_metrics_port: int = 0
    pid: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadRecord:
        """The addresses a head started now would get (auxiliary ports not picked yet)."""
        return cls(ray_port=settings.ray_port, dashboard_port=settings.dashboard_port,
                   http_host=settings.http_host, http_port=settings.http_port)

    @property
    def ray_address(self) -> str:
        return f"127.0.0.1:{self.ray_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def api_url(self) -> str:
        # A wildcard bind address is reachable on loopback; URLs must name a real host.
        host = "127.0.0.1" if self.http_host in ("", "0.0.0.0", "::") else self.http_host
        return f"http://{host}:{self.http_port}"


def _state_file(run_dir: Path) -> Path:
    return run_dir / "head.json"


def read_record(run_dir: Path) -> HeadRecord | None:
    """The last head recorded in this run dir, alive or not."""
    try:
        return HeadRecord(**json.loads(_state_file(run_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def forget_record(run_dir: Path) -> None:
    _state_file(run_dir).unlink(missing_ok=True)


def _is_head_of(pid: int, rec: HeadRecord) -> bool:
    """Whether ``pid`` is that record's ``ray start --head`` (and not a reused pid)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    return "--head" in args and f"--port={rec.ray_port}" in args and f"--dashboard-port={rec.dashboard_port}" in args


def running_record(run_dir: Path) -> HeadRecord | None:
    """The recorded head if its process still runs."""
    rec = read_record(run_dir)
    return rec if rec is not None and rec.pid and _is_head_of(rec.pid, rec) else None


def _session_of(pid: int) -> int | None:
    """The session id of a live process (None when gone or a zombie waiting to be reaped)."""
    try:
        # Fields after "(comm)": state, ppid, pgrp, session. comm may hold spaces or ")".
        state, _ppid, _pgrp, session = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:4]
    except (OSError, ValueError):
        return None
    return None if state in ("Z", "X") else int(session)


def stack_processes(rec: HeadRecord) -> list[int]:
    """Pids of every live process of that stack: the head's session (Ray's daemons, workers, job drivers)."""
    if not rec.pid or (_session_of(rec.pid) is not None and not _is_head_of(rec.pid, rec)):
        return []  # the session leader's pid now belongs to something else: not ours to touch
    # While any member of the session lives, Linux does not hand its id out again.
    return [int(e.name) for e in Path("/proc").iterdir()
            if e.name.isdigit() and int(e.name) != os.getpid() and _session_of(int(e.name)) == rec.pid]


def port_in_use(port: int) -> bool:
    """Whether a listener already holds ``port`` (checked the way Ray's servers bind: SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return True
    return False


def plan_head(settings: Settings) -> HeadRecord:
    """A new head's record: the configured ports plus free ones for Ray's other fixed defaults."""
    taken = [(name, port) for name, port in (("SIENN_RAY_PORT", settings.ray_port),
                                             ("SIENN_DASHBOARD_PORT", settings.dashboard_port),
                                             ("SIENN_HTTP_PORT", settings.http_port)) if port_in_use(port)]
    if taken:
        names = ", ".join(f"{port} ({name})" for name, port in taken)
        raise SystemExit(f"Port(s) {names} already in use on this machine: set other values to run another stack.")
    client_port, agent_port, stats_port, metrics_port = free_ports(4)
    return HeadRecord(ray_port=settings.ray_port, dashboard_port=settings.dashboard_port,
                      http_host=settings.http_host, http_port=settings.http_port,
                      client_server_port=client_port, dashboard_agent_port=agent_port,
                      haproxy_stats_port=stats_port, haproxy_metrics_port=metrics_port)


def head_env(rec: HeadRecord) -> dict[str, str]:
    """The head's environment: ours, with this stack's own HAProxy ports (never a parent stack's)."""
    return os.environ | {"RAY_SERVE_HAPROXY_STATS_PORT": str(rec.haproxy_stats_port),
                         "RAY_SERVE_HAPROXY_METRICS_PORT": str(rec.haproxy_metrics_port)}


def head_command(rec: HeadRecord, ray_bin: str) -> list[str]:
    """``ray start`` for a head that shares no port with another stack on this machine."""
    return [ray_bin, "start", "--head", "--block", f"--port={rec.ray_port}", f"--num-cpus={HEAD_CPUS}",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={rec.dashboard_port}",
            f"--ray-client-server-port={rec.client_server_port}",
            f"--dashboard-agent-listen-port={rec.dashboard_agent_port}",
            # 0 = each worker binds a port the kernel picks, instead of the shared 10002-19999 range.
            "--min-worker-port=0", "--max-worker-port=0",
            # Ray already binds these on kernel-picked ports by default; spelled out for the reader.
            "--node-manager-port=0", "--object-manager-port=0",
            "--disable-usage-stats"]


def _ray_bin() -> str:
    return str(Path(sys.executable).parent / "ray")


def _log_tail(log_path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_head(settings: Settings, is_ready) -> HeadRecord:
    """Start a head for ``settings`` and wait until ``is_ready(record)``; returns its record."""
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    rec = plan_head(settings)
    log_path = run_dir / "ray-head.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(head_command(rec, _ray_bin()), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=head_env(rec))
    rec = HeadRecord(**(asdict(rec) | {"pid": proc.pid}))
    _state_file(run_dir).write_text(json.dumps(asdict(rec)))
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if proc.poll() is not None:
            stop_head(rec)
            forget_record(run_dir)
            raise SystemExit(f"ray start failed; see {log_path}:\n{_log_tail(log_path)}")
        if is_ready(rec):
            return rec
        time.sleep(1)
    raise SystemExit(f"Ray head did not come up within {START_TIMEOUT_S} s; see {log_path}")


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _wait_gone(rec: HeadRecord, timeout_s: float) -> list[int]:
    deadline = time.time() + timeout_s
    while (left := stack_processes(rec)) and time.time() < deadline:
        time.sleep(0.5)
    return left


def stop_head(rec: HeadRecord, grace_s: float = 15) -> None:
    """SIGTERM every process of the head's session at once, SIGKILL what is left after ``grace_s``."""
    # Workers have process groups of their own and would otherwise linger ~20 s after their raylet.
    # The GCS takes ~30 s to stop on SIGTERM and holds no state we keep; like `ray stop`'s
    # 16 s grace period, what is still there after ``grace_s`` is killed.
    _signal_all(stack_processes(rec), signal.SIGTERM)
    left = _wait_gone(rec, grace_s)
    _signal_all(left, signal.SIGKILL)
    _wait_gone(rec, 10)
