"""Reading evaluations: one job's report, and several jobs compared side by side (tenant-scoped)."""

from __future__ import annotations

from ..errors import EvaluationNotFound, JobNotFound
from ..evaluation.compare import compared_job, parse_job_ids
from ..evaluation.reports import read_report
from ..schemas.comparison import JobComparison
from ..schemas.evaluation import EvaluationReport
from .context import Services
from .lookup import find_job
from .principal import Principal


def get_evaluation(services: Services, principal: Principal, job_id: str) -> EvaluationReport:
    """The job's evaluation report; 404 for a job the principal cannot see, or one not evaluated (yet)."""
    job = find_job(services, principal, job_id)
    report = read_report(job.job_id)
    if report is None:
        raise EvaluationNotFound(f"Job {job_id} has no evaluation (yet)")
    return report


def compare_jobs(services: Services, principal: Principal, ids: str) -> JobComparison:
    """Configs, final metrics and evaluation figures of the listed jobs, in the order asked."""
    wanted = parse_job_ids(ids)
    found, unknown = [], []
    for job_id in wanted:
        try:
            found.append(find_job(services, principal, job_id))
        except JobNotFound:
            unknown.append(job_id)
    if unknown:
        raise JobNotFound(f"Jobs not found: {', '.join(unknown)}", errors=[f"{j}: not found" for j in unknown])
    return JobComparison(jobs=[compared_job(job, read_report(job.job_id)) for job in found])
