"""Reading an uploaded dataset file: format sniffing and streaming record readers.

The format is decided by the content (a ``.txt`` holding JSON lines is JSONL); the
filename's extension is only a tie-breaker. Every reader streams, so memory is
bounded by one chunk plus the largest record, never by the file size. All bytes
pass through one ``HashingFile``, so the sha256 of the original upload comes out
of the same pass as validation.

A reader yields ``(row_number, record)``. The record is whatever the line or item
held (usually a dict; validation reports anything else) or a ``BadRow`` when that
row could not be parsed but reading can go on. A problem after which reading
cannot go on (bytes that are not UTF-8, a broken JSON array) raises ``FormatError``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NamedTuple

Format = Literal["csv", "json", "jsonl"]

# What a row number means in messages: a spreadsheet row, an array item, a text line.
ROW_LABEL = {"csv": "row", "json": "item", "jsonl": "line"}

CHUNK_BYTES = 1 << 20
# One record (CSV field, JSON array item) may not exceed this; it is what bounds
# memory when a quote or bracket is never closed.
MAX_RECORD_CHARS = 64 << 20

_NOT_TEXT = "; upload CSV, JSON or JSONL as UTF-8 text"
_MAGIC = {
    b"PK\x03\x04": "the file is a ZIP archive (an Excel .xlsx workbook?)" + _NOT_TEXT,
    b"\x1f\x8b": "the file is a gzip archive" + _NOT_TEXT,
    b"%PDF": "the file is a PDF document" + _NOT_TEXT,
    b"PAR1": "the file is a Parquet file" + _NOT_TEXT,
    b"SQLite format 3\x00": "the file is an SQLite database" + _NOT_TEXT,
    b"\xff\xfe": "the file is UTF-16 text; save it as UTF-8",
    b"\xfe\xff": "the file is UTF-16 text; save it as UTF-8",
}
_WS = re.compile(r"[ \t\r\n]*")
_JSON_EXTS = {".json", ".jsonl", ".ndjson"}
_BLANK = object()


class FormatError(Exception):
    """The file cannot be read any further; the message names the problem."""


class BadRow(NamedTuple):
    """A row that could not be parsed; reading goes on with the next one."""

    message: str


class HashingFile(io.RawIOBase):
    """A read-only binary file that feeds every byte it hands out into sha256."""

    def __init__(self, path: Path):
        self._f = open(path, "rb", buffering=0)
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        if n:
            self.sha256.update(memoryview(b)[:n])
        return n

    def read_chunk(self) -> bytes:
        data = self._f.read(CHUNK_BYTES)
        self.sha256.update(data)
        return data

    def close(self) -> None:
        self._f.close()
        super().close()


def bad_utf8_message(path: Path) -> str:
    """Rescan the file to name the exact offset of its first invalid byte (error path only)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                # The decoder's error positions include up to 3 bytes held back from the last chunk.
                at = offset - len(decoder.getstate()[0]) + e.start
                return f"the file is not UTF-8 text: invalid byte 0x{e.object[e.start]:02x} at byte offset {at}"
            offset += len(chunk)
    return f"the file is not UTF-8 text: it ends inside a multi-byte character (byte offset {offset})"


def sniff(path: Path, filename: str | None = None) -> Format:
    """Decide the format from the first non-blank bytes; raise FormatError for empty or binary files."""
    with open(path, "rb") as f:
        head = f.read(CHUNK_BYTES)
        if not head:
            raise FormatError("the file is empty")
        for magic, message in _MAGIC.items():
            if head.startswith(magic):
                raise FormatError(message)
        offset = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        head = head[offset:]
        while head and not head.strip():
            offset += len(head)
            head = f.read(CHUNK_BYTES)
        whole_file = not f.read(1)
    if not head:
        raise FormatError("the file contains only whitespace")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise FormatError(f"the file looks binary: a NUL byte at byte offset {offset + nul}")
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head).lstrip()
    except UnicodeDecodeError:
        raise FormatError(bad_utf8_message(path)) from None
    if text.startswith("["):
        return "json"
    ext = PurePosixPath((filename or "").replace("\\", "/")).suffix.lower()
    if text.startswith("{"):
        _reject_multiline_object(text)
        if ext == ".json" and whole_file and "\n" not in text.strip():
            # One object in a .json file: the user meant JSON, which must be an array of records.
            raise FormatError("expected an array of objects or JSON lines, but the .json file holds a single "
                              f"JSON object{_keys_hint(text)}")
        return "jsonl"
    first_line = text.split("\n", 1)[0]
    if ext in _JSON_EXTS and not any(d in first_line for d in ",\t;"):
        return "jsonl"  # a JSON-named file that is not JSON: line 1 gets a JSON error, not a CSV one
    return "csv"


