"""Inference schemas: our test-model endpoint, the call into the Serve deployment, and OpenAI's shapes.

``TestModelRequest`` is ours, so it is strict (a typo fails loudly). The OpenAI
request models ignore parameters they do not know, as OpenAI-compatible servers
do, and reject only known parameters whose value we cannot honour (``n > 1``,
``logprobs``, tools, ...), so a client never silently gets something other than
what it asked for.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .common import Strict

MAX_NEW_TOKENS = 4096
MAX_PROMPT_CHARS = 200_000
MAX_STOP_STRINGS = 8
# Seeds up to JSON's largest exact integer, so every client (and every JSON Schema validator) agrees.
MAX_SEED = 2**53 - 1


def unsupported(**schema) -> Any:
    """A parameter accepted by name whose only supported values ``schema`` states for the OpenAPI
    document; the model validator keeps refusing the rest with a message that names it."""
    return Field(None, json_schema_extra=schema)

FinishReason = Literal["stop", "length"]
StopString = Annotated[str, Field(min_length=1, max_length=256)]
StopList = Annotated[list[StopString], Field(max_length=MAX_STOP_STRINGS)]


def _check_stops(stops: list[str]) -> list[str]:
    if len(stops) > MAX_STOP_STRINGS:
        raise ValueError(f"at most {MAX_STOP_STRINGS} stop strings")
    if any(not s for s in stops):
        raise ValueError("stop strings must not be empty")
    if any(len(s) > 256 for s in stops):
        raise ValueError("stop strings must be at most 256 characters")
    return stops


class TestModelRequest(Strict):
    """POST /api/test-model: the spec's fields plus input, seed, repetition_penalty, stop, stream, model_name."""

    # The one-target rule of ``_one_target``, in the OpenAPI schema too (a null counts as absent).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["job_id"], "properties": {"job_id": {"type": "string"}, "model_name": {"type": "null"},
                                                "template": {"type": "null"}}},
        {"required": ["model_name"], "properties": {"model_name": {"type": "string"}, "job_id": {"type": "null"}}},
    ]})
    job_id: str | None = Field(None, description="A completed fine-tuning job (its adapter and template answer)")
    model_name: str | None = Field(None, description="Beyond the spec: test a base model instead of a job")
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT_CHARS, description="The instruction")
    input: str = Field("", max_length=MAX_PROMPT_CHARS, description="The instruction's input field (alpaca)")
    max_length: int = Field(200, ge=1, le=MAX_NEW_TOKENS, description="Maximum NEW tokens to generate")
    temperature: float = Field(0.7, ge=0, le=2, description="0 means greedy")
    top_p: float = Field(0.9, gt=0, le=1)
    top_k: int = Field(50, ge=0, le=100_000, description="0 disables top-k")
    repetition_penalty: float = Field(1.0, gt=0, le=10)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Same seed and parameters, same text")
    stop: StopList = Field(default_factory=list, description="Strings that end the answer (excluded from it)")
    stream: bool = Field(False, description="Server-sent events: token chunks, then the full response")
    template: Literal["alpaca", "chat", "raw"] | None = Field(
        None, description="Base models only: how to render the prompt (default alpaca, like a job's)"
    )

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: list[str]) -> list[str]:
        return _check_stops(value)

    @model_validator(mode="after")
    def _one_target(self):
        if (self.job_id is None) == (self.model_name is None):
            raise ValueError("give exactly one of job_id (a fine-tuned job) or model_name (a base model)")
        if self.template is not None and self.job_id is not None:
            raise ValueError("template applies to model_name only; a job always uses the template it was trained with")
        return self


class TestModelResponse(BaseModel):
    generated_text: str
    prompt: str
    model_id: str
    inference_time: float = Field(description="Seconds from queueing to the last token")
    tokens_generated: int
    finish_reason: FinishReason
    prompt_tokens: int


