"""A worker's share of the dataset: read, split train/eval, shard by rank, tokenize.

The split is decided from the row count and the seed alone, so every rank
agrees on it without talking; each rank then parses and tokenizes only the rows
of its own shard. A dataset file over ``SIENN_ARROW_MIN_BYTES`` is tokenized into a
memory-mapped Arrow cache beside it (``data/arrow_examples.py``) instead of a
list, so a worker's memory does not grow with the dataset.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..data.arrow_examples import arrow_examples, cache_key
from ..data.packing import shard_indices
from ..data.templates import PromptTemplate
from ..data.tokenize import (IGNORE_INDEX, TokenizedExample, TokenizeStats, count_example, tokenize_example,
                             tokenize_records)
from ..settings import get_settings
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

    examples: Sequence[TokenizedExample]  # a list; for a large dataset a view over its Arrow cache
    real: int
    stats: TokenizeStats



def load_shard(path: str | Path, rows: list[int], rank: int, world_size: int, tokenizer: Any,
               template: PromptTemplate, max_length: int, train_on_inputs: bool) -> Shard:
    """Tokenize this rank's share of ``rows`` (same count on every rank; see ``shard_indices``)."""
    mine = [rows[i] for i in shard_indices(len(rows), rank, world_size)]
    real = sum(1 for k in range(len(mine)) if rank + k * world_size < len(rows))
    args = (tokenizer, template, max_length, train_on_inputs)
    if Path(path).stat().st_size > get_settings().arrow_min_bytes:  # below it, a list is faster to build
        examples, stats = _arrow_shard(path, mine[:real], *args)
        copies, _ = tokenize_records(*args[:2], _records(path, mine[real:]), *args[2:])
        return Shard(_Joined(examples, copies), len(examples), stats)
    records = _records(path, mine)
    examples, stats = tokenize_records(*args[:2], records[:real], *args[2:])
    copies, _ = tokenize_records(*args[:2], records[real:], *args[2:])
    return Shard(examples + copies, len(examples), stats)


def _records(path: str | Path, wanted: list[int]) -> list[dict]:
    """The records of rows ``wanted``, in that order (one pass over the file)."""
    if not wanted:
        return []
    records = dict(iter_rows(path, set(wanted)))
    return [records[r] for r in wanted]


def _arrow_shard(path: str | Path, wanted: list[int], tokenizer: Any, template: PromptTemplate, max_length: int,
                 train_on_inputs: bool):
    """Rows ``wanted`` (ascending, as ``shard_indices`` gives them) tokenized into the dataset's Arrow cache,
    streaming: one record in memory at a time."""
    if any(a >= b for a, b in zip(wanted, wanted[1:])):
        raise ValueError("rows must be ascending: they are read in file order")
    stat = Path(path).stat()
    key = cache_key(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, tokenizer.name_or_path,
                    len(tokenizer), template.model_dump(), max_length, train_on_inputs, wanted)

    def tokenize(stats: TokenizeStats) -> Iterator[TokenizedExample]:
        for row, (_, record) in enumerate(iter_rows(path, set(wanted))):
            example = tokenize_example(tokenizer, template, record, max_length, train_on_inputs)
            count_example(stats, row, example)
            if example is not None:
                yield example

    return arrow_examples(Path(path).parent / ".arrow-cache", key, tokenize)


class _Joined(Sequence):
    """The Arrow examples followed by a rank's few wrap-around copies (a list), without copying either."""

    def __init__(self, head: Sequence[TokenizedExample], tail: list[TokenizedExample]):
        self._head, self._tail = head, tail

    def __len__(self) -> int:
        return len(self._head) + len(self._tail)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        return self._head[index] if index < len(self._head) else self._tail[index - len(self._head)]

    def __iter__(self) -> Iterator[TokenizedExample]:
        yield from self._head
        yield from self._tail


def fill_to(examples: Sequence[TokenizedExample], count: int) -> Sequence[TokenizedExample]:
    """Repeat ``examples`` cyclically up to ``count`` (ranks must run the same number of steps)."""
    if not examples:
        raise ValueError("no trainable examples in this shard (every response was truncated away?)")
    if isinstance(examples, list):
        return [examples[i % len(examples)] for i in range(count)]
    return _Cycled(examples, count)


class _Cycled(Sequence):
    """``fill_to`` over Arrow examples: a view, so filling never loads the examples into memory."""

    def __init__(self, base: Sequence[TokenizedExample], count: int):
        self._base, self._count = base, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._base[range(self._count)[index] % len(self._base)]

    def __iter__(self) -> Iterator[TokenizedExample]:
        left = self._count
        while left:
            for example in self._base:
                yield example
                left -= 1
                if not left:
                    return


def silenced(example: TokenizedExample) -> TokenizedExample:
    """A copy that contributes no loss (an eval padding copy)."""
    return TokenizedExample(example.input_ids, [IGNORE_INDEX] * len(example), example.truncated)
