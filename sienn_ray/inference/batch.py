"""The rows decoded together and their KV cache: joining and dropping rows mid-decode.

Continuous batching keeps every row's cache right-aligned: a newcomer's cache is
left-padded to the batch's length when it joins, and finished rows leave at
once, taking with them the padding columns no remaining row needs. Plain
Python, no Ray; used only by the engine's worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..schemas.generation import FinishReason
from .detokenize import TextStream
from .request import Request
from .sampling import RowSampling


@dataclass
class Row:
    """One request being decoded."""

    req: Request
    slot: int  # LoraBank slot; 0 is the bare base
    prompt_ids: list[int]
    budget: int  # the most new tokens this row may generate, already lowered to what fits in the context
    stop_ids: frozenset[int]  # token ids that end the answer (EOS, one-token template stops)
    seed: int
    text: TextStream
    generated: int = 0
    finish: FinishReason | None = None
    failed: bool = False  # the row's caller got an exception; the row leaves at the next prune

    @property
    def done(self) -> bool:
        return self.finish is not None or self.failed


@dataclass
class Batch:
    """The rows decoded together, with their shared cache and per-row tensors."""

    base: Any  # the engine's loaded base model these rows run on
    rows: list[Row]
    cache: Any
    mask: Any  # [B, T] attention mask, rows right-aligned
    positions: Any  # [B] next position id of each row
    last: Any  # [B] last sampled token of each row
    sampling: RowSampling  # per-row sampling parameters, seeds and seen tokens


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
    batch.sampling.extend(newcomer.sampling)
    batch.rows = batch.rows + newcomer.rows


def prune(batch: Batch, device) -> None:
    """Drop the finished rows, and the cache columns that only they needed."""
    import torch

    keep = [i for i, row in enumerate(batch.rows) if not row.done]
    if len(keep) == len(batch.rows):
        return
    batch.rows = [batch.rows[i] for i in keep]
    if not keep:
        return
    index = torch.tensor(keep, dtype=torch.long)
    batch.mask, batch.positions = batch.mask[index], batch.positions[index]
    batch.last = batch.last[index.to(batch.last.device)]
    batch.sampling.select(keep)
    start = int((batch.mask.sum(0) > 0).nonzero()[0])  # columns every remaining row pads: drop them
    if not mergeable(batch.cache):
        batch.cache.batch_select_indices(index.to(device))
        return
    batch.mask = batch.mask[:, start:]
    for layer in batch.cache.layers:
        layer.keys = layer.keys[index.to(layer.keys.device), :, start:, :]
        layer.values = layer.values[index.to(layer.values.device), :, start:, :]
