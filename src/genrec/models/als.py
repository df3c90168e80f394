"""ALS: implicit-feedback matrix factorisation (Hu, Koren & Volinsky, ICDM 2008).

Training wraps :class:`implicit.cpu.als.AlternatingLeastSquares` (the optional extra
``genrec[als]``). The confidence of an observed pair is ``c_ui = 1 + alpha * w_ui`` with
``w_ui`` the interaction weight (summed over repeats), optionally BM25-reweighted first;
unobserved pairs have confidence 1 and preference 0. We hand ``implicit`` the confidences
directly (its own ``alpha`` stays 1), because ``implicit`` uses a matrix value as the
confidence itself, not as ``1 + alpha * value``.

Scoring is ``u . v_i`` and needs only numpy/torch, so a saved model loads and scores without
``implicit`` installed:

* known users (``batch.user_ids > 0``) use their fitted factors ``u`` (so a ``history=``
  passed to ``recommend`` only changes which items are filtered as seen, not the factors);
* ad-hoc histories (``batch.user_ids == 0``, :meth:`~genrec.models.base.Recommender.
  recommend_for_history`) are *folded in* with our own exact least-squares solve against the
  fixed item factors ``Y``::

      u = (Y^T Y + reg I + sum_i (c_i - 1) y_i y_i^T)^-1  sum_i c_i y_i

  which is the same normal equation ``implicit``'s ``recalculate_user=True`` path solves
  (Cholesky), written in numpy so that it works after loading without ``implicit``.
  An empty ad-hoc history gets ``u = 0`` (all scores 0; ties fall to lower item ids).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from genrec.config import ModelConfig, field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError, require_extra
from genrec.models.base import ScoringRecommender
from genrec.registry import register_model


@dataclass(frozen=True)
class ALSConfig(ModelConfig):
    """Config of :class:`ALS`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    # old config keys that still load, with a DeprecatedKeyWarning
    RENAMED = {"factors": "embedding_dim"}
    SEARCH_SPACE = {
        "embedding_dim": {"type": "int", "low": 16, "high": 256, "log": True},
        "regularization": {"type": "float", "low": 1e-4, "high": 10.0, "log": True},
        "alpha": {"type": "float", "low": 0.1, "high": 100.0, "log": True},
        "iterations": {"type": "int", "low": 5, "high": 30},
    }

    embedding_dim: int = field(64, "latent dimension of user and item factors")
    regularization: float = field(0.01, "L2 penalty on the factors (lambda)")
    alpha: float = field(1.0, "confidence slope: c_ui = 1 + alpha * weight_ui")
    iterations: int = field(15, "ALS sweeps (users then items)")
    weighting: Literal["none", "bm25"] = field(
        "none", "reweight interactions before the confidence: 'none' or 'bm25'"
    )
    bm25_k1: float = field(100.0, "BM25 K1 (term-frequency saturation), with weighting='bm25'")
    bm25_b: float = field(0.8, "BM25 B (history-length normalisation), with weighting='bm25'")
    num_threads: int = field(0, "threads for implicit's solver; 0 = all cores")
    use_cg: bool = field(True, "conjugate-gradient solver (fast); false = exact Cholesky")

    def validate(self) -> None:
        self.positive("embedding_dim", "iterations")
        self.positive("regularization", "alpha", "bm25_k1", "num_threads", allow_zero=True)
        if not 0.0 <= self.bm25_b <= 1.0:
            raise ConfigError(f"ALSConfig.bm25_b must be in [0, 1], got {self.bm25_b!r}")


def bm25_weights(
    X: sp.csr_matrix, idf: np.ndarray, avg_len: float, k1: float, b: float
) -> sp.csr_matrix:
    """BM25 reweighting of a user-item matrix (items are terms, users are documents).

    Same formula as ``implicit.nearest_neighbours.bm25_weight``, but with ``idf`` and the
    average history length given (fitted on training data), so new rows are weighted
    consistently. Negative weights (items seen by most users) are clipped to 0.

    Args:
        X: ``(R, n_items + 1)`` CSR weights.
        idf: ``(n_items + 1,)`` inverse document frequencies.
        avg_len: mean row sum of the training matrix.
        k1, b: BM25 parameters.

    Returns:
        A reweighted float32 copy of ``X``.
    """
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    row_sums = np.asarray(X.sum(axis=1)).ravel()  # (R,)
    length_norm = (1.0 - b) + b * row_sums / max(avg_len, 1e-12)  # (R,)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    X.data = X.data * (k1 + 1.0) / (k1 * length_norm[rows] + X.data) * idf[X.indices]
    np.maximum(X.data, 0.0, out=X.data)
    return X.astype(np.float32)


