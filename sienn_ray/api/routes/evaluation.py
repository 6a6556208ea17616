"""Evaluations of fine-tunes against their base, and jobs compared side by side."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ...schemas.comparison import COMPARE_IDS_PATTERN, MAX_COMPARE_IDS, JobComparison
from ...schemas.evaluation import EvaluationReport
from ...services import evaluation
from ..deps import PrincipalDep, ServicesDep
from ..openapi import errors

router = APIRouter(tags=["evaluation"])


@router.get("/api/jobs/compare", response_model=JobComparison, responses=errors(400, 404))
async def compare_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    ids: str = Query(..., max_length=MAX_COMPARE_IDS * 64, pattern=COMPARE_IDS_PATTERN,
                     description=f"Comma-separated job ids, at most {MAX_COMPARE_IDS} (one named twice is "
                     "compared once)"),
):
    """Configs, final metrics and evaluation figures of several jobs side by side."""
    return await run_in_threadpool(evaluation.compare_jobs, services, principal, ids)


@router.get("/api/jobs/{job_id}/evaluation", response_model=EvaluationReport, responses=errors(404))
async def job_evaluation(job_id: str, services: ServicesDep, principal: PrincipalDep):
    """The job's evaluation: base vs tuned figures, per-row answers and scores, when it ran."""
    return await run_in_threadpool(evaluation.get_evaluation, services, principal, job_id)
