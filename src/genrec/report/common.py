"""Shared pieces of the report views: metric columns, significance marks, per-segment
tables and small formatting helpers."""

from __future__ import annotations

import html
import json
import math
from typing import Any

MAIN_METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "mrr@10", "coverage@10")
TERMINAL_METRICS = ("recall@10", "ndcg@10", "mrr@10", "coverage@10")
BAR_METRICS = ("recall", "ndcg", "mrr", "coverage")
PLOTS_NOTE = "pip install 'genrec[report]' for plots"


# ---------------------------------------------------------------------- shared helpers
def metric_columns(results: dict[str, Any], wanted: tuple[str, ...] = MAIN_METRICS) -> list[str]:
    first = next(iter(results["models"].values()))["metrics"]
    prefix = metric_prefix(results)
    return [prefix + m for m in wanted if prefix + m in first]


def metric_prefix(results: dict[str, Any]) -> str:
    first = next(iter(results["models"].values()))["metrics"]
    return "sampled_" if any(k.startswith("sampled_") for k in first) else ""


def main_k(results: dict[str, Any]) -> int:
    """The cut-off of the plots: 10 when evaluated, else the largest k."""
    ks = [int(k) for k in results.get("protocol", {}).get("ks", [10])] or [10]
    return 10 if 10 in ks else max(ks)


def sig_mark(res: dict[str, Any], metric: str) -> str:
    sig = (res.get("significance") or {}).get(metric)
    if sig and sig.get("significant"):
        return "↑" if sig["delta"] > 0 else "↓"
    return ""


