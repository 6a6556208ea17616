"""The answer scores and their aggregates, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from sienn_ray.evaluation.metrics import (
    deltas, exact_match, model_figures, normalize_answer, perplexity, rouge_l, score_answer, token_f1,
)
from sienn_ray.schemas.evaluation import ModelFigures, RowScores


def test_normalization_is_squad_s():
    assert normalize_answer("The  Cat,\tsat!\n") == "cat sat"
    assert normalize_answer("don't") == "dont"  # punctuation is deleted, not turned into a space
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theory of anthems") == "theory of anthems"  # articles only as whole words
    assert normalize_answer("«Ça va?» — oui.") == "ça va oui"  # Unicode punctuation too
    assert normalize_answer("1+1=2") == "112"  # SQuAD's ASCII punctuation includes symbols


def test_exact_match():
    assert exact_match("Paris.", "paris") == 1.0
    assert exact_match("The Eiffel tower", "eiffel  tower!") == 1.0
    assert exact_match("The capital is Paris", "Paris") == 0.0
    assert exact_match("", "") == 1.0


def test_token_f1():
    # pred {cat, sat, on, mat}, ref {cat, sat}: P = 2/4, R = 2/2, F1 = 2 * 0.5 * 1 / 1.5
    assert token_f1("the cat sat on the mat", "a cat sat") == pytest.approx(2 / 3)
    # bags: red red blue vs red blue blue share one red and one blue: P = R = 2/3
    assert token_f1("red red blue", "red blue blue") == pytest.approx(2 / 3)
    assert token_f1("Cat.", "the cat") == 1.0
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0 and token_f1("", "x") == 0.0


def test_rouge_l():
    # tokens [cat, sat, on, mat] vs [cat, was, on, mat]: LCS cat-on-mat = 3, P = R = 3/4
    assert rouge_l("cat sat on mat", "the cat was on the mat") == pytest.approx(0.75)
    # same bag, reversed order: token F1 is 1 but the longest common subsequence is one token
    assert token_f1("mat on cat", "cat on mat") == 1.0
    assert rouge_l("mat on cat", "cat on mat") == pytest.approx(1 / 3)
    # LCS 2 of pred 2 / ref 4: P = 1, R = 1/2, F = 2/3
    assert rouge_l("quick fox", "the quick brown fox jumps") == pytest.approx(2 * 1 * 0.5 / 1.5)
    # rouge-score's own tokenizer keeps only [a-z0-9] and would score these 0
    assert rouge_l("東京 日本", "東京 日本") == 1.0
    assert rouge_l("", "") == 1.0 and rouge_l("a", "word") == 0.0


def test_score_answer_bundles_all_three():
    scores = score_answer("The cat sat.", "cat sat")
    assert scores == RowScores(exact_match=1.0, token_f1=1.0, rouge_l=1.0)


def test_perplexity():
    assert perplexity(2.0) == pytest.approx(math.e ** 2)
    assert perplexity(0.0) == 1.0
    assert perplexity(None) is None and perplexity(800.0) is None and perplexity(float("nan")) is None


def test_model_figures_weight_loss_by_tokens_and_average_scores_by_row():
    rows = [RowScores(exact_match=1, token_f1=1, rouge_l=1), RowScores(exact_match=0, token_f1=0.5, rouge_l=0.25)]
    figures = model_figures(10.0, 4, rows, generated_tokens=7)
    assert figures.model_dump() == {"eval_loss": 2.5, "perplexity": pytest.approx(math.exp(2.5)),
                                    "exact_match": 0.5, "token_f1": 0.75, "rouge_l": 0.625, "loss_tokens": 4,
                                    "generated_rows": 2, "generated_tokens": 7}
    empty = model_figures(0.0, 0, [])
    assert empty.eval_loss is None and empty.perplexity is None and empty.exact_match is None
    assert empty.generated_rows == 0


def test_deltas_are_tuned_minus_base_where_both_exist():
    base = ModelFigures(eval_loss=3.0, perplexity=20.0, exact_match=0.0, token_f1=0.25, rouge_l=None)
    tuned = ModelFigures(eval_loss=1.0, perplexity=3.0, exact_match=0.5, token_f1=0.75, rouge_l=0.5)
    d = deltas(base, tuned)
    assert (d.eval_loss, d.perplexity, d.exact_match, d.token_f1, d.rouge_l) == (-2.0, -17.0, 0.5, 0.5, None)
