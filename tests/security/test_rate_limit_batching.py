"""The shared rate-limit counters on real Ray: concurrent requests' hits reach the actor together,
and every request still gets its own exact decision."""

from __future__ import annotations

import asyncio
import uuid

import ray

from sienn_ray.api.rate_limit_store import COUNTERS_NAME, ActorLimiter


class _CountingHandle:
    """The real actor handle, counting the calls made through it."""

    def __init__(self, handle):
        self.handle, self.calls, self.hits = handle, 0, 0
        self.hit_many = self

    def remote(self, hits):
        self.calls += 1
        self.hits += len(hits)
        return self.handle.hit_many.remote(hits)


def test_concurrent_hits_share_actor_calls_and_keep_exact_counts(ray_session):
    namespace = f"rate-batch-{uuid.uuid4().hex[:8]}"
    limiter = ActorLimiter(namespace)
    counting = _CountingHandle(limiter._counters())
    limiter._counters = lambda: counting

    async def flood():
        return await asyncio.gather(*(limiter.hit("30/minute", "standard", "key:a") for _ in range(50)))

    try:
        decisions = asyncio.run(flood())
        assert sum(d.allowed for d in decisions) == 30  # the limit holds exactly
        assert [d.allowed for d in decisions] == [True] * 30 + [False] * 20  # in arrival order
        assert min(d.remaining for d in decisions[:30]) == 0
        assert counting.hits == 50
        assert counting.calls < 50 / 5, counting.calls  # batched, not one call per request

        one = asyncio.run(limiter.hit("30/minute", "standard", "key:b"))  # alone: one call of one hit
        assert one.allowed and one.remaining == 29
    finally:
        ray.kill(ray.get_actor(COUNTERS_NAME, namespace=namespace))