class InferenceCall(Strict):
    """What the API sends the inference deployment (a plain dict over Ray, validated again here)."""

    model_id: str
    base_path: str
    adapter_path: str | None = None
    kind: Literal["instruction", "chat", "raw"] = "instruction"
    text: str = ""
    input: str = ""
    messages: list[dict[str, str]] = []
    template: Literal["alpaca", "chat"] | None = None
    max_new_tokens: int | None = 200
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: list[str] = []


class InferenceResult(BaseModel):
    """What the deployment answers (and the last event of a stream)."""

    text: str
    finish_reason: FinishReason
    tokens_generated: int
    prompt_tokens: int
    seconds: float


# ---- OpenAI-compatible ------------------------------------------------------------------


class _OpenAIRequest(BaseModel):
    # Unknown parameters are ignored, as OpenAI-compatible servers do.
    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=1, description="Only 1 is supported")
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: StopString | StopList | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    # Accepted and ignored: they only shape sampling, and clients send them by habit.
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    user: str | None = None
    # Extensions (vLLM spells them the same way), passed with the client's extra_body.
    top_k: int = Field(0, ge=0, le=100_000)
    repetition_penalty: float = Field(1.0, gt=0, le=10)

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def _null_is_default(cls, value, info):
        return {"temperature": 1.0, "top_p": 1.0}[info.field_name] if value is None else value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None):
        return _check_stops([value] if isinstance(value, str) else list(value or []))

    @property
    def stop_list(self) -> list[str]:
        return list(self.stop or [])


class CompletionRequest(_OpenAIRequest):
    """POST /v1/completions: ``prompt`` is continued as-is (no template)."""

    prompt: str | list[str] = Field(json_schema_extra={"minItems": 1, "maxItems": 1})
    max_tokens: int | None = Field(16, ge=1, le=MAX_NEW_TOKENS)
    echo: bool = Field(False, json_schema_extra={"enum": [False]})
    logprobs: int | None = unsupported(type="null")
    best_of: int | None = unsupported(enum=[1, None])
    suffix: str | None = unsupported(enum=["", None])

    @model_validator(mode="after")
    def _supported(self):
        problems = []
        if isinstance(self.prompt, list) and len(self.prompt) != 1:
            problems.append("prompt: exactly one prompt per request is supported")
        if self.echo:
            problems.append("echo is not supported")
        if self.logprobs is not None:
            problems.append("logprobs is not supported")
        if self.best_of not in (None, 1):
            problems.append("best_of must be 1")
        if self.suffix:
            problems.append("suffix is not supported")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = Field(None, json_schema_extra={
        "items": {"required": ["type"], "properties": {"type": {"const": "text"}}}})

    @property
    def text(self) -> str:
        """Text content; a list of parts is joined (only text parts are supported)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.get("type") != "text":
                raise ValueError(f"message content part of type {part.get('type')!r} is not supported")
            parts.append(str(part.get("text", "")))
        return "".join(parts)


class ChatCompletionRequest(_OpenAIRequest):
    """POST /v1/chat/completions: rendered with the job's template."""

    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    logprobs: bool | None = unsupported(enum=[False, None])
    top_logprobs: int | None = unsupported(enum=[0, None])
    tools: list[Any] | None = unsupported(maxItems=0)
    functions: list[Any] | None = unsupported(maxItems=0)
    response_format: dict[str, Any] | None = unsupported(properties={"type": {"const": "text"}})

    @model_validator(mode="after")
    def _supported(self):
        problems = []
        if self.logprobs or self.top_logprobs:
            problems.append("logprobs is not supported")
        if self.tools or self.functions:
            problems.append("tools/functions are not supported")
        if self.response_format and self.response_format.get("type", "text") != "text":
            problems.append("response_format other than text is not supported")
        try:
            for message in self.messages:
                _ = message.text
        except ValueError as err:
            problems.append(str(err))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: FinishReason | None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    logprobs: None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
