"""OpenAI's fine-tuning jobs API over our jobs: a fine-tuning job IS one of our jobs (submitted, queued,
trained, paused and cancelled by the same services, visible in ``/api/jobs``); this module only
translates. ``validation_file`` becomes the job's ``eval_dataset_id``."""

from __future__ import annotations

import asyncio
import secrets
from functools import lru_cache

from pydantic import ValidationError

from ..errors import BadRequest, JobNotFound, SiennError
from ..models.resolve import resolve_model
from ..schemas.jobs import JobRecord, StartFinetuningRequest, TrainingConfig
from ..schemas.openai_jobs import (
    CreateFineTuningJobRequest, FineTuningJob, FineTuningJobCheckpointList, FineTuningJobEventList,
    FineTuningJobList, OpenAIJobSpec,
)
from . import control, openai_auto, submit
from . import openai_ids as ids
from .checkpoints import job_checkpoints
from .context import Services
from .lookup import find_job
from .openai_files import dataset_of_file
from .openai_views import checkpoint_object, fine_tuning_job, job_event
from .principal import Principal

# OpenAI refuses a training file of fewer examples.
MIN_TRAINING_EXAMPLES = 10
# OpenAI keeps the checkpoints of the last three epochs.
CHECKPOINTS_KEPT = 3
# Jobs read per query while looking for metadata matches.
SCAN_BATCH = 200


async def create(services: Services, principal: Principal, req: CreateFineTuningJobRequest) -> FineTuningJob:
    """Resolve "auto", translate to a start-finetuning request and submit it like any job."""
    training = dataset_of_file(services, principal, req.training_file, "training_file")
    validation = dataset_of_file(services, principal, req.validation_file, "validation_file") \
        if req.validation_file else None
    if training.total_samples < MIN_TRAINING_EXAMPLES:
        raise BadRequest(f"Training file {req.training_file} has {training.total_samples} example(s), but must "
                         f"have at least {MIN_TRAINING_EXAMPLES}", param="training_file")
    try:
        model = await asyncio.to_thread(resolve_model, req.model)
    except SiennError as err:
        raise _naming(err, "model") from None
    asked = req.asked_hyperparameters
    resolved = openai_auto.resolve(asked, training.total_samples, model.num_parameters)
    try:
        config = TrainingConfig(num_epochs=resolved.n_epochs, batch_size=resolved.batch_size,
                                learning_rate=resolved.learning_rate, validation_split=0.0,
                                seed=req.seed if req.seed is not None else secrets.randbelow(2**31),
                                checkpoints_to_keep=CHECKPOINTS_KEPT)
    except ValidationError as err:
        raise BadRequest(f"hyperparameters give no valid training configuration: {err.errors()[0]['msg']} "
                         f"(learning rate {resolved.learning_rate:g})",
                         param="hyperparameters.learning_rate_multiplier") from None
    start = StartFinetuningRequest(dataset_id=training.dataset_id, model_name=req.model, config=config,
                                   eval_dataset_id=validation.dataset_id if validation else None)
    spec = OpenAIJobSpec(suffix=req.suffix, metadata=req.metadata, asked=asked, resolved=resolved,
                         validation_file=req.validation_file)
    rec = await submit.submit(services, principal, start, source="openai", openai=spec)
    return view(rec)


def get(services: Services, principal: Principal, fine_tuning_job_id: str) -> FineTuningJob:
    return view(job_of(services, principal, fine_tuning_job_id))


def list_jobs(services: Services, principal: Principal, after: str | None, limit: int,
              metadata: dict[str, str] | None = None, without_metadata: bool = False) -> FineTuningJobList:
    """The principal's jobs, newest first, ``limit`` after the job ``after``; with ``metadata``, only jobs
    whose metadata holds every pair given (``without_metadata``: only jobs with none)."""
    cursor = job_of(services, principal, after, "after") if after else None
    matches: list[JobRecord] = []
    while len(matches) <= limit:
        batch = services.reader.jobs_after(principal.scope, cursor, SCAN_BATCH)
        matches += [job for job in batch if _matches(job, metadata, without_metadata)]
        if len(batch) < SCAN_BATCH:
            break
        cursor = batch[-1]
    return FineTuningJobList(data=[view(job) for job in matches[:limit]], has_more=len(matches) > limit)


