"""The two passes an evaluation makes over one model: held-out loss and greedy answers.

Each runs on whatever the model currently is, so the caller runs them once
with the adapter on and once inside ``peft_model.disable_adapter()`` for the
base, from one loaded copy of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..data.packing import collate_padded
from ..data.templates import PromptTemplate
from ..data.tokenize import TokenizedExample
from ..train.model import batch_loss
from .samples import GenerationCase, cut_at_stop, stop_strings


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int  # generated tokens before the stop token


@torch.no_grad()
def held_out_loss(model, examples: Sequence[TokenizedExample], pad_id: int, batch_size: int) -> tuple[float, int]:
    """(sum of per-token losses, number of target tokens): the loss training's evaluation computes."""
    loss_sum, count = 0.0, 0
    device = model.device
    ordered = sorted(examples, key=len)  # similar lengths together: less padding, same sum
    for start in range(0, len(ordered), batch_size):
        batch = collate_padded(ordered[start:start + batch_size], pad_id).to(device)
        if batch.num_targets:
            loss_sum += batch_loss(model, batch).item() * batch.num_targets
            count += batch.num_targets
    return loss_sum, count


def stop_token_ids(tokenizer: Any, template: PromptTemplate) -> list[int]:
    """EOS and every stop string that is a single token: generation halts on these ids."""
    ids = {tokenizer.convert_tokens_to_ids(template.eos_token)}
    for text in stop_strings(template):
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.add(encoded[0])
    return sorted(ids)


@torch.no_grad()
def generate_answers(model, tokenizer: Any, template: PromptTemplate, cases: Sequence[GenerationCase],
                     max_new_tokens: int, batch_size: int, context: int | None) -> list[Answer]:
    """Greedy answers to ``cases`` (in their order), batched with left padding, each ending at a stop."""
    from transformers import GenerationConfig

    stops = stop_token_ids(tokenizer, template)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    budget = min(max_new_tokens, context - 1) if context else max_new_tokens
    keep = context - budget if context else None  # a prompt too long for the context keeps its end
    config = GenerationConfig(max_new_tokens=budget, do_sample=False, eos_token_id=stops, pad_token_id=pad_id)
    order = sorted(range(len(cases)), key=lambda i: len(cases[i].prompt_ids))
    answers: dict[int, Answer] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        prompts = [cases[i].prompt_ids[-keep:] if keep else cases[i].prompt_ids for i in chunk]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for r, prompt in enumerate(prompts):
            input_ids[r, width - len(prompt):] = torch.tensor(prompt)
            mask[r, width - len(prompt):] = 1
        out = model.generate(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device),
                             generation_config=config).cpu()
        for r, i in enumerate(chunk):
            answers[i] = _decode(tokenizer, template, out[r, width:].tolist(), set(stops))
    return [answers[i] for i in range(len(cases))]


def _decode(tokenizer: Any, template: PromptTemplate, new_ids: list[int], stops: set[int]) -> Answer:
    end = next((k for k, token in enumerate(new_ids) if token in stops), len(new_ids))
    text = tokenizer.decode(new_ids[:end], skip_special_tokens=True)
    return Answer(cut_at_stop(text, stop_strings(template)), end)