@register_model("als")
class ALS(ScoringRecommender):
    """Implicit ALS matrix factorisation (training through ``implicit``; see module docs)."""

    summary = (
        "Implicit-feedback matrix factorisation by alternating least squares (implicit package)."
    )

    fresh_scores = True  # _score builds a new tensor per call (rank masks it in place)
    config_class = ALSConfig
    config: ALSConfig
    requires = {"implicit": "als"}

    def item_embeddings(self) -> np.ndarray | None:
        """The item factors ``(n_items + 1, factors)`` float32 (row 0 zeros)."""
        factors = getattr(self, "item_factors_", None)
        return None if factors is None else np.asarray(factors, dtype=np.float32).copy()

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, valid: object) -> None:
        require_extra("implicit", "als")
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        cfg = self.config
        W = dataset.matrix(binary=False).astype(np.float32)  # (U + 1, n + 1) weights
        if cfg.weighting == "bm25":
            users = W[1:]  # (U, n + 1) without the padding row
            df = np.bincount(users.indices, minlength=W.shape[1]).astype(np.float64)
            self.bm25_idf_ = (np.log(users.shape[0]) - np.log1p(df)).astype(np.float64)
            self.bm25_avg_len_ = float(np.asarray(users.sum(axis=1)).mean())
            W = bm25_weights(W, self.bm25_idf_, self.bm25_avg_len_, cfg.bm25_k1, cfg.bm25_b)
        C = self._confidence(W)[1:, 1:].tocsr()  # (U, n) drop padding row/column
        threads = cfg.num_threads or (os.cpu_count() or 1)
        # implicit parallelises over users itself; a multi-threaded BLAS inside its threads
        # oversubscribes the cores (and implicit warns about it), so pin BLAS to 1 thread.
        with threadpool_limits(limits=1, user_api="blas"):
            als = AlternatingLeastSquares(
                factors=cfg.embedding_dim,
                regularization=cfg.regularization,
                alpha=1.0,  # confidences are computed above
                dtype=np.float32,
                use_cg=cfg.use_cg,
                iterations=cfg.iterations,
                num_threads=threads,
                random_state=int(cfg.seed) % 2**32,
            )
            als.fit(C, show_progress=False)
        f = cfg.embedding_dim
        user_factors = np.zeros((W.shape[0], f), dtype=np.float32)  # (U + 1, f), row 0 = pad
        item_factors = np.zeros((W.shape[1], f), dtype=np.float32)  # (n + 1, f), row 0 = pad
        user_factors[1:] = np.asarray(als.user_factors, dtype=np.float32)
        item_factors[1:] = np.asarray(als.item_factors, dtype=np.float32)
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors

    def _confidence(self, W: sp.csr_matrix) -> sp.csr_matrix:
        """``1 + alpha * w`` on the non-zeros of ``W`` (float32 copy)."""
        C = sp.csr_matrix(W, dtype=np.float32, copy=True)
        C.data = (1.0 + self.config.alpha * C.data).astype(np.float32)
        return C

    # ------------------------------------------------------------------ scoring
    def fold_in(self, matrix: sp.csr_matrix) -> np.ndarray:
        """Least-squares user factors for history rows, item factors fixed.

        Args:
            matrix: ``(R, n_items + 1)`` CSR history weights (as in :class:`HistoryBatch`).

        Returns:
            ``(R, factors)`` float32 user factors (zeros for empty rows).
        """
        W = sp.csr_matrix(matrix, dtype=np.float32)
        if self.config.weighting == "bm25":
            W = bm25_weights(
                W, self.bm25_idf_, self.bm25_avg_len_, self.config.bm25_k1, self.config.bm25_b
            )
        C = self._confidence(W)
        Y = self.item_factors_.astype(np.float64)  # (n + 1, f); row 0 is zero
        f = Y.shape[1]
        base = Y.T @ Y + self.config.regularization * np.eye(f)  # (f, f)
        out = np.zeros((C.shape[0], f), dtype=np.float32)
        for r in range(C.shape[0]):
            lo, hi = C.indptr[r], C.indptr[r + 1]
            if lo == hi:
                continue
            Yr = Y[C.indices[lo:hi]]  # (n_r, f)
            c = C.data[lo:hi].astype(np.float64)  # (n_r,)
            A = base + (Yr * (c - 1.0)[:, None]).T @ Yr  # (f, f)
            b = Yr.T @ c  # (f,)
            out[r] = np.linalg.solve(A, b)
        return out

    def _score(self, batch: HistoryBatch) -> torch.Tensor:
        uids = np.asarray(batch.user_ids, dtype=np.int64)
        U = self.user_factors_[uids]  # (B, f); row 0 (ad-hoc) replaced below
        adhoc = uids == 0
        if adhoc.any():
            U = U.copy()
            U[adhoc] = self.fold_in(batch.matrix[np.flatnonzero(adhoc)])
        return torch.from_numpy(U) @ torch.from_numpy(self.item_factors_).T  # (B, n + 1)

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        state = {"user_factors": self.user_factors_, "item_factors": self.item_factors_}
        if self.config.weighting == "bm25":
            state["bm25_idf"] = np.asarray(self.bm25_idf_, dtype=np.float64)
            state["bm25_avg_len"] = np.asarray([self.bm25_avg_len_], dtype=np.float64)
        return state

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.user_factors_ = np.asarray(state["user_factors"], dtype=np.float32)
        self.item_factors_ = np.asarray(state["item_factors"], dtype=np.float32)
        if self.user_factors_.shape[1] != self.config.embedding_dim:
            raise ValueError(
                f"user_factors have {self.user_factors_.shape[1]} columns, config says "
                f"factors={self.config.embedding_dim}"
            )
        if self.config.weighting == "bm25":
            self.bm25_idf_ = np.asarray(state["bm25_idf"], dtype=np.float64)
            self.bm25_avg_len_ = float(state["bm25_avg_len"][0])
