"""The estimator contract: :class:`Recommender`, :class:`ScoringRecommender`,
:class:`GenerativeRecommender`.

Public methods here validate input, map ids, filter seen items and take the top-k, once for
every model. Subclasses implement ``_fit`` and either ``_score`` (a score per catalogue item)
or ``_generate`` (decoded item lists), plus ``_state_dict``/``_load_state_dict`` to persist
their weights as plain arrays.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genrec.config import ModelConfig
from genrec.data.dataset import Dataset, HistoryBatch, IdMap, UserHistories
from genrec.errors import ConfigError, DataValidationError, NotFittedError, UnknownIdError
from genrec.models.topk import csr_to_bool, topk_with_ties

if TYPE_CHECKING:
    from genrec.data.splitting import Holdout, Split

OnUnknown = Literal["raise", "popular"]


@dataclass
class Recommendations:
    """Top-k lists for a batch of users.

    Attributes:
        user_ids: external user ids ``(U,)`` (``None`` for ad-hoc histories).
        item_ids: external item ids ``(U, k)``; ``None`` where fewer than k items qualified.
        scores: ``(U, k)`` float32 model scores (``-inf`` where padded).
        internal_item_ids: ``(U, k)`` internal ids (0 where padded).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    internal_item_ids: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """Long format: ``user_id, rank, item_id, score`` (ranks start at 1, padding dropped)."""
        U, k = self.internal_item_ids.shape
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(self.user_ids, k),
                "rank": np.tile(np.arange(1, k + 1), U),
                "item_id": self.item_ids.reshape(-1),
                "score": self.scores.reshape(-1),
            }
        )
        return frame[self.internal_item_ids.reshape(-1) > 0].reset_index(drop=True)


