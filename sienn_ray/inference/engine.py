"""Generation over base models plus LoRA adapters: plain Python, no Ray.

One ``InferenceEngine`` owns a few base models and many LoRA adapters attached
to them. A single worker thread owns every tensor and every module, so loading,
evicting and generating never race: the model is only ever touched from that
thread. Concurrent requests are batched by that thread, even when they use
different adapters: each base keeps a ``LoraBank``, every adapter's A and B
stacked per target module, and each row of a batch picks its own adapter's
weights by slot index (gather + batched matmul, the multi-LoRA kernel of
Punica/S-LoRA/vLLM, in plain torch). There is no shared "active adapter" that
one request could leak into another's, and switching adapters costs nothing.

Batching is continuous: a request that arrives while others are decoding is
prefilled on its own and then joins the running batch at the next step (its KV
cache is left-padded to the batch's length), and finished rows leave at once.
Decoding is our own loop rather than ``model.generate`` because every row keeps
its own sampling parameters, seed, stop strings and token budget.

Prompts are rendered with ``sienn_ray.data.templates`` and tokenized without
special tokens, exactly as training tokenized them, so a fine-tuned job is asked
in the form it learned.
"""

from __future__ import annotations

import inspect
import math
import queue
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from ..data.templates import PromptTemplate, render_chat_prompt, render_prompt, template_for
from ..errors import BadRequest, ModelNotFound

FinishReason = Literal["stop", "length"]
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens. ``temperature == 0`` is greedy; ``top_k == 0`` disables top-k."""

    max_new_tokens: int | None = 200  # None: until EOS or the end of the context
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        problems = []
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            problems.append("max_new_tokens must be >= 1")
        if self.temperature < 0:
            problems.append("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            problems.append("top_p must be in (0, 1]")
        if self.top_k < 0:
            problems.append("top_k must be >= 0")
        if self.repetition_penalty <= 0:
            problems.append("repetition_penalty must be > 0")
        if any(not s for s in self.stop):
            problems.append("stop strings must not be empty")
        if problems:
            raise BadRequest("Invalid sampling parameters", errors=problems)


@dataclass(frozen=True)
class ModelRef:
    """Which weights answer: a base model directory, optionally with one job's adapter."""

    base_path: str
    adapter_id: str | None = None
    adapter_path: str | None = None


@dataclass(frozen=True)
class PromptSpec:
    """What the user asked, before rendering.

    ``instruction``: ``text``/``input`` rendered with the template (the job's, or
    ``template`` for a bare base model). ``chat``: ``messages`` rendered as a
    conversation. ``raw``: ``text`` is continued as-is.
    """

    kind: Literal["instruction", "chat", "raw"] = "instruction"
    text: str = ""
    input: str = ""
    messages: tuple[dict, ...] = ()
    template: Literal["alpaca", "chat"] | None = None


@dataclass(frozen=True)
class Started:
    """First event of a request: it was admitted (adapter loaded, prompt fits)."""

    prompt_tokens: int


@dataclass(frozen=True)
class Completion:
    """Last event of a request."""

    text: str
    finish_reason: FinishReason
    tokens_generated: int
    prompt_tokens: int
    seconds: float


Event = Started | str | Completion | BaseException
Emit = Callable[[Event], None]


class Ticket:
    """Handle on a submitted request; ``cancel()`` drops it at the next decode step."""

    def __init__(self):
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class _Request:
    ref: ModelRef
    prompt: PromptSpec
    params: SamplingParams
    emit: Emit
    stream: bool
    ticket: Ticket
    submitted: float = field(default_factory=time.perf_counter)


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


@dataclass
class _Row:
    req: _Request
    slot: int  # LoraBank slot; 0 is the bare base
    seen: list[int]  # prompt + generated ids (repetition penalty)
    budget: int
    stop_ids: frozenset[int]
    stops: tuple[str, ...]
    generator: Any
    prompt_tokens: int
    ids: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0
    finish: FinishReason | None = None


