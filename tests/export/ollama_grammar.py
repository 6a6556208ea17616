"""A validator for Ollama Modelfiles, written from Ollama's parser and documented grammar.

``parse_modelfile`` is an independent port of Ollama's ``parser.ParseFile``
(a rune-by-rune state machine: a value ends at the first line end where it is
a complete quoted string; non-printable runes other than space, tab and
newlines are dropped); ``validate_modelfile`` adds the checks ``ollama create``
makes (known commands, known PARAMETER names and value types) and ours (no
ADAPTER, FROM a relative path to an existing file); ``modelfile_prompt`` is
the text Ollama would send the model for one prompt.
"""

from __future__ import annotations

from pathlib import Path

from sienn_ray.export.prompt_formats import render_go_template

COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter",
            "message", "requires"}
INT_PARAMS = {"num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch", "num_gpu",
              "main_gpu", "num_thread"}
FLOAT_PARAMS = {"top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty",
                "frequency_penalty"}
PARAMS = INT_PARAMS | FLOAT_PARAMS | {"stop", "use_mmap"}


class ModelfileError(ValueError):
    pass


def _unquote(s: str) -> tuple[str, bool]:
    if s.startswith('"""'):
        return (s[3:-3], True) if len(s) >= 6 and s.endswith('"""') else ("", False)
    if s.startswith('"'):
        return (s[1:-1], True) if len(s) >= 2 and s.endswith('"') else ("", False)
    return s, True


def _step(ch: str, state: str) -> tuple[str, str | None]:
    space, newline = ch in " \t", ch in "\r\n"
    if state == "nil":
        return ("comment", None) if ch == "#" else ("nil", None) if space or newline else ("name", ch)
    if state == "name":
        if ch.isascii() and ch.isalpha():
            return "name", ch
        if space:
            return "value", None
        raise ModelfileError(f"invalid command character {ch!r}")
    if state == "value":
        return ("nil", ch) if space or newline else ("value", ch)
    if state == "parameter":
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            return "parameter", ch
        if space:
            return "value", None
        raise ModelfileError(f"invalid parameter name character {ch!r}")
    if state == "message":
        if ch.isascii() and ch.isalpha():
            return "message", ch
        if space:
            return "value", None
        raise ModelfileError(f"invalid message role character {ch!r}")
    return ("nil", None) if newline else ("comment", None)


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(command, argument) pairs, or ModelfileError where Ollama would refuse the file."""
    commands: list[tuple[str, str]] = []
    state, buf, name, role = "nil", [], "", ""
    for ch in text:
        nxt, keep = _step(ch, state)
        if nxt != state:
            word = "".join(buf)
            if state == "name":
                if word.lower() not in COMMANDS:
                    raise ModelfileError(f"unknown command {word!r}")
                name = {"from": "model"}.get(word.lower(), word.lower())
                nxt = {"parameter": "parameter", "message": "message"}.get(word.lower(), nxt)
            elif state == "parameter":
                name = word
            elif state == "message":
                if word not in ("system", "user", "assistant"):
                    raise ModelfileError(f"invalid message role {word!r}")
                role = word
            elif state == "value":
                value, ok = _unquote(word.strip())
                if not ok or ch in " \t":
                    buf.append(ch)
                    continue
                commands.append((name, f"{role}: {value}" if role else value))
                role = ""
            buf, state = [], nxt
        if keep is not None and keep.isprintable():
            buf.append(keep)
    if state == "value":
        value, ok = _unquote("".join(buf).strip())
        if not ok:
            raise ModelfileError("unexpected end of file inside a quoted value")
        commands.append((name, value))
    elif state not in ("nil", "comment"):
        raise ModelfileError("unexpected end of file")
    if not any(cmd == "model" for cmd, _ in commands):
        raise ModelfileError("no FROM line")
    return commands


def validate_modelfile(text: str, folder: Path) -> dict[str, list[str]]:
    """Parse and check like ``ollama create`` would (plus our own rules); returns command -> values."""
    out: dict[str, list[str]] = {}
    for cmd, arg in parse_modelfile(text):
        if cmd not in COMMANDS | {"model"}:
            if cmd not in PARAMS:
                raise ModelfileError(f"unknown parameter {cmd!r}")
            if cmd in INT_PARAMS:
                int(arg)
            if cmd in FLOAT_PARAMS:
                float(arg)
        out.setdefault(cmd, []).append(arg)
    if "adapter" in out:
        raise ModelfileError("ADAPTER lines are not allowed (the LoRA is merged)")
    (source,) = out["model"]
    if not source.startswith("./") or not (folder / source).is_file():
        raise ModelfileError(f"FROM {source!r} is not a relative path to an existing file")
    return out


def modelfile_prompt(text: str, prompt: str, system: str | None = None) -> str:
    """The exact text Ollama sends the model for ``prompt`` (``ollama run``, /api/generate) under this
    Modelfile, with its SYSTEM unless ``system`` is given: TEMPLATE as this parser reads it, rendered by
    sienn-ray's Go-template renderer."""
    commands = dict(parse_modelfile(text))
    system = commands.get("system", "") if system is None else system
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return render_go_template(commands["template"], prompt=prompt, system=system, messages=messages)
