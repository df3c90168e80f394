"""Text search over a catalogue: free-text queries, optionally blended with a user's history.

Public API::

    from genrec.text.search import ItemTextIndex, search

    index = ItemTextIndex.from_dataset(dataset, encoder="auto")   # "minilm" | "tfidf" | "auto"
    index = ItemTextIndex.from_model(model)     # a fitted textknn reuses its item vectors;
                                                # any other model indexes its item titles
    index = ItemTextIndex.from_artifact("artifacts/textknn")     # a saved model directory

    index.encoder                # "minilm" or "tfidf": the encoder actually used
    index.item_ids               # (n_items,) external ids, internal-id order
    index.encode(["dry skin"])   # (n, d) float32 L2-normalised query vectors (dense)
    index.search("light moisturizer for dry skin", k=10, history=["B001", "B002"],
                 alpha=0.5, exclude=None)
        # -> DataFrame[item_id, score, title], best first, at most k rows
    index.similar_items(["B001"], k=10)
        # -> DataFrame[query_item_id, rank, item_id, score, title]

    genrec.search("artifacts/textknn", "light moisturizer", k=10, history=None)  # one call

Scoring: an item's score is ``(1 - alpha) * cos(query, item) + alpha * cos(history, item)``
where ``history`` is the L2-normalised centroid of the history items' vectors (``alpha`` is
ignored without a history). History items and ``exclude`` are never returned, nor items
without any text (title, brand, categories or description).

Errors (all :class:`genrec.errors.GenrecError`): an empty, blank or non-string query raises
:class:`~genrec.errors.DataValidationError`; with the TF-IDF encoder a query sharing no word
with any item text raises ``DataValidationError("query 'xyz' matches no item text ...")``;
unknown history or exclude ids raise :class:`~genrec.errors.UnknownIdError` with the closest
known id as a suggestion; a bad ``k`` or ``alpha`` raises :class:`~genrec.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ItemTextIndex", "search"]


class ItemTextIndex:
    """Item vectors from text plus the encoder that maps queries into the same space.

    Build it with :meth:`from_dataset`, :meth:`from_model` or :meth:`from_artifact`.

    Args:
        item_ids: external item ids in internal-id order (row ``i + 1`` of ``vectors``).
        vectors: ``(n_items + 1, d)`` L2-normalised item vectors (dense float32 or CSR);
            row 0 (padding) and items without text are zero rows.
        encoder: a fitted :class:`genrec.text.encoders.TextEncoder`.
        titles: ``(n_items + 1,)`` display titles (index 0 unused), or ``None``.
    """

    def __init__(self, item_ids: Any, vectors: Any, encoder: Any, titles: Any = None):
        raise NotImplementedError

    @classmethod
    def from_dataset(
        cls, dataset: Any, *, encoder: str = "auto", **encoder_options: Any
    ) -> ItemTextIndex:
        """Index every item of ``dataset`` by its text (:func:`genrec.text.item_texts`)."""
        raise NotImplementedError

    @classmethod
    def from_model(cls, model: Any, *, encoder: str = "auto") -> ItemTextIndex:
        """Index a fitted model's catalogue (textknn: its own vectors; others: item titles)."""
        raise NotImplementedError

    @classmethod
    def from_artifact(cls, path: str | Path, *, encoder: str = "auto") -> ItemTextIndex:
        """Index the catalogue of a saved model directory."""
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors ``(len(texts), d)`` float32, L2-normalised (zero rows: no match)."""
        raise NotImplementedError

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        history: Sequence[Any] | None = None,
        alpha: float = 0.5,
        exclude: Sequence[Any] | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` items for a free-text query (see the module docstring for scoring)."""
        raise NotImplementedError

    def similar_items(self, item_ids: Sequence[Any], k: int = 10) -> pd.DataFrame:
        """Top-``k`` most text-similar items of each item in ``item_ids`` (itself excluded)."""
        raise NotImplementedError


def search(
    model_or_artifact: Any,
    query: str,
    k: int = 10,
    history: Sequence[Any] | None = None,
    *,
    alpha: float = 0.5,
) -> pd.DataFrame:
    """One-call text search: ``model_or_artifact`` is a fitted model, an
    :class:`ItemTextIndex` or a saved model directory. Returns ``item_id, score, title``."""
    raise NotImplementedError
