"""EASE: Embarrassingly Shallow Autoencoder (Steck, WWW 2019), closed form.

``B = I - P diagMat(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1`` and ``diag(B) = 0``
(paper eq. 8). Scores for a user are ``x_u B``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genrec.config import ModelConfig, field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.models.base import ScoringRecommender
from genrec.registry import register_model


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    """Config of :class:`EASE`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "l2": {"type": "float", "low": 1.0, "high": 20000.0, "log": True},
    }

    l2: float = field(500.0, "L2 regularisation lambda added to the Gram matrix diagonal")
    max_items: int = field(
        60_000, "refuse catalogues larger than this (the item x item matrix is dense)"
    )

    def validate(self) -> None:
        self.positive("l2", "max_items")


@register_model("ease")
class EASE(ScoringRecommender):
    """Closed-form linear item-item model; scores ``x_u B`` from the user's history row."""

    deterministic = True
    config_class = EASEConfig
    config: EASEConfig

    def _fit(self, dataset: Dataset, valid: object) -> None:
        n = dataset.n_items
        if n > self.config.max_items:
            raise MemoryError(
                f"EASE needs a dense {n}x{n} matrix; catalogue exceeds max_items="
                f"{self.config.max_items}. Raise it if you have the memory."
            )
        X = dataset.matrix(binary=True)[:, 1:]  # (U+1, n) drop padding column
        gram = torch.from_numpy((X.T @ X).toarray().astype(np.float64))  # (n, n)
        gram.diagonal().add_(self.config.l2)
        P = torch.cholesky_inverse(torch.linalg.cholesky(gram))  # (n, n), SPD inverse
        B = P / (-P.diagonal())[None, :]
        B.diagonal().zero_()
        # cholesky_inverse returns a column-major result: make rows contiguous, or the
        # row gathers in _score run ~30x slower
        self.B_ = B.to(torch.float32).contiguous()  # (n, n)

    def _score(self, batch: HistoryBatch) -> torch.Tensor:
        # x_u B for binary x_u = the sum of B's rows over the history (embedding_bag is a
        # multithreaded gather-sum, much faster than a sparse-dense product here)
        X = batch.matrix
        cols = torch.from_numpy(X.indices.astype(np.int64) - 1)  # drop the padding offset
        offsets = torch.from_numpy(X.indptr[:-1].astype(np.int64))
        scores = torch.nn.functional.embedding_bag(cols, self.B_, offsets, mode="sum")  # (B, n)
        return torch.nn.functional.pad(scores, (1, 0))  # (B, n+1), padding column 0

    def _state_dict(self) -> dict[str, np.ndarray]:
        return {"B": self.B_.numpy()}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.B_ = torch.from_numpy(state["B"])
