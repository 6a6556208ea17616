"""A GGUF file as a base model: converted once into an ordinary Hugging Face folder.

transformers reads GGUF (``from_pretrained(..., gguf_file=...)``) by
dequantizing every tensor, but a model loaded that way refuses
``save_pretrained`` and carries a quantization marker in its config. So the
conversion builds a clean model from that config without the marker, loads the
dequantized state dict into it and saves config, float32 safetensors,
tokenizer (with the pre-tokenizer llama.cpp runs for the file, so both
tokenize alike), chat template and generation config. Every other module then
treats the result like any local base.

User files are cached by their sha256 under ``models/gguf-<sha>/``; the folder
is written whole (temp dir + rename) under a lock, so it is converted once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path

from ..errors import BadRequest
from .atomic import build_dir, exclusive_lock, remove_leftovers

log = logging.getLogger(__name__)

STAMP_FILE = "sienn_gguf.json"
# Bump when the conversion changes, so cached conversions are rebuilt.
CONVERSION_VERSION = 1
_HASH_BLOCK = 1 << 20


def _norm(arch: str) -> str:
    """llama.cpp and transformers spell some names differently (qwen2moe / qwen2_moe, gpt-oss / gpt_oss)."""
    return arch.replace("_", "").replace("-", "").lower()


def supported_architectures() -> list[str]:
    """Causal-LM architectures transformers' GGUF integration can load, as transformers names them."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    causal = {_norm(name) for name in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES}
    # The mapping also holds the "general"/"tokenizer" key groups, and encoder-decoders (t5) that are no base.
    return sorted(arch for arch in GGUF_SUPPORTED_ARCHITECTURES
                  if _norm(arch) in causal or _norm(arch + "_text") in causal)


def read_metadata(gguf_file: Path, keys: tuple[str, ...]) -> dict:
    """The scalar/string values of ``keys`` in the GGUF header (absent keys are left out)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(gguf_file))
    except Exception as err:  # noqa: BLE001 - any parse failure means "not a GGUF we can read"
        raise BadRequest(f"{Path(gguf_file).name} is not a readable GGUF file ({type(err).__name__})") from None
    out = {}
    for key in keys:
        field = reader.get_field(key)
        if field is not None:
            out[key] = field.contents()
    return out


def check_architecture(gguf_file: Path) -> str:
    """The file's ``general.architecture``, or BadRequest naming the supported ones."""
    arch = read_metadata(gguf_file, ("general.architecture",)).get("general.architecture")
    supported = supported_architectures()
    if not isinstance(arch, str) or _norm(arch) not in {_norm(a) for a in supported}:
        raise BadRequest(f"GGUF architecture {arch!r} cannot be loaded by transformers as a causal language "
                         f"model; supported: {', '.join(supported)}", supported=supported)
    return arch


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, remembered per (size, mtime) so a large file is hashed once per process."""
    stat = Path(path).stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def is_converted(folder: Path, sha256: str) -> bool:
    """True if ``folder`` holds a complete conversion of the GGUF with this sha256."""
    try:
        stamp = json.loads((Path(folder) / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp.get("sha256") == sha256 and stamp.get("version") == CONVERSION_VERSION


def ensure_converted(gguf_file: Path, dest: Path, *, stamp: dict | None = None) -> Path:
    """Convert ``gguf_file`` into ``dest`` unless a current conversion of the same bytes is there."""
    gguf_file = Path(gguf_file)
    sha = file_sha256(gguf_file)
    if is_converted(dest, sha):
        return dest
    check_architecture(gguf_file)
    with exclusive_lock(dest.parent / f".{dest.name}.lock"):
        remove_leftovers(dest.parent, dest.name)
        if not is_converted(dest, sha):
            log.info("converting %s into %s", gguf_file, dest)
            record = {"sha256": sha, "version": CONVERSION_VERSION, "source_file": gguf_file.name,
                      **(stamp or {})}
            build_dir(dest, lambda tmp: convert_gguf(gguf_file, tmp, record))
    return dest


def cached_conversion(gguf_file: Path, cache_root: Path) -> Path:
    """The converted folder of a user's GGUF: ``cache_root/gguf-<sha256[:16]>``, converted on first use."""
    sha = file_sha256(gguf_file)
    return ensure_converted(gguf_file, Path(cache_root) / f"gguf-{sha[:16]}")


def convert_gguf(gguf_file: Path, folder: Path, stamp: dict) -> None:
    """Write the Hugging Face folder for ``gguf_file`` into ``folder`` (float32 weights)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    source, name = str(gguf_file.parent), gguf_file.name
    meta = read_metadata(gguf_file, ("tokenizer.ggml.pre", "tokenizer.ggml.add_bos_token",
                                     "tokenizer.ggml.add_eos_token"))
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    model = _without_quantization_marker(loaded)
    del loaded
    model.save_pretrained(folder)
    del model
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    tokenizer.save_pretrained(folder)
    _match_llama_cpp_tokenizer(folder, meta)
    (folder / STAMP_FILE).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _without_quantization_marker(loaded):
    """A fresh model of ``loaded``'s class and config (no ``quantization_config``) holding its weights."""
    import torch
    from transformers import AutoModelForCausalLM

    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    for key in ("_name_or_path", "_model_name_or_path"):
        config_dict.pop(key, None)
    config_dict["architectures"] = [type(loaded).__name__]
    config = type(loaded.config).from_dict(config_dict)
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten at once
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # A tied lm_head is not a separate tensor in every state dict; anything else must match.
    missing = [key for key in missing if not (config.tie_word_embeddings and key == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"GGUF conversion lost tensors: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    return model


def _match_llama_cpp_tokenizer(folder: Path, meta: dict) -> None:
    """Give the saved tokenizer the pre-tokenizer and BOS/EOS flags the GGUF tells llama.cpp to use.

    transformers' GGUF tokenizer conversion always uses the plain GPT-2
    pre-tokenizer; llama.cpp splits e.g. every digit for "smollm". Unknown
    names keep transformers' choice (logged).
    """
    from ..export.tokenizer_meta import hf_pre_tokenizer

    pre = meta.get("tokenizer.ggml.pre")
    tokenizer_json = folder / "tokenizer.json"
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    wanted = hf_pre_tokenizer(pre) if isinstance(pre, str) else None
    if wanted is not None:
        spec["pre_tokenizer"] = wanted
        tokenizer_json.write_text(json.dumps(spec, ensure_ascii=False, indent=2), encoding="utf-8")
    elif pre is not None:
        log.warning("GGUF pre-tokenizer %r has no known tokenizer.json form; keeping transformers' conversion", pre)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    # Written explicitly: transformers 5 omits them, and converters that read only the JSON would guess.
    config["add_bos_token"] = bool(meta.get("tokenizer.ggml.add_bos_token", False))
    config["add_eos_token"] = bool(meta.get("tokenizer.ggml.add_eos_token", False))
    config["clean_up_tokenization_spaces"] = False
    model_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if isinstance(model_config.get("max_position_embeddings"), int):
        config["model_max_length"] = model_config["max_position_embeddings"]
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
