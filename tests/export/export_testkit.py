"""Tiny models and LoRA adapters for the export tests (imported by conftest.py and the tests).

The adapters start from non-zero random LoRA weights (``init_lora_weights=False``,
so merging matters from step 0) and are then fitted for 30 steps to answer
PROMPT with ANSWER. The fit makes the model's greedy choices on PROMPT clear
(top-2 logit gaps of 0.2-1.8), as after real fine-tuning. A purely random tiny
model has top-2 gaps down to 0.002, below q8_0's own logit error (about 0.015
here), so "same greedy tokens" would be a coin flip on it rather than a test
of the converter. Much larger random deltas (B at its default init, times 3)
make the 2-layer model chaotic: llama.cpp's f16 KV cache alone then moves logits
by 0.02, though the f32 file with an f32 cache still matches exactly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sienn_ray.data.templates import PromptTemplate, render_prompt

FAMILIES = ("gpt2", "llama", "mistral", "qwen2")
TEMPLATE = PromptTemplate(kind="alpaca", eos_token="<|endoftext|>")
PROMPT = render_prompt(TEMPLATE, "Name three colors of the rainbow.")
ANSWER = ("Red, orange and yellow are three of the seven colors of the rainbow; "
          "the others are green, blue, indigo and violet.")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def build_model(folder: Path, config, tokenizer_src: Path) -> Path:
    """Random weights (seed 0) for ``config``, saved with the tokenizer files of ``tokenizer_src``."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(folder)
    for name in _TOKENIZER_FILES:
        if (tokenizer_src / name).is_file():
            shutil.copy2(tokenizer_src / name, folder / name)
    return folder


def family_configs() -> dict:
    """mistral and qwen2 test configs (gpt2 and llama are the embedded models).

    qwen2 has tied embeddings, q/k/v biases and an FFN width (136) that is not a
    multiple of 32, so its ``ffn_down`` falls back to F16.
    """
    from transformers import MistralConfig, Qwen2Config

    shape = dict(vocab_size=2048, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=512, bos_token_id=0, eos_token_id=0,
                 pad_token_id=1)
    return {
        "mistral": MistralConfig(intermediate_size=256, head_dim=32, sliding_window=None,
                                 tie_word_embeddings=False, **shape),
        "qwen2": Qwen2Config(intermediate_size=136, tie_word_embeddings=True, use_sliding_window=False, **shape),
    }


def make_adapter(base_dir: Path, out_dir: Path, *, seed: int = 1, b_scale: float = 0.2,
                 train_steps: int = 30) -> Path:
    """A saved PEFT LoRA (all projections, r=8) with tokenizer and template.json, like a job's adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    targets = ["c_attn", "c_proj", "c_fc"] if base.config.model_type == "gpt2" else [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(b_scale)
    prompt = tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + tokenizer(ANSWER, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]])
    labels = ids.clone()
    labels[0, :len(prompt)] = -100
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(train_steps):
        model(ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    TEMPLATE.save(out_dir)
    return out_dir
