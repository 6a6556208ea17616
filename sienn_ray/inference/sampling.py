"""How each row picks its next token and where its answer ends: plain Python, no Ray.

Every row of a batch keeps its own ``SamplingParams``, seed and stop strings,
so these work on one row's logits and text at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..data.templates import PromptTemplate
from ..errors import BadRequest


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens. ``temperature == 0`` is greedy; ``top_k == 0`` disables top-k."""

    max_new_tokens: int | None = 200  # None: until EOS or the end of the context
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        problems = []
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            problems.append("max_new_tokens must be >= 1")
        if self.temperature < 0:
            problems.append("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            problems.append("top_p must be in (0, 1]")
        if self.top_k < 0:
            problems.append("top_k must be >= 0")
        if self.repetition_penalty <= 0:
            problems.append("repetition_penalty must be > 0")
        if any(not s for s in self.stop):
            problems.append("stop strings must not be empty")
        if problems:
            raise BadRequest("Invalid sampling parameters", errors=problems)


def pick_token(logits, params: SamplingParams, seen: list[int], generator: Any) -> int:
    """Repetition penalty over ``seen``, then greedy or temperature/top-k/top-p sampling with ``generator``."""
    import torch

    if params.repetition_penalty != 1.0:
        ids = torch.tensor(sorted(set(seen)), dtype=torch.long)
        scores = logits[ids]
        logits = logits.clone()
        logits[ids] = torch.where(scores < 0, scores * params.repetition_penalty,
                                   scores / params.repetition_penalty)
    if params.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / params.temperature
    if 0 < params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if params.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= params.top_p  # keep the token that crosses top_p
        logits = logits.clone()
        logits[order[drop]] = -math.inf
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def find_stop(text: str, stops: tuple[str, ...], sent: int) -> int | None:
    """Index where the earliest stop string starts, searching only text not yet streamed."""
    found = None
    for stop in stops:
        index = text.find(stop, max(0, sent - len(stop) + 1))
        if index != -1 and (found is None or index < found):
            found = index
    return found


def safe_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` can be shown: hold back a possible stop-string prefix or a split character."""
    end = len(text)
    while end and text[end - 1] == "\ufffd":  # an incomplete UTF-8 sequence: wait for its other bytes
        end -= 1
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, end), 0, -1):
            if text.endswith(stop[:size], 0, end):
                hold = max(hold, size)
                break
    return end - hold


def single_token_ids(tokenizer, template: PromptTemplate | None) -> frozenset[int]:
    """Template stop strings that are one token (e.g. ``<|im_end|>``): stop on the id itself."""
    ids = set()
    for text in (template.stop_strings if template else []) + ([template.eos_token] if template else []):
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.add(encoded[0])
    return frozenset(ids)


__all__ = ["SamplingParams", "find_stop", "pick_token", "safe_length", "single_token_ids"]
