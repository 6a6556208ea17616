"""How text is generated: the sampling parameters, their limits and defaults, and why generation ended.

The one home of every sampling rule. ``SamplingParams`` carries our defaults;
the request schemas (test-model, ``/v1``, the deployment call) reuse these
constrained types, so a value one of them accepts is a value the engine can
sample with, and nothing validates it a second time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_NEW_TOKENS = 4096
# What a request that names no limit gets (a ``/v1`` chat without max_tokens, or max_tokens null);
# the engine lowers it further to what fits in the model's context after the prompt.
DEFAULT_MAX_NEW_TOKENS = 512
MAX_PROMPT_CHARS = 200_000
MAX_STOP_STRINGS = 8
MAX_STOP_CHARS = 256
MAX_TOP_K = 100_000
# Seeds up to JSON's largest exact integer, so every client (and every JSON Schema validator) agrees.
MAX_SEED = 2**53 - 1

FinishReason = Literal["stop", "length"]


MaxNewTokens = Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS)]
Temperature = Annotated[float, Field(ge=0, le=2, description="0 means greedy")]
TopP = Annotated[float, Field(gt=0, le=1)]
TopK = Annotated[int, Field(ge=0, le=MAX_TOP_K, description="0 disables top-k")]
RepetitionPenalty = Annotated[float, Field(gt=0, le=10)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="Same seed and parameters, same text")]
# The limits live in the types alone: pydantic checks them, and the OpenAPI document states them.
StopString = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]
StopStrings = Annotated[tuple[StopString, ...],
                        Field(max_length=MAX_STOP_STRINGS, description="Strings that end the answer (excluded from it)")]


class SamplingParams(BaseModel):
    """How to pick tokens, with our defaults. ``max_new_tokens`` None: ``DEFAULT_MAX_NEW_TOKENS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: MaxNewTokens | None = 200
    temperature: Temperature = 0.7
    top_p: TopP = 0.9
    top_k: TopK = 50
    repetition_penalty: RepetitionPenalty = 1.0
    seed: Seed | None = None
    stop: StopStrings = ()


DEFAULTS = SamplingParams()

__all__ = ["DEFAULTS", "DEFAULT_MAX_NEW_TOKENS", "FinishReason", "MAX_NEW_TOKENS", "MAX_PROMPT_CHARS",
           "MaxNewTokens", "RepetitionPenalty", "SamplingParams", "Seed", "StopString", "StopStrings", "Temperature", "TopK",
           "TopP"]
