"""``kill -9`` in the middle of ``genrec benchmark`` and ``genrec tune``, then resume.

* benchmark: ``--resume`` reuses the models the killed run finished (they are not fitted
  again) and gives the same numbers as an uninterrupted run;
* tune: the SQLite study continues; the trial the kill interrupted is marked failed and its
  parameters are tried again, and the trial numbers go on from where the study stopped.

Both kill a real subprocess with SIGKILL (as ``tests/training/test_resume_kill.py`` does).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import genrec
from genrec.cli import main
from genrec.testing import make_synthetic_dataset

SRC = Path(__file__).resolve().parents[1] / "src"

# the child runs the real CLI with one model slowed down, so that the kill lands mid-run
CHILD = textwrap.dedent(
    """
    import sys, time
    import genrec.models  # registers the models
    from genrec.registry import get_model

    cls = get_model(sys.argv[1])
    delay = float(sys.argv[2])
    fit = cls._fit

    def slow_fit(self, dataset, valid):
        time.sleep(delay)
        return fit(self, dataset, valid)

    cls._fit = slow_fit
    from genrec.cli import main

    sys.exit(main(sys.argv[3:]))
    """
)


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    ds = make_synthetic_dataset(n_users=60, n_items=30, seed=2, noise=0.1)
    path = tmp_path_factory.mktemp("data") / "inter.csv"
    ds.interactions[["user_id", "item_id", "timestamp"]].to_csv(path, index=False)
    return path


def _kill_when(args: list[str], ready: Callable[[], bool], timeout: float = 120.0) -> None:
    """Run the CLI in a child (``CHILD``), SIGKILL it as soon as ``ready()``."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if child.poll() is not None:
                pytest.fail(f"child exited ({child.returncode}) too early: {child.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the child did not get far enough within {timeout:.0f} s")
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it was killed"


# ---------------------------------------------------------------------- benchmark
MODELS = "popularity,ease,itemknn"


def _bench(csv: Path, out: Path, *extra: str) -> list[str]:
    return ["benchmark", "--dataset", "csv", "--data-dir", str(csv), "--models", MODELS,
            "--seeds", "2", "--out", str(out), *extra]  # fmt: skip


def _metrics(out: Path) -> dict[str, dict]:
    results = json.loads((out / "results.json").read_text())
    return {m: r["metrics"] for m, r in results["models"].items()}


