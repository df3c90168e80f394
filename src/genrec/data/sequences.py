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


def length_bucketed_batches(
    lengths: np.ndarray,
    batch_size: int,
    chunk_batches: int,
    generator: torch.Generator,
    *,
    max_tokens: int | None = None,
) -> list[np.ndarray]:
    """Shuffled index batches over ``range(len(lengths))`` whose members have similar lengths.

    The usual bucketing of sequence-to-sequence training (as in fairseq): shuffle, cut into
    chunks of ``chunk_batches * batch_size`` indices, sort each chunk by length (stable), cut
    it into batches, then shuffle the order of all batches. Every index appears exactly once
    per epoch; a batch then needs little padding. ``chunk_batches`` of 1 sorts within single
    random batches only (the same sets of indices as :func:`minibatches`, in another order).

    With ``max_tokens`` a sorted chunk is cut into batches of at most ``max_tokens`` padded
    tokens (rows x the longest length in the batch) instead of ``batch_size`` rows: many
    short sequences or few long ones, so that every step trains on about as many positions
    as a random batch does (a mean-reduced loss then weighs every position alike, as with
    random batches; with fixed-size batches the positions of short sequences would weigh
    far more). A sequence longer than ``max_tokens`` forms a batch of its own.
    """
    if batch_size < 1 or chunk_batches < 1:
        raise ValueError(
            f"batch_size and chunk_batches must be >= 1, got {batch_size}, {chunk_batches}"
        )
    lengths = np.asarray(lengths)
    perm = torch.randperm(len(lengths), generator=generator).numpy()
    chunk = batch_size * chunk_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), chunk):
        part = perm[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        if max_tokens is None:
            batches.extend(part[s : s + batch_size] for s in range(0, len(part), batch_size))
            continue
        # ascending lengths: row i closes a batch at (i - first + 1) * lengths[i] tokens
        sorted_len = np.maximum(lengths[part], 1)
        first = 0
        for i in range(len(part)):
            if i > first and (i - first + 1) * sorted_len[i] > max_tokens:
                batches.append(part[first:i])
                first = i
        batches.append(part[first:])
    order = torch.randperm(len(batches), generator=generator).numpy()
    return [batches[i] for i in order]


def trim_left_padding(padded: torch.Tensor) -> torch.Tensor:
    """Drop the leading columns that are padding (0) in every row of a left-padded
    ``(B, M)`` batch; at least one column is kept."""
    real = (padded != 0).any(0)
    if not bool(real.any()):
        return padded[:, -1:]
    return padded[:, int(real.nonzero()[0, 0]) :]


def epoch_batches(
    lengths: np.ndarray,
    batch_size: int,
    bucket_batches: int,
    generator: torch.Generator,
    *,
    by_tokens: bool = True,
) -> list[np.ndarray]:
    """One epoch of index batches over ``range(len(lengths))``: random (``bucket_batches``
    0, :func:`minibatches`) or length-bucketed over chunks of ``bucket_batches`` batches
    (:func:`length_bucketed_batches`), so that :func:`trim_left_padding` can drop most of
    the padding of short sequences. Bucketed batches hold ``batch_size`` times the mean
    length in tokens (``by_tokens``, the default: as many positions per step, and steps per
    epoch, as random batches of ``batch_size``) or ``batch_size`` rows."""
    if not bucket_batches:
        return list(minibatches(len(lengths), batch_size, generator))
    tokens = None
    if by_tokens and len(lengths):
        tokens = max(int(round(batch_size * float(np.mean(lengths)))), 1)
    return length_bucketed_batches(
        lengths, batch_size, bucket_batches, generator, max_tokens=tokens
    )


def length_order(seq_indptr: np.ndarray, rows: np.ndarray, max_len: int) -> np.ndarray:
    """Positions into ``rows`` sorted (stably) by history length capped at ``max_len``: the
    batching order for inference when a batch costs as much as its longest history (the
    ``_row_order`` hook of the models), so that :func:`trim_left_padding` drops most
    padding of every batch."""
    lengths = np.diff(seq_indptr)[np.asarray(rows, dtype=np.int64)]
    return np.argsort(np.minimum(lengths, max_len), kind="stable")


def row_lengths(padded: np.ndarray) -> np.ndarray:
    """Number of real (non-zero) items in each row of a left-padded ``(R, M)`` array."""
    return np.count_nonzero(padded, axis=1)


def causal_pairs(padded: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-item pairs from left-padded sequences ``(B, L+1)``: inputs ``x[:, :-1]`` and
    targets ``x[:, 1:]`` (0 where the input or the target is padding)."""
    x = torch.as_tensor(padded)
    inputs, targets = x[:, :-1], x[:, 1:].clone()
    targets[inputs == 0] = 0
    return inputs, targets


def causal_batches(
    windows: np.ndarray | torch.Tensor,
    batch_size: int,
    bucket_batches: int,
    generator: torch.Generator,
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """One epoch of next-item training batches from left-padded windows ``(R, L + 1)``
    (:func:`last_items` with ``max_seq_len + 1``).

    Yields ``(idx, inputs, targets)``: the window rows of the batch and their
    :func:`causal_pairs` ``(B, W - 1)``, after :func:`trim_left_padding` dropped the columns
    that are padding in every row (``W <= L + 1``). With ``bucket_batches`` > 0 the batches
    are length-bucketed (:func:`length_bucketed_batches`), so ``W`` is close to each row's
    own length and almost no compute is spent on padding. Models whose positions count from
    the right or among real items only (and whose padding is masked) compute the same
    function on trimmed batches; the others must make padding inert first.
    """
    windows = torch.as_tensor(windows)
    lengths = row_lengths(windows.numpy())
    for idx in epoch_batches(lengths, batch_size, bucket_batches, generator):
        window = trim_left_padding(windows[torch.from_numpy(idx)])  # (B, W)
        inputs, targets = causal_pairs(window)
        yield idx, inputs, targets