async def cancel(services: Services, principal: Principal, fine_tuning_job_id: str) -> FineTuningJob:
    job = job_of(services, principal, fine_tuning_job_id)
    return view(await control.cancel(services, principal, job.job_id))


async def pause(services: Services, principal: Principal, fine_tuning_job_id: str) -> FineTuningJob:
    job = job_of(services, principal, fine_tuning_job_id)
    return view(await control.pause(services, principal, job.job_id))


async def resume(services: Services, principal: Principal, fine_tuning_job_id: str) -> FineTuningJob:
    job = job_of(services, principal, fine_tuning_job_id)
    return view(await control.resume(services, principal, job.job_id))


def events(services: Services, principal: Principal, fine_tuning_job_id: str, after: str | None,
           limit: int) -> FineTuningJobEventList:
    """The job's events, newest first, ``limit`` older than the event ``after``."""
    job = job_of(services, principal, fine_tuning_job_id)
    before = None
    if after is not None:
        before = ids.seq_of_event(after)
        if before is None:
            raise BadRequest(f"after: {after!r} is not an event id (ftevent-...)", param="after")
    found = services.reader.events_before(job.job_id, before, limit + 1)
    return FineTuningJobEventList(data=[job_event(e) for e in found[:limit]], has_more=len(found) > limit)


def checkpoints(services: Services, principal: Principal, fine_tuning_job_id: str, after: str | None,
                limit: int) -> FineTuningJobCheckpointList:
    """The job's checkpoints still on disk, newest step first, ``limit`` after the checkpoint ``after``."""
    job = job_of(services, principal, fine_tuning_job_id)
    found = job_checkpoints(services, job)
    if after is not None:
        step = ids.step_of_checkpoint(after, job.job_id)
        if step is None:
            raise JobNotFound(f"No such checkpoint of {fine_tuning_job_id}: {after}", param="after")
        found = [c for c in found if c.step < step]
    page = [checkpoint_object(job, c) for c in found[:limit]]
    return FineTuningJobCheckpointList(data=page, has_more=len(found) > limit,
                                       first_id=page[0].id if page else None, last_id=page[-1].id if page else None)


def job_of(services: Services, principal: Principal, fine_tuning_job_id: str,
           param: str = "fine_tuning_job_id") -> JobRecord:
    """The job an ``ftjob-...`` id names, in the principal's tenant (one 404 for anything else)."""
    job_id = ids.job_id_of(fine_tuning_job_id)
    if job_id is not None:
        try:
            return find_job(services, principal, job_id)
        except JobNotFound:
            pass
    raise JobNotFound(f"No such fine-tuning job: {fine_tuning_job_id}", param=param)


def view(job: JobRecord) -> FineTuningJob:
    """The job as OpenAI's object (a job from ``/api`` gets its multiplier from its base's reference rate)."""
    return fine_tuning_job(job, None if job.openai else _reference_rate(job.model_path))


@lru_cache(maxsize=256)
def _reference_rate(model_path: str) -> float | None:
    try:  # the base's folder sits in a model root; this reads its config and weight headers, never the weights
        return openai_auto.reference_learning_rate(resolve_model(model_path).num_parameters)
    except (SiennError, OSError):
        return None


def _matches(job: JobRecord, metadata: dict[str, str] | None, without_metadata: bool) -> bool:
    have = (job.openai.metadata if job.openai else None) or {}
    if without_metadata:
        return not have
    return all(have.get(key) == value for key, value in (metadata or {}).items())


def _naming(err: SiennError, param: str) -> SiennError:
    """The same error, naming the request parameter at fault."""
    return type(err)(err.detail, errors=err.errors, **(err.extra | {"param": param}))
