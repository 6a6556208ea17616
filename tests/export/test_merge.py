"""Merging: the streamed merge equals PEFT's, and the saved merged model equals the PEFT model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export_testkit import FAMILIES
from sienn_ray.export.merge import (
    InMemoryMerge, SafetensorsFile, StreamingMerge, copy_adapter, merged_weights, save_merged_model,
)


@pytest.mark.parametrize("family", FAMILIES)
def test_streaming_merge_equals_peft_merge_and_unload(family, family_models, family_adapters, merged_models):
    weights = merged_weights(family_models[family], family_adapters[family])
    assert isinstance(weights, StreamingMerge)
    reference = merged_models(family).state_dict()
    changed = 0
    for name in weights.names():
        ours = weights.get(name)
        assert ours.dtype == np.float32 and ours.shape == weights.shape(name)
        np.testing.assert_allclose(ours, reference[name].float().numpy(), rtol=0, atol=1e-6)
        changed += int(not np.array_equal(ours, _base_tensor(family_models[family], name)))
    assert changed > 0, "the adapter must change some weights, or merging is untested"


def _base_tensor(folder, name):
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "np") as f:
        return f.get_tensor(name)


def test_safetensors_reader_widens_bf16(tmp_path):
    from safetensors.torch import save_file

    tensors = {"a": torch.randn(3, 5, dtype=torch.bfloat16), "b": torch.randn(4, dtype=torch.float16)}
    save_file(tensors, tmp_path / "t.safetensors")
    reader = SafetensorsFile(tmp_path / "t.safetensors")
    for name, tensor in tensors.items():
        assert reader.shape(name) == tuple(tensor.shape)
        np.testing.assert_array_equal(reader.get(name), tensor.float().numpy())


def test_non_plain_adapter_falls_back_to_peft(family_models, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(family_models["llama"])
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], use_dora=True,
                                            init_lora_weights=False))
    model.save_pretrained(tmp_path / "dora")
    weights = merged_weights(family_models["llama"], tmp_path / "dora")
    assert isinstance(weights, InMemoryMerge)
    reference = model.merge_and_unload().state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    np.testing.assert_array_equal(weights.get(name), reference[name].numpy())


@pytest.mark.parametrize("family", ("gpt2", "llama"))
def test_saved_merged_model_matches_peft_model(family, family_models, family_adapters, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    save_merged_model(family_models[family], family_adapters[family], out)
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))], "never pickle"

    ids = torch.tensor([[5, 17, 300, 42, 7, 1999]])
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(family_models[family]).eval()
    with torch.no_grad():
        unmerged = base(ids).logits
        peft_model = PeftModel.from_pretrained(base, family_adapters[family]).eval()
        ours, reference = merged(ids).logits, peft_model(ids).logits
    assert (ours - reference).abs().max().item() < 1e-4
    assert (reference - unmerged).abs().max().item() > 1e-2, "the adapter must matter"


def test_copy_adapter_skips_pickles(family_adapters, tmp_path):
    src = family_adapters["gpt2"]
    (src / "training_args.bin").write_bytes(b"pickle")
    try:
        copied = {p.name for p in copy_adapter(src, tmp_path / "adapter")}
    finally:
        (src / "training_args.bin").unlink()
    assert {"adapter_config.json", "adapter_model.safetensors", "template.json"} <= copied
    assert "training_args.bin" not in copied
