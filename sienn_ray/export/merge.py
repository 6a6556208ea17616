"""Merging a job's LoRA adapter into its base model.

Two ways, for two needs:

* ``save_merged_model`` is PEFT's own ``merge_and_unload`` on the loaded model,
  saved with ``save_pretrained`` (safetensors only): the ``pytorch`` export.
* ``merged_weights`` reads the base checkpoint one tensor at a time and adds
  ``scale * B @ A`` as each tensor is read, so the GGUF writer never holds more
  than one tensor of the model. It handles plain LoRA (the only kind sienn-ray
  trains) with numpy alone: no torch, transformers or PEFT in the export
  worker's memory. Any other adapter feature falls back to PEFT's merge in
  memory, so the result is always PEFT's. Tests check the two agree.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Protocol

import numpy as np

from ..models.lora_adapter import ADAPTER_WEIGHTS, NotPlainLora, lora_pairs, lora_scaling, read_adapter_config
from ..models.safetensors_files import checkpoint_files, read_header

# Files of an adapter folder worth shipping; pickles (.bin/.pt) never are.
_SAFE_SUFFIXES = (".json", ".safetensors", ".jinja", ".txt", ".model", ".md")
# adapter_config keys that do not change what merging computes (or that we handle).
_PLAIN_KEYS = {
    "alpha_pattern", "rank_pattern", "auto_mapping", "base_model_name_or_path", "exclude_modules",
    "fan_in_fan_out", "inference_mode", "init_lora_weights", "layers_pattern", "layers_to_transform",
    "loftq_config", "corda_config", "eva_config", "lora_alpha", "lora_dropout", "megatron_config",
    "megatron_core", "peft_type", "peft_version", "qalora_group_size", "r", "revision", "target_modules",
    "task_type", "use_rslora", "bias", "ensure_weight_tying",
}
_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8"), "BF16": np.dtype("<u2")}


class WeightSource(Protocol):
    """Named float32 tensors of a merged model, read one at a time."""

    def names(self) -> list[str]: ...
    def shape(self, name: str) -> tuple[int, ...]: ...
    def get(self, name: str) -> np.ndarray: ...


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_merged_model(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """PEFT ``merge_and_unload`` saved as safetensors + config + generation config (+ tokenizer)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir)
    tokenizer_dir = adapter_dir if (Path(adapter_dir) / "tokenizer_config.json").is_file() else base_dir
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out_dir)


def copy_adapter(adapter_dir: Path, out_dir: Path) -> list[Path]:
    """The unmerged PEFT adapter (safe file types only); returns the copied files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(Path(adapter_dir).iterdir()):
        if path.is_file() and path.suffix in _SAFE_SUFFIXES:
            copied.append(Path(shutil.copy2(path, out_dir / path.name)))
    return copied


def merged_weights(base_dir: Path, adapter_dir: Path) -> WeightSource:
    """The merged model's tensors: streamed when the adapter is plain LoRA, else via PEFT in memory."""
    try:
        return StreamingMerge(Path(base_dir), Path(adapter_dir))
    except _NotPlain:
        return InMemoryMerge(Path(base_dir), Path(adapter_dir))


class _NotPlain(Exception):
    """The adapter or checkpoint needs PEFT's own merge."""


class SafetensorsFile:
    """Header and single-tensor reads of a .safetensors file, in numpy (bf16 widened to float32)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries, self._start = read_header(self.path)
        unknown = {e["dtype"] for e in self.entries.values()} - set(_DTYPES)
        if unknown:
            raise _NotPlain(f"tensor dtypes {sorted(unknown)}")

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.entries[name]["shape"])

    def get(self, name: str) -> np.ndarray:
        entry = self.entries[name]
        begin, end = entry["data_offsets"]
        dtype = _DTYPES[entry["dtype"]]
        data = np.fromfile(self.path, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=self._start + begin)
        if entry["dtype"] == "BF16":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        return data.astype(np.float32, copy=False).reshape(entry["shape"])


class StreamingMerge:
    """Base safetensors + LoRA deltas, merged tensor by tensor as they are read (float32)."""

    def __init__(self, base_dir: Path, adapter_dir: Path):
        cfg = read_adapter_config(adapter_dir)
        extra = sorted(k for k, v in cfg.items() if k not in _PLAIN_KEYS and v)
        if cfg.get("peft_type") != "LORA" or cfg.get("bias", "none") != "none" or extra:
            raise _NotPlain(extra)
        self._files = _checkpoint_files(base_dir)
        model_type = load_json(base_dir / "config.json").get("model_type")
        # PEFT always treats GPT-2's Conv1D weights as fan-in-fan-out, whatever the config says.
        self._fan_in_fan_out = bool(cfg.get("fan_in_fan_out")) or model_type == "gpt2"
        self._lora = self._read_lora(adapter_dir, cfg)

    def _read_lora(self, adapter_dir: Path, cfg: dict) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
        adapter = SafetensorsFile(adapter_dir / ADAPTER_WEIGHTS[0])
        try:
            pairs = lora_pairs({key: adapter.get(key) for key in adapter.entries})
        except NotPlainLora as err:
            raise _NotPlain(str(err)) from None
        lora = {}
        for module, (a, b) in pairs.items():
            target = f"{module}.weight"
            if target not in self._files:
                raise _NotPlain(target)  # e.g. a tied lm_head: PEFT knows how to merge into it
            lora[target] = (a, b, lora_scaling(cfg, module))
        return lora

    def names(self) -> list[str]:
        return list(self._files)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._files[name].shape(name)

    def get(self, name: str) -> np.ndarray:
        tensor = self._files[name].get(name)
        if name in self._lora:
            a, b, scale = self._lora[name]
            delta = (b @ a) * np.float32(scale)
            tensor = tensor + (delta.T if self._fan_in_fan_out else delta)
        return tensor


class InMemoryMerge:
    """PEFT's ``merge_and_unload`` in memory: for adapters the streaming merge does not handle."""

    def __init__(self, base_dir: Path, adapter_dir: Path):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
        self._state = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().state_dict()

    def names(self) -> list[str]:
        return list(self._state)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._state[name].shape)

    def get(self, name: str) -> np.ndarray:
        return self._state[name].detach().float().numpy().copy()


def _checkpoint_files(base_dir: Path) -> dict[str, SafetensorsFile]:
    """Tensor name -> its safetensors file, for a single-file or sharded checkpoint."""
    files = checkpoint_files(base_dir)
    if not files:
        raise _NotPlain("no safetensors checkpoint")
    return {name: reader for reader in map(SafetensorsFile, files) for name in reader.entries}
