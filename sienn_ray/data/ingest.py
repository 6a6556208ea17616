"""The one entry point for an uploaded dataset file: sniff, stream, validate, normalize, hash.

The HTTP API and the CLI both call ``ingest_file``; neither parses datasets itself.
It reads the file once: the sha256 of the original bytes, the validation and the
normalized JSONL the trainer reads all come from that pass. The normalized file is
written beside its final path and renamed only when the dataset is valid, so a
failed upload leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..errors import DatasetInvalid, PayloadTooLarge
from .formats import FormatError, HashingFile, read_records, sniff
from .validate import Validator


class IngestReport(BaseModel):
    """What ingestion learned about a valid dataset; the upload response is built from it."""

    model_config = ConfigDict(extra="forbid")

    sha256: str
    format: Literal["csv", "json", "jsonl"]
    kind: Literal["instruction", "chat"]
    total_samples: int  # usable rows written to the normalized file
    total_rows: int  # rows read, usable or not
    size_bytes: int
    preview: list[dict]  # the first original rows, long values cut
    columns: list[str]  # original column / field names
    column_mapping: dict[str, str]  # original name -> instruction / input / output / messages
    null_counts: dict[str, int]  # per original column: missing, null or empty values
    # An invalid dataset raises DatasetInvalid (which carries the errors), so a returned
    # report is always valid with no errors; the fields keep the upload response's shape.
    errors: list[str] = []
    warnings: list[str] = []
    valid: bool = True
    total_tokens_estimate: int  # characters / 4 over every written example
    max_chars: int  # the longest example, in characters


def ingest_file(
    src: Path, normalized_out: Path, filename: str | None = None, max_bytes: int | None = None
) -> IngestReport:
    """Validate ``src`` and write its normalized JSONL to ``normalized_out``.

    ``filename`` is the uploader's name for the file: an extension hint and nothing
    else. Raises PayloadTooLarge above ``max_bytes`` and DatasetInvalid listing every
    problem found.
    """
    src, normalized_out = Path(src), Path(normalized_out)
    size = src.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise PayloadTooLarge(f"the file is {size} bytes; the limit is {max_bytes} bytes")
    try:
        fmt = sniff(src, filename)
    except FormatError as e:
        raise DatasetInvalid(f"Invalid dataset: {e}", errors=[str(e)]) from None

    fd, tmp_name = tempfile.mkstemp(dir=normalized_out.parent, prefix=f".{normalized_out.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with HashingFile(src) as source, os.fdopen(fd, "wb") as out:
            validator = Validator(fmt, out)
            validator.run(read_records(fmt, source, src))
            validator.check()
            sha256 = source.sha256.hexdigest()
        os.replace(tmp, normalized_out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

    return IngestReport(
        sha256=sha256,
        format=fmt,
        kind=validator.kind,
        total_samples=validator.total_samples,
        total_rows=validator.total_rows,
        size_bytes=size,
        preview=validator.preview,
        columns=list(validator.columns),
        column_mapping=validator.mapping,
        null_counts=validator.null_counts(),
        warnings=validator.warnings(),
        total_tokens_estimate=validator.chars // 4,
        max_chars=validator.max_chars,
    )