def test_benchmark_killed_then_resumed(csv_path, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    partial = out / ".partial"
    # itemknn (last) sleeps 600 s per fit: the kill lands after popularity and ease finished
    _kill_when(
        ["itemknn", "600", *_bench(csv_path, out)],
        lambda: (partial / "ease-seed0.json").is_file(),
    )
    assert not (out / "results.json").exists()
    stored = sorted(p.name for p in partial.glob("*-seed*.json"))
    assert stored == ["ease-seed0.json", "popularity-seed0.json"]  # deterministic: one seed
    assert not list(partial.glob(".*"))  # atomic writes: no half-written file left

    # without --resume the folder is refused, and the message says how to continue it
    assert main(_bench(csv_path, out)) == 2
    assert "--resume" in capsys.readouterr().err

    # resumed: the finished models are reused, not fitted again
    from genrec.models.ease import EASE
    from genrec.models.popularity import Popularity

    def refit(self, dataset, valid):
        raise AssertionError(f"{type(self).__name__} was fitted again")

    with monkeypatch.context() as m:
        m.setattr(EASE, "_fit", refit)
        m.setattr(Popularity, "_fit", refit)
        assert main(_bench(csv_path, out, "--resume")) == 0, capsys.readouterr().err
    assert "reused from the interrupted run" in capsys.readouterr().err
    assert not partial.exists()  # the finished run leaves no partial results

    # the same numbers as a run that was never interrupted
    fresh = tmp_path / "fresh"
    assert main(_bench(csv_path, fresh)) == 0
    assert _metrics(out) == _metrics(fresh)


def test_benchmark_resume_refits_when_the_spec_changed(csv_path, tmp_path, monkeypatch):
    """A stored result is reused only for the same config, data, split and metrics."""
    out = tmp_path / "run"
    assert main(["benchmark", "--dataset", "csv", "--data-dir", str(csv_path), "--models",
                 "popularity", "--out", str(out)]) == 0  # fmt: skip
    from genrec.bench.benchmark import PARTIAL_DIR, start_partial_dir

    assert not (out / PARTIAL_DIR).exists()  # removed when the run completed
    fits: list[str] = []
    from genrec.models.popularity import Popularity

    fit = Popularity._fit

    def counting(self, dataset, valid):
        fits.append(self.name)
        return fit(self, dataset, valid)

    monkeypatch.setattr(Popularity, "_fit", counting)
    args = ["benchmark", "--dataset", "csv", "--data-dir", str(csv_path), "--models",
            "popularity", "--out", str(out), "--resume"]  # fmt: skip
    assert main([*args, "--k", "5,10"]) == 0  # nothing stored: fits
    assert fits == ["popularity"]
    # pretend a run was killed after storing popularity's result
    from genrec.bench.benchmark import BenchmarkSpec, run_benchmark

    ds = genrec.load_dataset("csv", data_dir=csv_path)
    spec = BenchmarkSpec(dataset="csv", models=["popularity"], ks=[5, 10])
    run_benchmark(spec, ds, partial_dir=start_partial_dir(out, resume=False))
    assert (out / PARTIAL_DIR / "popularity-seed0.json").is_file()
    assert fits == ["popularity"] * 2
    assert main([*args, "--k", "5,10"]) == 0  # the same spec: reused
    assert fits == ["popularity"] * 2
    run_benchmark(spec, ds, partial_dir=start_partial_dir(out, resume=False))
    assert main([*args, "--k", "5,10", "--set", "popularity.seed=3"]) == 0
    assert fits == ["popularity"] * 4  # another config: fitted again
    assert not (out / PARTIAL_DIR).exists()


def test_benchmark_ignores_a_corrupt_partial_result(csv_path, tmp_path, capsys):
    from genrec.bench.benchmark import start_partial_dir

    out = tmp_path / "run"
    folder = start_partial_dir(out, resume=False)
    folder.mkdir(parents=True)
    (folder / "run.json").write_text('{"partial_format": 1}')
    (folder / "popularity-seed0.json").write_text('{"key": ')  # truncated by hand
    args = ["benchmark", "--dataset", "csv", "--data-dir", str(csv_path), "--models",
            "popularity", "--out", str(out), "--resume"]  # fmt: skip
    assert main(args) == 0
    assert "ignoring the stored result" in capsys.readouterr().err
    assert (out / "results.json").is_file()


# ---------------------------------------------------------------------- tune
def _trial_states(db: Path) -> list[tuple[int, str, bool]]:
    """(number, state, fitting) of every trial in Optuna's SQLite schema; fitting: the trial
    has its owner and its parameters, so the (slow) fit is under way."""
    query = (
        "SELECT t.number, t.state, EXISTS (SELECT 1 FROM trial_user_attributes a "
        "WHERE a.trial_id = t.trial_id AND a.key = 'owner') AND EXISTS (SELECT 1 FROM "
        "trial_params p WHERE p.trial_id = t.trial_id) FROM trials t ORDER BY t.number"
    )
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return [(n, s, bool(o)) for n, s, o in con.execute(query).fetchall()]
    except sqlite3.Error:  # not created yet, or locked
        return []


def test_tune_killed_then_resumed(csv_path, tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    db, preset = tmp_path / "study.db", tmp_path / "ease.yaml"
    args = ["tune", "ease", "--dataset", "csv", "--data-dir", str(csv_path), "--storage",
            str(db), "--save-preset", str(preset), "--study-name", "s"]  # fmt: skip

    def mid_trial() -> bool:  # two trials done, the third running
        states = _trial_states(db)
        done = sum(s == "COMPLETE" for _, s, _ in states)
        return done >= 2 and any(s == "RUNNING" and owned for _, s, owned in states)

    # every EASE fit sleeps 1.5 s: the kill lands inside a trial
    _kill_when(["ease", "1.5", *args, "--budget-trials", "50"], mid_trial)
    before = _trial_states(db)
    running = [n for n, s, _ in before if s == "RUNNING"]
    assert len(running) == 1 and not preset.exists()
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    interrupted = study.trials[running[0]]
    n_before = len(before)

    assert main([*args, "--budget-trials", "2"]) == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    trials = study.trials
    assert len(trials) == n_before + 2  # the study continued: numbers go on
    assert [t.number for t in trials] == list(range(n_before + 2))
    # the interrupted trial is failed, and its parameters were tried again first
    assert trials[running[0]].state.name == "FAIL"
    assert trials[running[0]].user_attrs.get("interrupted") is True
    retry = trials[n_before]
    assert retry.user_attrs.get("retry_of") == running[0]
    assert retry.params == interrupted.params and retry.state.name == "COMPLETE"
    # the trials finished before the kill are kept and count for the best
    done_before = [t for t in trials[:n_before] if t.state.name == "COMPLETE"]
    assert len(done_before) >= 2
    assert study.best_value >= max(t.value for t in done_before)
    assert preset.is_file()
