"""Held-out rows as the evaluation sees them: the loss example, the prompt to answer, the reference.

The prompt a model is asked to continue is the training text up to the last
trained segment, tokenized segment by segment exactly as ``data/tokenize.py``
does, so base and tuned model are asked in the form the job trained on
(whatever the template renders: Alpaca, a chat template, a system prompt).
The reference is that last trained segment without its closing stop string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data.templates import PromptTemplate, render_example
from ..data.tokenize import encode_text


@dataclass(frozen=True)
class GenerationCase:
    """One row to answer: what a person asked, the token ids the model continues, the expected answer."""

    row: int
    prompt: str
    input: str | None
    prompt_ids: list[int]
    reference: str


def cut_at_stop(text: str, stops: list[str]) -> str:
    """``text`` up to the earliest of ``stops`` (all of it when none occurs)."""
    cuts = [index for index in (text.find(stop) for stop in stops if stop) if index != -1]
    return text[:min(cuts)] if cuts else text


def stop_strings(template: PromptTemplate) -> list[str]:
    """Strings that end an answer: the template's stop strings and its EOS token."""
    return [*template.stop_strings, template.eos_token]


def shown_prompt(record: dict) -> tuple[str, str | None]:
    """(prompt, input) as a person wrote them: the instruction, or the last user message before the answer."""
    if "messages" in record:
        messages = record["messages"]
        last_answer = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
        users = [m["content"] for m in messages[:last_answer] if m["role"] == "user"]
        return (users[-1] if users else ""), None
    return record["instruction"], (record.get("input") or None)


def generation_case(tokenizer: Any, template: PromptTemplate, row: int, record: dict) -> GenerationCase:
    """The prompt ids and reference answer of one record (its last trained segment is the answer)."""
    segments = render_example(template, record)
    last = max((i for i, s in enumerate(segments) if s.trainable), default=None)
    if last is None:
        raise ValueError(f"row {row} has no answer to compare with")
    prompt_ids = [token for segment in segments[:last] for token in encode_text(tokenizer, segment.text)]
    prompt, extra = shown_prompt(record)
    reference = cut_at_stop(segments[last].text, stop_strings(template))
    return GenerationCase(row=row, prompt=prompt, input=extra, prompt_ids=prompt_ids, reference=reference)