def _keys_hint(text: str) -> str:
    try:
        keys = list(json.loads(text))[:5]
    except ValueError:
        return ""
    return " with keys " + ", ".join(repr(k) for k in keys) if keys else ""


def _reject_multiline_object(text: str) -> None:
    """A JSONL line is one object; a pretty-printed top-level object is neither JSON lines nor an array."""
    newline = text.find("\n")
    if newline < 0:
        return
    try:
        json.loads(text[:newline])
        return
    except json.JSONDecodeError:
        pass
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as e:
        end = e.pos
    if end > newline:
        raise FormatError(
            "expected an array of objects or JSON lines (one object per line), "
            "but the file starts with a JSON object spanning several lines"
        )


def read_records(fmt: Format, src: HashingFile, path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(row_number, record)`` for the whole file in the given format."""
    try:
        if fmt == "jsonl":
            yield from _read_jsonl(src)
        else:
            text = io.TextIOWrapper(io.BufferedReader(src, CHUNK_BYTES), encoding="utf-8-sig", newline="")
            yield from (_read_json_array(text) if fmt == "json" else _read_csv(text))
    except UnicodeDecodeError:
        raise FormatError(bad_utf8_message(path)) from None


def _read_jsonl(src: HashingFile) -> Iterator[tuple[int, Any]]:
    """The hot path: split whole chunks on newlines and decode each line.

    The C scanner is called directly (it is json.loads minus a Python wrapper and a
    regex per line); anything it does not accept goes through ``_parse_line``.
    """
    scan = json.JSONDecoder().scan_once
    lineno = 0
    pending: list[bytes] = []
    first = True
    while True:
        chunk = src.read_chunk()
        if first and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8) :]
        first = False
        if chunk:
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                pending.append(chunk)
                if len(pending) * CHUNK_BYTES > MAX_RECORD_CHARS:
                    raise FormatError(f"line {lineno + 1} is longer than {MAX_RECORD_CHARS >> 20} MB")
                continue
            pending.append(memoryview(chunk)[:cut])
            lines = _split_lines(pending)
            pending = [chunk[cut:]]
        else:
            lines = _split_lines(pending)
        for lineno, line in enumerate(lines, lineno + 1):
            try:
                value, end = scan(line, 0)
                if end != len(line) and not line[end:].isspace():
                    value = _parse_line(line)
            except (StopIteration, ValueError):
                value = _parse_line(line)
            if value is not _BLANK:
                yield lineno, value
        if not chunk:
            return


def _split_lines(parts: list) -> list[str]:
    """Decode and split complete lines; the joined bytes are freed before the caller goes on."""
    lines = b"".join(parts).decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _parse_line(line: str) -> Any:
    """json.loads for the lines the fast path refused: blank lines, leading blanks, errors."""
    if not line.strip():
        return _BLANK
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        return BadRow(f"invalid JSON: {e.msg} at column {e.colno}")


def _read_csv(text: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    """RFC 4180 via the csv module; the header row is row 1, so rows match a spreadsheet's numbers."""
    csv.field_size_limit(MAX_RECORD_CHARS)
    first = text.readline()
    delimiter = next((d for d in ",\t;" if d in first), ",")
    reader = csv.reader(itertools.chain([first], text), delimiter=delimiter, strict=True)
    header = None
    rownum = 0
    while True:
        rownum += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield rownum, BadRow(f"malformed CSV: {e}")
            continue
        if header is None:
            if row:
                header = _csv_header(row)
            continue
        if not row:
            continue
        if len(row) != len(header):
            yield rownum, BadRow(f"has {len(row)} fields but the header has {len(header)}")
            continue
        yield rownum, {name: value for name, value in zip(header, row) if name}


def _csv_header(row: list[str]) -> list[str]:
    """Column names, stripped; duplicates are fatal because a dict row would silently drop one."""
    names = [name.strip() for name in row]
    seen: dict[str, int] = {}
    dups = []
    for i, name in enumerate(names, 1):
        key = name.lower()
        if name and key in seen:
            dups.append(f"{name!r} (columns {seen[key]} and {i})")
        seen.setdefault(key, i)
    if dups:
        raise FormatError(f"duplicate column names in the CSV header: {', '.join(dups)}")
    return names


def _read_json_array(text: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    """Yield the items of a top-level JSON array, holding at most one item (plus a chunk) in memory.

    Hand-written over ``json.raw_decode`` rather than ``ijson``: ijson's errors (yajl's) carry neither a
    line nor whether the file ended inside an item or between items, and it refuses NaN/Infinity, which
    ``json`` (and so JSONL uploads) accept; the messages here name the item and its line.
    """
    scanner = _ArrayScanner(text)
    if scanner.next_char() != "[":
        raise FormatError("expected an array of objects or JSON lines")
    scanner.pos += 1
    if scanner.next_char() == "]":
        scanner.pos += 1
        scanner.expect_end()
        return
    for item in itertools.count(1):
        yield item, scanner.decode(item)
        c = scanner.next_char()
        scanner.pos += 1
        if c == "]":
            scanner.expect_end()
            return
        if c == "":
            raise FormatError(f"the JSON array is truncated: the file ends after item {item} without a closing ']'")
        if c != ",":
            raise FormatError(f"invalid JSON after item {item} ({scanner.where()}): expected ',' or ']', found {c!r}")
        if scanner.next_char() == "]":
            raise FormatError(f"invalid JSON: trailing comma after item {item} ({scanner.where()})")


class _ArrayScanner:
    """A sliding text buffer over the stream; ``json`` decodes one item at a time out of it."""

    def __init__(self, stream: io.TextIOBase):
        self._stream = stream
        self._decode = json.JSONDecoder().raw_decode
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # line number of buf[0]

    def _more(self) -> bool:
        if self.eof:
            return False
        # Characters, not bytes (up to 4 bytes each in memory). Read at least as much as is
        # buffered, so re-decoding an item larger than a chunk stays linear overall.
        data = self._stream.read(max(CHUNK_BYTES // 4, len(self.buf) - self.pos))
        if not data:
            self.eof = True
            return False
        self._line += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def where(self, pos: int | None = None) -> str:
        """'line N' of a buffer position, for error messages."""
        line = self._line + self.buf.count("\n", 0, self.pos if pos is None else pos)
        return f"line {line}"

    def next_char(self) -> str:
        """Skip whitespace; return the next character, or '' at the end of the file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect_end(self) -> None:
        if self.next_char():
            raise FormatError(f"unexpected data after the end of the JSON array ({self.where()})")

    def decode(self, item: int) -> Any:
        while True:
            try:
                value, end = self._decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self._cut_short(e) and self._more():
                    continue
                if e.msg.startswith("Unterminated string") or e.pos >= len(self.buf.rstrip()):
                    raise FormatError(
                        f"the JSON array is truncated: the file ends inside item {item} ({e.msg})"
                    ) from None
                raise FormatError(f"item {item}: invalid JSON: {e.msg} ({self.where(e.pos)})") from None
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self.buf) and self._more():
                continue
            self.pos = end
            return value

    def _cut_short(self, e: json.JSONDecodeError) -> bool:
        """Whether the error may just mean the item goes on past the buffer."""
        if len(self.buf) - self.pos > MAX_RECORD_CHARS:
            return False
        return e.msg.startswith("Unterminated string") or e.pos >= len(self.buf) - 16
