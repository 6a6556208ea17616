"""Rank 0's progress reports to the job registry: throttled, fire and forget, never fatal.

Calls are ``.remote()`` without waiting. The answer of ``report_progress``
(``{"cancel_requested": bool}``) is read only once it has arrived, at the next
report, so training never blocks on the registry. A registry that is down or
restarting costs a logged warning, not the job: the actor restarts by itself and
the next report reaches it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 2.0
LOOKUP_RETRY_S = 5.0
PENDING = object()


def ray_poll(ref: Any) -> Any:
    """The value of ``ref`` if it has arrived, else ``PENDING`` (never blocks)."""
    import ray

    ready, _ = ray.wait([ref], timeout=0)
    return ray.get(ready[0]) if ready else PENDING


def ray_registry_lookup(name: str, namespace: str | None) -> Callable[[], Any]:
    def lookup():
        import ray

        return ray.get_actor(name, namespace=namespace)

    return lookup


class ProgressReporter:
    """Sends progress, loss points and events for one job to the registry actor.

    ``lookup`` returns the registry handle (retried while it fails); ``poll``
    returns a call's result once available or ``PENDING``. Both are injected so
    the throttling is tested without Ray.
    """

    def __init__(self, lookup: Callable[[], Any], job_id: str, *, token: int | None = None,
                 min_interval_s: float = MIN_INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 poll: Callable[[Any], Any] = ray_poll):
        self._lookup = lookup
        self.job_id = job_id
        self.token = token  # the runner's lease: the registry refuses reports with an older one
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._poll = poll
        self._handle = None
        self._next_lookup = 0.0
        self._last_report: float | None = None
        self._pending_answer = None
        self._ticked = False
        self.cancel_requested = False

    def due(self) -> bool:
        """Whether a throttled report would be sent now (at most one per ``min_interval_s``)."""
        return self._last_report is None or self._clock() - self._last_report >= self.min_interval_s

    def tick(self, build: Callable[[], tuple[dict, dict | None]]) -> bool:
        """Once per optimizer step: report ``build()`` = (update, loss point) if due. True if sent.

        The first step is always reported, so a job shows it is training as soon as it is.
        """
        self._read_answer()
        if self._ticked and not self.due():
            return False
        self._ticked = True
        update, point = build()
        self.report(update, point)
        return True

    def report(self, update: dict, point: dict | None = None) -> None:
        """Send a progress update (and a loss point) now, whatever the throttle says."""
        self._read_answer()
        self._last_report = self._clock()
        ref = self._call("report_progress", update)
        if ref is not None:
            self._pending_answer = ref
        if point is not None:
            self._journal("loss_point", point, self._call("add_loss_point", point))

    def event(self, type: str, data: dict | None = None) -> None:
        data = data or {}
        self._journal(type, data, self._call("add_event", type, data))

    def _journal(self, kind: str, data: dict, ref) -> None:
        """One log line per loss point and event, sent or dropped: the trainer's own record of what it
        told the registry (tests/chaos compares the stored history with it)."""
        entry = {"job_id": self.job_id, "kind": kind, "step": data.get("step"), "epoch": data.get("epoch")}
        log.info("registry report %s: %s", "sent" if ref is not None else "dropped", json.dumps(entry))

    def _handle_or_none(self):
        if self._handle is None and self._clock() >= self._next_lookup:
            try:
                self._handle = self._lookup()
            except Exception as err:  # noqa: BLE001 - registry not there (yet): try again later
                self._next_lookup = self._clock() + LOOKUP_RETRY_S
                log.warning("job registry not reachable (%s); training continues", err)
        return self._handle

    def _call(self, method: str, *args):
        handle = self._handle_or_none()
        if handle is None:
            return None
        try:
            return getattr(handle, method).remote(self.job_id, *args, self.token)
        except Exception as err:  # noqa: BLE001 - a dead handle: look the actor up again next time
            log.warning("job registry call %s failed (%s); training continues", method, err)
            self._handle = None
            return None

    def _read_answer(self) -> None:
        if self._pending_answer is None:
            return
        try:
            answer = self._poll(self._pending_answer)
        except Exception as err:  # noqa: BLE001 - the registry died while answering
            log.warning("job registry answer lost (%s)", err)
            self._pending_answer = None
            return
        if answer is PENDING:
            return
        self._pending_answer = None
        if isinstance(answer, dict) and answer.get("cancel_requested"):
            if answer.get("fenced"):
                log.warning("job %s: lease %s is no longer current; this trainer stops", self.job_id, self.token)
            self.cancel_requested = True


class NullReporter:
    """What ranks other than 0 use: reports nothing, never asks to cancel."""

    cancel_requested = False

    def due(self) -> bool:
        return False

    def tick(self, build) -> bool:
        return False

    def report(self, update: dict, point: dict | None = None) -> None:
        pass

    def event(self, type: str, data: dict | None = None) -> None:
        pass
