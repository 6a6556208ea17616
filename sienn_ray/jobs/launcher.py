"""Starting, finding and stopping a job's detached runner actor."""

from __future__ import annotations

import ray



def runner_name(job_id: str) -> str:
    return f"sienn-runner-{job_id}"


def runner_alive(job_id: str, namespace: str) -> bool:
    try:
        ray.get_actor(runner_name(job_id), namespace=namespace)
        return True
    except ValueError:
        return False


def launch_runner(job_id: str, namespace: str, detach_call: bool = True):
    """Create the job's detached runner and start it; returns at once (the HTTP call must not wait)."""
    from .runner import JobRunner

    runner = JobRunner.options(
        name=runner_name(job_id), namespace=namespace, lifetime="detached", get_if_exists=True,
    ).remote(job_id, namespace)
    ref = runner.run.remote()
    return ref if not detach_call else runner


def stop_runner(job_id: str, namespace: str) -> bool:
    """Kill the runner; the Train controller and workers it owns die with it."""
    try:
        actor = ray.get_actor(runner_name(job_id), namespace=namespace)
    except ValueError:
        return False
    ray.kill(actor, no_restart=True)
    return True
