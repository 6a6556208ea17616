"""What a model's ``config.json`` says, read the one way every part of sienn-ray reads it. No Ray."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

# Keys different architectures use for the context length, most specific first.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


def read_model_config(model_path: str | Path) -> dict:
    """The ``config.json`` of the model folder ``model_path``."""
    return json.loads((Path(model_path) / "config.json").read_text(encoding="utf-8"))


def context_length(config: Mapping) -> int | None:
    """The longest sequence the model takes, from its config (None when the config states none)."""
    return next((config[key] for key in CONTEXT_KEYS if isinstance(config.get(key), int)), None)


__all__ = ["CONTEXT_KEYS", "context_length", "read_model_config"]
