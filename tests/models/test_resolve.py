"""Model-name resolution: embedded, local directory, Hugging Face cache, and refusals."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import constants

from sienn_ray.errors import ModelNotFound
from sienn_ray.models.embedded import ensure_embedded_models
from sienn_ray.models.resolve import ResolvedModel, list_models, resolve_model
from sienn_ray.settings import reset_settings


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A storage root whose embedded models are built once for the module."""
    root = tmp_path_factory.mktemp("home")
    ensure_embedded_models(root / "models")
    return root


@pytest.fixture(autouse=True)
def isolated(home, tmp_path, monkeypatch):
    """Point settings at ``home`` and the HF cache at an empty dir, so the host's cache never leaks in."""
    monkeypatch.setenv("SIENN_HOME", str(home))
    monkeypatch.delenv("SIENN_DEFAULT_MODEL", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    reset_settings()
    yield
    reset_settings()


def _fake_hf_cache(cache: Path, repo_id: str, source: Path) -> Path:
    """Lay out ``source`` the way huggingface_hub caches a downloaded repo (blobs + symlinked snapshot)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in source.iterdir():
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, repo / "blobs" / digest)
        os.symlink(Path("../../blobs") / digest, snapshot / file.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_default_is_the_embedded_gpt2(home):
    model = resolve_model(None)
    assert isinstance(model, ResolvedModel)
    assert model.name == "sienn-tiny-gpt2"
    assert model.source == "embedded"
    assert model.is_default
    assert model.path == str(home / "models" / "sienn-tiny-gpt2")
    assert (model.architecture, model.model_type, model.max_position_embeddings) == ("GPT2LMHeadModel", "gpt2", 1024)


def test_parameter_count_matches_the_loaded_model():
    from transformers import AutoModelForCausalLM

    for name in ("sienn-tiny-gpt2", "sienn-tiny-llama"):
        resolved = resolve_model(name)
        assert resolved.num_parameters == AutoModelForCausalLM.from_pretrained(resolved.path).num_parameters()


def test_embedded_llama():
    model = resolve_model("sienn-tiny-llama")
    assert (model.source, model.architecture, model.model_type) == ("embedded", "LlamaForCausalLM", "llama")
    assert not model.is_default


def test_embedded_built_on_demand(tmp_path, monkeypatch):
    monkeypatch.setenv("SIENN_HOME", str(tmp_path / "fresh"))
    reset_settings()
    model = resolve_model("sienn-tiny-llama")
    assert Path(model.path, "config.json").is_file()
    assert model.path.startswith(str(tmp_path / "fresh"))


def test_local_directory(home, tmp_path, monkeypatch):
    local = tmp_path / "my-model"
    shutil.copytree(home / "models" / "sienn-tiny-llama", local)
    model = resolve_model(str(local))
    assert (model.source, model.path, model.name) == ("local", str(local), str(local))
    monkeypatch.chdir(tmp_path)
    assert resolve_model("./my-model/").path == str(local)


def test_local_directory_without_config_is_not_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound):
        resolve_model(str(tmp_path / "empty"))


def test_local_non_causal_model_is_not_found(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelNotFound, match="causal"):
        resolve_model(str(tmp_path / "bert"))


def test_sharded_checkpoint_parameters_counted(home, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(home / "models" / "sienn-tiny-llama")
    model.save_pretrained(tmp_path / "sharded", max_shard_size="1MB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert resolve_model(str(tmp_path / "sharded")).num_parameters == model.num_parameters()


def test_unknown_name_lists_alternatives():
    with pytest.raises(ModelNotFound) as info:
        resolve_model("no-such-model")
    assert "sienn-tiny-gpt2" in info.value.detail and "sienn-tiny-llama" in info.value.detail
    assert info.value.extra["available"] == ["sienn-tiny-gpt2", "sienn-tiny-llama"]
    assert info.value.to_body()["available"] == ["sienn-tiny-gpt2", "sienn-tiny-llama"]


@pytest.mark.parametrize("name", ["gpt2", "meta-llama/Llama-3.2-1B"])
def test_uncached_hub_id_is_not_found_and_not_downloaded(name):
    with pytest.raises(ModelNotFound, match="Hugging Face cache"):
        resolve_model(name)


@pytest.mark.parametrize("name", ["", "   ", "../../etc", "/etc", "a\x00b", "x" * 5000, "..", "~", "org/a/b"])
def test_malformed_or_traversing_names_are_not_found(name):
    with pytest.raises(ModelNotFound):
        resolve_model(name)


def test_hf_cache_model(home):
    _fake_hf_cache(Path(constants.HF_HUB_CACHE), "acme/tiny", home / "models" / "sienn-tiny-gpt2")
    model = resolve_model("acme/tiny")
    assert (model.source, model.name, model.model_type) == ("hf-cache", "acme/tiny", "gpt2")
    assert Path(model.path, "config.json").is_file()
    assert [m.name for m in list_models()] == ["sienn-tiny-gpt2", "sienn-tiny-llama", "acme/tiny"]


def test_list_models_without_cache_is_the_embedded_ones():
    models = list_models()
    assert [m.name for m in models] == ["sienn-tiny-gpt2", "sienn-tiny-llama"]
    assert [m.is_default for m in models] == [True, False]


def test_default_follows_settings(monkeypatch):
    monkeypatch.setenv("SIENN_DEFAULT_MODEL", "sienn-tiny-llama")
    reset_settings()
    model = resolve_model(None)
    assert (model.name, model.is_default) == ("sienn-tiny-llama", True)
