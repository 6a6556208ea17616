"""Model-name resolution: built-in models, model roots, GGUF files, the Hugging Face cache, refusals."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import constants

from gguf_testkit import write_header_only_gguf, write_toy_gguf
from sienn_ray.errors import BadRequest, ModelNotFound
from sienn_ray.models.resolve import ResolvedModel, list_models, resolve_model
from sienn_ray.settings import reset_settings

BUILTIN = ["smollm2-135m-instruct", "sienn-tiny-gpt2", "sienn-tiny-llama"]


@pytest.fixture(autouse=True)
def isolated(sienn_home, embedded_models, tmp_path, monkeypatch):
    """The session's storage root (built-in models prepared once), the product default model,
    and an empty HF cache, so the host's cache never leaks in."""
    monkeypatch.setenv("SIENN_HOME", str(sienn_home))
    monkeypatch.delenv("SIENN_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("SIENN_MODEL_DIRS", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A single model root (``SIENN_MODEL_DIRS``) holding a copy of the toy llama as ``my-model``."""
    folder = tmp_path / "root"
    shutil.copytree(Path(resolve_model("sienn-tiny-llama").path), folder / "my-model")
    monkeypatch.setenv("SIENN_MODEL_DIRS", str(folder))
    reset_settings()
    return folder


def _fake_hf_cache(cache: Path, repo_id: str, source: Path) -> Path:
    """Lay out ``source`` the way huggingface_hub caches a downloaded repo (blobs + symlinked snapshot)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in source.iterdir():
        if file.name.startswith("sienn_"):
            continue
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, repo / "blobs" / digest)
        os.symlink(Path("../../blobs") / digest, snapshot / file.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def _generic(err: ModelNotFound, name: str) -> str:
    return err.detail.replace(repr(name), "<name>")


def test_the_product_default_is_the_real_smollm2(sienn_home):
    model = resolve_model(None)
    assert isinstance(model, ResolvedModel)
    assert (model.name, model.source, model.is_default) == ("smollm2-135m-instruct", "embedded", True)
    assert model.path == str(sienn_home / "models" / "smollm2-135m-instruct")
    assert (model.architecture, model.model_type, model.max_position_embeddings) == ("LlamaForCausalLM", "llama", 8192)
    assert model.num_parameters == 134_515_008  # 30 layers, hidden 576, tied 49,152-token embedding
    assert "SmolLM2-135M-Instruct" in model.description
    assert "Q4_1" in model.provenance and "Dequantized" in model.provenance and "Not the original bf16" in model.provenance
    assert "Apache-2.0" in model.provenance


def test_toy_models_say_they_are_random_weight_test_models():
    for name, arch in (("sienn-tiny-gpt2", "GPT2LMHeadModel"), ("sienn-tiny-llama", "LlamaForCausalLM")):
        model = resolve_model(name)
        assert (model.source, model.architecture, model.is_default) == ("embedded", arch, False)
        assert "Random-weight" in model.description and "test model" in model.description
        assert "no pretraining" in model.provenance


def test_parameter_count_matches_the_loaded_model():
    from transformers import AutoModelForCausalLM

    for name in ("sienn-tiny-gpt2", "sienn-tiny-llama"):
        resolved = resolve_model(name)
        assert resolved.num_parameters == AutoModelForCausalLM.from_pretrained(resolved.path).num_parameters()


def test_toy_model_built_on_demand(tmp_path, monkeypatch):
    monkeypatch.setenv("SIENN_HOME", str(tmp_path / "fresh"))
    reset_settings()
    model = resolve_model("sienn-tiny-llama")
    assert Path(model.path, "config.json").is_file()
    assert model.path.startswith(str(tmp_path / "fresh"))


def test_list_models_without_cache_is_the_builtin_ones():
    models = list_models()
    assert [m.name for m in models] == BUILTIN
    assert [m.is_default for m in models] == [True, False, False]


def test_default_follows_settings(monkeypatch):
    monkeypatch.setenv("SIENN_DEFAULT_MODEL", "sienn-tiny-llama")
    reset_settings()
    model = resolve_model(None)
    assert (model.name, model.is_default) == ("sienn-tiny-llama", True)


def test_default_model_dirs_are_the_storage_models_and_the_hf_cache(sienn_home):
    from sienn_ray.settings import get_settings

    assert get_settings().model_dirs == ((sienn_home / "models").resolve(), Path(constants.HF_HUB_CACHE).resolve())


def test_a_folder_inside_a_root_by_path_and_by_relative_name(root):
    model = resolve_model(str(root / "my-model"))
    assert (model.source, model.path, model.name) == ("local", str(root / "my-model"), str(root / "my-model"))
    assert model.description == "Local Hugging Face model folder"
    assert resolve_model("my-model").path == str(root / "my-model")
    assert resolve_model(str(root / "sub" / ".." / "my-model")).path == str(root / "my-model")


def test_escapes_are_the_same_404_as_a_missing_path(root, tmp_path):
    """Outside the roots nothing may tell whether a path exists: same code, same message."""
    outside = tmp_path / "outside"
    shutil.copytree(root / "my-model", outside)
    (root / "link-out").symlink_to(outside, target_is_directory=True)
    home_user = f"~{Path.home().owner()}"
    escapes = [str(outside), "/etc", "../outside", "my-model/../../outside", "link-out", f"{home_user}",
               "~", "~/.cache", "~no-such-user-sienn/x", str(root / ".." / "outside")]
    missing = [str(root / "no-such-model"), "/no/such/dir", "no-such-model"]
    messages = set()
    for name in escapes + missing:
        with pytest.raises(ModelNotFound) as info:
            resolve_model(name)
        assert info.value.status_code == 404 and info.value.error_code == "MODEL_NOT_FOUND"
        messages.add(_generic(info.value, name))
    assert len(messages) == 1, messages
    assert "SIENN_MODEL_DIRS" in messages.pop()


def test_a_model_folder_with_weights_symlinked_out_is_refused(root, tmp_path):
    secret = tmp_path / "secret.safetensors"
    shutil.copyfile(root / "my-model" / "model.safetensors", secret)
    (root / "my-model" / "model.safetensors").unlink()
    (root / "my-model" / "model.safetensors").symlink_to(secret)
    with pytest.raises(ModelNotFound) as info:
        resolve_model("my-model")
    assert _generic(info.value, "my-model") == _generic(_missing(), "x")


def _missing() -> ModelNotFound:
    with pytest.raises(ModelNotFound) as info:
        resolve_model("x")
    return info.value


def test_a_folder_without_config_inside_a_root_says_why(root):
    (root / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="neither a model folder"):
        resolve_model("empty")


def test_a_non_causal_model_is_not_found(root):
    (root / "bert").mkdir()
    (root / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelNotFound, match="causal"):
        resolve_model("bert")


def test_sharded_checkpoint_parameters_counted(root):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(root / "my-model")
    model.save_pretrained(root / "sharded", max_shard_size="1MB")
    assert (root / "sharded" / "model.safetensors.index.json").is_file()
    assert resolve_model("sharded").num_parameters == model.num_parameters()


def test_a_gguf_inside_a_root_is_converted_once_and_loads_like_its_source(root, sienn_home):
    import torch
    from transformers import AutoModelForCausalLM

    gguf_file = write_toy_gguf(root / "my-model", root / "ggufs" / "toy-f32.gguf")
    model = resolve_model(str(gguf_file))
    assert (model.source, model.name, model.architecture) == ("gguf", str(gguf_file), "LlamaForCausalLM")
    digest = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    assert model.path == str(sienn_home / "models" / f"gguf-{digest[:16]}") and digest in model.provenance
    stamp = Path(model.path, "sienn_gguf.json")
    built = stamp.stat().st_mtime_ns
    assert resolve_model("ggufs").path == model.path  # the folder holding it, relative to the root
    assert stamp.stat().st_mtime_ns == built  # cached: not converted again
    config = json.loads(Path(model.path, "config.json").read_text())
    assert "quantization_config" not in config
    source = AutoModelForCausalLM.from_pretrained(root / "my-model").eval()
    converted = AutoModelForCausalLM.from_pretrained(model.path).eval()
    ids = torch.tensor([[5, 17, 300, 41, 999, 12]])
    with torch.no_grad():
        assert torch.allclose(source(ids).logits, converted(ids).logits, atol=1e-5)


def test_a_gguf_outside_the_roots_is_the_same_404(root, tmp_path):
    gguf_file = write_toy_gguf(root / "my-model", tmp_path / "elsewhere" / "toy.gguf")
    with pytest.raises(ModelNotFound) as info:
        resolve_model(str(gguf_file))
    assert _generic(info.value, str(gguf_file)) == _generic(_missing(), "x")


def test_an_unsupported_gguf_architecture_is_a_400_naming_the_supported(root):
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    write_header_only_gguf(root / "bert.gguf", "bert")
    with pytest.raises(BadRequest) as info:
        resolve_model("bert.gguf")
    assert info.value.status_code == 400 and "'bert'" in info.value.detail
    supported = info.value.extra["supported"]
    assert "llama" in supported and "qwen2" in supported and set(supported) <= set(GGUF_SUPPORTED_ARCHITECTURES)
    assert "t5" not in supported  # an encoder-decoder is no causal base


def test_a_folder_with_two_ggufs_asks_which(root):
    write_header_only_gguf(root / "two" / "a.gguf", "llama")
    write_header_only_gguf(root / "two" / "b.gguf", "llama")
    with pytest.raises(BadRequest, match="a.gguf, b.gguf"):
        resolve_model("two")


def test_a_file_that_is_not_gguf_is_a_400(root):
    (root / "fake.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(BadRequest, match="not a readable GGUF"):
        resolve_model("fake.gguf")


def test_hf_cache_model_when_the_cache_is_a_root():
    _fake_hf_cache(Path(constants.HF_HUB_CACHE), "acme/tiny", Path(resolve_model("sienn-tiny-gpt2").path))
    model = resolve_model("acme/tiny")
    assert (model.source, model.name, model.model_type) == ("hf-cache", "acme/tiny", "gpt2")
    assert Path(model.path, "config.json").is_file() and "acme/tiny" in model.provenance
    assert [m.name for m in list_models()] == BUILTIN + ["acme/tiny"]


def test_hf_cache_outside_the_roots_is_not_used(root):
    _fake_hf_cache(Path(constants.HF_HUB_CACHE), "acme/tiny", Path(resolve_model("sienn-tiny-gpt2").path))
    with pytest.raises(ModelNotFound) as info:
        resolve_model("acme/tiny")
    assert _generic(info.value, "acme/tiny") == _generic(_missing(), "x")


def test_unknown_name_lists_the_builtin_models():
    with pytest.raises(ModelNotFound) as info:
        resolve_model("no-such-model")
    assert info.value.extra["available"] == BUILTIN
    assert info.value.to_body()["available"] == BUILTIN


@pytest.mark.parametrize("name", ["gpt2", "meta-llama/Llama-3.2-1B"])
def test_uncached_hub_id_is_not_found_and_not_downloaded(name):
    with pytest.raises(ModelNotFound, match="nothing is downloaded"):
        resolve_model(name)


@pytest.mark.parametrize("name", ["", "   ", "../../etc", "/etc", "a\x00b", "x" * 5000, "..", "~", "org/a/b"])
def test_malformed_or_traversing_names_are_not_found(name):
    with pytest.raises(ModelNotFound):
        resolve_model(name)
