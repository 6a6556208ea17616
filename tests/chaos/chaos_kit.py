"""What the chaos tests share: a dataset and jobs through the real registry, the trainers' own journal,
and the checks that a finished job's record, events and loss history are whole."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from helpers import demo_dataset  # noqa: F401 (the chaos tests take it from here)

from sienn_ray.schemas.jobs import StartFinetuningRequest
from sienn_ray.services.submit import build_job_record

# Events the trainer sends (the rest are the registry's own).
TRAINER_EVENTS = ("resumed", "truncation", "epoch_end", "evaluation", "early_stopping", "checkpoint")
JOURNAL_MARK = "registry report "


def submit(registry, dataset, config: dict) -> str:
    request = StartFinetuningRequest(dataset_id=dataset.dataset_id, model_name="sienn-tiny-gpt2", config=config)
    return registry.submit_job(build_job_record(request, dataset, [], "default")).result().job_id


def wait_for(predicate, timeout_s: float, what: str, every_s: float = 0.3):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def journal(log_dirs: list[Path], job_id: str) -> dict[str, Counter]:
    """What the job's rank 0 logged as sent to (or dropped by) the registry, from the workers' log files:
    ``(kind, step, epoch)`` counted, for each verdict."""
    out = {"sent": Counter(), "dropped": Counter()}
    for folder in log_dirs:
        for path in folder.glob("worker-*"):
            if path.suffix not in (".err", ".out"):
                continue
            for line in path.read_text(errors="replace").splitlines():
                at = line.find(JOURNAL_MARK)
                if at < 0 or job_id not in line:
                    continue
                verdict, _, payload = line[at + len(JOURNAL_MARK):].partition(": ")
                entry = json.loads(payload)
                out[verdict][(entry["kind"], entry["step"], entry["epoch"])] += 1
    return out


def sent_events(said: Counter) -> Counter:
    return Counter({key: n for key, n in said.items() if key[0] != "loss_point"})


def sent_loss_steps(said: Counter) -> set[int]:
    """Steps the trainer sent a loss point for (the store keeps one point per step: the latest)."""
    return {step for kind, step, _ in said if kind == "loss_point"}


def stored(reader, job_id: str) -> tuple[Counter, Counter, list[int]]:
    """The job's stored trainer events (counted), registry events (counted) and loss history steps."""
    events = reader.list_events(job_id)
    trainer = Counter((e.type, e.data.get("step"), e.data.get("epoch")) for e in events if e.type in TRAINER_EVENTS)
    registry = Counter(e.type for e in events if e.type not in TRAINER_EVENTS)
    return trainer, registry, [p.step for p in reader.loss_history(job_id)]


def check_complete_record(job) -> None:
    """A completed job that ran to its last step and says so everywhere."""
    assert job.status.value == "completed", (job.status, job.message)
    assert job.step == job.total_steps and job.progress == 100.0 and job.current_epoch == job.total_epochs, job
    assert job.lease is None and job.adapter_path and (Path(job.adapter_path) / "adapter_config.json").is_file()
    assert job.metrics.train_loss is not None and job.completed_at is not None
