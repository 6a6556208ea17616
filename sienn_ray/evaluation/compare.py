"""Jobs side by side: the ``ids`` list of GET /api/jobs/compare, and one job's column."""

from __future__ import annotations

from ..errors import BadRequest
from ..schemas.comparison import BLANKS, MAX_COMPARE_IDS, ComparedJob
from ..schemas.evaluation import EvaluationFigures, EvaluationReport
from ..schemas.jobs import JobRecord


def parse_job_ids(raw: str) -> list[str]:
    """The comma-separated ids in asking order; every problem with the list is reported at once."""
    ids = [part.strip(BLANKS) for part in raw.split(",")]
    problems = []
    named = [part for part in ids if part]
    if not named:
        problems.append("ids: name at least one job")
    elif len(named) < len(ids):
        problems.append("ids: an empty entry (write ids=job_a,job_b with no empty items)")
    # A job named twice is compared once (a list the OpenAPI pattern allows is never refused for it).
    if len(named) > MAX_COMPARE_IDS:
        problems.append(f"ids: at most {MAX_COMPARE_IDS} jobs at once, got {len(named)}")
    ids = list(dict.fromkeys(named))
    if problems:
        raise BadRequest("Invalid job list: " + "; ".join(problems), errors=problems)
    return ids


def evaluation_figures(report: EvaluationReport) -> EvaluationFigures:
    """The report without its rows."""
    return EvaluationFigures(status=report.status, error=report.error, finished_at=report.finished_at,
                             rows_used=len(report.rows_used), base=report.base, tuned=report.tuned,
                             deltas=report.deltas)


def compared_job(job: JobRecord, report: EvaluationReport | None) -> ComparedJob:
    """One job's column: its config, final metrics and evaluation figures."""
    return ComparedJob(job_id=job.job_id, status=job.status, model_name=job.model_name, dataset_id=job.dataset_id,
                       created_at=job.created_at, completed_at=job.completed_at, config=job.config,
                       metrics=job.metrics, evaluation=evaluation_figures(report) if report else None)
