"""Human-readable reports of a benchmark ``results.json``: Markdown and a terminal table."""

from __future__ import annotations

from typing import Any

MAIN_METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "mrr@10", "coverage@10")
TERMINAL_METRICS = ("recall@10", "ndcg@10", "mrr@10", "coverage@10")


def _metric_columns(results: dict[str, Any], wanted: tuple[str, ...] = MAIN_METRICS) -> list[str]:
    first = next(iter(results["models"].values()))["metrics"]
    prefix = "sampled_" if any(k.startswith("sampled_") for k in first) else ""
    return [prefix + m for m in wanted if prefix + m in first]


def table_rows(
    results: dict[str, Any], columns: list[str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: model, each metric as ``mean ± std`` with a significance mark,
    fit and recommend seconds."""
    cols = columns or _metric_columns(results)
    ref = results.get("reference_model")
    header = ["model", *cols, "fit s", "recommend s"]
    rows = []
    for name, res in results["models"].items():
        row = [name + (" (ref)" if name == ref else "")]
        for c in cols:
            m = res["metrics"][c]
            cell = f"{m['mean']:.4f}"
            if len(m["per_seed"]) > 1 and not res.get("deterministic"):
                cell += f" ± {m['std']:.4f}"
            sig = res.get("significance", {}).get(c)
            if sig and sig["significant"]:
                cell += " ↑" if sig["delta"] > 0 else " ↓"
            row.append(cell)
        row.append(f"{res['fit_seconds']['mean']:.2f}")
        row.append(f"{res['recommend_seconds']['mean']:.2f}")
        rows.append(row)
    return header, rows


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
        f"Split: {split['method']}. Seeds: {len(results['manifest']['seeds'])}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * len(header)) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [
        "",
        f"↑/↓: significantly better/worse than the reference `{results['reference_model']}` "
        "(paired t-test on per-user values, Holm-corrected, α = 0.05). ± is the std over seeds.",
        "",
        "## All metrics (mean over seeds, 95% bootstrap CI over users)",
        "",
    ]
    all_keys = list(next(iter(results["models"].values()))["metrics"])
    lines.append("| metric | " + " | ".join(results["models"]) + " |")
    lines.append("|---" * (len(results["models"]) + 1) + "|")
    for key in all_keys:
        cells = []
        for res in results["models"].values():
            m = res["metrics"].get(key)
            if m is None:
                cells.append("")
                continue
            ci = m.get("ci95")
            cells.append(f"{m['mean']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
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
        f"- command: `{results.get('command') or 'n/a'}`",
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

    header, rows = table_rows(results, _metric_columns(results, TERMINAL_METRICS))
    table = Table(title=f"{results['dataset']['name']} ({results['protocol']['ranking']} ranking)")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*r)
    Console().print(table)
