"""The API replica's bound on inference calls in flight (no Ray): past it a call is refused at once."""

from __future__ import annotations

import gc

import pytest

from sienn_ray.errors import Overloaded
from sienn_ray.inference.inflight import InflightBound


def test_calls_past_the_bound_are_refused_until_one_ends():
    bound = InflightBound(limit=3, retry_after_s=2.0)
    slots = [bound.take() for _ in range(3)]
    with pytest.raises(Overloaded) as refused:
        bound.take()
    assert refused.value.status_code == 503 and refused.value.extra["retry_after"] == 2.0
    slots[0].release()
    slots[0].release()  # once only: a second release gives nothing more back
    assert bound.inflight == 2
    bound.take()
    with pytest.raises(Overloaded):
        bound.take()


def test_a_stream_nobody_reads_gives_its_place_back_when_collected():
    bound = InflightBound(limit=1, retry_after_s=1.0)

    async def stream():
        yield "never read"

    unread = stream()
    bound.take().release_with(unread)
    with pytest.raises(Overloaded):
        bound.take()
    del unread
    gc.collect()
    assert bound.inflight == 0
    bound.take()
