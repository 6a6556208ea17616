"""The security settings in force, read once from ``Settings`` and checked (a bad value fails at start)."""

from __future__ import annotations

from dataclasses import dataclass

from ..schemas.auth import Quota
from ..settings import Settings, is_loopback_name
from .quotas import default_quota
from .rate_limits import parse_rate_limits
from .web import parse_list


@dataclass(frozen=True)
class SecurityConfig:
    auth_required: bool
    rate_limits: dict[str, str] | None  # None: off
    rate_limit_storage: str | None
    quota_defaults: Quota
    allowed_origins: frozenset[str]
    allowed_hosts: frozenset[str]
    loopback_listener: bool
    key_cache_s: float
    max_json_bytes: int = 1024 * 1024
    # SIENN_AUTH unset: auth follows the listener, and a request from another host needs a key even when
    # the settings say loopback (a Serve config edited to listen on 0.0.0.0 is not left open).
    auth_auto: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityConfig:
        return cls(
            auth_required=settings.auth_required,
            rate_limits=parse_rate_limits(settings.rate_limits),
            rate_limit_storage=settings.rate_limit_storage,
            quota_defaults=default_quota(settings.quotas),
            allowed_origins=parse_list(settings.allowed_origins),
            allowed_hosts=frozenset(h.strip("[]") for h in parse_list(settings.allowed_hosts)),
            loopback_listener=is_loopback_name(settings.http_host),
            key_cache_s=settings.key_cache_s,
            max_json_bytes=settings.max_json_bytes,
            auth_auto=settings.auth_env is None,
        )
