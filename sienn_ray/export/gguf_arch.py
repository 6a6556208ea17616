"""Per-family facts for GGUF: hyper-parameter keys and how each HF tensor becomes a GGUF tensor.

Each family knows what llama.cpp expects and where Hugging Face differs:
GPT-2 stores its projections as ``Conv1D`` (input-major), so they are
transposed; Llama-family q/k rows are permuted from HF's rotate-half rotary
layout to llama.cpp's interleaved pairs (with ``n_head`` for q and
``n_kv_head`` for k); Qwen2 uses NeoX rotary in llama.cpp, so nothing is
permuted. Names are mapped with the ``gguf`` package's own tensor map.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf
import numpy as np

from ..models.model_config import context_length

# HF model_type -> GGUF architecture.
GGUF_ARCH = {"gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "qwen2"}
SUPPORTED_MODEL_TYPES = tuple(GGUF_ARCH)
_GPT2_CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")
# Buffers some checkpoints carry that are not weights.
_SKIP_SUFFIXES = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")
_ARCH_ENUM = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}


@dataclass(frozen=True)
class TensorRule:
    """How one HF tensor is written: its GGUF name and the layout changes on the way."""

    name: str
    transpose: bool = False
    rope_heads: int | None = None  # permute rows for llama.cpp's rotary layout with this many heads

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(reversed(shape)) if self.transpose else tuple(shape)

    def apply(self, tensor: np.ndarray) -> np.ndarray:
        """``tensor`` in HF layout -> llama.cpp layout (contiguous float32)."""
        if self.transpose:
            tensor = tensor.T
        if self.rope_heads:
            n = self.rope_heads
            tensor = tensor.reshape(n, 2, tensor.shape[0] // n // 2, *tensor.shape[1:]).swapaxes(1, 2).reshape(
                tensor.shape)
        return np.ascontiguousarray(tensor, dtype=np.float32)


def config_problems(config: dict) -> list[str]:
    """Everything about this HF config that our GGUF writer or llama.cpp cannot represent."""
    model_type = config.get("model_type")
    if model_type not in GGUF_ARCH:
        return [f"GGUF export supports model types {', '.join(SUPPORTED_MODEL_TYPES)}; "
                f"this model is {model_type!r}"]
    problems = [] if context_length(config) else ["the model's config states no context length"]
    if model_type == "gpt2":
        if config.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            problems.append(f"GPT-2 activation {config.get('activation_function')!r} is not supported")
        for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
            if config.get(flag):
                problems.append(f"GPT-2 option {flag} is not supported by llama.cpp")
        return problems
    if config.get("hidden_act", "silu") != "silu":
        problems.append(f"activation {config.get('hidden_act')!r} is not supported (silu only)")
    rope = _rope(config)
    if rope.get("rope_type", "default") not in ("default", "linear"):
        problems.append(f"RoPE scaling {rope.get('rope_type')!r} is not supported (default and linear are)")
    if model_type == "qwen2" and config.get("use_sliding_window"):
        problems.append("Qwen2 sliding-window attention is not supported")
    return problems


def tensor_rule(config: dict, hf_name: str, tensor_map: gguf.TensorNameMap) -> TensorRule | None:
    """The rule for ``hf_name``; None for buffers to skip; ValueError for an unknown tensor."""
    if hf_name.endswith(_SKIP_SUFFIXES):
        return None
    name = tensor_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ValueError(f"tensor {hf_name!r} has no GGUF name for {config.get('model_type')}")
    model_type = config["model_type"]
    if model_type == "gpt2":
        return TensorRule(name, transpose=hf_name.endswith(_GPT2_CONV1D))
    if GGUF_ARCH[model_type] == "llama":
        n_head = config["num_attention_heads"]
        if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            return TensorRule(name, rope_heads=n_head)
        if hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            return TensorRule(name, rope_heads=config.get("num_key_value_heads") or n_head)
    return TensorRule(name)


def tensor_name_map(config: dict) -> gguf.TensorNameMap:
    return gguf.get_tensor_name_map(_ARCH_ENUM[GGUF_ARCH[config["model_type"]]], block_count(config))


def block_count(config: dict) -> int:
    return config["n_layer"] if config["model_type"] == "gpt2" else config["num_hidden_layers"]


def add_hparams(writer: gguf.GGUFWriter, config: dict) -> None:
    """The architecture's hyper-parameter keys (``<arch>.*``)."""
    writer.add_block_count(block_count(config))
    writer.add_context_length(context_length(config))
    if config["model_type"] == "gpt2":
        writer.add_embedding_length(config["n_embd"])
        writer.add_feed_forward_length(config.get("n_inner") or 4 * config["n_embd"])
        writer.add_head_count(config["n_head"])
        writer.add_layer_norm_eps(config.get("layer_norm_epsilon", 1e-5))
        return
    n_head = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    writer.add_vocab_size(config["vocab_size"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(config.get("num_key_value_heads") or n_head)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-6))
    rope = _rope(config)
    writer.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    if rope.get("rope_type") == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))


def _rope(config: dict) -> dict:
    """RoPE settings: transformers 5 nests them under ``rope_parameters``; 4.x kept them at the top."""
    rope = dict(config.get("rope_scaling") or {})
    rope.update(config.get("rope_parameters") or {})
    if "rope_theta" not in rope and "rope_theta" in config:
        rope["rope_theta"] = config["rope_theta"]
    if "type" in rope and "rope_type" not in rope:
        rope["rope_type"] = rope["type"]
    return rope