@dataclass
class _Batch:
    base: _Base
    rows: list[_Row]
    cache: Any
    mask: Any  # [B, T] attention mask, rows right-aligned
    positions: Any  # [B] next position id of each row
    last: Any  # [B] last sampled token of each row


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
        self._pending: deque[_Request] = deque()
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
            self._pending.append(_Request(ref, prompt, params, emit, stream, ticket))
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
                        self._prune(batch)
                        self._join(batch)
                        self._apply_unloads(batch)
                except Exception as err:  # a failed forward fails its batch, never the worker
                    for row in batch.rows if batch else []:
                        row.req.emit(err)
                self._running = 0
                self._apply_unloads(None)
                self._trim()

    def _wait_for_work(self) -> _Request | None:
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

    def _take(self, base_path: str, limit: int) -> list[_Request]:
        """Pending requests on ``base_path``, oldest first, unless an older one waits on another base."""
        taken: list[_Request] = []
        with self._cv:
            for req in list(self._pending):
                if len(taken) >= limit:
                    break
                if req.ref.base_path != base_path:
                    break  # fairness: let the running batch drain so that base gets its turn
                taken.append(req)
                self._pending.remove(req)
        return taken

    def _start(self, first: _Request) -> _Batch | None:
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

    def _join(self, batch: _Batch) -> None:
        room = self.max_batch_size - len(batch.rows)
        if room <= 0 or not batch.rows:
            return
        if not _mergeable(batch.cache):
            return  # an unusual cache layout: newcomers wait for this batch to finish
        requests = self._take(batch.base.path, room)
        if not requests:
            return
        rows = self._admit(batch.base, requests, running=batch.rows)
        if rows:
            newcomer = self._prefill(batch.base, rows)
            if newcomer is not None and newcomer.rows:
                _merge(batch, newcomer)

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

    def _apply_unloads(self, batch: _Batch | None) -> None:
        with self._cv:
            if not self._unloads:
                return
            in_use = {row.req.ref.adapter_id for row in batch.rows} if batch else set()
            todo = self._unloads - in_use
            self._unloads -= todo
        for adapter_id in todo:
            self._drop_adapter(adapter_id)

    # ---- admission and rendering -------------------------------------------------

    def _admit(self, base: _Base, requests: list[_Request], running: list[_Row]) -> list[_Row]:
        import torch

        rows: list[_Row] = []
        in_use = {r.ref.adapter_id for r in requests} | {row.req.ref.adapter_id for row in running}
        for req in requests:
            if req.ticket.cancelled:
                continue
            try:
                adapter = self._adapter(base, req.ref, in_use) if req.ref.adapter_id else None
                template = adapter.template if adapter else self._base_template(base, req.prompt)
                text = _render(template, req.prompt)
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
                rows.append(_Row(
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
            base.stop_ids[key] = base.eos_ids | _single_token_ids(base.tokenizer, template)
        return base.stop_ids[key]

    def _base_template(self, base: _Base, prompt: PromptSpec) -> PromptTemplate | None:
        if prompt.kind == "raw":
            return None
        kind = prompt.template or ("chat" if prompt.kind == "chat" else "alpaca")
        if kind not in base.templates:
            base.templates[kind] = template_for(kind, base.tokenizer)
        return base.templates[kind]

    # ---- decoding ----------------------------------------------------------------

    def _forward(self, base: _Base, rows: list[_Row], input_ids, mask, positions, cache):
        """One forward pass; returns the last position's logits as float32 on the CPU."""
        base.bank.select([row.slot for row in rows], self.device)
        out = base.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=positions.to(self.device), use_cache=True, logits_to_keep=1,
                         **{base.cache_kwarg: cache})
        return out.logits[:, -1, :].float().cpu()

    def _prefill(self, base: _Base, rows: list[_Row]) -> _Batch | None:
        """Run the prompts of ``rows`` and sample their first tokens; a failure fails only these rows."""
        try:
            return self._prefill_rows(base, rows)
        except Exception as err:
            for row in rows:
                row.req.emit(err)
            return None

    def _prefill_rows(self, base: _Base, rows: list[_Row]) -> _Batch:
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
        batch = _Batch(base, rows, cache, mask, positions[:, -1] + 1, None)
        batch.last = self._sample(batch, logits)
        self._prune(batch)
        return batch

    def _step(self, batch: _Batch) -> None:
        import torch

        self.peak_batch = max(self.peak_batch, len(batch.rows))
        self._running = len(batch.rows)
        batch.mask = torch.cat([batch.mask, torch.ones((len(batch.rows), 1), dtype=torch.long)], dim=1)
        logits = self._forward(batch.base, batch.rows, batch.last[:, None], batch.mask,
                               batch.positions[:, None], batch.cache)
        batch.positions = batch.positions + 1
        batch.last = self._sample(batch, logits)

    def _sample(self, batch: _Batch, logits):
        import torch

        tokens = []
        for i, row in enumerate(batch.rows):
            token = _pick(logits[i], row)
            tokens.append(token)
            self._advance(batch.base, row, token)
        return torch.tensor(tokens, dtype=torch.long)

    def _advance(self, base: _Base, row: _Row, token: int) -> None:
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
            cut = _find_stop(row.text, row.stops, row.sent)
            if cut is not None:
                row.text, row.finish = row.text[:cut], "stop"
            elif len(row.ids) >= row.budget:
                row.finish = "length"
        if row.req.stream:
            safe = len(row.text) if row.finish else _safe_length(row.text, row.stops)
            if safe > row.sent:
                row.req.emit(row.text[row.sent:safe])
                row.sent = safe
        if row.finish:
            row.req.emit(Completion(text=row.text, finish_reason=row.finish, tokens_generated=len(row.ids),
                                    prompt_tokens=row.prompt_tokens,
                                    seconds=time.perf_counter() - row.req.submitted))

    def _prune(self, batch: _Batch) -> None:
        import torch

        keep = [i for i, row in enumerate(batch.rows) if row.finish is None]
        if len(keep) == len(batch.rows):
            return
        batch.rows = [batch.rows[i] for i in keep]
        if not keep:
            return
        index = torch.tensor(keep, dtype=torch.long)
        batch.mask, batch.positions, batch.last = batch.mask[index], batch.positions[index], batch.last[index]
        start = int((batch.mask.sum(0) > 0).nonzero()[0])  # columns every remaining row pads: drop them
        if not _mergeable(batch.cache):
            batch.cache.batch_select_indices(index.to(self.device))
            return
        batch.mask = batch.mask[:, start:]
        for layer in batch.cache.layers:
            layer.keys = layer.keys[index.to(layer.keys.device), :, start:, :]
            layer.values = layer.values[index.to(layer.values.device), :, start:, :]


# ---- LoRA bank -----------------------------------------------------------------------


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
    import json
    import re

    import torch

    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or config.get("use_dora") or config.get("modules_to_save"):
        raise ModelNotFound(f"The adapter at {folder.name} is not a plain LoRA adapter (DoRA, modules_to_save "
                            "and other PEFT methods are not served)")
    if (folder / ADAPTER_FILES[0]).is_file():
        from safetensors.torch import load_file

        tensors = load_file(folder / ADAPTER_FILES[0])
    else:
        tensors = torch.load(folder / ADAPTER_FILES[1], map_location="cpu", weights_only=True)
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        match = re.fullmatch(r"(?:base_model\.model\.)?(.+)\.lora_([AB])\.weight", key)
        if match is None:
            raise ModelNotFound(f"The adapter at {folder.name} has a tensor inference cannot apply: {key}")
        pairs.setdefault(match.group(1), {})[match.group(2)] = tensor
    alpha, alpha_pattern = config.get("lora_alpha", 8), config.get("alpha_pattern") or {}
    out = {}
    for name, pair in pairs.items():
        a, b = pair.get("A"), pair.get("B")
        try:
            in_features, out_features = _linear_shape(model.get_submodule(name))
        except AttributeError:
            raise ModelNotFound(f"The adapter at {folder.name} targets {name}, which this base has not") from None
        if a is None or b is None or a.shape[1] != in_features or b.shape[0] != out_features:
            raise ModelNotFound(f"The adapter at {folder.name} does not fit this base model ({name})")
        rank = a.shape[0]
        module_alpha = next((v for k, v in alpha_pattern.items() if re.match(rf"(.*\.)?({k})$", name)), alpha)
        scaling = module_alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
        out[name] = (a.t().float(), (b.t().float() * scaling))
    return out


# ---- helpers (pure functions) ------------------------------------------------------


def _render(template: PromptTemplate | None, prompt: PromptSpec) -> str:
    if template is None or prompt.kind == "raw":
        return prompt.text
    if prompt.kind == "instruction":
        return render_prompt(template, prompt.text, prompt.input)
    messages = [dict(m) for m in prompt.messages]
    if template.kind == "chat":
        return render_chat_prompt(template, messages)
    # An alpaca-trained job knows one turn: the last user message is its instruction.
    users = [m["content"] for m in messages if m.get("role") == "user"]
    if not users:
        raise BadRequest("The conversation has no user message")
    return render_prompt(template, users[-1])


def _single_token_ids(tokenizer, template: PromptTemplate | None) -> frozenset[int]:
    """Template stop strings that are one token (e.g. ``<|im_end|>``): stop on the id itself."""
    ids = set()
    for text in (template.stop_strings if template else []) + ([template.eos_token] if template else []):
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.add(encoded[0])
    return frozenset(ids)


def _pick(logits, row: _Row) -> int:
    """Repetition penalty, then greedy or temperature/top-k/top-p sampling with the row's generator."""
    import torch

    params = row.req.params
    if params.repetition_penalty != 1.0:
        seen = torch.tensor(sorted(set(row.seen)), dtype=torch.long)
        scores = logits[seen]
        logits = logits.clone()
        logits[seen] = torch.where(scores < 0, scores * params.repetition_penalty,
                                   scores / params.repetition_penalty)
    if params.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / params.temperature
    if 0 < params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if params.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= params.top_p  # keep the token that crosses top_p
        logits = logits.clone()
        logits[order[drop]] = -math.inf
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=row.generator))


