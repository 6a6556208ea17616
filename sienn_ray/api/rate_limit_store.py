"""Ray glue: the rate-limit counters every API replica shares, so a limit holds across replicas.

By default a small named, detached actor holds one ``limits`` MemoryStorage for
the namespace (a restart forgets the windows, which only lets callers start
afresh). With ``SIENN_RATE_LIMIT_STORAGE`` (a ``limits`` storage URI such as
``redis://host:6379``) each replica talks to that storage directly instead.
"""

from __future__ import annotations

import asyncio
import logging
import time

import ray

from ..auth.config import SecurityConfig
from ..auth.rate_limits import Decision, WindowLimiter

log = logging.getLogger("sienn_ray.api")
COUNTERS_NAME = "sienn-rate-limits"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class RateLimitCounters:
    """Moving windows in memory; one call per batch of requests, answered in microseconds per hit."""

    def __init__(self):
        self.limiter = WindowLimiter()

    def hit_many(self, hits: list[tuple[str, str, str]]) -> list[dict]:
        """Count each ``(spec, limit_class, caller)`` in order; one decision per hit."""
        return [self.limiter.hit(spec, limit_class, caller).to_dict() for spec, limit_class, caller in hits]


class ActorLimiter:
    """Counts in the namespace's ``RateLimitCounters`` actor (created by the first replica to ask).

    An actor call costs the replica far more CPU than the count itself (it was the largest single cost
    of a status poll under load), so the hits of concurrent requests travel together: while one batch is
    in flight the next one gathers, and each request still waits for its own decision from the shared
    counters. One request alone is one call, as before.
    """

    def __init__(self, namespace: str):
        self.namespace = namespace
        self._handle = None
        self._pending: list[tuple[tuple[str, str, str], asyncio.Future]] = []
        self._sending = False

    def _counters(self):
        if self._handle is None:
            self._handle = RateLimitCounters.options(
                name=COUNTERS_NAME, namespace=self.namespace, lifetime="detached", get_if_exists=True,
            ).remote()
        return self._handle

    async def hit(self, spec: str, limit_class: str, caller: str) -> Decision:
        if self._handle is None:  # the lookup blocks: once per process, off the event loop
            await asyncio.to_thread(self._counters)
        decided = asyncio.get_running_loop().create_future()
        self._pending.append(((spec, limit_class, caller), decided))
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._send_batches())
        return Decision(**await decided)

    async def _send_batches(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    decisions = await self._counters().hit_many.remote([hit for hit, _ in batch])
                except Exception as err:  # noqa: BLE001 - every waiter gets it (FailOpen decides)
                    for _, decided in batch:
                        if not decided.done():
                            decided.set_exception(err)
                    continue
                for (_, decided), decision in zip(batch, decisions):
                    if not decided.done():  # its request may have been cancelled meanwhile
                        decided.set_result(decision)
        finally:
            self._sending = False


class UriLimiter:
    """Counts in a shared ``limits`` storage named by URI (its client is blocking: run in a thread)."""

    def __init__(self, uri: str):
        self.limiter = WindowLimiter.from_uri(uri)

    async def hit(self, spec: str, limit_class: str, caller: str) -> Decision:
        return await asyncio.to_thread(self.limiter.hit, spec, limit_class, caller)


class FailOpen:
    """A limiter that cannot be reached lets requests through (limits guard capacity, keys guard access)
    and says so in the log at most once a minute."""

    def __init__(self, inner):
        self.inner = inner
        self._warned_at = 0.0

    async def hit(self, spec: str, limit_class: str, caller: str) -> Decision | None:
        try:
            return await self.inner.hit(spec, limit_class, caller)
        except Exception:  # noqa: BLE001 - see the class docstring
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("rate limiter unreachable; letting requests through", exc_info=True)
            return None


def build_limiter(config: SecurityConfig, namespace: str) -> FailOpen | None:
    """The limiter this process counts with; None when rate limits are off."""
    if config.rate_limits is None:
        return None
    if config.rate_limit_storage:
        return FailOpen(UriLimiter(config.rate_limit_storage))
    if not ray.is_initialized():  # an app outside any cluster (a TestClient): starting one here would be wrong
        log.warning("rate limits are on but this process is not attached to Ray: not counting")
        return None
    return FailOpen(ActorLimiter(namespace))
