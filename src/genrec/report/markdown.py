"""The terminal table (:func:`print_table`) and ``report.md`` (:func:`render_markdown`)."""

from __future__ import annotations

import re
from typing import Any

from genrec.report.common import (
    TERMINAL_METRICS,
    all_metric_keys,
    convergence_note,
    metric_columns,
    metric_legend,
    not_converged,
    ran_once,
    seeds_note,
    seeds_text,
    segments_markdown,
    short_metric,
    sig_mark,
    table_rows,
)


def render_markdown(results: dict[str, Any]) -> str:
    """The ``report.md`` text."""
    ds = results["dataset"]
    st = ds["stats"]
    split = results["split"]
    proto = results["protocol"]
    header, rows = table_rows(results)
    lines = [
        f"# genrec benchmark: {ds['name']}",
        "",
        f"genrec {results['genrec_version']}, {results['created_at']}. "
        f"Ranking: **{proto['ranking']}**, seen items excluded, ties broken pessimistically. "
        f"Split: {split['method']}. Seeds: {seeds_text(results)}."
        + (f" {seeds_note(results)}" if seeds_note(results) else ""),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * len(header)) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [
        "",
        f"↑/↓: significantly better/worse than the reference `{results['reference_model']}` "
        "(paired t-test on per-user values, Holm-corrected, α = 0.05). ± is the std over seeds.",
    ]
    note = convergence_note(results)
    if note:
        lines.append(note)
    if results.get("merged_from"):
        lines.append(
            f"Merged from {len(results['merged_from'])} runs: models from other runs than the "
            "reference's carry no significance marks."
        )
    lines += ["", "## All metrics (mean over seeds, 95% bootstrap CI over users)", ""]
    lines.append("| metric | " + " | ".join(results["models"]) + " |")
    lines.append("|---" * (len(results["models"]) + 1) + "|")
    for key in all_metric_keys(results):
        cells = []
        for res in results["models"].values():
            m = res["metrics"].get(key)
            if m is None:
                cells.append("")
                continue
            ci = m.get("ci95")
            cells.append(f"{m['mean']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += segments_markdown(results)
    diag = {n: r["diagnostics"] for n, r in results["models"].items() if r.get("diagnostics")}
    if diag:  # Recommender.diagnostics(): e.g. TIGER's invalid codes, beam gap, codebook
        lines += ["", "## Model diagnostics (mean over seeds)", ""]
        lines += ["| diagnostic | " + " | ".join(diag) + " |", "|---" * (len(diag) + 1) + "|"]
        for key in dict.fromkeys(k for d in diag.values() for k in d):
            cells = [f"{d[key]['mean']:.4g}" if key in d else "" for d in diag.values()]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    q = st.get("seq_len_quantiles", {})
    lines += [
        "",
        "## Dataset",
        "",
        f"- users {st['n_users']:,}, items {st['n_items']:,}, interactions "
        f"{st['n_interactions']:,}, density {st['density']:.5f}",
        f"- history length: min {q.get('min', 0):.0f}, median {q.get('p50', 0):.0f}, "
        f"p90 {q.get('p90', 0):.0f}, max {q.get('max', 0):.0f}",
        "- split: " + ", ".join(f"{k}={v}" for k, v in split.items()),
        "",
        "## Reproduce",
        "",
    ]
    if results.get("merged_from"):
        for src in results["merged_from"]:
            lines.append(
                f"- {src['source']} ({', '.join(src['models'])}): `{src.get('command') or 'n/a'}`"
            )
    else:
        lines.append(f"- command: `{results.get('command') or 'n/a'}`")
    lines += [
        f"- data hash (sha256): `{results['manifest']['data_hash']}`",
        "- configs: "
        + "; ".join(
            f"{m}: {results['manifest']['config_sources'].get(m) or 'defaults'}"
            for m in results["models"]
        ),
        "- packages: "
        + ", ".join(f"{k} {v}" for k, v in results["manifest"]["packages"].items() if v),
        f"- hardware: {results['manifest']['hardware'].get('platform')}, "
        f"{results['manifest']['hardware'].get('cpu_count')} CPUs",
        "",
    ]
    return "\n".join(lines)


def print_table(results: dict[str, Any], *, console: Any = None) -> None:
    """Print the main table to the terminal with rich, fitted to 80 columns: abbreviated
    metric names with a legend under the table, the std over seeds on a second line of each
    cell, and a note naming the models that ran once.

    Args:
        results: a ``results.json`` dictionary.
        console: a :class:`rich.console.Console` (default: a new one on stdout).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    columns = metric_columns(results, TERMINAL_METRICS)
    ref = results.get("reference_model")
    ranking = results["protocol"]["ranking"]
    table = Table(title=f"{results['dataset']['name']} ({ranking} ranking)", box=box.SIMPLE_HEAD)
    table.add_column("model", overflow="fold")
    for c in columns:
        table.add_column(short_metric(c), justify="right", no_wrap=True)
    table.add_column("fit s", justify="right", no_wrap=True)
    table.add_column("rec s", justify="right", no_wrap=True)
    shown_std = False
    for name, res in results["models"].items():
        cells = [name + (" †" if not_converged(res) else "") + ("\n(ref)" if name == ref else "")]
        for c in columns:
            m = res["metrics"].get(c)
            if m is None:
                cells.append("")
                continue
            cell = f"{m['mean']:.4f}"
            mark = sig_mark(res, c)
            cell += f" {mark}" if mark else "  "
            if len(m["per_seed"]) > 1 and not res.get("deterministic"):
                cell += f"\n±{m['std']:.4f} "
                shown_std = True
            cells.append(cell)
        cells.append(f"{res['fit_seconds']['mean']:.2f}")
        cells.append(f"{res['recommend_seconds']['mean']:.2f}")
        table.add_row(*cells)
    console.print(table)
    k = columns[0].partition("@")[2] if columns else ""
    legend = [f"{part}," for part in metric_legend(columns).split(", ")]
    legend[-1] = legend[-1].rstrip(",") + (f" (@{k}: in the top {k})." if k else ".")
    legend += [
        "↑/↓: significantly better/worse than the reference (t-test, Holm, α = 0.05).",
        *(["±: std over seeds."] if shown_std else []),
        "fit s / rec s: seconds to fit / to rank every test user.",
    ]
    lines = pack_phrases(legend)
    once = ran_once(results)
    if once:  # deterministic models: one fit stands for every seed (no ± for them)
        n = len(results["manifest"]["seeds"])
        names = [f"{m}," for m in once]
        names[-1] = names[-1].rstrip(",") + "."
        lines += pack_phrases([f"Ran once of {n} seeds (deterministic: every seed gives the "
                               "same lists):", *names])  # fmt: skip
    note = convergence_note(results)
    if note:  # † models: phrases of the note, so that no line breaks in the middle of one
        lines += pack_phrases(re.split(r"(?<=[,;:])\s+", note))
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def pack_phrases(phrases: list[str], width: int = 79) -> list[str]:
    """Lines of at most ``width`` characters made of whole ``phrases`` (a phrase longer than
    ``width`` gets a line of its own), so a narrow terminal never breaks one in the middle."""
    lines: list[str] = []
    for phrase in phrases:
        if lines and len(lines[-1]) + 1 + len(phrase) <= width:
            lines[-1] += " " + phrase
        else:
            lines.append(phrase)
    return lines
