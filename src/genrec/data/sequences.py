"""Sequence batching shared by the auto-regressive models (SASRec, GRU4Rec, HSTU, ...).

Batches are plain ``dict[str, Tensor]``. The order of training examples depends only on the
seed and the epoch, so an interrupted training that resumes at an epoch boundary sees
exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from genrec.data.dataset import UserHistories, left_pad


def last_items(histories: UserHistories, rows: np.ndarray, length: int) -> np.ndarray:
    """The last ``length`` items of each row's sequence, left-padded with 0: ``(R, length)``.

    Longer histories are truncated from the left (the oldest items are dropped).
    """
    return left_pad(histories.seq_indptr, histories.seq_items.astype(np.int64), rows, length)


def training_rows(histories: UserHistories, min_len: int = 2) -> np.ndarray:
    """Rows (internal user ids) whose history has at least ``min_len`` items."""
    lens = np.diff(histories.seq_indptr)
    return np.flatnonzero(lens >= min_len).astype(np.int64)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator seeded by (seed, epoch) only: resumable data order."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[np.ndarray]:
    """Shuffled index batches over ``range(n)``."""
    perm = torch.randperm(n, generator=generator).numpy()
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]


def causal_pairs(padded: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-item pairs from left-padded sequences ``(B, L+1)``: inputs ``x[:, :-1]`` and
    targets ``x[:, 1:]`` (0 where the input or the target is padding)."""
    x = torch.from_numpy(padded)
    inputs, targets = x[:, :-1], x[:, 1:].clone()
    targets[inputs == 0] = 0
    return inputs, targets
