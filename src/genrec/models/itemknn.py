"""ItemKNN: item-item collaborative filtering with shrunk cosine similarity.

On the binary user-item matrix ``X`` the similarity of items ``i`` and ``j`` is

    sim(i, j) = x_i . x_j / (||x_i|| ||x_j|| + shrink)

(``x_i`` is item ``i``'s column of ``X``; ``shrink`` damps pairs seen by few users, as in
Bell & Koren's shrunk correlations). Each item keeps only its ``n_neighbors`` most similar
items (row-wise pruning, positive similarities only, self-similarity excluded), giving a
sparse item x item matrix ``S``; a user's scores are ``x_u S``: every history item votes for
its neighbours with their similarity.

Ties at the pruning boundary are broken deterministically (lower internal id first), the
rule :func:`genrec.core.topk.topk_with_ties` uses. The similarity is computed in blocks of
items (sparse co-occurrence counts, then a vectorised per-row sort), never densely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from genrec.config import ModelConfig, field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError
from genrec.models.base import ScoringRecommender
from genrec.registry import register_model

# Items per block are chosen so a block's co-occurrence matrix has at most this many entries.
_BLOCK_ELEMENTS = 2**23


@dataclass(frozen=True)
class ItemKNNConfig(ModelConfig):
    """Config of :class:`ItemKNN`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "n_neighbors": {"type": "int", "low": 5, "high": 1000, "log": True},
        "shrink": {"type": "float", "low": 0.0, "high": 100.0},
    }

    n_neighbors: int = field(100, "similarities kept per item (its nearest neighbours)")
    shrink: float = field(
        10.0, "added to the cosine denominator; damps similarities of rarely co-seen items"
    )

    def validate(self) -> None:
        self.positive("n_neighbors")
        self.positive("shrink", allow_zero=True)


def shrunk_cosine_topk(
    X: sp.csr_matrix, n_neighbors: int, shrink: float, *, block_rows: int | None = None
) -> sp.csr_matrix:
    """Pruned item-item similarity matrix of a binary user-item matrix.

    Args:
        X: ``(n_users + 1, n_items + 1)`` user-item matrix; non-zeros count as 1. Column 0
            (padding) is ignored.
        n_neighbors: similarities kept per row (item).
        shrink: shrinkage added to the cosine denominator (``>= 0``).
        block_rows: items processed per block (default: ``2**23 // (n_items + 1)``).

    Returns:
        CSR ``(n_items + 1, n_items + 1)`` float32: row ``i`` holds the (at most)
        ``n_neighbors`` largest positive ``sim(i, j)``, ``j != i``, ties broken by lower
        ``j``. Row and column 0 are empty.
    """
    if shrink < 0:
        raise ConfigError(f"shrink must be >= 0, got {shrink!r}")
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)  # (U, N) with N = n_items + 1
    X.data[:] = 1.0
    X.sum_duplicates()
    X.data[:] = 1.0
    N = X.shape[1]
    XT = X.T.tocsr()  # (N, U)
    norms = np.sqrt(np.diff(XT.indptr).astype(np.float64))  # (N,) ||x_i||
    k = max(1, min(int(n_neighbors), N))
    if block_rows is None:
        block_rows = max(1, _BLOCK_ELEMENTS // max(N, 1))
    rows_out, cols_out, vals_out = [], [], []
    for start in range(1, N, block_rows):
        stop = min(start + block_rows, N)
        gram = (XT[start:stop] @ X).tocoo()  # (b, N) co-occurrence counts, sparse
        r, c = gram.row.astype(np.int64), gram.col.astype(np.int64)  # (nnz,) each
        sim = gram.data / (norms[start + r] * norms[c] + shrink)  # (nnz,) shrunk cosine
        keep = (sim > 0) & (c != start + r) & (c != 0)  # positive, no self, no padding
        r, c, sim = r[keep], c[keep], sim[keep]
        # per row: similarity desc, then column asc; keep the first k of each row
        order = np.lexsort((c, -sim, r))
        r, c, sim = r[order], c[order], sim[order]
        counts = np.bincount(r, minlength=stop - start)  # (b,)
        first = np.cumsum(counts) - counts  # (b,) offset of each row's first entry
        top = (np.arange(len(r)) - first[r]) < k
        rows_out.append(r[top] + start)
        cols_out.append(c[top])
        vals_out.append(sim[top])
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, np.int64)
    vals = np.concatenate(vals_out) if vals_out else np.zeros(0)
    S = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(N, N))
    S.sort_indices()
    return S


@register_model("itemknn")
class ItemKNN(ScoringRecommender):
    """Item-item nearest neighbours: scores ``x_u S`` with a pruned shrunk-cosine ``S``.

    ``x_u`` is the user's binary history row, so an item's score is the sum of its
    similarities to the history items that list it among their neighbours.
    """

    summary = (
        "Item-item nearest neighbours: shrunk cosine similarity to the items in the user's history."
    )

    deterministic = True
    config_class = ItemKNNConfig
    config: ItemKNNConfig

    def _fit(self, dataset: Dataset, valid: object) -> None:
        X = dataset.matrix(binary=True)  # (U + 1, n + 1)
        self.similarity_ = shrunk_cosine_topk(X, self.config.n_neighbors, self.config.shrink)

    def _score(self, batch: HistoryBatch) -> np.ndarray:
        X = batch.matrix.astype(np.float32)  # (B, n + 1) copy
        X.data[:] = 1.0
        return (X @ self.similarity_).toarray()  # (B, n + 1)

    def _state_dict(self) -> dict[str, np.ndarray]:
        S = self.similarity_
        return {
            "similarity.data": S.data.astype(np.float32),
            "similarity.indices": S.indices.astype(np.int64),
            "similarity.indptr": S.indptr.astype(np.int64),
        }

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        indptr = state["similarity.indptr"]
        n = len(indptr) - 1
        if self.item_map is not None and n != self.item_map.size + 1:
            raise ValueError(
                f"similarity matrix has {n} rows, expected n_items + 1 = {self.item_map.size + 1}"
            )
        self.similarity_ = sp.csr_matrix(
            (state["similarity.data"], state["similarity.indices"], indptr), shape=(n, n)
        )
