"""Whether a folder holds a PEFT adapter we can serve: the one check every caller uses. Plain Python, no Ray."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelNotFound
from ..models.lora_adapter import ADAPTER_CONFIG, ADAPTER_WEIGHTS


def adapter_present(folder: str | Path | None) -> bool:
    """True when ``folder`` has an adapter config and adapter weights (two stats, no reading)."""
    if not folder:
        return False
    folder = Path(folder)
    return (folder / ADAPTER_CONFIG).is_file() and any((folder / name).is_file() for name in ADAPTER_WEIGHTS)


def require_adapter(folder: str | Path | None, model_id: str) -> Path:
    """``folder`` as a Path, or ``ModelNotFound`` naming ``model_id`` (never the path) when its files are missing."""
    if not adapter_present(folder):
        raise ModelNotFound(f"The adapter files of {model_id} are missing", model_id=model_id)
    return Path(folder)


__all__ = ["adapter_present", "require_adapter"]
