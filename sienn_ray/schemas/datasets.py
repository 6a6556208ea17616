"""Dataset records and the upload response."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class TokenLengths(BaseModel):
    """The distribution of example lengths, in tokens, as training tokenizes them (before truncation)."""

    min: int
    p50: int
    p90: int
    p99: int
    max: int


class DatasetStatistics(BaseModel):
    """What training will make of a dataset: lengths in tokens, repeated rows, rows max_length cuts."""

    tokenizer: str = Field(description="The base model whose tokenizer and prompt template counted the tokens")
    max_length: int = Field(description="The default training max_length that truncated_share refers to")
    tokens: TokenLengths
    truncated_share: float = Field(description="Share of examples longer than max_length (cut in training)")
    duplicate_rows: int = Field(description="Rows identical, after normalization, to an earlier row")
    sampled_rows: int = Field(description="Rows the token figures cover: all of them, or an even random sample "
                                          "of a large dataset")


class DatasetValidation(BaseModel):
    valid: bool
    columns: list[str]
    null_counts: dict[str, int]
    errors: list[str] = []
    warnings: list[str] = []
    column_mapping: dict[str, str] = {}
    statistics: DatasetStatistics | None = Field(
        None, description="Token lengths and duplicates; null when no base tokenizer could be loaded")


class DatasetRecord(BaseModel):
    """What the store keeps for an uploaded dataset; also the upload response."""

    dataset_id: str
    tenant: str = "default"
    name: str | None = None
    filename: str
    format: Literal["csv", "json", "jsonl"]
    kind: Literal["instruction", "chat"] = "instruction"
    total_samples: int
    size_bytes: int
    preview: list[dict]
    validation: DatasetValidation
    uploaded_at: datetime
    sha256: str
    total_tokens_estimate: int = 0
    max_chars: int = 0


class DatasetList(BaseModel):
    datasets: list[DatasetRecord]
    total: int
    limit: int
    offset: int


class DeletedResponse(BaseModel):
    deleted: bool
    id: str
