"""Generation over base models plus LoRA adapters: the public API and the worker loop. Plain Python, no Ray.

One ``InferenceEngine`` owns a few base models and many LoRA adapters attached
to them (``model_cache.py``). A single worker thread owns every tensor and
every module, so loading, evicting and generating never race: the model is only
ever touched from that thread. Concurrent requests are batched by that thread,
even when they use different adapters: each base keeps a ``LoraBank``
(``lora_bank.py``) and each row of a batch picks its own adapter's weights by
slot index, so there is no shared "active adapter" that one request could leak
into another's.

Batching is continuous: a request that arrives while others are decoding is
admitted (``admission.py``), prefilled on its own and then joins the running
batch at the next step, and finished rows leave at once (``batch.py``,
``decoding.py``). Requests wait in a bounded queue (``request_queue.py``): when
it is full, ``submit`` raises ``Overloaded`` at once.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator

from ..schemas.generation import SamplingParams
from .admission import admit
from .batch import Batch, merge, mergeable, prune
from .decoding import Decoder
from .model_cache import ModelCache
from .request import Completion, Emit, ModelRef, PromptSpec, Request, Started, Ticket
from .request_queue import RequestQueue


class InferenceEngine:
    """Base models loaded once, LoRA adapters attached on demand, continuous batching.

    ``max_adapters`` bounds the adapters held (least recently used evicted and
    deleted from the model); ``max_bases`` bounds the base models held;
    ``max_pending`` bounds the requests waiting to join a batch.
    Thread-safe: call ``submit``/``generate``/``stream`` from any thread.
    """

    def __init__(self, *, max_adapters: int = 8, max_bases: int = 2, max_batch_size: int = 16,
                 max_pending: int = 64, device: str | None = None, dtype: str | None = None,
                 num_threads: int | None = None):
        import torch

        if max_adapters < 1 or max_bases < 1 or max_batch_size < 1:
            raise ValueError("max_adapters, max_bases and max_batch_size must be >= 1")
        self.max_batch_size = max_batch_size
        device_ = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        default_dtype = "bfloat16" if device_.type == "cuda" else "float32"
        if num_threads:
            torch.set_num_threads(num_threads)
        self._lock = threading.Condition()
        self._queue = RequestQueue(max_pending, max_batch_size, self._lock)
        self._models = ModelCache(max_bases=max_bases, max_adapters=max_adapters, device=device_,
                                  dtype=getattr(torch, dtype or default_dtype), lock=self._lock)
        self._decoder = Decoder(device_, on_finished=self._queue.finished)
        self._worker = threading.Thread(target=self._run, name="sienn-inference", daemon=True)
        self._worker.start()

    # ---- public API (any thread) -------------------------------------------------

    def submit(self, ref: ModelRef, prompt: PromptSpec, params: SamplingParams, emit: Emit,
               *, stream: bool = False) -> Ticket:
        """Queue a request, or raise ``Overloaded`` when the queue is full. ``emit`` is called from
        the worker thread with ``Started``, then (if ``stream``) text chunks, then one ``Completion``
        or an exception."""
        ticket = Ticket()
        self._queue.put(Request(ref, prompt, params, emit, stream, ticket))
        return ticket

    def generate(self, ref: ModelRef, prompt: PromptSpec, params: SamplingParams) -> Completion:
        """Blocking generation; raises what the request failed with."""
        for event in self.stream(ref, prompt, params, chunks=False):
            if isinstance(event, Completion):
                return event
        raise RuntimeError("generation ended without a completion")

    def stream(self, ref: ModelRef, prompt: PromptSpec, params: SamplingParams,
               *, chunks: bool = True) -> Iterator[str | Completion]:
        """Blocking iterator: text chunks (if ``chunks``), then the ``Completion``."""
        events: queue.Queue = queue.Queue()
        ticket = self.submit(ref, prompt, params, events.put, stream=chunks)
        try:
            while True:
                event = events.get()
                if isinstance(event, BaseException):
                    raise event
                if isinstance(event, Started):
                    continue
                yield event
                if isinstance(event, Completion):
                    return
        finally:
            ticket.cancel()

    def unload_adapter(self, adapter_id: str) -> None:
        """Forget an adapter (done by the worker once no running row uses it)."""
        self._queue.unload(adapter_id)

    def loaded(self) -> dict[str, list[str]]:
        """Base path -> adapter ids currently attached (a snapshot, for tests and metrics)."""
        return self._models.loaded()

    @property
    def peak_batch(self) -> int:
        """The most rows decoded together so far."""
        return self._decoder.peak_batch

    def stats(self) -> dict:
        """Counters for metrics and tests."""
        return {"pending": len(self._queue), "max_pending": self._queue.max_pending,
                "running": self._decoder.running, "peak_batch": self._decoder.peak_batch,
                "cancelled": self._decoder.cancelled, **self._models.counts()}

    @property
    def alive(self) -> bool:
        """False if the worker thread died (the Serve health check restarts the replica)."""
        return self._worker.is_alive()

    def close(self) -> None:
        """Stop the worker; requests still waiting fail with an error."""
        for request in self._queue.close():
            request.emit(RuntimeError("InferenceEngine closed"))
        self._worker.join(timeout=30)

    # ---- worker thread ---------------------------------------------------------

    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            while self._queue.wait():
                first = self._queue.first()
                if first is None:
                    self._apply_unloads(None)  # free evicted adapters before loading anything new
                    continue
                self._serve(first)

    def _serve(self, first: Request) -> None:
        """Decode ``first`` and everything that joins it until the batch is empty."""
        batch = None
        try:
            batch = self._start(first)
            while batch is not None and batch.rows:
                self._decoder.step(batch)
                prune(batch, self._decoder.device)
                self._join(batch)
                self._apply_unloads(batch)
        except Exception as err:  # noqa: BLE001 - a failed forward fails its batch, never the worker
            for row in batch.rows if batch else []:
                row.req.emit(err)
        self._decoder.running = 0
        self._apply_unloads(None)
        self._models.trim()

    def _start(self, first: Request) -> Batch | None:
        requests = [first] + self._queue.take(first.ref.base_path, self.max_batch_size - 1)
        try:
            base = self._models.base(first.ref.base_path)
        except Exception as err:  # noqa: BLE001 - the base itself cannot be loaded: fail every request on it
            for req in requests:
                req.emit(err)
            return None
        rows = admit(self._models, base, requests, running=[])
        return self._decoder.prefill(base, rows) if rows else None

    def _join(self, batch: Batch) -> None:
        room = self.max_batch_size - len(batch.rows)
        if room <= 0 or not batch.rows or not mergeable(batch.cache):
            return  # full, finished, or an unusual cache layout: newcomers wait for this batch to finish
        requests = self._queue.take(batch.base.path, room)
        if not requests:
            return
        rows = admit(self._models, batch.base, requests, running=batch.rows)
        if rows:
            newcomer = self._decoder.prefill(batch.base, rows)
            if newcomer is not None and newcomer.rows:
                merge(batch, newcomer)

    def _apply_unloads(self, batch: Batch | None) -> None:
        in_use = {row.req.ref.adapter_id for row in batch.rows} if batch else set()
        for adapter_id in self._queue.unloads(in_use):
            self._models.drop_adapter(adapter_id)


__all__ = ["InferenceEngine"]
