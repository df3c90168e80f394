"""What a new user meets in the first hour: progress lines in logs, help texts, messages that
name the flag of the command line, tables that fit 80 columns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
