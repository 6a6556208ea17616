"""An adapter folder for serving: present (``models/lora_adapter.adapter_present``) or a 404 naming the model."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelNotFound
from ..models.lora_adapter import adapter_present


def require_adapter(folder: str | Path | None, model_id: str) -> Path:
    """``folder`` as a Path, or ``ModelNotFound`` naming ``model_id`` (never the path) when its files are missing."""
    if not adapter_present(folder):
        raise ModelNotFound(f"The adapter files of {model_id} are missing", model_id=model_id)
    return Path(folder)


__all__ = ["require_adapter"]
