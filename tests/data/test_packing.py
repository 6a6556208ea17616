"""Packing keeps examples apart (positions, targets, attention) and the batch plan is reproducible."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from sienn_ray.data.packing import (
    collate_packed,
    collate_padded,
    epoch_batches,
    next_token_targets,
    pack_rows,
    shard_indices,
)
from sienn_ray.data.tokenize import IGNORE_INDEX, TokenizedExample


def _example(n: int, start: int = 10, prompt: int = 2) -> TokenizedExample:
    ids = list(range(start, start + n))
    return TokenizedExample(ids, [IGNORE_INDEX] * prompt + ids[prompt:])


def test_pack_rows_places_every_example_once_within_max_length():
    rng = random.Random(0)
    lengths = [rng.randint(1, 64) for _ in range(200)]
    rows = pack_rows(lengths, 64)
    assert sorted(i for row in rows for i in row) == list(range(200))
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)
    assert len(rows) <= 1.25 * sum(lengths) / 64 + 1  # first-fit decreasing wastes little
    with pytest.raises(ValueError):
        pack_rows([65], 64)


def test_collate_packed_restarts_positions_and_never_targets_across_examples():
    a, b, c = _example(5, 10), _example(3, 50), _example(6, 80)
    batch = collate_packed([a, b, c], max_length=9, pad_id=1)
    assert batch.attention_mask is None and batch.num_tokens == 14
    rows = {tuple(r.tolist()) for r in batch.input_ids}
    assert (80, 81, 82, 83, 84, 85, 50, 51, 52) in rows and (10, 11, 12, 13, 14, 1, 1, 1, 1) in rows
    r = [tuple(x.tolist()) for x in batch.input_ids].index((80, 81, 82, 83, 84, 85, 50, 51, 52))
    assert batch.position_ids[r].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2]
    targets = batch.targets[r].tolist()
    assert targets[5] == IGNORE_INDEX and targets[8] == IGNORE_INDEX  # last token of each example
    assert targets[:5] == [IGNORE_INDEX, 82, 83, 84, 85] and targets[6:8] == [IGNORE_INDEX, 52]
    other = 1 - r
    assert batch.position_ids[other].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3]  # padding is its own sequence
    assert batch.targets[other, 4:].eq(IGNORE_INDEX).all()
    assert batch.num_targets == sum(t != IGNORE_INDEX for t in next_token_targets(a.labels)) + 1 + 4


def test_collate_padded_masks_padding():
    batch = collate_padded([_example(5), _example(2)], pad_id=1)
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert batch.targets[1].tolist() == [IGNORE_INDEX] * 5


def test_epoch_batches_are_a_reproducible_permutation():
    lengths = list(range(1, 31))
    plan = epoch_batches(lengths, 4, seed=7, epoch=2)
    assert plan == epoch_batches(lengths, 4, seed=7, epoch=2)
    assert plan != epoch_batches(lengths, 4, seed=7, epoch=3)
    assert sorted(i for b in plan for i in b) == list(range(30)) and [len(b) for b in plan][:-1] == [4] * 7


def test_length_grouping_keeps_similar_lengths_together():
    rng = random.Random(1)
    lengths = [rng.randint(1, 500) for _ in range(256)]
    grouped = epoch_batches(lengths, 8, seed=0, epoch=0, group_by_length=True)
    plain = epoch_batches(lengths, 8, seed=0, epoch=0)

    def waste(plan):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in plan)

    assert sorted(i for b in grouped for i in b) == list(range(256))
    assert waste(grouped) < 0.2 * waste(plain)


@pytest.mark.parametrize("n,world", [(10, 1), (10, 3), (7, 2), (2, 4)])
def test_shards_have_equal_sizes_and_cover_everything(n, world):
    shards = [shard_indices(n, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    assert set().union(*map(set, shards)) == set(range(n))


@pytest.mark.parametrize("name", ["sienn-tiny-gpt2", "sienn-tiny-llama"])
def test_packed_loss_equals_the_examples_run_alone(embedded_models, name):
    """Packing must not let examples see each other: same per-example and same mean loss."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(embedded_models[name], attn_implementation="sdpa").eval()
    gen = torch.Generator().manual_seed(0)
    examples = []
    for n in (9, 17, 5, 30, 12):
        ids = torch.randint(3, model.config.vocab_size, (n,), generator=gen).tolist()
        examples.append(TokenizedExample(ids, [IGNORE_INDEX] * 3 + ids[3:]))
    with torch.no_grad():
        alone_sums, alone_counts = [], []
        for ex in examples:
            logits = model(input_ids=torch.tensor([ex.input_ids]), use_cache=False).logits[0]
            t = torch.tensor(next_token_targets(ex.labels))
            alone_sums.append(F.cross_entropy(logits, t, ignore_index=IGNORE_INDEX, reduction="sum").item())
            alone_counts.append(int((t != IGNORE_INDEX).sum()))
        batch = collate_packed(examples, max_length=40, pad_id=1)
        assert batch.input_ids.shape[0] < len(examples)  # several examples really share rows
        logits = model(**batch.model_inputs(), use_cache=False).logits
        packed = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE_INDEX)
    alone_mean = sum(alone_sums) / sum(alone_counts)
    assert abs(packed.item() - alone_mean) < 1e-4
    # Each example's own loss, read from its span of the packed rows, is the loss it has alone.
    for r, row in enumerate(pack_rows([len(e) for e in examples], 40)):
        start = 0
        for idx in row:
            n = len(examples[idx])
            own = F.cross_entropy(logits[r, start:start + n], batch.targets[r, start:start + n],
                                  ignore_index=IGNORE_INDEX, reduction="sum").item()
            assert abs(own / alone_counts[idx] - alone_sums[idx] / alone_counts[idx]) < 1e-4
            start += n
