"""`python -m sienn_ray env`: the shell lines that point `ray` / `serve` CLIs at this stack.

``eval "$(.venv/bin/python -m sienn_ray env)"`` in a new shell makes ``ray status``,
``serve status`` and ``ray job submit`` reach this SIENN_HOME's stack with its token.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from ..settings import Settings, get_settings
from .head import HeadRecord, running_record


def export_lines(settings: Settings, rec: HeadRecord) -> list[str]:
    """``export``/``unset`` lines for ``rec`` (the running head, or the settings' addresses when down)."""
    values = {
        "SIENN_HOME": str(settings.home),
        "SIENN_HTTP_HOST": rec.http_host,
        "SIENN_HTTP_PORT": str(rec.http_port),
        "SIENN_RAY_PORT": str(rec.ray_port),
        "SIENN_DASHBOARD_PORT": str(rec.dashboard_port),
        "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token"),
        # `ray status`, ray.init() and `serve run` want the GCS address; `ray job submit` reads
        # RAY_API_SERVER_ADDRESS first and `serve deploy/status/shutdown` RAY_DASHBOARD_ADDRESS.
        "RAY_ADDRESS": rec.ray_address,
        "RAY_API_SERVER_ADDRESS": rec.dashboard_url,
        "RAY_DASHBOARD_ADDRESS": rec.dashboard_url,
    }
    if values["RAY_AUTH_MODE"] == "token":
        values["RAY_AUTH_TOKEN_PATH"] = str(settings.ray_auth_token_path)  # the path, never the token
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    lines.append("unset RAY_AUTH_TOKEN")  # it would win over RAY_AUTH_TOKEN_PATH in Ray's lookup
    # The venv's `ray`, `serve` and `python` (where the project is installed) come first.
    lines.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    return lines


def print_env() -> int:
    """Print the lines for this SIENN_HOME: the running head's addresses, else the settings'."""
    settings = get_settings()
    rec = running_record(settings.run_dir) or HeadRecord.from_settings(settings)
    print("\n".join(export_lines(settings, rec)))
    return 0
