"""Fixtures for the inference tests: random LoRA adapters, a quickly trained one, and plain-PEFT references.

Not a conftest.py: several test packages here import the root conftest as ``conftest``,
and a second conftest.py module would shadow it. Test modules import these fixtures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_random_adapter
from inference_testkit import GREEDY_TOKENS, TRAINED_EXAMPLES


@pytest.fixture(scope="session")
def base_paths(embedded_models) -> dict[str, str]:
    return {"gpt2": str(embedded_models["sienn-tiny-gpt2"]), "llama": str(embedded_models["sienn-tiny-llama"])}


@pytest.fixture(scope="session")
def adapters(base_paths, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """adapter id -> (base path, adapter folder): five on gpt2 (g0..g4), two on llama (l0, l1)."""
    root = tmp_path_factory.mktemp("inference-adapters")
    out = {}
    for i in range(5):
        out[f"g{i}"] = (base_paths["gpt2"], str(make_random_adapter(base_paths["gpt2"], root / f"g{i}", seed=i)))
    for i in range(2):
        out[f"l{i}"] = (base_paths["llama"], str(make_random_adapter(base_paths["llama"], root / f"l{i}", seed=10 + i)))
    return out


@pytest.fixture(scope="session")
def peft_reference():
    """Greedy text of the plain PEFT model (base + adapter, ``model.generate``) in this process."""
    cache: dict = {}

    def generate(base_path: str, adapter_path: str | None, prompt: str, max_new_tokens: int = GREEDY_TOKENS,
                 input: str = "") -> str:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from sienn_ray.data.templates import PromptTemplate, render_prompt, template_for

        key = (base_path, adapter_path)
        if key not in cache:
            model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
            if adapter_path:
                model = PeftModel.from_pretrained(model, adapter_path)
            cache[key] = (model.eval(), AutoTokenizer.from_pretrained(base_path))
        model, tokenizer = cache[key]
        template = PromptTemplate.load(Path(adapter_path)) if adapter_path else template_for("alpaca", tokenizer)
        ids = tokenizer(render_prompt(template, prompt, input), add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    return generate


@pytest.fixture(scope="session")
def trained_adapter(base_paths, tmp_path_factory) -> str:
    """A LoRA adapter over-fitted (a few seconds) on ``TRAINED_EXAMPLES``, tokenized as training does:
    the rendered prompt without special tokens, then the response, then EOS; loss on the response only."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sienn_ray.data.templates import render_prompt, template_for

    base = base_paths["gpt2"]
    tokenizer = AutoTokenizer.from_pretrained(base)
    template = template_for("alpaca", tokenizer)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                           LoraConfig(r=16, lora_alpha=32, target_modules=["c_attn", "c_proj", "c_fc"],
                                      lora_dropout=0.0, task_type="CAUSAL_LM"))
    batches = []
    for instruction, response in TRAINED_EXAMPLES:
        prompt = tokenizer(render_prompt(template, instruction), add_special_tokens=False)["input_ids"]
        answer = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = torch.tensor([prompt + answer])
        labels = torch.tensor([[-100] * len(prompt) + answer])
        batches.append((ids, labels))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(60):
        for ids, labels in batches:
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("trained-adapter")
    model.save_pretrained(folder)
    template.save(folder)
    return str(folder)
