"""The control plane on the session's real Ray cluster and Serve app: queue order, pause/resume, leases."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime

import httpx
import pytest
from helpers import demo_config, wait_for_job

pytestmark = pytest.mark.slow


def _start(api_url, dataset_id, **body):
    resp = httpx.post(f"{api_url}/api/start-finetuning", json={"dataset_id": dataset_id, **body}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _status(api_url, job_id):
    return httpx.get(f"{api_url}/api/training-status/{job_id}", timeout=30).json()


def _events(api_url, job_id):
    return httpx.get(f"{api_url}/api/jobs/{job_id}/events", timeout=30).json()["events"]


def test_queued_jobs_run_one_at_a_time_in_priority_then_arrival_order(api_url, demo_dataset_id, ray_session):
    # 2 CPUs each: with 3 of the session's 4 CPUs free (inference holds one) only one runs at a time
    config = demo_config() | {"num_epochs": 1, "cpus_per_worker": 2}
    _wait_for_free_cpus(ray_session, ray_session.cluster_resources()["CPU"] - 1)  # what earlier tests held
    first = _start(api_url, demo_dataset_id, config=config)
    second = _start(api_url, demo_dataset_id, config=config)
    urgent = _start(api_url, demo_dataset_id, config=config, priority=5)
    assert first["queue_position"] is None and first["phase"] == "launching"
    assert _status(api_url, urgent["job_id"])["queue_position"] == 1
    assert _status(api_url, second["job_id"])["queue_position"] == 2
    done = [wait_for_job(api_url, job["job_id"], timeout=900) for job in (first, urgent, second)]
    assert [d["status"] for d in done] == ["completed"] * 3, done
    spans = [(datetime.fromisoformat(d["started_at"]), datetime.fromisoformat(d["completed_at"])) for d in done]
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0], spans  # in order, never two at once


def _wait_for_free_cpus(ray, cpus: float, timeout_s: float = 180) -> None:
    """Until ``cpus`` CPUs are free: an earlier test's deployment or job may still be letting go of its own."""
    deadline = time.time() + timeout_s
    while ray.available_resources().get("CPU", 0) < cpus and time.time() < deadline:
        time.sleep(1)
    assert ray.available_resources().get("CPU", 0) >= cpus, ray.available_resources()


def test_pause_frees_the_resources_and_resume_continues_after_the_pause_step(api_url, demo_dataset_id, ray_session):
    import ray

    config = demo_config() | {"num_epochs": 40, "checkpoint_every_steps": 5}
    job_id = _start(api_url, demo_dataset_id, config=config)["job_id"]
    wait_for_job(api_url, job_id, timeout=600, until=lambda s: s["step"] >= 6)
    paused = httpx.post(f"{api_url}/api/jobs/{job_id}/pause", timeout=120).json()
    assert paused["status"] == "paused" and paused["phase"] == "paused", paused
    pause_step = paused["step"]
    assert pause_step >= 6 and f"step {pause_step}" in paused["message"]
    deadline = time.time() + 60
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"] - 1 and time.time() < deadline:
        time.sleep(1)  # the inference replica holds 1 CPU; the paused job must hold none
    assert ray.available_resources().get("CPU", 0) >= ray.cluster_resources()["CPU"] - 1
    time.sleep(3)
    assert _status(api_url, job_id)["step"] == pause_step  # nothing trains while paused
    resumed = httpx.post(f"{api_url}/api/jobs/{job_id}/resume", timeout=60).json()
    assert resumed["status"] == "pending" and resumed["phase"] in ("queued", "launching")
    final = wait_for_job(api_url, job_id, timeout=900)
    events = _events(api_url, job_id)
    assert final["status"] == "completed" and final["step"] == final["total_steps"], (final["message"], events[-6:])
    restarts = [e["data"]["step"] for e in events if e["type"] == "resumed"]
    assert restarts == [pause_step], restarts  # the resumed run starts from the pause checkpoint, not step 0
    types = [e["type"] for e in events]
    assert types.index("paused") < types.index("requeued") < types.index("resumed")
    cancel_paused = _start(api_url, demo_dataset_id, config=config)["job_id"]
    assert httpx.post(f"{api_url}/api/jobs/{cancel_paused}/pause", timeout=120).json()["status"] == "paused"
    assert httpx.post(f"{api_url}/api/jobs/{cancel_paused}/cancel", timeout=60).json()["status"] == "cancelled"


def test_a_stopped_runner_loses_its_lease_and_the_job_resumes_elsewhere(api_url, demo_dataset_id, ray_dashboard_url):
    from ray.util.state import list_actors

    # 1,200 steps: still training when the runner is stopped, even on an idle machine (~25 steps/s; with
    # 240 steps the run had ended first and the test waited out a whole launch grace)
    config = demo_config() | {"num_epochs": 150, "checkpoint_every_steps": 40}
    job_id = _start(api_url, demo_dataset_id, config=config)["job_id"]
    status = wait_for_job(api_url, job_id, timeout=600, until=lambda s: s["step"] >= 41 and s["last_checkpoint"])
    holder, token = status["lease"]["holder"], status["lease"]["token"]
    alive = [("name", "=", holder), ("state", "=", "ALIVE")]
    (runner,) = list_actors(address=ray_dashboard_url, filters=alive)
    os.kill(runner.pid, signal.SIGSTOP)  # hung: alive to Ray, silent to the registry
    try:
        relaunched = wait_for_job(api_url, job_id, timeout=300,
                                  until=lambda s: (s["lease"] or {}).get("token", 0) > token)
    finally:
        try:
            os.kill(runner.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert relaunched["attempts"] == 2 and relaunched["lease"]["token"] == token + 1
    final = wait_for_job(api_url, job_id, timeout=900)
    assert final["status"] == "completed" and final["step"] == final["total_steps"], final
    events = _events(api_url, job_id)
    assert [e["data"]["token"] for e in events if e["type"] == "launched"] == [token, token + 1]
    assert any(e["type"] == "lease_expired" and e["data"]["token"] == token for e in events)
    assert [e["data"]["step"] for e in events if e["type"] == "resumed"][0] > 0  # from its checkpoint
    assert not list_actors(address=ray_dashboard_url, filters=alive)
