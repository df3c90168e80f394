"""The estimator contract: :class:`Recommender` and its two ranking strategies,
:class:`ScoringRecommender` and :class:`GenerativeRecommender`.

One public ranking call, :meth:`Recommender.rank`, works on internal ids. It owns, once for
every model:

* batching (in the order the model prefers, results back in the caller's order);
* masking: seen items (``exclude_seen``) and candidate allow-lists;
* the empty-history fallback (an anonymous empty history, or a cold-start user, is ranked
  by training popularity);
* tie-breaking: items flagged in ``demote`` (the evaluator's held-out targets) lose ties.

Under it, a model implements one of two interchangeable strategies:

* :meth:`ScoringRecommender._score`: a score for every catalogue item (EASE, ALS, SASRec, ...);
* :meth:`GenerativeRecommender._generate`: a decoded list of items (TIGER's beam search).

:meth:`Recommender.recommend`, :meth:`Recommender.recommend_for_history`, the evaluator, the
cascade's candidate generation and the server all rank through :meth:`Recommender.rank`.

A model also declares what it persists (``_state_dict`` / ``_load_state_dict`` for arrays,
``_save_artifacts`` / ``_load_artifacts`` for nested files) and its capabilities
(:meth:`Recommender.item_embeddings`, ``epoch_trained``); nothing outside
``genrec.models`` calls a model's private methods.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genrec.config import ModelConfig
from genrec.core.topk import csr_to_bool, topk_with_ties
from genrec.data.dataset import Dataset, HistoryBatch, IdMap, UserHistories
from genrec.errors import (
    ConfigError,
    DataValidationError,
    GenrecTypeError,
    KClampedWarning,
    NotFittedError,
    ResourceLimitError,
    UnknownIdError,
    caller_stacklevel,
)
from genrec.io import load_model, save_model

if TYPE_CHECKING:
    from genrec.data.splitting import Holdout, Split

OnUnknown = Literal["raise", "popular"]

#: most ``users x k`` entries one ``recommend()`` call returns (ids, scores: ~0.7 GB)
MAX_RESULT_ENTRIES = 2**25
#: most items in all the ad-hoc histories of one ``recommend_for_history()`` call
MAX_HISTORY_ITEMS = 1_000_000
_ID_LISTS = (list, tuple, range, np.ndarray, pd.Series, pd.Index)


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


@dataclass(frozen=True)
class RankRequest:
    """What to rank, in internal ids (:meth:`Recommender.rank`).

    Attributes:
        histories: the histories the model sees; ``rows`` index it (row 0 is the empty
            history of "no user").
        rows: ``(U,)`` rows of ``histories`` to rank for.
        k: list length (``>= 1``).
        exclude_seen: items in a row's history may not be returned.
        candidates: an allow-list: a global bool mask ``(n_items + 1,)``, or a CSR matrix
            ``(U, n_items + 1)`` with one row per entry of ``rows`` (sampled evaluation).
        demote: CSR ``(U, n_items + 1)`` aligned with ``rows``: flagged items lose every tie
            (the evaluator passes the held-out targets, so a tie never earns a hit).
        user_ids: ``(U,)`` internal user ids the model may use (user-token models); default
            ``rows``. 0 means an anonymous ad-hoc history.
        popular: ``(U,)`` bool: rows ranked by training popularity whatever the model
            (cold-start users of ``recommend(..., on_unknown="popular")``).
        batch_size: rows ranked at once, at most.
        max_batch_bytes: a batch holds at most this many bytes of scores (float32, one per
            item and row): large catalogues rank in smaller batches, so memory stays bounded
            whatever the catalogue size (256 MiB by default: 1,024 rows up to 65k items).
        keep_scores: also return every item's score per row (:attr:`Ranking.all_scores`) for
            models that score the whole catalogue; the cascade uses them as features.
    """

    histories: UserHistories
    rows: np.ndarray
    k: int
    exclude_seen: bool = True
    candidates: np.ndarray | sp.csr_matrix | None = None
    demote: sp.csr_matrix | None = None
    user_ids: np.ndarray | None = None
    popular: np.ndarray | None = None
    batch_size: int = 1024
    max_batch_bytes: int = 256 * 2**20
    keep_scores: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.histories, UserHistories):
            raise TypeError(
                "RankRequest.histories must be a UserHistories, got "
                f"{type(self.histories).__name__}"
            )
        rows = np.asarray(self.rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise DataValidationError("RankRequest.rows must be a 1-D array of integer row ids")
        rows = rows.astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.histories.n_rows):
            raise DataValidationError(
                f"RankRequest.rows must be in [0, {self.histories.n_rows}), got "
                f"[{rows.min()}, {rows.max()}]"
            )
        object.__setattr__(self, "rows", rows)
        check_k(self.k)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)):
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if (
            isinstance(self.max_batch_bytes, bool)
            or not isinstance(self.max_batch_bytes, (int, np.integer))
            or self.max_batch_bytes <= 0
        ):
            raise ConfigError(
                f"max_batch_bytes must be a positive integer, got {self.max_batch_bytes!r}"
            )
        n_cols = self.histories.n_items + 1
        for name in ("candidates", "demote"):
            value = getattr(self, name)
            if value is None:
                continue
            if sp.issparse(value):
                if value.shape != (len(rows), n_cols):
                    raise DataValidationError(
                        f"RankRequest.{name} must have shape ({len(rows)}, {n_cols}), "
                        f"got {value.shape}"
                    )
                object.__setattr__(self, name, value.tocsr())
            elif name == "demote":
                raise DataValidationError("RankRequest.demote must be a CSR matrix")
            else:
                mask = np.asarray(value, dtype=bool)
                if mask.shape != (n_cols,):
                    raise DataValidationError(
                        f"RankRequest.candidates mask must have shape ({n_cols},), got {mask.shape}"
                    )
                object.__setattr__(self, name, mask)
        for name in ("user_ids", "popular"):
            value = getattr(self, name)
            if value is not None:
                raw = np.asarray(value)
                if name == "popular" and raw.size and raw.dtype != bool:
                    raise DataValidationError("RankRequest.popular must be a bool array")
                if (
                    name == "user_ids"
                    and raw.size
                    and (not np.issubdtype(raw.dtype, np.integer) or raw.min() < 0)
                ):
                    raise DataValidationError(
                        "RankRequest.user_ids must be non-negative integer user ids"
                    )
                arr = raw.astype(bool if name == "popular" else np.int64)
                if arr.shape != rows.shape:
                    raise DataValidationError(
                        f"RankRequest.{name} must align with rows ({len(rows)}), got {arr.shape}"
                    )
                object.__setattr__(self, name, arr)


@dataclass
class Ranking:
    """The answer to a :class:`RankRequest`, rows in the request's order.

    Attributes:
        items: ``(U, k)`` internal item ids, best first (0 where fewer than k qualified).
        scores: ``(U, k)`` float32 scores (``-inf`` where padded).
        all_scores: ``(U, n_items + 1)`` float32 score of every item (the empty-history
            fallback applied, masks not) when ``keep_scores`` was asked of a model that scores
            the whole catalogue; else ``None``.
    """

    items: np.ndarray
    scores: np.ndarray
    all_scores: np.ndarray | None = None


def _check_ids(
    values: Any,
    what: str,
    *,
    scalar_ok: bool = False,
    sets_ok: bool = False,
    nested: bool = False,
) -> None:
    """Raise :class:`GenrecTypeError` unless ``values`` is a list of ids (or, ``nested``, a
    list of id lists); ``scalar_ok`` also accepts one id, ``sets_ok`` a set."""
    kinds = _ID_LISTS + ((set, frozenset) if sets_ok else ())
    if scalar_ok and isinstance(values, (str, int, np.integer)) and not isinstance(values, bool):
        return
    if not isinstance(values, kinds):
        expected = "a list of item-id lists" if nested else "a list of ids"
        raise GenrecTypeError(f"{what} must be {expected}, got {type(values).__name__}")
    if nested:
        for h in values:
            if not isinstance(h, _ID_LISTS):
                raise GenrecTypeError(
                    f"{what} must be a list of item-id lists; an entry is a "
                    f"{type(h).__name__} ({h!r:.40}), e.g. write [[1, 2, 3]] for one history"
                )


def _check_flag(value: Any, what: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise GenrecTypeError(f"{what} must be True or False, got {value!r}")


def _check_result_size(n_rows: int, k: int, what: str) -> None:
    """Refuse a call whose ``(n_rows, k)`` result would exceed :data:`MAX_RESULT_ENTRIES`."""
    if n_rows * k > MAX_RESULT_ENTRIES:
        raise ResourceLimitError(
            f"the result for {n_rows:,} {what} x k={k} is too large ({n_rows * k:,} entries, "
            f"more than {MAX_RESULT_ENTRIES:,}); ask for fewer {what} per call"
        )


def check_k(k: Any) -> int:
    """``k`` as an int, or a :class:`ConfigError` unless it is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