def table_rows(
    results: dict[str, Any], columns: list[str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: model, each metric as ``mean ± std`` with a significance mark,
    fit and recommend seconds."""
    cols = columns or metric_columns(results)
    ref = results.get("reference_model")
    header = ["model", *cols, "fit s", "recommend s"]
    rows = []
    for name, res in results["models"].items():
        row = [name + (" (ref)" if name == ref else "") + (" †" if not_converged(res) else "")]
        for c in cols:
            m = res["metrics"].get(c)
            if m is None:
                row.append("")
                continue
            cell = f"{m['mean']:.4f}"
            if len(m["per_seed"]) > 1 and not res.get("deterministic"):
                cell += f" ± {m['std']:.4f}"
            mark = sig_mark(res, c)
            row.append(cell + (" " + mark if mark else ""))
        row.append(f"{res['fit_seconds']['mean']:.2f}")
        row.append(f"{res['recommend_seconds']['mean']:.2f}")
        rows.append(row)
    return header, rows


def not_converged(res: dict[str, Any]) -> bool:
    """True when a model entry of ``results.json`` was stopped by its budget or epoch limit
    before early stopping in some seed (its ``convergence.converged`` is False)."""
    return (res.get("convergence") or {}).get("converged") is False


CONVERGENCE_NOTE = (
    "† not converged: training ended by its time budget or epoch limit before early stopping "
    "in at least one seed, so the numbers are a lower bound on the model, not its quality; "
    "do not read its rank as a verdict."
)


def convergence_note(results: dict[str, Any]) -> str | None:
    """The legend line for the † mark, naming the models, or ``None`` when all converged."""
    names = [n for n, r in results["models"].items() if not_converged(r)]
    if not names:
        return None
    return CONVERGENCE_NOTE + " Not converged: " + ", ".join(names) + "."


def all_metric_keys(results: dict[str, Any]) -> list[str]:
    keys: dict[str, None] = {}
    for res in results["models"].values():
        keys.update(dict.fromkeys(res["metrics"]))
    return list(keys)


# ---------------------------------------------------------------------- Markdown
def segment_rows(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]] | None:
    """The history-length table: ``(metric, header, rows)``, one row per model and one column
    per group of test users by history length (``results["segments"]``), or ``None`` when the
    run has no segments (files written before they existed)."""
    seg = results.get("segments")
    if not seg or not seg.get("users"):
        return None
    metric = f"{metric_prefix(results)}ndcg@{main_k(results)}"
    users = seg["users"]
    header = ["model"] + [f"{label} (n={n:,})" for label, n in users.items()]
    rows = []
    for name, res in results["models"].items():
        groups = res.get("segments") or {}
        cells = [
            f"{groups[label][metric]:.4f}" if metric in groups.get(label, {}) else ""
            for label in users
        ]
        rows.append([name, *cells])
    return metric, header, rows


_SEGMENTS_NOTE = (
    "Test users grouped by the number of interactions in their test-time history "
    "(train, plus validation when the split has one); mean over the group's users and the "
    "seeds."
)


def segments_markdown(results: dict[str, Any]) -> list[str]:
    table = segment_rows(results)
    if table is None:
        return []
    metric, header, rows = table
    return [
        "",
        f"## {metric} by user history length",
        "",
        _SEGMENTS_NOTE,
        "",
        *md_table(header, rows),
    ]


def segments_html(results: dict[str, Any]) -> str | None:
    table = segment_rows(results)
    if table is None:
        return None
    metric, header, rows = table
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f"<p>{esc(metric)}. {esc(_SEGMENTS_NOTE)}"
        f'</p><div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></div>"
    )


def get_path(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None  # type: ignore[assignment]
    return d


def seeds_text(results: dict[str, Any]) -> str:
    """How many seeds the numbers average: the count of a single run, or for a merged report
    each run's own seeds (runs are shown side by side, never pooled)."""
    runs = results.get("merged_from")
    if not runs:
        return str(len(results["manifest"]["seeds"]))
    parts = [f"{r['source']}: {', '.join(str(s) for s in r.get('seeds') or [])}" for r in runs]
    return "per run, not pooled (" + "; ".join(parts) + ")"


def ran_once(results: dict[str, Any]) -> list[str]:
    """Models that ran once although several seeds were asked for: deterministic models
    (:attr:`Recommender.deterministic`) give the same lists for every seed, so the benchmark
    fits them once and reuses the result."""
    if len(results["manifest"]["seeds"]) <= 1 and not results.get("merged_from"):
        return []
    return [
        name
        for name, res in results["models"].items()
        if res.get("deterministic") and len(next(iter(res["metrics"].values()))["per_seed"]) > 1
    ]


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def seeds_note(results: dict[str, Any]) -> str | None:
    """A sentence saying which models ran once and why, or ``None`` when all ran per seed."""
    once = ran_once(results)
    if not once:
        return None
    n = len(results["manifest"]["seeds"])
    verb = "is" if len(once) == 1 else "are"
    seeds = f"the {n} seeds" if not results.get("merged_from") else "every seed"
    return (
        f"{_names(once)} ran once: {'it' if len(once) == 1 else 'they'} {verb} deterministic "
        f"(the same lists for every seed), so one fit stands for {seeds} and shows no std."
    )


#: short column names of the terminal table (legend: :func:`metric_legend`)
METRIC_ABBREVIATIONS = {
    "recall": ("R", "recall"),
    "hitrate": ("HR", "hit rate"),
    "precision": ("P", "precision"),
    "ndcg": ("NDCG", "normalised DCG"),
    "mrr": ("MRR", "mean reciprocal rank"),
    "map": ("MAP", "mean average precision"),
    "coverage": ("Cov", "catalogue coverage"),
    "gini": ("Gini", "Gini of exposure"),
    "novelty": ("Nov", "novelty"),
    "avg_popularity": ("Pop", "average popularity"),
    "ild": ("ILD", "intra-list diversity"),
}


def short_metric(key: str) -> str:
    """``recall@10`` -> ``R@10``, ``sampled_ndcg@10`` -> ``NDCG@10`` (the title says sampled)."""
    name, _, k = key.removeprefix("sampled_").partition("@")
    short = METRIC_ABBREVIATIONS.get(name, (name, name))[0]
    return f"{short}@{k}" if k else short


def metric_legend(columns: list[str]) -> str:
    """``R recall, NDCG normalised DCG, ...`` for the abbreviated ``columns``."""
    parts = []
    for key in columns:
        name = key.removeprefix("sampled_").partition("@")[0]
        short, full = METRIC_ABBREVIATIONS.get(name, (name, name))
        if short != full and f"{short} {full}" not in parts:
            parts.append(f"{short} {full}")
    return ", ".join(parts)


def short_text(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def esc(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt_num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return esc(value if value is not None else "")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return esc(value)
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return esc(value)


def fmt_cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]
