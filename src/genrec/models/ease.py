"""EASE: Embarrassingly Shallow Autoencoder (Steck, WWW 2019), closed form.

``B = I - P diagMat(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1`` and ``diag(B) = 0``
(paper eq. 8). Scores for a user are ``x_u B``.

The fit is sized for the one machine it runs on: one dense ``n x n`` float32 matrix holds,
in turn, the Gram matrix (filled from the sparse user-item matrix a block of rows at a
time), its Cholesky factor and ``P`` (LAPACK ``spotrf``/``spotri`` in place), and finally
``B``. Before allocating it, the fit compares what it needs with the memory available
(``MemAvailable`` in ``/proc/meminfo``, or ``memory_limit_gb``) and raises
:class:`~genrec.errors.InsufficientMemoryError` when it would not fit.

``storage`` chooses how ``B`` is kept after the fit (and in the artifact): ``dense`` (exact,
``4 n^2`` bytes), ``float16`` (half the artifact; weights rounded to float16) or ``topn``
(the ``topn`` largest-magnitude weights of each row as a sparse matrix, ``8 n topn`` bytes).
docs/models.md (EASE) measures what the compact forms cost in accuracy.
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
from genrec.errors import ArtifactError, ConfigError, InsufficientMemoryError
from genrec.models.base import ScoringRecommender
from genrec.registry import register_model

Storage = Literal["dense", "float16", "topn"]
_GIB = 1024**3
# scratch for one block of the sparse Gram product (the CSR block before densifying)
_BLOCK_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    """Config of :class:`EASE`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "l2": {"type": "float", "low": 1.0, "high": 20000.0, "log": True},
    }

    l2: float = field(500.0, "L2 regularisation lambda added to the Gram matrix diagonal")
    max_items: int | None = field(
        None,
        "optional hard cap on the catalogue size; None: no cap, the fit is sized from the "
        "memory it needs and the memory available",
    )
    memory_limit_gb: float | None = field(
        None, "memory (GiB) the fit may use; None: MemAvailable from /proc/meminfo"
    )
    storage: Storage = field(
        "dense",
        "how B is kept after the fit and in the artifact: 'dense' (exact float32), "
        "'float16' (half size) or 'topn' (the topn largest-magnitude weights per item)",
    )
    topn: int = field(200, "weights kept per item with storage='topn'")

    def validate(self) -> None:
        self.positive("l2", "topn")
        if self.max_items is not None:
            self.positive("max_items")
        if self.memory_limit_gb is not None:
            self.positive("memory_limit_gb")