def _find_stop(text: str, stops: tuple[str, ...], sent: int) -> int | None:
    """Index where the earliest stop string starts, searching only text not yet streamed."""
    found = None
    for stop in stops:
        index = text.find(stop, max(0, sent - len(stop) + 1))
        if index != -1 and (found is None or index < found):
            found = index
    return found


def _safe_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` can be shown: hold back a possible stop-string prefix or a split character."""
    end = len(text)
    while end and text[end - 1] == "\ufffd":  # an incomplete UTF-8 sequence: wait for its other bytes
        end -= 1
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, end), 0, -1):
            if text.endswith(stop[:size], 0, end):
                hold = max(hold, size)
                break
    return end - hold


def _mergeable(cache) -> bool:
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer and layer.keys is not None for layer in cache.layers)


def _merge(batch: _Batch, newcomer: _Batch) -> None:
    """Append ``newcomer``'s rows to ``batch``; both caches are right-aligned, so left-pad the shorter."""
    import torch

    width = max(batch.mask.shape[1], newcomer.mask.shape[1])

    def widen(tensor, dim_t):
        missing = width - tensor.shape[dim_t]
        if missing == 0:
            return tensor
        shape = list(tensor.shape)
        shape[dim_t] = missing
        return torch.cat([tensor.new_zeros(shape), tensor], dim=dim_t)

    for old, new in zip(batch.cache.layers, newcomer.cache.layers):
        old.keys = torch.cat([widen(old.keys, 2), widen(new.keys, 2)], dim=0)
        old.values = torch.cat([widen(old.values, 2), widen(new.values, 2)], dim=0)
    batch.mask = torch.cat([widen(batch.mask, 1), widen(newcomer.mask, 1)], dim=0)
    batch.positions = torch.cat([batch.positions, newcomer.positions])
    batch.last = torch.cat([batch.last, newcomer.last])
    batch.rows = batch.rows + newcomer.rows


__all__ = ["Completion", "InferenceEngine", "LoraBank", "ModelRef", "PromptSpec", "SamplingParams", "Started",
           "Ticket"]
