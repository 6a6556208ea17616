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
from functools import lru_cache
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

IM_END = "<|im_end|>"
TEMPLATE_FILE = "template.json"


PromptChoice = Literal["auto", "chat", "alpaca"]


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
    # A system message put first in every conversation that has none (chat templates only).
    system_prompt: str | None = None
    # The tokenizer's BOS text: chat templates get it as ``bos_token`` (as transformers and llama.cpp
    # pass it); ``add_bos``: Alpaca prompts start with it, because the tokenizer adds BOS to plain text.
    bos_token: str | None = None
    add_bos: bool = False

    def save(self, folder: Path) -> Path:
        path = Path(folder) / TEMPLATE_FILE
        path.write_text(json.dumps(self.model_dump(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> "PromptTemplate":
        return cls.model_validate_json((Path(folder) / TEMPLATE_FILE).read_text(encoding="utf-8"))


def choose_kind(choice: PromptChoice, tokenizer: Any, data_kind: Literal["instruction", "chat"] = "instruction"
                ) -> Literal["alpaca", "chat"]:
    """``auto``: the base's own chat template when it has one, else Alpaca. Chat data is always chat."""
    if data_kind == "chat":
        return "chat"
    if choice == "auto":
        return "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
    return choice


def template_for(choice: PromptChoice, tokenizer: Any, *, data_kind: Literal["instruction", "chat"] = "instruction",
                 system_prompt: str | None = None) -> PromptTemplate:
    """The template a new job (or a bare base) on ``tokenizer`` uses for data of ``data_kind``."""
    eos = tokenizer.eos_token
    if eos is None:
        raise ValueError("The tokenizer has no EOS token; a fine-tuned model could never stop.")
    kind = choose_kind(choice, tokenizer, data_kind)
    bos = getattr(tokenizer, "bos_token", None)
    if kind == "alpaca":
        if system_prompt:
            raise ValueError("system_prompt needs a chat template; the Alpaca template has no system message")
        return PromptTemplate(kind="alpaca", eos_token=eos, bos_token=bos, add_bos=_adds_bos(tokenizer))
    chat_template = getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE
    stops = [IM_END] if IM_END in chat_template and IM_END != eos else []
    return PromptTemplate(kind="chat", eos_token=eos, chat_template=chat_template, stop_strings=stops,
                          system_prompt=system_prompt or None, bos_token=bos)


def _adds_bos(tokenizer: Any) -> bool:
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos_id and len(ids) > len(tokenizer("a", add_special_tokens=False)["input_ids"])


def render_alpaca_prompt(instruction: str, input: str = "", bos: str = "") -> str:
    """The Alpaca prompt up to (and including) the ``### Response:`` header."""
    if input and input.strip():
        return bos + ALPACA_WITH_INPUT.format(instruction=instruction, input=input)
    return bos + ALPACA_NO_INPUT.format(instruction=instruction)


def _raise(message: str):
    raise ValueError(f"chat template error: {message}")


@lru_cache(maxsize=32)
def _compiled(source: str):
    """A chat template compiled once (records and turns reuse it), in the sandbox transformers uses."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise
    return env.from_string(source)


def with_system(template: PromptTemplate, messages: list[dict]) -> list[dict]:
    """``messages`` with the job's system prompt first, unless they bring their own system message."""
    if template.system_prompt and not (messages and messages[0].get("role") == "system"):
        return [{"role": "system", "content": template.system_prompt}] + list(messages)
    return list(messages)


def _render_chat(template: PromptTemplate, messages: list[dict], add_generation_prompt: bool) -> str:
    return _compiled(template.chat_template or DEFAULT_CHAT_TEMPLATE).render(
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        eos_token=template.eos_token,
        bos_token=template.bos_token or "",
    )


def render_chat_prompt(template: PromptTemplate, messages: list[dict]) -> str:
    """Conversation so far plus the assistant header: what the model continues."""
    return _render_chat(template, with_system(template, messages), add_generation_prompt=True)


def instruction_messages(instruction: str, input: str = "", output: str | None = None) -> list[dict]:
    """An instruction record as a chat: user = instruction (+ input), assistant = output."""
    content = instruction if not (input and input.strip()) else f"{instruction}\n\n{input}"
    messages = [{"role": "user", "content": content}]
    return messages + ([{"role": "assistant", "content": output}] if output is not None else [])


def render_prompt(template: PromptTemplate, prompt: str, input: str = "") -> str:
    """Render a user's prompt for inference exactly as training rendered instructions."""
    if template.kind == "alpaca":
        return render_alpaca_prompt(prompt, input, (template.bos_token or "") if template.add_bos else "")
    return render_chat_prompt(template, instruction_messages(prompt, input))


def render_example(template: PromptTemplate, record: dict) -> list[Segment]:
    """Turn one normalized record into segments; EOS is appended by the tokenizer step.

    Alpaca records give [prompt (masked), output (trained)]. With a chat
    template, an instruction record becomes a user/assistant exchange; chat
    records give one masked segment per non-assistant stretch and one trained
    segment per assistant message (its closing tokens included, so the model
    learns to end its turn); an assistant message with ``weight`` 0 is context
    only, masked like the prompt (OpenAI's chat fine-tuning format).
    """
    if template.kind == "alpaca":
        prompt = render_prompt(template, record["instruction"], record.get("input") or "")
        return [Segment(prompt, False), Segment(record["output"], True)]
    if "messages" in record:
        messages = record["messages"]
    else:
        messages = instruction_messages(record["instruction"], record.get("input") or "", record["output"])
    messages = with_system(template, messages)
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
        segments.append(Segment(full[len(prefix):], message.get("weight", 1) != 0))
        done = full
    return [s for s in segments if s.text]


@lru_cache(maxsize=32)
def _turn_ends_with_eos(chat_template: str, eos_token: str) -> bool:
    probe = PromptTemplate(kind="chat", eos_token=eos_token, chat_template=chat_template)
    marker = "sienn-probe-reply"
    reply = render_example(probe, {"messages": [{"role": "user", "content": "u"},
                                                {"role": "assistant", "content": marker}]})[-1].text
    return eos_token in reply[reply.index(marker) + len(marker):]


def needs_eos(template: PromptTemplate) -> bool:
    """Whether training appends EOS after a response: not when the chat template closes turns with EOS
    itself (SmolLM2: ``<|im_end|>``), so the model learns exactly the turn end inference stops on."""
    if template.kind == "alpaca":
        return True
    return not _turn_ends_with_eos(template.chat_template or DEFAULT_CHAT_TEMPLATE, template.eos_token)