class Recommender(ABC):
    """Base estimator: ``fit / recommend / save / load``.

    Args:
        config: the model's config dataclass instance, or a dict of its fields.
        **overrides: individual config fields, applied on top of ``config``.
    """

    name: ClassVar[str] = "recommender"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: True when the fitted model does not depend on the seed (the benchmark fits it once)
    deterministic: ClassVar[bool] = False
    #: rank an empty ad-hoc history by training popularity instead of the model's scores
    popular_for_empty_history: ClassVar[bool] = True

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any):
        if config is None:
            config = self.config_class()
        elif isinstance(config, dict):
            config = self.config_class.from_dict(config)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} expects a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config.replace(**overrides) if overrides else config
        self.user_map: IdMap | None = None
        self.item_map: IdMap | None = None
        self.train_histories_: UserHistories | None = None
        self.item_popularity_: np.ndarray | None = None
        self.item_titles_: np.ndarray | None = None
        self.fit_seconds_: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: Dataset, valid: Any = None) -> Recommender:
        """Fit on ``dataset``; ``valid`` (a split holdout) is used for early stopping by
        trained models. Returns ``self``."""
        if not isinstance(dataset, Dataset):
            raise DataValidationError(
                f"fit() expects a genrec.Dataset, got {type(dataset).__name__}"
            )
        if dataset.n_interactions == 0:
            raise DataValidationError("cannot fit on an empty dataset")
        self._seed_everything()
        start = time.perf_counter()
        self.user_map, self.item_map = dataset.user_map, dataset.item_map
        self.train_histories_ = dataset.histories()
        self.item_popularity_ = dataset.item_popularity()
        self.item_titles_ = dataset.item_titles()
        self._fit(dataset, valid)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _seed_everything(self) -> None:
        seed = int(self.config.seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    @abstractmethod
    def _fit(self, dataset: Dataset, valid: Any) -> None:
        """Learn parameters from ``dataset`` (internal ids)."""

    @property
    def is_fitted(self) -> bool:
        return self.train_histories_ is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(dataset) first")

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self.item_map.size  # type: ignore[union-attr]

    # ------------------------------------------------------------------ recommending
    def recommend(
        self,
        users: Sequence[Any] | np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | np.ndarray | None = None,
        *,
        history: Dataset | None = None,
        on_unknown: OnUnknown = "raise",
        batch_size: int = 1024,
    ) -> Recommendations:
        """Top-``k`` items for known users.

        Args:
            users: external user ids.
            k: list length, ``>= 1``.
            exclude_seen: drop items in the user's history.
            candidates: optional external item ids to choose from (an allow-list).
            history: the interactions to treat as the users' histories (same id maps);
                defaults to the training data. The evaluator passes train+validation here
                at test time.
            on_unknown: ``"raise"`` (default) raises :class:`UnknownIdError` for users not
                seen in training; ``"popular"`` gives them an empty history (cold start).
            batch_size: users scored at once (bounds memory).
        """
        self._check_fitted()
        self._check_k(k)
        users = np.atleast_1d(np.asarray(users, dtype=object))
        if users.size == 0:
            raise DataValidationError("recommend() got an empty list of users")
        internal = self.user_map.to_internal(users, missing="zero")  # type: ignore[union-attr]
        if on_unknown == "raise" and (internal == 0).any():
            bad = [u for u, i in zip(users, internal) if i == 0][:5]
            raise UnknownIdError(
                f"unknown user id(s) {bad} ({int((internal == 0).sum())} of {len(users)}); "
                "pass on_unknown='popular' to recommend from an empty history"
            )
        if on_unknown not in ("raise", "popular"):
            raise ConfigError(f"on_unknown must be 'raise' or 'popular', got {on_unknown!r}")
        hist = self._histories_for(history)
        cand = self._candidate_mask(candidates)
        known = internal > 0
        items = np.zeros((len(users), k), dtype=np.int64)
        scores = np.full((len(users), k), -np.inf, dtype=np.float32)
        if known.any():
            items[known], scores[known] = self._rank_rows(
                hist, internal[known], k, exclude_seen, cand, batch_size
            )
        if not known.all():  # cold users: most popular items (documented fallback)
            pop = torch.as_tensor(self.item_popularity_, dtype=torch.float32).clone()[None, :]
            pop[:, 0] = float("-inf")
            if cand is not None:
                pop.masked_fill_(~torch.from_numpy(cand)[None, :], float("-inf"))
            idx, vals = topk_with_ties(pop, k)
            items[~known], scores[~known] = idx.numpy(), vals.numpy()
        return self._package(users, items, scores)

    def recommend_for_history(
        self,
        histories: Sequence[Sequence[Any]],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | np.ndarray | None = None,
    ) -> Recommendations:
        """Top-``k`` for ad-hoc histories: each a chronological list of external item ids."""
        self._check_fitted()
        self._check_k(k)
        if isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence):
            raise DataValidationError("histories must be a list of item-id lists")
        seqs = [
            self.item_map.to_internal(list(h), what="item") if len(h) else [] for h in histories
        ]  # type: ignore[union-attr]
        hist = UserHistories.from_sequences(seqs, self.n_items)
        cand = self._candidate_mask(candidates)
        rows = np.arange(len(seqs), dtype=np.int64)
        items, scores = self._rank_rows(
            hist, rows, k, exclude_seen, cand, 1024, user_ids=np.zeros(len(seqs), np.int64)
        )
        return self._package(np.full(len(seqs), None, dtype=object), items, scores)

    def _check_k(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ConfigError(f"k must be a positive integer, got {k!r}")

    def _histories_for(self, history: Dataset | None) -> UserHistories:
        if history is None:
            return self.train_histories_  # type: ignore[return-value]
        if history.item_map != self.item_map or history.user_map != self.user_map:
            raise DataValidationError(
                "history dataset must share the model's id maps (build it from the same split)"
            )
        return history.histories()

    def _candidate_mask(self, candidates: Sequence[Any] | np.ndarray | None) -> np.ndarray | None:
        if candidates is None:
            return None
        ids = self.item_map.to_internal(np.asarray(candidates, dtype=object), what="item")  # type: ignore[union-attr]
        mask = np.zeros(self.n_items + 1, dtype=bool)
        mask[ids] = True
        return mask

    def _rank_rows(
        self,
        hist: UserHistories,
        rows: np.ndarray,
        k: int,
        exclude_seen: bool,
        candidates: np.ndarray | sp.csr_matrix | None,
        batch_size: int,
        *,
        user_ids: np.ndarray | None = None,
        demote: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rank in batches; rows index ``hist`` (row 0 = a user with no history).

        ``candidates`` is a global bool mask ``(n_items + 1,)`` or a CSR allow-list with rows
        aligned with ``rows`` (sampled evaluation). ``demote`` (rows aligned with ``rows``)
        marks items that lose ties; only the evaluator uses it, passing the held-out targets.
        """
        out_items = np.zeros((len(rows), k), dtype=np.int64)
        out_scores = np.zeros((len(rows), k), dtype=np.float32)
        order = self._row_order(hist, rows)
        for start in range(0, len(rows), batch_size):
            sl: slice | np.ndarray = slice(start, start + batch_size)
            if order is not None:
                sl = order[sl]  # positions into rows; results land back at these positions
            uids = rows[sl] if user_ids is None else user_ids[sl]
            batch = hist.batch(rows[sl], user_ids=uids)
            dem = None if demote is None else demote[sl]
            cand = candidates[sl] if sp.issparse(candidates) else candidates
            items, scores = self._recommend_batch(batch, k, exclude_seen, cand, dem)
            out_items[sl], out_scores[sl] = items, scores
        return out_items, out_scores

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray | None:
        """The order in which :meth:`_rank_rows` batches ``rows`` (a permutation of positions
        into ``rows``), or ``None`` to keep the given order. Results come back in the caller's
        order either way. A model whose batch cost follows the longest history in the batch
        (TIGER trims padding) sorts by history length so that each batch pads little."""
        return None

    @abstractmethod
    def _recommend_batch(
        self,
        batch: HistoryBatch,
        k: int,
        exclude_seen: bool,
        candidates: np.ndarray | sp.csr_matrix | None,
        demote: sp.csr_matrix | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids ``(B, k)`` (0 = padding) and scores ``(B, k)``."""

    def _package(self, users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> Recommendations:
        ext = self.item_map.to_external(items.reshape(-1)).reshape(items.shape)  # type: ignore[union-attr]
        return Recommendations(users, ext, scores.astype(np.float32), items)

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(
        self,
        split: Split | Holdout | None = None,
        *,
        sample_users: int | None = None,
        seed: int = 0,
    ) -> dict[str, float | int]:
        """Model-specific health numbers of a fitted model, stored next to the metrics in
        ``results.json`` (``models.<name>.diagnostics``).

        The default is ``{}`` (nothing to report). Generative models override it, e.g.
        :meth:`genrec.models.tiger.TIGER.diagnostics` reports the invalid-code rate, the
        beam-vs-exact gap and codebook statistics.

        Args:
            split: the evaluation split (its test holdout) or a holdout; ``None`` = the
                training users.
            sample_users: evaluate at most this many users (model default when ``None``).
            seed: seed of the user sample.

        Returns:
            A flat mapping of names to numbers.
        """
        return {}

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        """Model weights as named numpy arrays (no pickle)."""
        return {}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027
        """Restore weights saved by :meth:`_state_dict` (models without weights: no-op)."""

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write an artifact directory atomically (see :mod:`genrec.io`).

        Args:
            path: a new path, an empty folder, or an artifact genrec wrote earlier (replaced
                only with ``overwrite=True``). A file or a folder genrec did not write is
                never touched: :class:`~genrec.paths.OutputPathError`.
            overwrite: replace an existing genrec artifact at ``path``.
        """
        from genrec.io import save_model

        self._check_fitted()
        return save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load an artifact written by :meth:`save`."""
        from genrec.io import load_model

        model = load_model(path)
        if not isinstance(model, cls):
            raise TypeError(
                f"artifact at {path} holds a {type(model).__name__}, not {cls.__name__}"
            )
        return model


def _candidate_rows(candidates: np.ndarray | sp.csr_matrix, n_cols: int) -> torch.Tensor:
    """Allow-list as a bool tensor: ``(1, N)`` for a global mask, ``(B, N)`` per row."""
    if sp.issparse(candidates):
        return csr_to_bool(candidates.tocsr(), n_cols)
    return torch.from_numpy(np.asarray(candidates, dtype=bool))[None, :]


class ScoringRecommender(Recommender):
    """A model that scores every catalogue item; masking and top-k are written once here."""

    @abstractmethod
    def _score(self, batch: HistoryBatch) -> torch.Tensor | np.ndarray:
        """Scores ``(B, n_items + 1)``; column 0 (padding) is ignored."""

    def score(self, batch: HistoryBatch) -> torch.Tensor:
        """Raw scores as a float32 tensor ``(B, n_items + 1)``, validated."""
        scores = self._score(batch)
        scores = torch.as_tensor(scores, dtype=torch.float32)
        expected = (len(batch), self.n_items + 1)
        if tuple(scores.shape) != expected:
            raise RuntimeError(
                f"{type(self).__name__}._score returned shape {tuple(scores.shape)}, "
                f"expected {expected}"
            )
        return scores

    def _recommendation_scores(self, batch: HistoryBatch, exclude_seen: bool) -> torch.Tensor:
        """Scores that :meth:`recommend` ranks (default :meth:`score`); a model whose scoring
        depends on ``exclude_seen`` (the cascade's candidate generation) overrides this."""
        return self.score(batch)

    def _recommend_batch(self, batch, k, exclude_seen, candidates, demote):
        scores = self._recommendation_scores(batch, exclude_seen).clone()
        cold = (batch.user_ids == 0) & (np.diff(batch.matrix.indptr) == 0)
        if (
            self.popular_for_empty_history and cold.any()
        ):  # an empty ad-hoc history carries no signal: fall back to popularity
            pop = torch.as_tensor(self.item_popularity_, dtype=torch.float32)
            scores[torch.from_numpy(cold)] = pop
        scores[:, 0] = float("-inf")
        if exclude_seen:
            m = batch.matrix
            rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
            scores[torch.from_numpy(rows), torch.from_numpy(m.indices.astype(np.int64))] = float(
                "-inf"
            )
        if candidates is not None:
            scores.masked_fill_(~_candidate_rows(candidates, scores.shape[1]), float("-inf"))
        idx, vals = topk_with_ties(scores, k, demote)
        return idx.numpy(), vals.numpy()


class GenerativeRecommender(Recommender):
    """A model that decodes item lists (e.g. semantic-ID beam search) instead of scoring all
    items. The base class over-generates, then filters seen/non-candidate items."""

    @abstractmethod
    def _generate(self, batch: HistoryBatch, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids ``(B, k')`` best first (0 = padding) and their scores."""

    def _recommend_batch(self, batch, k, exclude_seen, candidates, demote):
        extra = int(np.diff(batch.matrix.indptr).max()) if exclude_seen and len(batch) else 0
        items, scores = self._generate(batch, min(self.n_items, k + extra))
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float32)
        keep = items > 0
        if exclude_seen:
            seen = csr_to_bool(batch.matrix, self.n_items + 1).numpy()
            keep &= ~np.take_along_axis(seen, items, axis=1)
        if candidates is not None:
            allowed = _candidate_rows(candidates, self.n_items + 1).numpy()
            allowed = np.broadcast_to(allowed, (len(batch), allowed.shape[1]))
            keep &= np.take_along_axis(allowed, items, axis=1)
        out_i = np.zeros((len(batch), k), dtype=np.int64)
        out_s = np.full((len(batch), k), -np.inf, dtype=np.float32)
        for r in range(len(batch)):
            sel = np.flatnonzero(keep[r])[:k]
            out_i[r, : len(sel)] = items[r, sel]
            out_s[r, : len(sel)] = scores[r, sel]
        return out_i, out_s
