"""Generation over base models plus LoRA adapters: plain Python, no Ray.

One ``InferenceEngine`` owns a few base models and many LoRA adapters attached
to them. A single worker thread owns every tensor and every module, so loading,
evicting and generating never race: the model is only ever touched from that
thread. Concurrent requests are batched by that thread, even when they use
different adapters: each base keeps a ``LoraBank`` (``lora_bank.py``) and each
row of a batch picks its own adapter's weights by slot index, so there is no
shared "active adapter" that one request could leak into another's.

Batching is continuous: a request that arrives while others are decoding is
prefilled on its own and then joins the running batch at the next step, and
finished rows leave at once (``batch.py``). Decoding is our own loop rather
than ``model.generate`` because every row keeps its own sampling parameters,
seed, stop strings and token budget (``sampling.py``).

Prompts are rendered with ``sienn_ray.data.templates`` and tokenized without
special tokens, exactly as training tokenized them, so a fine-tuned job is asked
in the form it learned.
"""

from __future__ import annotations

import inspect
import queue
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..data.templates import PromptTemplate, template_for
from ..errors import BadRequest, ModelNotFound
from .batch import Batch, Row, merge, mergeable, prune
from .lora_bank import ADAPTER_FILES, LoraBank
from .request import Completion, Emit, ModelRef, PromptSpec, Request, Started, Ticket
from .sampling import SamplingParams, find_stop, pick_token, safe_length, single_token_ids


@dataclass
class _Base:
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
class _Adapter:
    adapter_id: str
    path: str
    base_path: str
    slot: int
    template: PromptTemplate


