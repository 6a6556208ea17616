"""Export requests and records."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from .common import Strict

ExportFormat = Literal["pytorch", "gguf", "ollama"]
Quantization = Literal["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16", "f32"]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)
DEFAULT_QUANTIZATION = "q8_0"


class ExportRequest(Strict):
    # A quantization only with the formats that have one (the rule resolve_quantization enforces), in the schema too.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"properties": {"format": {"const": "pytorch"}, "quantization": {"type": "null"}}},
        {"properties": {"format": {"enum": ["gguf", "ollama"]}}},
    ]})

    format: ExportFormat = Field(description="pytorch | gguf | ollama")
    quantization: Quantization | None = Field(
        None, description="For gguf and ollama (default q8_0); not allowed with pytorch"
    )


class ExportFile(BaseModel):
    name: str
    size_bytes: int
    sha256: str


class ExportRecord(BaseModel):
    export_id: str
    job_id: str
    tenant: str = "default"
    format: ExportFormat
    quantization: Quantization | None = None
    status: Literal["processing", "completed", "failed"] = "processing"
    message: str = "Export queued"
    error_code: str | None = None
    download_url: str
    estimated_time: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    files: list[ExportFile] = []
    total_size_bytes: int = 0


class ExportResponse(BaseModel):
    """The spec's fields for POST /api/export-model/{job_id}."""

    export_id: str
    format: ExportFormat
    quantization: Quantization | None = None
    status: Literal["processing", "completed", "failed"]
    download_url: str
    estimated_time: str


class ExportList(BaseModel):
    job_id: str
    exports: list[ExportRecord]


class ExportFormatInfo(BaseModel):
    name: str
    description: str
    supports_quantization: bool
    quantization_levels: list[str] | None = None
    default_quantization: str | None = None


class ExportFormats(BaseModel):
    formats: list[ExportFormatInfo]
