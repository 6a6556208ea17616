"""Ray glue: the rate-limit counters every API replica shares, so a limit holds across replicas.

By default a small named, detached actor holds the namespace's windows
(``auth/rate_leases.LeaseWindows``; a restart forgets them, which only lets
callers start afresh) and leases a busy caller's hits to each replica. With
``SIENN_RATE_LIMIT_STORAGE`` (a ``limits`` storage URI such as
``redis://host:6379``) each replica talks to that storage directly instead.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

import ray

from ..auth.config import SecurityConfig
from ..auth.rate_leases import Grant, Key, LeaseWindows
from ..auth.rate_limits import Decision, WindowLimiter

log = logging.getLogger("sienn_ray.api")
COUNTERS_NAME = "sienn-rate-limits"
LEASE_S = 1.0  # a busy caller costs the counters about one call per this many seconds per replica
LEASE_HEADROOM = 1.5  # a lease sized to last the whole LEASE_S when the rate rises a little
MAX_LEASE = 100_000
DEMAND_KEPT_S = 60.0


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class RateLimitCounters:
    """The windows every replica shares (``LeaseWindows``); one call per batch of takes, microseconds each."""

    def __init__(self):
        self.windows = LeaseWindows()

    def take_many(self, takes: list[tuple[Key, int, int]], releases: list[tuple[Key, float, int]],
                  lease_s: float) -> list[dict]:
        """Hand back what expired leases left unused, then grant each ``(key, need, lease)`` in order."""
        for key, stamp, count in releases:
            self.windows.release(tuple(key), stamp, count)
        return [self.windows.take(tuple(key), need, lease, lease_s).to_dict() for key, need, lease in takes]


@dataclass
class _Lease:
    """Hits this replica may admit for one key until ``until`` (monotonic), or (``full``) a window with no
    room to refuse from until then."""

    left: int
    until: float
    stamp: float
    limit: int
    remaining: int  # free in the window beside the lease when it was granted
    reset_at: float
    full: bool

    def covers(self, now: float) -> bool:
        return now < self.until and (self.left > 0 or self.full)

    def decide(self) -> Decision:
        if self.full:
            return Decision(False, self.limit, 0, self.reset_at)
        self.left -= 1
        return Decision(True, self.limit, self.remaining + self.left, self.reset_at)


@dataclass
class _Demand:
    """Hits of one key seen since its last take, to size the next lease."""

    seen: int = 0
    since: float = field(default_factory=time.monotonic)

    def lease_wanted(self, now: float) -> int:
        """Enough for the next ``LEASE_S`` at the rate seen, with headroom; none for a lone request."""
        if self.seen < 2:
            return 0
        rate = self.seen / max(now - self.since, LEASE_S / 10)
        return min(MAX_LEASE, math.ceil(LEASE_HEADROOM * rate * LEASE_S))


class ActorLimiter:
    """Counts in the namespace's ``RateLimitCounters`` actor (created by the first replica to ask).

    An actor call costs the replica far more CPU than the count itself (it was the largest single cost
    of a status poll under load), so a busy caller is served from a lease: hits the counters reserved
    for this replica for ``LEASE_S`` (see ``auth/rate_leases.py`` for why the limit still holds), sized
    to the rate the caller was seen at, and a full window refuses here until it may have room. Hits no
    lease covers travel together: while one batch is in flight the next gathers, each request waiting
    for its own decision. A lone request is one call deciding one hit, as without leases.
    """

    def __init__(self, namespace: str):
        self.namespace = namespace
        self._handle = None
        self._leases: dict[Key, _Lease] = {}
        self._demand: dict[Key, _Demand] = {}
        self._waiting: dict[Key, list[asyncio.Future]] = {}
        self._releases: list[tuple[Key, float, int]] = []
        self._sending = False
        self._swept_at = time.monotonic()

    def _counters(self):
        if self._handle is None:
            self._handle = RateLimitCounters.options(
                name=COUNTERS_NAME, namespace=self.namespace, lifetime="detached", get_if_exists=True,
            ).remote()
        return self._handle

    async def hit(self, spec: str, limit_class: str, caller: str) -> Decision:
        key = (spec, limit_class, caller)
        demand = self._demand.get(key)
        if demand is None:  # not setdefault: that would build a _Demand on every request
            demand = self._demand[key] = _Demand()
        demand.seen += 1
        lease = self._leases.get(key)
        if lease is not None and lease.covers(time.monotonic()):
            return lease.decide()
        if self._handle is None:  # the lookup blocks: once per process, off the event loop
            await asyncio.to_thread(self._counters)
        decided = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(decided)
        self._kick()
        return await decided

    def _kick(self) -> None:
        if not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._send_batches())

    async def _send_batches(self) -> None:
        try:
            while self._serve_from_leases() or self._releases:
                waiting, self._waiting = self._waiting, {}
                releases, self._releases = self._releases, []
                sent = time.monotonic()
                takes = [(key, len(futures), self._take_demand(key, sent)) for key, futures in waiting.items()]
                try:
                    grants = await self._counters().take_many.remote(takes, releases, LEASE_S)
                except Exception as err:  # noqa: BLE001 - every waiter gets it (FailOpen decides)
                    for future in (f for futures in waiting.values() for f in futures):
                        _settle(future, exception=err)
                    continue
                for (key, futures), grant in zip(waiting.items(), map(Grant.from_dict, grants)):
                    for future, decision in zip(futures, grant.decisions):
                        _settle(future, result=decision)
                    self._keep(key, grant, sent)
        finally:
            self._sending = False

    def _serve_from_leases(self) -> bool:
        """Answer waiters a lease granted meanwhile now covers; True while some still wait."""
        now = time.monotonic()
        for key in list(self._waiting):
            lease = self._leases.get(key)
            futures = self._waiting[key]
            while futures and lease is not None and lease.covers(now):
                _settle(futures.pop(0), result=lease.decide())
            if not futures:
                del self._waiting[key]
        return bool(self._waiting)

    def _take_demand(self, key: Key, now: float) -> int:
        demand = self._demand.pop(key, None)
        self._demand[key] = _Demand(since=now)
        if now - self._swept_at > DEMAND_KEPT_S:  # callers gone quiet: their rate no longer matters
            self._swept_at = now
            self._demand = {k: d for k, d in self._demand.items() if now - d.since < DEMAND_KEPT_S}
        return demand.lease_wanted(now) if demand is not None else 0

    def _keep(self, key: Key, grant: Grant, sent: float) -> None:
        """Keep a lease for ``LEASE_S`` from when the take was sent: never past the counters' stamp, set when
        they received it. A full window is kept as long, or until its oldest hit leaves it if sooner."""
        full = grant.remaining == 0 and not grant.lease
        if not grant.lease and not full:
            return
        until = sent + (min(LEASE_S, max(grant.reset_at - time.time(), 0)) if full else LEASE_S)
        lease = _Lease(grant.lease, until, grant.stamp, grant.limit, grant.remaining, grant.reset_at, full)
        self._leases[key] = lease
        asyncio.get_running_loop().call_later(max(until - time.monotonic(), 0), self._expire, key, lease)

    def _expire(self, key: Key, lease: _Lease) -> None:
        if self._leases.get(key) is lease:
            del self._leases[key]
        if lease.left:
            self._releases.append((key, lease.stamp, lease.left))
            lease.left = 0
            self._kick()


def _settle(future: asyncio.Future, *, result=None, exception: BaseException | None = None) -> None:
    if future.done():  # its request may have been cancelled meanwhile
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


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
