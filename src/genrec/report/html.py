"""``report.html``: one self-contained page for people (inline CSS, plots as inline SVG, no
network needed to open it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from genrec.report.common import (
    PLOTS_NOTE,
    all_metric_keys,
    convergence_note,
    esc,
    fmt_num,
    main_k,
    metric_columns,
    not_converged,
    ran_once,
    seeds_note,
    seeds_text,
    segments_html,
    sig_mark,
)
from genrec.report.plots import render_plots, trained_models

# ---------------------------------------------------------------------- HTML
_CSS = """
:root { --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f9fafb; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { font-size: 24px; margin: 0 0 4px; }
.meta { color: var(--muted); margin: 0; }
nav { margin: 14px 0 4px; display: flex; flex-wrap: wrap; gap: 6px; }
nav a { color: var(--accent); text-decoration: none; border: 1px solid var(--line);
  background: #fff; border-radius: 999px; padding: 2px 10px; font-size: 13px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 20px; margin-top: 16px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right;
  white-space: nowrap; }
th { background: #f3f4f6; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; }
tbody tr:hover { background: #f9fafb; }
tr.ref td:first-child::after { content: " ref"; font-size: 10px; color: #fff;
  background: var(--muted); border-radius: 4px; padding: 0 4px; margin-left: 6px; }
.ci { display: block; color: var(--muted); font-size: 11px; line-height: 1.2; }
td .ci { margin-top: 1px; }
.best { font-weight: 700; }
.up { color: #15803d; font-weight: 700; }
.down { color: #b91c1c; font-weight: 700; }
.legend, .note { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
.note.warn { color: #92400e; background: #fffbeb; border: 1px solid #fde68a;
  border-radius: 6px; padding: 8px 12px; font-size: 13.5px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
  gap: 12px; }
figure { margin: 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
pre { background: #f3f4f6; border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 12px; white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
  gap: 8px 28px; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; text-align: center; }
"""


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="kv">{rows}</dl>'


def _metric_table(results: dict[str, Any]) -> str:
    cols = metric_columns(results)
    models = results["models"]
    ref = results.get("reference_model")
    best = {}
    for c in cols:
        vals = [r["metrics"][c]["mean"] for r in models.values() if c in r["metrics"]]
        best[c] = max(vals) if vals else None
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    out = [
        '<div class="scroll"><table id="metrics-table"><thead><tr><th>model</th>'
        f"{head}<th>fit s</th><th>recommend s</th></tr></thead><tbody>"
    ]
    for name, res in models.items():
        cls = ' class="ref"' if name == ref else ""
        mark_nc = ""
        if not_converged(res):
            why = "; ".join(res["convergence"].get("reasons") or [])
            mark_nc = f' <span class="nc" title="not converged: {esc(why)}">†</span>'
        cells = [f"<td>{esc(name)}{mark_nc}</td>"]
        for c in cols:
            m = res["metrics"].get(c)
            if m is None:
                cells.append("<td></td>")
                continue
            text = f"{m['mean']:.4f}"
            if len(m["per_seed"]) > 1 and not res.get("deterministic"):
                text += f" ± {m['std']:.4f}"
            klass = ' class="best"' if best[c] is not None and m["mean"] == best[c] else ""
            cell = f"<span{klass}>{esc(text)}</span>"
            sig = (res.get("significance") or {}).get(c)
            mark = sig_mark(res, c)
            if mark and sig:
                tip = (
                    f"vs {ref}: delta {sig['delta']:+.4f}, p = {sig['p_value']:.2g}, "
                    f"Holm-adjusted p = {sig['p_adjusted']:.2g}"
                )
                kind = "up" if mark == "↑" else "down"
                cell += f' <span class="{kind}" title="{esc(tip)}">{mark}</span>'
            ci = m.get("ci95")
            if ci:
                cell += f'<span class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</span>'
            cells.append(f"<td>{cell}</td>")
        cells.append(f"<td>{res['fit_seconds']['mean']:.2f}</td>")
        cells.append(f"<td>{res['recommend_seconds']['mean']:.2f}</td>")
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    n_seeds = len(results["manifest"]["seeds"])
    once = ran_once(results)
    per_seed = [m for m in models if m not in once]
    if results.get("merged_from"):
        legend = f"Each row: mean over its own run's seeds ({esc(seeds_text(results))})"
    elif once:  # name the models the mean is over; the note below says why the others ran once
        legend = (
            f"Mean over {n_seeds} seeds for {esc(', '.join(per_seed))}"
            if per_seed
            else "Every model ran once"
        )
    else:
        legend = f"Mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
    legend += (
        (" ± std over seeds" if n_seeds > 1 and per_seed else "")
        + "; grey brackets: 95% percentile-bootstrap confidence interval over test users. "
        f"<span class='up'>↑</span>/<span class='down'>↓</span>: significantly better/worse "
        f"than the reference <b>{esc(ref)}</b> (paired t-test on per-user values, "
        "Holm-corrected over models, α = 0.05; hover for p-values). Bold: best in column."
    )
    if results.get("merged_from"):
        legend += (
            " Merged from several runs: models from runs other than the reference's carry no "
            "significance marks."
        )
    note = convergence_note(results)
    if note:
        legend += " " + esc(note)
    out.append(f'<p class="legend">{legend}</p>')
    note = seeds_note(results)
    if note:
        out.append(f'<p class="legend" id="seeds-note">{esc(note)}</p>')
    return "".join(out)


def _all_metrics_table(results: dict[str, Any]) -> str:
    models = results["models"]
    head = "".join(f"<th>{esc(m)}</th>" for m in models)
    rows = []
    for key in all_metric_keys(results):
        cells = []
        for res in models.values():
            m = res["metrics"].get(key)
            if m is None:
                cells.append("<td></td>")
                continue
            ci = m.get("ci95")
            ci_html = f'<span class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</span>' if ci else ""
            cells.append(f"<td>{m['mean']:.4f}{ci_html}</td>")
        rows.append(f"<tr><td>{esc(key)}</td>{''.join(cells)}</tr>")
    return (
        "<details><summary>every metric of every model (mean, 95% CI)</summary>"
        f'<div class="scroll"><table><thead><tr><th>metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></details>"
    )


def _training_table(results: dict[str, Any]) -> str:
    rows = []
    for name, runs in trained_models(results).items():
        for s, entry in enumerate(runs):
            if not entry:
                continue
            best = entry.get("best_epoch")
            metric = entry.get("val_metric") or ""
            secs = sum(float(h.get("seconds", 0) or 0) for h in entry.get("history") or [])
            rows.append(
                "<tr>"
                f"<td>{esc(name)}</td><td>{s}</td><td>{fmt_num(entry.get('epochs_run'))}</td>"
                f"<td>{'' if best is None else int(best) + 1}</td>"
                f"<td>{esc(metric)} {fmt_num(entry.get('best_metric'))}</td>"
                f"<td>{'yes' if entry.get('stopped_early') else 'no'}</td>"
                f"<td>{'yes' if entry.get('out_of_time') else 'no'}</td>"
                f"<td>{secs:.2f}</td></tr>"
            )
    return (
        '<div class="scroll"><table><thead><tr><th>model</th><th>seed</th><th>epochs run</th>'
        "<th>best epoch</th><th>best validation</th><th>stopped early</th>"
        "<th>out of time</th><th>train s</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def _reproduce(results: dict[str, Any]) -> str:
    man = results["manifest"]
    parts = []
    runs = results.get("merged_from") or [
        {
            "source": "this run",
            "models": {m: m for m in results["models"]},
            "command": results.get("command"),
            "created_at": results.get("created_at"),
            "seeds": man.get("seeds"),
            "packages": man.get("packages"),
            "hardware": man.get("hardware"),
        }
    ]
    shared = [
        ("data hash (sha256)", f"<code>{esc(man.get('data_hash'))}</code>"),
        ("data dir", esc(results["dataset"].get("data_dir") or "n/a")),
    ]
    for run in runs:
        if len(runs) > 1:
            parts.append(f"<h3>{esc(run['source'])}: {esc(', '.join(run['models']))}</h3>")
        cmd = run.get("command") or "n/a (run from Python)"
        parts.append(f"<pre>{esc(cmd)}</pre>")
        packages = ", ".join(
            f"{k} {v}" for k, v in (run.get("packages") or {}).items() if v is not None
        )
        hw = run.get("hardware") or {}
        hw_text = ", ".join(f"{k}: {v}" for k, v in hw.items() if v is not None and k != "platform")
        pairs = [
            ("created", esc(run.get("created_at"))),
            ("seeds", esc(", ".join(str(s) for s in run.get("seeds") or []))),
            ("packages", esc(packages)),
            ("platform", esc(hw.get("platform"))),
            ("hardware", esc(hw_text)),
        ]
        parts.append(_kv(pairs + (shared if len(runs) == 1 else [])))
    if len(runs) > 1:
        parts.append("<h3>Data</h3>" + _kv(shared))
    configs = []
    for name, res in results["models"].items():
        src = res.get("config_source") or "defaults"
        cfg = json.dumps(res.get("config", {}), indent=2, sort_keys=True, default=str)
        configs.append(
            f"<details><summary>{esc(name)}: config from {esc(src)}</summary>"
            f"<pre>{esc(cfg)}</pre></details>"
        )
    parts.append("<h3>Resolved configs</h3>" + "".join(configs))
    return "".join(parts)


def _dataset_section(results: dict[str, Any]) -> str:
    st = results["dataset"]["stats"]
    q = st.get("seq_len_quantiles", {})
    stats_pairs = [
        ("users", fmt_num(st.get("n_users"))),
        ("items", fmt_num(st.get("n_items"))),
        ("interactions", fmt_num(st.get("n_interactions"))),
        ("density", fmt_num(st.get("density"), 5)),
        ("mean history length", fmt_num(st.get("avg_seq_len"), 2)),
        (
            "history length quantiles",
            esc(", ".join(f"{k} {v:g}" for k, v in q.items() if isinstance(v, (int, float)))),
        ),
        ("timestamps", esc("yes" if st.get("has_timestamps") else "no")),
        ("item table", esc("yes" if st.get("has_item_table") else "no")),
    ]
    split_pairs = [(k, fmt_num(v)) for k, v in results["split"].items()]
    proto_pairs = [(k, esc(v)) for k, v in results["protocol"].items()]
    return (
        '<div class="cols">'
        f"<div><h3>{esc(results['dataset']['name'])}</h3>{_kv(stats_pairs)}</div>"
        f"<div><h3>Split</h3>{_kv(split_pairs)}</div></div>"
        f"<h3>Protocol</h3>{_kv(proto_pairs)}"
    )


def render_html(results: dict[str, Any], *, plots: bool = True) -> str:
    """The self-contained ``report.html`` page (inline CSS and SVG, no scripts, no network).

    Args:
        results: a ``results.json`` dictionary (one run or :func:`merge_results`' output).
        plots: draw the figures (needs matplotlib); without it a note says how to get them.
    """
    ds = results["dataset"]
    proto = results["protocol"]
    figs = render_plots(results) if plots else None
    title = f"genrec benchmark: {ds['name']}"
    n_seeds = len(results["manifest"]["seeds"])
    meta = (
        f"genrec {results.get('genrec_version')} · {results.get('created_at')} · "
        f"{len(results['models'])} models · ranking: {proto['ranking']} over the catalogue, "
        f"seen items excluded · split: {results['split'].get('method')} · "
        + (
            f"seeds {seeds_text(results)}"
            if results.get("merged_from")
            else f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
            + (
                f" ({len(ran_once(results))} deterministic models ran once)"
                if ran_once(results)
                else ""
            )
        )
    )
    if results.get("merged_from"):
        meta += f" · merged from {len(results['merged_from'])} runs"
    sections: list[tuple[str, str, str]] = [("results", "Results", _metric_table(results))]
    k = main_k(results)
    if figs is None:
        note = (
            '<p class="note warn">Plots are missing: matplotlib is not installed. '
            f"{PLOTS_NOTE}.</p>"
        )
        sections.append(("plots", "Plots", note))
    else:
        if figs["bars"]:
            body = (
                '<div class="grid">'
                + "".join(f"<figure>{svg}</figure>" for svg in figs["bars"])
                + '</div><p class="legend">Dashed line: the reference model '
                f"<b>{esc(results.get('reference_model'))}</b>. Error bars: 95% bootstrap "
                "confidence interval over test users (accuracy metrics only).</p>"
            )
            sections.append(("charts", f"Main metrics @{k}", body))
        if figs["scatter"]:
            sections.append((
                "tradeoffs",
                "Accuracy vs beyond-accuracy",
                _figure(
                    figs["scatter"],
                    "Up and to the right is better: accurate and diverse/novel. "
                    "Error bars: 95% CI of the accuracy.",
                ),
            ))  # fmt: skip
        if figs["popularity"]:
            sections.append((
                "popularity",
                "Popularity bias",
                _figure(
                    figs["popularity"],
                    "Share of recommended items (dots) and of training interactions (dashed) "
                    "in each item-popularity group. A curve above the data's at the left "
                    "amplifies popularity; a flat curve spreads exposure over the catalogue.",
                ),
            ))  # fmt: skip
    if trained_models(results):
        body = ""
        if figs is not None and figs["training"]:
            body += _figure(
                figs["training"],
                "Per epoch (1-based); seeds after the first dashed; star: best validation "
                "epoch (the weights that were kept).",
            )
        body += _training_table(results)
        sections.append(("training", "Training curves", body))
    seg_html = segments_html(results)
    if seg_html:
        sections.append(("segments", "By user history length", seg_html))
    sections.append(("all-metrics", "All metrics", _all_metrics_table(results)))
    sections.append(("dataset", "Dataset, split and protocol", _dataset_section(results)))
    sections.append(("reproduce", "Reproduce", _reproduce(results)))
    nav = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{esc(name)}</h2>{content}</section>'
        for sid, name, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body><main>"
        f'<header><h1>{esc(title)}</h1><p class="meta">{esc(meta)}</p></header>'
        f"<nav>{nav}</nav>{body}"
        f"<footer>Generated by genrec {esc(results.get('genrec_version'))} from results.json "
        "(schema version 1). Rebuild with <code>genrec report results.json</code>.</footer>"
        "</main></body></html>\n"
    )
