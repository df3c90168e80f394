"""genrec.bench.tuning: search spaces, the Optuna study (resume, pruning), the validation-only
contract, presets, the CLI and ``benchmark --tune-budget-minutes``."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import genrec
from genrec.bench.benchmark import BenchmarkSpec, run_benchmark
from genrec.bench.tuning import default_space, load_space, tune, validate_space
from genrec.cli import main
from genrec.config import load_yaml
from genrec.data.splitting import split_dataset
from genrec.errors import ConfigError
from genrec.evaluation.evaluator import evaluate
from genrec.registry import get_model
from genrec.testing import make_synthetic_dataset

optuna = pytest.importorskip("optuna")

SCHEMA = json.loads(
    (Path(genrec.__file__).parent / "evaluation" / "results_schema.json").read_text()
)
TUNED_MODELS = [
    "ease", "itemknn", "als", "sasrec", "bert4rec", "gru4rec", "nextitnet", "hstu",
    "multvae", "multdae", "recvae", "diffrec", "tiger", "cvae", "irgan",
]  # fmt: skip
# a tiny SASRec: 3 epochs of a 16-d model on 8-item sequences
TINY_SASREC = {"epochs": 3, "embedding_dim": 16, "max_seq_len": 8, "batch_size": 32}
LR_SPACE = {"lr": {"type": "float", "low": 1e-3, "high": 5e-2, "log": True}}


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic_dataset(n_users=60, n_items=40, seq_len=8, seed=3, noise=0.1)


@pytest.fixture(scope="module")
def split(dataset):
    return split_dataset(dataset, "loo")


class _Poisoned:
    """Stands in for the test holdout: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"tuning read the test split (.{name})")

    def __len__(self):
        raise AssertionError("tuning read the test split (len)")


# ---------------------------------------------------------------------- search spaces
@pytest.mark.parametrize("model", TUNED_MODELS)
def test_default_spaces_are_valid(model):
    space = validate_space(model, default_space(model))
    assert space and set(space) <= set(get_model(model).config_class.field_names())


def test_unknown_space_key_names_it_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"'l3'.*EASEConfig.*Did you mean 'l2'"):
        validate_space("ease", {"l3": {"type": "float", "low": 1, "high": 10}})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"low": 1, "high": 10}, "type must be one of"),
        ({"type": "float", "low": 10, "high": 1}, "low .* is above high"),
        ({"type": "float", "low": 0, "high": 10, "log": True}, "log scale needs low > 0"),
        ({"type": "float", "low": -5, "high": 10}, "value -5.0 is not valid"),
        ({"type": "float", "low": 1, "hi": 10}, "unknown entry 'hi'"),
        ({"type": "categorical", "choices": []}, "non-empty list"),
        ({"type": "categorical", "choices": ["big"]}, "'big' is not valid"),
    ],
)
def test_bad_space_entries(spec, message):
    with pytest.raises(ConfigError, match=message):
        validate_space("ease", {"l2": spec})


def test_model_without_space_says_so(dataset):
    assert default_space("popularity") == {}
    with pytest.raises(ConfigError, match="popularity.*no search space.*--space"):
        tune("popularity", dataset, n_trials=1)


def test_budget_and_metric_are_checked(dataset):
    with pytest.raises(ConfigError, match="needs a budget"):
        tune("ease", dataset)
    with pytest.raises(ConfigError, match="metric must look like"):
        tune("ease", dataset, n_trials=1, metric="ndcg10")


def test_starting_config_is_enqueued_in_optuna_form():
    from genrec.bench.tuning import _start_params

    space = validate_space("multvae", default_space("multvae"))
    start = get_model("multvae").config_class(lr=0.5).to_dict()  # lr outside the space
    params = _start_params(space, start)
    assert params["dims"] == "[600, 200]" and "lr" not in params  # lists travel as JSON
    tiger = validate_space("tiger", default_space("tiger"))
    assert "warmup_steps" not in _start_params(tiger, {"warmup_steps": 150})  # off the grid


