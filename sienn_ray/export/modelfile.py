"""Ollama Modelfiles: the one written beside an exported GGUF.

The Modelfile points at the GGUF beside it with a relative ``FROM ./file.gguf``
(Ollama silently tries to pull a name that is not an existing file), carries the
job's prompt template as TEMPLATE (its system prompt as SYSTEM), and stops on
the EOS text and every other stop string. There is never an ADAPTER line: the
LoRA is merged into the GGUF.
"""

from __future__ import annotations

from ..data.templates import PromptTemplate
from .prompt_formats import ollama_template

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
