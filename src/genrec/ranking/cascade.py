"""The industrial two-stage cascade: candidate generators + a gradient-boosted ranker.

Stage 1 takes the union of the top-N of any set of registered models (``candidates``);
stage 2 reranks that union with CatBoost (``YetiRank``/``PairLogit``) or LightGBM
(``lambdarank``) over the features of :mod:`genrec.ranking.features`.

**No-leak protocol** (inside :meth:`Cascade.fit`, which only ever sees the training data):

1. the *ranker window* is the last training interaction of every user with at least two;
2. the candidate models are fitted on the training data *without* that window (early
   stopping, if any, uses the ``valid`` holdout the caller passed, as for any model), the
   feature statistics are computed from the same reduced data, and the ranker learns to put
   the window item first among those models' candidates;
3. for inference the candidate models are refitted on the full training data (``refit``,
   default) and the feature statistics recomputed from it; ``refit: false`` keeps the
   window-less models (faster, one interaction per user staler).

The test holdout is never an argument of ``fit``; ``tests/ranking/test_cascade.py`` checks
that neither the ranker labels nor any candidate model's training data contain a test
target. Candidate recall@N of each source and of the union on the ranker window (the ceiling
of the ranker) is kept in :attr:`Cascade.candidate_recall` and in ``training_info_``.

Items outside the union are still ranked (below every candidate), by the first scoring
source's scores (popularity for generative sources), so the model scores the whole
catalogue like any :class:`~genrec.core.recommender.ScoringRecommender`.

Artifacts: the usual files plus ``cascade.json`` (sources, feature names, candidate recall),
``sources/<i>-<name>/`` (each candidate model's own artifact) and ``ranker/`` (CatBoost
``.cbm`` or LightGBM text model). No pickle anywhere.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from genrec.config import ModelConfig, field
from genrec.core.recommender import ScoringRecommender
from genrec.data.dataset import Dataset, HistoryBatch, UserHistories
from genrec.errors import ArtifactError, ConfigError, DataValidationError
from genrec.io import load_model
from genrec.paths import to_jsonable
from genrec.ranking.candidates import (
    CandidateSet,
    SourceSpec,
    parse_sources,
    source_top_n,
    union_candidates,
)
from genrec.ranking.features import FeatureBuilder
from genrec.ranking.interest import InterestGRU, InterestPredictor, item_category_table
from genrec.ranking.ranker import Ranker
from genrec.registry import get_model, register_model
from genrec.text.embed import collaborative_vectors, embed_items

InterestMethod = Literal["none", "majority", "last", "gru"]


@dataclass(frozen=True)
class CascadeConfig(ModelConfig):
    """Config of :class:`Cascade`."""

    candidates: tuple[Any, ...] = field(
        ("als",),
        "candidate sources: model names or {model, n, config, preset, path, name} mappings",
    )
    n: int = field(100, "candidates per source (top-N) unless a source sets its own n")
    ranker: Literal["catboost", "lightgbm"] = field("catboost", "'catboost' or 'lightgbm'")
    loss: str = field(
        "default",
        "ranking loss: YetiRank (default) or PairLogit for catboost; lambdarank for lightgbm",
    )
    iterations: int = field(300, "boosting rounds of the ranker")
    learning_rate: float = field(0.05, "ranker learning rate")
    depth: int = field(6, "tree depth (lightgbm: num_leaves = 2**depth - 1)")
    threads: int = field(2, "CPU threads of the ranker")
    refit: bool = field(True, "refit the candidate models on all training data for inference")
    max_ranker_users: int = field(0, "train the ranker on at most this many users (0 = all)")
    recent_days: float = field(30.0, "window of the recent-popularity feature (days)")
    user_window_days: float = field(30.0, "window of the popularity-at-user-time feature (days)")
    cooc_window: int = field(5, "steps of the sequential co-occurrence features")
    source_vectors: bool = field(True, "cosine features from the sources' item embeddings")
    categories: bool = field(True, "category-match features when items have categories")
    interest: InterestMethod = field(
        "none", "add an InterestPredictor feature: 'none', 'majority', 'last' or 'gru'"
    )
    text_features: bool = field(False, "text-similarity features (offline MiniLM, cached)")
    batch_size: int = field(512, "users per candidate/feature batch")

    def validate(self) -> None:
        self.positive("n", "iterations", "learning_rate", "depth", "threads", "cooc_window")
        self.positive("batch_size", "recent_days", "user_window_days")
        self.positive("max_ranker_users", allow_zero=True)
        parse_sources(list(self.candidates), self.n)
        Ranker(self.ranker, self.loss)  # validates the loss for the ranker kind

    def sources(self) -> list[SourceSpec]:
        return parse_sources(list(self.candidates), self.n)


def _window_mask(dataset: Dataset) -> np.ndarray:
    """The last interaction of every user with at least two (aligned with interactions)."""
    counts = np.bincount(dataset.user_idx, minlength=dataset.n_users + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(dataset.n_interactions) - starts[dataset.user_idx]
    lens = counts[dataset.user_idx]
    return (pos == lens - 1) & (lens >= 2)


@register_model("cascade")
class Cascade(ScoringRecommender):
    """Candidate generators + gradient-boosted ranker (see module docs)."""

    summary = "Candidates from several models re-ranked by a CatBoost or LightGBM ranker."

    config_class = CascadeConfig
    config: CascadeConfig

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, valid: Any) -> None:
        # Resolve presets into the config now: the saved artifact is then self-contained
        # (loading never re-reads a preset file that may have moved or changed).
        resolved = []
        for spec in self.config.sources():
            entry = {
                "model": spec.model,
                "n": spec.n,
                "name": spec.name,
                "config": self._source_model(spec).config.to_dict(),
            }
            if spec.path:
                entry["path"] = spec.path
            resolved.append(entry)
        self.config = self.config.replace(candidates=resolved)
        cfg = self.config
        specs = cfg.sources()
        self.specs_ = specs
        window = _window_mask(dataset)
        if not window.any():
            raise DataValidationError(
                "the cascade needs users with at least two training interactions (the last "
                "one trains the ranker)"
            )
        inner = dataset.subset(~window)
        w_users, w_items = dataset.user_idx[window], dataset.item_idx[window]
        if cfg.max_ranker_users and len(w_users) > cfg.max_ranker_users:
            rng = np.random.default_rng(cfg.seed)
            keep = np.sort(rng.choice(len(w_users), cfg.max_ranker_users, replace=False))
            w_users, w_items = w_users[keep], w_items[keep]
        # ---- stage 1 on the data before the window; ranker trained on its candidates
        prefitted = [self._load_prefitted(s, dataset) if s.path else None for s in specs]
        inner_models = [self._fit_source(s, inner, valid) for s in specs]
        interest_in = self._fit_interest(inner)
        if interest_in is not None:  # the predictor's table keeps its features aligned
            cats, cat_names = interest_in.item_category_matrix, list(interest_in.categories)
        else:
            cats, cat_names = self._categories(dataset)
        text = self._text_vectors(dataset) if cfg.text_features else None
        builder = self._builder(inner_models, inner.histories(), cats, text, interest_in)
        X, y, sizes, recall = self._ranker_rows(
            inner_models, builder, inner.histories(), w_users, w_items
        )
        self.ranker_ = Ranker(
            cfg.ranker,
            cfg.loss,
            iterations=cfg.iterations,
            learning_rate=cfg.learning_rate,
            depth=cfg.depth,
            threads=cfg.threads,
            seed=cfg.seed,
        ).fit(X, y, sizes, builder.feature_names)
        # ---- stage 1 for inference
        self.sources_ = []
        for spec, inner_m, pre in zip(specs, inner_models, prefitted):
            if pre is not None:
                self.sources_.append(pre)
            elif cfg.refit:
                self.sources_.append(self._fit_source(spec, dataset, valid))
            else:
                self.sources_.append(inner_m)
        self.interest_ = self._fit_interest(dataset)
        self.category_names_ = cat_names
        self.builder_ = self._builder(
            self.sources_, dataset.histories(), cats, text, self.interest_
        )
        self.candidate_recall_ = recall
        self.training_info_ = {
            "candidate_recall": recall,
            "ranker_users": int(len(sizes)),
            "ranker_rows": int(len(y)),
            "window_users": int(len(w_users)),
            "features": builder.feature_names,
            "sources": {s.name: m.training_info_ for s, m in zip(specs, self.sources_)},
        }

    @property
    def candidate_recall(self) -> dict[str, Any]:
        """Recall@N of each source and of their union on the ranker's window (set by fit)."""
        self._check_fitted()
        return self.candidate_recall_

    def _source_model(self, spec: SourceSpec) -> Any:
        cfg = spec.resolved_config()
        if "seed" not in spec.config:
            cfg["seed"] = self.config.seed
        cls = get_model(spec.model)
        return cls(cls.config_class.from_dict(cfg))

    def _fit_source(self, spec: SourceSpec, data: Dataset, valid: Any) -> Any:
        return self._source_model(spec).fit(data, valid=valid)

    def _load_prefitted(self, spec: SourceSpec, dataset: Dataset) -> Any:

        model = load_model(spec.path)  # type: ignore[arg-type]
        if model.name != spec.model:
            raise ConfigError(
                f"candidate source {spec.name!r}: artifact {spec.path} holds a {model.name!r} "
                f"model, not {spec.model!r}"
            )
        if model.item_map != dataset.item_map or model.user_map != dataset.user_map:
            raise DataValidationError(
                f"candidate source {spec.name!r}: the artifact at {spec.path} was trained on "
                f"another dataset (its id maps: {model.user_map.size} users, "
                f"{model.item_map.size} items; this data: {dataset.n_users} users, "
                f"{dataset.n_items} items, or the same sizes with other ids)"
            )
        mine, theirs = dataset.histories().matrix, model.train_histories_.matrix
        if mine.shape != theirs.shape or mine.nnz != theirs.nnz or (mine != theirs).nnz:
            raise DataValidationError(
                f"candidate source {spec.name!r}: the artifact at {spec.path} was trained on "
                f"other interactions than this cascade's training data ({theirs.nnz:,} vs "
                f"{mine.nnz:,} user-item pairs); a source fitted on more data (e.g. with the "
                f"validation or test interactions) would leak them into the evaluation"
            )
        return model

    def _categories(self, dataset: Dataset) -> tuple[sp.csr_matrix | None, list[str]]:
        if not self.config.categories:
            return None, []
        try:
            names, mat = item_category_table(dataset)
        except DataValidationError:
            return None, []
        return mat, names

    def _interest_predictor(self) -> Any:

        return InterestPredictor(self.config.interest, seed=self.config.seed, num_threads=1)

    def _fit_interest(self, data: Dataset) -> Any:
        if self.config.interest == "none":
            return None
        return self._interest_predictor().fit(data)

    def _text_vectors(self, dataset: Dataset) -> np.ndarray:

        return embed_items(dataset, progress=False)

    def _builder(
        self,
        models: list[Any],
        hist: UserHistories,
        cats: sp.csr_matrix | None,
        text: np.ndarray | None,
        interest: Any,
    ) -> FeatureBuilder:
        cfg = self.config
        vectors: dict[str, np.ndarray] = {}
        if cfg.source_vectors:
            for spec, m in zip(self.specs_, models):
                with contextlib.suppress(TypeError, AttributeError):
                    vectors[f"{spec.name}_emb"] = collaborative_vectors(m)
        if text is not None:
            vectors["text"] = text
        return FeatureBuilder(
            [s.name for s in self.specs_],
            recent_days=cfg.recent_days,
            user_window_days=cfg.user_window_days,
            cooc_window=cfg.cooc_window,
        ).fit(
            hist,
            categories=cats,
            vectors=vectors,
            interest=None if interest is None else interest.predict_proba,
        )

    def _candidates(
        self, models: list[Any], batch: HistoryBatch, exclude_seen: bool
    ) -> tuple[CandidateSet, torch.Tensor | None]:
        lists, fallback = [], None
        for spec, m in zip(self.specs_, models):
            items, scores, full = source_top_n(
                m, batch, spec.n, exclude_seen, keep_scores=fallback is None
            )
            lists.append((items, scores))
            if fallback is None and full is not None:
                fallback = full
        return union_candidates(lists, [s.name for s in self.specs_], self.n_items), fallback

    def _ranker_rows(
        self,
        models: list[Any],
        builder: FeatureBuilder,
        hist: UserHistories,
        users: np.ndarray,
        targets: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Feature rows of the window users' candidates, labelled by the window item; keeps
        users whose target is among at least two candidates."""
        names = [s.name for s in self.specs_]
        hits = dict.fromkeys([*names, "union"], 0.0)
        Xs, ys, sizes = [], [], []
        bs = self.config.batch_size
        for start in range(0, len(users), bs):
            u, t = users[start : start + bs], targets[start : start + bs]
            batch = hist.batch(u)
            cand, _ = self._candidates(models, batch, exclude_seen=True)
            label = cand.items == t[cand.rows]
            for s, name in enumerate(names):
                hits[name] += float((label & cand.found[:, s]).sum())
            pos = np.bincount(cand.rows, weights=label, minlength=len(u))
            hits["union"] += float(pos.sum())
            size = cand.group_sizes()
            keep_rows = (pos > 0) & (size >= 2)
            keep = keep_rows[cand.rows]
            if keep.any():
                Xs.append(builder.transform(batch, cand)[keep])
                ys.append(label[keep].astype(np.float32))
                sizes.append(size[keep_rows])
        n_users = max(len(users), 1)
        recall = {
            "window": "last training interaction per user",
            "users": int(len(users)),
            "n": {s.name: s.n for s in self.specs_},
            "sources": {name: hits[name] / n_users for name in names},
            "union": hits["union"] / n_users,
        }
        F = len(builder.feature_names)
        X = np.concatenate(Xs) if Xs else np.zeros((0, F), dtype=np.float32)
        y = np.concatenate(ys) if ys else np.zeros(0, dtype=np.float32)
        g = np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)
        return X, y, g, recall

    # ------------------------------------------------------------------ scoring
    def cascade_scores(self, batch: HistoryBatch, exclude_seen: bool = True) -> torch.Tensor:
        """Scores ``(B, n_items + 1)``: the ranker's on the union of candidates, and below
        them every other item ordered by the fallback source (see module docs)."""
        cand, base = self._candidates(self.sources_, batch, exclude_seen)
        X = self.builder_.transform(batch, cand)
        s = self.ranker_.predict(X, self.builder_.feature_names)  # (M,)
        B, N = len(batch), self.n_items + 1
        if base is None:
            base = torch.as_tensor(self.item_popularity_, dtype=torch.float32)[None, :].expand(B, N)
        order = torch.argsort(base.float(), dim=1, descending=True, stable=True)  # (B, N)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(N).expand(B, N).contiguous())
        lo = np.zeros(B, dtype=np.float32)
        if len(s):
            lo[:] = np.inf
            np.minimum.at(lo, cand.rows, s)
            lo[np.isinf(lo)] = 0.0
        out = torch.from_numpy(lo)[:, None] - 1.0 - rank.float() / N  # (B, N)
        out[torch.from_numpy(cand.rows), torch.from_numpy(cand.items)] = torch.from_numpy(s)
        return out

    def _score(self, batch: HistoryBatch) -> torch.Tensor:
        return self.cascade_scores(batch, exclude_seen=True)

    def _recommendation_scores(self, batch: HistoryBatch, exclude_seen: bool) -> torch.Tensor:
        # candidate generation knows about exclude_seen (seen items are not candidates)
        return self.cascade_scores(batch, exclude_seen)

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        state = {f"features.{k}": v for k, v in self.builder_.state().items()}
        if self.interest_ is not None:
            state["interest.prior"] = np.asarray(self.interest_.prior_, dtype=np.float64)
            net = getattr(self.interest_, "network_", None)
            if net is not None:
                for k, v in net.state_dict().items():
                    state[f"interest.net.{k}"] = v.detach().cpu().numpy()
        return state

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._pending_state = state

    def _save_artifacts(self, directory: Path) -> None:
        """Nested artifacts (called by :func:`genrec.io.save_model` inside its temp dir)."""
        dirs = []
        for i, (spec, m) in enumerate(zip(self.specs_, self.sources_)):
            sub = f"sources/{i}-{spec.name}"
            m.save(directory / sub)
            dirs.append(sub)
        self.ranker_.save(directory / "ranker")
        meta = {
            "sources": [
                {"name": s.name, "model": s.model, "n": s.n, "dir": d}
                for s, d in zip(self.specs_, dirs)
            ],
            "feature_names": self.builder_.feature_names,
            "category_names": self.category_names_,
            "candidate_recall": self.candidate_recall_,
        }

        (directory / "cascade.json").write_text(json.dumps(to_jsonable(meta), indent=2))

    def _load_artifacts(self, path: Path) -> None:
        """Counterpart of :meth:`_save_artifacts` (called by :func:`genrec.io.load_model`)."""

        state = getattr(self, "_pending_state", {})
        try:
            meta = json.loads((path / "cascade.json").read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"cascade artifact at {path}: cascade.json unreadable: {exc}"
            ) from exc
        self.specs_ = self.config.sources()
        if [s["name"] for s in meta["sources"]] != [s.name for s in self.specs_]:
            raise ArtifactError(f"cascade artifact at {path}: sources do not match its config")
        self.sources_ = []
        for entry in meta["sources"]:
            m = load_model(path / entry["dir"])
            if m.item_map != self.item_map or m.user_map != self.user_map:
                raise ArtifactError(
                    f"cascade artifact at {path}: source {entry['name']!r} has other id maps"
                )
            self.sources_.append(m)
        self.ranker_ = Ranker.load(path / "ranker")
        self.category_names_ = list(meta.get("category_names", []))
        self.candidate_recall_ = meta.get("candidate_recall")
        feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        cats = FeatureBuilder.categories_from_state(feats)
        self.interest_ = None
        if self.config.interest != "none":
            self.interest_ = self._restore_interest(state, cats)
        stored = {k[len("vectors.") :]: v for k, v in feats.items() if k.startswith("vectors.")}
        order = [f"{s.name}_emb" for s in self.specs_] + ["text"]  # the fit order
        vectors = {name: stored[name] for name in order if name in stored}
        self.builder_ = FeatureBuilder(
            [s.name for s in self.specs_],
            recent_days=self.config.recent_days,
            user_window_days=self.config.user_window_days,
            cooc_window=self.config.cooc_window,
        ).fit(
            self.train_histories_,  # type: ignore[arg-type]
            categories=cats,
            vectors=vectors,
            interest=None if self.interest_ is None else self.interest_.predict_proba,
        )
        if self.builder_.feature_names != self.ranker_.feature_names:
            raise ArtifactError(
                f"cascade artifact at {path}: the ranker's features do not match the cascade's"
            )
        self._pending_state = {}

    def _restore_interest(self, state: dict[str, np.ndarray], cats: sp.csr_matrix | None) -> Any:

        pred = self._interest_predictor()
        pred.item_category_matrix = cats
        pred.categories = list(self.category_names_)
        pred.prior_ = state["interest.prior"]
        net = {
            k[len("interest.net.") :]: v for k, v in state.items() if k.startswith("interest.net.")
        }
        if net:
            gru = InterestGRU(
                len(pred.categories), pred.embedding_dim, pred.hidden_dim, pred.dropout
            )
            gru.load_state_dict({k: torch.from_numpy(v) for k, v in net.items()})
            gru.eval()
            pred.network_ = gru
        return pred


@dataclass(frozen=True)
class GenerativeCascadeConfig(CascadeConfig):
    """Config of :class:`GenerativeCascade`: SASRec and ALS candidates by default."""

    candidates: tuple[Any, ...] = field(
        ("sasrec", "als"),
        "candidate sources: model names or {model, n, config, preset, path, name} mappings",
    )


@register_model("cascade-sasrec")
class GenerativeCascade(Cascade):
    """The generative cascade: a sequential model (SASRec) and ALS generate candidates, the
    ranker reranks their union. Same code as ``cascade``; only the default sources differ."""

    summary = "The cascade with SASRec and ALS as the candidate generators."

    config_class = GenerativeCascadeConfig
    config: GenerativeCascadeConfig
