"""A job's prompt template in the two forms other runtimes read.

Ollama reads a Go template (the Modelfile's TEMPLATE); llama.cpp reads a Jinja
chat template from the GGUF metadata. Both must produce exactly the text the
model was fine-tuned on (``sienn_ray.data.templates``), so an exported model is
asked the way it was trained. Chat templates are translated only when they are
ChatML, with or without a default system message (SmolLM2's template adds one
when a conversation has none); every translation is checked by rendering
sample conversations both ways, never assumed. A job's ``system_prompt`` goes
into the Modelfile as SYSTEM and into the GGUF's chat template.

``render_go_template`` is a small renderer for the Go template subset these
templates use (fields, ``range``, ``if``/``else``, ``{{-``/``-}}`` trimming): it checks
each translation, and lets tests show what Ollama would send to the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..data.templates import ALPACA_NO_INPUT, PromptTemplate, render_chat_prompt, with_system

ALPACA_GO = ALPACA_NO_INPUT.replace("{instruction}", "{{ .Prompt }}")
CHATML_GO = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
# ChatML whose template opens with a default system message when the conversation brings none.
# Ollama's .System joins every system message, so it is empty exactly when there is none.
_CHATML_DEFAULT_SYSTEM_GO = "{{- if .System }}{{ else }}<|im_start|>system\n%s<|im_end|>\n{{ end }}" + CHATML_GO
_DEFAULT_SYSTEM = re.compile(r"^<\|im_start\|>system\n(.*?)<\|im_end\|>\n<\|im_start\|>user\n", re.DOTALL)

# Conversations a translated chat template must render exactly like the original.
_PROBES = (
    [{"role": "user", "content": "Hi there"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c\nd"}],
)


class TemplateNotSupported(ValueError):
    """The job's prompt template has no faithful Go-template translation."""


def ollama_template(template: PromptTemplate) -> str:
    """The Modelfile TEMPLATE (Go syntax) equal to the job's prompt template."""
    if template.kind == "alpaca":
        return ALPACA_GO
    for candidate in _chatml_candidates(template):
        if all(render_chat_prompt(template, m) == render_ollama_messages(candidate, ollama_messages(template, m))
               for m in _PROBES):
            return candidate
    raise TemplateNotSupported(
        "the job's chat template is not ChatML; Ollama export supports Alpaca and ChatML templates")


def _chatml_candidates(template: PromptTemplate) -> list[str]:
    """ChatML with the default system message the template shows for a bare user turn (if any), then plain
    ChatML; the first is tried first, so the Modelfile keeps the default even when the job sets SYSTEM."""
    candidates = [CHATML_GO]
    bare = PromptTemplate(**(template.model_dump() | {"system_prompt": None}))
    match = _DEFAULT_SYSTEM.match(render_chat_prompt(bare, [{"role": "user", "content": "x"}]))
    if match and "{{" not in match.group(1) and "}}" not in match.group(1):
        candidates.insert(0, _CHATML_DEFAULT_SYSTEM_GO % match.group(1))
    return candidates


def ollama_messages(template: PromptTemplate, messages: list[dict]) -> list[dict]:
    """What Ollama puts in .Messages: a Modelfile SYSTEM (the job's system prompt) comes first when the
    conversation has no system message."""
    return with_system(template, messages)


def render_ollama_messages(go_template: str, messages: list[dict]) -> str:
    """What Ollama renders for ``messages`` (``.System`` joins the system messages, as Ollama's collate does)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    users = [m["content"] for m in messages if m["role"] == "user"]
    return render_go_template(go_template, prompt=users[-1] if users else "", system=system, messages=messages)


def gguf_chat_template(template: PromptTemplate) -> str:
    """The Jinja chat template written into the GGUF (what llama.cpp's chat API applies)."""
    if template.kind == "chat":
        if not template.system_prompt:
            return template.chat_template or ""
        # The job's system prompt, put first like sienn-ray's own inference does (templates.with_system).
        system = _jinja_str(template.system_prompt)
        return ("{% if not messages or messages[0]['role'] != 'system' %}"
                f"{{% set messages = [{{'role': 'system', 'content': {system}}}] + messages %}}"
                "{% endif %}" + (template.chat_template or ""))
    head, tail = ALPACA_NO_INPUT.split("{instruction}")
    bos = "{{ bos_token }}" if template.add_bos else ""
    return (
        bos + "{% for message in messages %}"
        "{% if message['role'] == 'user' %}"
        f"{{{{ {_jinja_str(head)} + message['content'] + {_jinja_str(tail)} }}}}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ message['content'] + eos_token }}"
        "{% endif %}"
        "{% endfor %}"
    )


def _jinja_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


# --- a Go text/template subset -------------------------------------------------------------

_ACTION = re.compile(r"\{\{(- )?\s*(.*?)\s*( -)?\}\}", re.DOTALL)
_FIELD = re.compile(r"^\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass
class _Node:
    kind: str  # "text" | "field" | "range" | "if"
    value: str = ""
    body: list["_Node"] = field(default_factory=list)
    orelse: list["_Node"] = field(default_factory=list)


def render_go_template(source: str, *, prompt: str = "", system: str = "", response: str = "",
                       messages: list[dict] | None = None) -> str:
    """Render ``source`` with Ollama's template variables (.Prompt .System .Response .Messages)."""
    root = {"Prompt": prompt, "System": system, "Response": response,
            "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages or []]}
    return _render(_parse(source), root)


def _lex(source: str) -> list[tuple[str, str]]:
    """Text and action tokens, with ``{{-`` / ``-}}`` trimming already applied to the text."""
    tokens: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for match in _ACTION.finditer(source):
        text = source[pos:match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        tokens.append(("text", text))
        tokens.append(("action", match.group(2)))
        pos, trim_next = match.end(), bool(match.group(3))
    tail = source[pos:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    return tokens


def _parse(source: str) -> list[_Node]:
    stack: list[tuple[_Node, list[_Node]]] = []
    out: list[_Node] = []
    for kind, value in _lex(source):
        if kind == "text":
            if value:
                out.append(_Node("text", value))
            continue
        word, _, arg = value.partition(" ")
        if word in ("range", "if"):
            node = _Node(word, _field_name(arg.strip()))
            out.append(node)
            stack.append((node, out))
            out = node.body
        elif word == "else":
            if not stack or stack[-1][0].kind != "if":
                raise ValueError("{{ else }} outside {{ if }}")
            out = stack[-1][0].orelse
        elif word == "end":
            if not stack:
                raise ValueError("unbalanced {{ end }}")
            _, out = stack.pop()
        else:
            out.append(_Node("field", _field_name(value)))
    if stack:
        raise ValueError(f"unclosed {{{{ {stack[-1][0].kind} }}}}")
    return out


def _field_name(expr: str) -> str:
    match = _FIELD.match(expr)
    if not match:
        raise ValueError(f"unsupported template action: {expr!r}")
    return match.group(1)


def _render(nodes: list[_Node], dot: dict) -> str:
    parts = []
    for node in nodes:
        if node.kind == "text":
            parts.append(node.value)
        elif node.kind == "field":
            parts.append(str(dot.get(node.value, "")))
        elif node.kind == "range":
            parts.extend(_render(node.body, item) for item in dot.get(node.value) or [])
        else:
            parts.append(_render(node.body if dot.get(node.value) else node.orelse, dot))
    return "".join(parts)
