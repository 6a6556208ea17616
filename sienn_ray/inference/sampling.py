"""Every row's next token in one pass over the batch: torch only, no Ray.

Each row of a batch keeps its own temperature, top-p, top-k, repetition penalty
and seed. They are held as per-row tensors next to the batch (``RowSampling``),
so a decode step is a few tensor operations whatever the batch size, not a
Python loop over rows.

Two properties matter more than speed:

* Any value the schema accepts samples (temperature 1e-45, a denormal; a
  repetition penalty of 1e-300): the arithmetic is arranged so that it can give
  ``-inf`` but never NaN. A row that still cannot be sampled (the model gave NaN)
  fails alone, and if the batched pass raises at all, the rows are retried one
  by one so that only the row that raises fails.
* Same seed, same text, whatever the batch mates: each row draws one uniform
  number per step from its own generator, and every cut (top-k, top-p) and the
  draw itself are made from that row's own values in a fixed order (thresholds
  on sorted values, then the inverse CDF in vocabulary order), never from the
  order in which a sort happened to place ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..schemas.generation import SamplingParams


class SamplingFailed(RuntimeError):
    """A row whose logits cannot be sampled (NaN, or every token impossible)."""


@dataclass
class RowSampling:
    """Sampling parameters of the rows of one batch, as tensors indexed by row."""

    temperature: Any  # [B] float64; 0 is greedy
    top_p: Any  # [B] float32
    top_k: Any  # [B] int64; 0 is off
    penalty: Any  # [B] float32
    presence: Any  # [B, V] bool: token already in the row's prompt or output (repetition penalty)
    generators: list  # one torch.Generator per row, seeded once

    @classmethod
    def build(cls, params: Sequence[SamplingParams], seeds: Sequence[int], prompts: Sequence[Sequence[int]],
              vocab: int, device) -> "RowSampling":
        """State for new rows: ``prompts`` are the prompt token ids (the repetition penalty sees them)."""
        import torch

        presence = torch.zeros((len(params), vocab), dtype=torch.bool, device=device)
        for i, ids in enumerate(prompts):
            known = torch.tensor([t for t in ids if 0 <= t < vocab], dtype=torch.long, device=device)
            presence[i, known] = True
        return cls(
            temperature=torch.tensor([p.temperature for p in params], dtype=torch.float64, device=device),
            top_p=torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device),
            top_k=torch.tensor([p.top_k for p in params], dtype=torch.long, device=device),
            penalty=torch.tensor([p.repetition_penalty for p in params], dtype=torch.float32, device=device),
            presence=presence,
            generators=[torch.Generator().manual_seed(seed) for seed in seeds],
        )

    def select(self, keep: list[int]) -> None:
        """Keep only the rows at ``keep`` (finished rows leave the batch)."""
        import torch

        index = torch.tensor(keep, dtype=torch.long, device=self.presence.device)
        for name in ("temperature", "top_p", "top_k", "penalty", "presence"):
            setattr(self, name, getattr(self, name)[index])
        self.generators = [self.generators[i] for i in keep]

    def extend(self, other: "RowSampling") -> None:
        """Append ``other``'s rows (newcomers joining the batch)."""
        import torch

        for name in ("temperature", "top_p", "top_k", "penalty", "presence"):
            setattr(self, name, torch.cat([getattr(self, name), getattr(other, name)]))
        self.generators = self.generators + other.generators

    def pick(self, logits) -> tuple[Any, dict[int, Exception]]:
        """Each row's next token ([B] int64, on the logits' device) and the rows that failed, by index."""
        import torch

        uniforms = self._uniforms()
        try:
            tokens, bad = _pick(logits, self.temperature, self.top_p, self.top_k, self.penalty, self.presence,
                                uniforms)
        except Exception:  # noqa: BLE001 - find the row that raises; every other row still gets its token
            return self._pick_one_by_one(logits, uniforms)
        failures = {int(i): SamplingFailed("The model produced logits that cannot be sampled")
                    for i in bad.nonzero().flatten().tolist()}
        self._observe(tokens)
        return tokens, failures

    def _uniforms(self):
        """One draw per sampling row from its own generator (greedy rows draw nothing)."""
        import torch

        hot = (self.temperature > 0).tolist()
        values = [float(torch.rand((), generator=g, dtype=torch.float64)) if h else 0.0
                  for h, g in zip(hot, self.generators)]
        return torch.tensor(values, dtype=torch.float64, device=self.presence.device)

    def _pick_one_by_one(self, logits, uniforms):
        import torch

        tokens = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        failures: dict[int, Exception] = {}
        for i in range(logits.shape[0]):
            row = slice(i, i + 1)
            try:
                token, bad = _pick(logits[row], self.temperature[row], self.top_p[row], self.top_k[row],
                                   self.penalty[row], self.presence[row], uniforms[row])
            except Exception as err:  # noqa: BLE001 - this row's error goes to this row's caller
                failures[i] = err
                continue
            if bool(bad[0]):
                failures[i] = SamplingFailed("The model produced logits that cannot be sampled")
            tokens[i] = token[0]
        self._observe(tokens)
        return tokens, failures

    def _observe(self, tokens) -> None:
        import torch

        self.presence[torch.arange(tokens.shape[0], device=tokens.device), tokens] = True