@dataclass
class FitOptions:
    """Options of :meth:`Recommender.fit` shared by every model.

    Attributes:
        checkpoint_dir: write a checkpoint after every epoch into this folder (models with
            ``epoch_trained``; see :mod:`genrec.training.trainer`).
        resume: continue from the checkpoint in ``checkpoint_dir``.
        overwrite: replace a checkpoint an earlier run left in ``checkpoint_dir``.
        on_epoch_end: ``callback(epoch, record)`` after every epoch of an epoch-trained model
            (tuning reports and prunes with it); models fitted in one go never call it.
        warm_start: ``callback(network)`` on the freshly built network of an epoch-trained
            model, before training: it may load weights into it (continuous training,
            :mod:`genrec.update`, copies an older model's grown weights in).
    """

    checkpoint_dir: str | Path | None = None
    resume: bool = False
    overwrite: bool = False
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None
    warm_start: Callable[[Any], None] | None = None


class Recommender(ABC):
    """Base estimator: ``fit / rank / recommend / save / load``.

    Args:
        config: the model's config dataclass instance, or a dict of its fields.
        **overrides: individual config fields, applied on top of ``config``.
    """

    name: ClassVar[str] = "recommender"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: one plain sentence for ``genrec models`` (default: the docstring's first sentence)
    summary: ClassVar[str] = ""
    #: True when the fitted model does not depend on the seed (the benchmark fits it once)
    deterministic: ClassVar[bool] = False
    #: rank an empty ad-hoc history by training popularity instead of the model's scores
    popular_for_empty_history: ClassVar[bool] = True
    #: fit() trains epoch by epoch: checkpoints, resume, on_epoch_end, time budgets and
    #: early stopping apply (the training mixin sets it)
    epoch_trained: ClassVar[bool] = False
    #: optional packages the model needs, ``{module: extra}`` (ALS: ``{"implicit": "als"}``)
    requires: ClassVar[dict[str, str]] = {}

    @classmethod
    def missing_extras(cls) -> list[str]:
        """The extras to install before this model can fit (``[]`` when it can)."""
        return sorted(
            {
                extra
                for module, extra in cls.requires.items()
                if importlib.util.find_spec(module) is None
            }
        )

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
        #: facts about training (epochs, best epoch, data fingerprint...), saved in artifacts
        self.training_info_: dict[str, Any] | None = None
        self._fit_options = FitOptions()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        dataset: Dataset,
        valid: Any = None,
        *,
        options: FitOptions | None = None,
        **option_fields: Any,
    ) -> Recommender:
        """Fit on ``dataset``; returns ``self``.

        Args:
            dataset: the training interactions.
            valid: a split holdout used for early stopping by epoch-trained models.
            options: :class:`FitOptions` (checkpoints, resume, per-epoch callback); its
                fields may also be given as keywords, e.g. ``fit(ds, checkpoint_dir="ck")``.

        Raises:
            GenrecTypeError: ``dataset`` is not a :class:`Dataset`.
            DataValidationError: ``dataset`` is empty.
            ConfigError: checkpoint options for a model fitted in one go.
        """
        if not isinstance(dataset, Dataset):
            hint = {
                "DataFrame": "; wrap it first: genrec.Dataset(df)",
                "Split": "; fit on its training part: fit(split.train, valid=split.valid)",
            }.get(type(dataset).__name__, "")
            raise GenrecTypeError(
                f"fit() expects a genrec.Dataset, got {type(dataset).__name__}{hint}"
            )
        if dataset.n_interactions == 0:
            raise DataValidationError("cannot fit on an empty dataset")
        opts = _fit_options(options, option_fields)
        if opts.checkpoint_dir is not None and str(opts.checkpoint_dir).strip() == "":
            raise ConfigError("checkpoint_dir is empty: give a folder path, or None")
        if (opts.checkpoint_dir is not None or opts.resume) and not self.epoch_trained:
            raise ConfigError(
                f"checkpoint_dir/resume only apply to models trained epoch by epoch; "
                f"{self.name!r} is fitted in one go"
            )
        if opts.warm_start is not None and not self.epoch_trained:
            raise ConfigError(
                f"warm_start only applies to models trained epoch by epoch; {self.name!r} is "
                "fitted in one go"
            )
        if opts.resume and opts.checkpoint_dir is None:
            raise ConfigError("resume=True needs a checkpoint_dir")
        self._seed_everything()
        start = time.perf_counter()
        self.user_map, self.item_map = dataset.user_map, dataset.item_map
        self.train_histories_ = dataset.histories()
        self.item_popularity_ = dataset.item_popularity()
        self.item_titles_ = dataset.item_titles()
        self._fit_options = opts  # read by epoch-trained models (the training mixin)
        try:
            self._fit(dataset, valid)
        finally:
            self._fit_options = FitOptions()
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _seed_everything(self) -> None:
        seed = int(self.config.seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    @abstractmethod
    def _fit(self, dataset: Dataset, valid: Any) -> None:
        """Learn parameters from ``dataset`` (internal ids). ``self._fit_options`` holds the
        :class:`FitOptions` of the running :meth:`fit` call."""

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or a load) has run."""
        return self.train_histories_ is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(dataset) first")

    @property
    def n_items(self) -> int:
        """Catalogue size (internal ids run from 1 to ``n_items``)."""
        self._check_fitted()
        return self.item_map.size  # type: ignore[union-attr]

    # ------------------------------------------------------------------ ranking
    def rank(
        self, request: RankRequest, *, progress: Callable[[int], None] | None = None
    ) -> Ranking:
        """Rank items for the rows of ``request`` (internal ids in, internal ids out).

        Args:
            request: what to rank (histories, rows, k, masks, tie-breaking).
            progress: called with the number of rows after every batch.

        Returns:
            A :class:`Ranking`, rows in the request's order.
        """
        self._check_fitted()
        if not isinstance(request, RankRequest):
            raise TypeError(f"rank() expects a RankRequest, got {type(request).__name__}")
        hist = request.histories
        if hist.n_items != self.n_items:
            raise DataValidationError(
                f"the request's histories cover {hist.n_items} items, the model {self.n_items}"
            )
        rows, k = request.rows, request.k
        U = len(rows)
        items = np.zeros((U, k), dtype=np.int64)
        scores = np.full((U, k), -np.inf, dtype=np.float32)
        all_scores = None
        if request.keep_scores and isinstance(self, ScoringRecommender):
            all_scores = np.zeros((U, self.n_items + 1), dtype=np.float32)
        user_ids = rows if request.user_ids is None else request.user_ids
        popular = np.zeros(U, dtype=bool) if request.popular is None else request.popular
        order = self._row_order(hist, rows)
        size = request.batch_size
        if isinstance(self, ScoringRecommender):  # a batch's score matrix stays bounded
            row_bytes = 4 * (self.n_items + 1) * (2 if all_scores is not None else 1)
            size = max(1, min(size, request.max_batch_bytes // row_bytes))
        for start in range(0, U, size):
            pos = np.arange(start, min(start + size, U))
            if order is not None:
                pos = order[pos]  # positions into rows; results land back at these positions
            batch = hist.batch(rows[pos], user_ids=user_ids[pos])
            cand = request.candidates
            if cand is not None and sp.issparse(cand):
                cand = cand[pos]
            demote = None if request.demote is None else request.demote[pos]
            fallback = popular[pos] | (
                self.popular_for_empty_history
                & (batch.user_ids == 0)
                & (np.diff(batch.matrix.indptr) == 0)
            )
            out = self._rank_batch(
                batch, k, request.exclude_seen, cand, demote, fallback, all_scores is not None
            )
            items[pos], scores[pos] = out.items, out.scores
            if all_scores is not None and out.all_scores is not None:
                all_scores[pos] = out.all_scores
            if progress is not None:
                progress(len(pos))
        return Ranking(items, scores, all_scores)

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray | None:
        """The order in which :meth:`rank` batches ``rows`` (a permutation of positions into
        ``rows``), or ``None`` to keep the given order. Results come back in the caller's
        order either way. A model whose batch cost follows the longest history in the batch
        (TIGER trims padding) sorts by history length so that each batch pads little."""
        return None

    @abstractmethod
    def _rank_batch(
        self,
        batch: HistoryBatch,
        k: int,
        exclude_seen: bool,
        candidates: np.ndarray | sp.csr_matrix | None,
        demote: sp.csr_matrix | None,
        fallback: np.ndarray,
        keep_scores: bool,
    ) -> Ranking:
        """One batch of :meth:`rank`: the strategy (score every item, or generate a list)."""

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
                defaults to the training data.
            on_unknown: ``"raise"`` (default) raises :class:`UnknownIdError` for users not
                seen in training; ``"popular"`` ranks them by training popularity (cold start).
            batch_size: users scored at once (bounds memory).
        """
        self._check_fitted()
        k = self._check_k(k)
        if on_unknown not in ("raise", "popular"):
            raise ConfigError(f"on_unknown must be 'raise' or 'popular', got {on_unknown!r}")
        _check_ids(users, "recommend() users", scalar_ok=True)
        _check_flag(exclude_seen, "exclude_seen")
        if history is not None and not isinstance(history, Dataset):
            raise GenrecTypeError(
                f"recommend() history must be a genrec.Dataset (e.g. split.test.history), "
                f"got {type(history).__name__}"
            )
        users = np.atleast_1d(np.asarray(users, dtype=object))
        if users.ndim != 1:
            raise DataValidationError(f"recommend() users must be a flat list, got {users.shape}")
        if users.size == 0:
            raise DataValidationError("recommend() got an empty list of users")
        _check_result_size(len(users), k, "users")
        internal = self.user_map.to_internal(users, missing="zero")  # type: ignore[union-attr]
        if on_unknown == "raise" and (internal == 0).any():
            bad = [u for u, i in zip(users, internal) if i == 0][:5]
            raise UnknownIdError(
                f"unknown user id(s) {bad} ({int((internal == 0).sum())} of {len(users)}); "
                "pass on_unknown='popular' to rank them by popularity"
            )
        request = RankRequest(
            histories=self._histories_for(history),
            rows=internal,
            k=k,
            exclude_seen=exclude_seen,
            candidates=self._candidate_mask(candidates),
            popular=internal == 0,
            batch_size=batch_size,
        )
        ranking = self.rank(request)
        return self._package(users, ranking.items, ranking.scores)

    def recommend_for_history(
        self,
        histories: Sequence[Sequence[Any]],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | np.ndarray | None = None,
    ) -> Recommendations:
        """Top-``k`` for ad-hoc histories: each a chronological list of external item ids."""
        self._check_fitted()
        k = self._check_k(k)
        _check_flag(exclude_seen, "exclude_seen")
        _check_ids(histories, "recommend_for_history() histories", nested=True)
        _check_result_size(len(histories), k, "histories")
        total = sum(len(h) for h in histories)
        if total > MAX_HISTORY_ITEMS:
            raise ResourceLimitError(
                f"recommend_for_history(): the histories are too long ({total:,} items in all, "
                f"more than {MAX_HISTORY_ITEMS:,}); pass fewer or shorter histories per call"
            )
        seqs = [
            self.item_map.to_internal(list(h), what="item") if len(h) else [] for h in histories
        ]  # type: ignore[union-attr]
        request = RankRequest(
            histories=UserHistories.from_sequences(seqs, self.n_items),
            rows=np.arange(len(seqs), dtype=np.int64),
            k=k,
            exclude_seen=exclude_seen,
            candidates=self._candidate_mask(candidates),
            user_ids=np.zeros(len(seqs), np.int64),
        )
        ranking = self.rank(request)
        return self._package(np.full(len(seqs), None, dtype=object), ranking.items, ranking.scores)

    def _check_k(self, k: Any) -> int:
        """``k`` as an int, lowered to the catalogue size with a
        :class:`~genrec.errors.KClampedWarning` when larger (a list cannot hold more items
        than there are, and ``k`` sizes the result arrays)."""
        k = check_k(k)
        n_items = self.n_items
        if k > n_items:
            warnings.warn(
                f"k={k} is larger than the catalogue ({n_items:,} items); "
                f"returning lists of at most {n_items:,} items",
                KClampedWarning,
                stacklevel=caller_stacklevel(),
            )
            return n_items
        return k

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
        _check_ids(candidates, "candidates", sets_ok=True)
        if isinstance(candidates, (set, frozenset)):
            candidates = list(candidates)
        ids = self.item_map.to_internal(np.asarray(candidates, dtype=object), what="item")  # type: ignore[union-attr]
        mask = np.zeros(self.n_items + 1, dtype=bool)
        mask[ids] = True
        return mask

    def _package(self, users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> Recommendations:
        ext = self.item_map.to_external(items.reshape(-1)).reshape(items.shape)  # type: ignore[union-attr]
        return Recommendations(users, ext, scores.astype(np.float32), items)

    # ------------------------------------------------------------------ capabilities
    def max_list_length(self) -> int:
        """The longest list :meth:`rank` can return (the catalogue; a beam-search generator:
        its number of beams). Callers that want long lists (the cascade's candidate
        sources) cap their request at it."""
        return self.n_items

    def item_embeddings(self) -> np.ndarray | None:
        """Item vectors ``(n_items + 1, d)`` float32 (row 0 = padding), or ``None`` for a
        model without them. ID-embedding models (SASRec, GRU4Rec, ALS, ...) return their item
        table; the text and tokenizer code uses it (e.g. codes from collaborative vectors)."""
        return None

    def text_vectors(self) -> tuple[Any, np.ndarray | sp.csr_matrix, np.ndarray] | None:
        """The model's own item text representation, ``(encoder, vectors, has_text)``: the
        fitted :class:`~genrec.text.encoders.TextEncoder`, ``(n_items + 1, d)`` item vectors
        and a bool mask of the items that have text; ``None`` for a model without one (free-text
        search then encodes the item titles itself). ``textknn`` returns its own."""
        return None

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

    def _save_artifacts(self, directory: Path) -> None:  # noqa: B027
        """Write files beyond the weights into the artifact folder being written (composite
        models: the cascade's nested artifacts). Default: nothing."""

    def _load_artifacts(self, path: Path) -> None:  # noqa: B027
        """Counterpart of :meth:`_save_artifacts`, called after :meth:`_load_state_dict`."""

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write an artifact directory atomically (see :mod:`genrec.io`).

        Args:
            path: a new path, an empty folder, or an artifact genrec wrote earlier (replaced
                only with ``overwrite=True``). A file or a folder genrec did not write is
                never touched: :class:`~genrec.paths.OutputPathError`.
            overwrite: replace an existing genrec artifact at ``path``.
        """
        self._check_fitted()
        return save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load an artifact written by :meth:`save`."""
        model = load_model(path)
        if not isinstance(model, cls):
            raise TypeError(
                f"artifact at {path} holds a {type(model).__name__}, not {cls.__name__}"
            )
        return model


def _fit_options(options: FitOptions | None, fields: dict[str, Any]) -> FitOptions:
    if options is not None and not isinstance(options, FitOptions):
        raise TypeError(f"fit(options=...) expects a FitOptions, got {type(options).__name__}")
    opts = options or FitOptions()
    if fields:
        known = set(FitOptions.__dataclass_fields__)
        unknown = sorted(set(fields) - known)
        if unknown:
            raise TypeError(
                f"fit() got unexpected keyword argument(s) {unknown}; options are {sorted(known)}"
            )
        opts = FitOptions(**{**opts.__dict__, **fields})
    return opts


# ---------------------------------------------------------------------- shared masking
def _candidate_rows(candidates: np.ndarray | sp.csr_matrix, n_cols: int) -> torch.Tensor:
    """Allow-list as a bool tensor: ``(1, N)`` for a global mask, ``(B, N)`` per row."""
    if sp.issparse(candidates):
        return csr_to_bool(candidates.tocsr(), n_cols)
    return torch.from_numpy(np.asarray(candidates, dtype=bool))[None, :]


def _mask_scores(
    scores: torch.Tensor,
    batch: HistoryBatch,
    exclude_seen: bool,
    candidates: np.ndarray | sp.csr_matrix | None,
) -> torch.Tensor:
    """``scores`` ``(B, n_items + 1)`` with padding, seen items (``exclude_seen``) and items
    outside ``candidates`` set to ``-inf`` (in place)."""
    scores[:, 0] = float("-inf")
    if exclude_seen:
        m = batch.matrix
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        cols = m.indices.astype(np.int64)
        scores[torch.from_numpy(rows), torch.from_numpy(cols)] = float("-inf")
    if candidates is not None:
        scores.masked_fill_(~_candidate_rows(candidates, scores.shape[1]), float("-inf"))
    return scores


def allowed_items(
    batch: HistoryBatch,
    n_items: int,
    exclude_seen: bool,
    candidates: np.ndarray | sp.csr_matrix | None,
) -> torch.Tensor:
    """The items each row may get: ``(B, n_items + 1)`` bool (padding, seen items when
    ``exclude_seen``, and items outside ``candidates`` are False)."""
    return AllowedItems.build(batch, n_items, exclude_seen, candidates).dense()


class AllowedItems:
    """The items each row of a batch may get, kept without a ``(B, n_items + 1)`` table
    when it can be: what a :class:`GenerativeRecommender` receives.

    Padding (item 0) is never allowed. Excluded seen items are kept as the batch's sparse
    history rows (:attr:`denied`); only a candidate allow-list is held dense
    (:attr:`candidates`). A generator whose search works on a deny-list (TIGER's trie) reads
    :attr:`denied` and never pays for the catalogue; any other reads :meth:`dense`.

    Attributes:
        n_items: catalogue size (columns are ``0..n_items``).
        denied: ``(B, n_items + 1)`` CSR of excluded (seen) items, or ``None``.
        candidates: ``(B, n_items + 1)`` or ``(1, n_items + 1)`` bool allow-list, or ``None``.
    """

    def __init__(
        self,
        n_rows: int,
        n_items: int,
        denied: sp.csr_matrix | None = None,
        candidates: torch.Tensor | None = None,
    ):
        self.n_rows, self.n_items = int(n_rows), int(n_items)
        self.denied = None
        if denied is not None:  # the stored pattern counts, whatever the weight (even 0)
            m = sp.csr_matrix(denied)
            flags = np.ones(m.nnz, dtype=bool)
            self.denied = sp.csr_matrix((flags, m.indices, m.indptr), shape=m.shape)
            self.denied.sum_duplicates()  # also sorts the indices of every row
        self.candidates = candidates
        self._dense: torch.Tensor | None = None
        self._denied_keys: np.ndarray | None = None  # row * (n_items + 1) + item, sorted

    @classmethod
    def build(
        cls,
        batch: HistoryBatch,
        n_items: int,
        exclude_seen: bool,
        candidates: np.ndarray | sp.csr_matrix | None,
    ) -> AllowedItems:
        """The allow-list of :meth:`Recommender.rank`'s options for one batch."""
        cand = None if candidates is None else _candidate_rows(candidates, n_items + 1)
        return cls(len(batch), n_items, batch.matrix if exclude_seen else None, cand)

    def __len__(self) -> int:
        return self.n_rows

    @property
    def catalogue_free(self) -> bool:
        """``True`` when no dense allow-list is involved (only seen items are excluded)."""
        return self.candidates is None

    def dense(self) -> torch.Tensor:
        """``(B, n_items + 1)`` bool: ``True`` where the row may get the item (built once)."""
        if self._dense is None:
            n_cols = self.n_items + 1
            allowed = torch.ones(self.n_rows, n_cols, dtype=torch.bool)
            allowed[:, 0] = False
            if self.denied is not None:
                allowed &= ~csr_to_bool(self.denied, n_cols)
            if self.candidates is not None:
                allowed &= self.candidates
            self._dense = allowed
        return self._dense

    def numpy(self) -> np.ndarray:
        """:meth:`dense` as a numpy array."""
        return self.dense().numpy()

    def denied_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, items)`` int64 of the excluded (seen) items, each pair once."""
        if self.denied is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        m = self.denied
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        return rows, m.indices.astype(np.int64)

    def contains(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Whether ``items`` ``(R, K)`` (row ``r`` of it belongs to batch row ``rows[r]``,
        default ``r``) are allowed: ``(R, K)`` bool, without a dense table unless candidates
        are set."""
        items = np.asarray(items, dtype=np.int64)
        rows = np.arange(len(items)) if rows is None else np.asarray(rows, dtype=np.int64)
        ok = (items > 0) & (items <= self.n_items)
        safe = np.where(ok, items, 0)
        if self.denied is not None and self.denied.nnz:
            n = self.n_items + 1
            if self._denied_keys is None:  # once per batch, not per call (TIGER's cold items)
                d_rows, d_items = self.denied_pairs()
                self._denied_keys = d_rows * n + d_items  # sorted: CSR order, sorted indices
            keys = self._denied_keys
            query = rows[:, None] * n + safe
            pos = np.searchsorted(keys, query).clip(max=len(keys) - 1)
            ok &= keys[pos] != query
        if self.candidates is not None:
            cand = self.candidates.numpy()  # (1 or B, n_items + 1)
            c_rows = np.zeros_like(rows) if len(cand) == 1 else rows
            ok &= cand[c_rows[:, None], safe]
        return ok

    def dense_rows(self, rows: np.ndarray) -> torch.Tensor:
        """:meth:`dense` of some rows only, ``(len(rows), n_items + 1)`` bool."""
        rows = np.asarray(rows, dtype=np.int64)
        cand = self.candidates
        if cand is not None and len(cand) > 1:
            cand = cand[torch.from_numpy(rows)]
        denied = None if self.denied is None else self.denied[rows]
        return AllowedItems(len(rows), self.n_items, denied, cand).dense()


