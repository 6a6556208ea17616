"""Streaming: memory stays bounded by a chunk, and records that straddle chunks read correctly."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from sienn_ray.data import formats
from sienn_ray.data.ingest import ingest_file
from sienn_ray.errors import DatasetInvalid


def test_memory_is_bounded_by_a_chunk_not_the_file(tmp_path):
    line = json.dumps({"instruction": "explain this " * 40, "input": "", "output": "because " * 250}) + "\n"
    src = tmp_path / "big.jsonl"
    rows = 50_000_000 // len(line)
    src.write_text(line * rows)
    tracemalloc.start()
    try:
        report = ingest_file(src, tmp_path / "out.jsonl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.total_samples == rows
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {src.stat().st_size / 2**20:.0f} MiB file"


def _records(n: int, width: int) -> list[dict]:
    return [{"instruction": f"q{i} " + "é" * (i % 7), "output": "a" * (width + i)} for i in range(n)]


def test_jsonl_lines_straddling_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "CHUNK_BYTES", 1000)
    records = _records(50, 300) + [{"instruction": "huge", "output": "z" * 5000}]
    src = tmp_path / "data.jsonl"
    src.write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in records))  # CRLF, no final newline
    report = ingest_file(src, tmp_path / "out.jsonl")
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert report.total_samples == 51 and [r["output"] for r in out] == [r["output"] for r in records]
    assert out[3]["instruction"] == records[3]["instruction"]


def test_json_array_items_straddling_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "CHUNK_BYTES", 1000)
    records = _records(50, 300) + [{"instruction": "huge", "output": "z" * 5000}, {"instruction": 1, "output": 12345}]
    src = tmp_path / "data.json"
    src.write_text(json.dumps(records, indent=1, ensure_ascii=False))
    report = ingest_file(src, tmp_path / "out.jsonl")
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert report.total_samples == 52 and out[-1] == {"instruction": "1", "input": "", "output": "12345"}
    assert [r["output"] for r in out[:51]] == [r["output"] for r in records[:51]]


def test_csv_multiline_fields_straddling_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "CHUNK_BYTES", 1000)
    body = "".join(f'q{i},"line one\nline ""two"", {"x" * 400}"\n' for i in range(20))
    src = tmp_path / "data.csv"
    src.write_text("instruction,output\n" + body)
    report = ingest_file(src, tmp_path / "out.jsonl")
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert report.total_samples == 20 and out[19]["output"].startswith('line one\nline "two", xx')


def test_a_line_longer_than_the_record_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(formats, "MAX_RECORD_CHARS", 10_000)
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n" + json.dumps({"instruction": "x" * 20_000}))
    with pytest.raises(DatasetInvalid, match="line 2 is longer than"):
        ingest_file(src, tmp_path / "out.jsonl")
