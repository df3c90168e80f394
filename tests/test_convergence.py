"""A model stopped by its budget before early stopping is reported as *not converged*: in
results.json (schema), the terminal table, report.md, report.html and the verdict paragraph."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import genrec
from genrec.bench.benchmark import BenchmarkSpec, convergence, run_benchmark, write_outputs
from genrec.report import print_table, render_html, render_markdown, verdict_summary
from genrec.testing import make_synthetic_dataset

TINY = {"embedding_dim": 8, "max_seq_len": 6, "progress": False, "batch_size": 32}


@pytest.fixture(scope="module")
def results():
    ds = make_synthetic_dataset(n_users=60, n_items=30, seed=4)
    spec = BenchmarkSpec(
        dataset="synthetic",
        models=["ease", "sasrec", "gru4rec"],
        overrides={
            "ease": {"l2": 10.0},
            # two epochs with patience 5: the epoch limit ends it, never early stopping
            "sasrec": {**TINY, "epochs": 2, "patience": 5},
            # patience 1 on a long schedule: stops early as soon as validation stalls
            "gru4rec": {**TINY, "epochs": 30, "patience": 1, "lr": 0.01},
        },
        ks=[5, 10],
        configs_dir="/nonexistent",
    )
    out, _ = run_benchmark(spec, ds)
    return out


def test_results_record_convergence(results):
    models = results["models"]
    assert models["ease"]["convergence"] == {
        "converged": None,
        "per_seed": [None],
        "reasons": ["fitted in one go"],
    }
    sas = models["sasrec"]["convergence"]
    assert sas["converged"] is False and sas["reasons"] == ["epoch limit reached (2 epochs)"]
    gru = models["gru4rec"]["convergence"]
    assert gru["converged"] is True and gru["reasons"] == ["early stopping"]
    assert models["gru4rec"]["training"][0]["epochs_run"] < 30
    schema = json.loads(
        (Path(genrec.__file__).parent / "evaluation" / "results_schema.json").read_text()
    )
    jsonschema.validate(results, schema)


def test_time_budget_and_missing_validation_are_not_convergence():
    from genrec.models.sasrec import SASRec

    info = {"stopped_early": False, "out_of_time": True, "epochs_run": 3, "best_metric": 0.1}
    got = convergence(SASRec, [info, {"stopped_early": True}])
    assert got["converged"] is False and got["per_seed"] == [False, True]
    assert got["reasons"][0] == "time budget ran out after 3 epochs"
    no_valid = convergence(SASRec, [{"stopped_early": False, "best_metric": None}])
    assert no_valid["reasons"] == ["no validation: early stopping impossible"]


def test_reports_flag_the_not_converged_model(results, tmp_path, capsys):
    md = render_markdown(results)
    assert "| sasrec † |" in md and "gru4rec †" not in md and "ease †" not in md
    assert "† not converged" in md and "Not converged: sasrec." in md
    page = render_html(results)
    assert 'class="nc"' in page and "epoch limit reached" in page
    print_table(results)
    out = capsys.readouterr().out
    assert "sasrec †" in out and "Not converged: sasrec" in out
    write_outputs(results, tmp_path / "run")
    assert "Not converged: sasrec." in (tmp_path / "run" / "report.md").read_text()


def test_the_verdict_never_calls_a_not_converged_model_better_or_worse_silently(results):
    text = verdict_summary(results, "ndcg@10")
    assert "sasrec (not converged)" in text
    assert "Not converged: sasrec" in text and "lower bounds" in text
    assert "gru4rec (not converged)" not in text
    compact = verdict_summary(results, "ndcg@10", compact=True)
    assert "sasrec (not converged)" in compact and "Not converged: sasrec" in compact