class ScoringRecommender(Recommender):
    """A model that scores every catalogue item; :meth:`rank` masks and takes the top-k."""

    #: ``True`` when :meth:`_score` returns a new float32 tensor on every call (neither a
    #: view of nor a reference to anything the model keeps): :meth:`rank` then masks it in
    #: place instead of copying it first (one ``(B, n_items + 1)`` copy less per batch).
    #: The default ``False`` is always safe.
    fresh_scores: ClassVar[bool] = False

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
        """Scores that :meth:`rank` ranks (default :meth:`score`); a model whose scoring
        depends on ``exclude_seen`` (the cascade's candidate generation) overrides this."""
        return self.score(batch)

    def _rank_batch(self, batch, k, exclude_seen, candidates, demote, fallback, keep_scores):
        if fallback.all():  # nothing for the model to score
            scores = torch.zeros(len(batch), self.n_items + 1)
        else:
            scores = self._recommendation_scores(batch, exclude_seen)
            if not self.fresh_scores:  # the model may keep what it returned: mask a copy
                scores = scores.clone()
        if fallback.any():  # an empty anonymous history carries no signal: popularity
            pop = torch.as_tensor(self.item_popularity_, dtype=torch.float32)
            scores[torch.from_numpy(fallback)] = pop
        kept = scores.numpy().copy() if keep_scores else None
        _mask_scores(scores, batch, exclude_seen, candidates)
        idx, vals = topk_with_ties(scores, k, demote)
        return Ranking(idx.numpy(), vals.numpy(), kept)


