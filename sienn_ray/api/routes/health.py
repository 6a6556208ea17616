"""Health and metrics endpoints."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime

import psutil
import ray
from fastapi import APIRouter
from pydantic import BaseModel

from ... import paths
from ...schemas.common import utcnow
from ...services import jobs
from ..deps import PrincipalDep, ServicesDep

router = APIRouter(tags=["health"])
log = logging.getLogger("sienn_ray.api")


class Health(BaseModel):
    status: str
    timestamp: datetime


class DetailedHealth(BaseModel):
    """The spec's summary for every key; ``ray``, ``storage`` and ``system`` for admins only."""

    status: str
    timestamp: datetime
    services: dict[str, str]
    ray: dict | None = None
    storage: dict | None = None
    system: dict[str, float] | None = None


class Metrics(BaseModel):
    total_jobs: int
    active_jobs: int
    pending_jobs: int
    running_jobs: int
    paused_jobs: int
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    total_datasets: int
    total_models: int
    total_exports: int


@router.get("/health", response_model=Health)
async def health():
    """Liveness of the API."""
    return Health(status="healthy", timestamp=utcnow())


@router.get("/api/health/detailed", response_model=DetailedHealth, response_model_exclude_none=True)
async def health_detailed(services: ServicesDep, principal: PrincipalDep):
    """Registry/database, Ray cluster, storage and system usage (the details to admin keys only)."""
    checks: dict[str, str] = {}
    try:
        ping = await services.registry.ping()
        checks["database"] = "connected" if ping.get("ok") and services.reader.ping() else "error"
        checks["registry"] = "running"
    except Exception:  # noqa: BLE001 - health reports failures instead of raising; the text may name the database
        log.warning("health: registry or database check failed", exc_info=True)
        checks["database"] = checks["registry"] = "error"
    try:
        resources = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        ray_info = {"status": "connected", "nodes": len(nodes), "resources": resources}
        checks["ray"] = "connected"
    except Exception:  # noqa: BLE001
        log.warning("health: Ray check failed", exc_info=True)
        ray_info = {"status": "error"}
        checks["ray"] = "error"
    home = paths.home()
    home.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(home)
    checks["storage"] = "available" if usage.free > 0 else "full"
    healthy = all(v in ("connected", "running", "available") for v in checks.values())
    summary = DetailedHealth(status="healthy" if healthy else "degraded", timestamp=utcnow(), services=checks)
    if not principal.is_admin:
        return summary
    summary.ray = ray_info
    summary.storage = {"path": str(home), "free_bytes": usage.free, "total_bytes": usage.total}
    summary.system = {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory_percent": psutil.virtual_memory().percent,
        "disk_usage": psutil.disk_usage(str(home)).percent,
    }
    return summary


@router.get("/api/metrics", response_model=Metrics)
async def metrics(services: ServicesDep, principal: PrincipalDep):
    """Counts of jobs by status, datasets, fine-tuned models and exports."""
    return Metrics(**jobs.metrics(services, principal))
