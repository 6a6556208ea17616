"""ingest_file on broken uploads: each is refused with a message that names the problem and where."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from sienn_ray.data.ingest import ingest_file
from sienn_ray.errors import DatasetInvalid

GOOD = {"instruction": "Name a colour.", "input": "", "output": "Blue."}
CHAT_USER = {"role": "user", "content": "Hi"}
CHAT_BOT = {"role": "assistant", "content": "Hello."}


def jsonl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def refuse(tmp_path: Path, data: bytes | str, filename: str | None = None) -> DatasetInvalid:
    """Ingest and expect DatasetInvalid; also check that nothing was written."""
    src = tmp_path / "upload"
    src.write_bytes(data.encode() if isinstance(data, str) else data)
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    with pytest.raises(DatasetInvalid) as info:
        ingest_file(src, out_dir / "data.jsonl", filename=filename)
    assert list(out_dir.iterdir()) == []
    assert info.value.errors and info.value.status_code == 400
    return info.value


CASES = {
    "empty file": (b"", None, ["the file is empty"]),
    "whitespace only": (" \n\t\r\n  \n", None, ["only whitespace"]),
    "bom and whitespace only": (b"\xef\xbb\xbf  \n", None, ["only whitespace"]),
    "binary garbage": (b"instruction,output\nok,fine\n\xff\xfegarbage", None, ["not UTF-8", "0xff", "offset 27"]),
    "nul bytes": (b"abc\x00\x00\x01\x02", None, ["binary", "offset 3"]),
    "zip archive": (b"PK\x03\x04\x14\x00\x00\x00", "data.xlsx", ["ZIP archive"]),
    "utf-16": ("\ufeffinstruction,output\n".encode("utf-16-le"), None, ["UTF-16"]),
    "pretty-printed object": (json.dumps(GOOD, indent=2), "data.json", ["expected an array of objects or JSON lines"]),
    "object holding the list": (json.dumps({"data": [GOOD]}), "data.json",
                                ["expected an array of objects or JSON lines", "'data'"]),
    "broken jsonl line": (jsonl(GOOD, GOOD, '{"instruction": "x", "output": }', GOOD), None,
                          ["line 3: invalid JSON", "Expecting value"]),
    "jsonl line not an object": (jsonl(GOOD, "[1, 2]"), None, ["line 2: expected a JSON object, got an array"]),
    "json array of non-objects": ('[1, 2, "three"]', None, ["item 1: expected a JSON object, got a number"]),
    "truncated json array": (json.dumps([GOOD, GOOD])[:-20], None, ["truncated", "item 2"]),
    "array not closed": ('[{"instruction": "a", "output": "b"}', None, ["truncated", "without a closing ']'"]),
    "invalid json in array item": ('[{"instruction": "a", "output": "b"},\n {"instruction": x}]', None,
                                   ["item 2: invalid JSON", "line 2"]),
    "trailing comma in array": ('[{"instruction": "a", "output": "b"},]', None, ["trailing comma after item 1"]),
    "data after the array": ('[{"instruction": "a", "output": "b"}] []', None, ["after the end of the JSON array"]),
    "csv without needed columns": ("title,body\nx,y\n", "data.csv",
                                   ["missing an instruction field", "accepted: instruction, prompt, question",
                                    "an output field", "columns found: 'title', 'body'"]),
    "jsonl without output field": (jsonl({"prompt": "a", "text": "b"}), None,
                                   ["missing an output field (accepted: output, completion", "'prompt', 'text'"]),
    "csv ragged rows": ("instruction,output\na,b\nc,d,e\nf\n", None,
                        ["row 3: has 3 fields but the header has 2", "row 4: has 1 fields"]),
    "csv duplicate columns": ("instruction,output,Output\na,b,c\n", None,
                              ["duplicate column names", "'Output' (columns 2 and 3)"]),
    "csv unclosed quote": ('instruction,output\na,"never closed\n', None, ["row 2: malformed CSV"]),
    "empty instruction": (jsonl(GOOD, {"instruction": " ", "output": "x"}), None,
                          ["line 2: the instruction ('instruction') is empty"]),
    "nested output": (jsonl(GOOD, {"instruction": "a", "output": {"text": "b"}}), None,
                      ["line 2: 'output' holds an object, expected text"]),
    "chat bad role": (jsonl({"messages": [{"role": "bot", "content": "x"}, CHAT_BOT]}), None,
                      ["line 1: message 1 has role 'bot'; expected one of system, user, assistant"]),
    "chat missing content": (jsonl({"messages": [{"role": "user"}, CHAT_BOT]}), None,
                             ["line 1: message 1 has no content"]),
    "chat no assistant": (jsonl({"messages": [CHAT_USER]}), None, ["line 1: no assistant message"]),
    "chat messages not a list": (jsonl({"messages": "hello"}), None, ["'messages' must be a non-empty list"]),
    "chat then instruction": (jsonl({"messages": [CHAT_USER, CHAT_BOT]}, GOOD), None,
                              ["line 2: an instruction record among chat records: mixed formats"]),
    "instruction then chat": (jsonl(GOOD, {"messages": [CHAT_USER, CHAT_BOT]}), None,
                              ["line 2: a chat record ('messages') among instruction records: mixed formats"]),
    "no usable rows": (jsonl({"instruction": "a", "output": ""}), None, ["no usable rows"]),
    "empty json array": ("[ ]", None, ["no records"]),
    "csv header only": ("instruction,output\n", None, ["no records"]),
    "json-named file that is not json": ("hello world\n", "data.jsonl", ["line 1: invalid JSON"]),
    "lone surrogate": (jsonl({"instruction": "a", "output": "\\ud800"}).replace("\\\\", "\\"), None,
                       ["line 1: contains an invalid Unicode escape"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_refused_with_a_specific_message(tmp_path, name):
    data, filename, expected = CASES[name]
    error = refuse(tmp_path, data, filename)
    text = " | ".join(error.errors)
    for fragment in expected:
        assert fragment in text, (fragment, error.errors)
    assert error.detail.startswith("Invalid dataset: ") and error.errors[0] in error.detail


def test_invalid_utf8_deep_in_a_large_file_names_the_offset(tmp_path):
    head = jsonl(*[GOOD] * 40000).encode()  # larger than the sniffed head and one read chunk
    error = refuse(tmp_path, head + b'{"instruction": "caf\xc3", "output": "x"}\n')
    assert error.errors[-1] == f"the file is not UTF-8 text: invalid byte 0xc3 at byte offset {len(head) + 20}"


def test_all_problems_are_collected_and_capped_at_twenty(tmp_path):
    rows = [GOOD] + ["{oops"] * 25 + [{"instruction": "", "output": "x"}] * 5
    error = refuse(tmp_path, jsonl(*rows))
    assert len(error.errors) == 21
    assert error.errors[0].startswith("line 2: invalid JSON")
    assert error.errors[19].startswith("line 21: ")
    assert error.errors[20] == "... and 10 more problems"
    assert "and 29 more problems; see errors" in error.detail


def test_errors_survive_pickling(tmp_path):
    error = refuse(tmp_path, jsonl(GOOD, "{oops"))
    clone = pickle.loads(pickle.dumps(error))
    assert clone.errors == error.errors and clone.detail == error.detail
