"""The OpenAI face's ids and model names, and the records they name. Plain functions, no I/O.

Every id is our own id's hex with OpenAI's prefix, so the mapping is stable, needs
no table, and is exactly as tenant-safe as our ids: a dataset id already hashes the
tenant with the content, and every lookup goes through the principal's scope, so
another tenant's id reads as a missing one.

    dataset ds_<hex>          <-> file file-<hex>
    job job_<hex>             <-> fine-tuning job ftjob-<hex>; its results file file-results-<hex>
    event seq N               <-> ftevent-N
    checkpoint (job, step S)  <-> ftckpt_<hex>_S
    completed job             <-> model ft:<base>:<tenant>:<suffix>:<hex>
    its checkpoint at step S  <-> model ft:<base>:<tenant>:<suffix>:<hex>:ckpt-step-S
"""

from __future__ import annotations

import re

from ..schemas.jobs import JobRecord

_HEX = "[0-9a-f]{8,64}"
_FILE = re.compile(rf"file-({_HEX})")
_RESULTS = re.compile(rf"file-results-({_HEX})")
_JOB = re.compile(rf"ftjob-({_HEX})")
_EVENT = re.compile(r"ftevent-([0-9]{1,18})")
_CHECKPOINT = re.compile(rf"ftckpt_({_HEX})_([0-9]{{1,12}})")
_MODEL = re.compile(rf"ft:.+:({_HEX})(?::ckpt-step-([0-9]{{1,12}}))?")


def _hex(our_id: str) -> str:
    return our_id.split("_", 1)[1]


def file_id(dataset_id: str) -> str:
    return "file-" + _hex(dataset_id)


def dataset_id_of(file_id: str) -> str | None:
    """The dataset a ``file-...`` id names, or None for anything else."""
    match = _FILE.fullmatch(file_id)
    return "ds_" + match.group(1) if match else None


def results_file_id(job_id: str) -> str:
    return "file-results-" + _hex(job_id)


def job_of_results_file(file_id: str) -> str | None:
    match = _RESULTS.fullmatch(file_id)
    return "job_" + match.group(1) if match else None


def fine_tuning_job_id(job_id: str) -> str:
    return "ftjob-" + _hex(job_id)


def job_id_of(fine_tuning_job_id: str) -> str | None:
    match = _JOB.fullmatch(fine_tuning_job_id)
    return "job_" + match.group(1) if match else None


def event_id(seq: int) -> str:
    return f"ftevent-{seq}"


def seq_of_event(event_id: str) -> int | None:
    match = _EVENT.fullmatch(event_id)
    return int(match.group(1)) if match else None


def checkpoint_id(job_id: str, step: int) -> str:
    return f"ftckpt_{_hex(job_id)}_{step}"


def step_of_checkpoint(checkpoint_id: str, job_id: str) -> int | None:
    """The step a checkpoint id of this job names (None: malformed, or another job's)."""
    match = _CHECKPOINT.fullmatch(checkpoint_id)
    return int(match.group(2)) if match and match.group(1) == _hex(job_id) else None


def fine_tuned_model(job: JobRecord) -> str:
    """``ft:<base>:<owner>:<suffix>:<id>`` as OpenAI names it (an empty suffix when none was given)."""
    suffix = job.openai.suffix if job.openai and job.openai.suffix else ""
    return f"ft:{job.model_name}:{job.tenant}:{suffix}:{_hex(job.job_id)}"


def checkpoint_model(job: JobRecord, step: int) -> str:
    return f"{fine_tuned_model(job)}:ckpt-step-{step}"


def parse_model(name: str) -> tuple[str, int | None] | None:
    """(job id, checkpoint step or None) of an ``ft:`` model name, or None. The caller compares the whole
    name with the job's own, so a right id under a wrong base, owner or suffix names nothing."""
    match = _MODEL.fullmatch(name)
    if match is None:
        return None
    return "job_" + match.group(1), (int(match.group(2)) if match.group(2) is not None else None)
