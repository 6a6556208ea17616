"""What the API sends the inference deployment and what it answers (plain dicts over Ray, validated on arrival)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from .generation import FinishReason, SamplingParams


class InferenceCall(SamplingParams):
    """One generation: the weights, the prompt before rendering, and (inherited) how to sample."""

    model_id: str
    base_path: str
    adapter_path: str | None = None
    kind: Literal["instruction", "chat", "raw"] = "instruction"
    text: str = ""
    input: str = ""
    messages: tuple[dict[str, str], ...] = ()
    template: Literal["alpaca", "chat"] | None = None


class InferenceResult(BaseModel):
    """What the deployment answers (and the last event of a stream)."""

    text: str
    finish_reason: FinishReason
    tokens_generated: int
    prompt_tokens: int
    seconds: float
