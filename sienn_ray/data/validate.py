"""From parsed records to training examples: field mapping, validation, normalized JSONL.

Every problem is collected (the first 20 with their row numbers, then a count of
the rest) and raised once, so a user fixes a file in one round trip. The first
record fixes the dataset's kind (instruction or chat) and, like a CSV header, its
fields: without an instruction-like and an output-like field nothing else is worth
checking. Rows with an empty output are dropped with a warning, not an error,
because scraped datasets routinely have a few. Chat records are checked as OpenAI's
fine-tuning guide checks them (``chat_format.py``), each problem with its row.

This loop runs once per row of files up to gigabytes, so it avoids per-row pydantic
and per-row ``json.dumps``: a record's field lookup is cached by its key tuple and
lines are written in batches.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote
from typing import Any, BinaryIO

from ..errors import DatasetInvalid
from .chat_format import check_messages, check_record_keys, json_type, normalized_record
from .formats import ROW_LABEL, BadRow, Format, FormatError

INSTRUCTION_FIELDS = ("instruction", "prompt", "question")
INPUT_FIELDS = ("input", "context")
OUTPUT_FIELDS = ("output", "completion", "response", "answer")

MAX_LISTED = 20
PREVIEW_ROWS = 5
PREVIEW_CHARS = 500
# Distinct key tuples remembered (and so columns listed, missing values counted); a
# file with a new key on every row must not grow memory with its size.
_MAX_SHAPES = 1000
_BATCH = 256  # lines per write: few calls, yet a small buffer


def _accepted(fields: tuple[str, ...]) -> str:
    return ", ".join(fields)


def resolve_fields(keys: Iterable[str]) -> tuple[str | None, str | None, str | None]:
    """The original names of the instruction, input and output fields (case-insensitive aliases)."""
    by_name: dict[str, str] = {}
    for key in keys:
        by_name.setdefault(key.strip().lower(), key)

    def pick(aliases: tuple[str, ...]) -> str | None:
        return next((by_name[a] for a in aliases if a in by_name), None)

    return pick(INSTRUCTION_FIELDS), pick(INPUT_FIELDS), pick(OUTPUT_FIELDS)


def truncate(value: Any) -> Any:
    """A preview copy of a record: long strings cut to PREVIEW_CHARS, long lists cut to 20 items."""
    if isinstance(value, str):
        return value if len(value) <= PREVIEW_CHARS else value[:PREVIEW_CHARS] + "…"
    if isinstance(value, list):
        return [truncate(v) for v in value[:MAX_LISTED]]
    if isinstance(value, dict):
        return {k: truncate(v) for k, v in value.items()}
    return value


def _as_text(value: Any) -> str | None:
    """Scalars become text (numbers as JSON writes them); None is empty; nested values are refused."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return None


def _is_null(value: Any) -> bool:
    return value is None or (type(value) is str and not value.strip()) or value == []


@dataclass(slots=True)
class _Shape:
    """How records with one tuple of keys are read: which key holds what, and whether they can be read."""

    instruction: str | None
    input: str | None
    output: str | None
    others: tuple[str, ...]  # keys no role uses: their missing values are counted, nothing else
    problem: str | None  # why no record of this shape is usable; None when they are
    rows: int = 0

    def roles(self) -> dict[str, str]:
        """Original name -> role, for the report's column mapping."""
        named = ((self.instruction, "instruction"), (self.input, "input"), (self.output, "output"))
        return {key: role for key, role in named if key}


def _instruction_shape(keys: tuple) -> _Shape:
    ik, pk, ok = resolve_fields(keys)
    problem = None
    if ik is None:
        problem = f"no instruction field (accepted: {_accepted(INSTRUCTION_FIELDS)}); found: {', '.join(keys)}"
        if "messages" in keys:
            problem = "a chat record ('messages') among instruction records: mixed formats"
    return _Shape(ik, pk, ok, tuple(k for k in keys if k not in (ik, pk, ok)), problem)


def _chat_shape(keys: tuple) -> _Shape:
    problem = None
    if "messages" not in keys:
        ik, _, ok = resolve_fields(keys)
        problem = "an instruction record among chat records: mixed formats" if ik or ok else (
            f"no 'messages' field; found: {', '.join(keys)}"
        )
    return _Shape(None, None, None, tuple(k for k in keys if k != "messages"), problem)