def _pick(logits, temperature, top_p, top_k, penalty, presence, uniforms):
    """Penalty, then greedy rows by argmax and sampling rows by ``_sample``; returns (tokens, bad rows)."""
    import torch

    logits = logits.float()
    if bool((penalty != 1).any()):
        p = penalty[:, None]
        logits = torch.where(presence, torch.where(logits < 0, logits * p, logits / p), logits)
    # A tiny penalty can push a logit to +inf; as the largest float it stays the favourite without NaN later.
    logits = logits.clamp(max=torch.finfo(logits.dtype).max)
    bad = logits.isnan().any(-1) | (logits.amax(-1) == -math.inf)
    logits = logits.masked_fill(bad[:, None], 0.0)  # a bad row gets a harmless token; its caller gets an error
    tokens = logits.argmax(-1)
    hot = (temperature > 0).nonzero().flatten()
    if hot.numel():
        tokens[hot] = _sample(logits[hot], temperature[hot], top_p[hot], top_k[hot], uniforms[hot])
    return tokens, bad


def _sample(logits, temperature, top_p, top_k, uniforms):
    """Temperature, then top-k, then top-p, then one inverse-CDF draw per row."""
    import torch

    vocab = logits.shape[-1]
    x = logits - logits.amax(-1, keepdim=True)  # the best token at 0, every other below: exp() cannot overflow
    # In float64 a denormal temperature is still > 0; x <= 0, so x / t is finite or -inf, never NaN.
    x = (x.double() / temperature[:, None]).float()
    k = torch.where((top_k > 0) & (top_k < vocab), top_k, torch.full_like(top_k, vocab))
    cut_k, cut_p = k < vocab, top_p < 1
    rows = (cut_k | cut_p).nonzero().flatten()
    if rows.numel():
        x[rows] = _nucleus(x[rows], k[rows], cut_k[rows], top_p[rows], cut_p[rows])
    weights = x.exp()
    cumulative = weights.cumsum(-1)  # vocabulary order: the draw never depends on how a sort placed ties
    target = (uniforms * cumulative[:, -1].double()).float()
    picked = torch.searchsorted(cumulative, target[:, None], right=True).squeeze(1)
    # Rounding can put the target on the very end; the last token that can be drawn is the answer then.
    last = vocab - 1 - (weights > 0).flip(-1).int().argmax(-1)
    return torch.minimum(picked, last)


def _nucleus(x, k, cut_k, top_p, cut_p):
    """Mask tokens below the k-th value (top-k) and outside the top-p mass of the survivors (top-p)."""
    import torch

    width = int(k.max())
    values = x.topk(width, dim=-1).values if width < x.shape[-1] else x.sort(dim=-1, descending=True).values
    kth = values.gather(1, (k - 1)[:, None]).squeeze(1)
    threshold = torch.where(cut_k, kth, torch.full_like(kth, -math.inf))
    # Sorted values, so this row's cut depends only on its own values (a prefix sum, whatever ``width``).
    weights = torch.where(torch.arange(width, device=x.device)[None, :] < k[:, None], values.exp(),
                          torch.zeros_like(values))
    cumulative = weights.cumsum(-1)
    total = cumulative.gather(1, (k - 1)[:, None])
    kept = ((cumulative - weights) < top_p[:, None] * total).sum(-1).clamp(min=1)
    pth = values.gather(1, (kept - 1)[:, None]).squeeze(1)
    threshold = torch.where(cut_p, torch.maximum(threshold, pth), threshold)
    return x.masked_fill(x < threshold[:, None], -math.inf)


__all__ = ["RowSampling", "SamplingFailed"]