def available_memory() -> int:
    """Bytes of memory available to a new allocation without swapping.

    ``MemAvailable`` from ``/proc/meminfo`` (Linux); elsewhere the free physical pages
    (``os.sysconf``); as a last resort the total physical memory.
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    page = os.sysconf("SC_PAGE_SIZE")
    for name in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return int(os.sysconf(name)) * page
        except (ValueError, OSError):  # pragma: no cover - platform dependent
            continue
    return 1 << 62  # pragma: no cover - unknown: do not refuse


def fit_memory(n_items: int, nnz: int, storage: str = "dense", topn: int = 200) -> int:
    """Bytes the EASE fit needs for ``n_items`` items and ``nnz`` interactions.

    One dense float32 ``n x n`` matrix, the sparse matrix in two layouts (CSR, CSC), one
    block of the sparse Gram product, and for ``storage='topn'`` the kept weights and the
    selection scratch of one block of rows.
    """
    n = int(n_items)
    dense = 4 * n * n
    sparse = 2 * 12 * int(nnz)  # CSR + CSC: float32 data, int32/int64 indices
    block = min(_BLOCK_BYTES, 12 * n * n)
    extra = 0
    if storage == "topn":
        extra = 12 * n * min(topn, n) + min(_BLOCK_BYTES, 12 * n * n)
    return dense + sparse + block + extra + (64 << 20)


@register_model("ease")
class EASE(ScoringRecommender):
    """Closed-form linear item-item model; scores ``x_u B`` from the user's history row."""

    deterministic = True
    fresh_scores = True  # _score builds a new tensor per call (rank masks it in place)
    config_class = EASEConfig
    config: EASEConfig

    # ------------------------------------------------------------------ fit
    def _fit(self, dataset: Dataset, valid: object) -> None:
        cfg = self.config
        n = dataset.n_items
        if cfg.max_items is not None and n > cfg.max_items:
            raise ConfigError(
                f"EASE: the catalogue has {n} items, more than max_items={cfg.max_items}; "
                "raise or unset max_items (the fit checks the memory it needs by itself)"
            )
        self._check_memory(n, dataset.n_interactions)  # before building anything
        X = dataset.matrix(binary=True)[:, 1:].astype(np.float32, copy=False)  # (U+1, n)
        G = gram_matrix(X)  # (n, n) float32, C order
        del X
        G.flat[:: n + 1] += np.float32(cfg.l2)
        ease_weights_inplace(G)  # G now holds B
        self._set_weights(G)

    def _check_memory(self, n: int, nnz: int) -> None:
        cfg = self.config
        need = fit_memory(n, nnz, cfg.storage, cfg.topn)
        if cfg.memory_limit_gb is not None:
            have, source = int(cfg.memory_limit_gb * _GIB), f"memory_limit_gb={cfg.memory_limit_gb}"
        else:
            have, source = available_memory(), "MemAvailable in /proc/meminfo"
        if need > have:
            raise InsufficientMemoryError(
                f"EASE on {n:,} items needs about {need / _GIB:.1f} GiB (one dense "
                f"{n:,}x{n:,} float32 matrix is {4 * n * n / _GIB:.1f} GiB) but only "
                f"{have / _GIB:.1f} GiB are available ({source}). Shrink the catalogue "
                "(genrec.data.preprocess(dataset, item_core=k)), free memory, or use a "
                "sparse model (itemknn, als)"
            )

    def _set_weights(self, B: np.ndarray) -> None:
        """Keep ``B`` (n, n) in the configured storage; may reuse ``B``'s memory."""
        storage = self.config.storage
        self.topn_, self._topn_csr = None, None
        if storage == "topn":
            self.topn_ = topn_rows(B, self.config.topn)
            self.B_ = None
            return
        if storage == "float16":  # round in place: scoring sees what the artifact holds
            for r0, r1 in _row_blocks(B.shape[0], B.shape[1] * 4):
                B[r0:r1] = B[r0:r1].astype(np.float16)
        self.B_ = torch.from_numpy(B)  # (n, n) row-major: _score gathers rows

    # ------------------------------------------------------------------ scoring
    def _score(self, batch: HistoryBatch) -> torch.Tensor:
        X = batch.matrix
        if self.topn_ is not None:
            # x_u B with a sparse B: a sparse product over the binary history rows
            rows = sp.csr_matrix(
                (np.ones(X.nnz, dtype=np.float32), X.indices - 1, X.indptr),
                shape=(X.shape[0], X.shape[1] - 1),
            )
            scores = torch.from_numpy((rows @ self._topn_matrix()).toarray())  # (B, n)
            return torch.nn.functional.pad(scores, (1, 0))
        # x_u B for binary x_u = the sum of B's rows over the history (embedding_bag is a
        # multithreaded gather-sum, much faster than a sparse-dense product here)
        cols = torch.from_numpy(X.indices.astype(np.int64) - 1)  # drop the padding offset
        offsets = torch.from_numpy(X.indptr[:-1].astype(np.int64))
        scores = torch.nn.functional.embedding_bag(cols, self.B_, offsets, mode="sum")  # (B, n)
        return torch.nn.functional.pad(scores, (1, 0))  # (B, n+1), padding column 0

    def _topn_matrix(self) -> sp.csr_matrix:
        if getattr(self, "_topn_csr", None) is None:
            idx, val = self.topn_
            n, k = idx.shape
            self._topn_csr = sp.csr_matrix(
                (val.reshape(-1), idx.reshape(-1), np.arange(0, n * k + 1, k, dtype=np.int64)),
                shape=(n, n),
            )
        return self._topn_csr

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        if self.topn_ is not None:
            return {"topn_indices": self.topn_[0], "topn_values": self.topn_[1]}
        B = self.B_.numpy()
        if self.config.storage == "float16":
            return {"B_float16": B.astype(np.float16)}
        return {"B": B}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.topn_, self._topn_csr, self.B_ = None, None, None
        if "topn_indices" in state:
            idx, val = state["topn_indices"], state["topn_values"]
            if idx.shape != val.shape or idx.ndim != 2:
                raise ArtifactError(f"EASE top-n arrays disagree: {idx.shape} vs {val.shape}")
            self.topn_ = (idx.astype(np.int32), val.astype(np.float32))
        elif "B_float16" in state:
            self.B_ = torch.from_numpy(state["B_float16"].astype(np.float32))
        else:
            self.B_ = torch.from_numpy(state["B"])


