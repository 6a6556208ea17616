"""The safetensors files of a checkpoint and their JSON headers, read without loading any tensor. No Ray.

Written by hand because both readers need what the ``safetensors`` library does
not give without torch: the parameter count reads every dtype's shapes, and the
streaming merge (``export/merge.py``) reads bfloat16 tensors into numpy, which
``safe_open(framework="numpy")`` cannot.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def read_header(path: str | Path) -> tuple[dict[str, dict], int]:
    """(tensor name -> {dtype, shape, data_offsets}, byte offset where the tensor data starts).

    The format: an 8-byte little-endian header length, the JSON header, then the data.
    """
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header, 8 + length


def checkpoint_files(folder: str | Path) -> list[Path]:
    """The safetensors files of the checkpoint in ``folder``: the shards its index names, else
    ``model.safetensors``; empty when it has neither."""
    folder = Path(folder)
    index = folder / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / SINGLE_FILE
    return [single] if single.is_file() else []


__all__ = ["INDEX_FILE", "SINGLE_FILE", "checkpoint_files", "read_header"]
