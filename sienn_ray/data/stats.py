"""The statistics of a validated dataset: token lengths, duplicate rows, the share max_length truncates.

Read from the normalized JSONL ingestion wrote, so a row counts as a duplicate when it normalizes to the
same record (CSV and JSON spellings of one example are one example). Lengths are those of training: each
segment of the rendered example tokenized on its own (``tokenize.tokenize_example``), here in batches so
that the tokenizer's Rust side does the work. A large dataset's lengths come from an even random sample
of its rows (duplicates are counted over every row: hashing a line is cheap, tokenizing it is not).
"""

from __future__ import annotations

import json
import random
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..schemas.datasets import DatasetStatistics, TokenLengths
from .templates import PromptTemplate, needs_eos, render_example

# Rows tokenized at most. Tokenizing reads about 2 MB of text a second a core, validation 25: a fixed
# sample bounds what the statistics add to any upload, whatever its size, and its p99 still rests on 10 rows.
SAMPLE_ROWS = 1000
_BATCH = 512  # records per tokenizer call


def dataset_statistics(path: Path, rows: int, tokenizer: Any, template: PromptTemplate, tokenizer_name: str,
                       max_length: int, sample_rows: int = SAMPLE_ROWS) -> DatasetStatistics:
    """Statistics of the normalized JSONL at ``path`` (``rows`` lines) as ``tokenizer`` and ``template`` see it.

    Streams the file: memory holds one batch of records, a hash per row and a length per sampled row.
    """
    # Seeded, so the same upload gives the same figures.
    wanted = None if rows <= sample_rows else set(random.Random(0).sample(range(rows), sample_rows))
    eos = int(needs_eos(template))
    hashes = array("q")  # a 64-bit hash per row: a collision among even 10^7 rows is a 1-in-10^5 event
    lengths: list[int] = []
    batch: list[bytes] = []
    with open(path, "rb") as handle:
        for row, line in enumerate(handle):
            hashes.append(hash(line))
            if wanted is None or row in wanted:
                batch.append(line)
                if len(batch) == _BATCH:
                    lengths += _token_lengths(tokenizer, template, batch, eos)
                    batch = []
    lengths += _token_lengths(tokenizer, template, batch, eos)
    tokens = pd.Series(lengths, dtype="int64")
    p50, p90, p99 = tokens.quantile([0.5, 0.9, 0.99], interpolation="higher")
    return DatasetStatistics(
        tokenizer=tokenizer_name,
        max_length=max_length,
        tokens=TokenLengths(min=tokens.min(), p50=p50, p90=p90, p99=p99, max=tokens.max()),
        truncated_share=round(float((tokens > max_length).mean()), 4),
        duplicate_rows=int(pd.Series(np.frombuffer(hashes, dtype=np.int64)).duplicated().sum()),
        sampled_rows=len(lengths),
    )


def _token_lengths(tokenizer: Any, template: PromptTemplate, lines: list[bytes], eos: int) -> list[int]:
    """Per record: the tokens of its segments, plus the EOS training appends."""
    examples = [render_example(template, json.loads(line)) for line in lines]
    texts = [segment.text for segments in examples for segment in segments]
    counts = iter([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else [])
    return [sum(next(counts) for _ in segments) + eos for segments in examples]
