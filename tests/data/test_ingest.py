"""ingest_file on well-formed uploads: every format, aliases, conversions and the report's numbers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sienn_ray.data.ingest import IngestReport, ingest_file
from sienn_ray.errors import DatasetInvalid, PayloadTooLarge

ALPACA = [
    {"instruction": "Name a colour.", "input": "", "output": "Blue."},
    {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"},
]


def run(tmp_path: Path, data: bytes | str, filename: str = "upload.bin", **kwargs) -> tuple[IngestReport, list]:
    """Ingest ``data`` from a file named neutrally (the name is only a hint); return report and output."""
    src = tmp_path / "upload.bin"
    src.write_bytes(data.encode() if isinstance(data, str) else data)
    out = tmp_path / "normalized.jsonl"
    report = ingest_file(src, out, filename=filename, **kwargs)
    return report, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def jsonl(rows: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_jsonl(tmp_path):
    report, rows = run(tmp_path, jsonl(ALPACA), "train.jsonl")
    assert rows == ALPACA
    assert (report.format, report.kind, report.total_rows, report.total_samples) == ("jsonl", "instruction", 2, 2)
    assert report.columns == ["instruction", "input", "output"]
    assert report.column_mapping == {"instruction": "instruction", "input": "input", "output": "output"}
    assert report.null_counts == {"instruction": 0, "input": 1, "output": 0}
    assert report.valid and report.errors == [] and report.warnings == []
    assert report.preview == ALPACA


def test_csv_rfc4180_quoting(tmp_path):
    data = (
        'instruction,input,output\r\n'
        '"Say ""hi"", then stop",,"line one\r\nline two"\r\n'
        'Plain,"a, b",done\r\n'
    )
    report, rows = run(tmp_path, data, "data.csv")
    assert report.format == "csv"
    assert rows == [
        {"instruction": 'Say "hi", then stop', "input": "", "output": "line one\r\nline two"},
        {"instruction": "Plain", "input": "a, b", "output": "done"},
    ]
    assert report.null_counts == {"instruction": 0, "input": 1, "output": 0}


def test_csv_semicolon_header_and_unused_column(tmp_path):
    report, rows = run(tmp_path, "question;answer;source\nWhy?;Because.;web\n", "x.csv")
    assert rows == [{"instruction": "Why?", "input": "", "output": "Because."}]
    assert report.column_mapping == {"question": "instruction", "answer": "output"}
    assert report.warnings == ["ignored columns: source"]


def test_json_array_pretty_printed(tmp_path):
    report, rows = run(tmp_path, json.dumps(ALPACA, indent=2), "data.json")
    assert report.format == "json" and rows == ALPACA and report.total_samples == 2


def test_chat_jsonl(tmp_path):
    records = [
        {"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "ann"},
            {"role": "assistant", "content": "Hello.", "weight": 1},
        ]},
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5", "weight": 0},
                      {"role": "user", "content": "Sure?"},
                      {"role": "assistant", "content": [{"type": "text", "text": "4"}]}]},
    ]
    report, rows = run(tmp_path, jsonl(records), "chat.jsonl")
    assert (report.format, report.kind, report.total_samples) == ("jsonl", "chat", 2)
    assert report.column_mapping == {"messages": "messages"}
    assert rows[0]["messages"][1:] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    assert rows[1]["messages"][1] == {"role": "assistant", "content": "5", "weight": 0}  # only weight 0 is kept
    assert rows[1]["messages"][3]["content"] == "4"  # text parts are joined
    assert report.total_tokens_estimate == (9 + 2 + 6 + 4 + 1 + 5 + 1) // 4


def test_chat_json_array(tmp_path):
    records = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}]
    report, _ = run(tmp_path, json.dumps(records))
    assert (report.format, report.kind) == ("json", "chat")


@pytest.mark.parametrize(
    "text", [jsonl(ALPACA), json.dumps(ALPACA), "instruction,input,output\nName a colour.,,Blue.\n"]
)
def test_utf8_bom(tmp_path, text):
    _, rows = run(tmp_path, b"\xef\xbb\xbf" + text.encode())
    assert rows[0] == ALPACA[0]


@pytest.mark.parametrize(
    "fields, mapping",
    [
        (("prompt", "completion"), {"prompt": "instruction", "completion": "output"}),
        (("question", "answer"), {"question": "instruction", "answer": "output"}),
        (("prompt", "response"), {"prompt": "instruction", "response": "output"}),
        (("Instruction", "Output"), {"Instruction": "instruction", "Output": "output"}),
    ],
)
def test_aliases_are_mapped_and_reported(tmp_path, fields, mapping):
    report, rows = run(tmp_path, jsonl([{fields[0]: "Q", fields[1]: "A", "context": "C"}]))
    assert rows == [{"instruction": "Q", "input": "C", "output": "A"}]
    assert report.column_mapping == {**mapping, "context": "input"}


@pytest.mark.parametrize(
    "filename, data, fmt",
    [
        ("notes.txt", jsonl(ALPACA), "jsonl"),
        ("data.json", jsonl(ALPACA), "jsonl"),
        ("data.jsonl", json.dumps(ALPACA), "json"),
        ("data.json", "instruction,output\nq,a\n", "csv"),
        ("data.csv", jsonl(ALPACA), "jsonl"),
        (None, jsonl(ALPACA), "jsonl"),
    ],
)
def test_format_is_decided_by_content(tmp_path, filename, data, fmt):
    report, _ = run(tmp_path, data, filename)
    assert report.format == fmt


def test_scalars_become_text(tmp_path):
    records = [{"instruction": 12, "input": None, "output": True}, {"prompt": "x", "completion": 1.5}]
    _, rows = run(tmp_path, jsonl(records))
    assert rows == [
        {"instruction": "12", "input": "", "output": "true"},
        {"instruction": "x", "input": "", "output": "1.5"},
    ]


def test_empty_outputs_are_dropped_with_a_warning(tmp_path):
    data = jsonl([ALPACA[0], {"instruction": "a", "output": ""}, {"instruction": "b", "output": None},
                  {"instruction": "c"}, {"instruction": "d", "output": "  "}, ALPACA[1]])
    report, rows = run(tmp_path, data)
    assert rows == ALPACA
    assert (report.total_rows, report.total_samples) == (6, 2)
    assert report.null_counts["output"] == 4
    assert report.null_counts["input"] == 5  # four rows without the field, one empty
    assert report.warnings == ["4 line(s) with an empty output were dropped (line 2, 3, 4, 5)"]


def test_preview_is_first_five_original_rows_truncated(tmp_path):
    records = [{"prompt": f"q{i}", "completion": "x" * 2000} for i in range(8)]
    report, _ = run(tmp_path, jsonl(records))
    assert [r["prompt"] for r in report.preview] == ["q0", "q1", "q2", "q3", "q4"]
    assert len(report.preview[0]["completion"]) == 501  # 500 characters and an ellipsis


def test_size_and_token_estimates(tmp_path):
    report, _ = run(tmp_path, jsonl([{"instruction": "a" * 40, "input": "b" * 20, "output": "c" * 40}, ALPACA[0]]))
    assert report.max_chars == 100
    assert report.total_tokens_estimate == (100 + len("Name a colour.") + len("Blue.")) // 4
    assert report.size_bytes == (tmp_path / "upload.bin").stat().st_size


def test_sha256_is_of_the_original_bytes(tmp_path):
    data = b"\xef\xbb\xbf" + jsonl(ALPACA).encode()
    first, _ = run(tmp_path, data, "a.jsonl")
    second, _ = run(tmp_path, data, "other-name.txt")
    third, _ = run(tmp_path, data + b"\n")
    assert first.sha256 == second.sha256 == hashlib.sha256(data).hexdigest()
    assert third.sha256 != first.sha256


def test_max_bytes(tmp_path):
    data = jsonl(ALPACA)
    with pytest.raises(PayloadTooLarge, match=f"limit is {len(data) - 1} bytes"):
        run(tmp_path, data, max_bytes=len(data) - 1)
    assert run(tmp_path, data, max_bytes=len(data))[0].total_samples == 2


def test_failure_leaves_nothing_on_disk(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    src = tmp_path / "bad.jsonl"
    src.write_text(jsonl(ALPACA * 600) + "{broken\n")  # fails after many rows were written
    with pytest.raises(DatasetInvalid):
        ingest_file(src, out_dir / "data.jsonl")
    assert list(out_dir.iterdir()) == []


def test_success_replaces_the_output_atomically(tmp_path):
    (tmp_path / "normalized.jsonl").write_text("stale\n")
    _, rows = run(tmp_path, jsonl(ALPACA))
    assert rows == ALPACA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["normalized.jsonl", "upload.bin"]


def test_filename_never_becomes_a_path(tmp_path):
    report, _ = run(tmp_path, jsonl(ALPACA), "../../etc/passwd.json")
    assert report.format == "jsonl"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["normalized.jsonl", "upload.bin"]
