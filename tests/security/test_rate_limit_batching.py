"""The shared rate-limit counters on real Ray: concurrent requests' hits reach the actor together, a busy
caller is served from leases (a call a second, not a call a request), and every limit still holds
exactly, across two replicas too."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import ray

from sienn_ray.api.rate_limit_store import COUNTERS_NAME, LEASE_S, ActorLimiter


class _CountingHandle:
    """The real actor handle, counting the calls made through it and the hits they decide."""

    def __init__(self, handle):
        self.handle, self.calls, self.needed = handle, 0, 0
        self.take_many = self

    def remote(self, takes, releases, lease_s):
        self.calls += 1
        self.needed += sum(need for _, need, _ in takes)
        return self.handle.take_many.remote(takes, releases, lease_s)


@pytest.fixture
def namespace(ray_session):
    name = f"rate-batch-{uuid.uuid4().hex[:8]}"
    yield name
    ray.kill(ray.get_actor(COUNTERS_NAME, namespace=name))


def _counted(namespace: str) -> tuple[ActorLimiter, _CountingHandle]:
    limiter = ActorLimiter(namespace)
    limiter._handle = counting = _CountingHandle(limiter._counters())
    return limiter, counting


async def _free(limiter: ActorLimiter, spec: str, caller: str) -> int:
    """What the shared window has free for a caller, asked without counting a hit."""
    [grant] = await limiter._counters().handle.take_many.remote([((spec, "standard", caller), 0, 0)], [], 0.0)
    return grant["remaining"]


async def _client(limiter: ActorLimiter, spec: str, caller: str, hits: int) -> list[bool]:
    """One connection's sequential requests, each waiting for its decision."""
    out = []
    for _ in range(hits):
        out.append((await limiter.hit(spec, "standard", caller)).allowed)
        await asyncio.sleep(0.001)
    return out


def test_concurrent_hits_share_actor_calls_and_keep_exact_counts(namespace):
    limiter, counting = _counted(namespace)

    async def flood():
        return await asyncio.gather(*(limiter.hit("30/minute", "standard", "key:a") for _ in range(50)))

    decisions = asyncio.run(flood())
    assert sum(d.allowed for d in decisions) == 30  # the limit holds exactly
    assert [d.allowed for d in decisions] == [True] * 30 + [False] * 20  # in arrival order
    assert min(d.remaining for d in decisions[:30]) == 0
    assert counting.needed == 50
    assert counting.calls < 50 / 5, counting.calls  # batched, not one call per request

    one = asyncio.run(limiter.hit("30/minute", "standard", "key:b"))  # alone: one call of one hit
    assert one.allowed and one.remaining == 29


def test_a_busy_caller_is_served_from_leases_and_every_hit_is_counted(namespace):
    """20 connections polling one after another: without leases every round trip of the actor is a call
    (hundreds here); with them about one per LEASE_S, and once the leases end the shared window holds
    exactly the hits admitted."""
    limiter, counting = _counted(namespace)
    spec, hits = "1000000/minute", 20 * 150

    async def poll():
        answers = await asyncio.gather(*(_client(limiter, spec, "key:busy", 150) for _ in range(20)))
        await asyncio.sleep(LEASE_S + 0.5)  # the last lease ends and hands back what it left
        return sum(map(sum, answers)), await _free(limiter, spec, "key:busy")

    allowed, free = asyncio.run(poll())
    assert allowed == hits
    assert free == 1_000_000 - hits  # nothing leased is lost or counted twice
    assert counting.calls < 30, counting.calls
    assert counting.needed < hits / 10  # most hits never waited for the actor


def test_two_replicas_never_admit_more_than_the_limit_and_reach_it(namespace):
    """Two limiters (two API replicas) share one window of 100: together they admit at most 100 while
    both are busy, and once the leases come back exactly 100."""
    first, _ = _counted(namespace)
    second, _ = _counted(namespace)
    spec = "100/minute"

    async def flood():
        answers = await asyncio.gather(*(_client(limiter, spec, "key:shared", 15)
                                         for limiter in (first, second) for _ in range(10)))
        busy = sum(map(sum, answers))
        await asyncio.sleep(LEASE_S + 0.5)
        late = await asyncio.gather(*(_client(limiter, spec, "key:shared", 60) for limiter in (first, second)))
        return busy, busy + sum(map(sum, late))

    busy, total = asyncio.run(flood())
    assert 50 <= busy <= 100, busy
    assert total == 100


def test_a_full_window_refuses_a_flood_without_asking_for_each_request(namespace):
    limiter, counting = _counted(namespace)
    spec = "10/minute"

    async def flood():
        first = await asyncio.gather(*(limiter.hit(spec, "standard", "key:full") for _ in range(11)))
        calls = counting.calls
        later = await asyncio.gather(*(_client(limiter, spec, "key:full", 20) for _ in range(10)))
        return first, later, counting.calls - calls

    first, later, calls = asyncio.run(flood())
    assert [d.allowed for d in first] == [True] * 10 + [False]
    assert not any(map(any, later))
    assert first[-1].retry_after() >= 1
    assert calls <= 3, calls  # the full window is remembered for LEASE_S, not asked 200 times
