"""OpenAI-compatible API: GET /v1/models, POST /v1/completions, POST /v1/chat/completions.

``model`` is a job id (a completed fine-tuned job), a fine-tuned model's OpenAI name
(``ft:<base>:<owner>:<suffix>:<id>``, or a checkpoint's ``...:ckpt-step-<n>``; see
``services/openai_models.py``) or a base model name. Chat
requests are rendered with the job's template (an alpaca job answers the last
user message as its instruction); completions continue ``prompt`` as-is, as
OpenAI's completions endpoint does. Errors on /v1 use OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``, so OpenAI clients raise
their usual exceptions; ``code`` carries our error code.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import AsyncGenerator, Callable

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ...errors import SiennError
from ...inference.adapter_files import require_adapter
from ...models.resolve import list_models
from ...paths import check_id
from ...schemas.inference_call import InferenceResult
from ...schemas.openai import (
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionRequest,
    ChatCompletionResponse, ChatDelta, CompletionChoice, CompletionRequest, CompletionResponse, ModelCard, ModelList,
    Usage,
)
from ...services import jobs as job_service
from ...services.openai_models import is_fine_tuned_name, resolve_fine_tuned
from ...services.principal import Principal
from ..deps import PrincipalDep, Services, ServicesDep
from ..openai_errors import OpenAIErrors
from ..openapi import OpenAIError, errors
from .inference import SSE_HEADERS, Target, call_for, error_data, generate, open_stream, resolve_target

MAX_LISTED_JOBS = 1000

router = APIRouter(tags=["openai"], route_class=OpenAIErrors, responses=errors(400, 404, 409, 503, model=OpenAIError))


async def _target(services: Services, principal: Principal, model: str) -> Target:
    if is_fine_tuned_name(model):
        weights = resolve_fine_tuned(services, principal, model)
        require_adapter(weights.adapter_path, model)
        return Target(model_id=weights.model_id, base_path=weights.base_path, adapter_path=weights.adapter_path,
                      tenant=weights.tenant)
    if _is_job_id(model):
        return await resolve_target(services, principal, job_id=model)
    return await resolve_target(services, principal, model_name=model)


def _is_job_id(model: str) -> bool:
    try:
        return model.startswith("job_") and bool(check_id(model, "job_id"))
    except SiennError:
        return False


@router.get("/v1/models", response_model=ModelList)
async def models(services: ServicesDep, principal: PrincipalDep):
    """Completed fine-tuned jobs and the base models, as OpenAI model objects."""
    jobs = job_service.completed_jobs(services, principal, MAX_LISTED_JOBS)
    cards = [ModelCard(id=job.job_id, created=int((job.completed_at or job.created_at).timestamp()),
                       owned_by=f"fine-tuned:{job.model_name}") for job in jobs]
    for base in await run_in_threadpool(list_models):
        cards.append(ModelCard(id=base.name, created=int(Path(base.path).stat().st_mtime), owned_by="sienn-ray"))
    return ModelList(data=cards)


def _sampling(req, max_tokens: int | None) -> dict:
    return {"max_new_tokens": max_tokens, "temperature": req.temperature, "top_p": req.top_p, "top_k": req.top_k,
            "repetition_penalty": req.repetition_penalty, "seed": req.seed, "stop": req.stop_list}


def _usage(result: InferenceResult) -> Usage:
    return Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.tokens_generated,
                 total_tokens=result.prompt_tokens + result.tokens_generated)


# With stream=true both answer server-sent events of OpenAI's chunks, ended by ``data: [DONE]``.
STREAMED = {200: {"content": {"text/event-stream": {}},
                  "description": "JSON, or with stream=true server-sent events of chunks, then data: [DONE]"}}


@router.post("/v1/completions", response_model=CompletionResponse, responses=STREAMED)
async def completions(req: CompletionRequest, services: ServicesDep, principal: PrincipalDep):
    """Continue ``prompt`` as-is (no template) with a job or a base model."""
    target = await _target(services, principal, req.model)
    call = call_for(target, kind="raw", text=req.prompt_text, **_sampling(req, req.max_tokens))
    reply_id, created = "cmpl-" + secrets.token_hex(12), int(time.time())

    def chunk(text: str, finish: str | None, usage: Usage | None = None) -> CompletionResponse:
        return CompletionResponse(id=reply_id, created=created, model=req.model, usage=usage,
                                  choices=[CompletionChoice(text=text, finish_reason=finish)])

    if not req.stream:
        result = await generate(services, target, call)
        return chunk(result.text, result.finish_reason, _usage(result))
    events = await open_stream(services, target, call)

    def render(event: dict) -> list:
        if event["type"] == "text":
            return [chunk(event["text"], None)]
        if event["type"] == "done":
            return [chunk("", event["finish_reason"], _usage(_result(event)) if _wants_usage(req) else None)]
        return []

    return _sse_response(events, render)


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse, responses=STREAMED)
async def chat_completions(req: ChatCompletionRequest, services: ServicesDep, principal: PrincipalDep):
    """Answer a conversation, rendered with the job's template (alpaca jobs: the last user message)."""
    target = await _target(services, principal, req.model)
    messages = [{"role": m.role, "content": m.text} for m in req.messages]
    call = call_for(target, kind="chat", messages=messages, **_sampling(req, req.token_limit))
    reply_id, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
    if not req.stream:
        result = await generate(services, target, call)
        return ChatCompletionResponse(
            id=reply_id, created=created, model=req.model, usage=_usage(result),
            choices=[ChatChoice(message=AssistantMessage(content=result.text), finish_reason=result.finish_reason)],
        )
    events = await open_stream(services, target, call)

    def chunk(delta: ChatDelta, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=reply_id, created=created, model=req.model,
                                   choices=[ChatChunkChoice(delta=delta, finish_reason=finish)])

    def render(event: dict) -> list:
        if event["type"] == "start":
            return [chunk(ChatDelta(role="assistant", content=""))]
        if event["type"] == "text":
            return [chunk(ChatDelta(content=event["text"]))]
        out = [chunk(ChatDelta(), event["finish_reason"])]
        if _wants_usage(req):
            out.append(ChatCompletionChunk(id=reply_id, created=created, model=req.model, choices=[],
                                           usage=_usage(_result(event))))
        return out

    return _sse_response(events, render)


def _result(event: dict) -> InferenceResult:
    return InferenceResult(**{k: v for k, v in event.items() if k != "type"})


def _wants_usage(req) -> bool:
    return bool((req.stream_options or {}).get("include_usage"))


def _sse_response(events: AsyncGenerator[dict, None], render: Callable[[dict], list]) -> StreamingResponse:
    async def body():
        try:
            async for event in events:
                for item in render(event):
                    yield f"data: {item.model_dump_json(exclude_none=False)}\n\n"
        except Exception as err:  # noqa: BLE001 - headers are sent; report in-band as OpenAI does
            data = error_data(err)
            error = {"message": data["detail"], "type": "server_error", "param": None, "code": data["error_code"]}
            yield f"data: {json.dumps({'error': error})}\n\n"
        finally:
            await events.aclose()  # also when the client went away: cancels the generation
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)
