"""One settings object read from the environment; every other module asks it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The built-in real pretrained base (models/pretrained.py); the toy models stay for fast tests.
DEFAULT_MODEL = "smollm2-135m-instruct"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Runtime settings. ``SIENN_HOME`` is the storage root that every node must see."""

    home: Path = field(default_factory=lambda: Path(os.environ.get("SIENN_HOME", PROJECT_DIR / ".sienn")).resolve())
    database_url: str | None = field(default_factory=lambda: os.environ.get("SIENN_DATABASE_URL") or None)
    max_upload_bytes: int = field(default_factory=lambda: _int_env("SIENN_MAX_UPLOAD_BYTES", 2 * 1024**3))
    default_model: str = field(default_factory=lambda: os.environ.get("SIENN_DEFAULT_MODEL", DEFAULT_MODEL))
    ray_namespace: str = field(default_factory=lambda: os.environ.get("SIENN_RAY_NAMESPACE", "sienn"))
    http_host: str = field(default_factory=lambda: os.environ.get("SIENN_HTTP_HOST", "127.0.0.1"))
    http_port: int = field(default_factory=lambda: _int_env("SIENN_HTTP_PORT", 8000))
    # os.pathsep-separated; unset: the storage root's models/ plus the Hugging Face hub cache.
    model_dirs_env: str | None = field(default_factory=lambda: os.environ.get("SIENN_MODEL_DIRS") or None)

    @property
    def model_dirs(self) -> tuple[Path, ...]:
        """The only folders local models and GGUF files load from, symlinks and ``..`` resolved."""
        if self.model_dirs_env:
            parts = [part for part in self.model_dirs_env.split(os.pathsep) if part.strip()]
            return tuple(Path(part).expanduser().resolve() for part in parts)
        from huggingface_hub import constants

        # Read at call time, so an HF_HUB_CACHE the operator (or a test) sets applies.
        return ((self.home / "models").resolve(), Path(constants.HF_HUB_CACHE).expanduser().resolve())

    @property
    def db_url(self) -> str:
        """The metadata store: the configured URL, else SQLite inside the storage root."""
        return self.database_url or f"sqlite:///{self.home / 'sienn.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change SIENN_HOME between sessions)."""
    get_settings.cache_clear()


# Ray 2.60 turns token auth on by default and then every client (ray status, ray job
# submit, serve deploy) must agree on the mode. This is the one place that decides it;
# the Makefile exports the same value.
RAY_AUTH_MODE = "token"


def apply_ray_env() -> None:
    """Environment every Ray process and client of ours shares."""
    os.environ.setdefault("RAY_AUTH_MODE", RAY_AUTH_MODE)
    # `ray job submit ... -- python -m sienn_ray ...` runs `python` from the cluster's PATH:
    # make it this interpreter (the project's venv), where the project is installed.
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("SIENN_HOME", str(get_settings().home))
    # Ray Train V2 polls worker health every few seconds by default; this keeps fit() start-up short.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    # A worker whose node vanished answers no health check; Ray Train's default waits 10 minutes
    # before restarting the group from the last checkpoint. One minute is plenty.
    os.environ.setdefault("RAY_TRAIN_WORKER_HEALTH_CHECK_TIMEOUT_S", "60")
    # On a loaded 2-core machine the Serve proxy can take longer than the 5 s default
    # readiness check to start, and Serve then kills it in a loop.
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
    os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "30")
