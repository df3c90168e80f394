"""benchmarks/bench_scale.py on tiny catalogues: one step in process (a fit and a refusal),
the growth sentences computed from the numbers, and the written JSON, SVG and HTML."""

from __future__ import annotations

import json
import sys

import pytest


def _spec(model: str, items: int, **extra) -> dict:
    spec = {
        "model": model, "items": items, "users": 40, "mean_length": 6.0, "zipf": 1.0,
        "seed": 0, "epochs": 1, "threads": 1, "config": {"l2": 50.0}, "ease_max_items": 1000,
        "tiger_codes": "random",
    }  # fmt: skip
    return {**spec, **extra}


def test_one_step_fits_and_scores_over_the_whole_catalogue(benchmark_script) -> None:
    bench = benchmark_script("bench_scale")
    r = bench.run_step(_spec("ease", 80))
    assert r["status"] == "ok", r.get("error")
    assert r["items"] == 80 and r["items_with_interactions"] <= 80 and r["test_users"] == 40
    assert r["fit_per_epoch"] > 0 and r["infer_per_1k"] > 0 and 0.0 <= r["recall"] <= 1.0
    assert r["peak_mb"] >= r["rss_mb_data"] > 0 and r["fit_kind"] == "whole fit"
    assert r["ease_estimate"]["memory_gib"] > 0


def test_ease_above_max_items_is_refused_with_its_message(benchmark_script) -> None:
    bench = benchmark_script("bench_scale")
    r = bench.run_step(_spec("ease", 120, ease_max_items=100))
    assert r["status"] == "refused" and "max_items=100" in r["error"]
    assert "fit_per_epoch" not in r and r["peak_mb"] > 0


def _fake(model: str, items: int, infer: float, status: str = "ok") -> dict:
    r = {"model": model, "items": items, "status": status, "load_before": [1.0, 1.0, 1.0],
         "load_after": [1.5, 1.0, 1.0], "torch_threads": 2}  # fmt: skip
    if status == "ok":
        r.update(fit_per_epoch=2.0 * items / 1000, infer_per_1k=infer, peak_mb=100.0 + items / 10,
                 model_mb=items / 10, recall=0.1)  # fmt: skip
    else:
        r["error"] = "ConfigError: too big"
    return r


def test_growth_and_observations_come_from_the_numbers(benchmark_script) -> None:
    bench = benchmark_script("bench_scale")
    results = [
        _fake("sasrec", 1000, 1.0), _fake("tiger", 1000, 4.0), _fake("ease", 1000, 0.5),
        _fake("sasrec", 20000, 15.0), _fake("tiger", 20000, 5.0),
        _fake("ease", 20000, 0.0, status="refused"),
    ]  # fmt: skip
    g = bench.growth(results)
    assert g["sasrec"]["infer_per_1k"] == pytest.approx(15.0)
    assert g["tiger"]["infer_per_1k"] == pytest.approx(1.25) and g["tiger"]["catalogue"] == 20
    assert "catalogue" not in g["ease"]
    text = "\n".join(bench.observations(results))
    assert "x1.25 (within 1.5x of flat)" in text and "vs sasrec: x15.00" in text
    assert "TIGER's grew less" in text and "ease: ran at 1 size(s)" in text


def test_main_writes_json_svg_and_html(benchmark_script, monkeypatch, tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    bench = benchmark_script("bench_scale")
    fake = {1000: 1.0, 4000: 3.0}
    monkeypatch.setattr(
        bench, "run_child", lambda spec, timeout, workdir: _fake(spec["model"], spec["items"],
                                                                 fake[spec["items"]])
    )  # fmt: skip
    bench.main(["--items", "1000,4000", "--models", "sasrec,tiger", "--out", str(tmp_path)])
    payload = json.loads((tmp_path / "scale.json").read_text())
    assert len(payload["results"]) == 4 and payload["conditions"]["load_after"]
    assert (tmp_path / "scale.svg").read_text().lstrip().startswith("<?xml")
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page and "<table>" in page and "x3.00" in page
    out = capsys.readouterr().out
    assert "growth, computed from the numbers" in out and "load" in out


def test_bad_arguments_are_usage_errors(benchmark_script, monkeypatch) -> None:
    bench = benchmark_script("bench_scale")
    for argv in (["--models", "ease,nope"], ["--items", "10,x"], ["--tiger-beams", "5"]):
        monkeypatch.setattr(sys, "argv", ["bench_scale.py", *argv])
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2
