"""Types every resource schema uses."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    """A random id like ``job_3f9a0c1d2e4b5a69``; paths.check_id accepts exactly this shape."""
    return f"{prefix}_{secrets.token_hex(8)}"


class Strict(BaseModel):
    """Request models: unknown keys are an error, so a typo fails loudly."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """The spec's error format (plus ``errors`` listing every problem when there are several)."""

    detail: str
    error_code: str
    timestamp: datetime
    errors: list[str] | None = None


def format_duration(seconds: float) -> str:
    """Human text for an estimate: '40 seconds', '3 minutes', '2 hours 5 minutes'."""
    seconds = max(1, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours, rest = divmod(minutes, 60)
    return f"{hours} hours {rest} minutes" if rest else f"{hours} hours"
