"""Every LoRA adapter of one base model, stacked per module, applied per row: plain Python, no Ray.

The multi-LoRA scheme of Punica/S-LoRA/vLLM in plain torch: each adapted module
holds all adapters' A and B stacked by slot, and each row of a batch picks its
own adapter's weights by slot index (gather + batched matmul). There is no
shared "active adapter" that one request could leak into another's, and
switching adapters costs nothing. Adapters are read from the PEFT on-disk
format that training writes (``adapter_config.json`` + safetensors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelNotFound
from ..models.lora_adapter import ADAPTER_WEIGHTS, NotPlainLora, lora_pairs, lora_scaling, read_adapter_config


class LoraBank:
    """All LoRA adapters of one base, stacked per target module; rows pick theirs by slot.

    For each adapted module the bank holds ``A: [slots, in, r]`` and
    ``B: [slots, r, out]`` (LoRA scaling folded into B); a forward hook adds
    ``x @ A[slot] @ B[slot]`` to the module's output. Slot 0 is all zeros: the
    bare base. A batch with one adapter uses two matmuls; a mixed batch gathers
    each row's A and B and uses two batched matmuls, whatever the number of
    adapters. Removing an adapter zeroes its slot for reuse, so memory stays
    bounded by the most adapters held at once. Plain LoRA only (what our
    training writes): DoRA, modules_to_save or embedding LoRA are refused.
    """

    def __init__(self, model):
        self._model = model
        self._modules: dict[str, _BankedModule] = {}
        self._free: list[int] = []
        self._slots = 1  # slot 0: the base
        self.single: int | None = 0
        self._index = None

    def add(self, folder: Path) -> int:
        """Load the adapter in ``folder`` into a free slot and return the slot."""
        weights = _read_lora(Path(folder), self._model)
        slot = self._free.pop() if self._free else self._new_slot()
        for name, (a, b) in weights.items():
            module = self._modules.get(name)
            if module is None:
                module = self._modules[name] = _BankedModule(self, self._model.get_submodule(name), self._slots)
            module.put(slot, a, b)
        return slot

    def remove(self, slot: int) -> None:
        """Zero ``slot`` in every module and keep it for the next adapter."""
        for module in self._modules.values():
            module.clear(slot)
        self._free.append(slot)

    def select(self, slots: list[int], device) -> None:
        """Set which slot each row of the next forward uses."""
        import torch

        if all(s == slots[0] for s in slots):
            self.single, self._index = slots[0], None
        else:
            self.single, self._index = None, torch.tensor(slots, dtype=torch.long, device=device)

    def _new_slot(self) -> int:
        slot, self._slots = self._slots, self._slots + 1
        for module in self._modules.values():
            module.grow(slots=self._slots)
        return slot

    def delta(self, a, b, x):
        """The LoRA term for module input ``x`` ([batch, tokens, in]) with this bank's row selection."""
        import torch

        if self.single is not None:
            return (x @ a[self.single]) @ b[self.single]
        shape = x.shape
        x3 = x.reshape(self._index.numel(), -1, shape[-1])
        return torch.bmm(torch.bmm(x3, a[self._index]), b[self._index]).reshape(*shape[:-1], -1)


class _BankedModule:
    """The stacked A/B of one adapted module and the hook that applies them."""

    def __init__(self, bank: LoraBank, module, slots: int):
        import torch

        self.bank = bank
        weight = module.weight
        in_features, out_features = _linear_shape(module)
        self.a = torch.zeros((slots, in_features, 0), dtype=weight.dtype, device=weight.device)
        self.b = torch.zeros((slots, 0, out_features), dtype=weight.dtype, device=weight.device)
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, _module, args, output):
        if self.bank.single == 0 or self.a.shape[-1] == 0:
            return output
        return output + self.bank.delta(self.a, self.b, args[0].to(self.a.dtype)).to(output.dtype)

    def put(self, slot: int, a, b) -> None:
        """``a``: [in, r], ``b``: [r, out] (scaled)."""
        rank = a.shape[1]
        if rank > self.a.shape[-1]:
            self.grow(rank=rank)
        self.a[slot].zero_()
        self.b[slot].zero_()
        self.a[slot, :, :rank] = a.to(self.a)
        self.b[slot, :rank, :] = b.to(self.b)

    def clear(self, slot: int) -> None:
        self.a[slot].zero_()
        self.b[slot].zero_()

    def grow(self, slots: int | None = None, rank: int | None = None) -> None:
        """Zero-padding: more slots, or a larger rank (zero rows/columns add nothing)."""
        old_slots, in_features, old_rank = self.a.shape
        slots, rank = slots or old_slots, rank or old_rank
        a = self.a.new_zeros((slots, in_features, rank))
        b = self.b.new_zeros((slots, rank, self.b.shape[-1]))
        a[:old_slots, :, :old_rank] = self.a
        b[:old_slots, :old_rank, :] = self.b
        self.a, self.b = a, b


def _linear_shape(module) -> tuple[int, int]:
    """(in, out) of a Linear, or of a GPT-2 Conv1D (whose weight is stored [in, out])."""
    if hasattr(module, "in_features"):
        return module.in_features, module.out_features
    if hasattr(module, "nf"):
        return module.weight.shape[0], module.nf
    raise ValueError(f"LoRA on a {type(module).__name__} is not supported by the inference engine")


def _read_lora(folder: Path, model) -> dict[str, tuple[Any, Any]]:
    """Module name -> (A as [in, r], B·scaling as [r, out]) from a PEFT LoRA adapter folder."""
    import torch

    config = read_adapter_config(folder)
    if config.get("peft_type") != "LORA" or config.get("use_dora") or config.get("modules_to_save"):
        raise ModelNotFound(f"The adapter at {folder.name} is not a plain LoRA adapter (DoRA, modules_to_save "
                            "and other PEFT methods are not served)")
    if (folder / ADAPTER_WEIGHTS[0]).is_file():
        from safetensors.torch import load_file

        tensors = load_file(folder / ADAPTER_WEIGHTS[0])
    else:
        tensors = torch.load(folder / ADAPTER_WEIGHTS[1], map_location="cpu", weights_only=True)
    try:
        pairs = lora_pairs(tensors)
    except NotPlainLora as err:
        raise ModelNotFound(f"The adapter at {folder.name} has tensors inference cannot apply: {err}") from None
    out = {}
    for name, (a, b) in pairs.items():
        try:
            in_features, out_features = _linear_shape(model.get_submodule(name))
        except AttributeError:
            raise ModelNotFound(f"The adapter at {folder.name} targets {name}, which this base has not") from None
        if a.shape[1] != in_features or b.shape[0] != out_features:
            raise ModelNotFound(f"The adapter at {folder.name} does not fit this base model ({name})")
        out[name] = (a.t().float(), (b.t().float() * lora_scaling(config, name)))
    return out


__all__ = ["LoraBank"]
