"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest

from genrec.data.splitting import Split, leave_one_out
from genrec.testing import make_synthetic_dataset


@pytest.fixture(scope="module")
def split() -> Split:
    """Leave-one-out split of the default synthetic dataset (one per test module)."""
    return leave_one_out(make_synthetic_dataset())
