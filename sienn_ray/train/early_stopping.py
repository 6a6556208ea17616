"""Early stopping: count evaluations without improvement and keep the best trainable weights.

The counters live in ``TrainState`` and the best weights go into each checkpoint,
so a resumed run stops when an uninterrupted one would, on the same adapter.
"""

from __future__ import annotations

import torch

from .state import TrainState

Weights = dict[str, torch.Tensor]


def trainable_copy(peft_model) -> Weights:
    """A detached copy of the trainable (LoRA) parameters."""
    return {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}


def load_trainable(peft_model, weights: Weights) -> None:
    """Put ``weights`` back into the matching parameters of ``peft_model``."""
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if name in weights:
                param.copy_(weights[name])


class EarlyStopping:
    """Stops a run after ``patience`` evaluations without a lower eval loss (0: never stops).

    ``keep_weights`` is False where the weights are partitioned (ZeRO-3): the final adapter is then the last one.
    """

    def __init__(self, patience: int, reporter, *, keep_weights: bool):
        self.patience, self.reporter, self.keep_weights = patience, reporter, keep_weights
        self.best_weights: Weights | None = None

    def observe(self, state: TrainState, eval_loss: float, peft_model) -> None:
        """Count one evaluation; sets ``state.stopped`` when patience runs out."""
        patience = self.patience
        if state.best_eval_loss is None or eval_loss < state.best_eval_loss:
            state.best_eval_loss, state.evals_without_improvement = eval_loss, 0
            if patience:
                self.best_weights = trainable_copy(peft_model) if self.keep_weights else None
            return
        state.evals_without_improvement += 1
        if patience and state.evals_without_improvement >= patience:
            state.stopped = "early_stopping"
            self.reporter.event("early_stopping", {"epoch": state.epoch, "best_eval_loss": state.best_eval_loss,
                                                   "patience": patience})

    def restore_best(self, peft_model) -> None:
        """End on the best weights, if a better evaluation kept some."""
        if self.best_weights is not None:
            load_trainable(peft_model, self.best_weights)
