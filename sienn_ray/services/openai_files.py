"""OpenAI's Files API over our datasets: a ``fine-tune`` file IS a dataset (same ingest, validation and
storage, listed in ``/api/datasets`` too); a job's ``fine-tune-results`` file is its metrics as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import paths
from ..errors import BadRequest, DatasetInvalid, DatasetNotFound, JobNotFound
from ..schemas.jobs import JobRecord, JobStatus
from ..schemas.openai_files import FileDeleted, FileList, FileObject
from . import datasets, ingest
from . import openai_ids as ids
from .checkpoints import job_checkpoints
from .context import Services
from .lookup import find_dataset, find_job
from .openai_views import file_object, results_file_object
from .principal import Principal

FINE_TUNE = "fine-tune"
RESULTS = "fine-tune-results"
RESULTS_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")


@dataclass(frozen=True)
class FileContent:
    """What ``GET /v1/files/{id}/content`` sends: a stored file, or text made now."""

    filename: str
    media_type: str
    path: Path | None = None
    text: str | None = None


async def upload(services: Services, principal: Principal, source: Path, filename: str,
                 purpose: str | None) -> FileObject:
    """Ingest an uploaded file as a dataset of the principal's tenant; every problem with its line."""
    if purpose != FINE_TUNE:
        raise BadRequest(f"purpose {purpose!r} is not supported: only {FINE_TUNE!r} files are accepted here"
                         if purpose else "Missing form field 'purpose' (use 'fine-tune')", param="purpose")
    try:
        rec = await ingest.ingest(services, principal, source, filename)
    except DatasetInvalid as err:
        raise DatasetInvalid(f"Invalid file {filename!r}: " + "; ".join(err.errors or [err.detail]),
                             errors=err.errors, param="file") from None
    return file_object(rec)


def list_files(services: Services, principal: Principal, after: str | None, limit: int,
               order: Literal["asc", "desc"], purpose: str | None) -> FileList:
    """Files newest first (or oldest with ``order=asc``), ``limit`` per page after the file ``after``."""
    newest_first = order == "desc"
    if purpose == RESULTS:
        cursor = _results_job_record(services, principal, after, "after") if after else None
        jobs = services.reader.jobs_after(principal.scope, cursor, limit + 1, JobStatus.COMPLETED.value, newest_first)
        items = [results_file_object(job, len(results_csv(services, job).encode())) for job in jobs]
    elif purpose in (None, FINE_TUNE):
        cursor = _dataset(services, principal, after, "after") if after else None
        items = [file_object(rec) for rec in
                 services.reader.datasets_after(principal.scope, cursor, limit + 1, newest_first)]
    else:
        items = []
    page = items[:limit]
    return FileList(data=page, first_id=page[0].id if page else None, last_id=page[-1].id if page else None,
                    has_more=len(items) > limit)


def get_file(services: Services, principal: Principal, file_id: str) -> FileObject:
    if ids.job_of_results_file(file_id) is not None:
        job = _results_job_record(services, principal, file_id)
        return results_file_object(job, len(results_csv(services, job).encode()))
    return file_object(_dataset(services, principal, file_id))


def file_content(services: Services, principal: Principal, file_id: str) -> FileContent:
    """A dataset's content as stored (the normalized JSONL the trainer reads), or a job's metrics CSV."""
    if ids.job_of_results_file(file_id) is not None:
        job = _results_job_record(services, principal, file_id)
        return FileContent("step_metrics.csv", "text/csv", text=results_csv(services, job))
    rec = _dataset(services, principal, file_id)
    data = paths.dataset_data(rec.dataset_id)
    if not data.is_file():  # a record whose data is gone (removed out of band): a 404, not the response's 500
        raise DatasetNotFound(f"No such File object: {file_id} (its content is no longer stored)", param="file_id")
    return FileContent(rec.filename, "application/octet-stream", path=data)


async def delete_file(services: Services, principal: Principal, file_id: str) -> FileDeleted:
    """Delete the dataset (409 while an unfinished job trains or evaluates on it)."""
    if ids.job_of_results_file(file_id) is not None:
        _results_job_record(services, principal, file_id)
        raise BadRequest(f"{file_id} is a job's results, made from the job when asked for: it cannot be deleted",
                         param="file_id")
    rec = _dataset(services, principal, file_id)
    await datasets.delete_dataset(services, principal, rec.dataset_id)
    return FileDeleted(id=file_id, deleted=True)


def results_csv(services: Services, job: JobRecord) -> str:
    """One row per logged step: OpenAI's results columns (no train accuracy: training does not measure it)."""
    by_step = {c.step: c for c in job_checkpoints(services, job)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULTS_COLUMNS)
    for point in services.reader.loss_history(job.job_id):
        accuracy = point.eval_token_accuracy
        if accuracy is None and point.step in by_step:
            accuracy = by_step[point.step].eval_token_accuracy
        writer.writerow([point.step, _cell(point.train_loss), "", _cell(point.eval_loss), _cell(accuracy)])
    return out.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def dataset_of_file(services: Services, principal: Principal, file_id: str, param: str):
    """The dataset a request's file id names (404 naming the parameter for anything else)."""
    return _dataset(services, principal, file_id, param)


def _dataset(services: Services, principal: Principal, file_id: str, param: str = "file_id"):
    dataset_id = ids.dataset_id_of(file_id)
    try:
        if dataset_id is None:
            raise DatasetNotFound(file_id)
        return find_dataset(services, principal, dataset_id)
    except DatasetNotFound:
        raise DatasetNotFound(f"No such File object: {file_id}", param=param) from None


def _results_job_record(services: Services, principal: Principal, file_id: str,
                        param: str = "file_id") -> JobRecord:
    """The completed job whose results file this is (other jobs have none yet)."""
    job_id = ids.job_of_results_file(file_id)
    try:
        job = find_job(services, principal, job_id) if job_id else None
    except JobNotFound:
        job = None
    if job is None or job.status != JobStatus.COMPLETED:
        raise DatasetNotFound(f"No such File object: {file_id}", param=param)
    return job
