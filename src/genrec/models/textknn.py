"""TextKNN: content-based recommendations from item text embeddings (no interactions needed).

Each item's text (title, brand, categories, price, year, description; the template of
:mod:`genrec.text.items`) is encoded once into an L2-normalised vector ``v_i`` by a
:mod:`genrec.text.encoders` backend: ``minilm`` (all-MiniLM-L6-v2 sentence embeddings,
extra ``text``) or ``tfidf`` (lexical TF-IDF, optionally LSA-reduced; numpy/scipy only).
``auto`` uses ``minilm`` when its extra is importable, else ``tfidf``; the encoder actually
used is recorded in ``encoder_`` and the artifact's training info.

A user with chronological history ``h_1..h_L`` (the last ``recent`` items when set) and
recency weights ``w_j = 0.5 ** ((L - j) / recency_halflife)`` (all 1 when the half-life is 0)
scores item ``i`` by

- ``centroid``: ``cos(sum_j w_j v_{h_j}, v_i)``, the similarity to the weighted history
  centroid (Rocchio-style profile; Lops et al., "Content-based Recommender Systems", 2011);
- ``max``: ``max_j w_j cos(v_{h_j}, v_i)``, the best match over history items (item-based
  kNN on content similarity).

Cold start: the catalogue is the model's item id map, and an item needs only its text, not
interactions, to be scored. An item that nobody interacted with in training (present in
``dataset.items`` and the id map, e.g. a new product) is recommended like any other.
Items without any metadata get a zero vector (score 0); if no item has text, ``fit`` raises.
A user whose history items all lack text is ranked by popularity (like an empty history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genrec.config import ModelConfig, field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import NotFittedError
from genrec.models.base import ScoringRecommender, check_k
from genrec.registry import register_model
from genrec.text.encoders import (
    TextEncoder,
    item_text_vectors,
    make_encoder,
    normalize_rows,
    resolve_encoder,
    to_dense,
)
from genrec.text.search import similar_items_frame

# History-item x catalogue similarities computed at once by the ``max`` aggregation.
_BLOCK_ELEMENTS = 2**23


@dataclass(frozen=True)
class TextKNNConfig(ModelConfig):
    """Config of :class:`TextKNN`."""

    encoder: Literal["auto", "minilm", "tfidf"] = field(
        "auto",
        "text encoder: 'minilm' (extra text), 'tfidf' (lexical), 'auto' (minilm if installed)",
    )
    aggregation: Literal["centroid", "max"] = field(
        "centroid", "user score: cosine to the history centroid, or max cosine over history items"
    )
    recent: int = field(0, "use only the last N history items (0 = all)")
    recency_halflife: float = field(
        0.0, "weight of a history item halves every this many newer items (0 = equal weights)"
    )
    min_df: int = field(1, "tfidf: a word must occur in at least this many item texts")
    svd_dim: int = field(0, "tfidf: truncated-SVD (LSA) dimension; 0 keeps sparse TF-IDF vectors")
    num_threads: int = field(0, "minilm: torch threads for embedding (0 = idle cores)")
    progress: bool = field(True, "minilm: show a progress bar while embedding the catalogue")

    def validate(self) -> None:
        self.positive("recent", "recency_halflife", "svd_dim", "num_threads", allow_zero=True)
        self.positive("min_df")


@register_model("textknn")
class TextKNN(ScoringRecommender):
    """Content-based kNN over item text vectors (module docstring).

    Attributes (after ``fit``):
        encoder_: the fitted :class:`~genrec.text.encoders.TextEncoder`.
        item_vectors_: ``(n_items + 1, d)`` L2-normalised, dense float32 or CSR; row 0 and
            items without text are zero.
        has_text_: ``(n_items + 1,)`` bool, items with metadata.
    """

    summary = (
        "Nearest neighbours by item text (TF-IDF or MiniLM); recommends items nobody has used yet."
    )

    deterministic = True
    config_class = TextKNNConfig
    config: TextKNNConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.encoder_: TextEncoder | None = None
        self.item_vectors_: np.ndarray | sp.csr_matrix | None = None
        self.has_text_: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting
    def _make_encoder(self, name: str) -> TextEncoder:
        cfg = self.config
        return make_encoder(
            name,
            min_df=cfg.min_df,
            svd_dim=cfg.svd_dim,
            seed=cfg.seed,
            num_threads=cfg.num_threads,
            progress=cfg.progress,
        )

    def _fit(self, dataset: Dataset, valid: object) -> None:
        encoder = self._make_encoder(resolve_encoder(self.config.encoder))
        vectors, has_text, n_missing = item_text_vectors(dataset, encoder)
        self.encoder_, self.item_vectors_, self.has_text_ = encoder, vectors, has_text
        self.training_info_ = {
            **encoder.describe(),
            "items_with_text": int(has_text.sum()),
            "items_without_text": int(n_missing),
        }

    def text_vectors(self) -> tuple[TextEncoder, np.ndarray | sp.csr_matrix, np.ndarray]:
        """The fitted encoder, the item vectors and the has-text mask (free-text search
        reuses them: :meth:`genrec.text.search.ItemTextIndex.from_model`)."""
        self._check_vectors()
        return self.encoder_, self.item_vectors_, self.has_text_  # type: ignore[return-value]

    @property
    def encoder_name(self) -> str:
        """The encoder actually used (``"minilm"`` or ``"tfidf"``)."""
        self._check_vectors()
        return self.encoder_.name  # type: ignore[union-attr]

    def _check_vectors(self) -> None:
        if self.item_vectors_ is None:
            raise NotFittedError("TextKNN is not fitted: call fit(dataset) first")

    # ------------------------------------------------------------------ scoring
    def _history_weights(self, batch: HistoryBatch) -> sp.csr_matrix:
        """``(B, n_items + 1)`` weights of each row's (recent) history items."""
        cfg = self.config
        lens = np.diff(batch.seq_indptr)  # (B,)
        rows = np.repeat(np.arange(len(batch)), lens)
        # position from the end: 0 for the newest item of each history
        from_end = np.repeat(batch.seq_indptr[1:], lens) - 1 - np.arange(len(batch.seq_items))
        keep = from_end < cfg.recent if cfg.recent > 0 else np.ones(len(rows), dtype=bool)
        w = np.ones(len(rows), dtype=np.float32)
        if cfg.recency_halflife > 0:
            w = (0.5 ** (from_end / cfg.recency_halflife)).astype(np.float32)
        items = batch.seq_items.astype(np.int64)
        shape = (len(batch), self.n_items + 1)
        if cfg.aggregation == "max":  # a repeated item keeps its largest (newest) weight
            return _rowwise_max(rows[keep], items[keep], w[keep], shape)
        W = sp.csr_matrix((w[keep], (rows[keep], items[keep])), shape=shape)  # repeats add up
        W.sum_duplicates()
        return W

    def _score(self, batch: HistoryBatch) -> np.ndarray:
        self._check_vectors()
        V = self.item_vectors_
        W = self._history_weights(batch)  # (B, N)
        W = W.multiply(self.has_text_[None, :]).tocsr()  # items without text carry no signal
        W.eliminate_zeros()
        if self.config.aggregation == "centroid":
            profile = normalize_rows(W @ V)  # (B, d) weighted centroid, unit length
            scores = self._cosines(profile)  # (B, N) cosine to every item
        else:
            scores = self._max_scores(W)
        # no text signal at all (history items without text): popularity, as for empty histories
        blank = np.diff(W.indptr) == 0
        if blank.any():
            pop = np.asarray(self.item_popularity_, dtype=np.float32)
            scores[blank] = pop / max(float(pop.max()), 1.0)
        return scores

    def _cosines(self, profile: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """``profile @ V.T`` as dense ``(B, N)``. For sparse TF-IDF vectors the profiles are
        made dense in row blocks and multiplied as ``V @ P.T`` (sparse x dense), about twice
        as fast as a sparse x sparse product whose result is dense anyway."""
        V = self.item_vectors_
        if not sp.issparse(V):
            return to_dense(profile @ V.T)
        out = np.empty((profile.shape[0], V.shape[0]), dtype=np.float32)
        rows = max(1, _BLOCK_ELEMENTS // max(V.shape[1], 1))
        for start in range(0, profile.shape[0], rows):
            block = to_dense(profile[start : start + rows])  # (b, V)
            out[start : start + rows] = np.asarray(V @ block.T).T  # (b, N)
        return out

    def _max_scores(self, W: sp.csr_matrix) -> np.ndarray:
        """``max_j w_j cos(v_{h_j}, v_i)`` per row, in blocks of history items."""
        V = self.item_vectors_
        N = W.shape[1]
        out = np.zeros(W.shape, dtype=np.float32)
        block = max(1, _BLOCK_ELEMENTS // N)
        row_of = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))  # (nnz,)
        filled = np.zeros(W.shape[0], dtype=bool)
        for start in range(0, W.nnz, block):
            sl = slice(start, start + block)
            items, rows, w = W.indices[sl], row_of[sl], W.data[sl]
            sims = to_dense(V[items] @ V.T) * w[:, None]  # (b, N)
            # segments of equal row (nnz entries are grouped by row)
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            seg_max = np.maximum.reduceat(sims, starts, axis=0)  # (segments, N)
            seg_rows = rows[starts]
            first = ~filled[seg_rows]
            out[seg_rows[first]] = seg_max[first]
            out[seg_rows[~first]] = np.maximum(out[seg_rows[~first]], seg_max[~first])
            filled[seg_rows] = True
        return out

    # ------------------------------------------------------------------ item-to-item
    def similar_items(self, item_ids: Any, k: int = 10) -> pd.DataFrame:
        """The ``k`` items most text-similar to each of ``item_ids`` (itself excluded).

        Works for items without interactions (cold items) as long as they have text.

        Returns:
            Long DataFrame ``query_item_id, rank, item_id, score, title`` (ranks from 1).

        Raises:
            UnknownIdError: an id not in the catalogue.
            DataValidationError: a query item has no text.
        """

        self._check_fitted()
        check_k(k)
        return similar_items_frame(
            self.item_vectors_, self.has_text_, self.item_map, self.item_titles_, item_ids, k
        )

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        self._check_vectors()
        V = self.item_vectors_
        state = {
            "encoder": np.frombuffer(self.encoder_.name.encode(), dtype=np.uint8),  # type: ignore[union-attr]
            "has_text": self.has_text_.astype(np.uint8),  # type: ignore[union-attr]
        }
        if sp.issparse(V):
            state.update(
                {
                    "vectors.data": V.data.astype(np.float32),
                    "vectors.indices": V.indices.astype(np.int64),
                    "vectors.indptr": V.indptr.astype(np.int64),
                    "vectors.shape": np.asarray(V.shape, dtype=np.int64),
                }
            )
        else:
            state["vectors"] = np.asarray(V, dtype=np.float32)
        for key, value in self.encoder_.state_dict().items():  # type: ignore[union-attr]
            state[f"encoder.{key}"] = value
        return state

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        name = bytes(np.asarray(state["encoder"], dtype=np.uint8)).decode()
        encoder = self._make_encoder(name)
        prefix = "encoder."
        encoder.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
        if "vectors" in state:
            V: Any = np.asarray(state["vectors"], dtype=np.float32)
        else:
            shape = tuple(int(s) for s in state["vectors.shape"])
            V = sp.csr_matrix(
                (state["vectors.data"], state["vectors.indices"], state["vectors.indptr"]),
                shape=shape,
            )
        has_text = np.asarray(state["has_text"]).astype(bool)
        if self.item_map is not None and V.shape[0] != self.item_map.size + 1:
            raise ValueError(
                f"item vectors have {V.shape[0]} rows, expected n_items + 1 = "
                f"{self.item_map.size + 1}"
            )
        self.encoder_, self.item_vectors_, self.has_text_ = encoder, V, has_text


def _rowwise_max(
    rows: np.ndarray, items: np.ndarray, w: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR of weights where a repeated (row, item) keeps its largest weight."""
    frame = pd.DataFrame({"r": rows, "i": items, "w": w})
    best = frame.groupby(["r", "i"], sort=True)["w"].max().reset_index()
    return sp.csr_matrix(
        (best["w"].to_numpy(np.float32), (best["r"].to_numpy(), best["i"].to_numpy())),
        shape=shape,
    )
