"""benchmarks/results_table.py: the README table takes Amazon Beauty runs only."""

from __future__ import annotations

import json


def _results(dataset: str, metrics: dict[str, float]) -> dict:
    return {
        "dataset": {"name": dataset},
        "manifest": {"hardware": {"cpu_count": 2}},
        "models": {
            "ease": {
                "config": {"l2": 50.0},
                "metrics": {k: {"mean": v} for k, v in metrics.items()},
                "fit_seconds": {"mean": 3.0},
            }
        },
    }


def test_rows_skip_other_datasets_and_show_missing_cutoffs(tmp_path, benchmark_script):
    rt = benchmark_script("results_table")
    beauty = tmp_path / "beauty.json"
    beauty.write_text(json.dumps(_results("amazon-beauty", {"recall@10": 0.07, "ndcg@10": 0.04})))
    ml = tmp_path / "ml.json"
    ml.write_text(json.dumps(_results("movielens-100k", {"recall@10": 0.14, "ndcg@10": 0.07})))
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"suite": "x", "protocols": {}}))
    again = tmp_path / "beauty2.json"  # the same deterministic numbers in another file
    again.write_text(beauty.read_text())
    lines = [line for _, line in rt.rows([beauty, ml, suite, again])]
    assert len(lines) == 1 and "beauty.json" in lines[0]
    assert lines[0].startswith("| ease | – | – | 0.0700 | 0.0400 |")
    full = tmp_path / "full.json"  # the same numbers with k=5 too: that row is kept
    metrics = {"recall@5": 0.05, "ndcg@5": 0.03, "recall@10": 0.07, "ndcg@10": 0.04}
    full.write_text(json.dumps(_results("amazon-beauty", metrics)))
    lines = [line for _, line in rt.rows([beauty, full])]
    assert len(lines) == 1 and lines[0].startswith("| ease | 0.0500 | 0.0300 |")


def test_budget_says_early_stop_or_budget_and_fit_time(tmp_path, benchmark_script):
    rt = benchmark_script("results_table")
    res = _results("amazon-beauty", {"recall@10": 0.06, "ndcg@10": 0.03})
    entry = res["models"]["ease"]
    entry["fit_seconds"] = {"mean": 1800.0}
    entry["config"] = {"time_budget_minutes": 95.0}
    run = {"epochs_run": 98, "best_epoch": 77, "out_of_time": False, "stopped_early": True}
    entry["training"] = [run]
    path = tmp_path / "early.json"
    path.write_text(json.dumps(res))
    (line,) = [line for _, line in rt.rows([path])]
    assert "| 98 epochs (best 78), early stop; fit 30 min | 2 CPUs | early.json |" in line
    run.update(out_of_time=True, stopped_early=False)
    path.write_text(json.dumps(res))
    (line,) = [line for _, line in rt.rows([path])]
    assert "| 98 epochs (best 78), 95.0 min budget; fit 30 min |" in line
