"""The rows decoded together and their KV cache: joining and dropping rows mid-decode.

Continuous batching keeps every row's cache right-aligned: a newcomer's cache is
left-padded to the batch's length when it joins, and finished rows leave at
once, taking with them the padding columns no remaining row needs. Plain
Python, no Ray; used only by the engine's worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .request import FinishReason, Request


@dataclass
class Row:
    """One request being decoded."""

    req: Request
    slot: int  # LoraBank slot; 0 is the bare base
    seen: list[int]  # prompt + generated ids (repetition penalty)
    budget: int
    stop_ids: frozenset[int]
    stops: tuple[str, ...]
    generator: Any
    prompt_tokens: int
    ids: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0
    finish: FinishReason | None = None


@dataclass
class Batch:
    """The rows decoded together, with their shared cache and per-row tensors."""

    base: Any  # the engine's loaded base model these rows run on
    rows: list[Row]
    cache: Any
    mask: Any  # [B, T] attention mask, rows right-aligned
    positions: Any  # [B] next position id of each row
    last: Any  # [B] last sampled token of each row


def mergeable(cache) -> bool:
    """Whether rows can join or leave by slicing the cache (plain dynamic layers, already filled)."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer and layer.keys is not None for layer in cache.layers)


def merge(batch: Batch, newcomer: Batch) -> None:
    """Append ``newcomer``'s rows to ``batch``; both caches are right-aligned, so left-pad the shorter."""
    import torch

    width = max(batch.mask.shape[1], newcomer.mask.shape[1])

    def widen(tensor, dim_t):
        missing = width - tensor.shape[dim_t]
        if missing == 0:
            return tensor
        shape = list(tensor.shape)
        shape[dim_t] = missing
        return torch.cat([tensor.new_zeros(shape), tensor], dim=dim_t)

    for old, new in zip(batch.cache.layers, newcomer.cache.layers):
        old.keys = torch.cat([widen(old.keys, 2), widen(new.keys, 2)], dim=0)
        old.values = torch.cat([widen(old.values, 2), widen(new.values, 2)], dim=0)
    batch.mask = torch.cat([widen(batch.mask, 1), widen(newcomer.mask, 1)], dim=0)
    batch.positions = torch.cat([batch.positions, newcomer.positions])
    batch.last = torch.cat([batch.last, newcomer.last])
    batch.rows = batch.rows + newcomer.rows


def prune(batch: Batch, device) -> None:
    """Drop the finished rows, and the cache columns that only they needed."""
    import torch

    keep = [i for i, row in enumerate(batch.rows) if row.finish is None]
    if len(keep) == len(batch.rows):
        return
    batch.rows = [batch.rows[i] for i in keep]
    if not keep:
        return
    index = torch.tensor(keep, dtype=torch.long)
    batch.mask, batch.positions, batch.last = batch.mask[index], batch.positions[index], batch.last[index]
    start = int((batch.mask.sum(0) > 0).nonzero()[0])  # columns every remaining row pads: drop them
    if not mergeable(batch.cache):
        batch.cache.batch_select_indices(index.to(device))
        return
    batch.mask = batch.mask[:, start:]
    for layer in batch.cache.layers:
        layer.keys = layer.keys[index.to(layer.keys.device), :, start:, :]
        layer.values = layer.values[index.to(layer.values.device), :, start:, :]
