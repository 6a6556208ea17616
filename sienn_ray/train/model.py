"""Loading the base model with its LoRA adapter, and the loss on next-token targets."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.packing import Batch, collate_packed
from ..data.tokenize import IGNORE_INDEX, TokenizedExample
from ..schemas.jobs import TrainingConfig
from .lora import lora_config, read_model_config, resolve_target_modules


def load_tokenizer(model_path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_path), trust_remote_code=False)


def load_lora_model(model_path: str | Path, config: TrainingConfig, dtype: torch.dtype = torch.float32):
    """The base model (weights frozen) wrapped in a fresh PEFT LoRA adapter."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        str(model_path), dtype=dtype, attn_implementation="sdpa", trust_remote_code=False
    )
    base.config.use_cache = False
    targets = resolve_target_modules(model_path, config)
    model_type = read_model_config(model_path).get("model_type", "")
    return get_peft_model(base, lora_config(config, targets, model_type))


def batch_loss(model, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the batch's targets."""
    logits, targets = _target_logits(model, batch)
    return F.cross_entropy(logits.float(), targets, reduction="mean")


def batch_loss_and_hits(model, batch: Batch) -> tuple[torch.Tensor, int]:
    """``batch_loss`` and how many targets the model's top guess gets right (for token accuracy)."""
    logits, targets = _target_logits(model, batch)
    hits = int((logits.argmax(dim=-1) == targets).sum())
    return F.cross_entropy(logits.float(), targets, reduction="mean"), hits


def _target_logits(model, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits at the positions that have a target, and those targets.

    Logits are computed only where a target exists (``logits_to_keep`` as a
    boolean mask), which skips the vocabulary projection on prompt and padding
    tokens; a model that ignores the mask returns full logits, indexed here.
    """
    keep = batch.targets != IGNORE_INDEX
    out = model(**batch.model_inputs(), use_cache=False, logits_to_keep=keep)
    logits = out.logits
    if logits.dim() == 3:
        logits = logits[keep]
    return logits, batch.targets[keep]


@torch.no_grad()
def probe_packing(model, pad_id: int, vocab_size: int) -> bool:
    """True if the model keeps packed examples apart (block-diagonal attention from position_ids).

    Runs two short random sequences alone and packed into one row and compares
    the logits; an architecture whose attention ignores position-id boundaries
    fails this and the job falls back to length-grouped padding.
    """
    was_training = model.training
    model.eval()
    try:
        gen = torch.Generator().manual_seed(0)
        seqs = [torch.randint(2, max(3, vocab_size), (n,), generator=gen).tolist() for n in (7, 5)]
        examples = [TokenizedExample(s, list(s)) for s in seqs]
        device = next(model.parameters()).device
        packed = collate_packed(examples, max_length=16, pad_id=pad_id).to(device)
        logits = model(**packed.model_inputs(), use_cache=False).logits[0]
        start = 0
        for seq in seqs:
            alone = model(input_ids=torch.tensor([seq], device=device), use_cache=False).logits[0]
            if not torch.allclose(logits[start:start + len(seq)].float(), alone.float(), atol=1e-3, rtol=1e-3):
                return False
            start += len(seq)
        return True
    finally:
        model.train(was_training)
