"""Building a model folder so that no reader ever sees half of one.

Every prepared base (the toy models, the real default, converted GGUF files)
is written into a sibling temp folder and renamed into place whole, under an
exclusive file lock so that concurrent preparers (``make up``, test sessions,
API replicas) build it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created if missing) for the block."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_dir(dest: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a sibling temp folder, then rename it to ``dest`` (replacing it)."""
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.build-", dir=dest.parent))
    try:
        write(tmp)
        make_readable(tmp)
        replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def make_readable(folder: Path) -> None:
    """mkdtemp (and safetensors) create owner-only modes; every node and user must read the model."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def replace_dir(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``; an existing ``dest`` is swapped out, then removed."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)  # left by a killed run whose pid this process now has
        os.rename(dest, old)
    os.rename(src, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(root: Path, name: str) -> None:
    """Delete the temp and swapped-out folders a killed build of ``name`` left (call under the lock)."""
    for pattern in (f".{name}.build-*", f".{name}.old-*"):
        for leftover in Path(root).glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
