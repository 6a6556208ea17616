"""A PEFT LoRA adapter as training writes it: file names, tensor names and each module's scaling. No Ray.

The one reader of that format for the two places that apply an adapter without
PEFT: the inference engine's bank (``inference/lora_bank.py``, torch tensors)
and the export's streaming merge (``export/merge.py``, numpy arrays). It works
on whichever tensors its caller loaded, so it imports neither torch nor numpy.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

ADAPTER_CONFIG = "adapter_config.json"
# Safetensors first: it is what training writes, and it is read without unpickling anything.
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
# PEFT saves ``base_model.model.<module>.lora_A.weight``; without the prefix the name is the module's path.
LORA_KEY = re.compile(r"(?:base_model\.model\.)?(.+)\.lora_([AB])\.weight")
# PEFT's defaults for a config that leaves them out.
_DEFAULT_R, _DEFAULT_ALPHA = 8, 8


def adapter_present(folder: str | Path | None) -> bool:
    """True when ``folder`` has an adapter config and adapter weights (two stats, no reading): the one
    "is the adapter there" check of training, evaluation, inference and export."""
    if not folder:
        return False
    folder = Path(folder)
    return (folder / ADAPTER_CONFIG).is_file() and any((folder / name).is_file() for name in ADAPTER_WEIGHTS)


T = TypeVar("T")


class NotPlainLora(ValueError):
    """The adapter holds something other than plain LoRA A/B pairs (the message names it)."""


def read_adapter_config(folder: str | Path) -> dict:
    """The adapter's ``adapter_config.json``."""
    return json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))


def lora_pairs(tensors: Mapping[str, T]) -> dict[str, tuple[T, T]]:
    """Module name -> (A, B) as PEFT stores them (A ``[r, in]``, B ``[out, r]``).

    ``NotPlainLora`` names a tensor that is not a LoRA A or B weight, or a module that lacks one of the two.
    """
    pairs: dict[str, dict[str, T]] = {}
    for key, tensor in tensors.items():
        match = LORA_KEY.fullmatch(key)
        if match is None:
            raise NotPlainLora(f"tensor {key} is not a LoRA A/B weight")
        pairs.setdefault(match.group(1), {})[match.group(2)] = tensor
    incomplete = sorted(module for module, pair in pairs.items() if set(pair) != {"A", "B"})
    if incomplete:
        raise NotPlainLora(f"modules {incomplete} lack lora_A or lora_B")
    return {module: (pair["A"], pair["B"]) for module, pair in pairs.items()}


def lora_scaling(config: dict, module: str) -> float:
    """PEFT's scaling of ``module``'s delta: alpha over the rank (its square root with rsLoRA),
    each read through ``alpha_pattern`` / ``rank_pattern``."""
    rank = _pattern_value(config.get("rank_pattern") or {}, module, config.get("r", _DEFAULT_R))
    alpha = _pattern_value(config.get("alpha_pattern") or {}, module, config.get("lora_alpha", _DEFAULT_ALPHA))
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _pattern_value(patterns: dict, module: str, default):
    """PEFT's rank_pattern/alpha_pattern lookup (``peft.utils.other.get_pattern_key``)."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


__all__ = ["ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "LORA_KEY", "NotPlainLora", "lora_pairs", "lora_scaling",
           "read_adapter_config"]
