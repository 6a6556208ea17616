"""Starting, finding and stopping a job's detached runner actor."""

from __future__ import annotations

import asyncio
import time

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

    # On the head node: the Train controller is placed on its driver's node, and a worker
    # node may be lost mid-training; the runner and controller must survive that.
    runner = JobRunner.options(
        name=runner_name(job_id), namespace=namespace, lifetime="detached", get_if_exists=True,
        scheduling_strategy=head_node_strategy(),
    ).remote(job_id, namespace)
    ref = runner.run.remote()
    return ref if not detach_call else runner


def head_node_strategy():
    """Place on the head node (control plane: registry, runners, Train controllers).

    Hard affinity: with soft affinity Ray spills 0-CPU actors off a 0-CPU head, and a
    runner on a worker node dies with it, taking the Train controller along.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    for node in ray.nodes():
        if node.get("Alive") and node.get("Resources", {}).get("node:__internal_head__"):
            return NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
    return "DEFAULT"


def stop_runner(job_id: str, namespace: str) -> bool:
    """Kill the runner; the Train controller and workers it owns die with it."""
    try:
        actor = ray.get_actor(runner_name(job_id), namespace=namespace)
    except ValueError:
        return False
    ray.kill(actor, no_restart=True)
    return True


async def cancel_job(registry, job_id: str, namespace: str, grace_s: float = 30.0):
    """Cancel a job and return its final record.

    A running job is asked to stop (its workers agree on the step, save a final
    checkpoint and release their resources; the runner then records it as
    cancelled). A pending job, or one that does not stop within ``grace_s``, has
    its runner killed; the Train controller and workers it owns die with it.
    """
    rec = await registry.call("request_cancel", job_id)
    if rec.status.value == "running":
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            rec = await registry.call("get_job", job_id)
            if rec.status.is_terminal:
                return rec
    await asyncio.to_thread(stop_runner, job_id, namespace)
    message = "Cancelled by user" + (f"; last checkpoint kept at {rec.last_checkpoint}" if rec.last_checkpoint else "")
    return await registry.call("finish", job_id, "cancelled", message)
