"""The ranker wrapper: both backends, persistence, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genrec.errors import ConfigError, DataValidationError, NotFittedError
from genrec.ranking.ranker import Ranker

NAMES = ["signal", "noise", "other"]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = np.full(40, 10)
    X = rng.normal(size=(sizes.sum(), 3)).astype(np.float32)
    y = np.zeros(len(X), dtype=np.float32)
    start = 0
    for s in sizes:  # the relevant row of each query has the largest "signal"
        y[start + int(np.argmax(X[start : start + s, 0]))] = 1.0
        start += s
    return X, y, sizes


@pytest.mark.parametrize(
    "kind,loss", [("catboost", "YetiRank"), ("catboost", "PairLogit"), ("lightgbm", "default")]
)
def test_fit_predict_save_load(kind: str, loss: str, tmp_path: Path) -> None:
    X, y, sizes = _data()
    r = Ranker(kind, loss, iterations=30, depth=3, threads=1).fit(X, y, sizes, NAMES)
    s = r.predict(X, NAMES)
    assert s.shape == (len(X),) and s.dtype == np.float32
    # learns the signal: top-scored row of each query is the relevant one, mostly
    top = [int(np.argmax(s[i * 10 : (i + 1) * 10])) for i in range(40)]
    rel = [int(np.argmax(y[i * 10 : (i + 1) * 10])) for i in range(40)]
    assert np.mean(np.array(top) == np.array(rel)) > 0.8
    r.save(tmp_path / "r")
    assert (tmp_path / "r" / ("model.cbm" if kind == "catboost" else "model.txt")).is_file()
    again = Ranker.load(tmp_path / "r")
    np.testing.assert_allclose(again.predict(X, NAMES), s, rtol=1e-6, atol=1e-6)
    assert again.feature_names == NAMES
    assert set(r.feature_importance()) == set(NAMES)


def test_errors() -> None:
    X, y, sizes = _data()
    with pytest.raises(ConfigError, match="PairLogit"):
        Ranker("lightgbm", "PairLogit")
    with pytest.raises(ConfigError, match="ranker must be"):
        Ranker("xgboost")
    r = Ranker("catboost", iterations=5, threads=1)
    with pytest.raises(NotFittedError):
        r.predict(X)
    with pytest.raises(DataValidationError, match="groups"):
        r.fit(X, y, sizes[:-1], NAMES)
    r.fit(X, y, sizes, NAMES)
    with pytest.raises(DataValidationError, match="got None"):
        r.predict(None)
    with pytest.raises(DataValidationError, match="2 columns"):
        r.predict(X[:, :2])
    with pytest.raises(DataValidationError, match=r"missing \['other'\], unexpected \['x'\]"):
        r.predict(X, ["signal", "noise", "x"])
    with pytest.raises(DataValidationError, match="different order"):
        r.predict(X, ["noise", "signal", "other"])
    with pytest.raises(DataValidationError, match="2-D"):
        r.predict(X[:, 0])
