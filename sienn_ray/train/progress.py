"""What a training run reports: its metrics, loss points, and progress with the time left.

``train_loss`` in a throttled update is the token-weighted mean over the logging
window, sent (with a loss point) only once the window holds ``window_steps``
optimizer steps; ``tokens_per_second`` counts the tokens since the last such update.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from .evaluate import NO_EVAL, EvalResult
from .state import TrainState

PUBLIC_METRICS = ("train_loss", "eval_loss", "learning_rate", "tokens_per_second")


def public_metrics(metrics: dict) -> dict:
    """The metrics a job record shows (those that have a value)."""
    return {k: metrics[k] for k in PUBLIC_METRICS if metrics.get(k) is not None}


class RunProgress:
    """Throughput and time left of one run, and the dicts it reports to the registry.

    ``lr`` is read from the stepper when metrics are built (the scheduler moves it).
    """

    def __init__(self, state: TrainState, stepper, *, num_epochs: int, world_size: int, window_steps: int,
                 truncated: int):
        self.state, self.stepper = state, stepper
        self.num_epochs, self.world_size, self.window_steps = num_epochs, world_size, window_steps
        self.truncated = truncated
        self.start()

    def start(self) -> None:
        """Time from now: the rate window, and the steps this process trains (for the ETA)."""
        self._start = self._rate_start = time.monotonic()
        self._rate_tokens = 0
        self._start_step = self.state.global_step

    def add_tokens(self, tokens: int) -> None:
        """Count one micro-batch's tokens (this rank's) toward the throughput."""
        self._rate_tokens += tokens

    def metrics(self, epoch: int, train_loss: float | None = None, ev: EvalResult = NO_EVAL) -> dict:
        """The metrics of a checkpoint or report after ``epoch`` (0-based) at the current step."""
        elapsed = max(time.monotonic() - self._rate_start, 1e-9)
        return {"step": self.state.global_step, "epoch": epoch + 1, "train_loss": train_loss,
                "eval_loss": ev.loss, "eval_token_accuracy": ev.token_accuracy, "learning_rate": self.stepper.lr,
                "tokens_per_second": self._rate_tokens * self.world_size / elapsed,
                "truncated_examples": self.truncated, "stopped": self.state.stopped}

    def point(self, epoch: float, metrics: dict) -> dict:
        """A loss-history point at fractional ``epoch``."""
        return {"step": self.state.global_step, "epoch": round(epoch, 4), "train_loss": metrics["train_loss"],
                "eval_loss": metrics["eval_loss"], "eval_token_accuracy": metrics["eval_token_accuracy"],
                "learning_rate": metrics["learning_rate"]}

    def update(self, epoch: int) -> dict:
        """A status update: progress, epoch and step counters, and the estimated completion once known."""
        state, epochs = self.state, self.num_epochs
        update = {"progress": round(100.0 * state.global_step / max(state.total_steps, 1), 2),
                  "current_epoch": min(epoch + 1, epochs), "total_epochs": epochs, "step": state.global_step,
                  "total_steps": state.total_steps, "message": f"Training epoch {min(epoch + 1, epochs)}/{epochs}"}
        done = state.global_step - self._start_step
        if done > 0:
            per_step = (time.monotonic() - self._start) / done
            left = per_step * (state.total_steps - state.global_step)
            update["estimated_completion"] = (datetime.now(timezone.utc) + timedelta(seconds=left)).isoformat()
        return update

    def throttled_update(self, epoch: int, epoch_fraction: float) -> tuple[dict, dict | None]:
        """A throttled progress update; it carries train_loss (and a loss point) once the window is full."""
        state = self.state
        window_loss = state.window_mean() if state.window_steps >= self.window_steps else None
        metrics = self.metrics(epoch, train_loss=window_loss)
        self._rate_tokens, self._rate_start = 0, time.monotonic()
        update = self.update(epoch) | {"metrics": public_metrics(metrics)}
        if window_loss is None:
            return update, None
        state.clear_window()
        return update, self.point(epoch + epoch_fraction, metrics)
