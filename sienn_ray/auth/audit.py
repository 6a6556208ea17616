"""The audit trail's entries and their writer: batched, off the request path, through the registry.

Chosen: asynchronous. A state-changing request's entry is queued when its
answer starts and written by a background task within ``flush_s`` (one
registry call per batch), so requests never wait on it. A batch the registry
refuses (restarting) is kept and sent again; an entry is lost only if the API
process dies before its batch is written, or if more than ``max_pending``
entries wait (then the oldest are dropped and the drop is logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from ..schemas.auth import AuditEntry

log = logging.getLogger("sienn_ray.audit")

# Fields of an answer that name the resource it created or acted on, in order of preference.
ID_FIELDS = ("job_id", "export_id", "dataset_id", "file_id", "id")


def target_id(path_params: dict, body: bytes | None) -> str | None:
    """The resource acted on: an id in the path, else the id the JSON answer names."""
    for name in ID_FIELDS:
        if isinstance(path_params.get(name), str):
            return path_params[name]
    for value in path_params.values():
        if isinstance(value, str):
            return value
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        for name in ID_FIELDS:
            if isinstance(data.get(name), str):
                return data[name]
    return None


class AuditWriter:
    def __init__(self, write: Callable[[list[AuditEntry]], Awaitable[object]], flush_s: float = 0.25,
                 max_batch: int = 500, max_pending: int = 10_000):
        self._write, self.flush_s, self.max_batch, self.max_pending = write, flush_s, max_batch, max_pending
        self._pending: deque[AuditEntry] = deque()
        self._task: asyncio.Task | None = None
        self.dropped = 0

    def record(self, entry: AuditEntry) -> None:
        """Queue an entry (call from the event loop); the background task writes it."""
        self._pending.append(entry)
        while len(self._pending) > self.max_pending:
            self._pending.popleft()
            self.dropped += 1
            log.warning("audit: %d entries dropped (the registry has not taken them)", self.dropped)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        """Write what waits now, a batch at a time; a failed batch stays queued."""
        while self._pending:
            batch = [self._pending[i] for i in range(min(self.max_batch, len(self._pending)))]
            await self._write(batch)
            for _ in batch:
                self._pending.popleft()

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(self.flush_s)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the registry may be restarting: keep the entries, try again
                log.warning("audit: writing %d entries failed; retrying", len(self._pending), exc_info=True)
