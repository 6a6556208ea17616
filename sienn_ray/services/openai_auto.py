"""OpenAI's ``"auto"`` hyperparameters, resolved from the training file's size and the base model.

- ``n_epochs``: the rule of OpenAI's own data-preparation cookbook: 3 epochs, raised
  so that small files are seen at least 100 times in all, lowered so that large
  ones are not seen more than 25,000 times, within 1-25 epochs.
- ``batch_size``: OpenAI's documented default, about 0.2% of the examples, capped at 256.
- ``learning_rate_multiplier``: the multiplier scales a reference LoRA rate per base
  model (the rates the README recommends, measured at batch size 4); ``auto`` scales
  it with the square root of the batch size relative to 4, within 0.5-2, as OpenAI's
  default grows with the batch size (0.05-0.2 of its own reference rate).
"""

from __future__ import annotations

import math

from ..schemas.openai_jobs import Hyperparameters, ResolvedHyperparameters

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS = 1, 25
BATCH_SHARE, MAX_AUTO_BATCH = 0.002, 256
REFERENCE_BATCH = 4
MIN_AUTO_MULTIPLIER, MAX_AUTO_MULTIPLIER = 0.5, 2.0
# (parameters below, LoRA learning rate): random toy bases learn only at a high rate; small pretrained
# ones (SmolLM2-135M) at 1e-3 to 2e-3; 1B+ at the usual 1e-4 to 2e-4.
REFERENCE_RATES = ((10_000_000, 5e-3), (500_000_000, 2e-3), (3_000_000_000, 2e-4))
LARGE_MODEL_RATE = 1e-4


def auto_epochs(n_examples: int) -> int:
    """Epochs for ``n_examples`` training examples (OpenAI cookbook's rule)."""
    n = max(n_examples, 1)
    if n * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n)
    if n * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n)
    return TARGET_EPOCHS


def auto_batch_size(n_examples: int) -> int:
    """About 0.2% of the examples, at least 1, at most 256."""
    return max(1, min(MAX_AUTO_BATCH, round(BATCH_SHARE * n_examples)))


def auto_multiplier(batch_size: int) -> float:
    """sqrt(batch size / 4), within 0.5-2."""
    return round(min(MAX_AUTO_MULTIPLIER, max(MIN_AUTO_MULTIPLIER, math.sqrt(batch_size / REFERENCE_BATCH))), 4)


def reference_learning_rate(num_parameters: int) -> float:
    """The LoRA learning rate a multiplier of 1 means for a base of this size."""
    return next((rate for below, rate in REFERENCE_RATES if num_parameters < below), LARGE_MODEL_RATE)


def resolve(asked: Hyperparameters, n_examples: int, num_parameters: int) -> ResolvedHyperparameters:
    """The numbers to train with: each value asked for, or its ``auto`` rule."""
    epochs = auto_epochs(n_examples) if asked.n_epochs == "auto" else asked.n_epochs
    batch = auto_batch_size(n_examples) if asked.batch_size == "auto" else asked.batch_size
    multiplier = auto_multiplier(batch) if asked.learning_rate_multiplier == "auto" \
        else asked.learning_rate_multiplier
    reference = reference_learning_rate(num_parameters)
    return ResolvedHyperparameters(n_epochs=epochs, batch_size=batch, learning_rate_multiplier=multiplier,
                                   reference_learning_rate=reference, learning_rate=multiplier * reference)
