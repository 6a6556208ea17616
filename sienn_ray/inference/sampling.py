"""Every row's next token in one pass over the batch: torch only, no Ray.

Each row of a batch keeps its own temperature, top-p, top-k, repetition penalty
and seed, held as per-row tensors next to the batch (``RowSampling``), so a
decode step is a few tensor operations whatever the batch size, not a Python
loop over rows. Rows are grouped by what they need: greedy rows take the
argmax; top-k rows (and top-p rows whose nucleus is narrow) sample among
``topk`` candidates; only a wide nucleus sorts the whole vocabulary. Every path
draws the same token for the same random number (tests check the fast paths
against the full one).

Two properties matter more than speed:

* Any value the schema accepts samples (temperature 1e-45 or a denormal, a
  repetition penalty of 1e-300): the arithmetic can give ``-inf`` but never
  NaN. A row that still cannot be sampled (the model gave NaN) fails alone, and
  if the batched pass raises at all, the rows are retried one by one so that
  only the row that raises fails.
* Same seed, same text, whatever the batch mates: each row draws one uniform
  number per step from its own generator; which path a row takes depends only
  on its own values; cuts are thresholds on values (ties are kept together) and
  the draw walks the kept tokens in token-id order, so nothing depends on how a
  sort ordered ties or on how wide a batched ``topk`` was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..schemas.generation import SamplingParams

# Top-p without top-k first looks for its nucleus among this many best tokens; wider nuclei sort everything.
NUCLEUS_PROBE = 1024
# Below this, the temperature is applied in float64 (in float32 it would round to zero and give NaN).
TINY_TEMPERATURE = 1e-30


class SamplingFailed(RuntimeError):
    """A row whose logits cannot be sampled (NaN, or every token impossible)."""


@dataclass
class _Rows:
    """Some rows' parameters: the specs (read in Python, no device sync) and the same values as tensors."""

    specs: list[SamplingParams]
    temperature: Any  # [b] float64; 0 is greedy
    top_p: Any  # [b] float32
    top_k: Any  # [b] int64; 0 is off
    penalty: Any  # [b] float32
    presence: Any  # [b, V] bool: token already in the row's prompt or output (read for penalized rows only)

    _TENSORS = ("temperature", "top_p", "top_k", "penalty", "presence")

    def take(self, index: list[int]) -> "_Rows":
        """These rows only (``self`` when ``index`` is every row, in order: no copy)."""
        import torch

        if index == list(range(len(self.specs))):
            return self
        at = torch.tensor(index, dtype=torch.long, device=self.presence.device)
        return _Rows([self.specs[i] for i in index], *(getattr(self, name)[at] for name in self._TENSORS))

    def plus(self, other: "_Rows") -> "_Rows":
        import torch

        return _Rows(self.specs + other.specs,
                     *(torch.cat([getattr(self, name), getattr(other, name)]) for name in self._TENSORS))


class RowSampling:
    """Sampling state of the rows of one batch: parameters, seen tokens and one generator per row."""

    def __init__(self, rows: _Rows, generators: list):
        self._rows, self._generators = rows, generators

    @classmethod
    def build(cls, params: Sequence[SamplingParams], seeds: Sequence[int], prompts: Sequence[Sequence[int]],
              vocab: int, device) -> "RowSampling":
        """State for new rows: ``prompts`` are the prompt token ids (the repetition penalty sees them)."""
        import torch

        presence = torch.zeros((len(params), vocab), dtype=torch.bool, device=device)
        for i, ids in enumerate(prompts):
            if params[i].repetition_penalty != 1:
                presence[i, torch.tensor([t for t in ids if 0 <= t < vocab], dtype=torch.long, device=device)] = True
        rows = _Rows(
            list(params),
            temperature=torch.tensor([p.temperature for p in params], dtype=torch.float64, device=device),
            top_p=torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device),
            top_k=torch.tensor([p.top_k for p in params], dtype=torch.long, device=device),
            penalty=torch.tensor([p.repetition_penalty for p in params], dtype=torch.float32, device=device),
            presence=presence,
        )
        return cls(rows, [torch.Generator().manual_seed(seed) for seed in seeds])

    def select(self, keep: list[int]) -> None:
        """Keep only the rows at ``keep`` (finished rows leave the batch)."""
        self._rows = self._rows.take(keep)
        self._generators = [self._generators[i] for i in keep]

    def extend(self, other: "RowSampling") -> None:
        """Append ``other``'s rows (newcomers joining the batch)."""
        self._rows = self._rows.plus(other._rows)
        self._generators = self._generators + other._generators

    def pick(self, logits) -> tuple[Any, dict[int, Exception]]:
        """Each row's next token ([B] int64, on the logits' device) and the rows that failed, by index."""
        uniforms = self._uniforms()
        try:
            tokens, bad = _pick(logits, self._rows, uniforms)
            failures = {i: SamplingFailed("The model produced logits that cannot be sampled")
                        for i, b in enumerate(bad) if b}
        except Exception:  # noqa: BLE001 - find the row that raises; every other row still gets its token
            tokens, failures = self._pick_one_by_one(logits, uniforms)
        self._observe(tokens)
        return tokens, failures

    def _uniforms(self):
        """One draw per sampling row from its own generator (greedy rows draw nothing)."""
        import torch

        if not any(spec.temperature > 0 for spec in self._rows.specs):
            return None
        values = [float(torch.rand((), generator=g, dtype=torch.float64)) if spec.temperature > 0 else 0.0
                  for spec, g in zip(self._rows.specs, self._generators)]
        return torch.tensor(values, dtype=torch.float64, device=self._rows.presence.device)

    def _pick_one_by_one(self, logits, uniforms):
        import torch

        tokens = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        failures: dict[int, Exception] = {}
        for i in range(logits.shape[0]):
            try:
                token, bad = _pick(logits[i:i + 1], self._rows.take([i]),
                                   None if uniforms is None else uniforms[i:i + 1])
            except Exception as err:  # noqa: BLE001 - this row's error goes to this row's caller
                failures[i] = err
                continue
            if bad[0]:
                failures[i] = SamplingFailed("The model produced logits that cannot be sampled")
            tokens[i] = token[0]
        return tokens, failures

    def _observe(self, tokens) -> None:
        """Mark each penalized row's new token as seen (no other row ever reads its presence)."""
        import torch

        rows = [i for i, spec in enumerate(self._rows.specs) if spec.repetition_penalty != 1]
        if rows:
            at = torch.tensor(rows, dtype=torch.long, device=self._rows.presence.device)
            self._rows.presence[at, tokens.to(at.device)[at]] = True


