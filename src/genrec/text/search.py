"""Text search over a catalogue: free-text queries, optionally blended with a user's history.

Public API::

    from genrec.text.search import ItemTextIndex, search

    index = ItemTextIndex.from_dataset(dataset, encoder="auto")   # "minilm" | "tfidf" | "auto"
    index = ItemTextIndex.from_model(model)     # a fitted textknn reuses its item vectors;
                                                # any other model indexes its item titles
    index = ItemTextIndex.from_artifact("artifacts/textknn")     # a saved model directory

    index.encoder_name           # "minilm" or "tfidf": the encoder actually used
    index.encoder                # the fitted genrec.text.encoders.TextEncoder
    index.item_ids               # (n_items,) external ids, internal-id order
    index.encode(["dry skin"])   # (n, d) float32 L2-normalised query vectors (dense)
    index.search("light moisturizer for dry skin", k=10, history=["B001", "B002"],
                 alpha=0.5, exclude=None)
        # -> DataFrame[item_id, score, title], best first, at most k rows
    index.similar_items(["B001"], k=10)
        # -> DataFrame[query_item_id, rank, item_id, score, title]

    genrec.search("artifacts/textknn", "light moisturizer", k=10, history=None,
                  user=None, alpha=0.5)      # one call; user= adds that user's history

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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genrec.core.recommender import Recommender
from genrec.core.topk import topk_with_ties
from genrec.data.dataset import Dataset, IdMap
from genrec.errors import ConfigError, DataValidationError, NotFittedError, UnknownIdError, suggest
from genrec.io import load_model
from genrec.text.encoders import (
    TextEncoder,
    TfidfEncoder,
    item_text_vectors,
    make_encoder,
    normalize_rows,
    resolve_encoder,
    scatter_rows,
    to_dense,
)

__all__ = ["ItemTextIndex", "search", "similar_items_frame", "user_history"]


class ItemTextIndex:
    """Item vectors from text plus the encoder that maps queries into the same space.

    Build it with :meth:`from_dataset`, :meth:`from_model` or :meth:`from_artifact`.

    Args:
        item_map: the catalogue's :class:`~genrec.data.dataset.IdMap` (internal ids 1..n).
        vectors: ``(n_items + 1, d)`` L2-normalised item vectors (dense float32 or CSR);
            row 0 (padding) and items without text are zero rows.
        encoder: a fitted :class:`genrec.text.encoders.TextEncoder`.
        titles: ``(n_items + 1,)`` display titles (index 0 unused), or ``None``.
        has_text: ``(n_items + 1,)`` bool, items that have text (default: non-zero rows).
    """

    def __init__(
        self,
        item_map: IdMap,
        vectors: np.ndarray | sp.csr_matrix,
        encoder: TextEncoder,
        titles: Any = None,
        has_text: np.ndarray | None = None,
    ):
        n = item_map.size + 1
        if vectors.shape[0] != n:
            raise DataValidationError(
                f"ItemTextIndex: {vectors.shape[0]} vector rows for {item_map.size} items "
                f"(expected n_items + 1 = {n})"
            )
        if has_text is None:
            sq = vectors.multiply(vectors) if sp.issparse(vectors) else np.square(vectors)
            has_text = np.asarray(sq.sum(axis=1)).ravel() > 0
        self.item_map = item_map
        self.vectors = vectors
        self.encoder = encoder
        self.has_text = np.asarray(has_text, dtype=bool).copy()
        self.has_text[0] = False
        self.titles = (
            np.full(n, "", dtype=object) if titles is None else np.asarray(titles, dtype=object)
        )

    def __len__(self) -> int:
        return self.item_map.size

    def __repr__(self) -> str:
        return (
            f"ItemTextIndex(items={len(self)}, with_text={int(self.has_text.sum())}, "
            f"encoder={self.encoder_name!r})"
        )

    @property
    def encoder_name(self) -> str:
        """``"minilm"`` or ``"tfidf"``: the encoder actually used."""
        return self.encoder.name

    @property
    def item_ids(self) -> np.ndarray:
        """External item ids in internal-id order."""
        return self.item_map.external_ids

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataset(
        cls, dataset: Any, *, encoder: str = "auto", **encoder_options: Any
    ) -> ItemTextIndex:
        """Index every item of ``dataset`` by its text (:func:`genrec.text.item_texts`).

        Args:
            dataset: a :class:`~genrec.data.dataset.Dataset` with an item table.
            encoder: ``"minilm"``, ``"tfidf"`` or ``"auto"``.
            **encoder_options: passed to the encoder (``svd_dim``, ``min_df``,
                ``num_threads``, ...; options of the other encoder are ignored).
        """

        if not isinstance(dataset, Dataset):
            raise DataValidationError(
                f"from_dataset() expects a genrec.Dataset, got {type(dataset).__name__}"
            )
        enc = make_encoder(encoder, **encoder_options)
        vectors, has_text, _ = item_text_vectors(dataset, enc)
        return cls(dataset.item_map, vectors, enc, dataset.item_titles(), has_text)

    @classmethod
    def from_model(cls, model: Any, *, encoder: str = "auto") -> ItemTextIndex:
        """Index a fitted model's catalogue.

        A fitted ``textknn`` lends its own item vectors and encoder (``encoder`` must then be
        ``"auto"`` or the model's). Any other model has only its item titles (all an artifact
        stores of the item table), so the index encodes the titles with ``encoder``; items
        without a title are not searchable.
        """
        if not isinstance(model, Recommender):
            raise DataValidationError(
                f"from_model() expects a fitted genrec model, got {type(model).__name__}"
            )
        if not model.is_fitted:
            raise NotFittedError(f"{type(model).__name__} is not fitted: call fit(dataset) first")
        own = model.text_vectors()
        if own is not None:  # textknn: its own encoder and vectors
            own_encoder, vectors, has_text = own
            if encoder not in ("auto", own_encoder.name):
                raise ConfigError(
                    f"this {model.name} model was fitted with the {own_encoder.name!r} encoder; "
                    f"got encoder={encoder!r} (leave it 'auto')"
                )
            return cls(model.item_map, vectors, own_encoder, model.item_titles_, has_text)
        titles = model.item_titles_
        if titles is None:
            titles = np.full(model.n_items + 1, "", dtype=object)
        texts = np.asarray([str(t).strip() for t in titles], dtype=object)
        has_text = texts != ""
        has_text[0] = False
        if not has_text.any():
            raise DataValidationError(
                f"the {model.name} model has no item titles to search. Fit it (or a textknn "
                "model) on a dataset with an item table, e.g. movielens-small; in Python, "
                "ItemTextIndex.from_dataset(dataset) indexes the dataset's texts directly."
            )
        enc = make_encoder(resolve_encoder(encoder))
        known = texts[has_text].tolist()
        vectors = scatter_rows(enc.fit(known).encode_items(known), has_text)
        return cls(model.item_map, vectors, enc, titles, has_text)

    @classmethod
    def from_artifact(cls, path: str | Path, *, encoder: str = "auto") -> ItemTextIndex:
        """Index the catalogue of a saved model directory (see :meth:`from_model`)."""

        return cls.from_model(load_model(path), encoder=encoder)

    # ------------------------------------------------------------------ queries
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors ``(len(texts), d)`` dense float32, L2-normalised; a zero row means
        the text has no signal for this encoder (TF-IDF: no word of it is in the vocabulary)."""
        if isinstance(texts, str):
            raise DataValidationError("encode() expects a list of strings, got a single string")
        out = self.encoder.encode(list(texts))
        return to_dense(out)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        history: Sequence[Any] | None = None,
        alpha: float = 0.5,
        exclude: Sequence[Any] | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` items for a free-text query.

        Args:
            query: what the user is looking for, e.g. ``"light moisturizer for dry skin"``.
            k: number of results, ``>= 1``.
            history: external ids of items the user liked (chronological order does not
                matter); their text centroid is blended in and they are not returned.
            alpha: weight of the history centroid in ``[0, 1]`` (0: the query alone).
            exclude: external ids never to return.

        Returns:
            DataFrame ``item_id, score, title``, best first, at most ``k`` rows. With the
            sparse TF-IDF encoder and no history, only items sharing a word with the query
            are returned (possibly fewer than ``k``).

        Raises:
            DataValidationError: empty or non-string query; a TF-IDF query with no known word.
            UnknownIdError: unknown ids in ``history`` or ``exclude`` (with a suggestion).
            ConfigError: bad ``k`` or ``alpha``.
        """
        if not isinstance(query, str) or not query.strip():
            raise DataValidationError(f"search query must be a non-empty string, got {query!r}")
        _check_k(k)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ConfigError(f"alpha must be a number in [0, 1], got {alpha!r}")
        hist = self._internal(history, "history")
        banned = self._internal(exclude, "exclude")
        q = self.encode([query])  # (1, d)
        if not np.any(q):
            raise DataValidationError(self._no_match_message(query))
        scores = to_dense(self.vectors @ q[0]).reshape(-1)  # (N,) cosine to the query
        lexical_only = sp.issparse(self.vectors) and len(hist) == 0
        if len(hist):
            centroid = normalize_rows(self.vectors[hist].sum(axis=0).reshape(1, -1))  # (1, d)
            centroid = to_dense(centroid).reshape(-1)
            hist_scores = to_dense(self.vectors @ centroid).reshape(-1)  # (N,)
            scores = (1.0 - alpha) * scores + alpha * hist_scores
        allowed = self.has_text.copy()
        allowed[hist] = False
        allowed[banned] = False
        if lexical_only:
            allowed &= scores > 0
        return self._top(scores, allowed, k)

    def similar_items(self, item_ids: Sequence[Any], k: int = 10) -> pd.DataFrame:
        """Top-``k`` most text-similar items of each item in ``item_ids`` (itself excluded).

        Returns:
            Long DataFrame ``query_item_id, rank, item_id, score, title``.
        """
        _check_k(k)
        return similar_items_frame(
            self.vectors, self.has_text, self.item_map, self.titles, item_ids, k
        )

    # ------------------------------------------------------------------ helpers
    def _internal(self, ids: Sequence[Any] | None, what: str) -> np.ndarray:
        if ids is None:
            return np.zeros(0, dtype=np.int64)
        if isinstance(ids, (str, bytes)) or np.ndim(ids) == 0:
            ids = [ids]
        ids = list(ids)
        if not ids:
            return np.zeros(0, dtype=np.int64)
        return _to_internal(self.item_map, ids, what)

    def _no_match_message(self, query: str) -> str:
        if isinstance(self.encoder, TfidfEncoder):
            n = len(self.encoder.vocabulary_ or {})
            return (
                f"query {query!r} matches no item text: none of its words is among the {n} "
                "words of the item texts (TF-IDF encoder); try other words, or fit with the "
                "minilm encoder for semantic matches"
            )
        return f"query {query!r} gives a zero vector with the {self.encoder_name} encoder"

    def _top(self, scores: np.ndarray, allowed: np.ndarray, k: int) -> pd.DataFrame:
        s = torch.from_numpy(np.asarray(scores, dtype=np.float32).copy())[None, :]  # (1, N)
        s.masked_fill_(~torch.from_numpy(allowed)[None, :], float("-inf"))
        idx, vals = topk_with_ties(s, k)
        idx, vals = idx.numpy()[0], vals.numpy()[0]
        idx, vals = idx[idx > 0], vals[idx > 0]
        return pd.DataFrame(
            {
                "item_id": self.item_map.to_external(idx) if len(idx) else [],
                "score": vals.astype(np.float32),
                "title": self.titles[idx] if len(idx) else [],
            }
        )


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ConfigError(f"k must be a positive integer, got {k!r}")


def _to_internal(item_map: IdMap, ids: list[Any], what: str) -> np.ndarray:
    """Internal ids of external ``ids``; unknown ones raise with the closest known id."""
    internal = item_map.to_internal(np.asarray(ids, dtype=object), missing="zero")
    if (internal == 0).any():
        bad = [i for i, x in zip(ids, internal) if x == 0]
        hint = suggest(str(bad[0]), (str(x) for x in item_map.external_ids))
        raise UnknownIdError(
            f"unknown {what} item id(s) {bad[:5]!r} ({len(bad)} of {len(ids)} not in the "
            f"{item_map.size} catalogue items).{hint}"
        )
    return internal


def similar_items_frame(
    vectors: Any, has_text: np.ndarray, item_map: IdMap, titles: Any, item_ids: Any, k: int
) -> pd.DataFrame:
    """Item-to-item text neighbours (shared by :class:`ItemTextIndex` and ``textknn``).

    Returns:
        Long DataFrame ``query_item_id, rank, item_id, score, title`` (ranks from 1); items
        without text are never returned.

    Raises:
        UnknownIdError: an id not in the catalogue (with a suggestion).
        DataValidationError: empty ``item_ids``, or a query item without text.
    """
    if isinstance(item_ids, (str, bytes)) or np.ndim(item_ids) == 0:
        item_ids = [item_ids]
    queries = list(item_ids)
    if not queries:
        raise DataValidationError("similar_items() got an empty list of item ids")
    internal = _to_internal(item_map, queries, "query")
    lacking = [q for q, i in zip(queries, internal) if not has_text[i]]
    if lacking:
        raise DataValidationError(
            f"item(s) {lacking[:5]!r} have no text (title, brand, categories or description), "
            "so they have no text neighbours"
        )
    sims = torch.from_numpy(to_dense(vectors[internal] @ vectors.T))  # (Q, N) cosines
    sims[:, ~torch.from_numpy(np.asarray(has_text, dtype=bool))] = float("-inf")
    sims[torch.arange(len(internal)), torch.from_numpy(internal)] = float("-inf")  # not itself
    idx, vals = topk_with_ties(sims, k)
    idx, vals = idx.numpy(), vals.numpy()
    real = (idx > 0).ravel()
    flat = idx.ravel()[real]
    names = np.full(item_map.size + 1, "", dtype=object) if titles is None else titles
    return pd.DataFrame(
        {
            "query_item_id": np.repeat(np.asarray(queries, dtype=object), k)[real],
            "rank": np.tile(np.arange(1, k + 1), len(queries))[real],
            "item_id": item_map.to_external(flat) if len(flat) else [],
            "score": vals.ravel()[real].astype(np.float32),
            "title": np.asarray(names, dtype=object)[flat],
        }
    )


def user_history(model: Any, user: Any) -> list[Any]:
    """A known user's training history (external item ids, chronological) from a model."""
    if not getattr(model, "is_fitted", False):
        raise NotFittedError(f"{type(model).__name__} is not fitted: call fit(dataset) first")
    u = int(model.user_map.to_internal([user], what="user")[0])
    hist = model.train_histories_
    seq = hist.seq_items[hist.seq_indptr[u] : hist.seq_indptr[u + 1]]
    return model.item_map.to_external(seq).tolist() if len(seq) else []


def search(
    model_or_artifact: Any,
    query: str,
    k: int = 10,
    history: Sequence[Any] | None = None,
    *,
    user: Any = None,
    alpha: float = 0.5,
    exclude: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """One-call text search.

    Args:
        model_or_artifact: a fitted model, an :class:`ItemTextIndex`, or the path of a saved
            model directory. A textknn model/artifact brings its own item vectors; any other
            model's item titles are indexed on the fly (``encoder="auto"``).
        query, k, history, alpha, exclude: see :meth:`ItemTextIndex.search`.
        user: a known user id of the model; its training history is added to ``history``.

    Returns:
        DataFrame ``item_id, score, title``, best first.
    """
    model = None
    if isinstance(model_or_artifact, ItemTextIndex):
        index = model_or_artifact
    elif isinstance(model_or_artifact, (str, os.PathLike)):
        model = load_model(model_or_artifact)
        index = ItemTextIndex.from_model(model)
    else:
        model = model_or_artifact
        index = ItemTextIndex.from_model(model)
    hist = (
        []
        if history is None
        else ([history] if isinstance(history, (str, bytes)) else list(history))
    )
    if user is not None:
        if model is None:
            raise DataValidationError(
                "search(user=...) needs a model or an artifact path, not an ItemTextIndex "
                "(the index has no user histories)"
            )
        hist = user_history(model, user) + hist
    return index.search(query, k, history=hist or None, alpha=alpha, exclude=exclude)
