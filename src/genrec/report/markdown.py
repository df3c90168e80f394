"""The terminal table (:func:`print_table`) and ``report.md`` (:func:`render_markdown`)."""

from __future__ import annotations

from typing import Any

from genrec.report.common import (
    TERMINAL_METRICS,
    all_metric_keys,
    convergence_note,
    metric_columns,
    seeds_text,
    segments_markdown,
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
        f"Split: {split['method']}. Seeds: {seeds_text(results)}.",
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


def print_table(results: dict[str, Any]) -> None:
    """Print the main table to the terminal with rich."""
    from rich.console import Console
    from rich.table import Table

    header, rows = table_rows(results, metric_columns(results, TERMINAL_METRICS))
    table = Table(title=f"{results['dataset']['name']} ({results['protocol']['ranking']} ranking)")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*r)
    console = Console()
    console.print(table)
    note = convergence_note(results)
    if note:
        console.print(note, markup=False, highlight=False)


# ---------------------------------------------------------------------- merging
