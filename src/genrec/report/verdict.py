"""The verdict of a suite run (``genrec benchmark --suite``): per-protocol tables, the
summary paragraph, and the agreement of the model ranking across protocols."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from genrec.report.common import (
    CONVERGENCE_NOTE,
    fmt_cell,
    md_table,
    not_converged,
    segment_rows,
    sig_mark,
)

# ---------------------------------------------------------------------- suite verdicts
PROTOCOL_NAMES = {
    "loo": "leave-one-out",
    "temporal": "the global temporal split",
    "ratio": "the per-user ratio split",
}
SUITE_ACCURACY = tuple(f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (5, 10, 20))
SUITE_BEYOND = (
    ("coverage", "coverage"),
    ("ild_genre", "diversity (ILD)"),
    ("novelty", "novelty"),
    ("avg_popularity", "avg popularity"),
    ("gini", "Gini"),
)


def format_p(p: float | None) -> str:
    """``p < 0.001`` or ``p = 0.012`` (three decimals, two significant digits below 0.01)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = n/a"
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return f"p = {p:.4f}"
    return f"p = {p:.3f}"


def metric_label(metric: str) -> str:
    name, _, k = metric.partition("@")
    label = {"ndcg": "NDCG", "mrr": "MRR", "map": "MAP", "hit_rate": "HitRate"}.get(
        name, name.capitalize()
    )
    return f"{label}@{k}" if k else label


def _verdict_row(res: dict[str, Any], metric: str, ref_mean: float | None) -> dict[str, Any]:
    """Mean, delta, relative delta, adjusted p, effect size and verdict of one model."""
    sig = (res.get("significance") or {}).get(metric) or {}
    mean = res["metrics"][metric]["mean"]
    delta = sig.get("delta", None if ref_mean is None else mean - ref_mean)
    rel = sig.get("relative_delta")
    if rel is None and delta is not None and ref_mean:
        rel = delta / ref_mean
    p = sig.get("p_adjusted", sig.get("p_value"))
    if not sig:
        verdict = "untested"
    elif sig.get("significant"):
        verdict = "better" if delta > 0 else "worse"
    else:
        verdict = "not significant"
    return {
        "mean": mean,
        "delta": delta,
        "relative_delta": rel,
        "p": p,
        "effect_size": sig.get("effect_size"),
        "verdict": verdict,
        "n_users": sig.get("n_users"),
        "not_converged": not_converged(res),
    }


def _name(name: str, row: dict[str, Any]) -> str:
    """A model's name, flagged when its training did not converge (so no sentence calls a
    model better or worse without saying so)."""
    return f"{name} (not converged)" if row.get("not_converged") else name


def _nc_sentence(scored: dict[str, Any]) -> str | None:
    names = [n for n, r in scored.items() if not_converged(r)]
    if not names:
        return None
    return (
        f"Not converged: {_join(names)} (their training budget or epoch limit ran out before "
        "early stopping), so their numbers are lower bounds and their verdicts provisional."
    )


def _describe(name: str, row: dict[str, Any]) -> str:
    parts = [f"{row['mean']:.4f}"]
    if row["relative_delta"] is not None:
        parts.append(f"{row['relative_delta'] * 100:+.1f}%")
    parts.append(format_p(row["p"]))
    d = row["effect_size"]
    if d is not None and math.isfinite(d):
        parts.append(f"d = {d:+.2f}")
    return f"{_name(name, row)} ({', '.join(parts)})"


