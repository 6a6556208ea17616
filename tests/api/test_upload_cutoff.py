"""A multipart body that ends before its closing boundary is refused, and leaves no file behind (no Ray)."""

from __future__ import annotations

import asyncio

import pytest

from sienn_ray.api.upload import receive_upload
from sienn_ray.errors import BadRequest

BOUNDARY = "XyZ"
HEAD = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.jsonl\"\r\n\r\n"
        '{"instruction": "a", "output": "b"}\n').encode()
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


class FakeRequest:
    def __init__(self, body: bytes):
        self.headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        self._body = body

    async def stream(self):
        for i in range(0, len(self._body), 7):
            yield self._body[i:i + 7]


def test_a_body_cut_inside_the_file_part_is_400_and_nothing_is_kept(tmp_path):
    dest = tmp_path / "upload.bin"
    with pytest.raises(BadRequest, match="closing boundary"):
        asyncio.run(receive_upload(FakeRequest(HEAD + b'{"instruction": "c", "out'), dest, 1 << 20))
    assert not dest.exists()


def test_a_whole_body_is_received(tmp_path):
    upload = asyncio.run(receive_upload(FakeRequest(HEAD + TAIL), tmp_path / "upload.bin", 1 << 20))
    assert upload.filename == "d.jsonl" and upload.path.read_bytes() == HEAD.split(b"\r\n\r\n", 1)[1]
