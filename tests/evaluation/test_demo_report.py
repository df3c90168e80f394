"""The first report a new user opens: ``make demo``'s command on the embedded MovieLens data,
rendered in headless Chromium, with its plots.

The command is read from the Makefile's ``demo`` target, so the test follows it. The default
run keeps the command but benchmarks only ``popularity`` (seconds instead of minutes); the
``slow`` variant runs it with the demo's own model list.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from genrec.cli import main

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def demo_command() -> list[str]:
    """The arguments of ``genrec`` in the Makefile's ``demo`` target."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(r"^demo:.*\n\t\$\(BIN\)/genrec (.+)$", text, flags=re.M)
    assert match is not None, "no genrec command in the Makefile's demo target"
    return shlex.split(match.group(1))


def _with(args: list[str], flag: str, value: str | None) -> list[str]:
    """``args`` with ``flag``'s value replaced (``None``: the flag and its value removed)."""
    out = list(args)
    i = out.index(flag)
    if value is None:
        del out[i : i + 2]
    else:
        out[i + 1] = value
    return out


class _Sections(HTMLParser):
    """Counts ``<svg>`` elements per ``<section id=...>`` of Chromium's serialised DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.svgs: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.current = dict(attrs).get("id") or ""
            self.svgs.setdefault(self.current, 0)
        elif tag == "svg" and self.current is not None:
            self.svgs[self.current] += 1


def _run_demo(tmp_path: Path, models: str | None, capsys: pytest.CaptureFixture) -> Path:
    args = demo_command()
    assert args[:1] == ["benchmark"] and "--dataset" in args and "--name" in args
    assert args[args.index("--dataset") + 1] == "movielens-small"  # embedded: no download
    out = tmp_path / "demo"
    args = _with(args, "--name", None) + ["--out", str(out)]
    if models is not None:
        args = _with(args, "--models", models)
    assert main(args) == 0
    capsys.readouterr()
    return out / "report.html"


def _check_in_chromium(page: Path, tmp_path: Path) -> None:
    html = page.read_text()
    assert "Plots are missing" not in html, "the demo's report has no figures"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run(
        [*base, "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    parser = _Sections()
    parser.feed(dom)
    # the figures are in the page the browser shows: bar charts, trade-offs, popularity bias
    for section in ("charts", "tradeoffs", "popularity"):
        assert parser.svgs.get(section, 0) >= 1, (section, parser.svgs)
    assert "Plots are missing" not in dom
    png = tmp_path / "demo-report.png"
    subprocess.run(
        [*base, f"--screenshot={png}", "--window-size=1280,2400", page.resolve().as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert png.is_file() and png.stat().st_size > 50_000  # a page with figures, not blank


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (make browser)")
def test_demo_report_has_its_plots_in_the_browser(tmp_path, capsys):
    pytest.importorskip("matplotlib")  # `make demo` installs it (the report extra)
    _check_in_chromium(_run_demo(tmp_path, "popularity", capsys), tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (make browser)")
def test_full_demo_report_in_the_browser(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("implicit")
    _check_in_chromium(_run_demo(tmp_path, None, capsys), tmp_path)
