"""``topk_with_ties`` against a brute-force Python reference.

Reference order: finite scores only, sorted by (-score, demoted, column); the first ``k``,
then padding (column 0, score ``-inf``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genrec.core.topk import topk_with_ties


def reference(scores: np.ndarray, k: int, demote: np.ndarray | None) -> tuple[list, list]:
    B, N = scores.shape
    idx, vals = [], []
    for b in range(B):
        cols = [j for j in range(N) if np.isfinite(scores[b, j])]
        dem = demote[b] if demote is not None else np.zeros(N, dtype=bool)
        cols.sort(key=lambda j: (-scores[b, j], bool(dem[j]), j))
        cols = cols[:k]
        row_v = [float(scores[b, j]) for j in cols]
        idx.append(cols + [0] * (k - len(cols)))
        vals.append(row_v + [-math.inf] * (k - len(cols)))
    return idx, vals


def random_case(rng: np.random.Generator, B: int, N: int, levels: int, p_inf: float):
    scores = rng.integers(0, levels, size=(B, N)).astype(np.float32)  # many ties
    scores[rng.random((B, N)) < p_inf] = -np.inf
    return scores


def check(scores: np.ndarray, k: int, demote: np.ndarray | None) -> None:
    dem_t = None if demote is None else torch.from_numpy(demote)
    idx, vals = topk_with_ties(torch.from_numpy(scores), k, dem_t)
    ref_idx, ref_vals = reference(scores, k, demote)
    assert idx.dtype == torch.int64
    assert tuple(idx.shape) == tuple(vals.shape) == (scores.shape[0], k)
    assert idx.tolist() == ref_idx, (scores, k, demote)
    np.testing.assert_array_equal(vals.numpy(), np.asarray(ref_vals, dtype=scores.dtype))


@pytest.mark.parametrize("use_demote", [False, True])
@pytest.mark.parametrize("p_inf", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("levels", [1, 2, 4, 50])
def test_random_ties(use_demote: bool, p_inf: float, levels: int) -> None:
    rng = np.random.default_rng(hash((use_demote, p_inf, levels)) % 2**32)
    for _ in range(15):
        B, N = int(rng.integers(1, 12)), int(rng.integers(1, 30))
        scores = random_case(rng, B, N, levels, p_inf)
        demote = rng.random((B, N)) < 0.3 if use_demote else None
        for k in sorted({1, 2, 3, max(1, N // 2), N, N + 4}):
            check(scores, k, demote)


def test_k_larger_than_finite_entries() -> None:
    scores = np.array(
        [[-np.inf, 3.0, -np.inf, 1.0, 3.0], [-np.inf] * 5, [2.0, 2.0, 2.0, 2.0, 2.0]],
        dtype=np.float32,
    )
    check(scores, 4, None)
    check(scores, 9, None)
    idx, vals = topk_with_ties(torch.from_numpy(scores), 4)
    assert idx[0].tolist() == [1, 4, 3, 0]
    assert idx[1].tolist() == [0, 0, 0, 0] and torch.isneginf(vals[1]).all()
    assert idx[2].tolist() == [0, 1, 2, 3]


def test_demoted_items_lose_ties_only() -> None:
    scores = np.array([[1.0, 5.0, 5.0, 5.0, 4.0]], dtype=np.float32)
    demote = np.array([[False, True, False, False, False]])
    idx, _ = topk_with_ties(torch.from_numpy(scores), 2, torch.from_numpy(demote))
    assert idx[0].tolist() == [2, 3]  # the demoted item 1 loses its tie at 5.0
    idx, _ = topk_with_ties(torch.from_numpy(scores), 4, torch.from_numpy(demote))
    assert idx[0].tolist() == [2, 3, 1, 4]  # ... but still beats a lower score
    demote = np.array([[False, False, False, False, True]])
    idx, _ = topk_with_ties(torch.from_numpy(scores), 4, torch.from_numpy(demote))
    assert idx[0].tolist() == [1, 2, 3, 4]  # a demoted item without a tie keeps its rank


def test_rows_with_different_boundary_ties() -> None:
    # row 0 needs 1 of 3 tied items at the boundary, row 1 needs 3 of 4, row 2 none
    scores = np.array(
        [[9, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 5], [6, 5, 4, 3, 2, 1]], dtype=np.float32
    )
    demote = np.array([[0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    for k in (1, 2, 3, 4, 6):
        check(scores, k, None)
        check(scores, k, demote)


def test_float64_and_large_rows() -> None:
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 3, size=(4, 2000)).astype(np.float64)
    scores[:, ::7] = -np.inf
    demote = rng.random(scores.shape) < 0.5
    for k in (1, 10, 700, 2000):
        check(scores, k, demote)


def test_nan_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        topk_with_ties(torch.tensor([[1.0, float("nan")]]), 1)
