"""End-to-end command-line tests on a tiny CSV dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

import genrec
from genrec.cli import main
from genrec.testing import make_synthetic_dataset

SCHEMA = json.loads(
    (Path(genrec.__file__).parent / "evaluation" / "results_schema.json").read_text()
)


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    ds = make_synthetic_dataset(n_users=80, n_items=40, seed=1, noise=0.1)
    path = tmp_path_factory.mktemp("data") / "inter.csv"
    ds.interactions[["user_id", "item_id", "timestamp"]].to_csv(path, index=False)
    return path


def test_help_and_module_entry_point():
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = subprocess.run(
        [sys.executable, "-m", "genrec", "--help"], capture_output=True, text=True, check=True
    )
    assert "benchmark" in out.stdout


def test_benchmark_end_to_end(csv_path, tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "benchmark", "--dataset", "csv", "--data-dir", str(csv_path),
        "--models", "popularity,itemknn,ease", "--seeds", "2", "--k", "5,10",
        "--out", str(out), "--save-recommendations", "--set", "ease.l2=10",
    ])  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert list(results["models"]) == ["popularity", "itemknn", "ease"]
    assert results["models"]["ease"]["config"]["l2"] == 10.0
    assert results["manifest"]["seeds"] == [0, 1]
    assert results["reference_model"] == "ease"
    assert "significance" in results["models"]["popularity"]
    assert results["command"].startswith("genrec benchmark")
    report = (out / "report.md").read_text()
    assert "| popularity" in report and "data hash" in report
    captured = capsys.readouterr()
    assert "R@10" in captured.out and "R recall" in captured.out  # abbreviated, with a legend
    # not a terminal: progress messages are timestamped lines (a status line shows nothing)
    assert "ease: fitting (seed 0)" in captured.err and "ease: seed 0: recall@5=" in captured.err

    # anyone can re-check the metrics from the saved recommendations
    recs = pd.read_csv(out / "recommendations" / "ease.csv")
    assert list(recs.columns) == ["user_id", "rank", "item_id"]
    raw = pd.read_csv(csv_path).sort_values(["user_id", "timestamp"], kind="stable")
    last = raw.groupby("user_id").tail(1).set_index("user_id")["item_id"]
    top10 = recs[recs["rank"] <= 10]
    hits = top10.apply(lambda r: last[r.user_id] == r.item_id, axis=1).groupby(top10.user_id)
    recall = hits.any().reindex(last.index, fill_value=False).mean()
    assert recall == pytest.approx(results["models"]["ease"]["metrics"]["recall@10"]["mean"])


def test_train_evaluate_recommend(csv_path, tmp_path, capsys):
    art = tmp_path / "ease"
    base = ["--dataset", "csv", "--data-dir", str(csv_path)]
    assert main(["train", "ease", *base, "--set", "l2=5", "--out", str(art)]) == 0
    assert genrec.load(art).config.l2 == 5.0
    capsys.readouterr()
    assert main(["evaluate", str(art), *base, "--k", "10", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert 0.0 <= metrics["recall@10"] <= 1.0
    user = str(pd.read_csv(csv_path)["user_id"].iloc[0])
    assert main(["recommend", str(art), "--user", user, "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[1].lstrip().startswith("1.")


def test_evaluate_refuses_full_data_artifact(csv_path, tmp_path, capsys):
    art = tmp_path / "pop"
    base = ["--dataset", "csv", "--data-dir", str(csv_path)]
    assert main(["train", "popularity", *base, "--full", "--out", str(art)]) == 0
    assert main(["evaluate", str(art), *base]) == 2
    assert "leak" in capsys.readouterr().err


def test_set_wildcard_applies_to_models_that_have_the_key():
    from genrec.cli import _model_overrides

    out = _model_overrides(
        ["*.epochs=3", "multvae.epochs=5", "*.l2=7", "ease.l2=9"], ["ease", "multvae", "sasrec"]
    )
    assert out == {"multvae": {"epochs": 5}, "sasrec": {"epochs": 3}, "ease": {"l2": 9}}
    with pytest.raises(genrec.errors.ConfigError, match="no model to apply it to"):
        _model_overrides(["*.epochs=3"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["benchmark", "--models", "eaze"], "Did you mean 'ease'"),
        (["benchmark", "--dataset", "movielens-smal"], "Did you mean 'movielens-small'"),
        (["benchmark", "--models", "ease", "--set", "ease.lambda=3"], "unknown config key"),
        (["benchmark", "--models", "ease", "--set", "l2=3"], "MODEL.KEY=VALUE"),
        (["benchmark", "--models", "ease", "--set", "ease.l2=-1"], "l2 must be > 0"),
        (["benchmark", "--models", "ease,als", "--set", "*.epochs=3"], "none of the models"),
        (["benchmark", "--models", "ease", "--config", "ease=/nonexistent.yaml"], "not found"),
        (
            [
                "train",
                "ease",
                "--dataset",
                "amazon-beauty",
                "--data-dir",
                "/nonexistent",
                "--out",
                "/tmp/x",
            ],
            "/nonexistent",
        ),
        (["recommend", "/nonexistent-artifact", "--user", "1"], "no artifact directory"),
    ],
)
def test_errors_are_clear(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_argparse_rejects_bad_k(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--k", "0"])
    assert exc.value.code == 2
    assert "positive" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["benchmark", "--seeds", "0"], "must be >= 1, got 0"),
        (["benchmark", "--first-seed", "-1"], "must be >= 0, got -1"),
        (["benchmark", "--first-seed", "one"], "expected an integer, got 'one'"),
    ],
)
def test_argparse_rejects_bad_seeds(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_user_message(csv_path, tmp_path, capsys):
    art = tmp_path / "pop"
    main(["train", "popularity", "--dataset", "csv", "--data-dir", str(csv_path),
          "--out", str(art)])  # fmt: skip
    assert main(["recommend", str(art), "--user", "no-such-user"]) == 2
    assert "no-such-user" in capsys.readouterr().err


def test_datasets_and_models_commands(capsys):
    assert main(["datasets", "list"]) == 0
    assert "movielens-small" in capsys.readouterr().out
    assert main(["models", "ease"]) == 0
    assert "l2" in capsys.readouterr().out


def test_recommendations_are_deterministic_across_runs(csv_path, tmp_path):
    outs = []
    for name in ("a", "b"):
        main([
            "benchmark", "--dataset", "csv", "--data-dir", str(csv_path), "--models",
            "itemknn", "--out", str(tmp_path / name), "--save-recommendations",
        ])  # fmt: skip
        outs.append(pd.read_csv(tmp_path / name / "recommendations" / "itemknn.csv"))
    assert np.array_equal(outs[0].to_numpy(), outs[1].to_numpy())


def test_preprocessing_flags_filter_the_data_and_are_recorded(tmp_path, capsys):
    """--min-user-interactions / --min-item-interactions / --dedupe filter after loading;
    the benchmark manifest and the artifact record them; the leave-one-out error names
    the flag."""
    rows = [(u, i, t) for u in range(1, 31) for t, i in enumerate(range(u % 7 + 1, u % 7 + 6))]
    rows += [(100, 1, 0), (100, 2, 1)]  # a user with 2 interactions stops leave-one-out
    rows += [(5, 40, 99)]  # item 40: one interaction
    rows += [(6, 3, 50), (6, 3, 50)]  # exact duplicates are collapsed by the loader anyway
    rows += [(7, 1, 60)]  # a repeat of (7, 1) at another time: --dedupe keeps one
    path = tmp_path / "inter.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(path, index=False)
    base = ["--dataset", "csv", "--data-dir", str(path)]
    assert main(["benchmark", *base, "--models", "popularity", "--out", str(tmp_path / "a")]) == 2
    assert "--min-user-interactions 3" in capsys.readouterr().err
    out = tmp_path / "b"
    argv = ["benchmark", *base, "--models", "popularity", "--out", str(out),
            "--min-user-interactions", "3", "--min-item-interactions", "2", "--dedupe"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["manifest"]["preprocessing"] == {
        "min_user_interactions": 3, "item_core": 2, "deduplicate": "first"
    }  # fmt: skip
    stats = res["dataset"]["stats"]
    assert stats["n_users"] == 30 and stats["n_interactions"] == stats["n_unique_pairs"]
    art = tmp_path / "art"
    argv = ["train", "popularity", *base, "--out", str(art), "--min-user-interactions", "3"]
    assert main(argv) == 0
    info = genrec.load(art).training_info_
    assert info["preprocessing"] == {"min_user_interactions": 3}
    with pytest.raises(SystemExit):  # argparse: a count >= 1
        main(["benchmark", *base, "--min-item-interactions", "0"])