def _pick(logits, rows: _Rows, uniforms) -> tuple[Any, list[bool]]:
    """Penalty, then greedy rows by argmax and sampling rows by ``_sample``; returns (tokens, bad rows)."""
    import torch

    logits = logits.float()
    penalized = [i for i, spec in enumerate(rows.specs) if spec.repetition_penalty != 1]
    if penalized:
        some = rows.take(penalized)
        at = torch.tensor(penalized, dtype=torch.long, device=logits.device)
        sub, p = logits[at], some.penalty[:, None]
        sub = torch.where(some.presence, torch.where(sub < 0, sub * p, sub / p), sub)
        # A tiny penalty can push a logit to +inf; as the largest float it stays the favourite, without NaN.
        logits = logits.index_copy(0, at, sub.clamp(max=torch.finfo(sub.dtype).max))
    best, tokens = logits.max(-1)
    bad = (~torch.isfinite(best)).tolist()  # NaN anywhere reaches the max; all -inf is not finite either
    hot = [i for i, spec in enumerate(rows.specs) if spec.temperature > 0 and not bad[i]]
    if hot:
        if len(hot) == len(rows.specs):
            return _sample(logits, best, rows, uniforms), bad
        at = torch.tensor(hot, dtype=torch.long, device=logits.device)
        tokens[at] = _sample(logits[at], best[at], rows.take(hot), uniforms[at])
    return tokens, bad


def _sample(logits, best, rows: _Rows, uniforms):
    """Temperature, then top-k, then top-p, then one inverse-CDF draw per row, by the cheapest exact path."""
    import torch

    vocab = logits.shape[-1]
    with_k = [i for i, s in enumerate(rows.specs) if 0 < s.top_k < vocab]
    narrow = [i for i, s in enumerate(rows.specs)
              if not 0 < s.top_k < vocab and s.top_p < 1 and NUCLEUS_PROBE < vocab]
    tokens = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    done = [False] * len(rows.specs)
    for group, among in ((with_k, _among_top_k), (narrow, _among_nucleus_probe)):
        if not group:
            continue
        at = torch.tensor(group, dtype=torch.long, device=logits.device)
        full = len(group) == len(rows.specs)
        picked, ok = among(logits if full else logits[at], best if full else best[at], rows.take(group),
                           uniforms if full else uniforms[at])
        if full and all(ok):
            return picked
        accepted = [j for j, good in enumerate(ok) if good]
        tokens[at[accepted]] = picked[accepted]
        for j in accepted:
            done[group[j]] = True
    rest = [i for i, d in enumerate(done) if not d]
    if rest:
        at = torch.tensor(rest, dtype=torch.long, device=logits.device)
        tokens[at] = _over_vocabulary(logits[at], best[at], rows.take(rest), uniforms[at])
    return tokens


def _among_top_k(logits, best, rows: _Rows, uniforms):
    """Rows with top-k: draw among their k best tokens. Not ``ok`` when ties with the k-th go past it."""
    top_k = rows.top_k
    values, ids = logits.topk(min(max(s.top_k for s in rows.specs) + 1, logits.shape[-1]), dim=-1)  # best first
    kth = values.gather(1, (top_k - 1)[:, None])
    ok = (values.gather(1, top_k[:, None]) != kth).squeeze(1).tolist()  # position k: in every row's own reach
    scaled = _scaled(values - best[:, None], rows)
    weights = scaled.exp() * (values >= kth)
    order = ids.argsort(-1)  # token-id order, in which the full path sums too
    total = weights.gather(1, order).cumsum(-1)[:, -1]
    return _nucleus_draw(scaled, weights, total, rows, uniforms, ids, order), ok


