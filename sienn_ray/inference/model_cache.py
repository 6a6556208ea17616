"""The base models and LoRA adapters one engine holds, each in a small LRU: plain Python, no Ray.

Used only by the engine's worker thread, except the snapshots (``loaded``,
``counts``), which take the engine's lock; every change to what is held takes it
too, so a snapshot never sees half an eviction.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.templates import PromptTemplate
from ..errors import ModelNotFound
from ..models.model_config import context_length
from .adapter_files import require_adapter
from .lora_bank import LoraBank
from .request import ModelRef


@dataclass
class LoadedBase:
    path: str
    model: Any  # the transformers model; LoRA is applied by ``bank`` hooks, never merged
    tokenizer: Any
    context: int
    eos_ids: frozenset[int]
    cache_kwarg: str  # "cache" (transformers >= 5.x) or the older "past_key_values"
    bank: LoraBank
    adapters: dict[str, int] = field(default_factory=dict)  # adapter id -> bank slot
    templates: dict[str, PromptTemplate] = field(default_factory=dict)  # template kind for bare-base use
    stop_ids: dict[tuple, frozenset[int]] = field(default_factory=dict)  # per template: ids that end an answer


@dataclass
class LoadedAdapter:
    adapter_id: str
    path: str
    base_path: str
    slot: int
    template: PromptTemplate


class ModelCache:
    """At most ``max_bases`` bases and ``max_adapters`` adapters (least recently used evicted)."""

    def __init__(self, *, max_bases: int, max_adapters: int, device, dtype, lock: threading.Condition):
        self.max_bases, self.max_adapters = max_bases, max_adapters
        self.device, self.dtype = device, dtype
        self._lock = lock
        self._bases: OrderedDict[str, LoadedBase] = OrderedDict()
        self._adapters: OrderedDict[str, LoadedAdapter] = OrderedDict()

    def loaded(self) -> dict[str, list[str]]:
        """Base path -> adapter ids attached (a snapshot)."""
        with self._lock:
            return {path: list(base.adapters) for path, base in self._bases.items()}

    def counts(self) -> dict[str, int]:
        """How many adapters and bases are held (a snapshot)."""
        with self._lock:
            return {"adapters": len(self._adapters), "bases": len(self._bases)}

    def base(self, path: str) -> LoadedBase:
        """The base at ``path``, loaded (evicting the least recently used base and its adapters) if needed."""
        if path in self._bases:
            self._bases.move_to_end(path)
            return self._bases[path]
        if not (Path(path) / "config.json").is_file():
            raise ModelNotFound(f"Base model files not found at {path}")
        while len(self._bases) >= self.max_bases:
            with self._lock:
                _, old = self._bases.popitem(last=False)
                for adapter_id in list(old.adapters):
                    self._adapters.pop(adapter_id, None)
        base = self._load_base(path)
        with self._lock:
            self._bases[path] = base
        return base

    def adapter(self, base: LoadedBase, ref: ModelRef, in_use: set[str]) -> LoadedAdapter:
        """``ref``'s adapter attached to ``base``; never evicts an adapter in ``in_use`` to make room."""
        known = self._adapters.get(ref.adapter_id)
        if known is not None and known.path == ref.adapter_path and known.base_path == base.path:
            self._adapters.move_to_end(ref.adapter_id)
            return known
        if known is not None:  # same id, other files (a re-trained job): reload
            self.drop_adapter(ref.adapter_id)
        folder = require_adapter(ref.adapter_path, ref.adapter_id)
        try:
            template = PromptTemplate.load(folder)
        except (OSError, ValueError):
            raise ModelNotFound(f"Adapter of {ref.adapter_id} has no readable template.json",
                                model_id=ref.adapter_id) from None
        self._evict_for_one_more(in_use)
        slot = base.bank.add(folder)
        adapter = LoadedAdapter(ref.adapter_id, str(folder), base.path, slot, template)
        with self._lock:
            self._adapters[ref.adapter_id] = adapter
            base.adapters[ref.adapter_id] = slot
        return adapter

    def drop_adapter(self, adapter_id: str) -> None:
        """Detach an adapter and free its bank slot (no-op if not held)."""
        adapter = self._adapters.pop(adapter_id, None)
        if adapter is None:
            return
        base = self._bases.get(adapter.base_path)
        if base is not None and adapter_id in base.adapters:
            with self._lock:
                del base.adapters[adapter_id]
            base.bank.remove(adapter.slot)

    def trim(self) -> None:
        """After a batch wider than the cache: evict down to ``max_adapters`` again."""
        while len(self._adapters) > self.max_adapters:
            self.drop_adapter(next(iter(self._adapters)))

    def _evict_for_one_more(self, in_use: set[str]) -> None:
        for adapter_id in list(self._adapters):
            if len(self._adapters) < self.max_adapters:
                return
            if adapter_id not in in_use:
                self.drop_adapter(adapter_id)

    def _load_base(self, path: str) -> LoadedBase:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        if getattr(tokenizer, "backend_tokenizer", None) is None:
            # Incremental decoding (detokenize.py) runs on the `tokenizers` library's tokenizer.
            raise ModelNotFound(f"The model at {Path(path).name} has no fast tokenizer (tokenizer.json)")
        model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype).to(self.device).eval()
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        eos |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        cache_kwarg = "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"
        return LoadedBase(path=path, model=model, tokenizer=tokenizer, context=_context_length(model, tokenizer),
                          eos_ids=frozenset(eos), cache_kwarg=cache_kwarg, bank=LoraBank(model))


def _context_length(model, tokenizer) -> int:
    """The config's context length; a config that states none falls back on the tokenizer's limit."""
    return int(context_length(model.config.to_dict()) or tokenizer.model_max_length or 2048)


__all__ = ["LoadedAdapter", "LoadedBase", "ModelCache"]
