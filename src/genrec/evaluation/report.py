"""Human-readable reports of a benchmark ``results.json``.

Three views of the same file: :func:`render_markdown` (``report.md``), :func:`print_table`
(the terminal) and :func:`render_html` (``report.html``, one self-contained page for people:
inline CSS, plots as inline SVG, no network needed to open it). :func:`merge_results`
combines several runs on the same data and protocol into one results dictionary.

Plots need matplotlib (the ``report`` extra); without it the page is written without them
and says how to get them.
"""

from __future__ import annotations

import copy
import html
import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genrec.errors import ConfigError

MAIN_METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10", "mrr@10", "coverage@10")
TERMINAL_METRICS = ("recall@10", "ndcg@10", "mrr@10", "coverage@10")
BAR_METRICS = ("recall", "ndcg", "mrr", "coverage")
PLOTS_NOTE = "pip install 'genrec[report]' for plots"


# ---------------------------------------------------------------------- shared helpers
def _metric_columns(results: dict[str, Any], wanted: tuple[str, ...] = MAIN_METRICS) -> list[str]:
    first = next(iter(results["models"].values()))["metrics"]
    prefix = _prefix(results)
    return [prefix + m for m in wanted if prefix + m in first]


def _prefix(results: dict[str, Any]) -> str:
    first = next(iter(results["models"].values()))["metrics"]
    return "sampled_" if any(k.startswith("sampled_") for k in first) else ""


def _main_k(results: dict[str, Any]) -> int:
    """The cut-off of the plots: 10 when evaluated, else the largest k."""
    ks = [int(k) for k in results.get("protocol", {}).get("ks", [10])] or [10]
    return 10 if 10 in ks else max(ks)


def _sig_mark(res: dict[str, Any], metric: str) -> str:
    sig = (res.get("significance") or {}).get(metric)
    if sig and sig.get("significant"):
        return "↑" if sig["delta"] > 0 else "↓"
    return ""


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
            m = res["metrics"].get(c)
            if m is None:
                row.append("")
                continue
            cell = f"{m['mean']:.4f}"
            if len(m["per_seed"]) > 1 and not res.get("deterministic"):
                cell += f" ± {m['std']:.4f}"
            mark = _sig_mark(res, c)
            row.append(cell + (" " + mark if mark else ""))
        row.append(f"{res['fit_seconds']['mean']:.2f}")
        row.append(f"{res['recommend_seconds']['mean']:.2f}")
        rows.append(row)
    return header, rows


def _all_metric_keys(results: dict[str, Any]) -> list[str]:
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
    metric = f"{_prefix(results)}ndcg@{_main_k(results)}"
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


def _segments_markdown(results: dict[str, Any]) -> list[str]:
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
        *_md_table(header, rows),
    ]


def _segments_html(results: dict[str, Any]) -> str | None:
    table = segment_rows(results)
    if table is None:
        return None
    metric, header, rows = table
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f"<p>{_e(metric)}. {_e(_SEGMENTS_NOTE)}"
        f'</p><div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></div>"
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
        f"Split: {split['method']}. Seeds: {_seeds_text(results)}.",
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
    if results.get("merged_from"):
        lines.append(
            f"Merged from {len(results['merged_from'])} runs: models from other runs than the "
            "reference's carry no significance marks."
        )
    lines += ["", "## All metrics (mean over seeds, 95% bootstrap CI over users)", ""]
    lines.append("| metric | " + " | ".join(results["models"]) + " |")
    lines.append("|---" * (len(results["models"]) + 1) + "|")
    for key in _all_metric_keys(results):
        cells = []
        for res in results["models"].values():
            m = res["metrics"].get(key)
            if m is None:
                cells.append("")
                continue
            ci = m.get("ci95")
            cells.append(f"{m['mean']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += _segments_markdown(results)
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

    header, rows = table_rows(results, _metric_columns(results, TERMINAL_METRICS))
    table = Table(title=f"{results['dataset']['name']} ({results['protocol']['ranking']} ranking)")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*r)
    Console().print(table)


# ---------------------------------------------------------------------- merging
_SAME_KEYS: tuple[tuple[str, ...], ...] = (
    ("dataset", "name"),
    ("manifest", "data_hash"),
    ("split",),
    ("protocol", "ranking"),
    ("protocol", "ks"),
    ("protocol", "exclude_seen"),
    ("protocol", "test_history"),
)


