"""Scores of a generated answer against its reference, and their aggregates: plain Python.

Exact match and token F1 follow the SQuAD evaluation script (lower-case, drop
punctuation and the articles a/an/the, collapse whitespace; F1 over the bag of
remaining tokens). ROUGE-L is Google's ``rouge-score`` (the reference
implementation of ROUGE-1.5.5, works offline), fed the same Unicode-aware
tokens: its own tokenizer keeps only ``[a-z0-9]``, which would score every
non-Latin answer as empty.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from statistics import fmean
from typing import Iterable

from rouge_score import rouge_scorer

from ..schemas.evaluation import FigureDeltas, ModelFigures, RowScores

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_ASCII_PUNCTUATION = frozenset(string.punctuation)
# exp() of a float64 overflows just above 709.78.
_MAX_LOG_PERPLEXITY = 709.0


def _is_punctuation(char: str) -> bool:
    # SQuAD strips string.punctuation; Unicode punctuation (« », 。, —) is stripped too.
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def normalize_answer(text: str) -> str:
    """SQuAD's normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if not _is_punctuation(c))
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    """The normalized answer split on whitespace."""
    return normalize_answer(text).split()


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalized texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (SQuAD's F1); 1.0 when both are empty."""
    pred, ref = answer_tokens(prediction), answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class _AnswerTokenizer:
    """rouge-score's tokenizer interface over ``answer_tokens``."""

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return answer_tokens(text)


_ROUGE = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_AnswerTokenizer())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens); 1.0 when both are empty."""
    if not answer_tokens(prediction) or not answer_tokens(reference):
        return float(answer_tokens(prediction) == answer_tokens(reference))
    return _ROUGE.score(reference, prediction)["rougeL"].fmeasure


def score_answer(prediction: str, reference: str) -> RowScores:
    """All three scores of one answer."""
    return RowScores(exact_match=exact_match(prediction, reference), token_f1=token_f1(prediction, reference),
                     rouge_l=rouge_l(prediction, reference))


def perplexity(loss: float | None) -> float | None:
    """exp(loss), or None when there is no loss or it would overflow."""
    if loss is None or not math.isfinite(loss) or loss > _MAX_LOG_PERPLEXITY:
        return None
    return math.exp(loss)


def model_figures(loss_sum: float, loss_tokens: int, scores: Iterable[RowScores],
                  generated_tokens: int = 0) -> ModelFigures:
    """Token-weighted mean loss, its perplexity, and the mean of each score over the rows."""
    scores = list(scores)
    loss = loss_sum / loss_tokens if loss_tokens else None

    def mean(name: str) -> float | None:
        return fmean(getattr(s, name) for s in scores) if scores else None

    return ModelFigures(eval_loss=loss, perplexity=perplexity(loss), exact_match=mean("exact_match"),
                        token_f1=mean("token_f1"), rouge_l=mean("rouge_l"), loss_tokens=loss_tokens,
                        generated_rows=len(scores), generated_tokens=generated_tokens)


def deltas(base: ModelFigures, tuned: ModelFigures) -> FigureDeltas:
    """Tuned minus base for every figure both sides have."""
    values = {}
    for name in FigureDeltas.model_fields:
        b, t = getattr(base, name), getattr(tuned, name)
        values[name] = None if b is None or t is None else t - b
    return FigureDeltas(**values)
