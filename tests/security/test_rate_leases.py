"""Leased moving windows (pure, a simulated clock): the limit holds in every window however replicas use
their leases, what a lease leaves unused comes back, and the last hits before the limit are exact."""

from __future__ import annotations

import random

import pytest

from sienn_ray.auth.rate_leases import LeaseWindows

KEY = ("20/minute", "standard", "key:a")


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _max_in_any_window(times: list[float], length: float) -> int:
    """The most admissions in any moving window (t - length, t] (the worst one ends at an admission)."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - length:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize("seed", range(40))
def test_no_window_ever_admits_more_than_the_limit(seed):
    """Three replicas take, lease and use leased hits at any moment before their lease ends, and hand
    the rest back at its end; every admission, leased or decided, is timed where it happened."""
    rng = random.Random(seed)
    clock = Clock()
    windows = LeaseWindows(clock)
    limit, length, lease_s = 20, 60.0, rng.choice([0.5, 1.0, 5.0, 20.0])
    admitted: list[float] = []
    events: list[tuple[float, int, str, object]] = []  # (time, order, what, detail), processed in order
    order = 0
    for _ in range(400):
        order += 1
        events.append((rng.uniform(0, 300), order, "take", (rng.randint(1, 4), rng.randint(0, 30))))
    while events:
        events.sort(key=lambda e: (e[0], e[1]))
        when, _, what, detail = events.pop(0)
        clock.now = 1_000_000.0 + when
        if what == "take":
            need, want = detail
            grant = windows.take(KEY, need, want, lease_s)
            admitted += [clock.now] * sum(d.allowed for d in grant.decisions)
            uses = sorted(rng.uniform(0, lease_s * 0.999) for _ in range(rng.randint(0, grant.lease)))
            admitted += [clock.now + use for use in uses]
            if grant.lease - len(uses):
                order += 1
                events.append((when + lease_s, order, "release", (grant.stamp, grant.lease - len(uses))))
        else:
            windows.release(KEY, *detail)
    assert len(admitted) > limit * 3  # the run did reach the limit, several windows over
    assert _max_in_any_window(admitted, length) <= limit


def test_decided_hits_are_exact_in_order_and_count_down():
    windows = LeaseWindows(Clock())
    grant = windows.take(KEY, 25, 0, 1.0)
    assert [d.allowed for d in grant.decisions] == [True] * 20 + [False] * 5
    assert [d.remaining for d in grant.decisions[:20]] == list(range(19, -1, -1))
    assert grant.lease == 0 and grant.remaining == 0


def test_a_lease_takes_at_most_half_of_what_is_free_and_counts_in_remaining():
    clock = Clock()
    windows = LeaseWindows(clock)
    grant = windows.take(KEY, 2, 100, 1.0)
    assert grant.lease == 9  # 18 free after the two decided hits: half of it
    assert grant.remaining == 9
    assert [d.remaining for d in grant.decisions] == [19, 18]  # what this caller may still use, lease included
    assert windows.take(KEY, 0, 100, 1.0).lease == 4  # near the limit leases shrink ...
    for _ in range(3):
        windows.take(KEY, 0, 100, 1.0)
    assert windows.take(KEY, 0, 100, 1.0).lease == 0  # ... to none: the last hits are decided one by one


def test_an_unused_lease_comes_back():
    clock = Clock()
    windows = LeaseWindows(clock)
    grant = windows.take(KEY, 1, 100, 1.0)
    assert grant.lease == 9 and grant.remaining == 10
    clock.now += 1.0
    windows.release(KEY, grant.stamp, 6)  # three were used
    assert windows.take(KEY, 0, 0, 1.0).remaining == 20 - 1 - 3


def test_a_full_window_says_when_it_has_room_and_forgets_old_hits():
    clock = Clock()
    windows = LeaseWindows(clock)
    start = clock.now
    windows.take(KEY, 20, 0, 1.0)
    clock.now += 30
    refused = windows.take(KEY, 1, 0, 1.0)
    assert not refused.decisions[0].allowed and refused.reset_at == start + 60
    clock.now = start + 60  # the first hits leave the window at start + 60
    again = windows.take(KEY, 1, 0, 1.0)
    assert again.decisions[0].allowed and again.remaining == 19
    clock.now += 61
    windows.take(("1/second", "standard", "key:b"), 1, 0, 1.0)  # a take after a minute sweeps quiet keys
    assert KEY not in windows.windows


def test_leased_hits_stay_in_the_window_until_the_lease_ends():
    """A lease granted at t may be used up to t + lease_s: it leaves the window only a window's length
    after that, not after t."""
    clock = Clock()
    windows = LeaseWindows(clock)
    start = clock.now
    grant = windows.take(("2/minute", "standard", "key:c"), 0, 5, 10.0)
    assert grant.lease == 1
    clock.now = start + 65  # 60 s after the grant, but not after the lease's end
    assert windows.take(("2/minute", "standard", "key:c"), 0, 0, 1.0).remaining == 1
    clock.now = start + 70.001
    assert windows.take(("2/minute", "standard", "key:c"), 0, 0, 1.0).remaining == 2
