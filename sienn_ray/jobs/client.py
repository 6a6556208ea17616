"""Calling the JobRegistry actor from async code (the API) and sync code (CLI, runners).

Errors raised inside the actor arrive wrapped in RayTaskError; we unwrap our own
domain errors so callers (and the API's error table) see them as themselves.
"""

from __future__ import annotations

import asyncio
import time

import ray
from ray.exceptions import RayActorError, RayTaskError

from ..errors import ServiceUnavailable, SiennError
from ..settings import get_settings

REGISTRY_NAME = "sienn-job-registry"
RETRIES = 3
RETRY_S = 1.0


def unwrap_domain_error(err: Exception) -> Exception:
    """Our domain errors raised inside an actor or replica, as themselves (else ``err``)."""
    cause = getattr(err, "cause", None)
    if isinstance(err, RayTaskError) and isinstance(cause, SiennError):
        return cause
    return err


def get_registry_handle(namespace: str | None = None):
    """The named registry actor (creating it if it does not exist yet)."""
    from .registry import get_or_create_registry

    return get_or_create_registry(namespace or get_settings().ray_namespace)


class RegistryClient:
    """Thin wrapper: ``await client.call("get_job", job_id)`` or ``client.call_sync(...)``."""

    def __init__(self, handle=None, namespace: str | None = None):
        self._namespace = namespace or get_settings().ray_namespace
        self._handle = handle

    @property
    def handle(self):
        if self._handle is None:
            self._handle = get_registry_handle(self._namespace)
        return self._handle

    async def call(self, method: str, *args, **kwargs):
        for attempt in range(RETRIES):
            try:
                return await getattr(self.handle, method).remote(*args, **kwargs)
            except (RayTaskError, RayActorError) as err:
                self._failed(err, attempt)
            await asyncio.sleep(RETRY_S)

    def call_sync(self, method: str, *args, timeout: float | None = 60, **kwargs):
        for attempt in range(RETRIES):
            try:
                return ray.get(getattr(self.handle, method).remote(*args, **kwargs), timeout=timeout)
            except (RayTaskError, RayActorError) as err:
                self._failed(err, attempt)
            time.sleep(RETRY_S)

    def _failed(self, err: Exception, attempt: int) -> None:
        """Raise what the caller should see, or forget the handle so the next attempt looks it up again."""
        if isinstance(err, RayTaskError):
            raise unwrap_domain_error(err) from None
        # RayActorError: the registry is restarting (max_restarts); retry a few times.
        if attempt == RETRIES - 1:
            raise ServiceUnavailable(f"Job registry unavailable: {err}") from None
        self._handle = None
