"""Batching: which examples form each step, and how they become tensors.

Two ways to spend little compute on padding:

* packing (default): the examples of a step are laid end to end in rows of up
  to ``max_length`` tokens, with ``position_ids`` restarting at 0 for each
  example and no ``attention_mask``. transformers 5 reads such position ids as
  packed sequences (``masking_utils.find_packed_sequence_indices``) and builds
  a block-diagonal causal mask, so no token attends across an example boundary.
  ``probe_packing`` in ``train/loop.py`` checks this per model before use.
* length-grouped padding, for models that cannot pack: examples are sorted by
  length inside shuffled mega-batches, so a batch pads to a similar length.

Targets are shifted here, per example (``targets[i]`` is the label of token
``i + 1`` of the same example), so the loss never asks one example to predict
the first token of the next. A step always holds ``batch_size`` examples
whichever way is used, so steps per epoch and the learning-rate schedule do not
depend on packing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from .tokenize import IGNORE_INDEX, TokenizedExample

MEGA_BATCH_FACTOR = 32


@dataclass
class Batch:
    """Model inputs for one micro-batch plus next-token targets (IGNORE_INDEX where none)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor
    attention_mask: torch.Tensor | None
    num_tokens: int
    num_targets: int

    def to(self, device: torch.device | str) -> "Batch":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return Batch(**moved)

    def model_inputs(self) -> dict:
        inputs = {"input_ids": self.input_ids, "position_ids": self.position_ids}
        if self.attention_mask is not None:
            inputs["attention_mask"] = self.attention_mask
        return inputs


def next_token_targets(labels: Sequence[int]) -> list[int]:
    """What each position should predict: the next label of the same example, none for the last."""
    return list(labels[1:]) + [IGNORE_INDEX]


def pack_rows(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """First-fit decreasing: indices of ``lengths`` grouped into rows of at most ``max_length`` tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for idx in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        size = lengths[idx]
        if size > max_length:
            raise ValueError(f"example of {size} tokens exceeds max_length {max_length}")
        slot = next((r for r, free in enumerate(room) if free >= size), None)
        if slot is None:
            rows.append([idx])
            room.append(max_length - size)
        else:
            rows[slot].append(idx)
            room[slot] -= size
    return rows


def collate_packed(examples: Sequence[TokenizedExample], max_length: int, pad_id: int) -> Batch:
    """Pack ``examples`` into rows; padding (only at row ends) gets its own positions and no target."""
    rows = []
    for row in pack_rows([len(e) for e in examples], max_length):
        ids, pos, tgt = [], [], []
        for idx in row:
            ex = examples[idx]
            ids += ex.input_ids
            pos += range(len(ex))
            tgt += next_token_targets(ex.labels)
        rows.append((ids, pos, tgt))
    width = max(len(ids) for ids, _, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for r, (ids, pos, tgt) in enumerate(rows):
        n = len(ids)
        input_ids[r, :n] = torch.tensor(ids)
        targets[r, :n] = torch.tensor(tgt)
        position_ids[r, :n] = torch.tensor(pos)
        # The tail is a separate pseudo-sequence (positions restart), so it never joins the last example.
        position_ids[r, n:] = torch.arange(width - n)
    return _batch(input_ids, position_ids, targets, None, examples)


def collate_padded(examples: Sequence[TokenizedExample], pad_id: int) -> Batch:
    """One example per row, right-padded to the longest, with an attention mask."""
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    targets = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for r, ex in enumerate(examples):
        n = len(ex)
        input_ids[r, :n] = torch.tensor(ex.input_ids)
        targets[r, :n] = torch.tensor(next_token_targets(ex.labels))
        attention_mask[r, :n] = 1
    position_ids = torch.arange(width).expand(len(examples), width).clone()
    return _batch(input_ids, position_ids, targets, attention_mask, examples)


def _batch(input_ids, position_ids, targets, attention_mask, examples) -> Batch:
    return Batch(input_ids, position_ids, targets, attention_mask,
                 num_tokens=sum(len(e) for e in examples),
                 num_targets=int((targets != IGNORE_INDEX).sum()))


def collate(examples: Sequence[TokenizedExample], max_length: int, pad_id: int, packing: bool) -> Batch:
    return collate_packed(examples, max_length, pad_id) if packing else collate_padded(examples, pad_id)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                  group_by_length: bool = False) -> list[list[int]]:
    """Example indices of each step of ``epoch``; the same (seed, epoch) always gives the same plan.

    A resumed run rebuilds the plan of its epoch and skips the steps already done,
    so it sees exactly the data order the interrupted run would have seen.
    """
    order = list(range(len(lengths)))
    rng = random.Random(seed * 1_000_003 + epoch)
    rng.shuffle(order)
    if not group_by_length:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    mega = batch_size * MEGA_BATCH_FACTOR
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s share of ``n`` items; every rank gets the same count (wrapping around),
    because data-parallel ranks must take the same number of steps."""
    if n == 0:
        return []
    per_rank = -(-n // world_size)
    padded = [i % n for i in range(per_rank * world_size)]
    return padded[rank::world_size]
