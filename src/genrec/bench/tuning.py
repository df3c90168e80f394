"""Hyper-parameter search with Optuna (extra ``tune``), on the validation split only.

``tune(model, dataset)`` samples configs from the model's search space, fits each on
``split.train`` and scores it with the shared evaluator on ``split.valid``
(``stage="valid"``); the test holdout is never read. Neural models report the validation
metric after every epoch (the trainer's ``on_epoch_end`` hook), so Optuna's median pruner
stops hopeless trials early; closed-form models report once. Sampling is TPE, seeded.

Search spaces live next to each model's config as ``<Model>Config.SEARCH_SPACE``, a small
declarative mapping (also the format of ``genrec tune --space file.yaml``)::

    l2:          {type: float, low: 1.0, high: 10000.0, log: true}
    n_neighbors: {type: int, low: 5, high: 1000, log: true}     # optional: step
    loss:        {type: categorical, choices: [ce, bce]}
    dims:        {type: categorical, choices: [[200], [600, 200]]}  # lists are fine

Every key must be a field of the model's config (unknown keys raise with a suggestion) and
every bound or choice must be a valid value of it.

With a storage (an Optuna URL or a ``.db`` path, SQLite) a study is resumable: running
again with the same study name continues it (more trials, the best of all kept). Every trial
records the process running it; a trial left ``RUNNING`` by a process that no longer exists
on this machine (a crash, ``kill -9``) is marked failed when the study is continued, and its
parameters are tried again first. The best
config is an override-only dict; :meth:`TuneResult.save_preset` writes it as a preset YAML
that ``genrec benchmark --config MODEL=PATH`` and ``genrec train --config`` read.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrec.config import load_yaml
from genrec.console import LongStep, format_seconds, log_line
from genrec.data.dataset import Dataset
from genrec.data.splitting import Split, split_dataset
from genrec.errors import ConfigError, GenrecError, require_extra, suggest
from genrec.evaluation import metrics as M
from genrec.evaluation.evaluator import evaluate
from genrec.paths import (
    OutputPathError,
    atomic_write_text,
    check_output_file,
    ensure_writable_dir,
    to_jsonable,
)
from genrec.registry import get_model
from genrec.training.trainer import TrainingError

SPACE_TYPES = ("float", "int", "categorical")
_SPEC_KEYS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}
# keys the tuner sets on every neural trial; runtime only, never written to a preset
_RUNTIME_KEYS = ("progress", "val_metric", "time_budget_minutes")


@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes:
        best_config: override-only config of the best trial (``base_config`` plus the tuned
            keys), loadable by ``get_model(model).config_class.from_dict``.
        best_value: its validation metric.
        n_trials: finished trials in the study (complete + pruned, earlier runs included).
        n_pruned: how many of them were pruned.
        elapsed_s: wall-clock seconds of this call.
        study_name: Optuna study name.
        storage: Optuna storage URL (``None`` = in memory).
        model, dataset, metric: what was tuned, on which data, for which metric.
        n_failed: trials that failed (an invalid combination, a diverging loss).
        trials_this_run: trials started by this call.
        budget_trials, budget_minutes: the budget of this call.
        best_params: the tuned keys only, as sampled.
    """

    best_config: dict[str, Any]
    best_value: float
    n_trials: int
    n_pruned: int
    elapsed_s: float
    study_name: str
    storage: str | None
    model: str = ""
    dataset: str = ""
    metric: str = "ndcg@10"
    n_failed: int = 0
    trials_this_run: int = 0
    budget_trials: int | None = None
    budget_minutes: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (recorded by ``genrec benchmark --tune-budget-minutes``)."""

        return to_jsonable(
            {
                "metric": self.metric,
                "stage": "valid",
                "best_value": self.best_value,
                "best_params": self.best_params,
                "n_trials": self.n_trials,
                "n_pruned": self.n_pruned,
                "n_failed": self.n_failed,
                "trials_this_run": self.trials_this_run,
                "budget_trials": self.budget_trials,
                "budget_minutes": self.budget_minutes,
                "elapsed_s": self.elapsed_s,
                "study_name": self.study_name,
                "storage": self.storage,
            }
        )

    def save_preset(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``best_config`` as an override-only preset YAML with a header comment
        recording the study (metric, value, trials, budget, date). Written atomically.

        An existing file is replaced only if ``genrec tune`` wrote it and ``overwrite`` is
        set (:class:`~genrec.paths.OutputPathError` otherwise)."""
        import yaml

        budget = []
        if self.budget_trials is not None:
            budget.append(f"{self.budget_trials} trials")
        if self.budget_minutes is not None:
            budget.append(f"{self.budget_minutes:g} minutes")
        date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        path = Path(path)
        header = [
            f"# genrec benchmark --dataset {self.dataset} --models {self.model} "
            f"--config {self.model}={path}",
            f"# tuned by `genrec tune` on the validation split: {self.metric} = "
            f"{self.best_value:.4f}",
            f"# study {self.study_name!r} ({self.storage or 'in memory'}): {self.n_trials} "
            f"trials ({self.n_pruned} pruned, {self.n_failed} failed); budget of the last run: "
            f"{' / '.join(budget) or 'none'}; {date}",
            f"# tuned keys: {', '.join(sorted(self.best_params)) or 'none'}",
        ]
        body = ""
        if self.best_config:
            body = yaml.safe_dump(to_jsonable(self.best_config), sort_keys=False)
        check_preset_path(path, overwrite=overwrite)
        atomic_write_text(path, "\n".join(header) + "\n" + body)
        return path


