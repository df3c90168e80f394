"""Plots of a results file as inline SVG (matplotlib, the ``report`` extra); without
matplotlib the page is written without them and says how to get them."""

from __future__ import annotations

import io
import math
import re
from typing import Any

from genrec.report.common import BAR_METRICS, all_metric_keys, main_k, metric_prefix

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
    k, prefix = main_k(results), metric_prefix(results)
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


def trained_models(results: dict[str, Any]) -> dict[str, list[dict[str, Any] | None]]:
    out = {}
    for name, res in results["models"].items():
        runs = res.get("training") or []
        if any(r and r.get("history") for r in runs):
            if res.get("deterministic"):
                runs = runs[:1]
            out[name] = runs
    return out


def _training_plot(p: _SVGPlotter, results: dict[str, Any]) -> str | None:
    trained = trained_models(results)
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
    k, prefix = main_k(results), metric_prefix(results)
    keys = all_metric_keys(results)
    bars = [_bar_chart(p, results, f"{prefix}{m}@{k}") for m in BAR_METRICS
            if f"{prefix}{m}@{k}" in keys]  # fmt: skip
    return {
        "bars": bars,
        "scatter": _scatter(p, results),
        "popularity": _popularity_plot(p, results),
        "training": _training_plot(p, results),
    }
