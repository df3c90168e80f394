"""Human-readable reports of a benchmark ``results.json`` (the ``report`` floor).

Three views of the same file: :func:`render_markdown` (``report.md``), :func:`print_table`
(the terminal) and :func:`render_html` (``report.html``, one self-contained page for people:
inline CSS, plots as inline SVG, no network needed to open it). :func:`merge_results`
combines several runs on the same data and protocol into one results dictionary.

Plots need matplotlib (the ``report`` extra); without it the page is written without them
and says how to get them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genrec.paths import atomic_write_text, ensure_writable_dir, refuse_foreign
from genrec.report.common import PLOTS_NOTE
from genrec.report.html import render_html
from genrec.report.markdown import print_table, render_markdown
from genrec.report.merge import load_results, merge_results
from genrec.report.plots import render_plots
from genrec.report.verdict import (
    format_p,
    metric_label,
    protocol_ranking,
    ranking_sentence,
    render_suite_markdown,
    suite_summary,
    verdict_summary,
)

__all__ = [
    "PLOTS_NOTE",
    "format_p",
    "metric_label",
    "load_results",
    "merge_results",
    "print_table",
    "protocol_ranking",
    "ranking_sentence",
    "render_html",
    "render_markdown",
    "render_plots",
    "render_suite_markdown",
    "suite_summary",
    "verdict_summary",
    "write_reports",
]


def write_reports(results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` for ``results`` into ``out_dir``, which must be
    new, empty or a run folder genrec wrote (:class:`~genrec.paths.OutputPathError`
    otherwise: a user's own ``report.md`` is never replaced)."""
    out = Path(out_dir)
    refuse_foreign(out, "run")
    ensure_writable_dir(out)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, render_markdown(results))
    atomic_write_text(page, render_html(results))
    return md, page
