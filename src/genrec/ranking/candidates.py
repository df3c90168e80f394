"""Candidate generation for the cascade: the union of every source model's top-N.

A *source* is any registered recommender. For a batch of histories each source returns its
top-``n`` items (seen items removed unless asked otherwise); the union keeps, per
(user, item) pair and per source, the source's rank (1-based) and score. An item a source
did not return gets the sentinel rank ``n + 1``, a NaN score and a 0 ``in`` flag.

:func:`candidate_recall` measures the ceiling of a reranker: the share of held-out targets
that make it into each source's top-N and into the union.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from genrec.config import find_configs_dir, load_yaml
from genrec.core.recommender import RankRequest
from genrec.data.dataset import HistoryBatch, UserHistories
from genrec.data.splitting import Holdout, Split
from genrec.errors import ConfigError, UnknownNameError, suggest
from genrec.registry import get_model, list_models

__all__ = [
    "CandidateSet",
    "SourceSpec",
    "candidate_recall",
    "parse_sources",
    "source_top_n",
    "union_candidates",
]

_SPEC_KEYS = ("model", "n", "config", "preset", "path", "name")


@dataclass(frozen=True)
class SourceSpec:
    """One candidate generator of a cascade.

    Attributes:
        model: registered model name (``"als"``, ``"sasrec"``, ...).
        n: candidates taken from this source per user.
        config: config overrides for the source model (applied on top of ``preset``).
        preset: optional YAML preset of the source (a path, or a path relative to the
            shipped ``configs/`` folder, e.g. ``movielens-small/sasrec.yaml``).
        path: optional pre-fitted artifact of the source, used at inference instead of a
            refit (it must share the cascade's id maps). The ranker is still trained on
            candidates of a model fitted without the ranker's window.
        name: label used in feature names and reports (default: ``model``).
    """

    model: str
    n: int
    config: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    path: str | None = None
    name: str = ""

    def resolved_config(self) -> dict[str, Any]:
        """Preset (if any) with ``config`` on top, validated by the source's config class."""

        data: dict[str, Any] = {}
        if self.preset:
            data.update(load_yaml(_find_preset(self.preset)))
        data.update(self.config)
        cls = get_model(self.model)
        return cls.config_class.from_dict(data).to_dict()


def _find_preset(preset: str) -> Path:
    path = Path(preset)
    if path.is_file():
        return path

    cdir = find_configs_dir()
    if cdir is not None and (cdir / preset).is_file():
        return cdir / preset
    raise ConfigError(f"candidate source preset {preset!r} not found (nor under {cdir})")


def parse_sources(entries: Sequence[Any], default_n: int) -> list[SourceSpec]:
    """Parse the cascade's ``candidates`` list.

    Each entry is a model name (``"als"``) or a mapping with keys ``model`` (required),
    ``n``, ``config``, ``preset``, ``path`` and ``name``.

    Raises:
        UnknownNameError: an unknown model name (with a suggestion).
        ConfigError: a malformed entry, a duplicate name, a non-positive ``n``.
    """

    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence) or not entries:
        raise ConfigError(f"candidates must be a non-empty list of sources, got {entries!r}")
    known = list_models()
    specs: list[SourceSpec] = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"model": entry}
        if not isinstance(entry, Mapping) or "model" not in entry:
            raise ConfigError(
                f"a candidate source must be a model name or a mapping with a 'model' key, "
                f"got {entry!r}"
            )
        bad = [k for k in entry if k not in _SPEC_KEYS]
        if bad:
            raise ConfigError(
                f"unknown key {bad[0]!r} in candidate source {entry!r}."
                f"{suggest(bad[0], _SPEC_KEYS)}"
                f" Valid keys: {', '.join(_SPEC_KEYS)}"
            )
        model = entry["model"]
        if model not in known:
            raise UnknownNameError(
                f"unknown candidate source model {model!r}.{suggest(str(model), known)} "
                f"Available: {', '.join(known)}"
            )
        if model.startswith("cascade"):
            raise ConfigError(f"a cascade cannot use another cascade ({model!r}) as a source")
        n = entry.get("n", default_n)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(
                f"candidate source {model!r}: n must be a positive integer, got {n!r}"
            )
        cfg = entry.get("config") or {}
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"candidate source {model!r}: config must be a mapping, got {cfg!r}")
        spec = SourceSpec(
            model=model,
            n=int(n),
            config=dict(cfg),
            preset=entry.get("preset"),
            path=entry.get("path"),
            name=str(entry.get("name") or model),
        )
        spec.resolved_config()  # unknown keys / bad values of the source fail here
        specs.append(spec)
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(
            f"candidate sources need distinct names, {sorted(dup)} repeats; add 'name:' keys"
        )
    return specs


