"""Records -> token ids and labels, with the loss mask taken from segment boundaries.

Each segment of a rendered example (``templates.render_example``) is tokenized
on its own, without special tokens, and the pieces are concatenated; inference
tokenizes ``render_prompt(...)`` the same way, so the prompt a fine-tuned model
sees at inference ends on exactly the token boundary it was trained on. EOS is
appended after the last trained segment and trained, so the model learns to
stop, unless the chat template already ends each turn with EOS (SmolLM2's
``<|im_end|>``): then the turn's own end is what the model learns. Masks never come from token values (a pad or EOS id inside the text is
an ordinary token): only a segment's ``trainable`` flag decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .templates import PromptTemplate, needs_eos, render_example

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenizedExample:
    """One training example: ``labels[i]`` is ``input_ids[i]`` or IGNORE_INDEX (not trained)."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass
class TokenizeStats:
    """What tokenization did to a dataset; the truncation counts go to the job's record."""

    examples: int = 0
    tokens: int = 0
    truncated: int = 0
    dropped: int = 0
    dropped_rows: list[int] = field(default_factory=list)


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without BOS/EOS: how segments and inference prompts are encoded."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_example(tokenizer: Any, template: PromptTemplate, record: dict, max_length: int,
                     train_on_inputs: bool = False) -> TokenizedExample | None:
    """Tokenize one record; ``None`` when truncation left no response token to train on."""
    eos_id = tokenizer.convert_tokens_to_ids(template.eos_token)
    ids: list[int] = []
    trainable: list[bool] = []
    segments = render_example(template, record)
    for segment in segments:
        piece = encode_text(tokenizer, segment.text)
        ids += piece
        trainable += [segment.trainable] * len(piece)
    if needs_eos(template):  # EOS closes the last reply: trained when that reply is
        ids.append(eos_id)
        trainable.append(bool(segments) and segments[-1].trainable)
    truncated = len(ids) > max_length
    ids, trainable = ids[:max_length], trainable[:max_length]
    # Position 0 is never predicted (nothing precedes it), so it cannot carry the response.
    if not any(trainable[1:]):
        return None
    labels = [tok if (train or train_on_inputs) else IGNORE_INDEX for tok, train in zip(ids, trainable)]
    return TokenizedExample(ids, labels, truncated)


def tokenize_records(tokenizer: Any, template: PromptTemplate, records: Iterable[dict], max_length: int,
                     train_on_inputs: bool = False) -> tuple[list[TokenizedExample], TokenizeStats]:
    """Tokenize every record; examples whose response was cut away entirely are dropped and counted."""
    examples: list[TokenizedExample] = []
    stats = TokenizeStats()
    for row, record in enumerate(records):
        example = tokenize_example(tokenizer, template, record, max_length, train_on_inputs)
        count_example(stats, row, example)
        if example is not None:
            examples.append(example)
    return examples, stats


def count_example(stats: TokenizeStats, row: int, example: TokenizedExample | None) -> None:
    """Add one tokenized record (``None``: its response was cut away, so it is dropped) to ``stats``."""
    if example is None:
        stats.truncated += 1
        stats.dropped += 1
        stats.dropped_rows.append(row)
        return
    stats.examples += 1
    stats.tokens += len(example)
    stats.truncated += example.truncated
