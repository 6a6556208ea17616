"""What a caller hands the inference engine and what it gets back: plain Python, no Ray.

A request names its weights (``ModelRef``), what was asked (``PromptSpec``) and
how to sample; the engine answers through an ``Emit`` callback with ``Started``,
text chunks when streaming, then one ``Completion`` or an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Literal

from ..data.templates import PromptTemplate, render_chat_prompt, render_prompt
from ..errors import BadRequest
from ..schemas.generation import FinishReason, SamplingParams


@dataclass(frozen=True)
class ModelRef:
    """Which weights answer: a base model directory, optionally with one job's adapter."""

    base_path: str
    adapter_id: str | None = None
    adapter_path: str | None = None


@dataclass(frozen=True)
class PromptSpec:
    """What the user asked, before rendering.

    ``instruction``: ``text``/``input`` rendered with the template (the job's, or
    ``template`` for a bare base model). ``chat``: ``messages`` rendered as a
    conversation. ``raw``: ``text`` is continued as-is.
    """

    kind: Literal["instruction", "chat", "raw"] = "instruction"
    text: str = ""
    input: str = ""
    messages: tuple[dict, ...] = ()
    template: Literal["alpaca", "chat"] | None = None

    def render(self, template: PromptTemplate | None) -> str:
        """The text the model sees, rendered as training rendered it (``template`` None: as-is)."""
        if template is None or self.kind == "raw":
            return self.text
        if self.kind == "instruction":
            return render_prompt(template, self.text, self.input)
        messages = [dict(m) for m in self.messages]
        if template.kind == "chat":
            return render_chat_prompt(template, messages)
        # An alpaca-trained job knows one turn: the last user message is its instruction.
        users = [m["content"] for m in messages if m.get("role") == "user"]
        if not users:
            raise BadRequest("The conversation has no user message")
        return render_prompt(template, users[-1])


@dataclass(frozen=True)
class Started:
    """First event of a request: it was admitted (adapter loaded, prompt fits)."""

    prompt_tokens: int


@dataclass(frozen=True)
class Completion:
    """Last event of a request."""

    text: str
    finish_reason: FinishReason
    tokens_generated: int
    prompt_tokens: int
    seconds: float


Event = Started | str | Completion | BaseException
Emit = Callable[[Event], None]


class Ticket:
    """Handle on a submitted request; ``cancel()`` drops it at the next decode step."""

    def __init__(self):
        self.cancelled = False

    def cancel(self) -> None:
        """Ask the worker to drop this request; safe from any thread."""
        self.cancelled = True


@dataclass
class Request:
    """A submitted request as the engine queues it."""

    ref: ModelRef
    prompt: PromptSpec
    params: SamplingParams
    emit: Emit
    stream: bool
    ticket: Ticket
    submitted: float = field(default_factory=time.perf_counter)


__all__ = ["Completion", "Emit", "Event", "ModelRef", "PromptSpec", "Request", "Started", "Ticket"]
