"""Finding a tenant's record by id: a malformed id, a missing record and another tenant's record are
the same 404, so an id never tells whether something exists."""

from __future__ import annotations

from ..errors import BadRequest, DatasetNotFound, ExportNotFound, JobNotFound
from ..paths import check_id
from ..schemas.datasets import DatasetRecord
from ..schemas.exports import ExportRecord
from ..schemas.jobs import JobRecord
from .context import Services
from .principal import Principal

_NOT_FOUND = {"job_id": (JobNotFound, "Job"), "dataset_id": (DatasetNotFound, "Dataset"),
              "export_id": (ExportNotFound, "Export")}


def known_id(value: str, kind: str) -> str:
    """An id from a request; a malformed one names nothing: the same 404 as an unknown one."""
    try:
        return check_id(value, kind)
    except BadRequest:
        error, label = _NOT_FOUND[kind]
        raise error(f"{label} {value} not found") from None


def find_dataset(services: Services, principal: Principal, dataset_id: str) -> DatasetRecord:
    rec = services.reader.get_dataset(known_id(dataset_id, "dataset_id"), principal.scope)
    if rec is None:
        raise DatasetNotFound(f"Dataset {dataset_id} not found")
    return rec


def find_job(services: Services, principal: Principal, job_id: str) -> JobRecord:
    """The job with its queue position."""
    rec = services.reader.get_job(known_id(job_id, "job_id"), principal.scope)
    if rec is None:
        raise JobNotFound(f"Job {job_id} not found")
    rec.queue_position = services.reader.queue_position(rec)
    return rec


def find_export(services: Services, principal: Principal, export_id: str) -> ExportRecord:
    rec = services.reader.get_export(known_id(export_id, "export_id"), principal.scope)
    if rec is None:
        raise ExportNotFound(f"Export {export_id} not found")
    return rec