def _among_nucleus_probe(logits, best, rows: _Rows, uniforms):
    """Rows with top-p only: draw among the ``NUCLEUS_PROBE`` best when their nucleus closes there."""
    values, ids = logits.topk(NUCLEUS_PROBE, dim=-1)
    scaled = _scaled(values - best[:, None], rows)
    weights = scaled.exp()
    total = _scaled(logits - best[:, None], rows).exp().cumsum(-1)[:, -1]  # the vocabulary's mass, id order
    cumulative = weights.cumsum(-1)
    kept = ((cumulative - weights) < (rows.top_p * total)[:, None]).sum(-1).clamp(min=1)
    cut = scaled.gather(1, (kept - 1)[:, None]).squeeze(1)
    ok = ((cumulative[:, -1] >= rows.top_p * total) & (scaled[:, -1] < cut)).tolist()  # closes inside, no tie past
    return _nucleus_draw(scaled, weights, total, rows, uniforms, ids, ids.argsort(-1)), ok


def _nucleus_draw(scaled, weights, total, rows: _Rows, uniforms, ids, order):
    """Cut candidates (best first) to the top-p share of ``total``, then draw among them in token-id order."""
    import torch

    if any(s.top_p < 1 for s in rows.specs):
        cumulative = weights.cumsum(-1)
        kept = ((cumulative - weights) < (rows.top_p * total)[:, None]).sum(-1).clamp(min=1)
        cut = scaled.gather(1, (kept - 1)[:, None])
        weights = torch.where((rows.top_p < 1)[:, None] & (scaled < cut), torch.zeros_like(weights), weights)
    return _draw(weights.gather(1, order), uniforms, ids.gather(1, order))


def _over_vocabulary(logits, best, rows: _Rows, uniforms):
    """The exact general path: the top-k and top-p cuts from sorted logits, a draw over the vocabulary.

    The fast paths above give the same token for the same draw: the same weights, the same sums in the
    same order (top-p's total over the kept tokens in token-id order, its prefix over sorted values).
    """
    import torch

    vocab = logits.shape[-1]
    x = _scaled(logits - best[:, None], rows)
    if any(0 < s.top_k < vocab or s.top_p < 1 for s in rows.specs):
        cut_k = (rows.top_k > 0) & (rows.top_k < vocab)
        values = logits.sort(dim=-1, descending=True).values
        kth = values.gather(1, (rows.top_k.clamp(min=1, max=vocab) - 1)[:, None])
        kth = torch.where(cut_k[:, None], kth, torch.full_like(kth, -math.inf))
        keep = logits >= kth  # raw logits, as the top-k path cuts (the temperature may merge neighbours)
        total = torch.where(keep, x.exp(), torch.zeros_like(x)).cumsum(-1)[:, -1]
        scaled = _scaled(values - best[:, None], rows)
        weights = torch.where(values >= kth, scaled.exp(), torch.zeros_like(scaled))
        cumulative = weights.cumsum(-1)
        kept = ((cumulative - weights) < (rows.top_p * total)[:, None]).sum(-1).clamp(min=1)
        cut = scaled.gather(1, (kept - 1)[:, None])
        x = x.masked_fill(~keep | ((rows.top_p < 1)[:, None] & (x < cut)), -math.inf)
    return _draw(x.exp(), uniforms, None)


def _draw(weights, uniforms, ids):
    """Inverse CDF: the first token whose cumulative weight passes ``uniform * total`` (weights in id order)."""
    import torch

    cumulative = weights.cumsum(-1)
    total = cumulative[:, -1]
    # Strictly below the total, so rounding can never land past the last token that can be drawn.
    target = torch.minimum((uniforms * total.double()).float(), torch.nextafter(total, torch.zeros_like(total)))
    picked = torch.searchsorted(cumulative, target[:, None], right=True)
    return picked.squeeze(1) if ids is None else ids.gather(1, picked).squeeze(1)


def _scaled(x, rows: _Rows):
    """``x / temperature`` for ``x <= 0``: finite or ``-inf``, never NaN, even for a denormal temperature."""
    out = x / rows.temperature.float().clamp(min=TINY_TEMPERATURE)[:, None]
    tiny = [i for i, s in enumerate(rows.specs) if s.temperature < TINY_TEMPERATURE]
    if tiny:  # per row, so a row's numbers never depend on its batch mates' temperatures
        out[tiny] = (x[tiny].double() / rows.temperature[tiny, None]).float()
    return out


__all__ = ["NUCLEUS_PROBE", "RowSampling", "SamplingFailed"]
