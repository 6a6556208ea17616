"""The local head's ports, its record, and `down` stopping exactly its own session (no Ray started here)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from sienn_ray.ops import head
from sienn_ray.ops.serve_app import render_serve_config
from sienn_ray.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Ports Ray takes at a fixed default unless told otherwise: two stacks would collide on them.
RAY_FIXED_DEFAULTS = {"6379", "8265", "10001", "52365", "10002", "19999"}


def _settings(monkeypatch, tmp_path: Path, **ports: int) -> Settings:
    monkeypatch.setenv("SIENN_HOME", str(tmp_path / "home"))
    for name, port in ports.items():
        monkeypatch.setenv(name, str(port))
    return Settings()


def test_head_command_uses_the_settings_ports_and_free_ones_for_every_fixed_default(monkeypatch, tmp_path):
    ray_port, dashboard_port, http_port = head.free_ports(3)
    rec = head.plan_head(_settings(monkeypatch, tmp_path, SIENN_RAY_PORT=ray_port,
                                   SIENN_DASHBOARD_PORT=dashboard_port, SIENN_HTTP_PORT=http_port))
    flags = dict(arg.split("=", 1) for arg in head.head_command(rec, "ray") if arg.startswith("--") and "=" in arg)
    assert flags["--port"] == str(ray_port) and flags["--dashboard-port"] == str(dashboard_port)
    assert flags["--dashboard-host"] == "127.0.0.1"
    assert flags["--min-worker-port"] == flags["--max-worker-port"] == "0"
    aux = {flags["--ray-client-server-port"], flags["--dashboard-agent-listen-port"]}
    assert len(aux) == 2 and not aux & {str(ray_port), str(dashboard_port), str(http_port)}
    assert not set(flags.values()) & RAY_FIXED_DEFAULTS
    assert rec.api_url == f"http://127.0.0.1:{http_port}" and rec.ray_address == f"127.0.0.1:{ray_port}"


def test_a_taken_port_is_refused_naming_its_setting(monkeypatch, tmp_path):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit, match=f"{port} \\(SIENN_DASHBOARD_PORT\\)"):
            head.plan_head(_settings(monkeypatch, tmp_path, SIENN_DASHBOARD_PORT=port))


def test_wildcard_http_host_gives_a_loopback_url():
    rec = head.HeadRecord(ray_port=1, dashboard_port=2, http_host="0.0.0.0", http_port=3)
    assert rec.api_url == "http://127.0.0.1:3"


def _fake_head(rec_ports: tuple[int, int]) -> subprocess.Popen:
    """A session leader whose command line reads like our head, with a child in a process group of its own
    (as Ray gives its workers) that must go down with it."""
    child = ("import os, subprocess, sys, time; "
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], preexec_fn=os.setpgrp); "
             "time.sleep(300)")
    return subprocess.Popen([sys.executable, "-c", child, "--head", f"--port={rec_ports[0]}",
                             f"--dashboard-port={rec_ports[1]}"], start_new_session=True)


def _wait_for(predicate, timeout_s: float = 30) -> None:
    deadline = time.time() + timeout_s
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_stop_head_stops_its_whole_session_and_nothing_else(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    fake = _fake_head((1111, 2222))
    try:
        rec = head.HeadRecord(ray_port=1111, dashboard_port=2222, http_host="127.0.0.1", http_port=3333, pid=fake.pid)
        (tmp_path / "head.json").write_text(json.dumps(asdict(rec)))
        _wait_for(lambda: head.running_record(tmp_path) == rec)  # /proc shows the command line once exec is done
        _wait_for(lambda: len(head.stack_processes(rec)) == 2)
        members = head.stack_processes(rec)
        head.stop_head(rec, grace_s=10)
        fake.wait(timeout=10)
        assert head.stack_processes(rec) == []
        assert all(not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
                   for pid in members)
        assert bystander.poll() is None
    finally:
        head.stop_head(head.HeadRecord(ray_port=1111, dashboard_port=2222, http_host="", http_port=0, pid=fake.pid),
                       grace_s=5)
        for proc in (bystander, fake):
            proc.kill()
            proc.wait()


def test_a_record_whose_pid_is_now_someone_elses_is_not_a_running_head(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        rec = head.HeadRecord(ray_port=1111, dashboard_port=2222, http_host="127.0.0.1", http_port=3333, pid=other.pid)
        (tmp_path / "head.json").write_text(json.dumps(asdict(rec)))
        _wait_for(lambda: b"sleep" in Path(f"/proc/{other.pid}/cmdline").read_bytes())
        assert head.running_record(tmp_path) is None
        assert head.stack_processes(rec) == []
        head.stop_head(rec, grace_s=1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_serve_config_is_rendered_with_the_stacks_http_host_and_port(tmp_path):
    from ray.serve.schema import ServeDeploySchema

    rec = head.HeadRecord(ray_port=1, dashboard_port=2, http_host="0.0.0.0", http_port=18123)
    rendered = yaml.safe_load(render_serve_config(rec, tmp_path).read_text())
    source = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    assert rendered["http_options"] == {"host": "0.0.0.0", "port": 18123}
    assert {k: v for k, v in rendered.items() if k != "http_options"} == {
        k: v for k, v in source.items() if k != "http_options"}
    ServeDeploySchema.model_validate(rendered)


@pytest.fixture
def restored_environ():
    """main() applies the Ray env to this process: put the session's back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_train_without_an_address_goes_to_this_homes_head_not_the_last_started(monkeypatch, tmp_path,
                                                                               restored_environ):
    import sienn_ray.cli.train as cli_train
    from sienn_ray.__main__ import main
    from sienn_ray.settings import reset_settings

    monkeypatch.setenv("SIENN_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    reset_settings()
    seen = []
    monkeypatch.setattr(cli_train, "run_train", lambda args: seen.append(args.address) or 0)
    fake = _fake_head((1112, 2223))
    try:
        rec = head.HeadRecord(ray_port=1112, dashboard_port=2223, http_host="127.0.0.1", http_port=3334, pid=fake.pid)
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / "head.json").write_text(json.dumps(asdict(rec)))
        _wait_for(lambda: head.running_record(tmp_path / "run") == rec)
        assert main(["train", "--dataset", "x.jsonl"]) == 0
        monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")  # e.g. set by Ray Jobs for a submitted job
        assert main(["train", "--dataset", "x.jsonl"]) == 0
        assert seen == ["127.0.0.1:1112", None]
    finally:
        head.stop_head(head.HeadRecord(ray_port=1112, dashboard_port=2223, http_host="", http_port=0, pid=fake.pid),
                       grace_s=5)
        fake.wait()
        reset_settings()
