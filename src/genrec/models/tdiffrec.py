"""T-DiffRec: DiffRec with time-aware reweighting (Wang et al., SIGIR 2023, Sec. 3.6).

Identical to :class:`~genrec.models.diffrec.DiffRec` except for the row the diffusion runs
on: instead of a binary row, interaction ``j`` of a user's chronological history of ``n``
items gets the weight ``w_j = w_min + (w_max - w_min) * (j - 1) / (n - 1)`` (paper Eq. 17,
the reference code's ``np.linspace(w_min, w_max, n)``): recent interactions count more.
The same weights are used for training rows and for the history rows denoised at inference
(so at test time the validation item, the most recent, gets ``w_max``).

Documented choices: a history of one item gets ``w_max`` (it is the most recent; the
reference code's ``linspace`` would give ``w_min``); an item repeated in the history keeps
its most recent (largest) weight instead of the reference code's sum. Without real
timestamps the history order (as given) defines recency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError
from genrec.models.ae_common import csr_to_dense
from genrec.models.diffrec import DiffRec, DiffRecConfig
from genrec.registry import register_model


@dataclass(frozen=True)
class TDiffRecConfig(DiffRecConfig):
    """Config of :class:`TDiffRec`: DiffRec's fields plus the weight range."""

    w_min: float = field(0.1, "weight of the oldest interaction (Eq. 17)")
    w_max: float = field(1.0, "weight of the most recent interaction (Eq. 17)")

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.w_min <= self.w_max:
            raise ConfigError(
                f"TDiffRecConfig needs 0 <= w_min <= w_max, got w_min={self.w_min}, "
                f"w_max={self.w_max}"
            )


def recency_weights(lengths: np.ndarray, w_min: float, w_max: float) -> np.ndarray:
    """Per-interaction weights, linear in the position within each history (Eq. 17).

    Args:
        lengths: ``(U,)`` history lengths; interactions are concatenated in order.

    Returns:
        ``(sum(lengths),)`` float32; a length-1 history gets ``w_max``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(int(lengths.sum())) - starts  # 0-based position in its history
    n = np.repeat(lengths, lengths)
    frac = np.where(n > 1, pos / np.maximum(n - 1, 1), 1.0)
    return (w_min + (w_max - w_min) * frac).astype(np.float32)


def recency_matrix(
    seq_indptr: np.ndarray, seq_items: np.ndarray, n_cols: int, w_min: float, w_max: float
) -> sp.csr_matrix:
    """CSR ``(U, n_cols)`` of recency weights; a repeated item keeps its latest weight."""
    lengths = np.diff(seq_indptr)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    w = recency_weights(lengths, w_min, w_max)
    # the latest occurrence has the largest weight: keep the max per (row, item)
    order = np.lexsort((w, seq_items, rows))
    r, c, v = rows[order], seq_items[order], w[order]
    last = np.ones(len(r), dtype=bool)
    if len(r) > 1:
        last[:-1] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    return sp.csr_matrix((v[last], (r[last], c[last])), shape=(len(lengths), n_cols))


@register_model("tdiffrec")
class TDiffRec(DiffRec):
    """T-DiffRec (Wang et al. 2023, Sec. 3.6); see the module docstring."""

    summary = "DiffRec with the user's interactions weighted by recency (Wang et al. 2023)."

    config_class = TDiffRecConfig
    config: TDiffRecConfig  # type: ignore[assignment]

    def _training_matrix(self, dataset: Dataset) -> sp.csr_matrix:
        h = dataset.histories()
        return recency_matrix(
            h.seq_indptr, h.seq_items, self.n_items + 1, self.config.w_min, self.config.w_max
        )

    def _input_rows(self, batch: HistoryBatch) -> torch.Tensor:
        mat = recency_matrix(
            batch.seq_indptr, batch.seq_items, self.n_items + 1,
            self.config.w_min, self.config.w_max,
        )  # fmt: skip
        return csr_to_dense(mat, self.device_, binary=False)  # (B, n_items)
