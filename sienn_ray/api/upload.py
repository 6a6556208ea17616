"""Streaming multipart upload: the file part goes straight to disk with a size limit.

Starlette's ``request.form()`` spools the whole file before the route sees it;
here the body is parsed as it arrives, so a 2 GiB upload never sits in memory
and an oversized one is refused (413) as soon as it crosses the limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import BadRequest, PayloadTooLarge

MAX_TEXT_FIELD = 64 * 1024


@dataclass
class Upload:
    path: Path | None = None
    filename: str | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


class _Collector:
    """Callbacks for MultipartParser: the ``file`` part to disk, small text fields to memory."""

    def __init__(self, dest: Path, max_bytes: int):
        self.dest, self.max_bytes = dest, max_bytes
        self.upload = Upload()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._sink = None
        self._text = bytearray()
        self.ended = False  # the closing boundary arrived: the body is whole

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._headers, self._name, self._sink, self._text = {}, None, None, bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name == "file":
            if self.upload.path is not None:
                raise BadRequest("Only one 'file' part is accepted")
            raw_name = options.get(b"filename", b"upload").decode("utf-8", "replace")
            self.upload.filename = os.path.basename(raw_name.replace("\\", "/")) or "upload"
            self.upload.path = self.dest
            self._sink = open(self.dest, "wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._sink is not None:
            self.upload.size += len(chunk)
            if self.upload.size > self.max_bytes:
                raise PayloadTooLarge(
                    f"File exceeds the upload limit of {self.max_bytes} bytes", limit_bytes=self.max_bytes
                )
            self._sink.write(chunk)
        else:
            self._text += chunk
            if len(self._text) > MAX_TEXT_FIELD:
                raise BadRequest(f"Form field {self._name!r} is too long")

    def _part_end(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        elif self._name:
            self.upload.fields[self._name] = self._text.decode("utf-8", "replace")

    def _end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


async def receive_upload(request: Request, dest: Path, max_bytes: int) -> Upload:
    """Parse a multipart/form-data request, writing the ``file`` part to ``dest``."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise BadRequest("Expected multipart/form-data with a 'file' part")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 1024 * 1024:
        raise PayloadTooLarge(f"File exceeds the upload limit of {max_bytes} bytes", limit_bytes=max_bytes)
    collector = _Collector(dest, max_bytes)
    parser = MultipartParser(options[b"boundary"], collector.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (BadRequest, PayloadTooLarge):
        collector.close()
        dest.unlink(missing_ok=True)
        raise
    except Exception as err:  # the multipart parser's own errors: malformed body
        collector.close()
        dest.unlink(missing_ok=True)
        raise BadRequest(f"Malformed multipart body: {err}") from None
    if not collector.ended:  # cut off (client or proxy gave up): never ingest part of a file as a whole one
        collector.close()
        dest.unlink(missing_ok=True)
        raise BadRequest("Incomplete multipart body: it ended before its closing boundary (upload cut off?)")
    if collector.upload.path is None:
        raise BadRequest("Missing form field 'file' (the dataset file)")
    return collector.upload
