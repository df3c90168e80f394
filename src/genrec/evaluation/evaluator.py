"""The one evaluation runner. Every number genrec reports comes from :func:`evaluate`.

Protocol (defaults): full ranking over the whole catalogue, seen items excluded, ties broken
pessimistically (a target never wins a tie, see :mod:`genrec.core.topk`), metrics at
k in {5, 10, 20}. Sampled metrics only with ``sampled_negatives=N`` and then every metric
name carries the ``sampled_`` prefix and the protocol says ``sampled-N``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from genrec.console import progress as console_progress
from genrec.core.recommender import MAX_RESULT_ENTRIES, RankRequest, Recommender
from genrec.data.splitting import Holdout, Split
from genrec.errors import (
    ConfigError,
    GenrecTypeError,
    NotFittedError,
    ResourceLimitError,
    UnknownNameError,
    suggest,
)
from genrec.evaluation import metrics as M

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
DEFAULT_METRICS: tuple[str, ...] = ("recall", "ndcg", "mrr", "hit_rate", "precision", "map")
BEYOND_ACCURACY: tuple[str, ...] = ("coverage", "gini", "novelty", "avg_popularity", "ild")


@dataclass
class EvaluationResult:
    """Metrics of one model on one holdout.

    Attributes:
        metrics: mean values, e.g. ``{"recall@10": 0.07, "coverage@10": 0.3}``.
        per_user: per-user arrays of the accuracy metrics (for significance tests).
        users: internal ids of the evaluated users, aligned with ``per_user``.
        ranked: ``(U, max_k)`` internal item ids recommended (0 = padding).
        protocol: ``"full"`` or ``"sampled-N"``.
        seconds: wall time spent recommending (the model's inference cost).
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    ranked: np.ndarray
    protocol: str
    stage: str
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no per-user arrays)."""
        return {
            "metrics": dict(self.metrics),
            "protocol": self.protocol,
            "stage": self.stage,
            "n_users": int(len(self.users)),
            "recommend_seconds": self.seconds,
            **self.info,
        }


def holdout_of(split: Split | Holdout, stage: str) -> Holdout:
    """The holdout that :func:`evaluate` evaluates: ``split`` itself when it is a
    :class:`Holdout`, else its ``stage`` (``"test"`` or ``"valid"``) holdout."""
    if isinstance(split, Holdout):
        return split
    if not isinstance(split, Split):
        raise GenrecTypeError(
            f"evaluate() expects a Split or Holdout, got {type(split).__name__}; make one with "
            "genrec.split_dataset(dataset, 'loo')"
        )
    if stage not in ("test", "valid"):
        raise ConfigError(f"stage must be 'test' or 'valid', got {stage!r}")
    holdout = split.test if stage == "test" else split.valid
    if holdout is None:
        raise ConfigError(f"this split has no {stage} holdout")
    return holdout


def check_metric_names(metrics: Sequence[str], ks: Sequence[int]) -> None:
    """Raise :class:`UnknownNameError` for an unknown accuracy metric name, and
    :class:`ConfigError` unless ``ks`` are positive integers."""
    for name in metrics:
        if name not in M.ACCURACY_METRICS:
            raise UnknownNameError(
                f"unknown metric {name!r}.{suggest(name, M.ACCURACY_METRICS)} "
                f"Available: {', '.join(M.ACCURACY_METRICS)}"
            )
    if not ks or any(isinstance(k, bool) or int(k) != k or k <= 0 for k in ks):
        raise ConfigError(f"ks must be positive integers, got {list(ks)}")


def _sample_candidates(
    holdout: Holdout, n_items: int, n_negatives: int, exclude_seen: bool, seed: int
) -> sp.csr_matrix:
    """Per user: the targets plus ``n_negatives`` uniform items outside history and targets."""
    rng = np.random.default_rng(seed)
    hist = holdout.history.matrix()[holdout.users].tocsr()
    rows, cols = [], []
    for r in range(len(holdout)):
        tgt = holdout.targets.indices[holdout.targets.indptr[r] : holdout.targets.indptr[r + 1]]
        banned = set(tgt.tolist())
        if exclude_seen:
            banned.update(hist.indices[hist.indptr[r] : hist.indptr[r + 1]].tolist())
        pool = n_items - len(banned)
        if pool < n_negatives:
            raise ConfigError(
                f"sampled evaluation: user row {r} has only {pool} possible negatives, "
                f"fewer than sampled_negatives={n_negatives}"
            )
        picked: set[int] = set()
        while len(picked) < n_negatives:
            draw = rng.integers(1, n_items + 1, size=2 * n_negatives)
            for item in draw.tolist():
                if item not in banned and item not in picked:
                    picked.add(item)
                    if len(picked) == n_negatives:
                        break
        chosen = np.concatenate([tgt, np.fromiter(picked, dtype=np.int64)])
        rows.append(np.full(len(chosen), r))
        cols.append(chosen)
    r_all, c_all = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix(
        (np.ones(len(r_all), dtype=np.float32), (r_all, c_all)), shape=(len(holdout), n_items + 1)
    )


def beyond_accuracy_metrics(
    model: Recommender,
    holdout: Holdout,
    ranked: np.ndarray,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    item_features: sp.csr_matrix | None = None,
    item_vectors: np.ndarray | None = None,
    prefix: str = "",
) -> dict[str, float]:
    """Coverage, Gini, novelty, average popularity and intra-list diversity of the lists
    ``ranked`` (``(U, >= max(ks))`` internal ids) that ``model`` gave the users of ``holdout``.

    These are properties of the whole set of lists, not means of per-user values: a sharded
    evaluation (:func:`genrec.distributed.evaluate_sharded`) computes them here once, over the
    merged lists, exactly as :func:`evaluate` does over its own.

    Args:
        model: the fitted model (its training popularity and catalogue size).
        holdout: the evaluated holdout (its history's item genres, unless ``item_features``).
        ranked: the recommended lists, rows aligned with ``holdout.users``.
        ks: cut-offs.
        item_features: binary item x genre CSR for genre diversity.
        item_vectors: dense ``(n_items + 1, d)`` vectors for embedding diversity.
        prefix: put before every name (``"sampled_"`` under sampled evaluation).
    """
    n_items = model.n_items
    pop = np.asarray(model.item_popularity_)
    n_users = model.user_map.size  # type: ignore[union-attr]
    genres = item_features if item_features is not None else holdout.history.item_genres()
    summary: dict[str, float] = {}
    for k in ks:
        summary[f"{prefix}coverage@{k}"] = M.coverage_at_k(ranked, n_items, k)
        summary[f"{prefix}gini@{k}"] = M.gini_at_k(ranked, n_items, k)
        summary[f"{prefix}novelty@{k}"] = M.novelty_at_k(ranked, pop, n_users, k)
        summary[f"{prefix}avg_popularity@{k}"] = M.avg_popularity_at_k(ranked, pop, k)
        if genres is not None:
            summary[f"{prefix}ild_genre@{k}"] = M.ild_at_k(ranked, genres, k, "jaccard")
        if item_vectors is not None:
            summary[f"{prefix}ild_embedding@{k}"] = M.ild_at_k(ranked, item_vectors, k, "cosine")
    return summary


def evaluate(
    model: Recommender,
    split: Split | Holdout,
    *,
    stage: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    metrics: Sequence[str] = DEFAULT_METRICS,
    beyond_accuracy: bool = True,
    exclude_seen: bool = True,
    sampled_negatives: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    item_features: sp.csr_matrix | None = None,
    item_vectors: np.ndarray | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate a fitted model on the ``stage`` holdout of ``split`` through
    :meth:`~genrec.core.recommender.Recommender.rank`, the call behind ``recommend``.

    Args:
        model: a fitted recommender.
        split: a :class:`Split` (``stage`` picks the holdout) or a :class:`Holdout`.
        ks: cut-offs.
        metrics: accuracy metric names (see ``metrics.ACCURACY_METRICS``).
        beyond_accuracy: also compute coverage, Gini, novelty, average popularity and
            intra-list diversity (genre-based from the item table, or embedding-based
            when ``item_vectors`` is given).
        exclude_seen: items in the user's history are not recommendable.
        sampled_negatives: rank targets among N random negatives instead of the whole
            catalogue (labelled ``sampled``); ``None`` = full ranking.
        item_features: binary item x genre CSR for genre diversity (defaults to the
            history dataset's genres).
        item_vectors: dense ``(n_items + 1, d)`` vectors for embedding diversity.
        progress: show a progress bar.
    """
    if not isinstance(model, Recommender):
        raise GenrecTypeError(
            f"evaluate() expects a fitted genrec Recommender, got {type(model).__name__}"
        )
    if not model.is_fitted:
        raise NotFittedError(f"{type(model).__name__} is not fitted: call fit(dataset) first")
    check_metric_names(metrics, ks)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    holdout = holdout_of(split, stage)
    if len(holdout) * int(max(ks)) > MAX_RESULT_ENTRIES:  # the ranked lists are (U, max k)
        raise ResourceLimitError(
            f"k={int(max(ks))} for {len(holdout):,} users is too large to rank (the catalogue "
            f"has {model.n_items:,} items); use smaller cut-offs"
        )
    if holdout.history.item_map != model.item_map:
        raise ConfigError("the model was fitted on a different item catalogue than this split")
    if holdout.history.user_map != model.user_map:
        raise ConfigError("the model was fitted on different users than this split")
    n_items = model.n_items
    K = int(max(ks))
    candidates = None
    protocol = "full"
    prefix = ""
    if sampled_negatives is not None:
        if sampled_negatives <= 0:
            raise ConfigError(f"sampled_negatives must be > 0, got {sampled_negatives}")
        candidates = _sample_candidates(holdout, n_items, sampled_negatives, exclude_seen, seed)
        protocol, prefix = f"sampled-{sampled_negatives}", "sampled_"
    request = RankRequest(
        histories=holdout.history.histories(),
        rows=holdout.users,
        k=K,
        exclude_seen=exclude_seen,
        candidates=candidates,
        demote=holdout.targets,  # ties never favour the target
        batch_size=batch_size,
    )
    start = time.perf_counter()
    with console_progress(len(holdout), f"evaluating {model.name}", enabled=progress) as advance:
        ranked = model.rank(request, progress=advance).items
    seconds = time.perf_counter() - start

    n_targets = holdout.n_targets
    hits = M.hits_from_targets(ranked, holdout.targets.indptr, holdout.targets.indices)
    per_user: dict[str, np.ndarray] = {}
    summary: dict[str, float] = {}
    for name in metrics:
        for k in ks:
            key = f"{prefix}{name}@{k}"
            per_user[key] = M.ACCURACY_METRICS[name](hits, n_targets, k)
            summary[key] = float(per_user[key].mean())
    if beyond_accuracy:
        summary.update(
            beyond_accuracy_metrics(
                model,
                holdout,
                ranked,
                ks=ks,
                item_features=item_features,
                item_vectors=item_vectors,
                prefix=prefix,
            )
        )
    return EvaluationResult(
        metrics=summary,
        per_user=per_user,
        users=holdout.users,
        ranked=ranked,
        protocol=protocol,
        stage=stage,
        seconds=seconds,
        info={"exclude_seen": exclude_seen, "ks": list(ks), "tie_breaking": "pessimistic"},
    )