def _join(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _compact_verdict(
    where: str,
    n_users: int | None,
    ref: str,
    policy: str | None,
    label: str,
    ref_mean: float,
    rows: dict[str, dict[str, Any]],
    scored: dict[str, Any],
    metric: str,
) -> str:
    """One sentence per protocol for the suite summary: significant gains in full, the
    other groups as names with their relative difference and the range of p-values."""
    head = f"{where[0].upper()}{where[1:]}"
    head += f" ({n_users:,} test users" if n_users else " ("
    head += f"{'; ' if n_users else ''}reference {ref}"
    head += f", {policy}" if policy else ""
    head += f"; its test {label} {ref_mean:.4f}): "
    parts = []
    for key, lead in (
        ("better", "significantly better"),
        ("worse", "significantly worse"),
        ("not significant", "not significantly different"),
    ):
        members = sorted(
            (n for n, r in rows.items() if r["verdict"] == key), key=lambda n: -rows[n]["mean"]
        )
        if not members:
            continue
        if key == "better":
            parts.append(f"{lead}: " + _join([_describe(n, rows[n]) for n in members]))
            continue

        def rel(n: str) -> str:
            r = rows[n]["relative_delta"]
            label_n = _name(n, rows[n])
            return label_n if r is None else f"{label_n} ({r * 100:+.0f}%)"

        ps = [rows[n]["p"] for n in members if rows[n]["p"] is not None]
        bound = ""
        if ps and key == "worse":
            bound = f", all {format_p(max(ps)).replace('p = ', 'p ≤ ')}"
        elif ps:
            bound = f", all {format_p(min(ps)).replace('p = ', 'p ≥ ')}"
        parts.append(f"{lead}: " + _join([rel(n) for n in members]) + bound)
    if not any(r["verdict"] in ("better", "worse") for r in rows.values()):
        parts.append(f"no model differs significantly from {ref}")
    best = max(scored, key=lambda n: scored[n]["metrics"][metric]["mean"])
    best_label = f"{best} (not converged)" if not_converged(scored[best]) else best
    parts.append(f"best on test {label}: {best_label}")
    out = head + "; ".join(parts) + "."
    nc = _nc_sentence(scored)
    return f"{out} {nc}" if nc else out


def verdict_summary(
    results: dict[str, Any],
    metric: str = "ndcg@10",
    *,
    protocol: str | None = None,
    compact: bool = False,
) -> str:
    """A generated paragraph: which models differ significantly from the reference.

    Reads a ``results.json`` dictionary (one protocol): the reference model, each model's
    test ``metric`` and its ``significance[metric]`` row (``p_adjusted``, ``significant``,
    ``delta`` and, when present, ``relative_delta`` and ``effect_size``). Models are grouped
    into *significantly better*, *significantly worse* and *not significantly different*;
    each with its mean, relative difference, Holm-adjusted p-value and Cohen's d_z.

    Args:
        results: a benchmark (or suite protocol) results dictionary.
        metric: the metric the verdict is about.
        protocol: split name for the opening (default: ``results["split"]["method"]``).
        compact: leave out the sentence on the test procedure (said once by the caller).

    Returns:
        One paragraph of plain text.
    """
    ref = results.get("reference_model")
    models = results.get("models") or {}
    label = metric_label(metric)
    method = protocol or (results.get("split") or {}).get("method", "")
    where = PROTOCOL_NAMES.get(method, method or "this split")
    if not models:
        return f"Under {where}, no model produced results."
    scored = {n: r for n, r in models.items() if metric in r.get("metrics", {})}
    if ref is None or ref not in scored:
        best = max(scored, key=lambda n: scored[n]["metrics"][metric]["mean"]) if scored else None
        if best is not None and not_converged(scored[best]):
            best = f"{best} (not converged)"
        tail = f" Best on test {label}: {best}." if best else ""
        return f"Under {where}, no reference model was run, so nothing was tested.{tail}"
    ref_mean = scored[ref]["metrics"][metric]["mean"]
    rows = {n: _verdict_row(r, metric, ref_mean) for n, r in scored.items() if n != ref}
    n_users = next((r["n_users"] for r in rows.values() if r["n_users"]), None)
    policy = results.get("reference_policy")
    if compact:
        return _compact_verdict(where, n_users, ref, policy, label, ref_mean, rows, scored, metric)
    opening = f"Under {where}"
    if n_users:
        opening += f" ({n_users:,} test users)"
    opening += f", the reference is {ref}"
    if policy:
        opening += f" ({policy})"
    opening += f", test {label} {ref_mean:.4f}."
    sentences = [opening]
    groups = (
        ("better", f"Significantly better than {ref} on test {label}"),
        ("worse", f"Significantly worse than {ref}"),
        ("not significant", f"Not significantly different from {ref}"),
        ("untested", "Not tested (no significance row)"),
    )
    for key, lead in groups:
        members = sorted(
            (n for n, r in rows.items() if r["verdict"] == key),
            key=lambda n: -(rows[n]["mean"]),
        )
        if members:
            sentences.append(f"{lead}: " + _join([_describe(n, rows[n]) for n in members]) + ".")
    if not rows:
        sentences.append("No other model was compared with it.")
    elif not any(r["verdict"] in ("better", "worse") for r in rows.values()):
        sentences.append(f"No model differs significantly from {ref}.")
    tested = sum(r["verdict"] != "untested" for r in rows.values())
    if tested and not compact:
        alpha = next(
            (
                (r.get("significance") or {}).get(metric, {}).get("alpha")
                for r in scored.values()
                if (r.get("significance") or {}).get(metric, {}).get("alpha")
            ),
            0.05,
        )
        sentences.append(
            f"Paired t-tests on per-user {label}, Holm-corrected over {tested} "
            f"comparison{'s' if tested != 1 else ''}, α = {alpha:g}; d is Cohen's d_z."
        )
    best = max(scored, key=lambda n: scored[n]["metrics"][metric]["mean"])
    best_label = f"{best} (not converged)" if not_converged(scored[best]) else best
    sentences.append(
        f"Best on test {label}: {best_label} ({scored[best]['metrics'][metric]['mean']:.4f})."
    )
    nc = _nc_sentence(scored)
    if nc:
        sentences.append(nc)
    return " ".join(sentences)


def _ranks(values: dict[str, float]) -> dict[str, float]:
    """Rank 1 = highest value; ties share their average rank."""
    order = sorted(values, key=lambda n: -values[n])
    ranks: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for n in order[i : j + 1]:
            ranks[n] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def protocol_ranking(
    a: dict[str, Any],
    b: dict[str, Any],
    metric: str = "ndcg@10",
    names: Sequence[str] = ("loo", "temporal"),
) -> dict[str, Any]:
    """How the ranking of models by test ``metric`` changes between two protocols.

    Returns ``{"metric", "protocols", "models": {model: {protocol: {"value", "rank"}}},
    "kendall_tau", "p_value", "n_models"}`` over the models present in both; Kendall's
    tau-b (``scipy.stats.kendalltau``) is ``None`` with fewer than two models.
    """
    from scipy import stats as sps

    pa, pb = names[0], names[1]
    common = [m for m in a["models"] if m in b["models"] and metric in a["models"][m]["metrics"]]
    common = [m for m in common if metric in b["models"][m]["metrics"]]
    va = {m: a["models"][m]["metrics"][metric]["mean"] for m in common}
    vb = {m: b["models"][m]["metrics"][metric]["mean"] for m in common}
    ra, rb = _ranks(va), _ranks(vb)
    tau = p = None
    if len(common) >= 2:
        res = sps.kendalltau([ra[m] for m in common], [rb[m] for m in common])
        tau = None if math.isnan(res.statistic) else float(res.statistic)
        p = None if math.isnan(res.pvalue) else float(res.pvalue)
    return {
        "metric": metric,
        "protocols": [pa, pb],
        "models": {
            m: {pa: {"value": va[m], "rank": ra[m]}, pb: {"value": vb[m], "rank": rb[m]}}
            for m in sorted(common, key=lambda m: ra[m])
        },
        "kendall_tau": tau,
        "p_value": p,
        "n_models": len(common),
    }


def ranking_sentence(ranking: dict[str, Any]) -> str:
    """One sentence on how much the model ranking changes between the two protocols."""
    pa, pb = ranking["protocols"]
    label = metric_label(ranking["metric"])
    tau = ranking.get("kendall_tau")
    if tau is None:
        return f"Too few models ran under both {pa} and {pb} to compare their rankings."
    strength = (
        "identical" if tau >= 0.999 else
        "very similar" if tau >= 0.8 else
        "similar" if tau >= 0.5 else
        "only loosely related" if tau >= 0.2 else
        "unrelated or reversed"
    )  # fmt: skip
    shifts = {m: row[pa]["rank"] - row[pb]["rank"] for m, row in ranking["models"].items()}
    moves = [
        f"{m} {'up' if d > 0 else 'down'} {abs(d):g}"
        for m, d in sorted(shifts.items(), key=lambda kv: -abs(kv[1]))  # stable: rank order
        if abs(d) >= 2
    ]
    text = (
        f"The ranking by test {label} under {pa} and under {pb} is {strength} "
        f"(Kendall τ = {tau:.2f}, {format_p(ranking.get('p_value'))}, "
        f"{ranking['n_models']} models)"
    )
    text += f"; largest moves under {pb}: " + ", ".join(moves[:4]) + "." if moves else "."
    return text


def suite_summary(suite: dict[str, Any]) -> str:
    """The generated summary paragraph of a suite run: the verdict under each protocol,
    the ranking agreement between protocols and what was skipped or failed."""
    st = suite.get("settings", {})
    metric = st.get("metric", "ndcg@10")
    parts = []
    for protocol, res in (suite.get("protocols") or {}).items():
        if res:
            parts.append(verdict_summary(res, metric, protocol=protocol, compact=True))
    if parts:
        parts.append(
            f"Significance: paired t-tests on per-user {metric_label(metric)} (mean over "
            f"{st.get('seeds', 1)} seed{'s' if st.get('seeds', 1) != 1 else ''}), "
            f"Holm-corrected, α = {st.get('alpha', 0.05):g}; d is Cohen's d_z."
        )
    if suite.get("ranking"):
        parts.append(ranking_sentence(suite["ranking"]))
    for agreement in ((suite.get("agreement") or {}).get("protocols") or {}).values():
        parts.append(ranking_sentence(agreement))
    skipped = suite.get("skipped") or {}
    failed = {m for f in (suite.get("failed") or {}).values() for m in f}
    if skipped:
        parts.append(f"Skipped: {', '.join(skipped)} (reasons below).")
    if failed:
        parts.append(f"Failed: {', '.join(sorted(failed))} (errors below).")
    if suite.get("mode") == "quick":
        parts.append(
            "Quick mode: small models and budgets sized for a 2-core CPU; a model whose "
            "budget ran out before early stopping is marked † (not converged) and is a lower "
            "bound. The full mode gives the verdict."
        )
    return " ".join(parts)


def _suite_protocol_section(protocol: str, res: dict[str, Any], suite: dict[str, Any]) -> list[str]:
    metric = suite.get("settings", {}).get("metric", "ndcg@10")
    families = suite.get("families", {})
    ref = res.get("reference_model")
    title = PROTOCOL_NAMES.get(protocol, protocol)
    lines = [f"## {title[0].upper() + title[1:]} (`{protocol}`)", ""]
    split = res.get("split", {})
    lines.append("Split: " + ", ".join(f"{k}={v}" for k, v in split.items()) + ".")
    if ref:
        lines.append(f"Reference: **{ref}** ({res.get('reference_policy', 'given')}).")
    val = res.get("reference_validation") or {}
    if val:
        lines.append(
            f"Validation {metric_label(metric)} of the classical candidates: "
            + ", ".join(f"{m} {v:.4f}" for m, v in val.items())
            + "."
        )
    lines += ["", verdict_summary(res, metric, protocol=protocol), ""]
    # accuracy
    first = next(iter(res["models"].values()))["metrics"]
    acc = [m for m in SUITE_ACCURACY if m in first]
    lines += [
        "### Accuracy (test, full ranking; mean ± std over seeds; ↑/↓ significant vs reference)",
        "",
    ]
    rows = []
    order = sorted(res["models"], key=lambda n: -res["models"][n]["metrics"][metric]["mean"])
    for name in order:
        r = res["models"][name]
        cells = []
        for m in acc:
            v = r["metrics"][m]
            cell = f"{v['mean']:.4f}"
            if len(v.get("per_seed", [])) > 1 and not r.get("deterministic"):
                cell += f" ± {v['std']:.4f}"
            mark = sig_mark(r, m)
            cells.append(cell + (f" {mark}" if mark else ""))
        label = name + (" (ref)" if name == ref else "") + (" †" if not_converged(r) else "")
        rows.append([label, families.get(name, ""), *cells])
    lines += md_table(["model", "family", *(metric_label(m) for m in acc)], rows)
    if any(not_converged(r) for r in res["models"].values()):
        lines += ["", CONVERGENCE_NOTE]
    # beyond accuracy
    k = 10
    beyond = [(f"{key}@{k}", lab) for key, lab in SUITE_BEYOND if f"{key}@{k}" in first]
    lines += ["", f"### Beyond accuracy (@{k})", ""]
    rows = []
    for name in order:
        r = res["models"][name]
        cells = [fmt_cell(r["metrics"].get(key, {}).get("mean")) for key, _ in beyond]
        prof = r.get("popularity_profile")
        cells.append(f"{prof[0] * 100:.1f}%" if prof else "")
        rows.append([name, *cells])
    lines += md_table(["model", *(lab for _, lab in beyond), "share from top-10% items"], rows)
    data_prof = (res.get("popularity_profile") or {}).get("data")
    if data_prof:
        lines.append(
            f"\nPopularity bias: the top 10% most popular items hold {data_prof[0] * 100:.1f}% "
            "of training interactions; a model above that share amplifies popularity."
        )
    seg = segment_rows(res)
    if seg is not None:
        seg_metric, header, seg_rows = seg
        by_name = {r[0]: r for r in seg_rows}
        lines += [
            "",
            f"### {metric_label(seg_metric)} by user history length",
            "",
            "Test users grouped by the number of interactions in their test-time history; "
            "group means over users and seeds (no per-group test: small groups are noisy).",
            "",
        ]
        lines += md_table(header, [by_name[n] for n in order if n in by_name])
    # significance
    if ref:
        lines += ["", f"### Significance vs {ref} (test {metric_label(metric)})", ""]
        ref_mean = res["models"][ref]["metrics"][metric]["mean"]
        rows = []
        for name in order:
            if name == ref:
                continue
            row = _verdict_row(res["models"][name], metric, ref_mean)
            rows.append([
                name,
                f"{row['mean']:.4f}",
                fmt_cell(row["delta"]),
                "" if row["relative_delta"] is None else f"{row['relative_delta'] * 100:+.1f}%",
                format_p(row["p"]).removeprefix("p = ").removeprefix("p "),
                fmt_cell(row["effect_size"], 2),
                row["verdict"],
            ])  # fmt: skip
        lines += md_table(
            ["model", metric_label(metric), "Δ", "Δ %", "p (Holm)", "d_z", "verdict"], rows
        )
    # cost
    lines += ["", "### Cost (training and inference)", ""]
    rows = []
    for name in order:
        r = res["models"][name]
        tune = r.get("tuning") or {}
        tr = [t for t in (r.get("training") or []) if t]
        epochs = ""
        if tr and tr[0].get("epochs_run") is not None:
            epochs = f"{tr[0]['epochs_run']} (best {tr[0].get('best_epoch', 0) + 1})"
            if tr[0].get("out_of_time"):
                epochs += ", budget hit"
        budget = (r.get("config") or {}).get("time_budget_minutes")
        rows.append([
            name,
            fmt_cell(tune.get("elapsed_s"), 1) if tune.get("elapsed_s") is not None else "",
            f"{r['fit_seconds']['mean']:.1f}",
            f"{r['recommend_seconds']['mean']:.2f}",
            epochs,
            "" if not budget else f"{budget:g}",
            fmt_cell(r.get("wall_seconds"), 1),
        ])  # fmt: skip
    lines += md_table(
        ["model", "tune s", "fit s / seed", "recommend s (all test users)", "epochs",
         "train budget min", "wall s (all seeds)"],
        rows,
    )  # fmt: skip
    lines.append("")
    return lines


def _ranking_section(title: str, ranking: dict[str, Any]) -> list[str]:
    """A heading, :func:`ranking_sentence` and the table of both rankings."""
    pa, pb = ranking["protocols"]
    label = metric_label(ranking["metric"])
    lines = [f"## {title}", "", ranking_sentence(ranking), ""]
    rows = []
    for m, row in ranking["models"].items():
        d = row[pa]["rank"] - row[pb]["rank"]
        rows.append([
            m,
            f"{row[pa]['value']:.4f}",
            f"{row[pa]['rank']:g}",
            f"{row[pb]['value']:.4f}",
            f"{row[pb]['rank']:g}",
            f"{d:+g}" if d else "0",
        ])  # fmt: skip
    lines += md_table(
        ["model", f"{pa} {label}", f"{pa} rank", f"{pb} {label}", f"{pb} rank",
         f"moves up under {pb}"],
        rows,
    )  # fmt: skip
    return [*lines, ""]


def render_suite_markdown(suite: dict[str, Any]) -> str:
    """``report.md`` of a suite run (:func:`genrec.bench.suites.run_suite`)."""
    st = suite.get("settings", {})
    lines = [
        f"# Verdict: `{suite['suite']}` on {suite['dataset']} ({suite['mode']} mode)",
        "",
        suite.get("description", ""),
        "",
        "## Summary",
        "",
        suite.get("summary") or suite_summary(suite),
        "",
        "## Settings",
        "",
        f"- mode **{suite['mode']}**: {st.get('mode_note', '')}",
        f"- seeds: {st.get('seeds')}; ranking: full (every item), seen items excluded",
        f"- tuning: {st.get('tuning')}",
        f"- significance: paired t-test on per-user values (mean over seeds) vs the reference, "
        f"Holm-corrected per metric, α = {st.get('alpha', 0.05)}; the reference is chosen "
        "without test data",
        f"- wall time of the whole suite: {suite.get('wall_seconds', 0):.0f} s",
    ]
    budgets = {m: b for m, b in (st.get("time_budget_minutes") or {}).items() if b}
    if budgets:
        lines.append(
            "- training budget per model and seed (minutes, stops after the epoch that "
            "crosses it): " + ", ".join(f"{m} {b:g}" for m, b in budgets.items())
        )
    for m, o in (st.get("overrides") or {}).items():
        extra = {k: v for k, v in o.items() if k != "time_budget_minutes"}
        if extra:
            lines.append(
                f"- {m} overrides: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in extra.items())
            )
    for m, path in (st.get("config_files") or {}).items():
        lines.append(f"- {m} config: `{path}` (replaces the shipped preset)")
    for m, keys in (st.get("ignored_overrides") or {}).items():
        lines.append(f"- {m}: suite overrides not in its config, ignored: {', '.join(keys)}")
    if suite.get("skipped"):
        lines += ["", "### Skipped models", ""]
        lines += [f"- **{m}**: {why}" for m, why in suite["skipped"].items()]
    if suite.get("skipped_protocols"):
        lines += ["", "### Skipped protocols", ""]
        lines += [f"- **{p}**: {why}" for p, why in suite["skipped_protocols"].items()]
    if suite.get("failed"):
        lines += ["", "### Failed runs", ""]
        for p, fails in suite["failed"].items():
            lines += [f"- **{m}** ({p}): {why}" for m, why in fails.items()]
    lines.append("")
    for protocol, res in (suite.get("protocols") or {}).items():
        if res:
            lines += _suite_protocol_section(protocol, res, suite)
    ranking = suite.get("ranking")
    if ranking:
        lines += _ranking_section("Protocol comparison: how the ranking changes", ranking)
    for protocol, agreement in ((suite.get("agreement") or {}).get("protocols") or {}).items():
        other = (suite.get("agreement") or {}).get("with") or {}
        lines += _ranking_section(
            f"Agreement with the {other.get('mode', 'other')}-mode run ({protocol})", agreement
        )
        if other.get("command"):
            lines += [f"The other run: `{other['command']}`.", ""]
    lines += [
        "## Reproduce",
        "",
        f"- command: `{suite.get('command') or 'n/a'}`",
        "- per-protocol reports (all metrics, CIs, plots): "
        + ", ".join(f"`{p}/report.html`" for p, r in (suite.get("protocols") or {}).items() if r),
        "",
    ]
    return "\n".join(lines)
