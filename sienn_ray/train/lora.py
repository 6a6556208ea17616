"""LoRA targets per architecture, and checking a request against the model before a job is queued.

Checks read only ``config.json`` and build the model on the meta device (module
names and shapes, no weights), so the API can run them inside a request.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from ..models.model_config import context_length, read_model_config
from ..schemas.jobs import TrainingConfig

GPT2_TARGETS = ("c_attn", "c_proj", "c_fc")
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_LLAMA_FAMILY = {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
                 "gemma3_text", "olmo", "olmo2", "granite", "cohere", "cohere2", "smollm3", "exaone4", "helium"}


def has_chat_template(model_path: str | Path) -> bool:
    """Whether the base's tokenizer ships a chat template (read from its files, not loaded)."""
    path = Path(model_path)
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError):
        return False


@lru_cache(maxsize=32)
def _adaptable_modules(model_path: str, mtime_ns: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names of the linear layers, names of other modules LoRA can wrap: embeddings, convs,
    the output head) from a meta-device build."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    config = AutoConfig.from_pretrained(model_path, trust_remote_code=False)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    head = model.get_output_embeddings()
    linear, other = [], []
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, Conv1D)) and module is not head:
            linear.append(name)
        elif isinstance(module, (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)):
            other.append(name)
    return tuple(linear), tuple(other)


def adaptable_modules(model_path: str | Path) -> tuple[list[str], list[str]]:
    """(linear layer names, other adaptable module names) of the model at ``model_path``."""
    path = str(Path(model_path).resolve())
    linear, other = _adaptable_modules(path, os.stat(Path(path) / "config.json").st_mtime_ns)
    return list(linear), list(other)


def default_target_modules(model_type: str, linear_names: list[str]) -> list[str]:
    """GPT-2: attention + MLP convs; Llama family: every attention and MLP projection;
    anything else: every linear layer except the output head (PEFT's "all-linear")."""
    leaves = {name.rsplit(".", 1)[-1] for name in linear_names}
    if model_type == "gpt2":
        return list(GPT2_TARGETS)
    if model_type in _LLAMA_FAMILY or set(LLAMA_TARGETS) <= leaves:
        return [t for t in LLAMA_TARGETS if t in leaves]
    return sorted(leaf for leaf in leaves if not leaf.isdigit())


def _matches(target: str, module_name: str) -> bool:
    # PEFT's rule for a list entry: the full name, or a suffix starting at a dot.
    return module_name == target or module_name.endswith("." + target)


def resolve_target_modules(model_path: str | Path, config: TrainingConfig) -> list[str]:
    """The modules the job adapts: the configured ones, else the architecture's default."""
    if config.target_modules:
        return list(config.target_modules)
    names, _ = adaptable_modules(model_path)
    return default_target_modules(read_model_config(model_path).get("model_type", ""), names)


def validate_training_request(model_path: str | Path, config: TrainingConfig) -> list[str]:
    """Every problem with training ``config`` on the model at ``model_path`` (empty: fine).

    Fast enough for a request handler: config.json and a meta-device model only.
    """
    problems: list[str] = []
    try:
        model_config = read_model_config(model_path)
    except (OSError, ValueError) as exc:
        return [f"The model's config.json cannot be read: {exc}"]
    context = context_length(model_config)
    if context is not None and config.max_length > context:
        problems.append(f"max_length {config.max_length} exceeds the model's context length of {context} tokens.")
    if config.target_modules:
        linear, other = adaptable_modules(model_path)
        names = linear + other
        leaves = sorted({n.rsplit(".", 1)[-1] for n in names if not n.rsplit(".", 1)[-1].isdigit()})
        missing = [t for t in config.target_modules if not any(_matches(t, n) for n in names)]
        if missing:
            problems.append(f"target_modules {missing} do not exist in {model_config.get('model_type')!r}; "
                            f"modules LoRA can adapt: {leaves}.")
    if config.system_prompt and config.prompt_template == "auto" and not has_chat_template(model_path):
        problems.append("system_prompt needs a chat template, and this base has none (prompt_template auto "
                        "would use Alpaca); set prompt_template to chat (ChatML) or drop system_prompt.")
    if config.deepspeed is not None and config.deepspeed.offload_optimizer and config.deepspeed.stage == 0:
        problems.append("deepspeed.offload_optimizer needs ZeRO stage 1, 2 or 3 (stage is 0).")
    return problems


def lora_config(config: TrainingConfig, target_modules: list[str], model_type: str):
    """The PEFT LoraConfig for a job."""
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=target_modules,
        # GPT-2 stores its projections as Conv1D with (in, out) weights.
        fan_in_fan_out=model_type == "gpt2",
        bias="none",
    )