class InferenceEngine:
    """Base models loaded once, LoRA adapters attached on demand, continuous batching.

    ``max_adapters`` bounds the adapters held (least recently used evicted and
    deleted from the model); ``max_bases`` bounds the base models held.
    Thread-safe: call ``submit``/``generate``/``stream`` from any thread.
    """

    def __init__(self, *, max_adapters: int = 8, max_bases: int = 2, max_batch_size: int = 16,
                 device: str | None = None, dtype: str | None = None, num_threads: int | None = None):
        import torch

        if max_adapters < 1 or max_bases < 1 or max_batch_size < 1:
            raise ValueError("max_adapters, max_bases and max_batch_size must be >= 1")
        self.max_adapters, self.max_bases, self.max_batch_size = max_adapters, max_bases, max_batch_size
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        default_dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        self.dtype = getattr(torch, dtype or default_dtype)
        if num_threads:
            torch.set_num_threads(num_threads)
        self._bases: OrderedDict[str, _Base] = OrderedDict()
        self._adapters: OrderedDict[str, _Adapter] = OrderedDict()
        self._pending: deque[Request] = deque()
        self._unloads: set[str] = set()
        self._cv = threading.Condition()
        self._closed = False
        self.peak_batch = 0  # the most rows decoded together so far (tests and metrics)
        self.cancelled = 0  # requests dropped because their caller went away
        self._running = 0
        self._worker = threading.Thread(target=self._run, name="sienn-inference", daemon=True)
        self._worker.start()

    # ---- public API (any thread) -------------------------------------------------

    def submit(self, ref: ModelRef, prompt: PromptSpec, params: SamplingParams, emit: Emit,
               *, stream: bool = False) -> Ticket:
        """Queue a request. ``emit`` is called from the worker thread with ``Started``,
        then (if ``stream``) text chunks, then one ``Completion`` or an exception."""
        ticket = Ticket()
        with self._cv:
            if self._closed:
                raise RuntimeError("InferenceEngine is closed")
            self._pending.append(Request(ref, prompt, params, emit, stream, ticket))
            self._cv.notify()
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
        with self._cv:
            self._unloads.add(adapter_id)
            self._cv.notify()

    def loaded(self) -> dict[str, list[str]]:
        """Base path -> adapter ids currently attached (a snapshot, for tests and metrics)."""
        with self._cv:
            return {path: list(base.adapters) for path, base in self._bases.items()}

    def stats(self) -> dict:
        """Counters for metrics and tests."""
        with self._cv:
            return {"pending": len(self._pending), "running": self._running, "peak_batch": self.peak_batch,
                    "cancelled": self.cancelled, "adapters": len(self._adapters), "bases": len(self._bases)}

    @property
    def alive(self) -> bool:
        """False if the worker thread died (the Serve health check restarts the replica)."""
        return self._worker.is_alive()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._worker.join(timeout=30)

    # ---- worker thread ---------------------------------------------------------

    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                first = self._wait_for_work()
                if first is None:
                    return
                batch = None
                try:
                    batch = self._start(first)
                    while batch is not None and batch.rows:
                        self._step(batch)
                        prune(batch, self.device)
                        self._join(batch)
                        self._apply_unloads(batch)
                except Exception as err:  # a failed forward fails its batch, never the worker
                    for row in batch.rows if batch else []:
                        row.req.emit(err)
                self._running = 0
                self._apply_unloads(None)
                self._trim()

    def _wait_for_work(self) -> Request | None:
        while True:
            with self._cv:
                while not (self._pending or self._unloads or self._closed):
                    self._cv.wait()
                if self._closed:
                    for req in self._pending:
                        req.emit(RuntimeError("InferenceEngine closed"))
                    self._pending.clear()
                    return None
                if self._pending and not self._unloads:
                    return self._pending.popleft()
            self._apply_unloads(None)  # free evicted adapters before loading anything new

    def _take(self, base_path: str, limit: int) -> list[Request]:
        """Pending requests on ``base_path``, oldest first, unless an older one waits on another base."""
        taken: list[Request] = []
        with self._cv:
            for req in list(self._pending):
                if len(taken) >= limit:
                    break
                if req.ref.base_path != base_path:
                    break  # fairness: let the running batch drain so that base gets its turn
                taken.append(req)
                self._pending.remove(req)
        return taken

    def _start(self, first: Request) -> Batch | None:
        requests = [first] + self._take(first.ref.base_path, self.max_batch_size - 1)
        try:
            base = self._base(first.ref.base_path)
        except Exception as err:  # the base itself cannot be loaded: fail every request on it
            for req in requests:
                req.emit(err)
            return None
        rows = self._admit(base, requests, running=[])
        if not rows:
            return None
        return self._prefill(base, rows)

    def _join(self, batch: Batch) -> None:
        room = self.max_batch_size - len(batch.rows)
        if room <= 0 or not batch.rows:
            return
        if not mergeable(batch.cache):
            return  # an unusual cache layout: newcomers wait for this batch to finish
        requests = self._take(batch.base.path, room)
        if not requests:
            return
        rows = self._admit(batch.base, requests, running=batch.rows)
        if rows:
            newcomer = self._prefill(batch.base, rows)
            if newcomer is not None and newcomer.rows:
                merge(batch, newcomer)

    # ---- loading -----------------------------------------------------------------

    def _base(self, path: str) -> _Base:
        if path in self._bases:
            self._bases.move_to_end(path)
            return self._bases[path]
        if not (Path(path) / "config.json").is_file():
            raise ModelNotFound(f"Base model files not found at {path}")
        while len(self._bases) >= self.max_bases:
            with self._cv:
                _, old = self._bases.popitem(last=False)
                for adapter_id in list(old.adapters):
                    self._adapters.pop(adapter_id, None)
        base = self._load_base(path)
        with self._cv:
            self._bases[path] = base
        return base

    def _load_base(self, path: str) -> _Base:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype).to(self.device).eval()
        config = model.config
        context = (getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
                   or tokenizer.model_max_length or 2048)
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        eos |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        cache_kwarg = "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"
        return _Base(path=path, model=model, tokenizer=tokenizer, context=int(context), eos_ids=frozenset(eos),
                     cache_kwarg=cache_kwarg, bank=LoraBank(model))

    def _adapter(self, base: _Base, ref: ModelRef, in_use: set[str]) -> _Adapter:
        known = self._adapters.get(ref.adapter_id)
        if known is not None and known.path == ref.adapter_path and known.base_path == base.path:
            self._adapters.move_to_end(ref.adapter_id)
            return known
        if known is not None:  # same id, other files (a re-trained job): reload
            self._drop_adapter(ref.adapter_id)
        folder = Path(ref.adapter_path or "")
        if not (folder / "adapter_config.json").is_file() or not any((folder / f).is_file() for f in ADAPTER_FILES):
            raise ModelNotFound(f"Adapter files of {ref.adapter_id} are missing", model_id=ref.adapter_id)
        try:
            template = PromptTemplate.load(folder)
        except (OSError, ValueError):
            raise ModelNotFound(f"Adapter of {ref.adapter_id} has no readable template.json",
                                model_id=ref.adapter_id) from None
        self._evict_for_one_more(in_use)
        slot = base.bank.add(folder)
        adapter = _Adapter(ref.adapter_id, str(folder), base.path, slot, template)
        with self._cv:
            self._adapters[ref.adapter_id] = adapter
            base.adapters[ref.adapter_id] = slot
        return adapter

    def _evict_for_one_more(self, in_use: set[str]) -> None:
        for adapter_id in list(self._adapters):
            if len(self._adapters) < self.max_adapters:
                return
            if adapter_id not in in_use:
                self._drop_adapter(adapter_id)

    def _trim(self) -> None:
        """After a batch wider than the cache: evict down to ``max_adapters`` again."""
        while len(self._adapters) > self.max_adapters:
            self._drop_adapter(next(iter(self._adapters)))

    def _drop_adapter(self, adapter_id: str) -> None:
        adapter = self._adapters.pop(adapter_id, None)
        if adapter is None:
            return
        base = self._bases.get(adapter.base_path)
        if base is not None and adapter_id in base.adapters:
            with self._cv:
                del base.adapters[adapter_id]
            base.bank.remove(adapter.slot)

    def _apply_unloads(self, batch: Batch | None) -> None:
        with self._cv:
            if not self._unloads:
                return
            in_use = {row.req.ref.adapter_id for row in batch.rows} if batch else set()
            todo = self._unloads - in_use
            self._unloads -= todo
        for adapter_id in todo:
            self._drop_adapter(adapter_id)

    # ---- admission and rendering -------------------------------------------------

    def _admit(self, base: _Base, requests: list[Request], running: list[Row]) -> list[Row]:
        import torch

        rows: list[Row] = []
        in_use = {r.ref.adapter_id for r in requests} | {row.req.ref.adapter_id for row in running}
        for req in requests:
            if req.ticket.cancelled:
                continue
            try:
                adapter = self._adapter(base, req.ref, in_use) if req.ref.adapter_id else None
                template = adapter.template if adapter else self._base_template(base, req.prompt)
                text = req.prompt.render(template)
                prompt_ids = base.tokenizer(text, add_special_tokens=False)["input_ids"]
                room = base.context - len(prompt_ids)
                if not prompt_ids:
                    raise BadRequest("The rendered prompt is empty")
                if room < 1:
                    raise BadRequest(f"The prompt is {len(prompt_ids)} tokens; this model's context is "
                                     f"{base.context} tokens, leaving no room to generate")
                params = req.params
                seed = params.seed if params.seed is not None else secrets.randbits(63)
                stops = tuple(params.stop) + tuple(template.stop_strings if template else ())
                rows.append(Row(
                    req=req, slot=adapter.slot if adapter else 0,
                    seen=list(prompt_ids), budget=min(params.max_new_tokens or room, room),
                    stop_ids=self._stop_ids(base, template), stops=stops,
                    generator=torch.Generator().manual_seed(seed), prompt_tokens=len(prompt_ids),
                ))
                req.emit(Started(prompt_tokens=len(prompt_ids)))
            except Exception as err:
                req.emit(err)
        return rows

    def _stop_ids(self, base: _Base, template: PromptTemplate | None) -> frozenset[int]:
        key = (template.eos_token, *template.stop_strings) if template else ()
        if key not in base.stop_ids:
            base.stop_ids[key] = base.eos_ids | single_token_ids(base.tokenizer, template)
        return base.stop_ids[key]

    def _base_template(self, base: _Base, prompt: PromptSpec) -> PromptTemplate | None:
        if prompt.kind == "raw":
            return None
        # A bare base is asked as training would render it: its own chat template when it has one.
        choice, data_kind = prompt.template or "auto", "chat" if prompt.kind == "chat" else "instruction"
        key = f"{choice}/{data_kind}"
        if key not in base.templates:
            base.templates[key] = template_for(choice, base.tokenizer, data_kind=data_kind)
        return base.templates[key]

    # ---- decoding ----------------------------------------------------------------

    def _forward(self, base: _Base, rows: list[Row], input_ids, mask, positions, cache):
        """One forward pass; returns the last position's logits as float32 on the CPU."""
        base.bank.select([row.slot for row in rows], self.device)
        out = base.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=positions.to(self.device), use_cache=True, logits_to_keep=1,
                         **{base.cache_kwarg: cache})
        return out.logits[:, -1, :].float().cpu()

    def _prefill(self, base: _Base, rows: list[Row]) -> Batch | None:
        """Run the prompts of ``rows`` and sample their first tokens; a failure fails only these rows."""
        try:
            return self._prefill_rows(base, rows)
        except Exception as err:
            for row in rows:
                row.req.emit(err)
            return None

    def _prefill_rows(self, base: _Base, rows: list[Row]) -> Batch:
        import torch
        from transformers import DynamicCache

        width = max(len(row.seen) for row in rows)
        pad = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row.seen):] = torch.tensor(row.seen)
            mask[i, width - len(row.seen):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self._forward(base, rows, ids, mask, positions, cache)
        batch = Batch(base, rows, cache, mask, positions[:, -1] + 1, None)
        batch.last = self._sample(batch, logits)
        prune(batch, self.device)
        return batch

    def _step(self, batch: Batch) -> None:
        import torch

        self.peak_batch = max(self.peak_batch, len(batch.rows))
        self._running = len(batch.rows)
        batch.mask = torch.cat([batch.mask, torch.ones((len(batch.rows), 1), dtype=torch.long)], dim=1)
        logits = self._forward(batch.base, batch.rows, batch.last[:, None], batch.mask,
                               batch.positions[:, None], batch.cache)
        batch.positions = batch.positions + 1
        batch.last = self._sample(batch, logits)

    def _sample(self, batch: Batch, logits):
        import torch

        tokens = []
        for i, row in enumerate(batch.rows):
            token = pick_token(logits[i], row.req.params, row.seen, row.generator)
            tokens.append(token)
            self._advance(batch.base, row, token)
        return torch.tensor(tokens, dtype=torch.long)

    def _advance(self, base: _Base, row: Row, token: int) -> None:
        """Record one token, detect the end, stream what is safe to show."""
        if row.req.ticket.cancelled:
            row.finish = "stop"
            self.cancelled += 1
            return
        row.seen.append(token)
        row.ids.append(token)
        if token in row.stop_ids:
            row.finish = "stop"
        else:
            row.text = base.tokenizer.decode(row.ids, skip_special_tokens=True)
            cut = find_stop(row.text, row.stops, row.sent)
            if cut is not None:
                row.text, row.finish = row.text[:cut], "stop"
            elif len(row.ids) >= row.budget:
                row.finish = "length"
        if row.req.stream:
            safe = len(row.text) if row.finish else safe_length(row.text, row.stops)
            if safe > row.sent:
                row.req.emit(row.text[row.sent:safe])
                row.sent = safe
        if row.finish:
            row.req.emit(Completion(text=row.text, finish_reason=row.finish, tokens_generated=len(row.ids),
                                    prompt_tokens=row.prompt_tokens,
                                    seconds=time.perf_counter() - row.req.submitted))


__all__ = ["InferenceEngine"]
