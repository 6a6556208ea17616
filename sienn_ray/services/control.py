"""Jobs control: cancel, pause and resume, for any job in any state where they make sense.

Cancel and pause of a training job are cooperative: every rank agrees on the
step, saves a checkpoint and stops, which frees the job's resources; the
registry stops the runner by force if that takes longer than its grace period.
With ``wait`` the call returns once the job has stopped (or that period is over).
"""

from __future__ import annotations

import asyncio
import time

from ..schemas.jobs import JobRecord, JobStatus, StopKind
from ..settings import get_settings
from .context import Services
from .lookup import known_id
from .principal import Principal

POLL_S = 0.5
# Beyond the registry's grace period: its clock ticks once a second.
MARGIN_S = 10.0


async def cancel(services: Services, principal: Principal, job_id: str, wait: bool = True) -> JobRecord:
    """Stop a job for good; its last checkpoint is kept."""
    return await _stop(services, principal, job_id, "cancel", wait)


async def pause(services: Services, principal: Principal, job_id: str, wait: bool = True) -> JobRecord:
    """Stop a job at a checkpoint and free its resources; ``resume`` continues from there."""
    return await _stop(services, principal, job_id, "pause", wait)


async def resume(services: Services, principal: Principal, job_id: str) -> JobRecord:
    """Put a paused job back in the queue; it continues from the step where it paused."""
    return await services.registry.resume_job(known_id(job_id, "job_id"), principal.scope)


async def _stop(services: Services, principal: Principal, job_id: str, kind: StopKind, wait: bool) -> JobRecord:
    rec = await services.registry.request_stop(known_id(job_id, "job_id"), kind, principal.scope)
    deadline = time.monotonic() + get_settings().stop_grace_s + MARGIN_S
    while wait and not _stopped(rec) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        rec = services.reader.get_job(rec.job_id) or rec
    return rec


def _stopped(rec: JobRecord) -> bool:
    return rec.status.is_terminal or rec.status == JobStatus.PAUSED
