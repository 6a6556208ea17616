"""POST /api/test-model: the spec's request and response (ours, so strict: a typo fails loudly)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import Strict
from .generation import (
    DEFAULTS, MAX_PROMPT_CHARS, FinishReason, MaxNewTokens, RepetitionPenalty, Seed, StopStrings, Temperature, TopK,
    TopP,
)


class TestModelRequest(Strict):
    """The spec's fields plus input, seed, repetition_penalty, stop, stream, model_name and template."""

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
    max_length: MaxNewTokens = Field(DEFAULTS.max_new_tokens, description="Maximum NEW tokens to generate")
    temperature: Temperature = DEFAULTS.temperature
    top_p: TopP = DEFAULTS.top_p
    top_k: TopK = DEFAULTS.top_k
    repetition_penalty: RepetitionPenalty = DEFAULTS.repetition_penalty
    seed: Seed | None = DEFAULTS.seed
    stop: StopStrings = DEFAULTS.stop
    stream: bool = Field(False, description="Server-sent events: token chunks, then the full response")
    template: Literal["alpaca", "chat", "raw"] | None = Field(
        None, description="Base models only: how to render the prompt (default alpaca, like a job's)"
    )

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