# ---------------------------------------------------------------------- building blocks
def _row_blocks(n_rows: int, row_bytes: int, budget: int = _BLOCK_BYTES):
    """``(start, stop)`` row ranges whose blocks take about ``budget`` bytes."""
    step = max(1, budget // max(1, row_bytes))
    for r0 in range(0, n_rows, step):
        yield r0, min(n_rows, r0 + step)


def gram_matrix(X: sp.csr_matrix) -> np.ndarray:
    """Dense ``X^T X`` as float32 ``(n, n)``, C order, from a sparse ``(U, n)`` matrix.

    Built a block of rows at a time (``X[:, block]^T X``, sparse, then densified into its
    rows), so the sparse intermediate never exceeds one block.
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    n = X.shape[1]
    Xt = X.T.tocsr()  # (n, U): row j lists the users of item j
    G = np.empty((n, n), dtype=np.float32)
    for r0, r1 in _row_blocks(n, 12 * n):  # 12 bytes per sparse entry at worst
        (Xt[r0:r1] @ X).toarray(out=G[r0:r1])
    return G


def ease_weights_inplace(A: np.ndarray) -> np.ndarray:
    """Turn ``A = X^T X + lambda I`` (float32, C order, SPD) into EASE's ``B``, in place.

    ``P = A^-1`` by Cholesky (LAPACK ``spotrf`` then ``spotri``, both overwriting ``A``),
    then ``B = -P / diag(P)`` column-wise with a zero diagonal (Steck 2019, eq. 8). Peak
    memory: ``A`` itself plus one block of rows.

    Raises:
        ConfigError: when ``A`` is not positive definite in float32 (lambda too small).
    """
    from scipy.linalg import lapack

    n = A.shape[0]
    if A.dtype != np.float32 or not A.flags.c_contiguous or A.shape != (n, n):
        raise ValueError("ease_weights_inplace needs a square C-ordered float32 matrix")
    # A.T is the same matrix in Fortran order: LAPACK works on it without copying. Its
    # lower triangle is A's upper triangle.
    F = A.T
    c, info = lapack.spotrf(F, lower=1, clean=0, overwrite_a=1)
    if info > 0:
        raise ConfigError(
            f"EASE: X^T X + l2 I is not positive definite in float32 (leading minor {info}); "
            "raise l2"
        )
    if info < 0 or not np.shares_memory(c, A):  # pragma: no cover - LAPACK contract
        raise RuntimeError(f"spotrf failed (info={info}) or copied its input")
    c, info = lapack.spotri(c, lower=1, overwrite_c=1)
    if info != 0 or not np.shares_memory(c, A):  # pragma: no cover
        raise RuntimeError(f"spotri failed (info={info}) or copied its input")
    # P sits in A's upper triangle: mirror it into the lower one, a block of rows at a time
    for r0, r1 in _row_blocks(n, 4 * n):
        A[r0:r1, :r0] = A[:r0, r0:r1].T
        blk = A[r0:r1, r0:r1]
        low = np.tril_indices(r1 - r0, -1)
        blk[low] = blk.T[low]
    scale = (-1.0 / A.diagonal()).astype(np.float32)  # (n,) -1 / P_jj
    for r0, r1 in _row_blocks(n, 4 * n):
        A[r0:r1] *= scale[None, :]
    A.flat[:: n + 1] = 0.0
    return A


def topn_rows(B: np.ndarray, topn: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``topn`` largest-magnitude entries of each row of ``B`` (deterministic).

    Returns:
        ``(indices, values)``, both ``(n, min(topn, n))``: int32 columns, sorted by column
        within a row, and their float32 values.
    """
    n, m = B.shape
    k = min(topn, m)
    indices = np.empty((n, k), dtype=np.int32)
    values = np.empty((n, k), dtype=np.float32)
    for r0, r1 in _row_blocks(n, 12 * m):
        blk = np.abs(B[r0:r1])
        if k < m:
            part = np.argpartition(-blk, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(m), (r1 - r0, m))
        part = np.sort(part, axis=1)
        indices[r0:r1] = part
        values[r0:r1] = np.take_along_axis(B[r0:r1], part, axis=1)
    return indices, values
