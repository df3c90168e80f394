"""Exact top-k with deterministic, pessimistic tie-breaking.

Among items with equal scores, items flagged in ``demote`` (the evaluator passes the
held-out targets) come *after* the others, then lower internal ids come first. So a model
that gives every item the same score never gets credit for a hit it did not earn, and the
same scores always give the same list.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def csr_to_bool(rows: sp.csr_matrix, n_cols: int) -> torch.Tensor:
    """A CSR matrix's non-zero pattern as a dense bool tensor ``(R, n_cols)``."""
    mask = torch.zeros((rows.shape[0], n_cols), dtype=torch.bool)
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    mask[torch.from_numpy(r), torch.from_numpy(rows.indices.astype(np.int64))] = True
    return mask


def _dense(demote: sp.csr_matrix | torch.Tensor, rows: torch.Tensor, n_cols: int) -> torch.Tensor:
    """Rows ``rows`` of ``demote`` as a dense bool tensor ``(R, N)``."""
    if isinstance(demote, torch.Tensor):
        return demote[rows]
    return csr_to_bool(demote[rows.numpy()].tocsr(), n_cols)


def _member(demote: sp.csr_matrix | torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``demote[r, idx[r, j]]`` for every entry of ``idx`` ``(B, k)``, as bool."""
    if isinstance(demote, torch.Tensor):
        return torch.gather(demote, 1, idx)
    B, k = idx.shape
    n = demote.shape[1]
    rows = np.repeat(np.arange(B), np.diff(demote.indptr))
    keys = rows * n + demote.indices.astype(np.int64)  # sorted within the CSR layout
    query = (np.arange(B)[:, None] * n + idx.numpy()).reshape(-1)
    return torch.from_numpy(np.isin(query, keys).reshape(B, k))


def topk_with_ties(
    scores: torch.Tensor,
    k: int,
    demote: torch.Tensor | sp.csr_matrix | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` columns of ``scores`` per row with deterministic tie-breaking.

    Args:
        scores: ``(B, N)`` float scores; ``-inf`` marks items that may not be returned.
        k: list length (``1 <= k``; rows with fewer than ``k`` finite scores are padded).
        demote: optional ``(B, N)`` bool tensor or CSR matrix; flagged items lose every tie.

    Returns:
        ``(idx, vals)``: ``(B, k)`` int64 column ids (0 where padded) and float scores
        (``-inf`` where padded), ordered by (score desc, demoted last, column asc).
    """
    B, N = scores.shape
    kk = min(k, N)
    # one extra column tells whether a tie crosses the cut-off (the (kk+1)-th equals the kk-th)
    vals, idx = torch.topk(scores, min(kk + 1, N), dim=1)  # (B, kk+1)
    if torch.isnan(vals[:, 0]).any():  # topk puts NaN first: a row with one has it on top
        raise ValueError("model produced NaN scores; check its inputs and training")
    if kk < N:
        ambiguous = vals[:, kk] == vals[:, kk - 1]
        vals, idx = vals[:, :kk], idx[:, :kk]
    else:
        ambiguous = torch.zeros(B, dtype=torch.bool)
    if ambiguous.any():
        rows = ambiguous.nonzero().squeeze(1)  # (R,)
        sub = scores[rows]  # (R, N)
        tau = vals[rows, -1:]  # (R, 1) boundary score
        inside = vals[rows] > tau  # (R, kk) surely in the list; they come first
        need = kk - inside.sum(1)  # (R,) slots left for tied items
        cols = torch.arange(N)
        rank_key = cols if demote is None else _dense(demote, rows, N).long() * (N + 1) + cols
        # tied items ordered: non-demoted first, then lower column; others never chosen
        key = torch.where(sub == tau, rank_key, torch.full_like(cols, 2 * N + 2))
        m = int(need.max())
        chosen = torch.topk(-key, m, dim=1).indices  # (R, m), smallest keys first
        slot = (torch.cumsum(~inside, dim=1) - 1).clamp(min=0, max=m - 1)  # (R, kk)
        new_idx = torch.where(inside, idx[rows], torch.gather(chosen, 1, slot))
        idx = idx.clone()
        idx[rows] = new_idx
        vals = torch.gather(scores, 1, idx)
    # final order inside the list: score desc, demoted last, column asc (stable sorts)
    order = torch.argsort(idx, dim=1, stable=True)
    idx, vals = idx.gather(1, order), vals.gather(1, order)
    if demote is not None:
        dem = _member(demote, idx)
        order = torch.argsort(dem.to(torch.int8), dim=1, stable=True)
        idx, vals = idx.gather(1, order), vals.gather(1, order)
    order = torch.argsort(vals, dim=1, descending=True, stable=True)
    idx, vals = idx.gather(1, order), vals.gather(1, order)
    idx = idx.masked_fill(torch.isneginf(vals), 0)
    if kk < k:
        idx = torch.cat([idx, idx.new_zeros(B, k - kk)], 1)
        vals = torch.cat([vals, vals.new_full((B, k - kk), float("-inf"))], 1)
    return idx, vals
