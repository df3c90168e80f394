"""benchmarks/results_table.py: the README table takes Amazon Beauty runs only."""

from __future__ import annotations

import json

import pytest


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


def _suite_model(ndcg: float, converged: bool | None, seeds: int = 1, sig: dict | None = None):
    per_seed = [ndcg] * seeds
    return {
        "metrics": {
            "recall@10": {"mean": 2 * ndcg, "std": 0.0, "per_seed": [2 * ndcg] * seeds},
            "ndcg@10": {"mean": ndcg, "std": 0.001, "per_seed": per_seed},
        },
        "fit_seconds": {"mean": 600.0 if converged is not None else 5.0},
        "seeds_run": seeds,
        "convergence": {
            "converged": converged,
            "reasons": ["fitted in one go"]
            if converged is None
            else ["early stopping" if converged else "time budget ran out after 60 epochs"],
        },
        "significance": {"ndcg@10": sig} if sig else {},
    }


def _suite() -> dict:
    worse = {"significant": True, "delta": -0.01, "relative_delta": -0.25, "p_adjusted": 1e-5}
    level = {"significant": False, "delta": 0.001, "relative_delta": 0.025, "p_adjusted": 0.4}
    return {
        "suite": "generative-vs-classical",
        "mode": "full",
        "wall_seconds": 3600.0,
        "families": {"ease": "classical", "sasrec": "sequential", "tiger": "generative"},
        "protocols": {
            "loo": {
                "reference_model": "ease",
                "reference_policy": "best classical model by validation NDCG@10",
                "genrec_version": "0.1.0",
                "created_at": "2026-12-07T20:00:00",
                "manifest": {"hardware": {"cpu_count": 2, "torch_threads": 2}},
                "models": {
                    "ease": _suite_model(0.04, None),
                    "tiger": _suite_model(0.03, False, sig=worse),
                    "sasrec": _suite_model(0.041, True, seeds=3, sig=level),
                },
            }
        },
    }


def test_verdict_table_orders_models_and_flags_not_converged(benchmark_script):
    rt = benchmark_script("results_table")
    text = rt.verdict_table(_suite())
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| sasrec", "| ease", "| tiger †"]
    sasrec, ease, tiger = rows[1:]
    assert "0.0410 ± 0.0010" in sasrec and "= +2.5%, p = 0.400" in sasrec
    assert "| 3 |" in sasrec and "converged: early stopping" in sasrec
    assert "| reference |" in ease and "no epochs (fitted in one go)" in ease
    assert "↓ -25.0%, p < 0.001" in tiger and "**not converged**" in tiger
    assert "60 min wall" in text and "2 CPUs (2 torch threads)" in text


def test_update_readme_replaces_only_its_block(tmp_path, benchmark_script, monkeypatch):
    rt = benchmark_script("results_table")
    page = tmp_path / "README.md"
    page.write_text(f"before\n{rt.VERDICT_START}\nold\n{rt.VERDICT_END}\nafter\n")
    monkeypatch.setattr(rt, "ROOT", tmp_path)
    rt._replace_block(page, rt.VERDICT_START, rt.VERDICT_END, "new table")
    assert page.read_text() == f"before\n{rt.VERDICT_START}\nnew table\n{rt.VERDICT_END}\nafter\n"
    page.write_text("no markers")
    with pytest.raises(SystemExit, match="needs exactly one"):
        rt._replace_block(page, rt.VERDICT_START, rt.VERDICT_END, "x")
