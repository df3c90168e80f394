"""Batching helpers of genrec.data.sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrec.data.sequences import (
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
