"""``genrec search ARTIFACT QUERY``: textknn artifacts and title-only artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

import genrec
from genrec.cli import main
from genrec.testing import make_text_dataset


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    shop = make_text_dataset()
    root = tmp_path_factory.mktemp("artifacts")
    tk = genrec.get_model("textknn")(encoder="tfidf", progress=False).fit(shop)
    knn = genrec.get_model("itemknn")().fit(shop)
    return {"textknn": tk.save(root / "tk"), "itemknn": knn.save(root / "knn")}


def ranked_ids(out: str) -> list[str]:
    """Item ids of the result lines ``  1. p2  title  (score ...)``."""
    return [line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit()]


def test_search_textknn_artifact(artifacts, capsys):
    assert main(["search", str(artifacts["textknn"]), "light moisturizer", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "top-2 for 'light moisturizer' (textknn, tfidf)" in out
    assert ranked_ids(out)[0] == "p2" and "Oil-free light moisturizer gel" in out
    assert len(ranked_ids(out)) == 2


def test_search_with_user_and_history(artifacts, capsys):
    args = ["search", str(artifacts["textknn"]), "care", "--k", "3", "--user", "u2"]
    assert main([*args, "--history", "p1", "--alpha", "0.7"]) == 0
    out = capsys.readouterr().out
    assert "3 history items, alpha 0.7" in out
    assert set(ranked_ids(out)).isdisjoint({"p1", "p3", "p4"})


def test_search_title_only_artifact(artifacts, capsys):
    assert main(["search", str(artifacts["itemknn"]), "mascara", "--encoder", "tfidf"]) == 0
    out = capsys.readouterr().out
    assert "(itemknn, tfidf)" in out and ranked_ids(out) == ["p6"]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["xyzzy"], "matches no item text"),
        (["   "], "non-empty string"),
        (["cream", "--history", "p1,p77"], "Did you mean 'p7'?"),
        (["cream", "--user", "ghost"], "unknown user id"),
        (["cream", "--history", "p1", "--alpha", "2"], "--alpha: must be a number in [0, 1]"),
    ],
)
def test_search_errors(artifacts, capsys, extra, message):
    try:
        code = main(["search", str(artifacts["textknn"]), *extra])
    except SystemExit as exc:  # argparse checks --alpha before anything loads
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_search_missing_artifact(tmp_path, capsys):
    assert main(["search", str(tmp_path / "nope"), "cream"]) == 2
    assert "no artifact directory" in capsys.readouterr().err
