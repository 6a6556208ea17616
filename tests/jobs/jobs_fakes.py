"""A clock, a cluster and records for driving RegistryCore without Ray."""

from __future__ import annotations

from datetime import timedelta

from sienn_ray.jobs.policy import ControlPolicy
from sienn_ray.jobs.queue import Capacity, NodeShape
from sienn_ray.schemas.common import new_id, utcnow
from sienn_ray.schemas.datasets import DatasetRecord, DatasetValidation
from sienn_ray.schemas.jobs import JobRecord, RunOutcome, TrainingConfig
from sienn_ray.store import ReadStore

POLICY = ControlPolicy(lease_ttl_s=10, launch_grace_s=20, stop_grace_s=15, max_launches=3)


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeCluster:
    """One node of ``cpus`` CPUs; records what the registry launches and stops."""

    def __init__(self, cpus: float = 4, gpus: float = 0):
        self.nodes = [NodeShape({"CPU": cpus, "GPU": gpus}, 1)]
        self.free_now = {"CPU": cpus, "GPU": gpus}
        self.launched: list[tuple[str, int, str]] = []
        self.stopped: list[str] = []

    def capacity(self) -> Capacity:
        return Capacity(self.nodes)

    def free(self) -> dict:
        return dict(self.free_now)

    def launch_runner(self, job_id: str, token: int, holder: str) -> None:
        self.launched.append((job_id, token, holder))

    def stop_runner(self, holder: str) -> None:
        self.stopped.append(holder)

    def tokens(self, job_id: str) -> list[int]:
        return [token for job, token, _ in self.launched if job == job_id]


def dataset(i: int = 0, tenant: str = "default") -> DatasetRecord:
    return DatasetRecord(
        dataset_id=f"ds_{i:016x}", tenant=tenant, filename="d.jsonl", format="jsonl", total_samples=3, size_bytes=10,
        preview=[], validation=DatasetValidation(valid=True, columns=["instruction", "output"], null_counts={}),
        uploaded_at=utcnow(), sha256="0" * 64,
    )


def job(dataset_id: str = "ds_0000000000000000", tenant: str = "default", priority: int = 0,
        **config) -> JobRecord:
    now = utcnow()
    cfg = TrainingConfig(**config)
    return JobRecord(job_id=new_id("job"), tenant=tenant, priority=priority, model_name="m", model_path="/m",
                     dataset_id=dataset_id, config=cfg, total_epochs=cfg.num_epochs, total_steps=20,
                     created_at=now, updated_at=now)


def finished(step: int, epoch: int, **kwargs) -> RunOutcome:
    return RunOutcome(result="finished", step=step, epoch=epoch, adapter_path="/adapter", **kwargs)


def start_training(core, cluster, rec):
    """Submit ``rec``, let its runner heartbeat and rank 0 report once: it is training."""
    rec = core.submit_job(rec)
    token = cluster.tokens(rec.job_id)[-1]
    assert core.heartbeat(rec.job_id, token)["ok"]
    core.report_progress(rec.job_id, {"step": 1, "total_steps": 20}, token)
    return rec.job_id, token


def types(url, job_id):
    """The types of a job's events, in order, read as the API reads them."""
    return [e.type for e in ReadStore(url).list_events(job_id)]
