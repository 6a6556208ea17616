"""GET /api/jobs/compare: several jobs side by side (configs, final metrics, evaluation figures)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from .evaluation import EvaluationFigures
from .jobs import JobStatus, TrainingConfig, TrainingMetrics

MAX_COMPARE_IDS = 20
# Blank means ASCII whitespace only: Python's and JavaScript's \s disagree on other characters (U+0085),
# and the OpenAPI pattern must mean the same to every client.
BLANKS = " \t\n\v\f\r"
# The shape parse_job_ids accepts, for the OpenAPI document: 1 to MAX_COMPARE_IDS comma-separated
# entries, none blank.
# BLANKS written as regex escapes (\t, \x0b, ...), which Python and ECMAScript read alike.
_NOT_BLANK = "[^," + BLANKS.encode("unicode_escape").decode() + "]"
_ENTRY = rf"[^,]*{_NOT_BLANK}[^,]*"
COMPARE_IDS_PATTERN = rf"^{_ENTRY}(,{_ENTRY}){{0,{MAX_COMPARE_IDS - 1}}}$"


class ComparedJob(BaseModel):
    """One job's column in GET /api/jobs/compare."""

    job_id: str
    status: JobStatus
    model_name: str
    dataset_id: str
    created_at: datetime
    completed_at: datetime | None = None
    config: TrainingConfig
    metrics: TrainingMetrics
    evaluation: EvaluationFigures | None = Field(None, description="Null while the job has no evaluation")


class JobComparison(BaseModel):
    """GET /api/jobs/compare?ids=a,b,...: the jobs side by side, in the order asked."""

    jobs: list[ComparedJob]
