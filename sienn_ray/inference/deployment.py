"""The inference deployment: one Ray Serve replica around one ``InferenceEngine``.

Requests name a job by id; the API sends them with
``handle.options(multiplexed_model_id=job_id)`` so Serve routes a job to a
replica that already holds its adapter. ``@serve.multiplexed`` keeps the
per-replica LRU of adapters: when it evicts a job, the lease's ``__del__`` tells
the engine to delete that adapter from the model, so Serve's view of what a
replica holds and the engine's memory agree. Base models are not multiplexed:
every replica can load any base (it keeps ``max_bases`` of them).

Batching happens inside the engine (continuous, mixed-adapter), not with
``@serve.batch``: Serve batches per multiplexed model id, which would keep two
jobs on the same base from sharing a forward pass.

Back-pressure is bounded at both ends: a replica takes ``MAX_ONGOING_REQUESTS``
at once (a full batch plus as many waiting to join it), and each caller (the API
ingress) queues at most ``MAX_QUEUED_REQUESTS`` more; past that Serve raises
``BackPressureError`` at once, which the API answers as 503 with Retry-After
(``overloaded``). Serve checks the caller's queue before a call counts itself, so
the API ingress also bounds its own calls in flight to the sum of both numbers
(``inference/inflight.py``). These constants are the one source of both numbers:
``serve_config.yaml`` does not repeat them.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from ray import serve
from ray.serve.config import BackpressureConfig
from ray.serve.exceptions import BackPressureError

from ..errors import Overloaded
from ..schemas.inference_call import InferenceCall, InferenceResult
from .engine import InferenceEngine
from .inflight import AT_CAPACITY
from .request import Completion, ModelRef, PromptSpec, Started

DEFAULT_MAX_ADAPTERS = 8
DEFAULT_MAX_BATCH_SIZE = 16
MAX_ONGOING_REQUESTS = 2 * DEFAULT_MAX_BATCH_SIZE
MAX_QUEUED_REQUESTS = 4 * DEFAULT_MAX_BATCH_SIZE
RETRY_AFTER_S = 1.0


class _AdapterLease:
    """What ``@serve.multiplexed`` caches per job; unloading it frees the adapter in the engine."""

    def __init__(self, engine: InferenceEngine, job_id: str):
        self._engine, self.job_id, self._released = engine, job_id, False

    def __del__(self):
        # Serve calls this on LRU eviction; the garbage collector may call it again later.
        if not self._released:
            self._released = True
            self._engine.unload_adapter(self.job_id)


@serve.deployment(
    name="InferenceDeployment",
    ray_actor_options={"num_cpus": 1},
    # Above the batch size, so that concurrent requests reach the engine and are batched there.
    max_ongoing_requests=MAX_ONGOING_REQUESTS,
    max_queued_requests=MAX_QUEUED_REQUESTS,
    backpressure_config=BackpressureConfig(retry_after_s=RETRY_AFTER_S),
)
class InferenceDeployment:
    """Serve replica: base models loaded once, job adapters multiplexed, continuous batching."""

    def __init__(self, max_adapters: int = DEFAULT_MAX_ADAPTERS, max_bases: int = 2,
                 max_batch_size: int = DEFAULT_MAX_BATCH_SIZE, max_pending: int = MAX_ONGOING_REQUESTS,
                 device: str | None = None, num_threads: int | None = None):
        # Serve lets at most max_ongoing_requests into a replica, so by default the engine's own queue
        # never refuses what Serve admitted: the refusals happen at the caller, before any work.
        self.engine = InferenceEngine(max_adapters=max_adapters, max_bases=max_bases, max_batch_size=max_batch_size,
                                      max_pending=max_pending, device=device, num_threads=num_threads)

        async def lease(job_id: str) -> _AdapterLease:
            return _AdapterLease(self.engine, job_id)

        # Built here, not as a decorated method, so max_num_models_per_replica follows the constructor.
        self._lease = serve.multiplexed(max_num_models_per_replica=max_adapters)(lease)

    async def generate(self, call: dict) -> dict:
        """Generate to the end; returns an ``InferenceResult`` as a dict."""
        async for event in self._events(InferenceCall.model_validate(call), stream=False):
            if isinstance(event, Completion):
                return _result(event)
        raise RuntimeError("generation ended without a result")

    async def stream(self, call: dict) -> AsyncIterator[dict]:
        """Yield ``{"type": "start"}``, then ``{"type": "text", "text"}`` chunks, then ``{"type": "done", ...}``."""
        async for event in self._events(InferenceCall.model_validate(call), stream=True):
            if isinstance(event, Started):
                yield {"type": "start", "prompt_tokens": event.prompt_tokens}
            elif isinstance(event, Completion):
                yield {"type": "done", **_result(event)}
            else:
                yield {"type": "text", "text": event}

    def loaded(self) -> dict[str, list[str]]:
        """Base path -> job ids whose adapters this replica holds now."""
        return self.engine.loaded()

    def stats(self) -> dict:
        """Engine counters: pending, running, peak batch, cancelled requests, adapters and bases held."""
        return self.engine.stats()

    def check_health(self) -> None:
        if not self.engine.alive:
            raise RuntimeError("inference worker thread is not running")

    async def _events(self, call: InferenceCall, stream: bool):
        if call.adapter_path:
            await self._lease(call.model_id)
        ref = ModelRef(call.base_path, call.model_id if call.adapter_path else None, call.adapter_path)
        prompt = PromptSpec(kind=call.kind, text=call.text, input=call.input,
                            messages=tuple(call.messages), template=call.template)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        # The call is its own SamplingParams (InferenceCall extends it).
        ticket = self.engine.submit(ref, prompt, call, lambda e: loop.call_soon_threadsafe(events.put_nowait, e),
                                    stream=stream)
        try:
            while True:
                event = await events.get()
                if isinstance(event, BaseException):
                    raise event
                yield event
                if isinstance(event, Completion):
                    return
        finally:
            ticket.cancel()  # a client that went away stops costing decode steps


def _result(done: Completion) -> dict:
    return InferenceResult(text=done.text, finish_reason=done.finish_reason, tokens_generated=done.tokens_generated,
                           prompt_tokens=done.prompt_tokens, seconds=done.seconds).model_dump()


def overloaded(err: BackPressureError) -> Overloaded:
    """Serve's back-pressure rejection as our domain error (503 with Retry-After, in the API's format)."""
    return Overloaded(AT_CAPACITY, retry_after=err.retry_after_s or RETRY_AFTER_S)
