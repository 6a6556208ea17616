"""Evaluations of fine-tunes against their base, and jobs compared side by side."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ...errors import EvaluationNotFound, JobNotFound
from ...evaluation.compare import compared_job, parse_job_ids
from ...evaluation.reports import read_report
from ...schemas.evaluation import MAX_COMPARE_IDS, EvaluationReport, JobComparison
from ..deps import ServicesDep, known_id

router = APIRouter(tags=["evaluation"])


@router.get("/api/jobs/compare", response_model=JobComparison)
async def compare_jobs(
    services: ServicesDep,
    ids: str = Query(..., description=f"Comma-separated job ids, at most {MAX_COMPARE_IDS}"),
):
    """Configs, final metrics and evaluation figures of several jobs side by side."""
    wanted = parse_job_ids(ids)
    found = await asyncio.gather(*(_job_or_none(services, job_id) for job_id in wanted))
    unknown = [job_id for job_id, job in zip(wanted, found) if job is None]
    if unknown:
        raise JobNotFound(f"Jobs not found: {', '.join(unknown)}", errors=[f"{j}: not found" for j in unknown])
    reports = await run_in_threadpool(lambda: [read_report(job_id) for job_id in wanted])
    return JobComparison(jobs=[compared_job(job, report) for job, report in zip(found, reports)])


@router.get("/api/jobs/{job_id}/evaluation", response_model=EvaluationReport)
async def job_evaluation(job_id: str, services: ServicesDep):
    """The job's evaluation: base vs tuned figures, per-row answers and scores, when it ran."""
    await services.registry.call("get_job", known_id(job_id, "job_id"))
    report = await run_in_threadpool(read_report, job_id)
    if report is None:
        raise EvaluationNotFound(f"Job {job_id} has no evaluation (yet)")
    return report


async def _job_or_none(services, job_id: str):
    try:
        return await services.registry.call("get_job", known_id(job_id, "job_id"))
    except JobNotFound:
        return None