# ---------------------------------------------------------------------- search spaces
def default_space(model: str) -> dict[str, dict[str, Any]]:
    """A copy of the search space declared next to ``model``'s config (``{}`` if none)."""

    cfg_cls = get_model(model).config_class
    return copy.deepcopy(dict(getattr(cfg_cls, "SEARCH_SPACE", None) or {}))


def load_space(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a search space from YAML: the mapping itself or one under a ``search_space:``
    key."""

    data = load_yaml(path)
    if "search_space" in data:
        extra = sorted(k for k in data if k != "search_space")
        if extra:
            raise ConfigError(
                f"space file {path}: besides 'search_space' it holds {extra}; put fixed "
                "config values in a --config file instead"
            )
        data = data["search_space"] or {}
        if not isinstance(data, dict):
            raise ConfigError(f"space file {path}: 'search_space' must be a mapping")
    return data


def validate_space(
    model: str, space: Mapping[str, Any], base_config: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Check ``space`` against ``model``'s config and return it normalised.

    Raises:
        ConfigError: naming the offending key or value (unknown keys get a suggestion).
    """

    cfg_cls = get_model(model).config_class
    if not isinstance(space, Mapping):
        raise ConfigError(f"a search space must be a mapping, got {type(space).__name__}")
    if not space:
        raise ConfigError(
            f"model {model!r} has no search space ({cfg_cls.__name__}.SEARCH_SPACE is empty): "
            "pass one with --space FILE.yaml (or space=...) to tune it"
        )
    names = cfg_cls.field_names()
    base = dict(base_config or {})
    out: dict[str, dict[str, Any]] = {}
    for key, spec in space.items():
        if key not in names:
            raise ConfigError(
                f"unknown search-space key {key!r} for {cfg_cls.__name__}."
                f"{suggest(str(key), names)} Valid keys: {', '.join(names)}"
            )
        where = f"search space {key!r}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a mapping with a 'type', got {spec!r}")
        kind = spec.get("type")
        if kind not in SPACE_TYPES:
            raise ConfigError(f"{where}: type must be one of {list(SPACE_TYPES)}, got {kind!r}")
        unknown = sorted(set(spec) - _SPEC_KEYS[kind])
        if unknown:
            raise ConfigError(
                f"{where}: unknown entry {unknown[0]!r} for type {kind!r}."
                f"{suggest(unknown[0], _SPEC_KEYS[kind])} Allowed: {sorted(_SPEC_KEYS[kind])}"
            )
        spec = dict(spec)
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, (list, tuple)) or not choices:
                raise ConfigError(f"{where}: 'choices' must be a non-empty list, got {choices!r}")
            spec["choices"] = [list(c) if isinstance(c, tuple) else c for c in choices]
            values = spec["choices"]
        else:
            for bound in ("low", "high"):
                v = spec.get(bound)
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConfigError(f"{where}: '{bound}' must be a number, got {v!r}")
                if kind == "int" and float(v) != int(v):
                    raise ConfigError(f"{where}: '{bound}' must be an integer, got {v!r}")
            cast = int if kind == "int" else float
            spec["low"], spec["high"] = cast(spec["low"]), cast(spec["high"])
            spec["log"] = bool(spec.get("log", False))
            if spec["low"] > spec["high"]:
                raise ConfigError(f"{where}: low ({spec['low']}) is above high ({spec['high']})")
            if spec["log"] and spec["low"] <= 0:
                raise ConfigError(f"{where}: a log scale needs low > 0, got {spec['low']}")
            if spec.get("step") is not None:
                if spec["log"]:
                    raise ConfigError(f"{where}: 'step' and 'log' cannot be combined")
                if spec["step"] <= 0:
                    raise ConfigError(f"{where}: 'step' must be > 0, got {spec['step']}")
            values = [spec["low"], spec["high"]]
        for value in values:  # every bound/choice must be a valid value of the field
            try:
                cfg_cls.from_dict(cfg_cls.merged(base, {key: value}))
            except ConfigError as exc:
                raise ConfigError(f"{where}: value {value!r} is not valid: {exc}") from None
        out[str(key)] = spec
    return out


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    if kind == "float":
        return trial.suggest_float(
            name, spec["low"], spec["high"], log=spec["log"], step=spec.get("step")
        )
    if kind == "int":
        return trial.suggest_int(
            name, spec["low"], spec["high"], log=spec["log"], step=int(spec.get("step") or 1)
        )
    choices = spec["choices"]
    if all(_is_scalar(c) for c in choices):
        return trial.suggest_categorical(name, choices)
    # Optuna stores scalars only: lists (e.g. layer widths) travel as JSON strings
    return json.loads(trial.suggest_categorical(name, [json.dumps(c) for c in choices]))