def _get(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None  # type: ignore[assignment]
    return d


def _seeds_text(results: dict[str, Any]) -> str:
    """How many seeds the numbers average: the count of a single run, or for a merged report
    each run's own seeds (runs are shown side by side, never pooled)."""
    runs = results.get("merged_from")
    if not runs:
        return str(len(results["manifest"]["seeds"]))
    parts = [f"{r['source']}: {', '.join(str(s) for s in r.get('seeds') or [])}" for r in runs]
    return "per run, not pooled (" + "; ".join(parts) + ")"


def merge_results(
    results: Sequence[dict[str, Any]], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Merge the model entries of several ``results.json`` dictionaries into one.

    All inputs must share the dataset (name and data hash), the split and the evaluation
    protocol; otherwise the numbers are not comparable and a :class:`ConfigError` names the
    first mismatch. A model name found in more than one input gets the input's name as a
    suffix (``sasrec (sasrec-ce-20)``). The first input provides everything but the models;
    ``merged_from`` records each input's command, seeds, packages and hardware.
    Significance marks are kept only for models of the input that holds the reference model
    (the first input's): the others were tested against a different run.

    Args:
        results: parsed ``results.json`` dictionaries (not modified).
        names: a label per input, e.g. the file names (default ``run1``, ``run2``, ...).

    Returns:
        One results dictionary (schema version 1). A single input is returned as a copy.
    """
    if not results:
        raise ConfigError("merge_results needs at least one results dictionary")
    labels = list(names) if names is not None else [f"run{i + 1}" for i in range(len(results))]
    if len(labels) != len(results):
        raise ConfigError(f"got {len(results)} results but {len(labels)} names")
    for label, res in zip(labels, results):
        if not isinstance(res, dict) or not isinstance(res.get("models"), dict):
            raise ConfigError(f"{label}: not a genrec results.json (no 'models' object)")
        if not res["models"]:
            raise ConfigError(f"{label}: has no models")
    if len(results) == 1:
        return copy.deepcopy(results[0])
    first = results[0]
    for label, res in zip(labels[1:], results[1:]):
        for path in _SAME_KEYS:
            a, b = _get(first, path), _get(res, path)
            if a != b:
                what = ".".join(path)
                raise ConfigError(
                    f"cannot merge {labels[0]} and {label}: different {what} "
                    f"({_short(a)} vs {_short(b)}); only runs on the same dataset, split and "
                    "protocol are comparable"
                )
    counts: dict[str, int] = {}
    for res in results:
        for name in res["models"]:
            counts[name] = counts.get(name, 0) + 1
    out = copy.deepcopy(first)
    out["models"] = {}
    out["command"] = None
    configs: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    merged_from = []
    seeds: set[int] = set()
    reference = first["reference_model"]
    new_reference = reference
    for i, (label, res) in enumerate(zip(labels, results)):
        renamed: dict[str, str] = {}
        for name, entry in res["models"].items():
            new = name if counts[name] == 1 else f"{name} ({label})"
            n = 2
            while new in out["models"]:
                new = f"{name} ({label} {n})"
                n += 1
            entry = copy.deepcopy(entry)
            if i > 0:
                entry.pop("significance", None)  # tested against another run's reference
            out["models"][new] = entry
            configs[new] = res.get("manifest", {}).get("configs", {}).get(name, entry["config"])
            sources[new] = entry.get("config_source")
            renamed[new] = name
            if i == 0 and name == reference:
                new_reference = new
        man = res.get("manifest", {})
        seeds.update(int(s) for s in man.get("seeds", []))
        merged_from.append({
            "source": label,
            "models": renamed,
            "command": res.get("command"),
            "created_at": res.get("created_at"),
            "reference_model": res.get("reference_model"),
            "seeds": man.get("seeds"),
            "packages": man.get("packages"),
            "hardware": man.get("hardware"),
        })  # fmt: skip
    out["reference_model"] = new_reference
    out["merged_from"] = merged_from
    out["manifest"]["seeds"] = sorted(seeds)
    out["manifest"]["models"] = list(out["models"])
    out["manifest"]["configs"] = configs
    out["manifest"]["config_sources"] = sources
    if not any("segments" in m for m in out["models"].values()):
        out.pop("segments", None)
    elif "segments" not in out:  # the first input predates segments: take a later one's
        for res in results:
            if "segments" in res:
                out["segments"] = copy.deepcopy(res["segments"])
                break
    if not any("popularity_profile" in m for m in out["models"].values()):
        out.pop("popularity_profile", None)
    elif "popularity_profile" not in out:
        for res in results:
            if "popularity_profile" in res:
                out["popularity_profile"] = copy.deepcopy(res["popularity_profile"])
                break
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_results(paths: Sequence[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Read ``results.json`` files; returns the dictionaries and a unique label per file
    (its stem, or its folder's name for files called ``results.json``)."""
    loaded, labels = [], []
    for p in map(Path, paths):
        if not p.is_file():
            raise ConfigError(f"results file {str(p)!r} not found")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or "models" not in data or "dataset" not in data:
            raise ConfigError(f"{p} is not a genrec results.json (no 'models'/'dataset')")
        label = p.parent.name if p.stem == "results" and p.parent.name else p.stem
        base, n = label, 2
        while label in labels:
            label = f"{base}-{n}"
            n += 1
        loaded.append(data)
        labels.append(label)
    return loaded, labels


def write_reports(results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` for ``results`` into ``out_dir``, which must be
    new, empty or a run folder genrec wrote (:class:`~genrec.paths.OutputPathError`
    otherwise: a user's own ``report.md`` is never replaced)."""
    from genrec.paths import atomic_write_text, ensure_writable_dir, refuse_foreign

    out = Path(out_dir)
    refuse_foreign(out, "run")
    ensure_writable_dir(out)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, render_markdown(results))
    atomic_write_text(page, render_html(results))
    return md, page


# ---------------------------------------------------------------------- plots (SVG)
_PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    "#1f2f6b", "#8b1a1a", "#0f766e", "#7a7a00", "#374151",
)  # fmt: skip


def _colors(results: dict[str, Any]) -> dict[str, str]:
    return {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(results["models"])}


def _tex_safe(text: str) -> str:
    """Matplotlib treats ``$...$`` as math; model names are shown literally."""
    return str(text).replace("$", r"\$")


class _SVGPlotter:
    """Builds figures with matplotlib's object API (no pyplot: no global state) and returns
    them as inline SVG text with unique, deterministic ids per figure."""

    def __init__(self) -> None:
        import matplotlib
        from matplotlib.figure import Figure

        self._mpl = matplotlib
        self._Figure = Figure
        self._count = 0
        self.rc = {
            "svg.fonttype": "none",  # text stays text: small files, the page's fonts
            "font.family": "sans-serif",
            "font.size": 9,
            "axes.titlesize": 10.5,
            "axes.titleweight": "bold",
            "axes.labelsize": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e5e7eb",
            "grid.linewidth": 0.8,
            "axes.axisbelow": True,
            "axes.edgecolor": "#9ca3af",
            "legend.fontsize": 8,
            "legend.frameon": False,
        }

    def figure(self, width: float, height: float) -> Any:
        """A new figure of ``width`` x ``height`` inches."""
        return self._Figure(figsize=(width, height), layout="constrained")

    def svg(self, fig: Any) -> str:
        """The figure as an ``<svg>`` element (XML prolog, DOCTYPE and metadata removed)."""
        self._count += 1
        buf = io.StringIO()
        with self._mpl.rc_context({**self.rc, "svg.hashsalt": f"genrec-fig{self._count}"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
        text = buf.getvalue()
        text = text[text.find("<svg") :]
        text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
        return text.strip()

    def context(self) -> Any:
        """rc settings for building figures (fonts and styles are read at creation)."""
        return self._mpl.rc_context(self.rc)


def _bar_chart(p: _SVGPlotter, results: dict[str, Any], metric: str) -> str:
    names = list(results["models"])
    colors = _colors(results)
    ref = results.get("reference_model")
    means, lo, hi = [], [], []
    for name in names:
        m = results["models"][name]["metrics"].get(metric) or {}
        mean = float(m.get("mean", math.nan))
        ci = m.get("ci95")
        means.append(mean)
        lo.append(max(mean - ci[0], 0.0) if ci else 0.0)
        hi.append(max(ci[1] - mean, 0.0) if ci else 0.0)
    has_ci = any(lo) or any(hi)
    with p.context():
        fig = p.figure(5.2, 1.0 + 0.32 * len(names))
        ax = fig.add_subplot()
        y = list(range(len(names)))[::-1]
        ax.barh(
            y,
            means,
            color=[colors[n] for n in names],
            height=0.65,
            xerr=[lo, hi] if has_ci else None,
            error_kw={"ecolor": "#374151", "elinewidth": 1, "capsize": 3},
        )
        ax.set_yticks(y, [_tex_safe(n + (" (ref)" if n == ref else "")) for n in names])
        ax.grid(axis="y", visible=False)
        finite = [v for v in means if math.isfinite(v)]
        top = max([m + h for m, h in zip(means, hi) if math.isfinite(m)] or [1.0])
        ax.set_xlim(0, top * 1.22 if top > 0 else 1.0)
        for yi, v, h in zip(y, means, hi):
            if math.isfinite(v):
                ax.text(v + h + top * 0.015, yi, f"{v:.4f}", va="center", fontsize=8)
        if ref in results["models"] and finite:
            ref_mean = results["models"][ref]["metrics"].get(metric, {}).get("mean")
            if ref_mean is not None:
                ax.axvline(ref_mean, color="#6b7280", linestyle="--", linewidth=0.8)
        ax.set_title(metric)
        ax.set_xlabel("mean over seeds" + ("; bars: 95% bootstrap CI over users" if has_ci else ""))
    return p.svg(fig)


def _scatter(p: _SVGPlotter, results: dict[str, Any]) -> str | None:
    k, prefix = _main_k(results), _prefix(results)
    acc = f"{prefix}ndcg@{k}"
    others = [f"{prefix}{m}@{k}" for m in ("coverage", "novelty")]
    models = results["models"]
    others = [o for o in others if any(o in r["metrics"] for r in models.values())]
    if not others or not any(acc in r["metrics"] for r in models.values()):
        return None
    colors = _colors(results)
    labels = {
        "coverage": "catalogue coverage (share of items recommended to anyone)",
        "novelty": "novelty (mean self-information, bits)",
    }
    many = len(models) > 6  # names would overlap: a legend instead of labels
    with p.context():
        fig = p.figure(5.0 * len(others) + (1.6 if many else 0), 3.6)
        axes = fig.subplots(1, len(others), squeeze=False)[0]
        for ax, other in zip(axes, others):
            for name, res in models.items():
                a, o = res["metrics"].get(acc), res["metrics"].get(other)
                if a is None or o is None:
                    continue
                ci = a.get("ci95")
                err = [[max(a["mean"] - ci[0], 0)], [max(ci[1] - a["mean"], 0)]] if ci else None
                ax.errorbar(
                    o["mean"], a["mean"], yerr=err, fmt="o", color=colors[name], markersize=7,
                    ecolor=colors[name], elinewidth=1, capsize=3, label=_tex_safe(name),
                )  # fmt: skip
                if many:
                    continue
                ax.annotate(
                    _tex_safe(name), (o["mean"], a["mean"]), xytext=(6, 4),
                    textcoords="offset points", fontsize=8, color="#111827",
                )  # fmt: skip
            ax.margins(x=0.18 if not many else 0.08, y=0.15)
            ax.set_xlabel(labels[other.removeprefix(prefix).split("@")[0]] + f" @{k}")
            ax.set_ylabel(acc)
            ax.set_title(f"{acc} vs {other.removeprefix(prefix).split('@')[0]}@{k}")
        if many:
            handles, names = axes[0].get_legend_handles_labels()
            fig.legend(handles, names, loc="outside right upper")
    return p.svg(fig)


def _popularity_plot(p: _SVGPlotter, results: dict[str, Any]) -> str | None:
    prof = results.get("popularity_profile")
    models = {n: r["popularity_profile"] for n, r in results["models"].items()
              if r.get("popularity_profile")}  # fmt: skip
    if not prof or not models:
        return None
    colors = _colors(results)
    n_bins = int(prof.get("n_bins", len(prof["data"])))
    x = list(range(1, n_bins + 1))
    with p.context():
        fig = p.figure(9.0, 3.3)
        ax = fig.add_subplot()
        ax.plot(
            x, [100 * v for v in prof["data"]], color="#111827", linestyle="--", linewidth=2,
            marker="s", markersize=4, label="training interactions (the data)",
        )  # fmt: skip
        for name, shares in models.items():
            ax.plot(
                x[: len(shares)], [100 * v for v in shares], color=colors[name], marker="o",
                markersize=4, linewidth=1.5, label=_tex_safe(name),
            )  # fmt: skip
        ax.set_xticks(x)
        ax.set_xlabel(
            f"item popularity group in the training data (1 = the most popular {100 // n_bins}%"
            " of items)"
            if n_bins == 10
            else "item popularity group in the training data (1 = most popular)"
        )
        ax.set_ylabel("share (%)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Where the top-{prof.get('k', 10)} recommendations fall")
        ax.legend(loc="upper right", ncols=2 if len(models) > 5 else 1)
    return p.svg(fig)


def _training_series(
    entry: dict[str, Any] | None,
) -> tuple[list[int], list[float], list[int], list[float], str | None]:
    """(loss epochs, losses, validation epochs, values, metric name) of one seed's history;
    epochs 1-based as printed by the trainer."""
    if not entry:
        return [], [], [], [], None
    hist = entry.get("history") or []
    metric = entry.get("val_metric")
    if metric is None:
        metric = next((k for h in hist for k in h if "@" in k), None)
    le, lv, ve, vv = [], [], [], []
    for i, h in enumerate(hist):
        ep = int(h.get("epoch", i)) + 1
        if isinstance(h.get("loss"), (int, float)) and math.isfinite(h["loss"]):
            le.append(ep)
            lv.append(float(h["loss"]))
        if metric and isinstance(h.get(metric), (int, float)):
            ve.append(ep)
            vv.append(float(h[metric]))
    return le, lv, ve, vv, metric


def _trained(results: dict[str, Any]) -> dict[str, list[dict[str, Any] | None]]:
    out = {}
    for name, res in results["models"].items():
        runs = res.get("training") or []
        if any(r and r.get("history") for r in runs):
            if res.get("deterministic"):
                runs = runs[:1]
            out[name] = runs
    return out


def _training_plot(p: _SVGPlotter, results: dict[str, Any]) -> str | None:
    trained = _trained(results)
    if not trained:
        return None
    colors = _colors(results)
    metrics = set()
    with p.context():
        fig = p.figure(10.0, 3.8)
        ax_loss, ax_val = fig.subplots(1, 2)
        for name, runs in trained.items():
            for s, entry in enumerate(runs):
                le, lv, ve, vv, metric = _training_series(entry)
                label = _tex_safe(name) if s == 0 else None
                style = "-" if s == 0 else (0, (4, 2 + s))
                if le:
                    ax_loss.plot(le, lv, color=colors[name], linestyle=style, label=label)
                if ve:
                    metrics.add(metric)
                    ax_val.plot(
                        ve, vv, color=colors[name], linestyle=style, marker="o", markersize=3,
                        label=label,
                    )  # fmt: skip
                    best = entry.get("best_epoch") if entry else None
                    if best is not None and (int(best) + 1) in ve:
                        j = ve.index(int(best) + 1)
                        ax_val.plot(
                            ve[j], vv[j], marker="*", markersize=11, color=colors[name],
                            markeredgecolor="#111827", markeredgewidth=0.6, linestyle="none",
                        )  # fmt: skip
        ax_loss.set_title("Training loss")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss (mean per batch)")
        name = ", ".join(sorted(m for m in metrics if m)) or "validation metric"
        ax_val.set_title(f"Validation {name}")
        ax_val.set_xlabel("epoch")
        ax_val.set_ylabel(f"{name} (validation split)")
        for ax in (ax_loss, ax_val):
            ax.xaxis.get_major_locator().set_params(integer=True)
        handles, labels = ax_loss.get_legend_handles_labels()
        if not handles:
            handles, labels = ax_val.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside right upper")
    return p.svg(fig)


def render_plots(results: dict[str, Any]) -> dict[str, Any] | None:
    """All figures of the HTML page as SVG text, or ``None`` without matplotlib.

    Returns:
        ``{"bars": [svg, ...], "scatter": svg | None, "popularity": svg | None,
        "training": svg | None}``.
    """
    try:
        p = _SVGPlotter()
    except ImportError:
        return None
    k, prefix = _main_k(results), _prefix(results)
    keys = _all_metric_keys(results)
    bars = [_bar_chart(p, results, f"{prefix}{m}@{k}") for m in BAR_METRICS
            if f"{prefix}{m}@{k}" in keys]  # fmt: skip
    return {
        "bars": bars,
        "scatter": _scatter(p, results),
        "popularity": _popularity_plot(p, results),
        "training": _training_plot(p, results),
    }


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


def _e(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return _e(value if value is not None else "")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return _e(value)
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return _e(value)


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="kv">{rows}</dl>'


def _metric_table(results: dict[str, Any]) -> str:
    cols = _metric_columns(results)
    models = results["models"]
    ref = results.get("reference_model")
    best = {}
    for c in cols:
        vals = [r["metrics"][c]["mean"] for r in models.values() if c in r["metrics"]]
        best[c] = max(vals) if vals else None
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    out = [
        '<div class="scroll"><table id="metrics-table"><thead><tr><th>model</th>'
        f"{head}<th>fit s</th><th>recommend s</th></tr></thead><tbody>"
    ]
    for name, res in models.items():
        cls = ' class="ref"' if name == ref else ""
        cells = [f"<td>{_e(name)}</td>"]
        for c in cols:
            m = res["metrics"].get(c)
            if m is None:
                cells.append("<td></td>")
                continue
            text = f"{m['mean']:.4f}"
            if len(m["per_seed"]) > 1 and not res.get("deterministic"):
                text += f" ± {m['std']:.4f}"
            klass = ' class="best"' if best[c] is not None and m["mean"] == best[c] else ""
            cell = f"<span{klass}>{_e(text)}</span>"
            sig = (res.get("significance") or {}).get(c)
            mark = _sig_mark(res, c)
            if mark and sig:
                tip = (
                    f"vs {ref}: delta {sig['delta']:+.4f}, p = {sig['p_value']:.2g}, "
                    f"Holm-adjusted p = {sig['p_adjusted']:.2g}"
                )
                kind = "up" if mark == "↑" else "down"
                cell += f' <span class="{kind}" title="{_e(tip)}">{mark}</span>'
            ci = m.get("ci95")
            if ci:
                cell += f'<span class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</span>'
            cells.append(f"<td>{cell}</td>")
        cells.append(f"<td>{res['fit_seconds']['mean']:.2f}</td>")
        cells.append(f"<td>{res['recommend_seconds']['mean']:.2f}</td>")
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    n_seeds = len(results["manifest"]["seeds"])
    legend = (
        (
            f"Each row: mean over its own run's seeds ({_seeds_text(results)})"
            if results.get("merged_from")
            else f"Mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
        )
        + (" ± std over seeds" if n_seeds > 1 else "")
        + "; grey brackets: 95% percentile-bootstrap confidence interval over test users. "
        f"<span class='up'>↑</span>/<span class='down'>↓</span>: significantly better/worse "
        f"than the reference <b>{_e(ref)}</b> (paired t-test on per-user values, "
        "Holm-corrected over models, α = 0.05; hover for p-values). Bold: best in column."
    )
    if results.get("merged_from"):
        legend += (
            " Merged from several runs: models from runs other than the reference's carry no "
            "significance marks."
        )
    out.append(f'<p class="legend">{legend}</p>')
    return "".join(out)


def _all_metrics_table(results: dict[str, Any]) -> str:
    models = results["models"]
    head = "".join(f"<th>{_e(m)}</th>" for m in models)
    rows = []
    for key in _all_metric_keys(results):
        cells = []
        for res in models.values():
            m = res["metrics"].get(key)
            if m is None:
                cells.append("<td></td>")
                continue
            ci = m.get("ci95")
            ci_html = f'<span class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</span>' if ci else ""
            cells.append(f"<td>{m['mean']:.4f}{ci_html}</td>")
        rows.append(f"<tr><td>{_e(key)}</td>{''.join(cells)}</tr>")
    return (
        "<details><summary>every metric of every model (mean, 95% CI)</summary>"
        f'<div class="scroll"><table><thead><tr><th>metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></details>"
    )


def _training_table(results: dict[str, Any]) -> str:
    rows = []
    for name, runs in _trained(results).items():
        for s, entry in enumerate(runs):
            if not entry:
                continue
            best = entry.get("best_epoch")
            metric = entry.get("val_metric") or ""
            secs = sum(float(h.get("seconds", 0) or 0) for h in entry.get("history") or [])
            rows.append(
                "<tr>"
                f"<td>{_e(name)}</td><td>{s}</td><td>{_num(entry.get('epochs_run'))}</td>"
                f"<td>{'' if best is None else int(best) + 1}</td>"
                f"<td>{_e(metric)} {_num(entry.get('best_metric'))}</td>"
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
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


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
        ("data hash (sha256)", f"<code>{_e(man.get('data_hash'))}</code>"),
        ("data dir", _e(results["dataset"].get("data_dir") or "n/a")),
    ]
    for run in runs:
        if len(runs) > 1:
            parts.append(f"<h3>{_e(run['source'])}: {_e(', '.join(run['models']))}</h3>")
        cmd = run.get("command") or "n/a (run from Python)"
        parts.append(f"<pre>{_e(cmd)}</pre>")
        packages = ", ".join(
            f"{k} {v}" for k, v in (run.get("packages") or {}).items() if v is not None
        )
        hw = run.get("hardware") or {}
        hw_text = ", ".join(f"{k}: {v}" for k, v in hw.items() if v is not None and k != "platform")
        pairs = [
            ("created", _e(run.get("created_at"))),
            ("seeds", _e(", ".join(str(s) for s in run.get("seeds") or []))),
            ("packages", _e(packages)),
            ("platform", _e(hw.get("platform"))),
            ("hardware", _e(hw_text)),
        ]
        parts.append(_kv(pairs + (shared if len(runs) == 1 else [])))
    if len(runs) > 1:
        parts.append("<h3>Data</h3>" + _kv(shared))
    configs = []
    for name, res in results["models"].items():
        src = res.get("config_source") or "defaults"
        cfg = json.dumps(res.get("config", {}), indent=2, sort_keys=True, default=str)
        configs.append(
            f"<details><summary>{_e(name)}: config from {_e(src)}</summary>"
            f"<pre>{_e(cfg)}</pre></details>"
        )
    parts.append("<h3>Resolved configs</h3>" + "".join(configs))
    return "".join(parts)


def _dataset_section(results: dict[str, Any]) -> str:
    st = results["dataset"]["stats"]
    q = st.get("seq_len_quantiles", {})
    stats_pairs = [
        ("users", _num(st.get("n_users"))),
        ("items", _num(st.get("n_items"))),
        ("interactions", _num(st.get("n_interactions"))),
        ("density", _num(st.get("density"), 5)),
        ("mean history length", _num(st.get("avg_seq_len"), 2)),
        (
            "history length quantiles",
            _e(", ".join(f"{k} {v:g}" for k, v in q.items() if isinstance(v, (int, float)))),
        ),
        ("timestamps", _e("yes" if st.get("has_timestamps") else "no")),
        ("item table", _e("yes" if st.get("has_item_table") else "no")),
    ]
    split_pairs = [(k, _num(v)) for k, v in results["split"].items()]
    proto_pairs = [(k, _e(v)) for k, v in results["protocol"].items()]
    return (
        '<div class="cols">'
        f"<div><h3>{_e(results['dataset']['name'])}</h3>{_kv(stats_pairs)}</div>"
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
            f"seeds {_seeds_text(results)}"
            if results.get("merged_from")
            else f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
        )
    )
    if results.get("merged_from"):
        meta += f" · merged from {len(results['merged_from'])} runs"
    sections: list[tuple[str, str, str]] = [("results", "Results", _metric_table(results))]
    k = _main_k(results)
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
                f"<b>{_e(results.get('reference_model'))}</b>. Error bars: 95% bootstrap "
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
    if _trained(results):
        body = ""
        if figs is not None and figs["training"]:
            body += _figure(
                figs["training"],
                "Per epoch (1-based); seeds after the first dashed; star: best validation "
                "epoch (the weights that were kept).",
            )
        body += _training_table(results)
        sections.append(("training", "Training curves", body))
    seg_html = _segments_html(results)
    if seg_html:
        sections.append(("segments", "By user history length", seg_html))
    sections.append(("all-metrics", "All metrics", _all_metrics_table(results)))
    sections.append(("dataset", "Dataset, split and protocol", _dataset_section(results)))
    sections.append(("reproduce", "Reproduce", _reproduce(results)))
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{_e(name)}</h2>{content}</section>'
        for sid, name, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body><main>"
        f'<header><h1>{_e(title)}</h1><p class="meta">{_e(meta)}</p></header>'
        f"<nav>{nav}</nav>{body}"
        f"<footer>Generated by genrec {_e(results.get('genrec_version'))} from results.json "
        "(schema version 1). Rebuild with <code>genrec report results.json</code>.</footer>"
        "</main></body></html>\n"
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


def _metric_label(metric: str) -> str:
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
    }


def _describe(name: str, row: dict[str, Any]) -> str:
    parts = [f"{row['mean']:.4f}"]
    if row["relative_delta"] is not None:
        parts.append(f"{row['relative_delta'] * 100:+.1f}%")
    parts.append(format_p(row["p"]))
    d = row["effect_size"]
    if d is not None and math.isfinite(d):
        parts.append(f"d = {d:+.2f}")
    return f"{name} ({', '.join(parts)})"


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
            return n if r is None else f"{n} ({r * 100:+.0f}%)"

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
    parts.append(f"best on test {label}: {best}")
    return head + "; ".join(parts) + "."


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
    label = _metric_label(metric)
    method = protocol or (results.get("split") or {}).get("method", "")
    where = PROTOCOL_NAMES.get(method, method or "this split")
    if not models:
        return f"Under {where}, no model produced results."
    scored = {n: r for n, r in models.items() if metric in r.get("metrics", {})}
    if ref is None or ref not in scored:
        best = max(scored, key=lambda n: scored[n]["metrics"][metric]["mean"]) if scored else None
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
    sentences.append(
        f"Best on test {label}: {best} ({scored[best]['metrics'][metric]['mean']:.4f})."
    )
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
    label = _metric_label(ranking["metric"])
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
            f"Significance: paired t-tests on per-user {_metric_label(metric)} (mean over "
            f"{st.get('seeds', 1)} seed{'s' if st.get('seeds', 1) != 1 else ''}), "
            f"Holm-corrected, α = {st.get('alpha', 0.05):g}; d is Cohen's d_z."
        )
    if suite.get("ranking"):
        parts.append(ranking_sentence(suite["ranking"]))
    skipped = suite.get("skipped") or {}
    failed = {m for f in (suite.get("failed") or {}).values() for m in f}
    if skipped:
        parts.append(f"Skipped: {', '.join(skipped)} (reasons below).")
    if failed:
        parts.append(f"Failed: {', '.join(sorted(failed))} (errors below).")
    if suite.get("mode") == "quick":
        parts.append(
            "Quick mode: small budgets, so neural models are under-trained; "
            "the full mode gives the verdict."
        )
    return " ".join(parts)


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


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
            f"Validation {_metric_label(metric)} of the classical candidates: "
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
            mark = _sig_mark(r, m)
            cells.append(cell + (f" {mark}" if mark else ""))
        label = name + (" (ref)" if name == ref else "")
        rows.append([label, families.get(name, ""), *cells])
    lines += _md_table(["model", "family", *(_metric_label(m) for m in acc)], rows)
    # beyond accuracy
    k = 10
    beyond = [(f"{key}@{k}", lab) for key, lab in SUITE_BEYOND if f"{key}@{k}" in first]
    lines += ["", f"### Beyond accuracy (@{k})", ""]
    rows = []
    for name in order:
        r = res["models"][name]
        cells = [_cell(r["metrics"].get(key, {}).get("mean")) for key, _ in beyond]
        prof = r.get("popularity_profile")
        cells.append(f"{prof[0] * 100:.1f}%" if prof else "")
        rows.append([name, *cells])
    lines += _md_table(["model", *(lab for _, lab in beyond), "share from top-10% items"], rows)
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
            f"### {_metric_label(seg_metric)} by user history length",
            "",
            "Test users grouped by the number of interactions in their test-time history; "
            "group means over users and seeds (no per-group test: small groups are noisy).",
            "",
        ]
        lines += _md_table(header, [by_name[n] for n in order if n in by_name])
    # significance
    if ref:
        lines += ["", f"### Significance vs {ref} (test {_metric_label(metric)})", ""]
        ref_mean = res["models"][ref]["metrics"][metric]["mean"]
        rows = []
        for name in order:
            if name == ref:
                continue
            row = _verdict_row(res["models"][name], metric, ref_mean)
            rows.append([
                name,
                f"{row['mean']:.4f}",
                _cell(row["delta"]),
                "" if row["relative_delta"] is None else f"{row['relative_delta'] * 100:+.1f}%",
                format_p(row["p"]).removeprefix("p = ").removeprefix("p "),
                _cell(row["effect_size"], 2),
                row["verdict"],
            ])  # fmt: skip
        lines += _md_table(
            ["model", _metric_label(metric), "Δ", "Δ %", "p (Holm)", "d_z", "verdict"], rows
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
            _cell(tune.get("elapsed_s"), 1) if tune.get("elapsed_s") is not None else "",
            f"{r['fit_seconds']['mean']:.1f}",
            f"{r['recommend_seconds']['mean']:.2f}",
            epochs,
            "" if not budget else f"{budget:g}",
            _cell(r.get("wall_seconds"), 1),
        ])  # fmt: skip
    lines += _md_table(
        ["model", "tune s", "fit s / seed", "recommend s (all test users)", "epochs",
         "train budget min", "wall s (all seeds)"],
        rows,
    )  # fmt: skip
    lines.append("")
    return lines


def render_suite_markdown(suite: dict[str, Any]) -> str:
    """``report.md`` of a suite run (:func:`genrec.suites.run_suite`)."""
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
        pa, pb = ranking["protocols"]
        label = _metric_label(ranking["metric"])
        lines += [
            "## Protocol comparison: how the ranking changes",
            "",
            ranking_sentence(ranking),
            "",
        ]
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
        lines += _md_table(
            ["model", f"{pa} {label}", f"{pa} rank", f"{pb} {label}", f"{pb} rank",
             f"moves up under {pb}"],
            rows,
        )  # fmt: skip
        lines.append("")
    lines += [
        "## Reproduce",
        "",
        f"- command: `{suite.get('command') or 'n/a'}`",
        "- per-protocol reports (all metrics, CIs, plots): "
        + ", ".join(f"`{p}/report.html`" for p, r in (suite.get("protocols") or {}).items() if r),
        "",
    ]
    return "\n".join(lines)
