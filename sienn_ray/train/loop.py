"""The training run each worker executes, in plain PyTorch.

Ray-free on purpose: ``worker.py`` supplies Ray Train's pieces through
``Hooks`` (``hooks.py``: rank, DDP wrapping, checkpoint persistence, the registry reporter),
and tests run the same code in one process with ``LocalHooks``.

One optimizer step consumes ``batch_size`` examples per rank for each of
``gradient_accumulation_steps`` micro-batches. Data order comes from
(seed, epoch) alone, so a run resumed from a checkpoint replays the exact
remaining steps.

``train_loss`` in status and history is the token-weighted mean over the logging
window (>= ``LOSS_WINDOW_STEPS`` optimizer steps, or the epoch) and the epoch mean
at epoch end. Running sums and early stopping's best weights are checkpointed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import torch

from .. import paths
from ..data.packing import collate, epoch_batches
from ..data.templates import template_for
from .engine import ADAPTER_SUBDIR, DeepSpeedStepper, TorchStepper
from .evaluate import NO_EVAL, EvalResult, eval_pass
from .inputs import fill_to, load_shard, plan_rows, silenced
from .model import batch_loss, load_lora_model, load_tokenizer, probe_packing
from .hooks import Hooks
from .spec import TrainJobSpec
from .state import TrainState, load_best_weights, restore_rng, save_best_weights

log = logging.getLogger(__name__)

# The fewest optimizer steps a reported train_loss averages (a shorter epoch: the whole epoch).
LOSS_WINDOW_STEPS = 10


def run_training(spec: TrainJobSpec, hooks: Hooks) -> dict:
    """Train, checkpoint and (rank 0) write the final adapter; returns the final metrics."""
    run = _Run(spec, hooks)
    run.setup()
    run.train()
    return run.finish()


class _Run:
    def __init__(self, spec: TrainJobSpec, hooks: Hooks):
        self.spec, self.cfg, self.hooks = spec, spec.config, hooks
        self.rank, self.world = hooks.rank, hooks.world_size
        self.reporter = hooks.reporter
        self.device = hooks.device
        self.state = TrainState()
        self.last_checkpoint_step = -1
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._rate_tokens = 0
        self._rate_start = time.monotonic()
        self.epoch_train_loss: float | None = None
        self.trained_tokens = 0  # every rank's tokens, summed at epoch ends and at the end
        self._start = time.monotonic()
        self._start_step = 0

    # setup
    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)  # identical LoRA init on every rank
        self.tokenizer = load_tokenizer(self.spec.model_path)
        self.template = template_for(cfg.prompt_template, self.tokenizer, data_kind=self.spec.data_kind,
                                     system_prompt=cfg.system_prompt)
        eos_id = self.tokenizer.convert_tokens_to_ids(self.template.eos_token)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos_id
        self._load_data()
        model = load_lora_model(self.spec.model_path, cfg).to(self.device)
        self.packing = cfg.packing and probe_packing(model, self.pad_id, model.config.vocab_size)
        if cfg.packing and not self.packing:
            log.warning("%s cannot keep packed examples apart; using length-grouped batches",
                        model.config.model_type)
        micro = math.ceil(len(self.train_examples) / cfg.batch_size)
        self.steps_per_epoch = math.ceil(micro / cfg.gradient_accumulation_steps)
        self.window_steps = max(1, min(LOSS_WINDOW_STEPS, self.steps_per_epoch))
        total = self.steps_per_epoch * cfg.num_epochs
        self.state.total_steps = total
        on_gpu = self.device.type == "cuda"
        if cfg.deepspeed is not None:
            self.stepper = DeepSpeedStepper(model, cfg, total, self.world, on_gpu)
        else:
            self.stepper = TorchStepper(model, cfg, total, self.world, wrap=self.hooks.wrap_model)
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                         if cfg.bf16 and on_gpu and cfg.deepspeed is None else contextlib.nullcontext())
        torch.manual_seed(cfg.seed * 7919 + self.rank * 104729)  # each rank its own dropout stream
        self._restore()

    def _load_data(self) -> None:
        cfg, spec = self.cfg, self.spec
        rows = plan_rows(spec)
        args = (self.rank, self.world, self.tokenizer, self.template, cfg.max_length, cfg.train_on_inputs)
        train = load_shard(spec.dataset_path, rows.train_rows, *args)
        longest, = self._reduce([len(train.examples)], "max")
        if not longest:
            raise ValueError(f"No example has any response token left within max_length={cfg.max_length}; "
                             "raise max_length.")
        self.train_examples = fill_to(train.examples, int(longest))
        self.lengths = [len(e) for e in self.train_examples]
        self.eval_examples = []
        if rows.eval_rows:
            # Wrap-around copies and fillers keep ranks in step but must not count twice: silenced.
            ev = load_shard(rows.eval_path, rows.eval_rows, *args)
            mine = ev.examples[:ev.real] + [silenced(e) for e in ev.examples[ev.real:]]
            longest_eval, = self._reduce([len(mine)], "max")
            filler = fill_to(mine or self.train_examples, int(longest_eval))[len(mine):]
            self.eval_examples = mine + [silenced(e) for e in filler]
        truncated, dropped, kept = self._reduce([train.stats.truncated, train.stats.dropped, train.stats.examples])
        self.truncated, self.dropped = int(truncated), int(dropped)
        log.info("rank %d: %d train examples (%d kept overall), %d eval", self.rank, len(self.train_examples),
                 int(kept), len(self.eval_examples))

    def _restore(self) -> None:
        with self.hooks.restore() as folder:
            if folder is None:
                return
            folder = Path(folder)
            self.stepper.load(folder)
            total = self.state.total_steps
            self.state = TrainState.load(folder)
            self.state.total_steps = total
            self.state.stopped = None  # saved by a cancel or pause: the resumed run trains on
            if self.rank != 0:  # rank 0's file holds every rank's running sums (see _checkpoint)
                self.state.clear_running_losses()
            self.best_weights = load_best_weights(folder)
            restore_rng(folder, self.rank, self.cfg.seed, self.state.global_step)
        self.last_checkpoint_step = self.state.global_step
        log.info("resumed at step %d (epoch %d)", self.state.global_step, self.state.epoch + 1)
        self.reporter.event("resumed", {"step": self.state.global_step, "epoch": self.state.epoch})

    # training
    def train(self) -> None:
        self._start = self._rate_start = time.monotonic()
        self._start_step = self.state.global_step
        if self.truncated:
            self.reporter.event("truncation", {"truncated": self.truncated, "dropped": self.dropped,
                                               "max_length": self.cfg.max_length})
        self.reporter.report(self._progress(self.state.epoch) | {"truncated_examples": self.truncated})
        self.stepper.model.train()
        while self.state.epoch < self.cfg.num_epochs and self.state.stopped is None:
            epoch = self.state.epoch
            self._train_epoch(epoch)
            if self.state.stopped is None:
                self._end_epoch(epoch)

    def _train_epoch(self, epoch: int) -> None:
        cfg, state = self.cfg, self.state
        plan = epoch_batches(self.lengths, cfg.batch_size, cfg.seed, epoch, group_by_length=not self.packing)
        gas = cfg.gradient_accumulation_steps
        for i in range(state.micro_in_epoch, len(plan)):
            boundary = (i + 1) % gas == 0 or i == len(plan) - 1
            batch = collate([self.train_examples[j] for j in plan[i]], cfg.max_length, self.pad_id,
                            self.packing).to(self.device)
            with self.stepper.micro_context(boundary):
                with self.autocast:
                    loss = batch_loss(self.stepper.model, batch)
                self.stepper.backward(loss, boundary)
            state.add_loss(loss.item(), batch.num_targets)
            self._rate_tokens += batch.num_tokens
            state.tokens_seen += batch.num_tokens
            state.micro_in_epoch = i + 1
            if boundary:
                self._optimizer_step(epoch, (i + 1) / len(plan))
                if state.stopped is not None:
                    return

    def _optimizer_step(self, epoch: int, epoch_fraction: float) -> None:
        state, cfg = self.state, self.cfg
        self.stepper.step()
        state.global_step += 1
        state.window_steps += 1
        self.reporter.tick(lambda: self._progress_with_point(epoch, epoch_fraction))
        if self._agree(self.reporter.cancel_requested):
            state.stopped = "cancelled"
            return
        every = cfg.checkpoint_every_steps
        if every and state.global_step % every == 0:
            self._checkpoint(self._metrics(epoch, ev=self._evaluate() if self.eval_examples else NO_EVAL))

    def _end_epoch(self, epoch: int) -> None:
        state, cfg = self.state, self.cfg
        total, count, tokens = self._reduce([state.epoch_loss_sum, state.epoch_loss_targets, state.tokens_seen])
        train_loss = total / count if count else None
        self.trained_tokens = int(tokens)
        state.clear_running_losses()
        state.epoch, state.micro_in_epoch = epoch + 1, 0
        ev = self._evaluate() if self.eval_examples else NO_EVAL
        state.last_eval_loss, state.last_eval_token_accuracy = ev
        self.epoch_train_loss = train_loss
        data = {"epoch": epoch + 1, "train_loss": train_loss, "eval_loss": ev.loss,
                "eval_token_accuracy": ev.token_accuracy, "step": state.global_step}
        self.reporter.event("epoch_end", data)
        if ev.loss is not None:
            self.reporter.event("evaluation", data)
            self._early_stopping(ev.loss)
        metrics = self._metrics(epoch, train_loss=train_loss, ev=ev)
        update = self._progress(epoch) | {"metrics": self._public(metrics), "trained_tokens": self.trained_tokens}
        self.reporter.report(update, self._point(epoch + 1.0, metrics))
        if not cfg.checkpoint_every_steps or state.stopped is not None:
            self._checkpoint(metrics)

    def _evaluate(self) -> EvalResult:
        model = self.stepper.model if self.cfg.deepspeed is not None else self.stepper.peft_model
        return eval_pass(model, self.eval_examples, batch_size=self.cfg.batch_size, max_length=self.cfg.max_length,
                         pad_id=self.pad_id, packing=self.packing, device=self.device, reduce=self._reduce,
                         autocast=self.autocast)

    def _early_stopping(self, eval_loss: float) -> None:
        state, patience = self.state, self.cfg.early_stopping_patience
        if state.best_eval_loss is None or eval_loss < state.best_eval_loss:
            state.best_eval_loss, state.evals_without_improvement = eval_loss, 0
            if patience:
                self.best_weights = self._trainable_copy()
            return
        state.evals_without_improvement += 1
        if patience and state.evals_without_improvement >= patience:
            state.stopped = "early_stopping"
            self.reporter.event("early_stopping", {"epoch": state.epoch, "best_eval_loss": state.best_eval_loss,
                                                   "patience": patience})

    def _trainable_copy(self) -> dict[str, torch.Tensor] | None:
        if self.cfg.deepspeed is not None and self.cfg.deepspeed.stage == 3:
            return None  # partitioned weights: the final adapter is the last one
        return {n: p.detach().clone() for n, p in self.stepper.peft_model.named_parameters() if p.requires_grad}

    # checkpoints and the end
    def _checkpoint(self, metrics: dict) -> None:
        step, state = self.state.global_step, self.state
        name = paths.checkpoint_name(step)
        # Rank 0 saves the state: it takes over every rank's running epoch sums, so none is lost on resume.
        total, count = self._reduce([state.epoch_loss_sum, state.epoch_loss_targets])
        state.epoch_loss_sum, state.epoch_loss_targets = (total, int(count)) if self.rank == 0 else (0.0, 0)
        # Mid-epoch: the epoch so far; at an epoch's end (sums cleared): that epoch's mean.
        train_loss = total / count if count else metrics.get("train_loss")
        with tempfile.TemporaryDirectory(prefix="sienn-ckpt-") as tmp:
            folder = Path(tmp)
            wrote = self.stepper.save(folder, self.rank)
            if self.rank == 0:
                state.save(folder)
                save_best_weights(folder, self.best_weights)
                self.template.save(folder / ADAPTER_SUBDIR)  # so the checkpoint's adapter is servable as is
            path = self.hooks.report(metrics, folder if (wrote or self.rank == 0) else None, name)
        self.last_checkpoint_step = step
        if self.rank == 0 and path:
            self.reporter.event("checkpoint", {"step": step, "epoch": self.state.epoch, "path": path,
                                               "train_loss": train_loss, "eval_loss": metrics.get("eval_loss"),
                                               "eval_token_accuracy": metrics.get("eval_token_accuracy")})
            self.reporter.report({"last_checkpoint": path, "step": step})

    def finish(self) -> dict:
        state = self.state
        epoch = max(state.epoch - 1, 0) if state.micro_in_epoch == 0 else state.epoch
        metrics = self._metrics(epoch, train_loss=self.epoch_train_loss,
                                ev=EvalResult(state.last_eval_loss, state.last_eval_token_accuracy))
        self.trained_tokens = int(self._reduce([state.tokens_seen])[0])
        if state.stopped != "cancelled":
            if self.best_weights is not None:
                self._load_trainable(self.best_weights)
            self._write_adapter()
        if self.last_checkpoint_step != state.global_step:
            self._checkpoint(metrics)
        done = state.stopped != "cancelled"
        message = {"cancelled": "Cancelled", "early_stopping": "Stopped early (no eval improvement)"}.get(
            state.stopped, "Training finished")
        self.reporter.report(self._progress(epoch) | {"message": message, "metrics": self._public(metrics),
                                                      "trained_tokens": self.trained_tokens}
                             | ({"progress": 100.0} if done else {}))
        return metrics

    def _load_trainable(self, weights: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, param in self.stepper.peft_model.named_parameters():
                if name in weights:
                    param.copy_(weights[name])

    def _write_adapter(self) -> None:
        """Adapter + tokenizer + template.json, into a sibling temp dir renamed into place."""
        dest = Path(self.spec.adapter_dir)
        tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
        if self.rank == 0:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        self.stepper.save_adapter(tmp, self.rank)  # collective under ZeRO-3
        if self.rank != 0:
            return
        self.tokenizer.save_pretrained(str(tmp))
        self.template.save(tmp)
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        if dest.exists():
            os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)

    # reporting helpers
    def _metrics(self, epoch: int, train_loss: float | None = None, ev: EvalResult = NO_EVAL) -> dict:
        elapsed = max(time.monotonic() - self._rate_start, 1e-9)
        return {"step": self.state.global_step, "epoch": epoch + 1, "train_loss": train_loss,
                "eval_loss": ev.loss, "eval_token_accuracy": ev.token_accuracy, "learning_rate": self.stepper.lr,
                "tokens_per_second": self._rate_tokens * self.world / elapsed,
                "truncated_examples": self.truncated, "stopped": self.state.stopped}

    @staticmethod
    def _public(metrics: dict) -> dict:
        return {k: metrics[k] for k in ("train_loss", "eval_loss", "learning_rate", "tokens_per_second")
                if metrics.get(k) is not None}

    def _point(self, epoch: float, metrics: dict) -> dict:
        return {"step": self.state.global_step, "epoch": round(epoch, 4), "train_loss": metrics["train_loss"],
                "eval_loss": metrics["eval_loss"], "eval_token_accuracy": metrics["eval_token_accuracy"],
                "learning_rate": metrics["learning_rate"]}

    def _progress(self, epoch: int) -> dict:
        state, epochs = self.state, self.cfg.num_epochs
        update = {"progress": round(100.0 * state.global_step / max(state.total_steps, 1), 2),
                  "current_epoch": min(epoch + 1, epochs), "total_epochs": epochs, "step": state.global_step,
                  "total_steps": state.total_steps, "message": f"Training epoch {min(epoch + 1, epochs)}/{epochs}"}
        done = state.global_step - self._start_step
        if done > 0:
            per_step = (time.monotonic() - self._start) / done
            left = per_step * (state.total_steps - state.global_step)
            update["estimated_completion"] = (datetime.now(timezone.utc) + timedelta(seconds=left)).isoformat()
        return update

    def _progress_with_point(self, epoch: int, epoch_fraction: float) -> tuple[dict, dict | None]:
        """A throttled progress update; it carries train_loss (and a loss point) once the window is full."""
        state = self.state
        window_loss = state.window_mean() if state.window_steps >= self.window_steps else None
        metrics = self._metrics(epoch, train_loss=window_loss)
        self._rate_tokens, self._rate_start = 0, time.monotonic()
        update = self._progress(epoch) | {"metrics": self._public(metrics)}
        if window_loss is None:
            return update, None
        state.clear_window()
        return update, self._point(epoch + epoch_fraction, metrics)

    # collectives (no-ops in a world of one)
    def _reduce(self, values: list[float], op: str = "sum") -> list[float]:
        if self.world == 1:
            return [float(v) for v in values]
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor.tolist()

    def _agree(self, flag: bool) -> bool:
        """True on every rank if any rank says so (rank 0 holds the registry's cancel flag)."""
        return bool(self._reduce([1.0 if flag else 0.0], "max")[0])
