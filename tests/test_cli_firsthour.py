"""What a new user meets in the first hour: progress lines in logs, help texts, messages that
name the flag of the command line, tables that fit 80 columns."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import genrec
from genrec.cli import main
from genrec.testing import make_synthetic_dataset

STAMP = r"\[\d\d:\d\d:\d\d\] "


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    ds = make_synthetic_dataset(n_users=60, n_items=30, seed=2, noise=0.1)
    path = tmp_path_factory.mktemp("data") / "inter.csv"
    ds.interactions[["user_id", "item_id", "timestamp"]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ease_artifact(csv_path, tmp_path_factory) -> Path:
    art = tmp_path_factory.mktemp("art") / "ease"
    assert main(["train", "ease", "--dataset", "csv", "--data-dir", str(csv_path),
                 "--set", "l2=5", "--out", str(art)]) == 0  # fmt: skip
    return art


# ---------------------------------------------------------------------- progress in logs
def test_train_prints_timestamped_progress_without_a_terminal(csv_path, tmp_path, capsys):
    art = tmp_path / "ease"
    code = main(["train", "ease", "--dataset", "csv", "--data-dir", str(csv_path),
                 "--out", str(art)])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err  # captured: not a terminal
    assert re.search(rf"^{STAMP}fitting ease on inter \([\d,]+ interactions\): started$", err, re.M)
    assert re.search(rf"^{STAMP}fitting ease on inter .*: done in \d+\.\d s$", err, re.M)


def test_tune_trials_print_start_with_eta_and_result(csv_path, tmp_path, capsys):
    code = main([
        "tune", "ease", "--dataset", "csv", "--data-dir", str(csv_path), "--budget-trials", "3",
        "--storage", str(tmp_path / "t.db"), "--save-preset", str(tmp_path / "p.yaml"),
    ])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    starts = re.findall(rf"^{STAMP}tune ease: trial (\d) \((\d) of 3 in this run(.*)\): started$",
                        err, re.M)  # fmt: skip
    assert [(a, b) for a, b, _ in starts] == [("0", "1"), ("1", "2"), ("2", "3")]
    assert starts[0][2] == "" and re.fullmatch(r", ETA [\d.]+ s", starts[1][2])  # from trial 0
    assert len(re.findall(rf"^{STAMP}tune ease: trial \d: done in ", err, re.M)) == 3
    assert len(re.findall(rf"^{STAMP}tune ease: trial \d: complete ndcg@10=", err, re.M)) == 3


# ---------------------------------------------------------------------- artifact size
def test_train_says_how_big_the_artifact_is(csv_path, tmp_path, capsys):
    from genrec.io import artifact_size, format_bytes

    art = tmp_path / "ease"
    code = main(["train", "ease", "--dataset", "csv", "--data-dir", str(csv_path),
                 "--out", str(art)])  # fmt: skip
    assert code == 0
    size = sum(p.stat().st_size for p in art.rglob("*") if p.is_file())
    assert artifact_size(art) == size > 0
    err = capsys.readouterr().err
    assert f"saved to {art} ({format_bytes(size)})" in err
    assert format_bytes(912) == "912 B" and format_bytes(14_200) == "14.2 kB"
    assert format_bytes(317_400_000) == "317.4 MB" and format_bytes(1_234_000_000) == "1.2 GB"


# ---------------------------------------------------------------------- messages
def test_recommend_unknown_user_names_the_cli_flag(ease_artifact, capsys):
    assert main(["recommend", str(ease_artifact), "--user", "no-such-user"]) == 2
    err = capsys.readouterr().err
    assert "unknown user 'no-such-user'" in err and "--on-unknown popular" in err
    assert "on_unknown=" not in err  # Python advice does not belong in a CLI error
    code = main(["recommend", str(ease_artifact), "--user", "no-such-user", "--on-unknown",
                 "popular", "--k", "3"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "unknown: the most popular items" in out
    assert len(re.findall(r"^\s+\d\. ", out, re.M)) == 3
    # a known user is unaffected by the flag
    code = main(["recommend", str(ease_artifact), "--user", "501", "--on-unknown", "popular"])
    assert code == 0 and "unknown" not in capsys.readouterr().out


def test_search_unknown_user_names_the_cli_flags(ease_artifact, capsys):
    code = main(["search", str(ease_artifact), "anything", "--user", "ghost", "--encoder",
                 "tfidf"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "ghost" in err and "--history" in err and "on_unknown" not in err


def test_missing_p5_data_message_is_plain_sentences(tmp_path, monkeypatch):
    from genrec.data.loaders import load_dataset
    from genrec.errors import DatasetUnavailableError

    monkeypatch.delenv("GENREC_DATA_DIR", raising=False)
    for kwargs in ({}, {"data_dir": tmp_path}, {"download": True}):
        with pytest.raises(DatasetUnavailableError) as err:
            load_dataset("amazon-beauty", **kwargs)
        msg = str(err.value)
        assert "; " not in msg and not re.search(r"[^.]\.\.(?!\.)", msg), msg
        assert "no automatic download for this dataset." in msg
        assert "--data-dir" in msg and msg.endswith(".")
        # every sentence starts with a capital letter (after the "<dataset>: " prefix)
        body = msg.split(": ", 1)[1]
        for sentence in re.split(r"(?:(?<=[a-z]{3}\.)|(?<=\)\.)) ", body)[1:]:
            assert sentence[:1].isupper(), (sentence, msg)


# ---------------------------------------------------------------------- 80 columns, seeds
def test_benchmark_table_fits_80_columns_and_says_who_ran_once(csv_path, tmp_path, capsys,
                                                               monkeypatch):  # fmt: skip
    pytest.importorskip("implicit")
    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "run"
    code = main(["benchmark", "--dataset", "csv", "--data-dir", str(csv_path), "--models",
                 "popularity,ease,als", "--seeds", "2", "--set", "als.embedding_dim=8", "--out",
                 str(out)])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    header = next(line for line in lines if "model" in line)
    assert header.split() == ["model", "R@10", "NDCG@10", "MRR@10", "Cov@10", "fit", "s", "rec",
                              "s"]  # fmt: skip
    assert "…" not in captured.out  # nothing cut
    text = " ".join(lines)
    assert "R recall, NDCG normalised DCG, MRR mean reciprocal rank" in text
    assert "Cov catalogue coverage" in text and "±: std over seeds" in text
    assert "Ran once of 2 seeds (deterministic: every seed gives the same lists):" in text
    assert "popularity, ease." in text
    assert re.search(r"±0\.\d{4}", captured.out)  # als ran per seed: its std is shown
    # the first lines of the log are not broken in the middle of a phrase either
    err = captured.err.splitlines()
    assert err[:3] == [f"{m}: default config (no shipped preset for this dataset)"
                       for m in ("popularity", "ease", "als")]  # fmt: skip
    assert re.fullmatch(rf"{STAMP}inter: 60 users, 30 items, \d+ interactions; split loo: 60 "
                        "test users", err[3])  # fmt: skip
    assert [line for line in err[3:] if not re.match(STAMP, line)] == [
        f"wrote {out}{os.sep}: results.json, report.md, report.html"
    ]
    # the reports say it too
    md = (out / "report.md").read_text()
    assert "popularity and ease ran once: they are deterministic" in md
    page = (out / "report.html").read_text()
    assert "Mean over 2 seeds for als ± std over seeds" in page
    assert 'id="seeds-note"' in page and "popularity and ease ran once" in page


def test_print_table_width_80_with_long_names():
    import io

    from rich.console import Console

    from genrec.report import print_table

    def model(mean: float, std: float, deterministic: bool) -> dict:
        metric = {"mean": mean, "std": std, "per_seed": [mean, mean + std]}
        keys = ("recall@10", "ndcg@10", "mrr@10", "coverage@10", "avg_popularity@10")
        return {
            "metrics": {k: dict(metric) for k in keys},
            "fit_seconds": {"mean": 1234.5},
            "recommend_seconds": {"mean": 12.25},
            "deterministic": deterministic,
            "significance": {"recall@10": {"significant": True, "delta": 0.1}},
        }

    results = {
        "dataset": {"name": "amazon-2018:Clothing_Shoes_and_Jewelry"},
        "protocol": {"ranking": "sampled-100", "ks": [10]},
        "reference_model": "cascade-sasrec",
        "manifest": {"seeds": [0, 1, 2]},
        "models": {
            "cascade-sasrec": model(0.1234, 0.0012, False),
            "popularity": model(0.0123, 0.0, True),
            "tdiffrec": model(0.0999, 0.0101, False),
        },
    }
    buf = io.StringIO()
    print_table(results, console=Console(file=buf, width=80))
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "cascade-sasrec" in text and "0.1234 ↑" in text
    assert "Ran once of 3 seeds" in text and "popularity." in text


# ---------------------------------------------------------------------- help, evaluate, models
def _walk(parser, path):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, [*path, name])
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), action


def test_every_argument_of_every_command_has_help():
    from genrec.cli import build_parser

    seen = list(_walk(build_parser(), ["genrec"]))
    commands = {cmd for cmd, _ in seen}
    assert {"genrec train", "genrec benchmark", "genrec tune", "genrec serve"} <= commands
    missing = [
        f"{cmd} {'/'.join(a.option_strings) or a.dest}"
        for cmd, a in seen
        if not (a.help or "").strip() or a.help == "==SUPPRESS=="
    ]
    assert not missing, missing
    options = {(cmd, o) for cmd, a in seen for o in a.option_strings}
    needed = [
        ("genrec recommend", "--k"),
        ("genrec serve", "--port"),
        ("genrec tune", "--budget-trials"),
        ("genrec tune", "--budget-minutes"),
        ("genrec train", "--no-preset"),
        ("genrec recommend", "--on-unknown"),
    ]
    assert set(needed) <= options


def test_evaluate_reads_the_dataset_from_the_artifact(ease_artifact, capsys):
    assert main(["evaluate", str(ease_artifact), "--json"]) == 0
    captured = capsys.readouterr()
    assert "dataset from the artifact: csv from " in captured.err
    metrics = json.loads(captured.out)["metrics"]
    info = genrec.load(ease_artifact).training_info_
    code = main(["evaluate", str(ease_artifact), "--json", "--dataset", info["dataset"],
                 "--data-dir", info["data_dir"]])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == metrics


def test_models_shows_one_plain_sentence_each(capsys):
    from genrec.registry import get_model, list_models, model_summary

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == list_models()
    for name, line in zip(list_models(), lines):
        sentence = line.split(": ", 1)[1]
        assert sentence == model_summary(get_model(name))
        assert sentence[0].isupper() and sentence.endswith("."), line
        assert "``" not in sentence and ":class:" not in sentence and "`" not in sentence, line
        assert "docstring" not in sentence and "module doc" not in sentence, line
        assert sentence.count("(") == sentence.count(")"), line
        # one sentence: no full stop followed by a new sentence ("et al." is not one)
        assert not re.search(r"(?<!\bal)\.\s+[A-Z]", sentence), line
        assert len(line) <= 110, line


def test_model_summary_cleans_a_docstring():
    from genrec.registry import model_summary

    class Doc:
        """Implicit ALS (training through ``implicit``; see module docs). More here.

        Details."""

    class Role:
        """A :class:`~genrec.models.sasrec.SASRec` variant (Kang et al. 2018); see the module
        docstring for training."""

    class Own:
        """Ignored."""

        summary = "Its own sentence."

    assert model_summary(Doc) == "Implicit ALS (training through implicit)."
    assert model_summary(Role) == "A SASRec variant (Kang et al. 2018)."
    assert model_summary(Own) == "Its own sentence."
