"""Exit 0 when this interpreter already has what pyproject.toml asks (the Makefile's install gate).

Run by path (``python sienn_ray/ops/requirements_check.py [--extra test] [--also NAME]``),
before the project is installed, so it uses only the standard library and ``packaging``.
Why not a stamp file: a stamp older than pyproject.toml (any fresh checkout) forces a
reinstall into a venv that already has everything, and cannot see a venv changed by
hand. Why not pip: ``pip install --dry-run`` resolves against the indexes (seconds, and
it builds the project's metadata); this reads the installed metadata, well under a second.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _requirements(extra: str | None) -> list[str]:
    import tomllib

    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return list(project["optional-dependencies"][extra] if extra else project["dependencies"])


def missing(requirements: list[str], recurse: bool = True) -> list[str]:
    """Requirements not met here (with their extras' and dependencies' requirements when ``recurse``)."""
    from packaging.requirements import Requirement

    problems: list[str] = []
    seen: set[tuple[str, frozenset]] = set()
    todo = [(Requirement(r), None) for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra or ""}):
            continue
        key = (req.name.lower(), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{req} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            problems.append(f"{req} (have {dist.version})")
            continue
        for sub in (dist.requires or []) if recurse else []:
            sub_req = Requirement(sub)
            for sub_extra in [None, *req.extras]:
                todo.append((sub_req, sub_extra))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", help="check this optional-dependencies group instead of the runtime one")
    parser.add_argument("--also", action="append", default=[],
                        help="a distribution installed with --no-deps that must be present (its own deps not checked)")
    args = parser.parse_args()
    try:
        problems = (missing(_requirements(args.extra) + ([] if args.extra else ["sienn-ray"]))
                    + missing(args.also, recurse=False))
    except ImportError as err:  # a bare venv without packaging (or Python < 3.11): install
        problems = [str(err)]
    for problem in problems:
        print(f"missing: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
