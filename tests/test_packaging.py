"""Packaging and the first-hour install: what ``pip install`` and ``make demo`` get."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression():
    """``license = { text = ... }`` makes setuptools >= 77 print a deprecation banner on every
    install; an SPDX string with a setuptools that understands it does not."""
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    requires = PYPROJECT["build-system"]["requires"]
    spec = next(r for r in requires if r.startswith("setuptools"))
    version = re.search(r">=\s*(\d+)", spec)
    assert version is not None and int(version.group(1)) >= 77, spec
    # a "License ::" classifier next to an SPDX expression is an error in setuptools >= 77
    classifiers = PYPROJECT["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")]


def _make_target(name: str) -> str:
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(name)}:.*?(?=^\S|\Z)", text, flags=re.S | re.M)
    assert match is not None, f"no {name} target in the Makefile"
    return match.group(0)


def test_make_demo_installs_the_plots():
    """The demo's report.html has its figures: the install it depends on brings matplotlib."""
    demo = _make_target("demo")
    deps = demo.split(":", 1)[1].splitlines()[0].split()
    assert "$(VENV)/.installed" in deps
    install = _make_target("$(VENV)/.installed")
    extras = re.search(r'-e "\.\[([^\]]*)\]"', install)
    assert extras is not None, install
    wanted = set(extras.group(1).split(","))
    assert "report" in wanted and "als" in wanted
    assert any(
        d.startswith("matplotlib") for d in PYPROJECT["project"]["optional-dependencies"]["report"]
    )


def test_serve_extra_brings_the_offline_api_docs():
    """``/docs`` must work without internet: its Swagger UI files come with the serve extra."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    for extra in ("serve", "dev"):
        assert any(d.startswith("fastapi-offline") for d in extras[extra]), extra
