"""Interest exploration in the list: a share of the slots goes to predicted *novel* clusters.

After "LLMs for User Interest Exploration in Large-scale Recommendation Systems" (Wang et
al., RecSys 2024): the catalogue is cut into interest clusters
(:func:`genrec.ranking.clusters.fit_item_clusters`), a predictor guesses which clusters a
user has not touched lately but will want next
(:class:`genrec.ranking.novelty.NovelClusterPredictor`), and a share of the list is filled
from those clusters by the ordinary recommender restricted to them.

``explore`` wraps any registered model (``base``, fitted on the same data). For a list of
``k``:

1. the base model's top ``k - round(share * k)`` items come first, in its order;
2. the remaining ``round(share * k)`` exploration slots are filled round-robin from the
   ``n_novel`` best predicted novel clusters (best cluster first), each cluster's items
   ranked by the base model restricted to that cluster (``candidates``), skipping items
   already listed;
3. if the novel clusters run out of qualifying items, the base model's next items fill the
   rest.

The list's scores are ranks (``k``, ``k - 1``, ...): the two parts come from different score
scales. Neighbours from the same part with equal base scores keep equal scores, so that
:meth:`~genrec.core.recommender.Recommender.rank` breaks those ties against the evaluator's
held-out targets; the base model's next ``k`` items are returned too, so a tie at the base
list's cut-off is broken there as well (only a tie run longer than ``k`` items could still
reach past it). ``share=0`` returns the base model's list unchanged. Seen-item filtering
and candidates reach the base model as the allowed items of each row. Artifacts hold the
base model's own artifact under ``base/`` and the clusters in ``clusters.json``.

The wrapper is a composite model (like the cascade), so it lives on the ranking floor: it
ranks through the base model's public :meth:`~genrec.core.recommender.Recommender.rank`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from genrec.config import ModelConfig, field
from genrec.core.recommender import (
    AllowedItems,
    GenerativeRecommender,
    RankRequest,
    Recommender,
)
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ArtifactError, ConfigError
from genrec.registry import get_model, register_model


@dataclass(frozen=True)
class ExploreConfig(ModelConfig):
    """Config of :class:`Explore`."""

    base: str = field("ease", "registered model that ranks every slot (and each cluster)")
    base_config: dict[str, Any] | None = field(
        None, "config overrides of the base model (its seed defaults to this seed)"
    )
    share: float = field(0.2, "share of the k slots given to predicted novel clusters")
    n_novel: int = field(2, "predicted novel clusters that fill the exploration slots")
    n_clusters: int = field(32, "item interest clusters (balanced k-means)")
    cluster_source: Literal["collaborative", "text", "both"] = field(
        "collaborative", "item vectors of the clusters: collaborative SVD, text, or both"
    )
    predictor: Literal["popular", "transition", "gru", "lm"] = field(
        "gru", "next-novel-cluster predictor (genrec.ranking.novelty); 'lm' needs extra lm"
    )
    window: int = field(10, "history items whose clusters count as the user's current interests")
    predictor_epochs: int = field(5, "GRU epochs ('gru')")
    lm_steps: int = field(150, "LoRA steps ('lm')")

    def validate(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ConfigError(f"ExploreConfig.share must be in [0, 1], got {self.share!r}")
        self.positive("n_novel", "window", "predictor_epochs")
        self.positive("lm_steps", allow_zero=True)
        if self.n_clusters < 2:
            raise ConfigError(f"ExploreConfig.n_clusters must be >= 2, got {self.n_clusters}")
        if self.base == "explore":
            raise ConfigError("ExploreConfig.base cannot be 'explore' itself")


@register_model("explore")
class Explore(GenerativeRecommender):
    """A base recommender with exploration slots for predicted novel interest clusters."""

    config_class = ExploreConfig
    config: ExploreConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.base_: Recommender | None = None
        self.clusters_: Any = None
        self.predictor_: Any = None
        #: internal item ids of each cluster
        self.cluster_members_: list[np.ndarray] = []

    # ------------------------------------------------------------------ fitting
    def _base_model(self) -> Recommender:
        cls = get_model(self.config.base)
        cfg = {"seed": self.config.seed, **(self.config.base_config or {})}
        return cls(cls.config_class.from_dict(cfg))

    def _predictor(self) -> Any:
        from genrec.ranking.novelty import NovelClusterPredictor

        c = self.config
        return NovelClusterPredictor(
            c.predictor, window=c.window, epochs=c.predictor_epochs, lm_steps=c.lm_steps,
            seed=c.seed,
        )  # fmt: skip

    def _fit(self, dataset: Dataset, valid: Any) -> None:
        from genrec.ranking.clusters import fit_item_clusters

        c = self.config
        self.base_ = self._base_model().fit(dataset, valid)
        self.clusters_ = fit_item_clusters(
            dataset, c.n_clusters, source=c.cluster_source, seed=c.seed, names=c.predictor == "lm"
        )
        self.predictor_ = self._predictor().fit(dataset, self.clusters_)
        self.cluster_members_ = _cluster_members(self.clusters_)
        self.training_info_ = self.base_.training_info_

    @classmethod
    def from_fitted(
        cls, base: Recommender, clusters: Any, predictor: Any, **config: Any
    ) -> Explore:
        """Wrap an already fitted base model, clusters and predictor (no refit), e.g. to
        sweep ``share`` without refitting anything. ``config`` sets the other fields."""
        if not base.is_fitted or predictor.clusters is None:
            raise ConfigError("from_fitted needs a fitted base model and a fitted predictor")
        model = cls(base=base.name, **config)
        model.user_map, model.item_map = base.user_map, base.item_map
        model.train_histories_ = base.train_histories_
        model.item_popularity_ = base.item_popularity_
        model.item_titles_ = base.item_titles_
        model.base_, model.clusters_, model.predictor_ = base, clusters, predictor
        model.cluster_members_ = _cluster_members(clusters)
        return model

    # ------------------------------------------------------------------ recommending
    def _allow(self, clusters: np.ndarray, allowed: sp.csr_matrix) -> sp.csr_matrix:
        """Per row the items of one cluster (``-1``: none) that the row may get."""
        n = self.n_items + 1
        rows, cols = [], []
        for r, c in enumerate(clusters):
            if c >= 0:
                m = self.cluster_members_[int(c)]
                rows.append(np.full(len(m), r))
                cols.append(m)
        r_all = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c_all = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        allow = sp.csr_matrix(
            (np.ones(len(r_all), dtype=np.float32), (r_all, c_all)), shape=(len(clusters), n)
        )
        return allow.multiply(allowed).tocsr().astype(np.float32)

    def _base_rank(
        self, batch: HistoryBatch, k: int, allowed: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """The base model's top-``k`` (internal ids, scores) within ``allowed``."""
        assert self.base_ is not None
        request = RankRequest(
            histories=batch.as_histories(),
            rows=np.arange(len(batch), dtype=np.int64),
            k=max(1, min(k, self.base_.max_list_length())),
            exclude_seen=False,  # ``allowed`` already leaves seen items out when asked
            candidates=allowed,
            user_ids=batch.user_ids,
            batch_size=max(len(batch), 1),
        )
        ranking = self.base_.rank(request)
        return ranking.items, ranking.scores

    def _generate(
        self, batch: HistoryBatch, k: int, allowed: AllowedItems
    ) -> tuple[np.ndarray, np.ndarray]:
        allow_all = sp.csr_matrix(allowed.numpy())
        # the base list runs k items past the cut-off, so rank() breaks a tie there too
        base_items, base_scores = self._base_rank(batch, 2 * k, allow_all)
        n_exp = min(k, int(round(self.config.share * k)))
        if n_exp == 0:
            return base_items, base_scores
        B = len(batch)
        novel = self.predictor_.predict(batch, k=self.config.n_novel)  # (B, n_novel)
        picks = []  # per novel cluster: (items (B, n_exp), scores (B, n_exp))
        for j in range(novel.shape[1]):
            picks.append(self._base_rank(batch, n_exp, self._allow(novel[:, j], allow_all)))
        width = base_items.shape[1] + n_exp
        out = np.zeros((B, width), dtype=np.int64)
        part = np.full((B, width), -1, dtype=np.int64)  # 0: base list, 1 + j: cluster j
        value = np.full((B, width), -np.inf, dtype=np.float32)  # the part's own score
        for r in range(B):
            chosen: list[tuple[int, int, float]] = []
            taken: set[int] = set()
            for i, v in zip(base_items[r, : k - n_exp], base_scores[r, : k - n_exp]):
                if i > 0:
                    chosen.append((int(i), 0, float(v)))
                    taken.add(int(i))
            n_explore = 0
            for pos in range(n_exp):  # round-robin: best cluster's best, next cluster's best...
                for j, (items, scores) in enumerate(picks):
                    i = int(items[r, pos])
                    if i > 0 and i not in taken and n_explore < n_exp:
                        chosen.append((i, 1 + j, float(scores[r, pos])))
                        taken.add(i)
                        n_explore += 1
            for i, v in zip(base_items[r, k - n_exp :], base_scores[r, k - n_exp :]):
                if i > 0 and int(i) not in taken:
                    chosen.append((int(i), 0, float(v)))
                    taken.add(int(i))
            if chosen:
                out[r, : len(chosen)] = [c[0] for c in chosen]
                part[r, : len(chosen)] = [c[1] for c in chosen]
                value[r, : len(chosen)] = [c[2] for c in chosen]
        return out, _rank_scores(out, part, value)

    def novel_clusters(self, histories: Any, k: int | None = None) -> np.ndarray:
        """The ``k`` (default ``n_novel``) predicted novel clusters of each history."""
        self._check_fitted()
        return self.predictor_.predict(histories, k=k or self.config.n_novel)

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        return {f"novelty.{k}": np.asarray(v) for k, v in self.predictor_.state_dict().items()}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._pending_state = state

    def _save_artifacts(self, directory: Path) -> None:
        assert self.base_ is not None
        self.base_.save(directory / "base")
        from genrec.paths import to_jsonable

        (directory / "clusters.json").write_text(json.dumps(to_jsonable(self.clusters_.to_dict())))

    def _load_artifacts(self, path: Path) -> None:
        from genrec.io import load_model
        from genrec.ranking.clusters import ItemClusters

        self.base_ = load_model(path / "base")
        if self.base_.item_map != self.item_map or self.base_.user_map != self.user_map:
            raise ArtifactError(f"explore artifact at {path}: the base model has other id maps")
        try:
            self.clusters_ = ItemClusters.from_dict(
                json.loads((path / "clusters.json").read_text())
            )
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"explore artifact at {path}: clusters.json unreadable: {exc}"
            ) from exc
        state = getattr(self, "_pending_state", {})
        self.predictor_ = self._predictor()
        self.predictor_.load_state_dict(
            self.clusters_, {k[len("novelty.") :]: v for k, v in state.items()}
        )
        self.cluster_members_ = _cluster_members(self.clusters_)
        self._pending_state = {}


def _cluster_members(clusters: Any) -> list[np.ndarray]:
    """Internal item ids of each cluster of ``clusters`` (an ItemClusters)."""
    lab = clusters.labels
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(clusters.n_clusters + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(clusters.n_clusters)]


def _rank_scores(items: np.ndarray, part: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Scores of a merged list: its ranks (``width``, ``width - 1``, ...), except that a
    neighbour from the same part with the same score as the item before it shares that
    item's score (a tie stays a tie, for the pessimistic tie-breaking of ``rank()``)."""
    B, W = items.shape
    scores = np.broadcast_to((W - np.arange(W, dtype=np.float32))[None, :], (B, W)).copy()
    for p in range(1, W):
        same = (part[:, p] == part[:, p - 1]) & (value[:, p] == value[:, p - 1])
        scores[same, p] = scores[same, p - 1]
    return np.where(items > 0, scores, -np.inf).astype(np.float32)
