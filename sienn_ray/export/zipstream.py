"""A ZIP archive of files on disk, produced as a stream of chunks in constant memory.

``zipfile`` writes into a sink that cannot seek, so it emits each entry's sizes
and CRC in a data descriptor after the data instead of going back to patch the
header; after every write the sink hands over what it holds. Whatever the
model's size, memory stays at about one read chunk. Weights are stored (they do
not compress); text files are deflated.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

CHUNK_BYTES = 1 << 20
_STORED_SUFFIXES = (".gguf", ".safetensors", ".bin", ".zip")


class _Sink(io.RawIOBase):
    """Write-only, non-seekable: collects bytes until ``take`` hands them over."""

    def __init__(self):
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def check_arcname(name: str) -> str:
    """Reject absolute paths, ``..`` and backslashes: members unpack where the user unzips."""
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or name != path.as_posix():
        raise ValueError(f"not a plain relative archive path: {name!r}")
    return name


def zip_stream(files: Sequence[tuple[Path, str]], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Yield a ZIP of ``(path on disk, name in archive)`` pairs, chunk by chunk."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", allowZip64=True) as archive:
        for path, arcname in files:
            info = zipfile.ZipInfo.from_file(path, check_arcname(arcname))
            stored = arcname.endswith(_STORED_SUFFIXES)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            with open(path, "rb") as src, archive.open(info, mode="w") as dst:
                while block := src.read(chunk_bytes):
                    dst.write(block)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    if data := sink.take():
        yield data
