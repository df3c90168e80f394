"""Collision handling: make every item's code tuple unique (TIGER).

Rajput et al., "Recommender Systems with Generative Retrieval" (TIGER, NeurIPS 2023, Sec. 3.1):
items whose semantic IDs collide get one extra code level that enumerates them,
``0 .. group size - 1``. The extra level's codebook size is the largest group, the smallest
size that makes every tuple unique. When no tuple collides no level is added.
"""

from __future__ import annotations

import numpy as np

from genrec.errors import DataValidationError


def collision_groups(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group items by identical code tuples.

    Args:
        codes: ``(n, L)`` integer codes.

    Returns:
        ``(group, sizes)``: ``group[i]`` is the group index of row ``i`` and ``sizes[g]`` the
        number of rows in group ``g``.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise DataValidationError(f"codes must be a non-empty (n, L) array, got {codes.shape}")
    _, group, sizes = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return group.reshape(-1), sizes


def collision_rate(codes: np.ndarray) -> float:
    """Fraction of rows whose tuple is shared with at least one other row."""
    group, sizes = collision_groups(codes)
    return float((sizes[group] > 1).mean())


def deduplicate(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Append a disambiguating level where tuples collide.

    Within a group, rows are numbered in their order in ``codes`` (internal-id order), so the
    result is deterministic.

    Args:
        codes: ``(n, L)`` integer codes.

    Returns:
        ``(codes, extra_size)``: ``(n, L + 1)`` codes with the extra level and its codebook size
        (the largest group), or the input unchanged and ``0`` when every tuple is unique.
    """
    codes = np.asarray(codes, dtype=np.int64)
    group, sizes = collision_groups(codes)
    if sizes.max() == 1:
        return codes, 0
    # Rank of each row within its group: stable sort by group, then position - group start.
    order = np.argsort(group, kind="stable")  # (n,)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # (G,)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - starts[group[order]]
    return np.concatenate([codes, rank[:, None]], axis=1), int(sizes.max())