def test_space_from_yaml(tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("l2: {type: float, low: 1, high: 100, log: true}\n")
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text("search_space:\n  n_neighbors: {type: int, low: 5, high: 50}\n")
    assert load_space(bare)["l2"]["high"] == 100
    assert validate_space("itemknn", load_space(keyed))["n_neighbors"]["low"] == 5


# ---------------------------------------------------------------------- tuning
def test_only_the_validation_split_is_read(dataset, split):
    """The test holdout is replaced by an object that fails on any access."""
    from genrec.data.splitting import Split

    blind = Split(split.train, split.valid, _Poisoned(), split.method, split.params)
    res = tune("ease", dataset, blind, n_trials=3)
    # the objective is the validation metric of the best config, fitted on train only
    model = get_model("ease")(**res.best_config).fit(split.train)
    valid = evaluate(model, split, stage="valid", ks=[10], metrics=["ndcg"])
    assert res.best_value == pytest.approx(valid.metrics["ndcg@10"])
    # a neural model too (trained with early stopping on the validation holdout)
    res = tune("sasrec", dataset, blind, n_trials=1, base_config=TINY_SASREC, space=LR_SPACE)
    assert res.n_trials == 1


def test_best_preset_is_loadable_by_benchmark(dataset, split, tmp_path):
    res = tune("ease", dataset, split, n_trials=4, seed=1)
    assert res.n_trials == 4 and set(res.best_params) == {"l2"}
    path = res.save_preset(tmp_path / "ease.yaml")
    text = path.read_text()
    assert text.startswith("# genrec benchmark --dataset synthetic --models ease")
    assert f"ndcg@10 = {res.best_value:.4f}" in text and "4 trials" in text
    assert load_yaml(path) == res.best_config  # override-only: just the tuned key here
    spec = BenchmarkSpec(dataset="synthetic", models=["ease"], config_paths={"ease": str(path)})
    results, _ = run_benchmark(spec, dataset, split=split)
    assert results["models"]["ease"]["config"]["l2"] == pytest.approx(res.best_config["l2"])
    assert results["models"]["ease"]["config_source"] == str(path)


def test_study_is_resumable(dataset, split, tmp_path):
    db = tmp_path / "study.db"
    first = tune("itemknn", dataset, split, n_trials=3, storage=str(db))
    assert first.storage == f"sqlite:///{db.resolve()}" and first.n_trials == 3
    again = tune("itemknn", dataset, split, n_trials=2, storage=str(db))
    assert again.n_trials == 5 and again.trials_this_run == 2
    assert again.best_value >= first.best_value
    study = optuna.load_study(study_name=first.study_name, storage=first.storage)
    # trial 0 is the starting config (here the defaults), so tuning never ends below it
    assert study.trials[0].params == {"n_neighbors": 100, "shrink": 10.0}
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 5  # the resumed sampler does not replay the first session
    # a stored study is tied to its data, split and metric
    other = make_synthetic_dataset(n_users=60, n_items=40, seq_len=8, seed=4)
    with pytest.raises(ConfigError, match="another setup.*train_fingerprint"):
        tune("itemknn", other, n_trials=1, storage=str(db), study_name=first.study_name)


def test_neural_trials_report_every_epoch_and_get_pruned(dataset, split, monkeypatch):
    import genrec.bench.tuning as tuning

    class PruneOddTrials(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number % 2 == 1

    monkeypatch.setattr(tuning, "_make_pruner", lambda optuna: PruneOddTrials())
    res = tune("sasrec", dataset, split, n_trials=4, base_config=TINY_SASREC, space=LR_SPACE)
    assert (res.n_trials, res.n_pruned) == (4, 2)
    assert res.best_config["epochs"] == 3 and "progress" not in res.best_config


def test_pruned_trials_stop_training(dataset, split, tmp_path, monkeypatch):
    import genrec.bench.tuning as tuning

    class PruneOddTrials(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number % 2 == 1

    monkeypatch.setattr(tuning, "_make_pruner", lambda optuna: PruneOddTrials())
    db = tmp_path / "p.db"
    res = tune(
        "sasrec", dataset, split, n_trials=2, base_config=TINY_SASREC, space=LR_SPACE, storage=db
    )
    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    done, pruned = study.trials
    assert pruned.state.name == "PRUNED" and done.state.name == "COMPLETE"
    assert sorted(done.intermediate_values) == [0, 1, 2]  # one report per epoch
    assert sorted(pruned.intermediate_values) == [0]  # stopped after its first epoch


def test_trainer_on_epoch_end_hook(split):
    seen = []
    model = get_model("sasrec")(**TINY_SASREC, progress=False)
    model.fit(split.train, valid=split.valid, on_epoch_end=lambda e, r: seen.append((e, r)))
    assert [e for e, _ in seen] == [0, 1, 2]
    assert all("ndcg@10" in r and "loss" in r for _, r in seen)

    class StopError(Exception):
        pass

    def stop(epoch, record):
        raise StopError

    with pytest.raises(StopError):
        get_model("sasrec")(**TINY_SASREC, progress=False).fit(split.train, on_epoch_end=stop)


# ---------------------------------------------------------------------- CLI and benchmark
def test_cli_tune_then_benchmark_with_the_preset(dataset, tmp_path, capsys):
    csv = tmp_path / "inter.csv"
    dataset.interactions[["user_id", "item_id", "timestamp"]].to_csv(csv, index=False)
    data = ["--dataset", "csv", "--data-dir", str(csv)]
    space = tmp_path / "space.yaml"
    space.write_text("search_space:\n  l2: {type: float, low: 1, high: 1000, log: true}\n")
    db, preset = tmp_path / "t.db", tmp_path / "ease.yaml"
    args = ["tune", "ease", *data, "--budget-trials", "3", "--storage", str(db)]
    args += ["--space", str(space), "--save-preset", str(preset)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best ndcg@10 on the validation split" in out and str(preset) in out
    # the preset of the first run is replaced only with --overwrite, checked before tuning
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite" in err and str(preset) in err
    assert ": 3 trials (" in preset.read_text()  # untouched
    assert main([*args, "--overwrite"]) == 0  # resumed
    assert "(6 trials in study" in capsys.readouterr().out
    assert 1 <= load_yaml(preset)["l2"] <= 1000
    run = tmp_path / "run"
    code = main(["benchmark", *data, "--models", "ease", "--config", f"ease={preset}"] +
                ["--out", str(run)])  # fmt: skip
    assert code == 0
    results = json.loads((run / "results.json").read_text())
    assert results["models"]["ease"]["config"]["l2"] == pytest.approx(load_yaml(preset)["l2"])
    # errors are one clear line, exit code 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("l3: {type: float, low: 1, high: 2}\n")
    assert main(["tune", "ease", *data, "--budget-trials", "1", "--space", str(bad)]) == 2
    assert "Did you mean 'l2'" in capsys.readouterr().err
    assert main(["tune", "ease", *data]) == 2
    assert "--budget-trials" in capsys.readouterr().err


def test_benchmark_tune_budget_minutes(dataset, split, tmp_path):
    csv = tmp_path / "inter.csv"
    dataset.interactions[["user_id", "item_id", "timestamp"]].to_csv(csv, index=False)
    run = tmp_path / "run"
    code = main([
        "benchmark", "--dataset", "csv", "--data-dir", str(csv), "--models", "popularity,ease",
        "--tune-budget-minutes", "0.01", "--out", str(run),
    ])  # fmt: skip
    assert code == 0
    results = json.loads((run / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    ease = results["models"]["ease"]
    assert ease["tuning"]["stage"] == "valid" and ease["tuning"]["n_trials"] >= 1
    assert ease["config"]["l2"] == pytest.approx(ease["tuning"]["best_params"]["l2"])
    assert results["models"]["popularity"]["tuning"]["skipped"] == "no search space"
    assert results["manifest"]["tune_budget_minutes"] == 0.01


def test_missing_optuna_names_the_extra(dataset, monkeypatch):
    import sys

    from genrec.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(MissingExtraError, match=r"genrec\[tune\]"):
        tune("ease", dataset, n_trials=1)


def test_cli_config_may_carry_the_space(dataset, tmp_path, capsys):
    csv = tmp_path / "inter.csv"
    dataset.interactions[["user_id", "item_id", "timestamp"]].to_csv(csv, index=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("shrink: 0.0\nsearch_space:\n  n_neighbors: {type: int, low: 5, high: 9}\n")
    preset = tmp_path / "knn.yaml"
    code = main([
        "tune", "itemknn", "--dataset", "csv", "--data-dir", str(csv), "--config", str(cfg),
        "--budget-trials", "2", "--storage", str(tmp_path / "k.db"), "--save-preset", str(preset),
    ])  # fmt: skip
    assert code == 0
    best = load_yaml(preset)
    assert best["shrink"] == 0.0 and 5 <= best["n_neighbors"] <= 9 and "search_space" not in best
