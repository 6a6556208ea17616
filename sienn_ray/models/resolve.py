"""Turn a base-model name into a local directory, or fail with the alternatives.

Order: an embedded model (built on demand), then an existing local directory
holding ``config.json``, then a model already in the Hugging Face cache. Nothing
is ever downloaded and no remote code is ever trusted: a training cluster may
have no internet, and a name in a request must not make a node fetch and run
code. Facts about a model (architecture, size, context length) are read from
``config.json`` and the safetensors headers, never by loading the weights.
"""

from __future__ import annotations

import json
import struct
from functools import lru_cache
from math import prod
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..errors import ModelNotFound
from ..settings import get_settings
from .embedded import EMBEDDED_MODELS, ensure_embedded_models

Source = Literal["embedded", "local", "hf-cache"]
_MAX_NAME_LEN = 1024
# Keys different architectures use for the context length, most specific first.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


class ResolvedModel(BaseModel):
    """A base model that can be loaded now from ``path`` with ``from_pretrained``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    path: str
    source: Source
    architecture: str
    model_type: str
    num_parameters: int
    max_position_embeddings: int
    is_default: bool


def resolve_model(name: str | None) -> ResolvedModel:
    """Resolve ``name`` (``None``: the default model) or raise ``ModelNotFound``."""
    default = get_settings().default_model
    name = default if name is None else name
    _check_name(name)
    if name in EMBEDDED_MODELS:
        folder, source = ensure_embedded_models()[name], "embedded"
    elif _is_model_dir(Path(name).expanduser()):
        folder, source = Path(name).expanduser().resolve(), "local"
        name = str(folder)
    else:
        folder, source = _from_hf_cache(name), "hf-cache"
    return _describe(name, folder, source, is_default=name == default)


def list_models() -> list[ResolvedModel]:
    """The base models usable now: the embedded ones, then causal LMs in the HF cache."""
    models = [resolve_model(name) for name in EMBEDDED_MODELS]
    for repo_id in _cached_repo_ids():
        try:
            models.append(resolve_model(repo_id))
        except ModelNotFound:
            continue  # cached but not a usable causal LM (a tokenizer repo, a BERT, ...)
    return models


def _not_found(name: str, why: str) -> ModelNotFound:
    available = list(EMBEDDED_MODELS)
    return ModelNotFound(
        f"Model {name!r} not found: {why}. Available models: {', '.join(available)} "
        "(or a local directory with config.json, or a model already in the Hugging Face cache; "
        "nothing is downloaded).",
        available=available,
    )


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise _not_found(str(name), "the name is empty")
    if len(name) > _MAX_NAME_LEN or any(ord(ch) < 32 for ch in name):
        raise _not_found(name[:80], "the name is malformed")


def _is_model_dir(path: Path) -> bool:
    try:
        return path.is_dir() and (path / "config.json").is_file()
    except OSError:  # e.g. a name too long for the filesystem
        return False


def _from_hf_cache(name: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        # cache_dir read at call time so HF_HUB_CACHE set by the operator (or a test) applies.
        snapshot = Path(snapshot_download(name, local_files_only=True, cache_dir=constants.HF_HUB_CACHE))
    except HFValidationError:
        raise _not_found(name, "it is not an embedded model, a local model directory, or a valid hub id") from None
    except (LocalEntryNotFoundError, OSError):
        raise _not_found(name, "it is not an embedded model, a local model directory, or in the Hugging Face cache") from None
    if not _is_model_dir(snapshot):
        raise _not_found(name, "the cached copy has no config.json")
    return snapshot


def _cached_repo_ids() -> list[str]:
    from huggingface_hub import constants, scan_cache_dir

    try:
        info = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # no cache yet, or one we cannot read: nothing to list
        return []
    return sorted(repo.repo_id for repo in info.repos if repo.repo_type == "model")


def _describe(name: str, folder: Path, source: Source, is_default: bool) -> ResolvedModel:
    config_path = folder / "config.json"
    facts = _model_facts(str(folder), config_path.stat().st_mtime_ns)
    return ResolvedModel(name=name, path=str(folder), source=source, is_default=is_default, **facts)


@lru_cache(maxsize=256)
def _model_facts(folder: str, config_mtime_ns: int) -> dict:
    """Architecture, size and context of the model in ``folder``; cached per config version."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    path = Path(folder)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _not_found(folder, f"its config.json cannot be read ({exc})") from None
    model_type = config.get("model_type")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise _not_found(folder, f"model_type {model_type!r} is not a causal language model transformers supports natively")
    architectures = config.get("architectures") or [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type]]
    context = next((config[key] for key in _CONTEXT_KEYS if isinstance(config.get(key), int)), 0)
    return {
        "architecture": architectures[0],
        "model_type": model_type,
        "num_parameters": _count_parameters(path, config),
        "max_position_embeddings": context,
    }


def _count_parameters(folder: Path, config: dict) -> int:
    """Sum of tensor sizes in the safetensors headers; a tied lm_head counts once."""
    files = _weight_files(folder)
    if not files:
        raise _not_found(str(folder), "it has no safetensors weights")
    tied = config.get("tie_word_embeddings", True)
    total = 0
    for file in files:
        for tensor, shape in _safetensors_shapes(file).items():
            if not (tied and tensor == "lm_head.weight"):
                total += prod(shape)
    return total


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def _safetensors_shapes(file: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from the file's JSON header (8-byte length, then JSON)."""
    with open(file, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return {key: value["shape"] for key, value in header.items() if key != "__metadata__"}
