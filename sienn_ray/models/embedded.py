"""The two toy base models that ship with sienn-ray, built locally from a seed.

The platform must train, serve and export with no model hub, so it carries its
own base models: not as weights (that would bloat the package) but as a recipe.
``build_embedded_model`` trains a byte-level BPE tokenizer on the packaged
corpus and initialises the weights from a seed, then writes the ordinary
Hugging Face layout, so every other module loads these models exactly as it
would load a real checkpoint (``AutoModelForCausalLM.from_pretrained(dir)``).
The same name and seed always give byte-identical files.

The weights are random: the models produce noise until fine-tuned, which is all
fast tests need (the real default base is ``pretrained.py``). Every width is a multiple of 32 because GGUF
quantizes rows in blocks of 32.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ..errors import ModelNotFound
from ..paths import models_dir
from .atomic import build_dir, exclusive_lock, remove_leftovers

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
# Order fixes the ids: eos/bos 0, pad 1, then the chat markers.
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN, IM_START, IM_END)

STAMP_FILE = "sienn_embedded.json"
# Bump when the recipe changes, so existing builds are rebuilt.
# 2: no chat template (a random model knows none; chat data falls back to ChatML).
RECIPE_VERSION = 2


@dataclass(frozen=True)
class EmbeddedSpec:
    """Shape of one embedded model; every width is a multiple of 32."""

    name: str
    architecture: Literal["gpt2", "llama"]
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 4
    intermediate_size: int = 512
    vocab_size: int = 2048
    max_positions: int = 1024

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


EMBEDDED_MODELS: dict[str, EmbeddedSpec] = {
    "sienn-tiny-gpt2": EmbeddedSpec(name="sienn-tiny-gpt2", architecture="gpt2"),
    # GQA (2 kv heads for 4 query heads) and an untied lm_head, so the LoRA,
    # merge and GGUF paths meet the Llama-family layout real models use.
    "sienn-tiny-llama": EmbeddedSpec(
        name="sienn-tiny-llama", architecture="llama", num_kv_heads=2, intermediate_size=256
    ),
}


def _get_spec(name: str) -> EmbeddedSpec:
    try:
        return EMBEDDED_MODELS[name]
    except KeyError:
        raise ModelNotFound(
            f"{name!r} is not an embedded model; choose one of: {', '.join(EMBEDDED_MODELS)}"
        ) from None


def _train_tokenizer(vocab_size: int):
    """A GPT-2 style byte-level BPE trained on the packaged corpus.

    The full 256-byte initial alphabet means any text encodes and decodes back
    exactly, whatever the corpus lacked. The trainer is deterministic for a
    fixed corpus (ties are broken by token id), checked by the tests.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from .corpus import corpus

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer)
    if tokenizer.get_vocab_size() != vocab_size:
        raise RuntimeError(f"tokenizer has {tokenizer.get_vocab_size()} tokens, expected {vocab_size}")
    return tokenizer


def _hf_tokenizer(spec: EmbeddedSpec):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(spec.vocab_size),
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=spec.max_positions,
        add_bos_token=False,
        add_eos_token=False,
        # Decoding must return exactly what was encoded (no " ." -> "." cleanup).
        clean_up_tokenization_spaces=False,
    )


# Each architecture's config key for a spec field, then its fixed settings.
_CONFIG_FIELDS = {
    "gpt2": {"n_positions": "max_positions", "n_embd": "hidden_size", "n_layer": "num_layers",
             "n_head": "num_heads", "n_inner": "intermediate_size"},
    "llama": {"hidden_size": "hidden_size", "intermediate_size": "intermediate_size", "num_hidden_layers": "num_layers",
              "num_attention_heads": "num_heads", "num_key_value_heads": "num_kv_heads", "head_dim": "head_dim",
              "max_position_embeddings": "max_positions"},
}
_CONFIG_FIXED = {
    # No dropout in the base: fine-tuning sets its own (LoRA dropout).
    "gpt2": {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "architectures": ["GPT2LMHeadModel"]},
    "llama": {"rms_norm_eps": 1e-5, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
              "tie_word_embeddings": False, "architectures": ["LlamaForCausalLM"]},
}


def _model_config(spec: EmbeddedSpec, eos_id: int, pad_id: int):
    from transformers import GPT2Config, LlamaConfig

    config_class = {"gpt2": GPT2Config, "llama": LlamaConfig}[spec.architecture]
    sizes = {key: getattr(spec, field) for key, field in _CONFIG_FIELDS[spec.architecture].items()}
    return config_class(vocab_size=spec.vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id,
                        **sizes, **_CONFIG_FIXED[spec.architecture])


def _write_model(spec: EmbeddedSpec, seed: int, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    tokenizer = _hf_tokenizer(spec)
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    config = _model_config(spec, eos_id, pad_id)
    # A private RNG scope: building a model must not disturb the caller's seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _pin_no_bos(folder / "tokenizer_config.json")
    stamp = {"recipe_version": RECIPE_VERSION, "seed": seed, **asdict(spec)}
    (folder / STAMP_FILE).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _pin_no_bos(tokenizer_config: Path) -> None:
    """Write ``add_bos_token: false`` explicitly.

    transformers 5 no longer saves it, but converters that read only the JSON
    (llama.cpp's GGUF writer, older loaders) would otherwise guess a default.
    """
    data = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    data.update(add_bos_token=False, add_eos_token=False)
    tokenizer_config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_embedded_model(name: str, dest: Path, seed: int = 0) -> Path:
    """Build embedded model ``name`` into ``dest`` (replacing it) and return ``dest``.

    The files are written to a sibling temp dir and renamed into place, so a
    reader never sees a half-written model.
    """
    spec = _get_spec(name)
    return build_dir(dest, lambda tmp: _write_model(spec, seed, tmp))


def is_built(folder: Path, name: str, seed: int = 0) -> bool:
    """True if ``folder`` holds a complete build of ``name`` from the current recipe."""
    try:
        stamp = json.loads((Path(folder) / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp.get("name") == name and stamp.get("seed") == seed and stamp.get("recipe_version") == RECIPE_VERSION


def ensure_toy_models(root: Path | None = None) -> dict[str, Path]:
    """Build any toy model missing or stale under ``root`` (default: the models dir); name -> dir."""
    root = Path(root if root is not None else models_dir()).absolute()
    dirs = {name: root / name for name in EMBEDDED_MODELS}
    if all(is_built(path, name) for name, path in dirs.items()):
        return dirs
    with exclusive_lock(root / ".embedded.lock"):
        for name, path in dirs.items():
            remove_leftovers(root, name)
            if not is_built(path, name):
                build_embedded_model(name, path)
    return dirs


def ensure_embedded_models(root: Path | None = None) -> dict[str, Path]:
    """Prepare every built-in base under ``root`` (default: the models dir); name -> dir.

    The toy models are built from their recipe, the real default model is
    converted from the GGUF its package ships (``pretrained.py``). Safe when
    several processes call it at once: each build happens under an exclusive
    file lock and is renamed into place whole; current builds are kept.
    """
    from .pretrained import ensure_pretrained

    dirs = ensure_toy_models(root)
    dirs.update(ensure_pretrained(root))
    return dirs


if __name__ == "__main__":
    for built_name, built_dir in ensure_embedded_models().items():
        print(f"{built_name}\t{built_dir}")
