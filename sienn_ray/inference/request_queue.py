"""The engine's bounded queue of requests waiting for a batch, and of adapters to unload: no Ray.

Bounded so that overload is answered at once (``Overloaded``: HTTP 503 with
``Retry-After``) instead of queueing without end while every waiting caller
times out. The retry hint is how long the queue ahead would take to drain at
the pace requests finished lately.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from ..errors import Overloaded
from .request import Request

MAX_RETRY_AFTER_S = 60
_PACE_WEIGHT = 0.2  # exponential moving average of request durations: recent requests count most


class RequestQueue:
    """FIFO of pending requests (at most ``max_pending``) plus adapter ids to unload; all under ``lock``."""

    def __init__(self, max_pending: int, batch_size: int, lock: threading.Condition):
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.max_pending, self._batch_size, self._lock = max_pending, batch_size, lock
        self._pending: deque[Request] = deque()
        self._unloads: set[str] = set()
        self._closed = False
        self._pace_s = 1.0  # seconds per request, until measured

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def put(self, request: Request) -> None:
        """Queue ``request``, or raise ``Overloaded`` at once when the queue is full."""
        with self._lock:
            if self._closed:
                raise RuntimeError("InferenceEngine is closed")
            if len(self._pending) >= self.max_pending:
                raise Overloaded(f"The inference queue is full ({self.max_pending} requests waiting); retry later",
                                 retry_after=self._retry_after())
            self._pending.append(request)
            self._lock.notify()

    def unload(self, adapter_id: str) -> None:
        """Ask the worker to drop an adapter once no running row uses it."""
        with self._lock:
            self._unloads.add(adapter_id)
            self._lock.notify()

    def finished(self, seconds: float) -> None:
        """Record how long a request took, for the retry hint."""
        with self._lock:
            self._pace_s += _PACE_WEIGHT * (seconds - self._pace_s)

    def wait(self) -> bool:
        """Block until there is a request or an unload; False once closed."""
        with self._lock:
            while not (self._pending or self._unloads or self._closed):
                self._lock.wait()
            return not self._closed

    def first(self) -> Request | None:
        """The oldest request, unless unloads are waiting (they go first, to free memory before loading)."""
        with self._lock:
            if self._pending and not self._unloads:
                return self._pending.popleft()
            return None

    def take(self, base_path: str, limit: int) -> list[Request]:
        """Requests on ``base_path``, oldest first, stopping at one that waits on another base."""
        taken: list[Request] = []
        with self._lock:
            while self._pending and len(taken) < limit and self._pending[0].ref.base_path == base_path:
                taken.append(self._pending.popleft())  # fairness: the other base gets its turn next
        return taken

    def unloads(self, in_use: set[str]) -> set[str]:
        """Adapter ids to unload now: those asked for that no running row uses."""
        with self._lock:
            todo = self._unloads - in_use
            self._unloads -= todo
            return todo

    def close(self) -> list[Request]:
        """Refuse new requests; returns those still waiting (the caller fails them)."""
        with self._lock:
            self._closed = True
            left = list(self._pending)
            self._pending.clear()
            self._lock.notify_all()
            return left

    def _retry_after(self) -> int:
        rounds = math.ceil(len(self._pending) / self._batch_size)
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(rounds * self._pace_s)))


__all__ = ["MAX_RETRY_AFTER_S", "RequestQueue"]
