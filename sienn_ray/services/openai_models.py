"""Fine-tuned models by their OpenAI names: ``ft:<base>:<owner>:<suffix>:<id>`` (a succeeded job's final
adapter) and ``...:ckpt-step-<n>`` (the adapter of that checkpoint), as weights the inference
deployment can load. The name is checked whole against the job's own, in the principal's tenant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import JobNotFound, JobStateConflict, ModelNotFound
from ..models.lora_adapter import adapter_present
from ..schemas.jobs import JobStatus
from . import openai_ids as ids
from .context import Services
from .lookup import find_job
from .principal import Principal


@dataclass(frozen=True)
class ServedWeights:
    """A base plus an adapter; ``model_id`` names the adapter in the deployment (a job id, or job and step)."""

    model_id: str
    base_path: str
    adapter_path: str
    tenant: str


def is_fine_tuned_name(model: str) -> bool:
    return model.startswith("ft:")


def resolve_fine_tuned(services: Services, principal: Principal, name: str) -> ServedWeights:
    """The weights an ``ft:`` name serves; 404 for a name that is not exactly one of the tenant's models."""
    parsed = ids.parse_model(name)
    job = None
    if parsed is not None:
        try:
            job = find_job(services, principal, parsed[0])
        except JobNotFound:
            job = None
    step = parsed[1] if parsed else None
    if job is None or name != (ids.fine_tuned_model(job) if step is None else ids.checkpoint_model(job, step)):
        raise ModelNotFound(f"The model {name!r} does not exist", param="model")
    if step is not None:
        adapter = paths.job_checkpoint_adapter(job.job_id, step)
        if not adapter_present(adapter):
            raise ModelNotFound(f"The checkpoint of {name!r} is no longer stored (a job keeps its newest "
                                f"{job.config.checkpoints_to_keep})", param="model")
        return ServedWeights(f"{job.job_id}-step-{step}", job.model_path, str(adapter), job.tenant)
    if job.status != JobStatus.COMPLETED:
        raise JobStateConflict(f"The model {name!r} is served once its job has succeeded; the job is "
                               f"{job.status.value}", job_status=job.status.value, param="model")
    adapter = Path(job.adapter_path) if job.adapter_path else paths.job_adapter(job.job_id)
    return ServedWeights(job.job_id, job.model_path, str(adapter), job.tenant)
