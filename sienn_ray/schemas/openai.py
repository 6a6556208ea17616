"""OpenAI's request and response shapes for /v1 (completions, chat completions, models).

The request models ignore parameters they do not know, as OpenAI-compatible
servers do, and reject only known parameters whose value we cannot honour
(``n > 1``, ``logprobs``, tools, ...), so a client never silently gets something
other than what it asked for. Defaults are OpenAI's (temperature 1, top_p 1, no
top-k); the value ranges are the engine's, from ``generation.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .generation import (
    MAX_STOP_STRINGS, FinishReason, MaxNewTokens, RepetitionPenalty, Seed, StopString, Temperature, TopK, TopP,
)

StopList = Annotated[list[StopString], Field(max_length=MAX_STOP_STRINGS)]
Item = TypeVar("Item")


def unsupported(**schema) -> Any:
    """A parameter accepted by name whose only supported values ``schema`` states for the OpenAPI
    document; the model validator keeps refusing the rest with a message that names it."""
    return Field(None, json_schema_extra=schema)


class _OpenAIRequest(BaseModel):
    # Unknown parameters are ignored, as OpenAI-compatible servers do.
    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    n: int = Field(1, ge=1, le=1, description="Only 1 is supported")
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: StopString | StopList | None = None
    seed: Seed | None = None
    # Accepted and ignored: they only shape sampling, and clients send them by habit.
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    user: str | None = None
    # Extensions (vLLM spells them the same way), passed with the client's extra_body.
    top_k: TopK = 0
    repetition_penalty: RepetitionPenalty = 1.0

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def _null_is_default(cls, value, info):
        return cls.model_fields[info.field_name].default if value is None else value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str]:
        """One string or a list (each already checked by its type), as a list."""
        return [value] if isinstance(value, str) else list(value or ())

    @property
    def stop_list(self) -> list[str]:
        return list(self.stop or [])


class CompletionRequest(_OpenAIRequest):
    """POST /v1/completions: ``prompt`` is continued as-is (no template)."""

    prompt: str | list[str] = Field(json_schema_extra={"minItems": 1, "maxItems": 1})
    # OpenAI's default for completions; null means the engine's bounded default.
    max_tokens: MaxNewTokens | None = 16
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
    # Neither given: the engine's bounded default (DEFAULT_MAX_NEW_TOKENS, less if the context is shorter).
    max_tokens: MaxNewTokens | None = None
    max_completion_tokens: MaxNewTokens | None = None
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


class _Answer(BaseModel):
    """The head every completion answer and stream chunk starts with, in OpenAI's order."""

    id: str
    object: str
    created: int
    model: str


class CompletionResponse(_Answer):
    object: Literal["text_completion"] = "text_completion"
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


class ChatCompletionResponse(_Answer):
    object: Literal["chat.completion"] = "chat.completion"
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


class ChatCompletionChunk(_Answer):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class OpenAIList(BaseModel, Generic[Item]):
    """OpenAI's list envelope (``object`` "list", the items in ``data``); a paged list adds its cursors."""

    object: Literal["list"] = "list"
    data: list[Item]


class ModelList(OpenAIList[ModelCard]):
    """GET /v1/models."""
