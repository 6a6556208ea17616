"""Benchmark the job queue: what 300 queued jobs cost the head, and whether they run in order.

    python bench/job_queue.py --jobs 300 --run-seconds 240

(Not ``queue.py``: a script's folder comes first on sys.path, and that name would hide the stdlib's.)

Starts its own local Ray (2 CPUs) with a fresh storage root, the real job registry
and the real services. A placeholder actor holds both CPUs while ``--jobs`` tiny
jobs (1 step, 2 CPUs each: only one fits at a time) are submitted, so every one
of them waits in the queue; the RSS of the registry actor and the GCS is read
before and after. Then the placeholder goes away, and for ``--run-seconds`` the
jobs run as the CPUs free up; their start order is compared with the queue order
(priority first, then submission). Whatever has not run by then is cancelled.
Prints one JSON object. Timings are from a shared, loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROWS = [{"instruction": f"Say {i}", "output": f"{i}"} for i in range(4)]
CONFIG = {"num_epochs": 1, "batch_size": 4, "max_length": 128, "lora_r": 2, "lora_alpha": 4, "cpus_per_worker": 2}


def rss_mb(pids: list[int]) -> float:
    return sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


def head_pids(registry_name: str, namespace: str) -> list[int]:
    """The registry actor's process and the GCS server's."""
    import ray

    handle = ray.get_actor(registry_name, namespace=namespace)
    registry_pid = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()))
    gcs = [p.process.pid for p in ray._private.worker.global_worker.node.all_processes["gcs_server"]]
    return [registry_pid, *gcs]


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--run-seconds", type=float, default=240.0)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="sienn-bench-queue-")
    os.environ["SIENN_HOME"] = home
    os.environ["SIENN_RAY_NAMESPACE"] = "sienn-bench-queue"

    import ray

    from sienn_ray.jobs.client import REGISTRY_NAME
    from sienn_ray.schemas.jobs import StartFinetuningRequest
    from sienn_ray.services import ingest, submit
    from sienn_ray.services.connect import connect_services
    from sienn_ray.services.principal import DEFAULT_PRINCIPAL
    from sienn_ray.settings import apply_ray_env, get_settings, reset_settings

    reset_settings()
    apply_ray_env()
    namespace = get_settings().ray_namespace
    # Ray Train V2 wants the dashboard (as tests/conftest.py's session cluster has it).
    ray.init(address="local", num_cpus=2, namespace=namespace, include_dashboard=True, log_to_driver=False,
             configure_logging=False)
    try:
        @ray.remote(num_cpus=2)
        class Placeholder:
            def ready(self) -> bool:
                return True

        blocker = Placeholder.remote()
        ray.get(blocker.ready.remote())
        services, principal = connect_services(namespace), DEFAULT_PRINCIPAL
        data = Path(home) / "rows.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        dataset = asyncio.run(ingest.ingest(services, principal, data, data.name))
        pids = head_pids(REGISTRY_NAME, namespace)
        before = rss_mb(pids)
        started = time.perf_counter()
        ids = []
        for i in range(args.jobs):
            priority = 1 if i % 50 == 0 else 0  # a few jump the queue
            request = StartFinetuningRequest(dataset_id=dataset.dataset_id, config=CONFIG, priority=priority)
            ids.append(asyncio.run(submit.submit(services, principal, request)).job_id)
        submit_s = time.perf_counter() - started
        time.sleep(3)  # a few registry ticks over the full queue
        after = rss_mb(pids)
        queue_order = sorted(ids, key=lambda j: services.reader.queue_position(services.reader.get_job(j)) or 0)
        positions_ok = [services.reader.queue_position(services.reader.get_job(j)) for j in queue_order] == \
            list(range(1, args.jobs + 1))
        ray.kill(blocker)
        deadline = time.time() + args.run_seconds
        while time.time() < deadline:
            time.sleep(2)
        jobs = [services.reader.get_job(j) for j in queue_order]
        ran = sorted((j for j in jobs if j.started_at), key=lambda j: j.started_at)
        completed = sum(j.status.value == "completed" for j in jobs)
        phases = Counter(j.phase.value for j in jobs)
        head = next((j for j in jobs if not j.status.is_terminal), None)
        failed = next((j for j in jobs if j.status.value == "failed"), None)
        for job in jobs:
            if not job.status.is_terminal:
                services.registry.finish(job.job_id, "cancelled", "bench over").result()
        return {
            "queued_jobs": args.jobs, "submit_seconds": round(submit_s, 1),
            "submits_per_second": round(args.jobs / submit_s, 1),
            "head_rss_mb_before": round(before, 1), "head_rss_mb_after": round(after, 1),
            "head_rss_mb_extra": round(after - before, 1), "goal_extra_mb": 50,
            "queue_positions_1_to_n": positions_ok,
            "ran_in_window": len(ran), "completed_in_window": completed, "run_seconds": args.run_seconds,
            "ran_in_queue_order": [j.job_id for j in ran] == queue_order[:len(ran)] if ran else None,
            "never_two_at_once": all(a.completed_at and a.completed_at <= b.started_at
                                     for a, b in zip(ran, ran[1:])) if len(ran) > 1 else None,
            "phases_at_the_end": dict(phases), "first_unfinished": head.message if head else None,
            "first_failure": failed.message if failed else None,
        }
    finally:
        ray.shutdown()


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
