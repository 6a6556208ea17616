"""Rate limits per route class: ``SIENN_RATE_LIMITS``, and a moving-window limiter on the ``limits`` library.

Every request of a class counts against its caller's window (the API key, or
the client address with auth off). ``WindowLimiter`` works over any ``limits``
storage named by URI (``SIENN_RATE_LIMIT_STORAGE``, e.g. ``redis://...``); by
default the named Ray actor of ``api/rate_limit_store.py`` holds the windows
(``rate_leases.LeaseWindows``) for every API replica.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..settings import DEFAULT_RATE_LIMITS

CLASSES = ("standard", "training", "inference")


def parse_rate_limits(text: str) -> dict[str, str] | None:
    """``standard=100/minute,training=10/minute,inference=50/minute`` -> {class: limit}; ``off`` -> None.
    A class left out keeps its default."""
    if text.strip().lower() == "off":
        return None
    out = dict(part.split("=", 1) for part in DEFAULT_RATE_LIMITS.split(","))
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, spec = (s.strip() for s in part.partition("="))
        if not sep or name not in CLASSES:
            raise ValueError(f"SIENN_RATE_LIMITS: {part!r} is not <class>=<limit> with a class in {CLASSES}")
        parse(spec)  # raises ValueError naming what it cannot read
        out[name] = spec
    return out


@dataclass(frozen=True)
class Decision:
    """One request counted: whether it may go on, and the window's state for the headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # Unix time when the window has room again

    def headers(self, now: float | None = None) -> dict[str, str]:
        """``X-RateLimit-Limit/-Remaining/-Reset`` (Reset in Unix seconds), plus ``Retry-After`` when refused."""
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(self.remaining, 0)),
               "X-RateLimit-Reset": str(math.ceil(self.reset_at))}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after(now))
        return out

    def retry_after(self, now: float | None = None) -> int:
        return max(1, math.ceil(self.reset_at - (time.time() if now is None else now)))

    def to_dict(self) -> dict:
        return asdict(self)


class WindowLimiter:
    """Moving windows over one ``limits`` storage, one per (limit, class, caller). The limit travels with
    each hit, so API processes configured differently share one storage without mixing their counts."""

    def __init__(self, storage: Storage | None = None):
        self.strategy = MovingWindowRateLimiter(storage or MemoryStorage())

    @classmethod
    def from_uri(cls, uri: str) -> WindowLimiter:
        return cls(storage_from_string(uri))

    def hit(self, spec: str, limit_class: str, caller: str) -> Decision:
        item = rate_limit_item(spec)
        allowed = self.strategy.hit(item, limit_class, caller)
        stats = self.strategy.get_window_stats(item, limit_class, caller)
        return Decision(allowed, item.amount, stats.remaining, stats.reset_time)


@lru_cache(maxsize=64)
def rate_limit_item(spec: str) -> RateLimitItem:
    """``100/minute`` parsed once: its amount and window length."""
    return parse(spec)
