"""Batched sampling without a model: every schema value samples, bad rows fail alone, batch mates never matter."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sienn_ray.inference import sampling
from sienn_ray.inference.sampling import RowSampling, SamplingFailed
from sienn_ray.schemas.generation import SamplingParams

VOCAB = 64


def logits_for(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn((rows, VOCAB), generator=torch.Generator().manual_seed(seed)) * 4


def state(params: list[SamplingParams], prompts: list[list[int]] | None = None) -> RowSampling:
    prompts = prompts or [[1, 2, 3]] * len(params)
    return RowSampling.build(params, [p.seed or 0 for p in params], prompts, VOCAB, torch.device("cpu"))


def test_every_temperature_top_p_top_k_and_penalty_in_the_schema_range_samples():
    temperatures = [0.0, 5e-324, 1e-300, 1e-45, 1e-10, 0.5, 2.0]
    top_ps = [1e-300, 0.5, 1.0]
    top_ks = [0, 1, 5, VOCAB, 100_000]
    penalties = [1e-300, 0.5, 1.0, 10.0]
    params = [SamplingParams(temperature=t, top_p=p, top_k=k, repetition_penalty=r, seed=i)
              for i, (t, p, k, r) in enumerate(itertools.product(temperatures, top_ps, top_ks, penalties))]
    rows = state(params)
    logits = logits_for(len(params))
    for _ in range(3):
        tokens, failures = rows.pick(logits)
        assert failures == {}
        assert ((tokens >= 0) & (tokens < VOCAB)).all()


def test_a_vanishing_temperature_or_nucleus_is_the_greedy_token():
    logits = logits_for(4, seed=1)
    greedy = logits.argmax(-1)
    for params in (SamplingParams(temperature=1e-45, seed=1), SamplingParams(temperature=1.0, top_p=1e-300, seed=1),
                   SamplingParams(temperature=2.0, top_k=1, seed=1)):
        tokens, failures = state([params] * 4).pick(logits)
        assert failures == {} and torch.equal(tokens, greedy)


def test_a_row_whose_logits_are_nan_fails_alone():
    params = [SamplingParams(temperature=0.8, seed=s) for s in range(3)]
    logits = logits_for(3)
    expected, _ = state(params).pick(logits.clone())
    poisoned = logits.clone()
    poisoned[1, 7] = math.nan
    tokens, failures = state(params).pick(poisoned)
    assert list(failures) == [1] and isinstance(failures[1], SamplingFailed)
    assert tokens[0] == expected[0] and tokens[2] == expected[2]


def test_when_the_batched_pass_raises_only_the_row_that_raises_fails(monkeypatch):
    real = sampling._pick

    def flaky(logits, params, uniforms):
        if bool((params.temperature == 1.25).any()):
            raise RuntimeError("this row cannot be sampled")
        return real(logits, params, uniforms)

    params = [SamplingParams(temperature=0.9, seed=1), SamplingParams(temperature=1.25, seed=2),
              SamplingParams(temperature=0, seed=3)]
    logits = logits_for(3, seed=2)
    healthy = state([params[0], params[2]])
    expected, _ = healthy.pick(logits[[0, 2]])
    monkeypatch.setattr(sampling, "_pick", flaky)
    tokens, failures = state(params).pick(logits)
    assert list(failures) == [1] and "cannot be sampled" in str(failures[1])
    assert [int(tokens[0]), int(tokens[2])] == expected.tolist()


def test_same_seed_same_tokens_whatever_the_batch_mates():
    mine = SamplingParams(temperature=1.0, top_p=0.9, top_k=20, repetition_penalty=1.3, seed=42)
    mates = [SamplingParams(temperature=1.0, top_k=0, seed=7), SamplingParams(temperature=0, seed=8),
             SamplingParams(temperature=0.3, top_k=60, top_p=0.5, repetition_penalty=2.0, seed=9)]
    alone, crowd = state([mine]), state([mates[0], mine, mates[1], mates[2]])
    for step in range(20):
        logits = logits_for(4, seed=100 + step)
        solo, _ = alone.pick(logits[1:2])
        together, _ = crowd.pick(logits)
        assert int(solo[0]) == int(together[1]), step
    # Rows leaving and joining keep every row's own stream of draws.
    crowd.select([1, 3])
    crowd.extend(state([mates[0]]))
    logits = logits_for(3, seed=999)
    solo, _ = alone.pick(logits[0:1])
    together, _ = crowd.pick(logits)
    assert int(solo[0]) == int(together[0])


def test_repetition_penalty_discourages_prompt_and_generated_tokens():
    logits = torch.zeros((1, VOCAB))
    logits[0, 5], logits[0, 6] = 3.0, 2.0
    rows = state([SamplingParams(temperature=0, repetition_penalty=2.0)], prompts=[[5]])
    tokens, _ = rows.pick(logits)
    assert int(tokens[0]) == 6  # 5 was in the prompt: 3 / 2 < 2
    logits[0, 7] = 1.8
    tokens, _ = rows.pick(logits)
    assert int(tokens[0]) == 7  # 6 was generated: 2 / 2 < 1.8 (and 5 is at 1.5)


@pytest.mark.parametrize("top_k,top_p", [(0, 1.0), (3, 1.0), (0, 0.6)])
def test_draws_follow_the_cut_distribution(top_k, top_p):
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1] + [1e-9] * (VOCAB - 4)]))
    probs = torch.softmax(logits[0], -1)
    if top_k:
        probs[top_k:] = 0
    if top_p < 1:
        probs[2:] = 0  # 0.4 + 0.3 reaches 0.6
    probs = probs / probs.sum()
    rows = state([SamplingParams(temperature=1.0, top_k=top_k, top_p=top_p, seed=3)])
    counts = torch.zeros(VOCAB)
    draws = 2500
    for _ in range(draws):
        tokens, _ = rows.pick(logits)
        counts[tokens[0]] += 1
    assert counts[probs == 0].sum() == 0
    assert torch.allclose(counts / draws, probs, atol=0.035)


BIG = 4096  # above NUCLEUS_PROBE: the candidate paths run


@pytest.mark.parametrize("seed", range(6))
def test_fast_paths_draw_exactly_what_the_full_vocabulary_path_draws(seed):
    """Logits with ties at k-th values and nucleus cuts, peaked and flat rows, over a grid of parameters."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn((60, BIG), generator=gen) * torch.linspace(0.5, 12, 60)[:, None]
    logits[0, :12] = 99.0  # a twelve-way tie at the top: every small k cuts inside it
    logits[1] = logits[1].round()  # ties everywhere
    logits[2, 100:2000] = 40.0  # a wide plateau: the nucleus runs past the probe
    grid = list(itertools.product([1e-45, 0.3, 1.0, 2.0], [0, 1, 5, 50, BIG - 1], [1e-300, 0.5, 0.9, 0.999, 1.0]))
    params = [SamplingParams(temperature=t, top_k=k, top_p=p) for t, k, p in
              (grid[(seed * 7 + i * 13) % len(grid)] for i in range(60))]
    rows = state_big(params)._rows
    uniforms = torch.rand(60, generator=gen, dtype=torch.float64)
    best = logits.amax(-1)
    fast = sampling._sample(logits, best, rows, uniforms)
    assert torch.equal(fast, sampling._over_vocabulary(logits, best, rows, uniforms))


