"""Reading jobs: status, lists, events (paged), loss history, counts."""

from __future__ import annotations

from ..schemas.jobs import JobEvents, JobList, JobRecord, JobStatus, JobSummary, LossHistory
from ..store.tables import jobs as jobs_table
from .context import Services
from .lookup import find_job
from .principal import Principal


def get_job(services: Services, principal: Principal, job_id: str) -> JobRecord:
    return find_job(services, principal, job_id)


def job_json(services: Services, principal: Principal, job_id: str) -> bytes:
    """``get_job`` as the API answers it, rendered once per version of the jobs table: a status poll then
    parses and serializes nothing (about a tenth of its CPU under load, bench/api_load.py), whatever
    other tables (events, loss points, the audit trail) take commits meanwhile."""
    return services.reader.remembered(("job_json", job_id, principal.scope),
                                      lambda: get_job(services, principal, job_id).model_dump_json().encode(),
                                      (jobs_table,))  # the record and its queue position


def list_jobs(services: Services, principal: Principal, status: JobStatus | None, limit: int,
              offset: int) -> JobList:
    """The principal's jobs, newest first."""
    items, total = services.reader.list_jobs(principal.scope, status.value if status else None, limit, offset)
    jobs = [JobSummary(**j.model_dump(include=set(JobSummary.model_fields))) for j in items]
    return JobList(jobs=jobs, total=total, limit=limit, offset=offset)


def completed_jobs(services: Services, principal: Principal, limit: int) -> list[JobRecord]:
    """The principal's completed jobs (the models it can use), newest first."""
    items, _ = services.reader.list_jobs(principal.scope, JobStatus.COMPLETED.value, limit, 0)
    return items


def job_events(services: Services, principal: Principal, job_id: str, after: int = 0,
               limit: int = 1000) -> JobEvents:
    """Events with seq > ``after``, oldest first, at most ``limit`` of them."""
    job = find_job(services, principal, job_id)
    events = services.reader.list_events(job.job_id, after, limit + 1)
    return JobEvents(job_id=job.job_id, events=events[:limit], has_more=len(events) > limit)


def loss_history(services: Services, principal: Principal, job_id: str) -> LossHistory:
    job = find_job(services, principal, job_id)
    return LossHistory(job_id=job.job_id, points=services.reader.loss_history(job.job_id))


def metrics(services: Services, principal: Principal) -> dict:
    """Counts of the principal's jobs by status, datasets, fine-tuned models and exports."""
    reader, scope = services.reader, principal.scope
    counts = reader.job_counts(scope)
    active = counts.get("pending", 0) + counts.get("running", 0)
    return {
        "total_jobs": sum(counts.values()), "active_jobs": active, "pending_jobs": counts.get("pending", 0),
        "running_jobs": counts.get("running", 0), "paused_jobs": counts.get("paused", 0),
        "completed_jobs": counts.get("completed", 0), "failed_jobs": counts.get("failed", 0),
        "cancelled_jobs": counts.get("cancelled", 0), "total_datasets": reader.dataset_count(scope),
        "total_models": counts.get("completed", 0), "total_exports": reader.export_count("completed", scope),
    }
