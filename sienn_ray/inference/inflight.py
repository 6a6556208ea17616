"""A caller's bound on its calls to the inference deployment in flight (no Ray).

Serve bounds what a caller queues (``max_queued_requests``), but it checks the
bound before the call counts itself, so a burst whose calls all arrive within
one event-loop turn passes it together: bench/api_load.py's back-pressure check
(capacity + 24 long requests at once) saw 0 or 7 refusals on the stock asyncio
loop where 24 were due. This counter is checked and taken in one step, so the
requests past the bound are refused at once, whatever the loop's order.
"""

from __future__ import annotations

import weakref

from ..errors import Overloaded

# What a refused inference call is told, by this bound and by Serve's (``deployment.overloaded``).
AT_CAPACITY = "The inference service is at capacity; retry later"


class InflightBound:
    def __init__(self, limit: int, retry_after_s: float):
        self.limit, self.retry_after_s, self.inflight = limit, retry_after_s, 0

    def take(self) -> Slot:
        """A slot for one call, or 503 (``Overloaded``) when ``limit`` calls are already in flight."""
        if self.inflight >= self.limit:
            raise Overloaded(AT_CAPACITY, retry_after=self.retry_after_s)
        self.inflight += 1
        return Slot(self)


class Slot:
    """One call's place; released once, explicitly, or when the stream holding it is collected."""

    def __init__(self, bound: InflightBound):
        self._bound: InflightBound | None = bound

    def release(self) -> None:
        if self._bound is not None:
            self._bound.inflight -= 1
            self._bound = None

    def release_with(self, owner: object) -> None:
        """Release when ``owner`` is garbage: a stream the client never read still gives its place back."""
        weakref.finalize(owner, self.release)
