"""The evaluation pass of a training run: loss and token accuracy on the held-out examples."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from ..data.packing import collate
from ..data.tokenize import TokenizedExample
from .model import batch_loss_and_hits


class EvalResult(NamedTuple):
    """Token-weighted over every rank: ``loss`` the mean cross-entropy, ``token_accuracy`` the share of
    target tokens whose top guess is right (OpenAI's ``valid_mean_token_accuracy``); None with no targets."""

    loss: float | None
    token_accuracy: float | None


NO_EVAL = EvalResult(None, None)


@torch.no_grad()
def eval_pass(model, examples: Sequence[TokenizedExample], *, batch_size: int, max_length: int, pad_id: int,
              packing: bool, device, reduce: Callable[[list[float]], list[float]],
              autocast=None) -> EvalResult:
    """Run ``examples`` through ``model`` in eval mode (no dropout); ``reduce`` sums over the ranks."""
    model.eval()
    loss_sum, hits, count = 0.0, 0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start:start + batch_size], max_length, pad_id, packing).to(device)
        with autocast or contextlib.nullcontext():
            loss, batch_hits = batch_loss_and_hits(model, batch)
        if batch.num_targets:
            loss_sum += loss.item() * batch.num_targets
            hits += batch_hits
            count += batch.num_targets
    model.train()
    loss_sum, hits, count = reduce([loss_sum, hits, count])
    return EvalResult(loss_sum / count, hits / count) if count else EvalResult(None, None)
