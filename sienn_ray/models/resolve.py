"""Turn a base-model name into a local directory, or fail with the alternatives.

Order: a built-in model (the real default and the toy models, prepared on
demand), then a model folder or ``.gguf`` file inside the model roots
(``roots.py``; a GGUF is converted once, ``gguf_import.py``), then a model
already in the Hugging Face cache (when the cache is a root). Nothing is ever
downloaded and no remote code is ever trusted: a training cluster may have no
internet, and a name in a request must not make a node fetch and run code.
Every miss outside the roots answers the same 404, whether the path exists
or not. Facts about a model (architecture, size, context length) are read
from ``config.json`` and the safetensors headers, never by loading the weights.
"""

from __future__ import annotations

import json
from functools import lru_cache
from math import prod
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..errors import BadRequest, ModelNotFound
from ..paths import models_dir
from ..settings import get_settings
from .embedded import EMBEDDED_MODELS, ensure_toy_models
from .gguf_import import cached_conversion, file_sha256
from .model_config import context_length
from .pretrained import PRETRAINED_MODELS, prepare_pretrained
from .roots import escapes_roots, find_in_roots, inside_roots
from .safetensors_files import checkpoint_files, read_header

Source = Literal["embedded", "local", "gguf", "hf-cache"]
_MAX_NAME_LEN = 1024
TOY_DESCRIPTION = "Random-weight {arch} test model for fast tests: it knows no language until fine-tuned."
TOY_PROVENANCE = "Built locally by sienn-ray from a seed (no pretraining)."


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
    description: str
    provenance: str


def builtin_names() -> list[str]:
    """The built-in bases: the real pretrained ones first, then the toy test models."""
    return list(PRETRAINED_MODELS) + list(EMBEDDED_MODELS)


def resolve_model(name: str | None) -> ResolvedModel:
    """Resolve ``name`` (``None``: the default model) or raise ``ModelNotFound`` (``BadRequest`` for a bad GGUF)."""
    default = get_settings().default_model
    name = default if name is None else name
    _check_name(name)
    if name in PRETRAINED_MODELS:
        spec = PRETRAINED_MODELS[name]
        folder, source, about = prepare_pretrained(name), "embedded", (spec.description, spec.provenance)
    elif name in EMBEDDED_MODELS:
        folder, source = ensure_toy_models()[name], "embedded"
        arch = EMBEDDED_MODELS[name].architecture.replace("gpt2", "GPT-2").replace("llama", "Llama")
        about = (TOY_DESCRIPTION.format(arch=arch), TOY_PROVENANCE)
    elif (found := find_in_roots(name)) is not None:
        name, folder, source, about = _from_roots(name, found)
    else:
        folder, source, about = _from_hf_cache(name)
    return _describe(name, folder, source, about, is_default=name == default)


def list_models() -> list[ResolvedModel]:
    """The base models usable now: the built-in ones, then causal LMs in the HF cache."""
    models = [resolve_model(name) for name in builtin_names()]
    for repo_id in _cached_repo_ids():
        try:
            models.append(resolve_model(repo_id))
        except (ModelNotFound, BadRequest):
            continue  # cached but not a usable causal LM (a tokenizer repo, a BERT, ...)
    return models


def _not_found(name: str, why: str | None = None) -> ModelNotFound:
    """The 404; ``why`` only for names found inside the roots (nothing else may vary with the filesystem)."""
    available = builtin_names()
    why = why or ("it is not a built-in model, a model folder or .gguf file inside the allowed model folders "
                  "(SIENN_MODEL_DIRS), or a model in the Hugging Face cache")
    return ModelNotFound(
        f"Model {name!r} not found: {why}. Built-in models: {', '.join(available)} (nothing is downloaded).",
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


def _from_roots(name: str, found: Path) -> tuple[str, Path, Source, tuple[str, str]]:
    """(name, folder, source, (description, provenance)) of a folder or GGUF inside the roots."""
    gguf_file = found if found.is_file() and found.suffix == ".gguf" else None
    if gguf_file is None and found.is_dir() and not _is_model_dir(found):
        ggufs = sorted(found.glob("*.gguf"))
        if len(ggufs) > 1:
            raise BadRequest(f"{name!r} holds {len(ggufs)} GGUF files; name one of them: "
                             + ", ".join(p.name for p in ggufs))
        gguf_file = ggufs[0].resolve() if ggufs else None
    if gguf_file is not None:
        if not inside_roots(gguf_file):
            raise _not_found(name)
        folder = cached_conversion(gguf_file, models_dir())
        about = ("Converted from a GGUF file", f"Dequantized to float32 by transformers' GGUF loader from "
                 f"{gguf_file.name} (sha256 {file_sha256(gguf_file)}), converted once and cached.")
        return str(gguf_file), folder, "gguf", about
    if not _is_model_dir(found):
        raise _not_found(name, "it is neither a model folder with config.json nor a .gguf file")
    if escapes_roots(found):
        raise _not_found(name)
    return str(found), found, "local", ("Local Hugging Face model folder", f"Loaded from {found}")


def _from_hf_cache(name: str) -> tuple[Path, Source, tuple[str, str]]:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    cache = Path(constants.HF_HUB_CACHE).expanduser().resolve()
    if not inside_roots(cache):
        raise _not_found(name)
    try:
        snapshot = Path(snapshot_download(name, local_files_only=True, cache_dir=str(cache)))
    except (HFValidationError, LocalEntryNotFoundError, OSError, ValueError):
        raise _not_found(name) from None
    if not inside_roots(snapshot.resolve()) or escapes_roots(snapshot):
        raise _not_found(name)
    if not _is_model_dir(snapshot):
        raise _not_found(name, "the cached copy has no config.json")
    about = ("Model from the Hugging Face cache", f"{name} at revision {snapshot.name} (already cached; "
             "nothing is downloaded)")
    return snapshot, "hf-cache", about


def _cached_repo_ids() -> list[str]:
    from huggingface_hub import constants, scan_cache_dir

    try:
        info = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # no cache yet, or one we cannot read: nothing to list
        return []
    return sorted(repo.repo_id for repo in info.repos if repo.repo_type == "model")


def _describe(name: str, folder: Path, source: Source, about: tuple[str, str], is_default: bool) -> ResolvedModel:
    config_path = folder / "config.json"
    facts = _model_facts(str(folder), config_path.stat().st_mtime_ns)
    description, provenance = about
    return ResolvedModel(name=name, path=str(folder), source=source, is_default=is_default,
                         description=description, provenance=provenance, **facts)


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
    return {
        "architecture": architectures[0],
        "model_type": model_type,
        "num_parameters": _count_parameters(path, config),
        "max_position_embeddings": context_length(config) or 0,  # 0: the config states none
    }


def _count_parameters(folder: Path, config: dict) -> int:
    """Sum of tensor sizes in the safetensors headers; a tied lm_head counts once."""
    files = checkpoint_files(folder)
    if not files:
        raise _not_found(str(folder), "it has no safetensors weights")
    tied = config.get("tie_word_embeddings", True)
    total = 0
    for file in files:
        for tensor, entry in read_header(file)[0].items():
            if not (tied and tensor == "lm_head.weight"):
                total += prod(entry["shape"])
    return total
