"""The only module that knows the storage layout: ids in, paths out.

Ids are checked against a strict pattern before they touch the filesystem, so a
request can never name a path.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import BadRequest
from .settings import get_settings

_ID_RE = re.compile(r"^[a-z]{2,4}_[0-9a-f]{8,64}$")
# A checkpoint's subfolder holding the adapter in PEFT format.
CHECKPOINT_ADAPTER_DIR = "adapter"


def check_id(value: str, kind: str = "id") -> str:
    """Reject anything that is not one of our generated ids."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise BadRequest(f"Malformed {kind}: {value!r}")
    return value


def home() -> Path:
    return get_settings().home


def datasets_dir() -> Path:
    return home() / "datasets"


def dataset_dir(dataset_id: str) -> Path:
    return datasets_dir() / check_id(dataset_id, "dataset_id")


def dataset_data(dataset_id: str) -> Path:
    """Normalized JSONL the trainer reads."""
    return dataset_dir(dataset_id) / "data.jsonl"


def models_dir() -> Path:
    """Where the embedded base models are built."""
    return home() / "models"


def jobs_dir() -> Path:
    return home() / "jobs"


def job_dir(job_id: str) -> Path:
    return jobs_dir() / check_id(job_id, "job_id")


def job_train_storage(job_id: str) -> Path:
    """Ray Train ``storage_path`` for the job (checkpoints, run state)."""
    return job_dir(job_id) / "ray"


def checkpoint_name(step: int) -> str:
    """The folder name of a run's checkpoint at optimizer step ``step``."""
    return f"checkpoint_{int(step):08d}"


def job_checkpoint(job_id: str, step: int) -> Path:
    """A checkpoint of the job's run, where Ray Train keeps it (``<storage_path>/<run name>/<name>``)."""
    return job_train_storage(job_id) / check_id(job_id, "job_id") / checkpoint_name(step)


def job_checkpoint_adapter(job_id: str, step: int) -> Path:
    """The PEFT adapter (+ template.json) inside that checkpoint: servable like the final adapter."""
    return job_checkpoint(job_id, step) / CHECKPOINT_ADAPTER_DIR


def job_adapter(job_id: str) -> Path:
    """Final PEFT adapter + tokenizer + template.json."""
    return job_dir(job_id) / "adapter"


def job_evaluation(job_id: str) -> Path:
    """The job's evaluation report (base vs tuned), written once after training."""
    return job_dir(job_id) / "evaluation.json"


def exports_dir() -> Path:
    return home() / "exports"


def export_dir(job_id: str, fmt: str, quantization: str | None) -> Path:
    name = f"{fmt}-{quantization}" if quantization else fmt
    if not re.match(r"^[a-z0-9_-]+$", name):
        raise BadRequest(f"Malformed export name: {name!r}")
    return exports_dir() / check_id(job_id, "job_id") / name


def tmp_dir() -> Path:
    path = home() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path
