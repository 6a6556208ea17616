"""The audit trail of state-changing requests (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ...schemas.auth import KEY_NAME_PATTERN, AuditList
from ..deps import MAX_OFFSET, AdminDep, ServicesDep
from ..openapi import errors

router = APIRouter(tags=["audit"])


@router.get("/api/audit", response_model=AuditList, responses=errors(400, 403))
async def audit_trail(
    services: ServicesDep,
    _admin: AdminDep,
    key_name: str | None = Query(None, pattern=KEY_NAME_PATTERN, description="Only this key's requests"),
    tenant: str | None = Query(None, pattern=KEY_NAME_PATTERN, description="Only requests of this tenant"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
):
    """State-changing requests, newest first: time, key, tenant, method, route, target id, status."""
    entries, total = services.reader.list_audit(key_name, tenant, limit, offset)
    return AuditList(entries=entries, total=total, limit=limit, offset=offset)
