"""Reproduction checks: genrec's numbers next to published or previously measured ones.

Each :class:`Check` is data: the model and config to run on a dataset, the reference
numbers (typed from a paper, or read from a measurement file in ``docs/measurements/``),
how they are compared (``match`` within a tolerance, or ``at_least`` a floor) and where
they come from. :func:`run_check` runs one through :func:`genrec.bench.benchmark.run_benchmark`
and returns a JSON record with the reference, the measurement, the verdict, the config,
the timings and the hardware. The checks run as slow tests (``make reproduce``, see
``tests/reproduction/``); ``benchmarks/results_table.py`` renders the records in the
README.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrec._version import __version__
from genrec.bench.benchmark import BenchmarkSpec, run_benchmark
from genrec.paths import atomic_write_text
from genrec.registry import get_model

KIND = "genrec-reproduction"
RECORD_VERSION = 1
REPORTED = tuple(f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (5, 10, 20))

__all__ = ["CHECKS", "KIND", "Check", "compare", "reference_metrics", "run_check"]


@dataclass(frozen=True)
class Check:
    """One reproduction check (see the module docstring).

    Attributes:
        name: file stem of the record (``beauty-ease``).
        model: registry name.
        source: where the reference numbers come from (paper and table, or a file).
        reference: metric -> reference value (typed from a paper); or empty and
            ``reference_file`` set.
        reference_file: a ``results.json`` (relative to the repository) whose model entry
            gives the reference means *and* the config to run.
        metrics: the metrics compared (also the keys read from ``reference_file``).
        mode: ``"match"``: ``|measured - reference| <= tol``; ``"at_least"``:
            ``measured >= reference - tol`` (a floor; doing better passes).
        tolerance: absolute, or relative to the reference when ``relative``.
        config_path: preset YAML (relative to the repository; default: the shipped
            ``configs/<dataset>/<model>.yaml``).
        overrides: config overrides on top (e.g. a training time budget).
        seeds: seeds to average.
        gpu: needs CUDA to be feasible; skipped without it (``cpu_estimate`` says why).
        cpu_estimate: expected time on a 2-core CPU, for the skip reason.
        previous: an earlier measurement (``results.json``) of this model on this split,
            shown in the README until the check itself has been run.
        dataset: dataset name (``genrec datasets list``).
    """

    name: str
    model: str
    source: str
    reference: dict[str, float] = field(default_factory=dict)
    reference_file: str | None = None
    metrics: tuple[str, ...] = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")
    mode: str = "match"
    tolerance: float = 0.0
    relative: bool = False
    config_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: int = 1
    gpu: bool = False
    cpu_estimate: str = ""
    previous: str | None = None
    dataset: str = "amazon-beauty"

    def tolerance_text(self) -> str:
        tol = f"{self.tolerance * 100:g}%" if self.relative else f"{self.tolerance:g}"
        if self.mode == "match":
            return f"within ±{tol}"
        return "at least the reference" if not self.tolerance else f"at least reference − {tol}"


_CLASSICAL = "docs/measurements/beauty-classical-cpu.json"
_H200 = "docs/measurements/beauty-h200-2026-11-27"
_TIGER_H200 = "docs/measurements/tiger-beauty-h200-2026-11-27"
_SEQ_CPU = "docs/measurements/sequential-cpu-2026-11-28"
_SASREC_CPU = "hours (~130 s per epoch on 2 cores, see docs/benchmarks.md; up to 200 epochs)"
_TIGER_PAPER = "TIGER paper (Rajput et al., NeurIPS 2023), Table 1, Beauty"

CHECKS: tuple[Check, ...] = (
    Check(
        "beauty-ease", "ease", f"earlier genrec measurement ({Path(_CLASSICAL).name})",
        reference_file=_CLASSICAL, tolerance=5e-4,
    ),
    Check(
        "beauty-itemknn", "itemknn", f"earlier genrec measurement ({Path(_CLASSICAL).name})",
        reference_file=_CLASSICAL, tolerance=5e-4,
    ),
    Check(
        # seeded, but implicit's multi-threaded solver is not bit-reproducible across
        # thread counts; the three recorded seeds spread by ~0.001
        "beauty-als", "als", f"earlier genrec measurement ({Path(_CLASSICAL).name})",
        reference_file=_CLASSICAL, tolerance=3e-3, seeds=3,
    ),
    Check(
        "beauty-sasrec-bce", "sasrec", f"{_TIGER_PAPER} (SASRec row)",
        reference={"recall@10": 0.0605, "ndcg@10": 0.0318},
        metrics=("recall@10", "ndcg@10"), mode="at_least", tolerance=0.10, relative=True,
        # feasible on a CPU: ~20 s per epoch on one thread, early stop after ~120 epochs
        # (46 min of training in docs/measurements/sequential-cpu-2026-11-28)
        config_path="configs/amazon-beauty/variants/sasrec-bce.yaml",
        overrides={"time_budget_minutes": 90.0, "eval_every": 2, "progress": False},
        previous=f"{_SEQ_CPU}/sasrec-bce-50.json",
    ),
    Check(
        "beauty-sasrec-ce", "sasrec",
        "floor set for full-softmax SASRec "
        "(genrec issue 4, after Klenitskiy & Vasilev, RecSys 2023)",
        reference={"recall@10": 0.068, "ndcg@10": 0.037},
        metrics=("recall@10", "ndcg@10"), mode="at_least", tolerance=0.0,
        overrides={"time_budget_minutes": 20.0, "eval_every": 2, "progress": False},
        gpu=True, cpu_estimate=_SASREC_CPU,
        previous=f"{_H200}/sasrec-ce-50.json",
    ),
    Check(
        "beauty-tiger", "tiger", _TIGER_PAPER,
        reference={"recall@5": 0.0454, "recall@10": 0.0648, "ndcg@5": 0.0321, "ndcg@10": 0.0384},
        mode="at_least", tolerance=0.10, relative=True,
        config_path="configs/amazon-beauty/variants/tiger-gpu-fast.yaml",
        overrides={"time_budget_minutes": 30.0, "eval_every": 2, "progress": False},
        gpu=True,
        cpu_estimate="days (one epoch of the 4+4-layer model over ~150k training positions "
        "takes ~90 min on 2 cores: ~35 s per 1,024-sequence step; "
        "configs/amazon-beauty/variants/tiger-cpu.yaml is the CPU model: 2+2 layers, "
        "R@10 0.0686 / N@10 0.0382, mean of 3 seeds, 78-81 min each)",
        previous=f"{_TIGER_H200}/run2-tiger-rkmeans-b1024.json",
    ),
)  # fmt: skip


def get_check(name: str) -> Check:
    for c in CHECKS:
        if c.name == name:
            return c
    raise KeyError(f"no reproduction check {name!r}; known: {[c.name for c in CHECKS]}")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def _model_entry(path: Path, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    res = json.loads(path.read_text())
    if model not in res["models"]:
        raise KeyError(f"{path} has no model {model!r}")
    return res, res["models"][model]


def reference_metrics(check: Check, root: Path | None = None) -> dict[str, float]:
    """The reference numbers: typed ones, or the means of ``reference_file``."""
    if check.reference:
        return dict(check.reference)
    assert check.reference_file is not None
    _, entry = _model_entry((root or repo_root()) / check.reference_file, check.model)
    return {k: float(entry["metrics"][k]["mean"]) for k in check.metrics}


def check_config(check: Check, root: Path | None = None) -> tuple[dict[str, str], dict]:
    """``(config_paths, overrides)`` for :class:`~genrec.bench.benchmark.BenchmarkSpec`."""
    root = root or repo_root()
    overrides = dict(check.overrides)
    if check.reference_file:  # run exactly the recorded config
        _, entry = _model_entry(root / check.reference_file, check.model)
        recorded = get_model(check.model).config_class.current_keys(entry["config"])
        overrides = {**{k: v for k, v in recorded.items() if k != "seed"}, **overrides}
    paths = {check.model: str(root / check.config_path)} if check.config_path else {}
    return paths, {check.model: overrides}


def compare(
    measured: dict[str, float],
    reference: dict[str, float],
    mode: str,
    tolerance: float,
    relative: bool = False,
) -> dict[str, dict[str, Any]]:
    """Per metric ``{reference, measured, diff, tol, ok}`` (see :class:`Check` for modes)."""
    if mode not in ("match", "at_least"):
        raise ValueError(f"mode must be 'match' or 'at_least', got {mode!r}")
    out = {}
    for key, ref in reference.items():
        got = float(measured[key])
        tol = tolerance * ref if relative else tolerance
        eps = 1e-12
        ok = abs(got - ref) <= tol + eps if mode == "match" else got >= ref - tol - eps
        out[key] = {"reference": ref, "measured": got, "diff": got - ref, "tol": tol, "ok": ok}
    return out


def _training_summary(training: list[dict[str, Any] | None] | None) -> list[dict] | None:
    if not training:
        return None
    keep = ("epochs_run", "best_epoch", "out_of_time", "stopped_early", "train_seconds")
    return [{k: t.get(k) for k in keep if k in t} if t else None for t in training]


def run_check(
    check: Check,
    dataset: Any,
    split: Any,
    *,
    data_dir: str | None = None,
    root: Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run ``check`` on a loaded dataset and split; returns the JSON record."""

    root = root or repo_root()
    reference = reference_metrics(check, root)
    paths, overrides = check_config(check, root)
    spec = BenchmarkSpec(
        dataset=check.dataset,
        models=[check.model],
        seeds=check.seeds,
        split="loo",
        data_dir=data_dir,
        config_paths=paths,
        overrides=overrides,
        command=command,
    )
    t0 = time.perf_counter()
    results, _ = run_benchmark(spec, dataset, split=split)
    wall = time.perf_counter() - t0
    entry = results["models"][check.model]
    measured = {k: float(v["mean"]) for k, v in entry["metrics"].items() if k in REPORTED}
    per_metric = compare(measured, reference, check.mode, check.tolerance, check.relative)
    expected_hash = None
    if check.reference_file:
        ref_res, _ = _model_entry(root / check.reference_file, check.model)
        expected_hash = ref_res["manifest"]["data_hash"]
    return {
        "kind": KIND,
        "record_version": RECORD_VERSION,
        "check": check.name,
        "model": check.model,
        "dataset": check.dataset,
        "split": results["split"],
        "source": check.source,
        "reference_file": check.reference_file,
        "reference": reference,
        "mode": check.mode,
        "tolerance": {
            "value": check.tolerance,
            "relative": check.relative,
            "text": check.tolerance_text(),
        },
        "measured": measured,
        "per_metric": per_metric,
        "passed": all(r["ok"] for r in per_metric.values()),
        "data_hash": results["manifest"]["data_hash"],
        "data_hash_matches_reference": None if expected_hash is None else (
            expected_hash == results["manifest"]["data_hash"]
        ),
        "config": entry["config"],
        "config_source": entry.get("config_source"),
        "seeds": results["manifest"]["seeds"],
        "seconds": {
            "fit_per_seed": entry["fit_seconds"]["mean"],
            "recommend_per_seed": entry["recommend_seconds"]["mean"],
            "total_wall": wall,
        },
        "training": _training_summary(entry.get("training")),
        "command": command,
        "genrec_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hardware": results["manifest"]["hardware"],
        "packages": results["manifest"]["packages"],
    }  # fmt: skip


def record_dir() -> Path:
    """Where records go: ``$GENREC_REPRO_DIR`` or ``reports/reproduction``."""
    env = os.environ.get("GENREC_REPRO_DIR")
    return Path(env) if env else repo_root() / "reports" / "reproduction"


def write_record(record: dict[str, Any], out_dir: Path | None = None) -> Path:

    out = out_dir or record_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{record['check']}.json"
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