@dataclass
class CandidateSet:
    """The union of the sources' top-N for a batch of rows, sorted by (row, item).

    Attributes:
        rows: ``(M,)`` batch row of each candidate.
        items: ``(M,)`` internal item ids.
        ranks: ``(M, S)`` 1-based rank in each source; ``n_s + 1`` where the source missed it.
        scores: ``(M, S)`` float32 source scores; NaN where the source missed it.
        names: the ``S`` source names.
        n_rows: number of batch rows (rows without candidates are allowed).
    """

    rows: np.ndarray
    items: np.ndarray
    ranks: np.ndarray
    scores: np.ndarray
    names: list[str]
    n_rows: int

    def __len__(self) -> int:
        return len(self.items)

    @property
    def found(self) -> np.ndarray:
        """``(M, S)`` bool: the source returned the item."""
        return ~np.isnan(self.scores)

    def group_sizes(self) -> np.ndarray:
        """Candidates per batch row ``(n_rows,)``."""
        return np.bincount(self.rows, minlength=self.n_rows)


def source_top_n(
    model: Any,
    batch: HistoryBatch,
    n: int,
    exclude_seen: bool = True,
    *,
    keep_scores: bool = True,
) -> tuple[np.ndarray, np.ndarray, torch.Tensor | None]:
    """Top-``n`` of one source for a batch, through the source's public
    :meth:`~genrec.core.recommender.Recommender.rank`: a scoring source ranks its scores, a
    generative source (TIGER) generates with its beam search.

    Returns:
        ``(items, scores, full)``: internal ids ``(B, n)`` (0 = padding), scores ``(B, n)``
        (``-inf`` padding) and, for scoring models, the raw scores ``(B, n_items + 1)``
        (``None`` for generative models).
    """
    n = min(int(n), model.max_list_length())  # a beam search returns at most its beams
    request = RankRequest(
        histories=batch.as_histories(),
        rows=np.arange(len(batch), dtype=np.int64),
        k=n,
        exclude_seen=exclude_seen,
        user_ids=batch.user_ids,
        batch_size=max(len(batch), 1),
        keep_scores=keep_scores,  # a scoring source's scores of every item
    )
    ranking = model.rank(request)
    full = None if ranking.all_scores is None else torch.from_numpy(ranking.all_scores)
    return ranking.items, ranking.scores.astype(np.float32), full


