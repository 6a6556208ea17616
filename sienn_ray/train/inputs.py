"""A worker's share of the dataset: read, split train/eval, shard by rank, tokenize.

The split is decided from the row count and the seed alone, so every rank
agrees on it without talking; each rank then parses and tokenizes only the rows
of its own shard.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..data.packing import shard_indices
from ..data.templates import PromptTemplate
from ..data.tokenize import IGNORE_INDEX, TokenizedExample, TokenizeStats, tokenize_records
from .spec import TrainJobSpec, effective_validation_split


def count_rows(path: str | Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def iter_rows(path: str | Path, wanted: set[int]) -> Iterator[tuple[int, dict]]:
    """(row number, record) for the rows in ``wanted``; other lines are skipped unparsed."""
    with open(path, "r", encoding="utf-8") as handle:
        row = 0
        for line in handle:
            if not line.strip():
                continue
            if row in wanted:
                yield row, json.loads(line)
            row += 1


def split_rows(num_rows: int, validation_split: float, seed: int) -> tuple[list[int], list[int]]:
    """(train rows, eval rows): a seeded shuffle, the first ``round(n * split)`` held out."""
    rows = list(range(num_rows))
    random.Random(seed).shuffle(rows)
    n_eval = round(num_rows * validation_split) if validation_split > 0 else 0
    n_eval = min(n_eval, max(num_rows - 1, 0))
    return sorted(rows[n_eval:]), sorted(rows[:n_eval])


@dataclass(frozen=True)
class RowPlan:
    """Which rows train and which evaluate: ``eval_path``'s ``eval_rows``."""

    train_rows: list[int]
    eval_path: str
    eval_rows: list[int]


def plan_rows(spec: TrainJobSpec) -> RowPlan:
    """A separate evaluation dataset (OpenAI's ``validation_file``) is evaluated whole and every training
    row trains; without one, the validation split of the training rows is held out (``split_rows``)."""
    n = count_rows(spec.dataset_path)
    if spec.eval_dataset_path:
        return RowPlan(list(range(n)), spec.eval_dataset_path, list(range(count_rows(spec.eval_dataset_path))))
    train_rows, eval_rows = split_rows(n, effective_validation_split(spec.config, n), spec.config.seed)
    return RowPlan(train_rows, spec.dataset_path, eval_rows)


@dataclass
class Shard:
    """One rank's tokenized examples. ``real`` counts the leading examples that are not wrap-around copies."""

    examples: list[TokenizedExample]
    real: int
    stats: TokenizeStats


def load_shard(path: str | Path, rows: list[int], rank: int, world_size: int, tokenizer: Any,
               template: PromptTemplate, max_length: int, train_on_inputs: bool) -> Shard:
    """Tokenize this rank's share of ``rows`` (same count on every rank; see ``shard_indices``)."""
    mine = [rows[i] for i in shard_indices(len(rows), rank, world_size)]
    real = sum(1 for k in range(len(mine)) if rank + k * world_size < len(rows))
    records = dict(iter_rows(path, set(mine)))
    examples, stats = tokenize_records(tokenizer, template, [records[r] for r in mine[:real]], max_length,
                                       train_on_inputs)
    copies, _ = tokenize_records(tokenizer, template, [records[r] for r in mine[real:]], max_length,
                                 train_on_inputs)
    return Shard(examples + copies, len(examples), stats)


def fill_to(examples: list[TokenizedExample], count: int) -> list[TokenizedExample]:
    """Repeat ``examples`` cyclically up to ``count`` (ranks must run the same number of steps)."""
    if not examples:
        raise ValueError("no trainable examples in this shard (every response was truncated away?)")
    return [examples[i % len(examples)] for i in range(count)]


def silenced(example: TokenizedExample) -> TokenizedExample:
    """A copy that contributes no loss (an eval padding copy)."""
    return TokenizedExample(example.input_ids, [IGNORE_INDEX] * len(example), example.truncated)
