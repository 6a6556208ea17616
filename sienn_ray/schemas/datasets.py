"""Dataset records and the upload response."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class DatasetValidation(BaseModel):
    valid: bool
    columns: list[str]
    null_counts: dict[str, int]
    errors: list[str] = []
    warnings: list[str] = []
    column_mapping: dict[str, str] = {}


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
