"""Ollama Modelfiles: write one for an exported GGUF, and read its TEMPLATE back.

The Modelfile points at the GGUF beside it with a relative ``FROM ./file.gguf``
(Ollama silently tries to pull a name that is not an existing file), carries the
job's prompt template as TEMPLATE (its system prompt as SYSTEM), and stops on
the EOS text and every other stop string. There is never an ADAPTER line: the
LoRA is merged into the GGUF.
"""

from __future__ import annotations

import re

from ..data.templates import PromptTemplate
from .prompt_formats import ollama_template, render_ollama_prompt

# Ollama's default context is small; the model's own length, capped, fits most machines.
MAX_NUM_CTX = 4096


def build_modelfile(gguf_name: str, template: PromptTemplate, context_length: int, *, title: str = "") -> str:
    """The Modelfile text for ``gguf_name`` (a file in the same folder)."""
    if "/" in gguf_name or not gguf_name.endswith(".gguf"):
        raise ValueError(f"expected a plain .gguf file name, got {gguf_name!r}")
    stops = [template.eos_token] + [s for s in template.stop_strings if s != template.eos_token]
    lines = [f"# {title}" if title else "# Exported by sienn-ray", f"FROM ./{gguf_name}",
             f"TEMPLATE {quote(ollama_template(template))}"]
    if template.system_prompt:
        lines.append(f"SYSTEM {quote(template.system_prompt)}")
    lines += [f"PARAMETER stop {quote(stop)}" for stop in stops]
    lines.append(f"PARAMETER num_ctx {max(1, min(int(context_length), MAX_NUM_CTX))}")
    return "\n".join(lines) + "\n"


def quote(value: str) -> str:
    """Quote a Modelfile argument: "..." for one line, triple quotes for several.

    Ollama's parser drops non-printable characters other than space, tab and
    newlines, and ends a triple-quoted value at the first three quotes: such
    values cannot be written faithfully, so they are refused.
    """
    if '"""' in value:
        raise ValueError('a Modelfile value cannot contain """')
    if any(not (c.isprintable() or c in "\t\r\n") for c in value):
        raise ValueError("a Modelfile value cannot contain non-printable characters")
    if "\n" in value or "\r" in value or '"' in value:
        return f'"""{value}"""'
    return f'"{value}"'


def read_template(modelfile_text: str) -> str:
    """The TEMPLATE value of a Modelfile, delimited the way Ollama's parser does."""
    value = read_command(modelfile_text, "TEMPLATE")
    if value is None:
        raise ValueError("the Modelfile has no TEMPLATE")
    return value


def read_command(modelfile_text: str, command: str) -> str | None:
    """The value of the first ``command`` line (None when absent).

    A value ends at the first line end where it is a complete quoted string.
    """
    match = re.search(rf"^{command}[ \t]+", modelfile_text, re.MULTILINE | re.IGNORECASE)
    if not match:
        return None
    rest = modelfile_text[match.end():]
    if not rest.startswith('"'):
        return rest.split("\n", 1)[0].strip()
    end = -1
    while True:
        end = rest.find("\n", end + 1)
        value = (rest if end < 0 else rest[:end]).strip()
        quote_len = 3 if value.startswith('"""') else 1
        if len(value) >= 2 * quote_len and value.endswith(value[:quote_len]):
            return value[quote_len:-quote_len]
        if end < 0:
            raise ValueError(f"the Modelfile's {command} is not closed")


def modelfile_prompt(modelfile_text: str, prompt: str, system: str | None = None) -> str:
    """The exact text Ollama sends the model for ``prompt`` under this Modelfile (default: its SYSTEM)."""
    system = (read_command(modelfile_text, "SYSTEM") or "") if system is None else system
    return render_ollama_prompt(read_template(modelfile_text), prompt, system)
