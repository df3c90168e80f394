"""Batching helpers of genrec.data.sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrec.data.sequences import (
    epoch_batches,
    epoch_generator,
    length_bucketed_batches,
    minibatches,
    trim_left_padding,
)


def test_length_buckets_cover_every_index_once_with_less_spread() -> None:
    lengths = np.random.default_rng(0).integers(1, 21, size=1000)
    batches = length_bucketed_batches(lengths, 32, 8, epoch_generator(0, 0))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert sum(len(b) != 32 for b in batches) == 1  # only the last chunk has a short batch
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean(
        [np.ptp(lengths[b]) for b in minibatches(1000, 32, epoch_generator(0, 0))]
    )
    assert spread < random_spread / 3, (spread, random_spread)
    # the same seed and epoch give the same batches (resumable data order)
    again = length_bucketed_batches(lengths, 32, 8, epoch_generator(0, 0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_one_batch_chunks_are_the_random_batches_sorted() -> None:
    lengths = np.arange(100) % 7
    plain = [set(b.tolist()) for b in minibatches(100, 10, epoch_generator(1, 2))]
    bucketed = length_bucketed_batches(lengths, 10, 1, epoch_generator(1, 2))
    assert sorted(map(sorted, plain)) == sorted(sorted(b.tolist()) for b in bucketed)


def test_length_buckets_reject_bad_sizes() -> None:
    with pytest.raises(ValueError, match="chunk_batches"):
        length_bucketed_batches(np.ones(4), 2, 0, epoch_generator(0, 0))


def test_trim_left_padding() -> None:
    x = torch.tensor([[0, 0, 3, 4], [0, 5, 6, 7], [0, 0, 0, 8]])
    assert torch.equal(trim_left_padding(x), x[:, 1:])
    assert torch.equal(trim_left_padding(x[:, 1:]), x[:, 1:])  # nothing to drop
    empty = torch.zeros(2, 5, dtype=torch.long)
    assert trim_left_padding(empty).shape == (2, 1)  # one column kept


def test_token_budget_batches_cover_every_index_within_budget() -> None:
    lengths = np.random.default_rng(1).integers(1, 51, size=2000)
    budget = 32 * int(lengths.mean())
    batches = length_bucketed_batches(lengths, 32, 10, epoch_generator(0, 0), max_tokens=budget)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(2000))
    for b in batches:  # padded tokens within the budget (a batch of one may exceed it)
        assert len(b) == 1 or len(b) * lengths[b].max() <= budget
    sizes = np.array([len(b) for b in batches])
    short = [len(b) for b in batches if lengths[b].max() <= 20]
    long = [len(b) for b in batches if lengths[b].min() >= 40]
    assert min(short) > 2 * max(long)  # many short rows or few long ones per step
    # about as many steps as fixed batches of 32 rows: padding is all that is left out
    assert 2000 / 32 <= len(batches) <= 1.3 * 2000 / 32
    assert sizes.sum() == 2000


def test_epoch_batches_random_rows_or_token_buckets() -> None:
    lengths = np.r_[np.full(90, 2), np.full(10, 40)]
    plain = epoch_batches(lengths, 10, 0, epoch_generator(0, 0))
    assert all(len(b) == 10 for b in plain)
    by_rows = epoch_batches(lengths, 10, 5, epoch_generator(0, 0), by_tokens=False)
    assert sorted(len(b) for b in by_rows) == [10] * 10
    by_tokens = epoch_batches(lengths, 10, 5, epoch_generator(0, 0))
    budget = round(10 * lengths.mean())  # 56 tokens
    assert max(len(b) * lengths[b].max() for b in by_tokens) <= budget
    assert sorted(np.concatenate(by_tokens).tolist()) == list(range(100))
