"""POST /api/test-model: ask a fine-tuned job (or a base model) with the template it was trained on.

The route only translates HTTP: it finds the job, checks it can answer, and
hands a plain dict to the inference deployment, routed by job id so the replica
that already holds the adapter gets it.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncGenerator

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError

from ... import paths
from ...errors import JobStateConflict, ServiceUnavailable, SiennError
from ...inference.adapter_files import require_adapter
from ...inference.deployment import MAX_ONGOING_REQUESTS, MAX_QUEUED_REQUESTS, RETRY_AFTER_S, overloaded
from ...inference.inflight import InflightBound
from ...jobs.client import unwrap_domain_error
from ...models.resolve import resolve_model
from ...schemas.inference_call import InferenceResult
from ...schemas.jobs import JobStatus
from ...schemas.test_model import TestModelRequest, TestModelResponse
from ...services.lookup import find_job
from ...services.principal import Principal
from ..deps import PrincipalDep, Services, ServicesDep
from ..openapi import errors

router = APIRouter(tags=["inference"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class Target:
    """Weights that answer a request: a base model, plus a job's adapter unless testing the base."""

    model_id: str
    base_path: str
    adapter_path: str | None = None
    tenant: str | None = None  # a job's tenant (a base model belongs to everyone)


async def resolve_target(services: Services, principal: Principal, *, job_id: str | None = None,
                         model_name: str | None = None) -> Target:
    """A completed job of the principal's tenant, or a base model by name; raises the spec's 404/409 errors."""
    if job_id is None:
        model = await run_in_threadpool(resolve_model, model_name)
        return Target(model_id=model_name or model.name, base_path=model.path)
    target = _completed.get(job_id)
    if target is None or principal.scope not in (None, target.tenant):
        target = _completed_job(services, principal, job_id)
        _completed.put(job_id, target)
    # A stat or two: cheaper inline than a thread hop, and it must be fresh on every request.
    require_adapter(target.adapter_path, job_id)
    return target


def _completed_job(services: Services, principal: Principal, job_id: str) -> Target:
    job = find_job(services, principal, job_id)
    if job.status != JobStatus.COMPLETED:
        raise JobStateConflict(f"Job {job_id} is {job.status.value}; only completed jobs can be tested",
                               job_status=job.status.value)
    adapter = Path(job.adapter_path) if job.adapter_path else paths.job_adapter(job_id)
    return Target(model_id=job_id, base_path=job.model_path, adapter_path=str(adapter), tenant=job.tenant)


