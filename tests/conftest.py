"""Shared fixtures: tiny hand-made data and the path of the optional real datasets."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import torch

# Tiny models train faster on one thread than on two contending ones (and CI has 2 cores).
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session", autouse=True)
def _temporary_genrec_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests never write to the user's home: genrec's cache (downloads, text embeddings)
    goes to a temporary folder (``GENREC_CACHE_DIR``, inherited by subprocesses) and ``HOME``
    points at an empty temporary folder for the session. At the end, that home must hold no
    ``.cache/genrec``: any genrec code that ignored ``GENREC_CACHE_DIR`` and fell back to
    ``~/.cache/genrec`` fails the run (the real home is never touched either way)."""
    keys = ("GENREC_CACHE_DIR", "GENREC_CACHE", "HOME")
    saved = {k: os.environ.get(k) for k in keys}
    root = tmp_path_factory.mktemp("genrec-cache")
    home = tmp_path_factory.mktemp("home")
    os.environ["GENREC_CACHE_DIR"] = str(root)
    os.environ.pop("GENREC_CACHE", None)
    os.environ["HOME"] = str(home)
    try:
        yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    strays = sorted(str(p.relative_to(home)) for p in (home / ".cache" / "genrec").rglob("*"))
    assert not strays, f"tests wrote genrec files under the home folder: {strays[:5]}"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repository; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def benchmark_script() -> Callable[[str], ModuleType]:
    """Import a script of ``benchmarks/`` (not a package) by name: ``load("results_table")``."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    """4 users x 6 items, timestamps deliberately out of order within users."""
    rows = [
        # user, item, timestamp
        (1, "a", 10),
        (1, "b", 20),
        (1, "c", 30),
        (1, "d", 40),
        (2, "b", 5),
        (2, "c", 15),
        (2, "d", 25),
        (3, "a", 3),
        (3, "e", 1),
        (3, "f", 2),
        (3, "c", 4),
        (4, "f", 9),
        (4, "e", 7),
        (4, "a", 8),
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
