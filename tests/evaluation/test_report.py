"""Reports of a benchmark: the HTML page, merging runs, ``genrec report`` and a screenshot."""

from __future__ import annotations

import copy
import json
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import genrec
from genrec.bench.benchmark import (
    BenchmarkSpec,
    history_segments,
    popularity_bins,
    run_benchmark,
    write_outputs,
)
from genrec.cli import main
from genrec.errors import ConfigError
from genrec.report import PLOTS_NOTE, merge_results, render_html, render_markdown
from genrec.testing import make_synthetic_dataset

SCHEMA = json.loads(
    (Path(genrec.__file__).parent / "evaluation" / "results_schema.json").read_text()
)
SASREC = {
    "epochs": 2,
    "progress": False,
    "embedding_dim": 16,
    "n_blocks": 1,
    "device": "cpu",
    "max_seq_len": 8,
}
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source"}


class PageParser(HTMLParser):
    """Collects what the tests check and verifies that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.svgs = 0
        self.refs: list[str] = []
        self.table_rows: dict[str, int] = {}
        self.tables: list[str | None] = []
        self.in_tbody = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        for key, value in attrs:
            if key in ("src", "href", "xlink:href") and value is not None:
                self.refs.append(value)
        if tag == "table":
            self.tables.append(a.get("id"))
        if tag == "tbody":
            self.in_tbody = True
        if tag == "tr" and self.in_tbody and self.tables and self.tables[-1]:
            self.table_rows[self.tables[-1]] = self.table_rows.get(self.tables[-1], 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href", "xlink:href") and value is not None:
                self.refs.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_tbody = False
        if tag == "table" and self.tables:
            self.tables.pop()
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert parser.stack == [], parser.stack
    return parser


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict[str, Any], Path]:
    """A 3-model benchmark (one trained model, 2 seeds) written to a folder."""
    ds = make_synthetic_dataset(n_users=80, n_items=40, seed=1, noise=0.1)
    spec = BenchmarkSpec(
        dataset="synthetic",
        models=["popularity", "itemknn", "sasrec"],
        seeds=2,
        ks=(5, 10),
        reference="itemknn",
        overrides={"sasrec": SASREC},
        command="genrec benchmark --dataset synthetic --models popularity,itemknn,sasrec",
    )
    results, _ = run_benchmark(spec, ds)
    out = write_outputs(results, tmp_path_factory.mktemp("bench") / "run")
    return results, out


def test_popularity_profile(bench):
    results, _ = bench
    jsonschema.validate(results, SCHEMA)
    prof = results["popularity_profile"]
    assert prof["k"] == 10 and prof["n_bins"] == 10
    assert sum(prof["data"]) == pytest.approx(1.0)
    assert prof["data"][0] >= prof["data"][-1]
    for res in results["models"].values():
        assert len(res["popularity_profile"]) == 10
        assert sum(res["popularity_profile"]) == pytest.approx(1.0)
    # the popularity model recommends only the head of the catalogue
    pop = results["models"]["popularity"]["popularity_profile"]
    assert sum(pop[:5]) == pytest.approx(1.0)


def test_first_seed_runs_a_later_seed_alone(bench):
    """``first_seed=1, seeds=1`` is the second seed of a 2-seed run, so one model's seeds can
    run as separate jobs; the manifest names the seeds that ran."""
    results, _ = bench
    ds = make_synthetic_dataset(n_users=80, n_items=40, seed=1, noise=0.1)
    spec = BenchmarkSpec(
        dataset="synthetic",
        models=["popularity", "sasrec"],
        seeds=1,
        first_seed=1,
        ks=(5, 10),
        overrides={"sasrec": SASREC},
    )
    alone, _ = run_benchmark(spec, ds)
    assert alone["manifest"]["seeds"] == [1]
    for name in ("popularity", "sasrec"):
        for key, value in alone["models"][name]["metrics"].items():
            assert value["per_seed"] == [results["models"][name]["metrics"][key]["per_seed"][1]]
    with pytest.raises(ConfigError, match="first_seed must be >= 0"):
        run_benchmark(BenchmarkSpec(dataset="synthetic", first_seed=-1), ds)


def test_history_segments_labels_and_edges():
    idx, labels = history_segments(np.array([0, 3, 4, 5, 6, 10, 11, 100, 101, 5000]))
    assert labels == ["<=3", "4-5", "6-10", "11-20", "21-50", "51-100", ">100"]
    assert [labels[i] for i in idx] == [
        "<=3", "<=3", "4-5", "4-5", "6-10", "6-10", "11-20", "51-100", ">100", ">100"
    ]  # fmt: skip
    _, labels = history_segments(np.array([1]), edges=(1, 2, 4))
    assert labels == ["<=1", "2", "3-4", ">4"]
    with pytest.raises(ConfigError, match="increasing"):
        history_segments(np.array([1]), edges=(5, 3))


def test_segments_partition_the_test_users(bench):
    """Per-history-length groups: user counts add up to the test users, and the
    user-weighted mean of the group means is the overall metric."""
    results, out = bench
    seg = results["segments"]
    assert seg["by"] == "history_length"
    n = results["split"]["n_test_users"]
    assert sum(seg["users"].values()) == n
    for res in results["models"].values():
        assert list(res["segments"]) == list(seg["users"])
        for key in ("recall@10", "ndcg@5"):
            pooled = sum(seg["users"][g] * res["segments"][g][key] for g in seg["users"]) / n
            assert pooled == pytest.approx(res["metrics"][key]["mean"])
    report = (out / "report.md").read_text()
    assert "## ndcg@10 by user history length" in report
    assert "By user history length" in (out / "report.html").read_text()
    old = copy.deepcopy(results)  # files written before segments existed still render
    old.pop("segments")
    for res in old["models"].values():
        res.pop("segments")
    assert "by user history length" not in render_markdown(old)
    # merging an older file first keeps the newer file's groups (its models fill the table)
    merged = merge_results([old, results], names=["old", "new"])
    assert merged["segments"] == seg
    text = render_markdown(merged)
    assert "by user history length" in text and "| popularity (old) |" in text
    assert "segments" not in merge_results([old, old])
    assert "&lt;=" in render_html(results) or "<=" not in "".join(seg["users"])


def test_popularity_bins():
    pop = np.array([0, 5, 1, 9, 1, 0, 3])  # internal id 0 is padding
    bins = popularity_bins(pop, n_bins=3)
    assert bins[0] == -1
    # order by popularity: 3 (9), 1 (5), 6 (3), 2 (1), 4 (1), 5 (0)
    assert bins[[3, 1]].tolist() == [0, 0]
    assert bins[[6, 2]].tolist() == [1, 1]
    assert bins[[4, 5]].tolist() == [2, 2]


def test_benchmark_writes_html(bench):
    results, out = bench
    assert {"results.json", "report.md", "report.html"} <= {p.name for p in out.iterdir()}
    page = (out / "report.html").read_text()
    p = parse(page)
    assert p.table_rows["metrics-table"] == len(results["models"]) == 3
    # 4 metric bars + accuracy-vs-coverage/novelty + popularity bias + training curves
    assert p.svgs >= 7
    assert page.count("<svg") == p.svgs
    external = [r for r in p.refs if r.startswith(("http:", "https:", "//"))]
    assert not external, external
    assert "<script" not in page.lower()
    text = " ".join(p.text)
    for needle in (
        "Popularity bias",
        "Training curves",
        "Validation ndcg@10",
        "ndcg@10 vs coverage@10",
        results["command"],
        results["manifest"]["data_hash"],
    ):
        assert needle in text, needle


def test_html_escapes_names_and_configs(bench):
    results = copy.deepcopy(bench[0])
    evil = "<script>alert(1)</script>"
    name = f"itemknn{evil}"
    results["models"] = {(name if k == "itemknn" else k): v for k, v in results["models"].items()}
    results["reference_model"] = name
    results["models"][name]["config"]["note"] = evil
    results["models"][name]["config_source"] = f"/tmp/{evil}.yaml"
    results["command"] = f"genrec benchmark --name '{evil}'"
    results["dataset"]["name"] = f"data{evil}"
    page = render_html(results)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    p = parse(page)
    assert p.table_rows["metrics-table"] == 3
    assert f"itemknn{evil}" in " ".join(p.text)  # shown literally, not interpreted
    assert name in render_markdown(results)  # Markdown is text: names stay verbatim


def test_html_without_matplotlib(bench, monkeypatch):
    for mod in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, mod, None)  # import now raises ImportError
    page = render_html(bench[0])
    assert "<svg" not in page
    assert PLOTS_NOTE in page
    p = parse(page)
    assert p.table_rows["metrics-table"] == 3


def test_old_results_without_popularity_profile(bench):
    results = copy.deepcopy(bench[0])
    results.pop("popularity_profile")
    for res in results["models"].values():
        res.pop("popularity_profile")
    page = render_html(results)
    assert "Popularity bias" not in page and parse(page).svgs >= 6


def _copy_results(bench, folder: Path, name: str, **changes: Any) -> Path:
    results = copy.deepcopy(bench[0])
    for path, value in changes.items():
        d = results
        keys = path.split("__")
        for key in keys[:-1]:
            d = d[key]
        d[keys[-1]] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(results))
    return path


def test_cli_report_rebuilds(bench, tmp_path, capsys):
    src = _copy_results(bench, tmp_path / "run", "results.json")
    before = src.read_text()
    assert main(["report", str(src)]) == 0
    assert (tmp_path / "run" / "report.md").is_file()
    page = (tmp_path / "run" / "report.html").read_text()
    assert parse(page).table_rows["metrics-table"] == 3
    assert src.read_text() == before  # the source is not rewritten
    assert "report.html" in capsys.readouterr().out
    # to another folder: a self-contained copy with the results
    assert main(["report", str(src), "--out", str(tmp_path / "copy")]) == 0
    assert json.loads((tmp_path / "copy" / "results.json").read_text()) == json.loads(before)


def test_cli_report_merges(bench, tmp_path):
    a = _copy_results(bench, tmp_path, "runa.json")
    b = _copy_results(bench, tmp_path, "runb.json")
    out = tmp_path / "merged"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    merged = json.loads((out / "results.json").read_text())
    jsonschema.validate(merged, SCHEMA)
    assert list(merged["models"]) == [
        "popularity (runa)", "itemknn (runa)", "sasrec (runa)",
        "popularity (runb)", "itemknn (runb)", "sasrec (runb)",
    ]  # fmt: skip
    assert merged["reference_model"] == "itemknn (runa)"
    assert "significance" in merged["models"]["sasrec (runa)"]
    assert "significance" not in merged["models"]["sasrec (runb)"]
    assert [m["source"] for m in merged["merged_from"]] == ["runa", "runb"]
    assert merged["manifest"]["configs"].keys() == merged["models"].keys()
    page = (out / "report.html").read_text()
    p = parse(page)
    assert p.table_rows["metrics-table"] == 6
    assert page.count("<pre>genrec benchmark --dataset synthetic") == 2  # both commands
    # each run keeps its own seeds: the report must not claim a mean over the union
    seeds = "per run, not pooled (runa: 0, 1; runb: 0, 1)"
    assert f"Seeds: {seeds}." in (out / "report.md").read_text()
    assert f"seeds {seeds}" in page and f"mean over its own run's seeds ({seeds})" in page


def test_merge_without_clash_keeps_names(bench):
    a, b = copy.deepcopy(bench[0]), copy.deepcopy(bench[0])
    b["models"] = {"ease": b["models"]["itemknn"]}
    merged = merge_results([a, b], ["a", "b"])
    assert list(merged["models"]) == ["popularity", "itemknn", "sasrec", "ease"]
    assert merged["reference_model"] == "itemknn"


def test_merge_mismatch_is_clear(bench, tmp_path, capsys):
    a = _copy_results(bench, tmp_path, "a.json")
    other = _copy_results(bench, tmp_path, "other.json", dataset__name="movielens-small")
    assert main(["report", str(a), str(other), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "dataset.name" in err and "movielens-small" in err and "other" in err
    b = copy.deepcopy(bench[0])
    b["protocol"]["ranking"] = "sampled-100"
    with pytest.raises(ConfigError, match="protocol.ranking"):
        merge_results([bench[0], b], ["a", "b"])
    b = copy.deepcopy(bench[0])
    b["split"]["method"] = "temporal"
    with pytest.raises(ConfigError, match="split"):
        merge_results([bench[0], b], ["a", "b"])
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err


def _png_pixels_vary(png: bytes) -> bool:
    """Decode just enough of a PNG to tell a blank page from a drawn one."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(set(raw[:: max(1, len(raw) // 200_000)])) > 32


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="no headless browser: install Debian's `chromium` to render report.html",
)
def test_screenshot(bench, tmp_path):
    page = bench[1] / "report.html"
    png = tmp_path / "report.png"
    cmd = [
        shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'ud'}",
        f"--screenshot={png}", "--window-size=1280,2000", page.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    print(f"screenshot: {png}")
    assert png.is_file(), "chromium wrote no screenshot"
    data = png.read_bytes()
    assert len(data) > 50_000
    assert _png_pixels_vary(data)
