"""Prompt templates: the one place that turns a record into model text.

Training, inference and export all render prompts through this module, so a
fine-tuned model is always asked in exactly the form it was trained on. A job
records its ``PromptTemplate`` next to the adapter (``template.json``).

A rendered example is a list of ``Segment``s: text plus whether the loss is
computed on it. Segments are tokenized one by one (prompt, then response), which
is also how inference tokenizes the prompt before generating, so training and
inference see the same token boundaries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)

# Used for chat data when the tokenizer ships no chat template of its own.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TEMPLATE_FILE = "template.json"


class Segment(NamedTuple):
    text: str
    trainable: bool


class PromptTemplate(BaseModel):
    """How a job turns records into text; stored with the adapter as template.json."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["alpaca", "chat"]
    eos_token: str
    chat_template: str | None = None
    # Extra strings that end a response (e.g. ``<|im_end|>`` for ChatML); EOS always does.
    stop_strings: list[str] = []

    def save(self, folder: Path) -> Path:
        path = Path(folder) / TEMPLATE_FILE
        path.write_text(json.dumps(self.model_dump(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> "PromptTemplate":
        return cls.model_validate_json((Path(folder) / TEMPLATE_FILE).read_text(encoding="utf-8"))


def template_for(kind: Literal["alpaca", "chat"], tokenizer: Any) -> PromptTemplate:
    """The template a new job on ``tokenizer`` records for data of ``kind``."""
    eos = tokenizer.eos_token
    if eos is None:
        raise ValueError("The tokenizer has no EOS token; a fine-tuned model could never stop.")
    if kind == "alpaca":
        return PromptTemplate(kind="alpaca", eos_token=eos)
    chat_template = getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE
    stops = ["<|im_end|>"] if "<|im_end|>" in chat_template else []
    return PromptTemplate(kind="chat", eos_token=eos, chat_template=chat_template, stop_strings=stops)


def render_alpaca_prompt(instruction: str, input: str = "") -> str:
    """The Alpaca prompt up to (and including) the ``### Response:`` header."""
    if input and input.strip():
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA_NO_INPUT.format(instruction=instruction)


def _render_chat(template: PromptTemplate, messages: list[dict], add_generation_prompt: bool) -> str:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template.chat_template or DEFAULT_CHAT_TEMPLATE).render(
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        eos_token=template.eos_token,
        bos_token="",
    )


def render_chat_prompt(template: PromptTemplate, messages: list[dict]) -> str:
    """Conversation so far plus the assistant header: what the model continues."""
    return _render_chat(template, messages, add_generation_prompt=True)


def render_prompt(template: PromptTemplate, prompt: str, input: str = "") -> str:
    """Render a user's prompt for inference exactly as training rendered instructions."""
    if template.kind == "alpaca":
        return render_alpaca_prompt(prompt, input)
    content = prompt if not input else f"{prompt}\n\n{input}"
    return render_chat_prompt(template, [{"role": "user", "content": content}])


def render_example(template: PromptTemplate, record: dict) -> list[Segment]:
    """Turn one normalized record into segments; EOS is appended by the tokenizer step.

    Alpaca records give [prompt (masked), output (trained)]. Chat records give one
    masked segment per non-assistant stretch and one trained segment per assistant
    message (its closing tokens included, so the model learns to end its turn).
    """
    if template.kind == "alpaca":
        prompt = render_alpaca_prompt(record["instruction"], record.get("input") or "")
        return [Segment(prompt, False), Segment(record["output"], True)]
    messages = record["messages"]
    segments: list[Segment] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = _render_chat(template, messages[:i], add_generation_prompt=True)
        full = _render_chat(template, messages[: i + 1], add_generation_prompt=False)
        if not prefix.startswith(done) or not full.startswith(prefix):
            raise ValueError("The chat template does not render conversations as growing prefixes.")
        segments.append(Segment(prefix[len(done):], False))
        segments.append(Segment(full[len(prefix):], True))
        done = full
    return [s for s in segments if s.text]
