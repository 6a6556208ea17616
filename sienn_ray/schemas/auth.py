"""API keys, their quotas and the audit trail: one schema each, shared by the API, the CLI and the registry."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from .common import Strict

KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class QuotaOverrides(Strict):
    """Quotas a key sets for itself; a field left out takes the server's default (``SIENN_QUOTAS``)."""

    running_jobs: int | None = Field(None, ge=0, description="Jobs of the tenant holding resources at once; "
                                                            "more wait in the queue")
    queued_jobs: int | None = Field(None, ge=0, description="Jobs of the tenant waiting in the queue")
    cpus_per_job: float | None = Field(None, ge=0, description="CPUs one job may ask for (all its workers)")
    gpus_per_job: float | None = Field(None, ge=0, description="GPUs one job may ask for (all its workers)")
    storage_bytes: int | None = Field(None, ge=0, description="Bytes of datasets and exports the tenant keeps")
    max_priority: int | None = Field(None, ge=0, description="Highest queue priority; a higher request is capped")


class Quota(BaseModel):
    """The quotas in force for a key: its overrides over the server's defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    running_jobs: int = 2
    queued_jobs: int = 20
    cpus_per_job: float = 16.0
    gpus_per_job: float = 8.0
    storage_bytes: int = 50 * 1024**3
    max_priority: int = 50

    def with_overrides(self, overrides: QuotaOverrides | None) -> Quota:
        if overrides is None:
            return self
        return self.model_copy(update=overrides.model_dump(exclude_none=True))


class ApiKeyRecord(BaseModel):
    """A stored key: everything but the key itself, of which only a salted scrypt hash is kept."""

    key_id: str = Field(description="The key's public part (16 hex digits), to look it up")
    name: str = Field(pattern=KEY_NAME_PATTERN)
    tenant: str = Field(pattern=KEY_NAME_PATTERN)
    is_admin: bool = False
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    quota: QuotaOverrides = Field(default_factory=QuotaOverrides)

    def info(self) -> ApiKeyInfo:
        return ApiKeyInfo(**self.model_dump(exclude={"key_hash"}))


class ApiKeyInfo(BaseModel):
    """What ``keys list`` shows: never the key nor its hash."""

    key_id: str
    name: str
    tenant: str
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None = None
    quota: QuotaOverrides


class AuditEntry(BaseModel):
    """One state-changing request: who, what, on which resource, with what result."""

    seq: int | None = Field(None, description="Order of recording (set by the store)")
    at: datetime
    key_name: str | None = Field(None, description="None: auth off (the default principal)")
    tenant: str
    method: str
    route: str = Field(description="The route's path template, e.g. /api/jobs/{job_id}/cancel")
    path: str
    target_id: str | None = Field(None, description="The resource acted on: a path id, else the id answered")
    status: int
    client: str | None = None


class AuditList(BaseModel):
    entries: list[AuditEntry]
    total: int
    limit: int
    offset: int
