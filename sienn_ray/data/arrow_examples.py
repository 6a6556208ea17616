"""Tokenized examples in a memory-mapped Arrow file (``datasets``), for shards too large for a worker's memory.

``datasets.Dataset.from_generator`` writes the examples to Arrow batch by batch as they are tokenized,
then reads them back through a memory map: a worker's RSS holds the pages it touches, which the OS may
drop, instead of every example as Python lists (some 70 bytes a token). The file is keyed by everything
that decides its content, so a resumed or repeated run reuses it instead of tokenizing again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .tokenize import TokenizedExample, TokenizeStats

_ROWS_PER_READ = 1024  # rows decoded per Arrow read when iterating


class ArrowExamples(Sequence):
    """A read-only sequence of ``TokenizedExample`` over an Arrow dataset; each access decodes its rows."""

    def __init__(self, dataset: Any):
        self._ds = dataset

    def __len__(self) -> int:
        return self._ds.num_rows

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = self._ds[range(len(self))[index]]
        return TokenizedExample(row["input_ids"], row["labels"], row["truncated"])

    def __iter__(self) -> Iterator[TokenizedExample]:
        for batch in self._ds.iter(batch_size=_ROWS_PER_READ):
            yield from map(TokenizedExample, batch["input_ids"], batch["labels"], batch["truncated"])


def cache_key(*parts: Any) -> str:
    """A name for a cache entry from the JSON-able values that decide its content."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def arrow_examples(cache_dir: Path, key: str, tokenize: Callable[[TokenizeStats], Iterable[TokenizedExample]]
                   ) -> tuple[Sequence[TokenizedExample], TokenizeStats]:
    """The examples ``tokenize(stats)`` yields, written once under ``cache_dir/key``; with their stats."""
    from datasets import Dataset, Features, List, Value, disable_progress_bars

    disable_progress_bars()  # a bar per shard in every worker's log says nothing
    features = Features({"input_ids": List(Value("int32")), "labels": List(Value("int32")),
                         "truncated": Value("bool")})
    stats_file = Path(cache_dir) / f"{key}.stats.json"
    stats = TokenizeStats()

    def rows():
        for ex in tokenize(stats):
            yield {"input_ids": ex.input_ids, "labels": ex.labels, "truncated": ex.truncated}
        tmp = stats_file.with_suffix(f".tmp-{id(stats)}")
        tmp.write_text(json.dumps(vars(stats)))
        tmp.replace(stats_file)

    try:
        dataset = Dataset.from_generator(rows, features=features, cache_dir=str(cache_dir), fingerprint=key)
        if not stats_file.is_file():  # built by a run that died before its stats: build it again
            dataset = Dataset.from_generator(rows, features=features, cache_dir=str(cache_dir), fingerprint=key,
                                             download_mode="force_redownload")
    except ValueError:  # datasets refuses an empty split: fine when nothing was left to train on
        if not stats_file.is_file() or _stats(stats_file).examples:
            raise
        return [], _stats(stats_file)
    return ArrowExamples(dataset), _stats(stats_file)


def _stats(stats_file: Path) -> TokenizeStats:
    return TokenizeStats(**json.loads(stats_file.read_text()))