def _start_params(space: dict[str, dict[str, Any]], start: dict[str, Any]) -> dict[str, Any]:
    """The starting config's values of the space keys that lie inside the space, in the
    form Optuna stores them (lists as JSON strings)."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        value = to_jsonable(start.get(name))
        if spec["type"] == "categorical":
            choices = spec["choices"]
            if all(_is_scalar(c) for c in choices):
                if value in choices:
                    out[name] = value
            elif value in choices:
                out[name] = json.dumps(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            step = spec.get("step")
            on_grid = (
                step is None
                or abs((value - spec["low"]) / step - round((value - spec["low"]) / step)) < 1e-9
            )
            if spec["low"] <= value <= spec["high"] and on_grid:
                out[name] = int(value) if spec["type"] == "int" else float(value)
    return out


def _parse_metric(metric: str) -> tuple[str, int]:

    name, _, k = metric.partition("@")
    if name not in M.ACCURACY_METRICS or not k.isdigit() or int(k) <= 0:
        raise ConfigError(
            f"metric must look like 'ndcg@10' with one of {', '.join(M.ACCURACY_METRICS)}, "
            f"got {metric!r}"
        )
    return name, int(k)


PRESET_MARK = "# tuned by `genrec tune`"


def is_tune_preset(path: str | Path) -> bool:
    """True when ``path`` is a preset file that ``genrec tune`` wrote (its header says so)."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = [fh.readline() for _ in range(3)]
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.startswith(PRESET_MARK) for line in head)


def check_preset_path(
    path: str | Path, *, overwrite: bool = False, flag: str = "overwrite=True"
) -> Path:
    """Check where :meth:`TuneResult.save_preset` will write, before tuning starts: a file
    genrec did not write is never replaced, an earlier preset only with ``overwrite``."""

    return check_output_file(path, overwrite=overwrite, owned=is_tune_preset, flag=flag)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def storage_url(storage: str | Path | None) -> str | None:
    """An Optuna storage URL: URLs pass through, a plain path becomes SQLite (its folder is
    created and checked for writability; an existing file must be an SQLite database)."""

    if storage is None:
        return None
    text = str(storage)
    if "://" in text and not text.startswith("sqlite:///"):
        return text
    path = Path(text[len("sqlite:///") :] if "://" in text else text).expanduser().resolve()
    if path.is_dir():
        raise OutputPathError(f"tuning storage {path} is a folder; give a .db file path")
    if path.exists():
        try:
            with open(path, "rb") as fh:
                magic = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise OutputPathError(f"cannot read tuning storage {path}: {exc.strerror}") from exc
        if magic != _SQLITE_MAGIC and path.stat().st_size > 0:
            raise OutputPathError(
                f"tuning storage {path} exists and is not an SQLite database; genrec never "
                "replaces what it did not write: choose another --storage path"
            )
    ensure_writable_dir(path.parent)
    return f"sqlite:///{path}"


