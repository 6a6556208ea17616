"""Streamed ZIPs: valid archives, plain relative names, memory independent of the file size."""

from __future__ import annotations

import io
import os
import tracemalloc
import zipfile

import pytest

from sienn_ray.export.zipstream import check_arcname, zip_stream


def test_archive_is_valid_and_stores_weights(tmp_path):
    weights = tmp_path / "model.gguf"
    weights.write_bytes(os.urandom(3_000_000))
    (tmp_path / "Modelfile").write_text("FROM ./model.gguf\n" * 100)
    data = b"".join(zip_stream([(weights, "pkg/model.gguf"), (tmp_path / "Modelfile", "pkg/Modelfile")],
                               chunk_bytes=65536))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    info = {i.filename: i for i in archive.infolist()}
    assert info["pkg/model.gguf"].compress_type == zipfile.ZIP_STORED
    assert info["pkg/Modelfile"].compress_type == zipfile.ZIP_DEFLATED
    assert archive.read("pkg/model.gguf") == weights.read_bytes()


def test_memory_does_not_grow_with_the_file(tmp_path):
    big = tmp_path / "big.safetensors"
    with open(big, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    tracemalloc.start()
    total = 0
    for chunk in zip_stream([(big, "big.safetensors")], chunk_bytes=1 << 20):
        total += len(chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total > 64 << 20
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB for a 64 MiB file"


@pytest.mark.parametrize("name", ["/abs/x", "../x", "a/../../x", "a\\b", "", "./x", "a//b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ValueError):
        check_arcname(name)