class GenerativeRecommender(Recommender):
    """A model that decodes item lists (e.g. semantic-ID beam search) instead of scoring all
    items. :meth:`_generate` gets the allowed items and may enforce them while decoding (TIGER
    masks them inside its beam search); :meth:`rank` then drops anything not allowed, breaks
    ties pessimistically within equal scores, pads, and applies the empty-history fallback."""

    @abstractmethod
    def _generate(
        self, batch: HistoryBatch, k: int, allowed: AllowedItems
    ) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids ``(B, k')`` best first (0 = padding) and their scores.

        Args:
            batch: the users' histories.
            k: the list length wanted (a generator may return more or fewer).
            allowed: the items each row may get: :meth:`AllowedItems.dense` gives the
                ``(B, n_items + 1)`` bool table; a generator that can work from the seen
                items alone (:attr:`AllowedItems.denied`) avoids the catalogue-sized table.
        """

    def _rank_batch(self, batch, k, exclude_seen, candidates, demote, fallback, keep_scores):
        B = len(batch)
        allowed = AllowedItems.build(batch, self.n_items, exclude_seen, candidates)
        out_i = np.zeros((B, k), dtype=np.int64)
        out_s = np.full((B, k), -np.inf, dtype=np.float32)
        if not fallback.all():
            items, scores = self._generate(batch, k, allowed)
            items = np.asarray(items, dtype=np.int64)
            scores = np.asarray(scores, dtype=np.float32)
            keep = (items > 0) & np.isfinite(scores)
            keep &= allowed.contains(items)
            order = np.argsort(~keep, axis=1, kind="stable")  # kept first, in generated order
            items = np.take_along_axis(items, order, 1)
            scores = np.take_along_axis(scores, order, 1)
            keep = np.take_along_axis(keep, order, 1)
            items, scores = np.where(keep, items, 0), np.where(keep, scores, -np.inf)
            if demote is not None and items.shape[1]:
                items, scores = _demote_within_ties(items, scores, demote)
            kk = min(k, items.shape[1])
            out_i[:, :kk], out_s[:, :kk] = items[:, :kk], scores[:, :kk]
        if fallback.any():
            pop = torch.as_tensor(self.item_popularity_, dtype=torch.float32)[None, :]
            rows = np.flatnonzero(fallback)
            pop = pop.expand(len(rows), -1).clone()
            pop.masked_fill_(~allowed.dense_rows(rows), float("-inf"))
            dem = None if demote is None else demote[rows]
            idx, vals = topk_with_ties(pop, k, dem)
            out_i[fallback], out_s[fallback] = idx.numpy(), vals.numpy()
        return Ranking(out_i, out_s)


def _demote_within_ties(
    items: np.ndarray, scores: np.ndarray, demote: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """Within every run of consecutive equal scores, items flagged in ``demote`` move after
    the others (stable); the generated order is kept otherwise."""
    B, K = items.shape
    flagged = np.asarray(demote[np.arange(B)[:, None], items].todense(), dtype=bool)
    flagged &= items > 0
    if not flagged.any():
        return items, scores
    new_run = np.ones((B, K), dtype=bool)
    new_run[:, 1:] = scores[:, 1:] != scores[:, :-1]
    key = np.cumsum(new_run, axis=1) * 2 + flagged
    order = np.argsort(key, axis=1, kind="stable")
    return np.take_along_axis(items, order, 1), np.take_along_axis(scores, order, 1)
