"""Gradient-boosted learning-to-rank models behind one small interface.

* ``catboost`` (default): :class:`catboost.CatBoostRanker` with ``YetiRank`` (default) or
  ``PairLogit`` (also ``YetiRankPairwise``, ``PairLogitPairwise``, ``QueryRMSE``);
  saved with ``save_model(format="cbm")``.
* ``lightgbm``: a LightGBM booster with the ``lambdarank`` objective (or ``rank_xendcg``);
  saved in LightGBM's text model format.

Both need the optional extra ``genrec[ranker]``. Rows of one query (one user) must be
contiguous; the ranker remembers its feature names and refuses a matrix with other columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrec.errors import (
    ArtifactError,
    ConfigError,
    DataValidationError,
    NotFittedError,
    require_extra,
)

__all__ = ["CATBOOST_LOSSES", "LIGHTGBM_LOSSES", "Ranker"]

CATBOOST_LOSSES = ("YetiRank", "PairLogit", "YetiRankPairwise", "PairLogitPairwise", "QueryRMSE")
LIGHTGBM_LOSSES = ("lambdarank", "rank_xendcg")
KINDS = ("catboost", "lightgbm")


class Ranker:
    """A learning-to-rank model over fixed, named feature columns.

    Args:
        kind: ``"catboost"`` or ``"lightgbm"``.
        loss: objective; ``"default"`` picks ``YetiRank`` (CatBoost) / ``lambdarank``.
        iterations: boosting rounds.
        learning_rate: shrinkage.
        depth: tree depth (CatBoost) / ``num_leaves = 2 ** depth - 1`` (LightGBM).
        threads: CPU threads for training and prediction.
        seed: random seed.
    """

    def __init__(
        self,
        kind: str = "catboost",
        loss: str = "default",
        *,
        iterations: int = 300,
        learning_rate: float = 0.05,
        depth: int = 6,
        threads: int = 1,
        seed: int = 0,
    ):
        if kind not in KINDS:
            raise ConfigError(f"ranker must be one of {list(KINDS)}, got {kind!r}")
        allowed = CATBOOST_LOSSES if kind == "catboost" else LIGHTGBM_LOSSES
        if loss == "default":
            loss = allowed[0]
        if loss not in allowed:
            raise ConfigError(
                f"loss {loss!r} is not available for {kind}; choose one of {list(allowed)}"
            )
        self.kind, self.loss = kind, loss
        self.iterations, self.learning_rate = int(iterations), float(learning_rate)
        self.depth, self.threads, self.seed = int(depth), max(1, int(threads)), int(seed)
        self.feature_names: list[str] | None = None
        self.model_: Any = None

    def __repr__(self) -> str:
        return f"Ranker({self.kind!r}, loss={self.loss!r}, iterations={self.iterations})"

    @property
    def is_fitted(self) -> bool:
        return self.model_ is not None

    # ------------------------------------------------------------------ training
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        group_sizes: np.ndarray,
        feature_names: Sequence[str],
    ) -> Ranker:
        """Train on ``X (N, F)`` with relevance ``y (N,)``; ``group_sizes`` are the row counts
        of consecutive queries (summing to N)."""
        X = self._check_matrix(X, list(feature_names))
        y = np.asarray(y, dtype=np.float32)
        sizes = np.asarray(group_sizes, dtype=np.int64)
        if len(y) != len(X) or sizes.sum() != len(X) or (sizes <= 0).any():
            raise DataValidationError(
                f"ranker fit: {len(X)} rows, {len(y)} labels, groups summing to {sizes.sum()}"
            )
        if len(X) == 0:
            raise DataValidationError("ranker fit: no training rows (no query has a positive)")
        self.feature_names = list(feature_names)
        if self.kind == "catboost":
            cb = require_extra("catboost", "ranker")
            groups = np.repeat(np.arange(len(sizes)), sizes)
            pool = cb.Pool(X, label=y, group_id=groups, feature_names=self.feature_names)
            model = cb.CatBoostRanker(
                loss_function=self.loss,
                iterations=self.iterations,
                learning_rate=self.learning_rate,
                depth=self.depth,
                thread_count=self.threads,
                random_seed=self.seed,
                verbose=False,
                allow_writing_files=False,
            )
            model.fit(pool)
            self.model_ = model
        else:
            lgb = require_extra("lightgbm", "ranker")
            data = lgb.Dataset(
                X, label=y, group=sizes, feature_name=self.feature_names, free_raw_data=True
            )
            params = {
                "objective": self.loss,
                "learning_rate": self.learning_rate,
                "num_leaves": max(2, 2**self.depth - 1),
                "min_data_in_leaf": 20,
                "num_threads": self.threads,
                "seed": self.seed,
                "deterministic": True,
                "force_row_wise": True,
                "verbose": -1,
            }
            self.model_ = lgb.train(params, data, num_boost_round=self.iterations)
        return self

    # ------------------------------------------------------------------ scoring
    def predict(self, X: np.ndarray, feature_names: Sequence[str] | None = None) -> np.ndarray:
        """Scores ``(N,)`` float32 (higher = better) for ``X (N, F)``.

        Raises:
            NotFittedError: before :meth:`fit`.
            DataValidationError: ``X`` is missing, not 2-D, or its columns (``feature_names``
                when given, else the count) differ from the training columns.
        """
        if not self.is_fitted:
            raise NotFittedError("ranker is not fitted: call fit(X, y, group_sizes, names)")
        X = self._check_matrix(X, list(feature_names) if feature_names is not None else None)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float32)
        if self.kind == "catboost":
            out = self.model_.predict(X, thread_count=self.threads)
        else:
            out = self.model_.predict(X, num_threads=self.threads)
        return np.asarray(out, dtype=np.float32)

    def _check_matrix(self, X: Any, names: list[str] | None) -> np.ndarray:
        if X is None:
            raise DataValidationError("the ranker needs a feature matrix, got None")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise DataValidationError(f"the ranker needs a 2-D feature matrix, got shape {X.shape}")
        expected = self.feature_names
        if names is not None and len(names) != X.shape[1]:
            raise DataValidationError(
                f"feature matrix has {X.shape[1]} columns but {len(names)} feature names"
            )
        if expected is not None:
            if names is not None and names != expected:
                missing = [n for n in expected if n not in names]
                extra = [n for n in names if n not in expected]
                raise DataValidationError(
                    "feature columns differ from the ones the ranker was trained on: "
                    f"missing {missing}, unexpected {extra}"
                    + ("" if missing or extra else " (same names, different order)")
                )
            if X.shape[1] != len(expected):
                raise DataValidationError(
                    f"feature matrix has {X.shape[1]} columns, the ranker was trained on "
                    f"{len(expected)}: {expected}"
                )
        return X

    def feature_importance(self) -> dict[str, float]:
        """Importance per feature (CatBoost: PredictionValuesChange; LightGBM: gain)."""
        if not self.is_fitted:
            raise NotFittedError("ranker is not fitted")
        if self.kind == "catboost":
            values = self.model_.get_feature_importance(type="PredictionValuesChange")
        else:
            values = self.model_.feature_importance(importance_type="gain")
        return {n: float(v) for n, v in zip(self.feature_names or [], values)}

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``ranker.json`` and ``model.cbm`` (CatBoost) or ``model.txt`` (LightGBM)."""
        if not self.is_fitted:
            raise NotFittedError("ranker is not fitted")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {
            "kind": self.kind,
            "loss": self.loss,
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "depth": self.depth,
            "threads": self.threads,
            "seed": self.seed,
            "feature_names": self.feature_names,
        }
        if self.kind == "catboost":
            self.model_.save_model(str(d / "model.cbm"), format="cbm")
        else:
            self.model_.save_model(str(d / "model.txt"))
        (d / "ranker.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> Ranker:
        """Read a ranker written by :meth:`save`."""
        d = Path(directory)
        try:
            meta = json.loads((d / "ranker.json").read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"ranker metadata at {d} is missing or corrupt: {exc}") from exc
        ranker = cls(
            meta["kind"],
            meta["loss"],
            iterations=meta["iterations"],
            learning_rate=meta["learning_rate"],
            depth=meta["depth"],
            threads=meta["threads"],
            seed=meta["seed"],
        )
        ranker.feature_names = list(meta["feature_names"])
        try:
            if ranker.kind == "catboost":
                cb = require_extra("catboost", "ranker")
                model = cb.CatBoostRanker()
                model.load_model(str(d / "model.cbm"), format="cbm")
                ranker.model_ = model
            else:
                lgb = require_extra("lightgbm", "ranker")
                ranker.model_ = lgb.Booster(model_file=str(d / "model.txt"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"ranker model at {d} is missing or corrupt: {exc}") from exc
        except Exception as exc:  # catboost/lightgbm raise their own error types
            if type(exc).__name__ in ("CatBoostError", "LightGBMError"):
                raise ArtifactError(f"ranker model at {d} is corrupt: {exc}") from exc
            raise
        return ranker
