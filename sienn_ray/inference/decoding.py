"""Forward passes over a batch and what each new token means for its row: no Ray.

Decoding is our own loop rather than ``model.generate`` because every row keeps
its own sampling parameters, seed, stop strings and token budget, and rows join
and leave the batch between steps (``batch.py``). Each step: one forward pass
for all rows, one batched sampling pass (``sampling.py``), then per row the new
token's text (``detokenize.py``), the end check and the streamed chunk.
"""

from __future__ import annotations

import time

from .batch import Batch, Row, prune
from .model_cache import LoadedBase
from .request import Completion
from .sampling import RowSampling


class Decoder:
    """Runs prefill and decode steps on ``device``; counts the widest batch and the cancelled requests."""

    def __init__(self, device, on_finished=None):
        self.device = device
        self.peak_batch = 0  # the most rows decoded together so far (tests and metrics)
        self.cancelled = 0  # requests dropped because their caller went away
        self.running = 0
        self._on_finished = on_finished or (lambda seconds: None)

    def prefill(self, base: LoadedBase, rows: list[Row]) -> Batch | None:
        """Run the prompts of ``rows`` and sample their first tokens; a failure fails only these rows."""
        try:
            return self._prefill(base, rows)
        except Exception as err:  # noqa: BLE001 - these rows' callers get the error; the worker goes on
            for row in rows:
                row.req.emit(err)
            return None

    def step(self, batch: Batch) -> None:
        """One new token for every row of ``batch``."""
        import torch

        self.peak_batch = max(self.peak_batch, len(batch.rows))
        self.running = len(batch.rows)
        batch.mask = torch.cat([batch.mask, torch.ones((len(batch.rows), 1), dtype=torch.long)], dim=1)
        logits = self._forward(batch.base, batch.rows, batch.last[:, None], batch.mask,
                               batch.positions[:, None], batch.cache)
        batch.positions = batch.positions + 1
        batch.last = self._sample(batch, logits)

    def _prefill(self, base: LoadedBase, rows: list[Row]) -> Batch:
        import torch
        from transformers import DynamicCache

        width = max(len(row.prompt_ids) for row in rows)
        pad = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row.prompt_ids):] = torch.tensor(row.prompt_ids)
            mask[i, width - len(row.prompt_ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self._forward(base, rows, ids, mask, positions, cache)
        sampling = RowSampling.build([row.req.params for row in rows], [row.seed for row in rows],
                                     [row.prompt_ids for row in rows], logits.shape[-1], logits.device)
        batch = Batch(base, rows, cache, mask, positions[:, -1] + 1, None, sampling)
        batch.last = self._sample(batch, logits)
        prune(batch, self.device)
        return batch

    def _forward(self, base: LoadedBase, rows: list[Row], input_ids, mask, positions, cache):
        """One forward pass; returns the last position's logits as float32 on the model's device."""
        base.bank.select([row.slot for row in rows], self.device)
        out = base.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=positions.to(self.device), use_cache=True, logits_to_keep=1,
                         **{base.cache_kwarg: cache})
        return out.logits[:, -1, :].float()

    def _sample(self, batch: Batch, logits):
        tokens, failures = batch.sampling.pick(logits)
        for i, (row, token) in enumerate(zip(batch.rows, tokens.tolist())):
            if i in failures:
                row.failed = True
                row.req.emit(failures[i])
            else:
                self._advance(row, token)
        return tokens

    def _advance(self, row: Row, token: int) -> None:
        """Record one token, detect the end, stream what is final."""
        if row.req.ticket.cancelled:
            row.finish = "stop"
            self.cancelled += 1
            return
        row.generated += 1
        if token in row.stop_ids:
            row.finish = "stop"
            chunk = row.text.finish()
        else:
            chunk = row.text.push(token)
            if row.text.stopped:
                row.finish = "stop"
            elif row.generated >= row.budget:
                row.finish = "length"
                chunk += row.text.finish()
        if row.req.stream and chunk:
            row.req.emit(chunk)
        if row.finish:
            seconds = time.perf_counter() - row.req.submitted
            self._on_finished(seconds)
            row.req.emit(Completion(text=row.text.text, finish_reason=row.finish, tokens_generated=row.generated,
                                    prompt_tokens=len(row.prompt_ids), seconds=seconds))


__all__ = ["Decoder"]