def _make_sampler(optuna: Any, seed: int):
    class OwnedTPESampler(optuna.samplers.TPESampler):
        """TPE that records the process running each trial as soon as the trial exists (see
        :func:`_retry_interrupted_trials`)."""

        def before_trial(self, study: Any, trial: Any) -> None:
            storage = getattr(study, "_storage", None)
            if storage is not None:
                storage.set_trial_user_attr(trial._trial_id, "owner", _owner())
            super().before_trial(study, trial)

    return OwnedTPESampler(seed=seed)


def _make_pruner(optuna: Any):
    # a trial is stopped when its best-so-far epoch metric is below the median of earlier
    # trials at the same epoch; the first 3 trials and each trial's first epoch always run
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


# ---------------------------------------------------------------------- tuning
def tune(
    model: str,
    dataset: Dataset,
    split: Split | None = None,
    *,
    n_trials: int | None = None,
    budget_minutes: float | None = None,
    metric: str = "ndcg@10",
    base_config: dict[str, Any] | None = None,
    space: dict[str, Any] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> TuneResult:
    """Tune ``model``'s hyper-parameters on the validation split of ``dataset``.

    Args:
        model: registered model name (``"ease"``, ``"sasrec"``, ...).
        dataset: the data; split with leave-one-out unless ``split`` is given.
        split: a precomputed split; only ``split.train`` and ``split.valid`` are used.
        n_trials: trials to run in this call (continuing a stored study adds to it).
        budget_minutes: wall-clock budget of this call; no trial starts after it and
            neural trials are capped to the time left. At least one budget is required.
        metric: validation metric to maximise, ``name@k`` (e.g. ``"ndcg@10"``).
        base_config: fixed overrides every trial starts from (e.g. a shipped preset).
        space: search space replacing the model's default ``SEARCH_SPACE``.
        storage: Optuna storage URL or a ``.db`` path (SQLite); ``None`` keeps the study
            in memory. With a storage an existing study of the same name is continued.
        study_name: default ``"<model>-<dataset>-<split>-<metric>"``.
        seed: seed of the TPE sampler.
        progress: timestamped lines on the progress console: each trial's start (with an ETA
            of this call), progress while it runs and its result.

    Raises:
        ConfigError: no budget, no or invalid search space, bad metric, or a stored study
            made for another model/dataset/split/metric.
        MissingExtraError: Optuna is not installed (``pip install 'genrec[tune]'``).
    """
    started = time.perf_counter()
    cls = get_model(model)
    cfg_cls = cls.config_class
    if n_trials is None and budget_minutes is None:
        raise ConfigError("tune needs a budget: n_trials and/or budget_minutes")
    if n_trials is not None and (isinstance(n_trials, bool) or int(n_trials) < 1):
        raise ConfigError(f"n_trials must be >= 1, got {n_trials!r}")
    if budget_minutes is not None and not 0 < budget_minutes < math.inf:  # NaN fails too
        raise ConfigError(f"budget_minutes must be a finite number > 0, got {budget_minutes!r}")
    metric_name, metric_k = _parse_metric(metric)
    base = dict(base_config or {})
    neural = cls.epoch_trained  # trained epoch by epoch: budgets, validation, pruning
    base_user = {k: v for k, v in base.items() if not (neural and k in _RUNTIME_KEYS)}
    cfg_cls.from_dict(base)  # a bad base config fails before any trial
    space = validate_space(model, default_space(model) if space is None else space, base)
    optuna = require_extra("optuna", "tune")

    split = split if split is not None else split_dataset(dataset, "loo")
    valid = split.valid  # the only holdout tuning reads; split.test is never touched
    if valid is None:
        raise ConfigError("tuning needs a split with a validation holdout")
    train = split.train
    study_name = study_name or f"{model}-{dataset.name}-{split.method}-{metric}"
    url = storage_url(storage)
    identity = {
        "model": model,
        "dataset": dataset.name,
        "split": split.method,
        "metric": metric,
        "train_fingerprint": train.fingerprint(),
    }

    old_verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=study_name,
            storage=url,
            direction="maximize",
            pruner=_make_pruner(optuna),
            load_if_exists=True,
        )
        n_before = len(study.trials)
        _retry_interrupted_trials(optuna, study)  # after a kill: redo what it interrupted
        # a resumed study gets a fresh sampler stream, or TPE's random start would replay
        # the first session's trials
        study.sampler = _make_sampler(optuna, seed + n_before)
        stored = study.user_attrs.get("genrec")
        if stored is None:
            study.set_user_attr("genrec", identity)
        elif stored != identity:
            diff = sorted(k for k in identity if stored.get(k) != identity[k])
            raise ConfigError(
                f"study {study_name!r} in {url} was made for another setup (differs in {diff}: "
                f"{ {k: stored.get(k) for k in diff} }); use another --study-name or storage"
            )
        if n_before == 0:  # trial 0 is the starting config: tuning never ends below it
            start = _start_params(space, cfg_cls.from_dict(base).to_dict())
            if start:
                study.enqueue_trial(start, user_attrs={"starting_config": True})
        deadline = started + budget_minutes * 60.0 if budget_minutes is not None else None

        durations: list[float] = []  # seconds of each finished trial of this call

        def study_eta() -> str:
            """Time left of this call: the mean trial time times the trials left, capped by
            the time budget."""
            left = []
            done = len(durations)
            if n_trials is not None and done:
                left.append(sum(durations) / done * (n_trials - done))
            if deadline is not None:
                left.append(max(deadline - time.perf_counter(), 0.0))
            return f", ETA {format_seconds(min(left))}" if left else ""

        def objective(trial: Any) -> float:
            if not progress:
                return run_trial(trial)
            number = trial.number - n_before + 1
            of = f" of {n_trials}" if n_trials is not None else ""
            what = f"tune {model}: trial {trial.number}"
            log_line(f"{what} ({number}{of} in this run{study_eta()}): started")
            step = LongStep(what, quiet_start=True)
            try:
                with step:
                    return run_trial(trial)
            finally:
                durations.append(step.seconds or 0.0)

        def run_trial(trial: Any) -> float:
            params = {name: _suggest(trial, name, spec) for name, spec in space.items()}
            overrides = cfg_cls.merged(base_user, params)
            trial.set_user_attr("config", to_jsonable(overrides))
            run_cfg = dict(overrides)
            callback = None
            if neural:
                run_cfg.update(progress=False, val_metric=metric)
                if deadline is not None:
                    left = max(deadline - time.perf_counter(), 1.0) / 60.0
                    own = float(base.get("time_budget_minutes") or 0.0)
                    run_cfg["time_budget_minutes"] = min(own, left) if own > 0 else left

                def callback(epoch: int, record: dict[str, Any]) -> None:
                    if metric in record:
                        trial.report(float(record[metric]), epoch)
                        if trial.should_prune():
                            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

            try:
                config = cfg_cls.from_dict(run_cfg)
                estimator = cls(config)
                estimator.fit(train, valid=valid, on_epoch_end=callback)
                res = evaluate(
                    estimator,
                    valid,
                    stage="valid",
                    ks=[metric_k],
                    metrics=[metric_name],
                    beyond_accuracy=False,
                )
            except (ConfigError, TrainingError) as exc:
                trial.set_user_attr("error", str(exc))
                raise
            value = float(res.metrics[metric])
            if not neural:
                trial.report(value, 0)
            return value

        def report(study_: Any, trial: Any) -> None:
            if not progress:
                return
            state = trial.state.name.lower()
            value = "" if trial.value is None else f" {metric}={trial.value:.4f}"
            best = ""
            if any(t.state.name == "COMPLETE" for t in study_.trials):
                best = f" (best {study_.best_value:.4f})"
            log_line(f"tune {model}: trial {trial.number}: {state}{value}{best} {trial.params}")

        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=None if deadline is None else max(deadline - time.perf_counter(), 1e-3),
            catch=(ConfigError, TrainingError),
            callbacks=[report],
            gc_after_trial=False,
        )
    finally:
        optuna.logging.set_verbosity(old_verbosity)

    trials = study.trials
    states = [t.state.name for t in trials]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        errors = [t.user_attrs.get("error") for t in trials if t.user_attrs.get("error")]
        why = f"; last error: {errors[-1]}" if errors else ""
        raise GenrecError(
            f"no trial of study {study_name!r} completed ({len(trials)} trials: "
            f"{states.count('PRUNED')} pruned, {states.count('FAIL')} failed){why}"
        )
    best = study.best_trial
    best_config = dict(best.user_attrs.get("config") or {})
    cfg_cls.from_dict(best_config)  # still valid (e.g. not from an older genrec)
    best_params = {k: best_config[k] for k in best.params if k in best_config}
    return TuneResult(
        best_config=best_config,
        best_value=float(best.value) if best.value is not None else -math.inf,
        n_trials=states.count("COMPLETE") + states.count("PRUNED"),
        n_pruned=states.count("PRUNED"),
        elapsed_s=time.perf_counter() - started,
        study_name=study_name,
        storage=url,
        model=model,
        dataset=dataset.name,
        metric=metric,
        n_failed=states.count("FAIL"),
        trials_this_run=len(trials) - n_before,
        budget_trials=n_trials,
        budget_minutes=budget_minutes,
        best_params=best_params,
    )