class _CompletedJobs:
    """Completed jobs seen lately. Completed is terminal, so a record cannot go stale in a way that
    matters; the TTL only bounds how long a deleted job would still be found (its files are
    checked on every request regardless). Saves a database read per test-model request."""

    def __init__(self, size: int = 1024, ttl_s: float = 30.0):
        self._items: OrderedDict[str, tuple[float, Target]] = OrderedDict()
        self._size, self._ttl = size, ttl_s

    def get(self, job_id: str) -> Target | None:
        item = self._items.get(job_id)
        if item is None or time.monotonic() - item[0] > self._ttl:
            return None
        return item[1]

    def put(self, job_id: str, target: Target) -> None:
        self._items[job_id] = (time.monotonic(), target)
        self._items.move_to_end(job_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


_completed = _CompletedJobs()


def _handle(services: Services, target: Target, stream: bool = False):
    if services.inference is None:
        raise ServiceUnavailable("The inference deployment is not running")
    options: dict[str, Any] = {"stream": stream}
    if target.adapter_path:
        options["multiplexed_model_id"] = target.model_id
    return services.inference.options(**options)


# This API replica's calls to the inference deployment, bounded by what one inference replica runs
# plus what a caller may queue for it (the numbers Serve is given; see inference/inflight.py for why
# Serve's own check is not enough). Raise it with the inference deployment's max_replicas.
_inflight = InflightBound(MAX_ONGOING_REQUESTS + MAX_QUEUED_REQUESTS, RETRY_AFTER_S)


async def generate(services: Services, target: Target, call: dict) -> InferenceResult:
    """Run one call to the end on the inference deployment."""
    slot = _inflight.take()
    try:
        return InferenceResult(**await _handle(services, target).generate.remote(call))
    except RayTaskError as err:
        raise unwrap_domain_error(err) from None
    except BackPressureError as err:
        raise overloaded(err) from None
    finally:
        slot.release()


async def open_stream(services: Services, target: Target, call: dict) -> AsyncGenerator[dict, None]:
    """Start a streaming call; errors found before the first token (404, 400) raise here, not mid-stream."""
    slot = _inflight.take()
    try:
        events = _handle(services, target, stream=True).stream.remote(call)
        first = await events.__anext__()
    except RayTaskError as err:
        slot.release()
        raise unwrap_domain_error(err) from None
    except BackPressureError as err:
        slot.release()
        raise overloaded(err) from None
    except BaseException:
        slot.release()
        raise

    async def rest() -> AsyncGenerator[dict, None]:
        try:
            yield first
            async for event in events:
                yield event
        except RayTaskError as err:
            raise unwrap_domain_error(err) from None
        finally:
            events.cancel()  # the HTTP client left: stop generating for it
            slot.release()

    stream = rest()
    slot.release_with(stream)  # a stream nobody reads (its client left first) gives its place back too
    return stream


def call_for(target: Target, **fields) -> dict:
    """The plain dict the deployment validates as ``InferenceCall``."""
    return {"model_id": target.model_id, "base_path": target.base_path, "adapter_path": target.adapter_path, **fields}


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def error_data(err: Exception) -> dict:
    if isinstance(err, SiennError):
        return {"detail": err.detail, "error_code": err.error_code}
    return {"detail": f"Internal server error: {type(err).__name__}", "error_code": "INTERNAL_ERROR"}


@router.post(
    "/api/test-model",
    response_model=TestModelResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "JSON, or with stream=true server-sent events: `token` events "
                                    "({text}), then one `done` event with the JSON response's fields"},
               **errors(400, 404, 409, 503)},
)
async def test_model(req: TestModelRequest, services: ServicesDep, principal: PrincipalDep):
    """Generate a continuation of a prompt with a fine-tuned job (or a base model)."""
    target = await resolve_target(services, principal, job_id=req.job_id, model_name=req.model_name)
    call = call_for(
        target,
        kind="raw" if req.template == "raw" else "instruction",
        template=None if req.template == "raw" else req.template,
        text=req.prompt, input=req.input, max_new_tokens=req.max_length, temperature=req.temperature,
        top_p=req.top_p, top_k=req.top_k, repetition_penalty=req.repetition_penalty, seed=req.seed, stop=req.stop,
    )
    if not req.stream:
        return _response(req, target, await generate(services, target, call))
    events = await open_stream(services, target, call)
    return StreamingResponse(_test_model_events(req, target, events), media_type="text/event-stream",
                             headers=SSE_HEADERS)


async def _test_model_events(req: TestModelRequest, target: Target, events: AsyncGenerator[dict, None]):
    try:
        async for event in events:
            if event["type"] == "text":
                yield sse("token", {"text": event["text"]})
            elif event["type"] == "done":
                result = InferenceResult(**{k: v for k, v in event.items() if k != "type"})
                yield sse("done", _response(req, target, result).model_dump())
    except Exception as err:  # noqa: BLE001 - the status line is sent already; report in-band
        yield sse("error", error_data(err))
    finally:
        await events.aclose()  # also when the client went away: cancels the generation


def _response(req: TestModelRequest, target: Target, result: InferenceResult) -> TestModelResponse:
    return TestModelResponse(
        generated_text=result.text, prompt=req.prompt, model_id=target.model_id,
        inference_time=round(result.seconds, 4), tokens_generated=result.tokens_generated,
        finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
    )
