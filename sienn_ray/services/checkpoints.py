"""A job's checkpoints: what rank 0 reported with each (its ``checkpoint`` events), for those still on disk.

Ray Train keeps the newest ``checkpoints_to_keep`` of a run, so older events name
folders that are gone; those are not listed. A step reported twice (a run
relaunched from an earlier checkpoint) counts once, as its latest report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import paths
from ..models.lora_adapter import adapter_present
from ..schemas.jobs import JobRecord
from .context import Services


@dataclass(frozen=True)
class Checkpoint:
    step: int
    created_at: datetime
    adapter_path: Path
    epoch: int | None = None
    train_loss: float | None = None
    eval_loss: float | None = None
    eval_token_accuracy: float | None = None


def job_checkpoints(services: Services, job: JobRecord) -> list[Checkpoint]:
    """The job's checkpoints with a servable adapter, newest step first."""
    found: dict[int, Checkpoint] = {}
    for event in services.reader.events_before(job.job_id, None, None, types=["checkpoint"]):  # newest first
        step = event.data.get("step")
        if not isinstance(step, int) or step in found:
            continue
        adapter = paths.job_checkpoint_adapter(job.job_id, step)
        if adapter_present(adapter):
            found[step] = Checkpoint(step=step, created_at=event.timestamp, adapter_path=adapter,
                                     epoch=event.data.get("epoch"), train_loss=event.data.get("train_loss"),
                                     eval_loss=event.data.get("eval_loss"),
                                     eval_token_accuracy=event.data.get("eval_token_accuracy"))
    return sorted(found.values(), key=lambda c: -c.step)
