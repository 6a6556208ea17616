"""The model roots: the only folders a ``model_name`` may point into (``SIENN_MODEL_DIRS``).

A name is expanded (``~``, ``~user``) and resolved (symlinks, ``..``) before it
is compared with the roots, so no spelling reaches a file outside them. A
relative name is looked up inside each root in turn. Callers answer every
miss with one message, whether or not the path exists outside the roots.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import get_settings


def model_roots() -> tuple[Path, ...]:
    """The configured roots, resolved."""
    return get_settings().model_dirs


def inside_roots(path: Path, roots: tuple[Path, ...] | None = None) -> bool:
    """True if ``path`` (already resolved) is one of the roots or below one."""
    roots = model_roots() if roots is None else roots
    return any(path == root or path.is_relative_to(root) for root in roots)


def find_in_roots(name: str) -> Path | None:
    """The existing file or folder ``name`` means inside the roots (resolved), else None."""
    roots = model_roots()
    try:
        expanded = Path(name).expanduser()
    except RuntimeError:  # "~nosuchuser": no home to expand to; then it is a relative name
        expanded = Path(name)
    candidates = [expanded] if expanded.is_absolute() else [root / expanded for root in roots]
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            if inside_roots(resolved, roots) and resolved.exists():
                return resolved
        except (OSError, RuntimeError):  # a name too long for the filesystem, a symlink loop
            continue
    return None


def escapes_roots(folder: Path) -> bool:
    """True if any entry of ``folder`` resolves outside the roots (e.g. a weights file symlinked out)."""
    roots = model_roots()
    try:
        return any(not inside_roots(entry.resolve(), roots) for entry in Path(folder).iterdir())
    except (OSError, RuntimeError):
        return True
