"""Turning queued requests into rows: adapter, template, rendering, tokens, context limits. No Ray.

Prompts are rendered with ``sienn_ray.data.templates`` and tokenized without
special tokens, exactly as training tokenized them, so a fine-tuned job is asked
in the form it learned.

Context rule (one rule for /api/test-model and /v1): the rendered prompt must
leave room for at least one new token, else the request is a 400 that names
both numbers. A prompt that fits but leaves fewer tokens than asked for gets
what fits, and ends with ``finish_reason`` ``length``. A request that names no
limit gets ``DEFAULT_MAX_NEW_TOKENS`` (or what fits, if less).
"""

from __future__ import annotations

import secrets

from ..data.templates import PromptTemplate, template_for
from ..errors import BadRequest
from ..schemas.generation import DEFAULT_MAX_NEW_TOKENS
from .batch import Row
from .detokenize import TextStream
from .model_cache import LoadedBase, ModelCache
from .request import PromptSpec, Request, Started


def admit(cache: ModelCache, base: LoadedBase, requests: list[Request], running: list[Row]) -> list[Row]:
    """Rows for ``requests`` on ``base``; a request that cannot start gets its error and no row."""
    rows: list[Row] = []
    in_use = {r.ref.adapter_id for r in requests} | {row.req.ref.adapter_id for row in running}
    for req in requests:
        if req.ticket.cancelled:
            continue
        try:
            row = _row(cache, base, req, in_use)
        except Exception as err:  # noqa: BLE001 - this request's error goes to this request only
            req.emit(err)
            continue
        rows.append(row)
        req.emit(Started(prompt_tokens=len(row.prompt_ids)))
    return rows


def _row(cache: ModelCache, base: LoadedBase, req: Request, in_use: set[str]) -> Row:
    adapter = cache.adapter(base, req.ref, in_use) if req.ref.adapter_id else None
    template = adapter.template if adapter else _base_template(base, req.prompt)
    prompt_ids = base.tokenizer(req.prompt.render(template), add_special_tokens=False)["input_ids"]
    if not prompt_ids:
        raise BadRequest("The rendered prompt is empty")
    room = base.context - len(prompt_ids)
    if room < 1:
        raise BadRequest(
            f"The prompt is {len(prompt_ids)} tokens after rendering; this model's context is {base.context} "
            f"tokens, so a prompt may be at most {base.context - 1} tokens to leave room for an answer",
            prompt_tokens=len(prompt_ids), context_length=base.context)
    params = req.params
    stops = tuple(params.stop) + tuple(template.stop_strings if template else ())
    return Row(
        req=req, slot=adapter.slot if adapter else 0, prompt_ids=list(prompt_ids),
        budget=min(params.max_new_tokens or DEFAULT_MAX_NEW_TOKENS, room),
        stop_ids=_stop_ids(base, template),
        seed=params.seed if params.seed is not None else secrets.randbits(63),
        text=TextStream(base.tokenizer, stops),
    )


def _stop_ids(base: LoadedBase, template: PromptTemplate | None) -> frozenset[int]:
    key = (template.eos_token, *template.stop_strings) if template else ()
    if key not in base.stop_ids:
        base.stop_ids[key] = base.eos_ids | _single_token_ids(base.tokenizer, template)
    return base.stop_ids[key]


def _single_token_ids(tokenizer, template: PromptTemplate | None) -> frozenset[int]:
    """Template stop strings that are one token (e.g. ``<|im_end|>``): stop on the id itself."""
    ids = set()
    for text in (template.stop_strings + [template.eos_token]) if template else []:
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.add(encoded[0])
    return frozenset(ids)


def _base_template(base: LoadedBase, prompt: PromptSpec) -> PromptTemplate | None:
    if prompt.kind == "raw":
        return None
    # A bare base is asked as training would render it: its own chat template when it has one.
    choice, data_kind = prompt.template or "auto", "chat" if prompt.kind == "chat" else "instruction"
    key = f"{choice}/{data_kind}"
    if key not in base.templates:
        base.templates[key] = template_for(choice, base.tokenizer, data_kind=data_kind)
    return base.templates[key]


__all__ = ["admit"]
