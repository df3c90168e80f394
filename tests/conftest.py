"""Shared fixtures: tiny hand-made data and the path of the optional real datasets."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import torch

# Tiny models train faster on one thread than on two contending ones (and CI has 2 cores).
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


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