def test_the_candidate_paths_take_ordinary_rows_and_refuse_ties_that_reach_past_them():
    from sienn_ray.inference.sampling import _among_nucleus_probe, _among_top_k

    logits = torch.randn((3, BIG), generator=torch.Generator().manual_seed(1)) * 3
    logits[0, :12] = 99.0  # twelve-way tie at the top: k = 5 cuts inside it
    logits[1] = 0.0  # flat: a 0.9 nucleus needs 90% of the vocabulary, far past the probe
    rows = state_big([SamplingParams(temperature=0.3, top_k=5, top_p=0.9, seed=i) for i in range(3)])
    uniforms = torch.rand(3, dtype=torch.float64)
    _, ok = _among_top_k(logits, logits.amax(-1), rows._rows, uniforms)
    assert ok == [False, False, True]  # rows 0 and 1: ties with the 5th value run on
    rows = state_big([SamplingParams(temperature=0.3, top_k=0, top_p=0.9, seed=i) for i in range(3)])
    _, ok = _among_nucleus_probe(logits, logits.amax(-1), rows._rows, uniforms)
    assert ok == [True, False, True]


def state_big(params: list[SamplingParams]) -> RowSampling:
    return RowSampling.build(params, [p.seed or 0 for p in params], [[1, 2]] * len(params), BIG, torch.device("cpu"))


def test_same_seed_same_tokens_whatever_the_batch_mates_on_a_large_vocabulary():
    mine = [SamplingParams(temperature=1.0, top_k=0, top_p=0.9, seed=1),
            SamplingParams(temperature=0.7, top_k=40, top_p=0.95, seed=2)]
    mates = [SamplingParams(temperature=1.3, top_k=900, seed=3), SamplingParams(temperature=0.5, top_k=0, seed=4),
             SamplingParams(temperature=1e-45, top_k=3, top_p=0.2, seed=5)]

    alone = [state_big([m]) for m in mine]
    crowd = state_big([mates[0], mine[0], mates[1], mine[1], mates[2]])
    for step in range(15):
        logits = torch.randn((5, BIG), generator=torch.Generator().manual_seed(step)) * 2
        together, _ = crowd.pick(logits)
        for row, solo in ((1, alone[0]), (3, alone[1])):
            token, _ = solo.pick(logits[row:row + 1])
            assert int(token[0]) == int(together[row]), (step, row)
