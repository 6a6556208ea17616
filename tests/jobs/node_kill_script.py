"""Run by test_node_kill_resume.py in its own process: a multi-node Ray cluster on this machine.

Head with 0 CPUs + two 1-CPU worker nodes; a 1-worker job checkpoints every 2 steps; once it
has a checkpoint, the node running the train worker is removed without grace. The job must go
on from that checkpoint on the other node and complete. Prints one JSON line with the facts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_actors

from sienn_ray.jobs.registry import connect_registry
from sienn_ray.schemas.jobs import StartFinetuningRequest
from sienn_ray.services.submit import build_job_record
from sienn_ray.settings import apply_ray_env, get_settings
from sienn_ray.store import ReadStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, as pytest's rootdir conftest has it
from helpers import demo_dataset  # noqa: E402


def main(config: dict) -> dict:
    apply_ray_env()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace=get_settings().ray_namespace, log_to_driver=False)
    try:
        registry = connect_registry()
        registry.ping().result(timeout=120)
        reader = ReadStore(get_settings().db_url)
        dataset = demo_dataset(registry)
        request = StartFinetuningRequest(dataset_id=dataset.dataset_id, config=config)
        rec = registry.submit_job(build_job_record(request, dataset, [], "default")).result()
        deadline = time.time() + 600
        while time.time() < deadline:
            job = reader.get_job(rec.job_id)
            if job.last_checkpoint and job.step >= 3:
                break
            if job.status.is_terminal:
                return {"error": f"finished before the kill: {job.status} {job.message}"}
            time.sleep(0.3)
        killed_at = job.step
        alive = list_actors(address=cluster.address, filters=[("state", "=", "ALIVE")])
        workers = [a for a in alive if "RayTrainWorker" in a.class_name]
        victim_id = workers[0].node_id
        victim = next(n for n in nodes if n.node_id == victim_id)
        cluster.remove_node(victim, allow_graceful=False)
        deadline = time.time() + 600
        while time.time() < deadline:
            job = reader.get_job(rec.job_id)
            if job.status.is_terminal:
                break
            time.sleep(0.5)
        events = reader.list_events(rec.job_id)
        return {
            "status": job.status.value, "message": job.message, "killed_at_step": killed_at,
            "final_step": job.step, "total_steps": job.total_steps,
            "resumed_from": [e.data.get("step") for e in events if e.type == "resumed"],
            "events": [e.type for e in events],
        }
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(json.loads(sys.argv[1]))), flush=True)
