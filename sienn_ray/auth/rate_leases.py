"""Moving windows that can lease hits to an API replica, so a busy caller costs the shared counters a
call a second instead of a call a request; the limit still holds exactly.

A take decides the hits waiting now, in order, and may also reserve a *lease*: hits the replica admits on
its own for the next ``lease_s`` seconds. Every leased hit is stamped at the lease's end, the latest
moment the replica may use it, so it stays in the window at least as long as a hit counted when it was
really used: in any window of the limit's length the admitted hits, leased or not, never pass the limit.
What a lease leaves unused comes back (``release``); until then it only holds others back, never lets
more through.

Written here rather than on ``limits``' moving window: that one stamps each entry with the time of the
call and cannot reserve for a later stamp, nor hand back a reservation.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Callable

from .rate_limits import Decision, rate_limit_item

# A lease never takes more than this share of what is free, so another replica (or the same caller on
# another route class) near the limit still finds room, and the last hits before the limit are exact.
LEASE_SHARE = 0.5
# Sweep windows of callers gone quiet at most this often (each take prunes its own window).
SWEEP_EVERY_S = 60.0

Key = tuple[str, str, str]  # (limit spec, limit class, caller)


@dataclass(frozen=True)
class Grant:
    """One take: a decision per waiting hit (in order), and the lease reserved beside them."""

    decisions: list[Decision]
    lease: int  # hits the replica may admit itself until lease_s after it asked
    stamp: float  # the lease's stamp, to hand back what it leaves unused
    limit: int
    remaining: int  # free in the window after the decided hits and the lease
    reset_at: float  # Unix time when the window has room again

    def to_dict(self) -> dict:
        return {"decisions": [d.to_dict() for d in self.decisions], "lease": self.lease, "stamp": self.stamp,
                "limit": self.limit, "remaining": self.remaining, "reset_at": self.reset_at}

    @classmethod
    def from_dict(cls, data: dict) -> Grant:
        return cls(**(data | {"decisions": [Decision(**d) for d in data["decisions"]]}))


@dataclass
class _Window:
    """Stamps (sorted) with a count each; ``total`` is their sum."""

    stamps: list[float] = field(default_factory=list)
    counts: dict[float, int] = field(default_factory=dict)
    total: int = 0

    def add(self, stamp: float, count: int) -> None:
        if stamp not in self.counts:
            insort(self.stamps, stamp)
            self.counts[stamp] = 0
        self.counts[stamp] += count
        self.total += count

    def remove(self, stamp: float, count: int) -> None:
        held = self.counts.get(stamp, 0)
        count = min(count, held)  # a stamp already out of the window holds nothing to hand back
        if count == 0:
            return
        self.total -= count
        if held == count:
            del self.counts[stamp]
            del self.stamps[bisect_left(self.stamps, stamp)]
        else:
            self.counts[stamp] = held - count

    def prune(self, horizon: float) -> None:
        """Forget stamps at or before ``horizon`` (they left the window)."""
        cut = 0
        while cut < len(self.stamps) and self.stamps[cut] <= horizon:
            self.total -= self.counts.pop(self.stamps[cut])
            cut += 1
        del self.stamps[:cut]


class LeaseWindows:
    """The counters behind every API replica's limiter: one moving window per (spec, class, caller)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.windows: dict[Key, _Window] = {}
        self._swept_at = clock()

    def take(self, key: Key, need: int, lease: int, lease_s: float) -> Grant:
        """Decide ``need`` hits now, in order, and reserve up to ``lease`` more for ``lease_s`` seconds."""
        item = rate_limit_item(key[0])
        limit, length = item.amount, item.get_expiry()
        now = self.clock()
        self._sweep(now)
        window = self.windows.setdefault(key, _Window())
        window.prune(now - length)
        admitted = min(need, max(limit - window.total, 0))
        if admitted:
            window.add(now, admitted)
        free = max(limit - window.total, 0)
        leased = min(lease, math.floor(free * LEASE_SHARE)) if lease > 0 else 0
        stamp = now + lease_s
        if leased:
            window.add(stamp, leased)
        free -= leased
        reset_at = (window.stamps[0] + length) if window.stamps else now
        decisions = [Decision(True, limit, free + admitted - 1 - i + leased, reset_at) for i in range(admitted)]
        decisions += [Decision(False, limit, 0, reset_at)] * (need - admitted)
        if not window.total:
            del self.windows[key]
        return Grant(decisions, leased, stamp, limit, free, reset_at)

    def release(self, key: Key, stamp: float, count: int) -> None:
        """Hand back ``count`` unused hits of the lease stamped ``stamp``."""
        window = self.windows.get(key)
        if window is not None:
            window.remove(stamp, count)
            if not window.total:
                del self.windows[key]

    def _sweep(self, now: float) -> None:
        if now - self._swept_at < SWEEP_EVERY_S:
            return
        self._swept_at = now
        for key in list(self.windows):
            window = self.windows[key]
            window.prune(now - rate_limit_item(key[0]).get_expiry())
            if not window.total:
                del self.windows[key]