def _owner() -> dict[str, Any]:
    """The process running a trial, to tell a crashed trial from one still running."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _retry_interrupted_trials(optuna: Any, study: Any) -> list[int]:
    """Mark the trials a dead process left ``RUNNING`` (on this host) as failed, and enqueue
    their parameters again so that the interrupted work is redone first.

    Trials run by another host, or by a live process here, are left alone (several workers
    may share one storage). Returns the numbers of the trials marked failed.
    """
    from optuna.trial import TrialState

    here = socket.gethostname()
    done = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("owner") or {}
        pid = owner.get("pid")
        if owner.get("host") != here or not isinstance(pid, int) or _process_alive(pid):
            continue
        # optuna has no public "fail this trial" call for another process's trial: its own
        # RetryFailedTrialCallback goes through the study's storage the same way
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        attrs = {k: v for k, v in trial.user_attrs.items() if k == "starting_config"}
        study.enqueue_trial(trial.params, user_attrs={**attrs, "retry_of": trial.number})
        done.append(trial.number)
    return done


def tune_benchmark_configs(
    models: list[str],
    configs: dict[str, tuple[dict[str, Any], str | None]],
    dataset: Dataset,
    split: Split,
    *,
    budget_minutes: float,
    ks: Any,
    on_progress: Any = None,
) -> dict[str, dict[str, Any]]:
    """``genrec benchmark --tune-budget-minutes``: tune every model with the same budget on
    ``split``'s validation data, starting from its resolved config; ``configs`` is updated in
    place with the tuned keys. Returns the per-model record for ``results.json`` (models
    without a search space are left as they are and say so)."""

    say = on_progress or (lambda msg: None)
    ks = list(ks)
    metric = f"ndcg@{10 if 10 in ks else int(max(ks))}"
    out: dict[str, dict[str, Any]] = {}
    for name in models:
        cfg, source = configs[name]
        if not default_space(name):
            out[name] = {"metric": metric, "stage": "valid", "skipped": "no search space"}
            continue
        say(f"{name}: tuning for {budget_minutes:g} min on the validation split")
        res = tune(
            name, dataset, split, budget_minutes=budget_minutes, metric=metric, base_config=cfg
        )
        cfg_cls = get_model(name).config_class
        tuned = cfg_cls.from_dict(cfg_cls.merged(cfg, res.best_params)).to_dict()
        configs[name] = (tuned, source)
        out[name] = res.to_dict()
    return out
