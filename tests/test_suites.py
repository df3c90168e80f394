"""Suites (genrec.bench.suites) and the verdict wording (genrec.report)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from genrec.bench.suites import (
    MODES,
    SUITES,
    Suite,
    SuiteMode,
    SuiteModel,
    get_suite,
    model_overrides,
    resolve_models,
    run_suite,
    write_suite_outputs,
)
from genrec.cli import main
from genrec.data.loaders import load_dataset
from genrec.evaluation import stats
from genrec.registry import get_model, list_models
from genrec.report import (
    format_p,
    protocol_ranking,
    ranking_sentence,
    render_suite_markdown,
    verdict_summary,
)
from genrec.testing import make_synthetic_dataset


# ---------------------------------------------------------------------- definitions
@pytest.mark.parametrize("name", sorted(SUITES))
def test_suite_definitions_are_valid(name):
    suite = get_suite(name)
    names = [m.name for m in suite.models]
    assert len(names) == len(set(names)), "a model is listed twice"
    assert set(MODES) <= set(suite.modes)
    assert any(m.family == "classical" for m in suite.models)
    assert suite.reference is None or suite.reference in names
    runnable, skipped = resolve_models(suite)
    assert sorted(runnable + list(skipped)) == sorted(names)  # every name: runs or says why
    registered = set(list_models())
    for model, reason in skipped.items():
        assert ("not registered" in reason) == (model not in registered), reason
        assert "not registered" in reason or "pip install 'genrec[" in reason
    for model in (n for n in names if n in registered):
        for mode in MODES:
            ovr, ignored = model_overrides(suite, model, mode)
            assert not ignored, f"{model} ({mode}): unknown override keys {ignored}"
            get_model(model).config_class.from_dict(ovr)  # valid values
            assert "time_budget_minutes" not in ovr or ovr["time_budget_minutes"] > 0


def test_generative_vs_classical_lists_the_issue_models():
    suite = get_suite("generative-vs-classical")
    expected = {
        "popularity", "ease", "als", "sasrec", "bert4rec", "gru4rec", "hstu", "multvae",
        "recvae", "diffrec", "tiger", "cascade",
    }  # fmt: skip
    assert {m.name for m in suite.models} == expected
    assert model_overrides(suite, "sasrec", "quick")[0]["loss"] == "ce"
    assert suite.modes["quick"].seeds <= 2 and suite.modes["full"].seeds >= 3


def test_autoencoders_vs_classical_lists_the_issue_models():
    suite = get_suite("autoencoders-vs-classical")
    expected = {
        "popularity", "ease", "als", "multvae", "multdae", "recvae", "cvae", "diffrec",
        "tdiffrec", "ldiffrec", "irgan",
    }  # fmt: skip
    assert {m.name for m in suite.models} == expected
    classical = {m.name for m in suite.models if m.family == "classical"}
    assert classical == {"popularity", "ease", "als"}
    assert suite.modes["full"].seeds >= 3
    assert model_overrides(suite, "diffrec", "full")[0]["time_budget_minutes"] == 4.0


def test_unknown_suite_and_missing_models_are_reported():
    with pytest.raises(Exception, match="unknown suite"):
        get_suite("generative-vs-clasical")
    suite = Suite(
        name="t",
        description="",
        models=(
            SuiteModel("ease", "classical"),
            SuiteModel("ghost", "generative"),
            SuiteModel("popularity", "classical", needs=(("no_such_module_xyz", "magic"),)),
        ),
        modes={"quick": SuiteMode(1, 0.1, 0.0), "full": SuiteMode(1, 0.1, 0.0)},
    )
    runnable, skipped = resolve_models(suite)
    assert runnable == ["ease"]
    assert "not registered" in skipped["ghost"]
    assert "pip install 'genrec[magic]'" in skipped["popularity"]
    with pytest.raises(Exception, match="not in suite"):
        resolve_models(suite, ["sasrec"])


# ---------------------------------------------------------------------- mini suite
@pytest.fixture(scope="module")
def interleaved(tmp_path_factory) -> Path:
    """Synthetic chains whose timestamps interleave users, so the global temporal split
    holds out the recent end of many users (not just the last few users)."""
    ds = make_synthetic_dataset(n_users=90, n_items=40, seq_len=8, seed=3, noise=0.1)
    frame = ds.interactions[["user_id", "item_id", "timestamp"]].copy()
    frame = frame.sort_values(["user_id", "timestamp"], kind="stable")
    pos = frame.groupby("user_id").cumcount().to_numpy()
    user_rank = frame["user_id"].rank(method="dense").to_numpy()
    frame["timestamp"] = (pos * 1000 + user_rank).astype(np.int64)
    path = tmp_path_factory.mktemp("data") / "inter.csv"
    frame.to_csv(path, index=False)
    return path


MINI = Suite(
    name="mini",
    description="cheap models on synthetic data",
    models=(
        SuiteModel("popularity", "classical"),
        SuiteModel("itemknn", "classical"),
        SuiteModel("ease", "classical"),
        SuiteModel("ghost", "generative"),
    ),
    modes={"quick": SuiteMode(1, 0.05, 0.0, note="test"), "full": SuiteMode(2, 1.0, 0.0)},
)


def test_mini_suite_both_protocols(interleaved, tmp_path):
    ds = load_dataset("csv", data_dir=str(interleaved))
    res = run_suite(
        MINI,
        ds,
        dataset_name="csv",
        mode="quick",
        overrides={"ease": {"l2": 10.0}, "itemknn": {"n_neighbors": 0}},  # itemknn fails
        command="test",
    )
    assert res["skipped"] == {"ghost": "not registered: no model named 'ghost' in this genrec "
                              "install"}  # fmt: skip
    assert set(res["failed"]) == {"loo", "temporal"}
    assert "itemknn" in res["failed"]["loo"] and "n_neighbors" in res["failed"]["loo"]["itemknn"]
    for protocol in ("loo", "temporal"):
        r = res["protocols"][protocol]
        assert r["split"]["method"] == protocol
        assert list(r["models"]) == ["popularity", "ease"]
        ref = r["reference_model"]
        val = r["reference_validation"]
        assert set(val) == {"popularity", "ease"} and ref == max(val, key=val.get)
        assert "validation" in r["reference_policy"]
        other = next(m for m in r["models"] if m != ref)
        sig = r["models"][other]["significance"]["ndcg@10"]
        assert {"p_adjusted", "effect_size", "relative_delta", "n_users"} <= set(sig)
        assert "significance" not in r["models"][ref]
        assert r["models"]["ease"]["config"]["l2"] == 10.0
    rk = res["ranking"]
    assert rk["protocols"] == ["loo", "temporal"] and rk["n_models"] == 2
    assert rk["kendall_tau"] in (-1.0, 1.0)
    assert res["summary"].startswith("Leave-one-out (90 test users; reference ease")
    assert "The global temporal split (" in res["summary"]
    assert "Kendall τ" in res["summary"] and "Quick mode" in res["summary"]

    out = write_suite_outputs(res, tmp_path / "suite")
    report = (out / "report.md").read_text()
    wanted = ("## Summary", "### Accuracy", "### Beyond accuracy", "### Significance vs",
              "### Cost", "## Protocol comparison", "ghost", "Failed runs", "MRR@20")  # fmt: skip
    for text in wanted:
        assert text in report, text
    saved = json.loads((out / "suite.json").read_text())
    assert saved["suite"] == "mini" and saved["mode"] == "quick"
    assert (out / "loo" / "results.json").is_file() and (out / "temporal" / "report.html").is_file()


def test_cli_suite_subset(interleaved, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main([
        "benchmark", "--suite", "generative-vs-classical", "--quick", "--dataset", "csv",
        "--data-dir", str(interleaved), "--models", "popularity,ease", "--protocols", "loo",
        "--reference", "ease", "--set", "ease.l2=5", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    res = json.loads((out / "suite.json").read_text())
    assert list(res["protocols"]) == ["loo"] and "ranking" not in res
    loo = res["protocols"]["loo"]
    assert loo["reference_model"] == "ease" and loo["reference_policy"] == "fixed: ease"
    assert res["settings"]["seeds"] == 1 and res["command"].startswith("genrec benchmark")
    assert main(["benchmark", "--quick"]) == 2  # --quick without --suite
    assert main(["benchmark", "--suite", "nope"]) == 2
    assert "unknown suite" in capsys.readouterr().err
    argv = ["benchmark", "--suite", "generative-vs-classical", "--first-seed", "1"]
    assert main(argv) == 2
    assert "--first-seed is not supported with --suite" in capsys.readouterr().err


def test_cli_suite_config_file_replaces_the_preset(interleaved, tmp_path, capsys):
    cfg = tmp_path / "ease.yaml"
    cfg.write_text("l2: 7.0\n")
    out = tmp_path / "cfg"
    base = [
        "benchmark", "--suite", "generative-vs-classical", "--quick", "--dataset", "csv",
        "--data-dir", str(interleaved), "--models", "popularity,ease", "--protocols", "loo",
    ]  # fmt: skip
    assert main([*base, "--config", f"ease={cfg}", "--out", str(out)]) == 0
    res = json.loads((out / "suite.json").read_text())
    assert res["protocols"]["loo"]["models"]["ease"]["config"]["l2"] == 7.0
    assert res["settings"]["config_files"] == {"ease": str(cfg)}
    assert f"ease config: `{cfg}`" in (out / "report.md").read_text()
    assert main([*base, "--config", f"als={cfg}", "--out", str(tmp_path / "x")]) == 2
    assert "--config names model 'als', which is not in the suite run" in capsys.readouterr().err
    assert main([*base, "--config", "ease=/nonexistent.yaml", "--out", str(tmp_path / "y")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_autoencoder_suite_quick_with_wildcard_set(interleaved, tmp_path):
    out = tmp_path / "ae"
    code = main([
        "benchmark", "--suite", "autoencoders-vs-classical", "--quick", "--dataset", "csv",
        "--data-dir", str(interleaved), "--models", "popularity,ease,multdae",
        "--protocols", "loo", "--set", "*.epochs=2", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    loo = json.loads((out / "suite.json").read_text())["protocols"]["loo"]
    assert list(loo["models"]) == ["popularity", "ease", "multdae"]
    assert loo["models"]["multdae"]["config"]["epochs"] == 2  # only the model with the key
    assert loo["models"]["multdae"]["training"][0]["epochs_run"] <= 2
    assert loo["reference_model"] in ("popularity", "ease")  # classical, picked on validation
    assert sum(loo["segments"]["users"].values()) == loo["split"]["n_test_users"]
    assert "NDCG@10 by user history length" in (out / "report.md").read_text()


# ---------------------------------------------------------------------- verdict wording
def _res(models: dict, ref: str = "ease", method: str = "loo") -> dict:
    """Hand-made results: ``models`` maps name -> (ndcg@10 mean, significance row or None)."""
    out = {"reference_model": ref, "split": {"method": method}, "models": {}}
    for name, (mean, sig) in models.items():
        entry = {"metrics": {"ndcg@10": {"mean": mean, "std": 0.0, "per_seed": [mean]}}}
        if sig is not None:
            entry["significance"] = {"ndcg@10": sig}
        out["models"][name] = entry
    return out


def _sig(delta, p, significant, d=None, rel=None, n=500):
    row = {"delta": delta, "p_value": p, "p_adjusted": p, "significant": significant}
    if d is not None:
        row.update(effect_size=d, relative_delta=rel, n_users=n, alpha=0.05)
    return row


def test_verdict_summary_groups_and_numbers():
    res = _res({
        "ease": (0.1000, None),
        "sasrec": (0.1200, _sig(0.02, 0.0004, True, d=0.31, rel=0.2)),
        "popularity": (0.0500, _sig(-0.05, 1e-9, True, d=-0.8, rel=-0.5)),
        "gru4rec": (0.1010, _sig(0.001, 0.41, False, d=0.03, rel=0.01)),
    })  # fmt: skip
    res["reference_policy"] = "best classical model by validation NDCG@10"
    text = verdict_summary(res)
    assert text.startswith(
        "Under leave-one-out (500 test users), the reference is ease (best classical model by "
        "validation NDCG@10), test NDCG@10 0.1000."
    )
    assert (
        "Significantly better than ease on test NDCG@10: sasrec (0.1200, +20.0%, p < 0.001, "
        "d = +0.31)." in text
    )
    worse = "Significantly worse than ease: popularity (0.0500, -50.0%, p < 0.001, d = -0.80)."
    assert worse in text
    same = "Not significantly different from ease: gru4rec (0.1010, +1.0%, p = 0.410, d = +0.03)."
    assert same in text
    short = verdict_summary(res, compact=True)
    assert short == (
        "Leave-one-out (500 test users; reference ease, best classical model by validation "
        "NDCG@10; its test NDCG@10 0.1000): significantly better: sasrec (0.1200, +20.0%, "
        "p < 0.001, d = +0.31); significantly worse: popularity (-50%), all p < 0.001; "
        "not significantly different: gru4rec (+1%), all p ≥ 0.410; "
        "best on test NDCG@10: sasrec."
    )
    assert "Holm-corrected over 3 comparisons, α = 0.05" in text
    assert text.endswith("Best on test NDCG@10: sasrec (0.1200).")
    assert "No model differs" not in text


def test_verdict_summary_nothing_significant_and_old_results():
    # rows as written by run_benchmark (no effect size): the relative delta is derived
    res = _res({"ease": (0.2, None), "als": (0.19, _sig(-0.01, 0.2, False))}, method="temporal")
    text = verdict_summary(res)
    assert text.startswith("Under the global temporal split, the reference is ease")
    assert "Not significantly different from ease: als (0.1900, -5.0%, p = 0.200)." in text
    assert "No model differs significantly from ease." in text
    assert "over 1 comparison," in text
    # a significant *worse* result is never called better, whatever the sign of the mean
    res = _res({"ease": (0.2, None), "x": (0.1, _sig(-0.1, 0.003, True))})
    assert "Significantly worse than ease: x (0.1000, -50.0%, p = 0.0030)." in verdict_summary(res)


def test_verdict_summary_edge_cases():
    assert "no model produced" in verdict_summary({"models": {}, "split": {"method": "loo"}})
    res = _res({"sasrec": (0.3, None), "gru4rec": (0.2, None)}, ref="ease")
    text = verdict_summary(res)
    assert "no reference model was run" in text and "Best on test NDCG@10: sasrec" in text
    res = _res({"ease": (0.2, None)})
    assert "No other model was compared with it." in verdict_summary(res)
    res = _res({"ease": (0.2, None), "x": (0.25, None)})
    assert "Not tested (no significance row): x" in verdict_summary(res)


def test_format_p():
    assert format_p(0.0) == "p < 0.001"
    assert format_p(0.00123) == "p = 0.0012"
    assert format_p(0.0456) == "p = 0.046"
    assert format_p(1.0) == "p = 1.000"
    assert format_p(None) == "p = n/a"


def test_protocol_ranking_and_sentence():
    a = _res({"ease": (0.3, None), "sasrec": (0.4, None), "pop": (0.1, None), "x": (0.2, None)})
    b = _res({"ease": (0.3, None), "sasrec": (0.4, None), "pop": (0.1, None), "x": (0.2, None)})
    same = protocol_ranking(a, b)
    assert same["kendall_tau"] == pytest.approx(1.0)
    assert [m for m in same["models"]] == ["sasrec", "ease", "x", "pop"]
    assert same["models"]["sasrec"]["loo"]["rank"] == 1
    assert "identical" in ranking_sentence(same)
    b["models"]["pop"]["metrics"]["ndcg@10"]["mean"] = 0.9  # pop jumps to rank 1
    moved = protocol_ranking(a, b)
    assert moved["models"]["pop"]["temporal"]["rank"] == 1
    assert moved["kendall_tau"] == pytest.approx(0.0)
    assert "pop up 3" in ranking_sentence(moved)
    b["models"].pop("x")  # only common models are ranked
    assert protocol_ranking(a, b)["n_models"] == 3
    tied = _res({"a": (0.2, None), "b": (0.2, None), "c": (0.1, None)})
    assert protocol_ranking(tied, tied)["models"]["a"]["loo"]["rank"] == 1.5


def test_paired_effect_size():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 2.0, 2.0, 2.0])
    diff = a - b
    assert stats.paired_effect_size(a, b) == pytest.approx(diff.mean() / diff.std(ddof=1))
    assert stats.paired_effect_size(a, a) == 0.0
    assert stats.paired_effect_size(a + 1, a) == math.inf


def test_render_suite_markdown_from_hand_made_results():
    loo = _res({"ease": (0.1, None), "sasrec": (0.12, _sig(0.02, 0.01, True, 0.2, 0.2))})
    for entry in loo["models"].values():
        entry.update(fit_seconds={"mean": 1.0}, recommend_seconds={"mean": 0.5}, config={})
    suite = {
        "suite": "s", "dataset": "d", "mode": "full", "settings": {"seeds": 3},
        "protocols": {"loo": loo}, "skipped": {"tiger": "missing extra"},
    }  # fmt: skip
    md = render_suite_markdown(suite)
    assert "# Verdict: `s` on d (full mode)" in md and "**tiger**: missing extra" in md
    assert "| sasrec | 0.1200 | 0.0200 | +20.0% | 0.010 | 0.20 | better |" in md


def test_suite_dataclasses_are_frozen():
    suite = get_suite("generative-vs-classical")
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.name = "x"  # type: ignore[misc]
    assert json.dumps(suite.to_dict())  # plain data


# ---------------------------------------------------------------------- resume, agreement, seeds
def test_a_killed_suite_resumes_without_refitting(interleaved, tmp_path, monkeypatch):
    """Finished (model, seed) results of each protocol are kept in ``.partial/<protocol>``;
    a resumed run reuses them (no fit) and the folder is removed when the run completes."""
    import genrec.bench.benchmark as bench

    ds = load_dataset("csv", data_dir=str(interleaved))
    partial = bench.start_partial_dir(tmp_path / "run", resume=False)
    models = ["popularity", "ease"]
    kw = dict(dataset_name="csv", mode="quick", models=models, overrides={"ease": {"l2": 10.0}})
    first = run_suite(MINI, ds, partial_dir=partial, **kw)
    stored = sorted(p.name for p in partial.rglob("*-seed0.json"))
    assert (partial / "loo" / "validation.json").is_file()
    assert stored == ["ease-seed0.json", "ease-seed0.json", "popularity-seed0.json",
                      "popularity-seed0.json"]  # fmt: skip
    assert (partial / "loo" / "run.json").is_file()
    from genrec.paths import is_genrec_output

    assert is_genrec_output(tmp_path / "run", "run")  # the interrupted run is genrec's own

    fits = []
    real_fit = get_model("ease").fit
    monkeypatch.setattr(get_model("ease"), "fit", lambda self, *a, **k: fits.append(1))
    again = run_suite(MINI, ds, partial_dir=partial, **kw)
    assert fits == []  # nothing fitted again
    for p in ("loo", "temporal"):
        a, b = first["protocols"][p]["models"], again["protocols"][p]["models"]
        assert a["ease"]["metrics"]["ndcg@10"] == b["ease"]["metrics"]["ndcg@10"]
        # the reference is chosen on validation scores kept from the first run
        for key in ("reference_model", "reference_policy", "reference_validation"):
            assert again["protocols"][p][key] == first["protocols"][p][key], key
        assert "validation" in again["protocols"][p]["reference_policy"]
    monkeypatch.setattr(get_model("ease"), "fit", real_fit)
    out = write_suite_outputs(again, tmp_path / "run", resume=True)
    assert not (out / ".partial").exists() and (out / "suite.json").is_file()


def test_cli_suite_resume_and_agreement(interleaved, tmp_path, capsys):
    base = ["benchmark", "--suite", "generative-vs-classical", "--dataset", "csv",
            "--data-dir", str(interleaved), "--models", "popularity,ease,als",
            "--protocols", "loo", "--reference", "ease"]  # fmt: skip
    full = tmp_path / "full"
    assert main([*base, "--seeds", "1", "--tune-budget-minutes", "0", "--out", str(full)]) == 0
    quick = tmp_path / "quick"
    assert main([*base, "--quick", "--out", str(quick), "--agreement-with", str(full)]) == 0
    res = json.loads((quick / "suite.json").read_text())
    agreement = res["agreement"]["protocols"]["loo"]
    assert agreement["protocols"] == ["quick", "full"] and agreement["n_models"] == 3
    assert -1.0 <= agreement["kendall_tau"] <= 1.0
    assert res["agreement"]["with"]["mode"] == "full"
    report = (quick / "report.md").read_text()
    assert "## Agreement with the full-mode run (loo)" in report and "Kendall τ" in report
    assert "Kendall τ" in res["summary"]
    # the same run again: refused without --overwrite/--resume; --resume completes it
    capsys.readouterr()
    assert main([*base, "--quick", "--out", str(quick)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*base, "--quick", "--out", str(quick), "--resume"]) == 0
    # a file that is not a suite run is refused with its path
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main([*base, "--quick", "--out", str(tmp_path / "q2"), "--agreement-with", str(bad)])
    assert "not a suite.json" in capsys.readouterr().err
    assert not (tmp_path / "q2").exists()  # checked before the run


def test_a_slow_model_runs_one_seed_and_the_report_says_so(interleaved, monkeypatch):
    """``one_seed_above_minutes``: a model whose first fit takes longer runs one seed; the
    results and the reports name it and say why. Fast models run every seed."""
    import genrec.bench.benchmark as bench
    from genrec.report import render_markdown
    from genrec.report.common import seeds_note

    ds = load_dataset("csv", data_dir=str(interleaved))
    spec = bench.BenchmarkSpec(
        dataset="csv", models=["popularity", "multdae", "ease"], seeds=3,
        overrides={"multdae": {"epochs": 1}, "ease": {"l2": 10.0}},
        one_seed_above_minutes=0.5,
    )  # fmt: skip
    real = bench.evaluate

    def slow_fit_seconds(model, *a, **k):  # multdae "took" 40 s; the others their real time
        if model.name == "multdae":
            model.fit_seconds_ = 40.0
        return real(model, *a, **k)

    monkeypatch.setattr(bench, "evaluate", slow_fit_seconds)
    res, _ = bench.run_benchmark(spec, ds)
    slow = res["models"]["multdae"]
    assert slow["seeds_run"] == 1 and len(slow["metrics"]["ndcg@10"]["per_seed"]) == 1
    assert slow["one_seed_reason"] == "its fit took 0.7 min, more than 0.5 min: one seed of 3"
    assert (
        res["models"]["ease"]["seeds_run"] == 3 and res["models"]["ease"]["one_seed_reason"] is None
    )
    note = seeds_note(res)
    assert "multdae ran one seed: its fit took 0.7 min" in note
    assert "multdae ran one seed" in render_markdown(res)
    full = get_suite("generative-vs-classical").modes["full"]
    assert full.seeds == 3 and full.one_seed_above_minutes == 10.0
