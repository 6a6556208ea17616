"""The typed client of the job registry: one method per registry operation, no method names as strings.

Each method names the ``RegistryCore`` function it calls (so a type checker
checks the arguments, and a renamed operation breaks at import, not at run
time) and returns a ``Reply``: ``await reply`` from async code (the API),
``reply.result()`` from sync code (CLI, runners, export tasks). The call is sent
at once, like a Ray ``.remote()``.

Two transports: the named Ray actor (retried while the registry restarts) and
an in-process ``RegistryCore`` (tests and tools that need no cluster).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import ray
from ray.exceptions import RayActorError, RayTaskError

from ..errors import ServiceUnavailable, SiennError
from ..schemas.auth import ApiKeyRecord, AuditEntry
from ..schemas.datasets import DatasetRecord
from ..schemas.exports import ExportRecord
from ..schemas.jobs import JobRecord, RunOutcome, StopKind
from .core import RegistryCore

REGISTRY_NAME = "sienn-job-registry"
RETRIES = 3
RETRY_S = 1.0

P = ParamSpec("P")
R = TypeVar("R")
Operation = Callable[Concatenate[RegistryCore, P], R]


def unwrap_domain_error(err: Exception) -> Exception:
    """Our domain errors raised inside an actor or replica, as themselves (else ``err``)."""
    cause = getattr(err, "cause", None)
    if isinstance(err, RayTaskError) and isinstance(cause, SiennError):
        return cause
    return err


class Reply(Generic[R]):
    """One registry call under way: ``await reply`` or ``reply.result(timeout)``.

    Over Ray it holds the call's ObjectRef; in process, the value itself (a domain
    error is raised when the call is made).
    """

    def __init__(self, send: Callable[[], Any], resend: Callable[[], Any]):
        self._send, self._resend = send, resend
        self._ref = send()

    def __await__(self):
        return self._wait_async().__await__()

    async def _wait_async(self) -> R:
        for attempt in range(RETRIES):
            try:
                return await self._ref if isinstance(self._ref, ray.ObjectRef) else self._ref
            except (RayTaskError, RayActorError) as err:
                self._failed(err, attempt)
            await asyncio.sleep(RETRY_S)
            self._ref = self._send()
        raise AssertionError("unreachable")

    def result(self, timeout: float | None = 60) -> R:
        """Block until the registry answers (sync callers only)."""
        for attempt in range(RETRIES):
            try:
                return ray.get(self._ref, timeout=timeout) if isinstance(self._ref, ray.ObjectRef) else self._ref
            except (RayTaskError, RayActorError) as err:
                self._failed(err, attempt)
            time.sleep(RETRY_S)
            self._ref = self._send()
        raise AssertionError("unreachable")

    def _failed(self, err: Exception, attempt: int) -> None:
        """Raise what the caller should see, or look the registry up again before the next attempt."""
        if isinstance(err, RayTaskError):
            raise unwrap_domain_error(err) from None
        if attempt == RETRIES - 1:  # RayActorError: the registry is restarting (max_restarts)
            raise ServiceUnavailable(f"Job registry unavailable: {err}") from None
        self._resend()


class RegistryClient:
    """Calls the registry's operations; build one with ``for_actor`` or ``in_process``."""

    def __init__(self, submit: Callable[[Callable, tuple, dict], Any], forget: Callable[[], None] = lambda: None):
        self._submit, self._forget = submit, forget

    @classmethod
    def for_actor(cls, namespace: str, handle=None) -> RegistryClient:
        """The named registry actor of ``namespace`` (looked up again after it restarts)."""
        state = {"handle": handle}

        def submit(fn: Callable, args: tuple, kwargs: dict):
            if state["handle"] is None:
                state["handle"] = ray.get_actor(REGISTRY_NAME, namespace=namespace)
            return getattr(state["handle"], fn.__name__).remote(*args, **kwargs)

        return cls(submit, lambda: state.update(handle=None))

    @classmethod
    def in_process(cls, core: RegistryCore) -> RegistryClient:
        """Calls straight into ``core`` in this process (no Ray)."""
        return cls(lambda fn, args, kwargs: fn(core, *args, **kwargs))

    def _call(self, fn: Operation[P, R], *args: P.args, **kwargs: P.kwargs) -> Reply[R]:
        return Reply(lambda: self._submit(fn, args, kwargs), self._forget)

    # The operations: each is RegistryCore's method of the same name (tests/jobs/test_client.py checks it).
    def ping(self) -> Reply[dict]:
        return self._call(RegistryCore.ping)

    def put_dataset(self, rec: DatasetRecord, storage_quota: int | None = None) -> Reply[DatasetRecord]:
        return self._call(RegistryCore.put_dataset, rec, storage_quota)

    def get_dataset(self, dataset_id: str) -> Reply[DatasetRecord]:
        return self._call(RegistryCore.get_dataset, dataset_id)

    def delete_dataset(self, dataset_id: str, tenant: str | None = None) -> Reply[DatasetRecord]:
        return self._call(RegistryCore.delete_dataset, dataset_id, tenant)

    def submit_job(self, rec: JobRecord, queued_quota: int | None = None) -> Reply[JobRecord]:
        return self._call(RegistryCore.submit_job, rec, queued_quota)

    def adopt_job(self, rec: JobRecord, holder: str, ttl_s: float = 3600.0) -> Reply[JobRecord]:
        return self._call(RegistryCore.adopt_job, rec, holder, ttl_s)

    def get_job(self, job_id: str) -> Reply[JobRecord]:
        return self._call(RegistryCore.get_job, job_id)

    def heartbeat(self, job_id: str, token: int) -> Reply[dict]:
        return self._call(RegistryCore.heartbeat, job_id, token)

    def report_progress(self, job_id: str, update: dict, token: int | None = None) -> Reply[dict]:
        return self._call(RegistryCore.report_progress, job_id, update, token)

    def add_event(self, job_id: str, type: str, data: dict | None = None,
                  token: int | None = None) -> Reply[None]:
        return self._call(RegistryCore.add_event, job_id, type, data, token)

    def add_loss_point(self, job_id: str, point: dict, token: int | None = None) -> Reply[None]:
        return self._call(RegistryCore.add_loss_point, job_id, point, token)

    def begin_evaluation(self, job_id: str, token: int, adapter_path: str) -> Reply[dict]:
        return self._call(RegistryCore.begin_evaluation, job_id, token, adapter_path)

    def finish_run(self, job_id: str, token: int, outcome: RunOutcome) -> Reply[JobRecord]:
        return self._call(RegistryCore.finish_run, job_id, token, outcome)

    def finish(self, job_id: str, status: str, message: str, *, error_code: str | None = None,
               adapter_path: str | None = None, metrics: dict | None = None) -> Reply[JobRecord]:
        return self._call(RegistryCore.finish, job_id, status, message, error_code=error_code,
                          adapter_path=adapter_path, metrics=metrics)

    def request_stop(self, job_id: str, kind: StopKind, tenant: str | None = None) -> Reply[JobRecord]:
        return self._call(RegistryCore.request_stop, job_id, kind, tenant)

    def resume_job(self, job_id: str, tenant: str | None = None) -> Reply[JobRecord]:
        return self._call(RegistryCore.resume_job, job_id, tenant)

    def put_export(self, rec: ExportRecord) -> Reply[ExportRecord]:
        return self._call(RegistryCore.put_export, rec)

    def update_export(self, export_id: str, fields: dict) -> Reply[ExportRecord]:
        return self._call(RegistryCore.update_export, export_id, fields)

    def create_key(self, rec: ApiKeyRecord) -> Reply[ApiKeyRecord]:
        return self._call(RegistryCore.create_key, rec)

    def revoke_key(self, name: str) -> Reply[ApiKeyRecord]:
        return self._call(RegistryCore.revoke_key, name)

    def add_audit(self, entries: list[AuditEntry]) -> Reply[int]:
        return self._call(RegistryCore.add_audit, entries)

    def tick(self) -> Reply[list[dict]]:
        return self._call(RegistryCore.tick)
