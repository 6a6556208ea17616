"""Session fixtures for the export tests: tiny models of every GGUF family, adapters, GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export_testkit import build_model, family_configs, make_adapter


@pytest.fixture(scope="session")
def family_models(embedded_models, tmp_path_factory) -> dict[str, Path]:
    """family -> base model folder (gpt2, llama: the embedded models; mistral, qwen2: built here)."""
    root = tmp_path_factory.mktemp("families")
    llama = Path(embedded_models["sienn-tiny-llama"])
    models = {"gpt2": Path(embedded_models["sienn-tiny-gpt2"]), "llama": llama}
    for family, config in family_configs().items():
        models[family] = build_model(root / family, config, llama)
    return models


@pytest.fixture(scope="session")
def family_adapters(family_models, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {family: make_adapter(path, root / family) for family, path in family_models.items()}


@pytest.fixture(scope="session")
def merged_models(family_models, family_adapters):
    """family -> PEFT ``merge_and_unload`` of base + adapter (the reference), built on first use."""
    cache = {}

    def get(family: str):
        if family not in cache:
            import torch
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            base = AutoModelForCausalLM.from_pretrained(family_models[family], dtype=torch.float32)
            cache[family] = PeftModel.from_pretrained(base, family_adapters[family]).merge_and_unload().eval()
        return cache[family]

    return get


@pytest.fixture(scope="session")
def gguf_files(family_models, family_adapters, tmp_path_factory):
    """(family, quant) -> a GGUF written by our converter, written on first use."""
    from sienn_ray.data.templates import PromptTemplate
    from sienn_ray.export.gguf_writer import write_gguf
    from sienn_ray.export.merge import merged_weights
    from sienn_ray.export.prompt_formats import gguf_chat_template
    from sienn_ray.export.tokenizer_meta import read_tokenizer

    root = tmp_path_factory.mktemp("gguf")
    cache = {}

    def get(family: str, quant: str) -> Path:
        if (family, quant) not in cache:
            base, adapter = family_models[family], family_adapters[family]
            config = json.loads((base / "config.json").read_text())
            path = root / f"{family}-{quant}.gguf"
            write_gguf(path, merged_weights(base, adapter), config, read_tokenizer(adapter, config["vocab_size"]),
                       quant=quant, chat_template=gguf_chat_template(PromptTemplate.load(adapter)), name=family)
            cache[family, quant] = path
        return cache[family, quant]

    return get
