"""Making storage fail for real in the chaos tests: an immutable file, a small tmpfs filled to the brim.

Both need root (``chattr +i``, ``mount``); the tests that use them skip where that is not allowed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sienn_ray.schemas.common import utcnow
from sienn_ray.schemas.datasets import DatasetRecord, DatasetValidation


def set_immutable(path: Path, on: bool) -> bool:
    """``chattr +i`` / ``-i``: an immutable file cannot be opened for writing, not even by root."""
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


def mount_tmpfs(folder: Path, size_mb: int) -> bool:
    """A RAM file system of ``size_mb`` at ``folder``: a disk that really runs full."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the file system under ``folder`` until ``leave_bytes`` are free (one filler file)."""
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free - leave_bytes
    with open(filler, "ab") as out:
        block = b"\0" * (1 << 20)
        while free > 0:
            try:
                out.write(block[:min(free, len(block))])
                out.flush()
            except OSError:  # full already
                break
            free -= len(block)
    return filler


def dataset_record(dataset_id: str, preview_chars: int = 10) -> DatasetRecord:
    return DatasetRecord(
        dataset_id=dataset_id, filename="chaos.jsonl", format="jsonl", total_samples=1, size_bytes=1,
        preview=[{"instruction": "x" * preview_chars, "output": "y"}],
        validation=DatasetValidation(valid=True, columns=["instruction", "output"], null_counts={}),
        uploaded_at=utcnow(), sha256="a" * 64,
    )