def union_candidates(
    per_source: Sequence[tuple[np.ndarray, np.ndarray]], names: Sequence[str], n_items: int
) -> CandidateSet:
    """Merge per-source top lists ``[(items (B, n_s), scores (B, n_s)), ...]``."""
    B = per_source[0][0].shape[0]
    S = len(per_source)
    keys, src, rank, score = [], [], [], []
    for s, (items, scores) in enumerate(per_source):
        items = np.asarray(items, dtype=np.int64)
        r, c = np.nonzero(items > 0)
        keys.append(r * (n_items + 1) + items[r, c])
        src.append(np.full(len(r), s))
        rank.append(c + 1)
        score.append(np.asarray(scores, dtype=np.float32)[r, c])
    key = np.concatenate(keys)
    uniq, inv = np.unique(key, return_inverse=True)
    M = len(uniq)
    sizes = np.array([min(p[0].shape[1], n_items) for p in per_source], dtype=np.int64)
    ranks = np.broadcast_to(sizes + 1, (M, S)).copy()
    scores = np.full((M, S), np.nan, dtype=np.float32)
    s_all = np.concatenate(src)
    ranks[inv, s_all] = np.concatenate(rank)
    scores[inv, s_all] = np.concatenate(score)
    # a source may give -inf to a returned item (e.g. a masked one): keep it finite-but-low
    scores[np.isneginf(scores)] = np.float32(-3.0e38)
    return CandidateSet(
        rows=(uniq // (n_items + 1)).astype(np.int64),
        items=(uniq % (n_items + 1)).astype(np.int64),
        ranks=ranks,
        scores=scores,
        names=list(names),
        n_rows=B,
    )


def candidate_recall(
    sources: Mapping[str, Any] | Sequence[Any],
    split: Split | Holdout,
    n: int | Mapping[str, int] = 100,
    *,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Recall@N of each fitted source and of their union on a holdout.

    Args:
        sources: fitted models, as ``{name: model}`` or a list (named by ``model.name``).
        split: a :class:`Split` (its test holdout is used) or a :class:`Holdout`.
        n: candidates per source (one number, or ``{name: n}``).
        batch_size: users per batch.

    Returns:
        ``{name: recall, ..., "union": recall}``: the mean over holdout users of the share
        of their targets found in the source's top-N (seen items excluded), and in the
        union of all sources' lists (the ceiling of any reranker of that union).
    """
    if not isinstance(sources, Mapping):
        sources = {getattr(m, "name", f"source{i}"): m for i, m in enumerate(sources)}
    if not sources:
        raise ConfigError("candidate_recall needs at least one source")
    holdout = split.test if isinstance(split, Split) else split
    if not isinstance(holdout, Holdout):
        raise ConfigError(f"candidate_recall expects a Split or Holdout, got {type(split)}")
    hist = holdout.history.histories()
    ns = {name: (n[name] if isinstance(n, Mapping) else n) for name in sources}
    first = next(iter(sources.values()))
    for name, model in sources.items():
        if model.item_map != holdout.history.item_map or model.user_map != holdout.history.user_map:
            raise ConfigError(
                f"source {name!r} was fitted on another dataset (its id maps differ from the "
                "holdout's)"
            )
    hits = {name: 0.0 for name in [*sources, "union"]}
    for start in range(0, len(holdout), batch_size):
        users = holdout.users[start : start + batch_size]
        batch = hist.batch(users)
        targets = holdout.targets[start : start + batch_size]
        lists = []
        for name, model in sources.items():
            items, scores, _ = source_top_n(model, batch, ns[name])
            lists.append((items, scores))
            hits[name] += _recall_sum(items, targets)
        cand = union_candidates(lists, list(sources), first.n_items)
        hits["union"] += _recall_sum_flat(cand.rows, cand.items, targets)
    return {name: h / max(len(holdout), 1) for name, h in hits.items()}


def _recall_sum(items: np.ndarray, targets: sp.csr_matrix) -> float:
    """Sum over rows of |top ∩ targets| / |targets|."""
    t = targets.toarray() > 0  # (B, n_items + 1)
    hit = np.take_along_axis(t, np.asarray(items, dtype=np.int64), axis=1)
    hit &= np.asarray(items) > 0
    return float((hit.sum(1) / np.maximum(t.sum(1), 1)).sum())


def _recall_sum_flat(rows: np.ndarray, items: np.ndarray, targets: sp.csr_matrix) -> float:
    t = targets.toarray() > 0
    per_row = np.bincount(rows, weights=t[rows, items], minlength=t.shape[0])
    return float((per_row / np.maximum(t.sum(1), 1)).sum())


def holdout_batches(
    hist: UserHistories, users: np.ndarray, batch_size: int
) -> list[tuple[slice, HistoryBatch]]:
    """``(slice, batch)`` pairs covering ``users`` in order."""
    out = []
    for start in range(0, len(users), batch_size):
        sl = slice(start, start + batch_size)
        out.append((sl, hist.batch(users[sl])))
    return out
