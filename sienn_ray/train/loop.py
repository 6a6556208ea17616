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

The run's other jobs live apart: ``checkpoints.py`` (save, resume, the final
adapter), ``early_stopping.py``, ``progress.py`` (what is reported) and
``collectives.py`` (sums across ranks).
"""

from __future__ import annotations

import contextlib
import logging
import math

import torch

from ..data.packing import collate, epoch_batches
from ..data.templates import template_for
from .checkpoints import Checkpoints
from .collectives import Collectives
from .early_stopping import EarlyStopping
from .steppers import DeepSpeedStepper, TorchStepper
from .evaluate import NO_EVAL, EvalResult, eval_pass
from .hooks import Hooks
from .inputs import fill_to, load_shard, plan_rows, silenced
from .model import batch_loss, load_lora_model, load_tokenizer, probe_packing
from .progress import RunProgress, public_metrics
from .spec import TrainJobSpec
from .state import TrainState

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
        self.collectives = Collectives(self.world, self.device)
        self.state = TrainState()
        self.epoch_train_loss: float | None = None
        self.trained_tokens = 0  # every rank's tokens, summed at epoch ends and at the end

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
        steps_per_epoch = math.ceil(micro / cfg.gradient_accumulation_steps)
        total = steps_per_epoch * cfg.num_epochs
        self.state.total_steps = total
        on_gpu = self.device.type == "cuda"
        if cfg.deepspeed is not None:
            self.stepper = DeepSpeedStepper(model, cfg, total, self.world, on_gpu)
        else:
            self.stepper = TorchStepper(model, cfg, total, self.world, wrap=self.hooks.wrap_model)
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                         if cfg.bf16 and on_gpu and cfg.deepspeed is None else contextlib.nullcontext())
        torch.manual_seed(cfg.seed * 7919 + self.rank * 104729)  # each rank its own dropout stream
        self.checkpoints = Checkpoints(self.hooks, self.stepper, self.template, self.collectives)
        zero3 = cfg.deepspeed is not None and cfg.deepspeed.stage == 3
        self.early_stopping = EarlyStopping(cfg.early_stopping_patience, self.reporter, keep_weights=not zero3)
        restored = self.checkpoints.restore(total, cfg.seed)
        if restored is not None:
            self.state, self.early_stopping.best_weights = restored
        self.progress = RunProgress(self.state, self.stepper, num_epochs=cfg.num_epochs, world_size=self.world,
                                    window_steps=max(1, min(LOSS_WINDOW_STEPS, steps_per_epoch)),
                                    truncated=self.truncated)

    def _load_data(self) -> None:
        cfg, spec, reduce = self.cfg, self.spec, self.collectives.reduce
        rows = plan_rows(spec)
        args = (self.rank, self.world, self.tokenizer, self.template, cfg.max_length, cfg.train_on_inputs)
        train = load_shard(spec.dataset_path, rows.train_rows, *args)
        longest, = reduce([len(train.examples)], "max")
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
            longest_eval, = reduce([len(mine)], "max")
            filler = fill_to(mine or self.train_examples, int(longest_eval))[len(mine):]
            self.eval_examples = mine + [silenced(e) for e in filler]
        truncated, dropped, kept = reduce([train.stats.truncated, train.stats.dropped, train.stats.examples])
        self.truncated, self.dropped = int(truncated), int(dropped)
        log.info("rank %d: %d train examples (%d kept overall), %d eval", self.rank, len(self.train_examples),
                 int(kept), len(self.eval_examples))

    # training
    def train(self) -> None:
        self.progress.start()
        if self.truncated:
            self.reporter.event("truncation", {"truncated": self.truncated, "dropped": self.dropped,
                                               "max_length": self.cfg.max_length})
        self.reporter.report(self.progress.update(self.state.epoch) | {"truncated_examples": self.truncated})
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
            self.progress.add_tokens(batch.num_tokens)
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
        self.reporter.tick(lambda: self.progress.throttled_update(epoch, epoch_fraction))
        if self.collectives.agree(self.reporter.cancel_requested):
            state.stopped = "cancelled"
            return
        every = cfg.checkpoint_every_steps
        if every and state.global_step % every == 0:
            self._checkpoint(self.progress.metrics(epoch, ev=self._evaluate() if self.eval_examples else NO_EVAL))

    def _end_epoch(self, epoch: int) -> None:
        state, cfg = self.state, self.cfg
        total, count, tokens = self.collectives.reduce([state.epoch_loss_sum, state.epoch_loss_targets,
                                                        state.tokens_seen])
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
            self.early_stopping.observe(state, ev.loss, self.stepper.peft_model)
        metrics = self.progress.metrics(epoch, train_loss=train_loss, ev=ev)
        update = self.progress.update(epoch) | {"metrics": public_metrics(metrics),
                                                "trained_tokens": self.trained_tokens}
        self.reporter.report(update, self.progress.point(epoch + 1.0, metrics))
        if not cfg.checkpoint_every_steps or state.stopped is not None:
            self._checkpoint(metrics)

    def _evaluate(self) -> EvalResult:
        model = self.stepper.model if self.cfg.deepspeed is not None else self.stepper.peft_model
        return eval_pass(model, self.eval_examples, batch_size=self.cfg.batch_size, max_length=self.cfg.max_length,
                         pad_id=self.pad_id, packing=self.packing, device=self.device,
                         reduce=self.collectives.reduce, autocast=self.autocast)

    def _checkpoint(self, metrics: dict) -> None:
        self.checkpoints.save(self.state, metrics, self.early_stopping.best_weights)

    # the end
    def finish(self) -> dict:
        state = self.state
        epoch = max(state.epoch - 1, 0) if state.micro_in_epoch == 0 else state.epoch
        metrics = self.progress.metrics(epoch, train_loss=self.epoch_train_loss,
                                        ev=EvalResult(state.last_eval_loss, state.last_eval_token_accuracy))
        self.trained_tokens = int(self.collectives.reduce([state.tokens_seen])[0])
        if state.stopped != "cancelled":
            self.early_stopping.restore_best(self.stepper.peft_model)
            self.checkpoints.write_adapter(self.spec.adapter_dir, self.tokenizer)
        if self.checkpoints.last_step != state.global_step:
            self._checkpoint(metrics)
        done = state.stopped != "cancelled"
        message = {"cancelled": "Cancelled", "early_stopping": "Stopped early (no eval improvement)"}.get(
            state.stopped, "Training finished")
        self.reporter.report(self.progress.update(epoch) | {"message": message, "metrics": public_metrics(metrics),
                                                            "trained_tokens": self.trained_tokens}
                             | ({"progress": 100.0} if done else {}))
        return metrics