class Validator:
    """Consumes ``(row_number, record)`` pairs, writes normalized lines, keeps the report's numbers."""

    def __init__(self, fmt: Format, out: BinaryIO):
        self.label = ROW_LABEL[fmt]
        self.kind = "instruction"
        self.total_rows = 0
        self.total_samples = 0
        self.chars = 0
        self.max_chars = 0
        self.columns: dict[str, None] = {}  # an ordered set
        self.mapping: dict[str, str] = {}
        self.preview: list[dict] = []
        self._nulls: Counter[str] = Counter()
        self._shapes: dict[tuple, _Shape] = {}
        self._errors: list[str] = []
        self._error_count = 0
        self._fatal: str | None = None
        self._empty_rows: list[int] = []
        self._empty_count = 0
        self._out = out
        self._batch: list[bytes] = []

    def run(self, records: Iterable[tuple[int, Any]]) -> None:
        """Validate every record; a FormatError stops reading but keeps what was collected."""
        records = iter(records)
        try:
            for n, rec in records:
                if type(rec) is not dict:
                    self._bad_record(n, rec)
                    continue
                self.kind = "chat" if "messages" in rec else "instruction"
                rest = itertools.chain([(n, rec)], records)
                if self.kind == "chat" or self._set_schema(n, rec):
                    self._rows(rest)
                break
        except FormatError as e:
            self._fatal = str(e)
        self._flush()

    def _set_schema(self, n: int, rec: dict) -> bool:
        ik, _, ok = resolve_fields(rec)
        if ik and ok:
            return True
        missing = []
        if not ik:
            missing.append(f"an instruction field (accepted: {_accepted(INSTRUCTION_FIELDS)})")
        if not ok:
            missing.append(f"an output field (accepted: {_accepted(OUTPUT_FIELDS)})")
        what = "columns" if self.label == "row" else "fields"
        found = ", ".join(repr(k) for k in rec) or "none"
        hint = ""
        if any(isinstance(v, (list, dict)) for v in rec.values()):
            hint = " (a top-level JSON object? expected an array of objects or JSON lines)"
        self._fatal = f"missing {' and '.join(missing)}; {what} found: {found}{hint}"
        self.columns.update(dict.fromkeys(rec))
        return False

    def _shape(self, keys: tuple) -> _Shape:
        """How records with these keys are read (remembered per key tuple, up to _MAX_SHAPES of them)."""
        shape = self._shapes.get(keys)
        if shape is not None:
            return shape
        if self.kind == "chat":
            shape = _chat_shape(keys)
            self.mapping["messages"] = "messages"
        else:
            shape = _instruction_shape(keys)
            self.mapping.update(shape.roles())
        if len(self._shapes) < _MAX_SHAPES:
            self._shapes[keys] = shape
            self.columns.update(dict.fromkeys(keys))
        return shape

    def _rows(self, records: Iterable[tuple[int, Any]]) -> None:
        """The per-row loop both kinds share; ``_instruction_line`` / ``_chat_line`` read one record."""
        nulls, batch = self._nulls, self._batch
        line_of = self._chat_line if self.kind == "chat" else self._instruction_line
        for n, rec in records:
            if type(rec) is not dict:
                self._bad_record(n, rec)
                continue
            self.total_rows += 1
            if len(self.preview) < PREVIEW_ROWS:
                self.preview.append(truncate(rec))
            shape = self._shape(tuple(rec))
            shape.rows += 1
            if shape.problem:
                self._error(n, shape.problem)
                continue
            for k in shape.others:
                if _is_null(rec[k]):
                    nulls[k] += 1
            line = line_of(n, rec, shape)
            if line is None or self._error_count:
                continue  # a bad row; or the dataset is invalid already: keep checking, stop writing
            self._write(n, line)
            if len(batch) >= _BATCH:
                self._flush()

    def _instruction_line(self, n: int, rec: dict, shape: _Shape) -> str | None:
        """The normalized line of an instruction record, or None (the problem reported, or an empty output)."""
        nulls = self._nulls
        ik, pk, ok = shape.instruction, shape.input, shape.output
        ins, inp, out = rec[ik], rec[pk] if pk else "", rec[ok] if ok else ""
        if type(ins) is not str or type(inp) is not str or type(out) is not str:
            ins, inp, out = self._texts(n, ik, ins, pk, inp, ok, out)
            if ins is None:
                return None
        if not inp.strip() and pk:
            nulls[pk] += 1
        if not ins.strip():
            nulls[ik] += 1
            self._error(n, f"the instruction ({ik!r}) is empty")
            return None
        if not out.strip():
            if ok:
                nulls[ok] += 1
            self._empty_output(n)
            return None
        if not self._error_count:
            self._count_chars(len(ins) + len(inp) + len(out))
        return f'{{"instruction":{_quote(ins)},"input":{_quote(inp)},"output":{_quote(out)}}}\n'

    def _texts(self, n: int, *pairs: Any) -> tuple:
        """Convert non-string values of the three fields, or report the row and return Nones."""
        texts, bad = [], []
        for key, value in zip(pairs[::2], pairs[1::2]):
            text = value if type(value) is str else _as_text(value)
            if text is None:
                bad.append(f"{key!r} holds {json_type(value)}, expected text")
            texts.append(text)
        if bad:
            self._error(n, "; ".join(bad))
            return None, None, None
        return tuple(texts)

    def _chat_line(self, n: int, rec: dict, shape: _Shape) -> str | None:
        """The normalized line of a chat record, or None with its problems reported."""
        turns, problems = check_messages(rec["messages"])
        problems = check_record_keys(rec) + problems
        if problems:
            if not isinstance(rec["messages"], list) or not rec["messages"]:
                self._nulls["messages"] += 1
            self._error(n, "; ".join(problems))
            return None
        if not self._error_count:
            self._count_chars(sum(len(t.content) for t in turns))
        return normalized_record(turns)

    def _count_chars(self, size: int) -> None:
        self.chars += size
        if size > self.max_chars:
            self.max_chars = size

    def _write(self, n: int, line: str) -> None:
        try:
            self._batch.append(line.encode("utf-8"))
            self.total_samples += 1
        except UnicodeEncodeError:
            self._error(n, "contains an invalid Unicode escape (an unpaired surrogate such as \\ud800)")

    def _flush(self) -> None:
        if self._batch:
            self._out.writelines(self._batch)
            self._batch.clear()

    def _bad_record(self, n: int, rec: Any) -> None:
        self.total_rows += 1
        if isinstance(rec, BadRow):
            self._error(n, rec.message)
        else:
            self._error(n, f"expected a JSON object, got {json_type(rec)}")

    def _error(self, n: int, message: str) -> None:
        self._error_count += 1
        if len(self._errors) < MAX_LISTED:
            self._errors.append(f"{self.label} {n}: {message}")

    def _empty_output(self, n: int) -> None:
        self._empty_count += 1
        if len(self._empty_rows) < MAX_LISTED:
            self._empty_rows.append(n)

    def null_counts(self) -> dict[str, int]:
        """Per original column: rows where it was missing, null or empty."""
        counts = dict.fromkeys(self.columns, 0)
        counts.update(self._nulls)
        for keys, shape in self._shapes.items():
            for column in self.columns:
                if column not in keys:
                    counts[column] += shape.rows
        return counts

    def warnings(self) -> list[str]:
        notes = []
        if self._empty_count:
            more = ", ..." if self._empty_count > len(self._empty_rows) else ""
            rows = ", ".join(map(str, self._empty_rows)) + more
            notes.append(f"{self._empty_count} {self.label}(s) with an empty output were dropped ({self.label} {rows})")
        ignored = [c for c in self.columns if c not in self.mapping]
        if ignored:
            notes.append(f"ignored {'columns' if self.label == 'row' else 'fields'}: {', '.join(ignored)}")
        return notes

    def check(self) -> None:
        """Raise DatasetInvalid listing every problem found, or return if the dataset is usable."""
        errors = list(self._errors)
        if self._error_count > len(errors):
            errors.append(f"... and {self._error_count - len(errors)} more problems")
        if self._fatal:
            errors.append(self._fatal)
        if not errors and not self.total_samples:
            errors.append(
                f"no usable rows: every row ({self.total_rows}) has an empty output" if self.total_rows
                else "the file holds no records (a header or an empty array only?)"
            )
        if errors:
            total = max(len(errors), self._error_count + bool(self._fatal))
            more = f" (and {total - 1} more problems; see errors)" if total > 1 else ""
            raise DatasetInvalid(f"Invalid dataset: {errors[0]}{more}", errors=errors)
