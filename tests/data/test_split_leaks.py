"""No split ever hands a target to the model for its own stage: not on clean data, not on
data where every row appears twice, not on data where users consume items again.

The check works at the level of interactions, not items: for every target (user, item) of a
stage, the stage's history must hold fewer interactions of that pair than the whole data,
i.e. the held-out interaction itself is not in it. Re-consumption (the same item earlier) is
allowed by the default protocol and counted; ``reconsumption="drop"``/``"first"`` remove it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import genrec
from genrec.data.splitting import RECONSUMPTION, Split, first_occurrences, split_dataset
from genrec.errors import DuplicateInteractionWarning
from genrec.testing import make_synthetic_dataset

METHODS = ("loo", "temporal", "ratio")


def _pairs(ds: genrec.Dataset) -> sp.csr_matrix:
    """Interaction counts per (user, item) as a CSR matrix."""
    n = ds.n_interactions
    return sp.csr_matrix(
        (np.ones(n), (ds.user_idx, ds.item_idx)), shape=(ds.n_users + 1, ds.n_items + 1)
    )


def _at(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[j], cols[j]]`` for every j, as a flat array."""
    if len(rows) == 0:
        return np.zeros(0)
    return np.asarray(matrix[rows, cols]).ravel()


def _frame(kind: str, seed: int) -> pd.DataFrame:
    """Random interactions: ``clean`` (distinct items per user), ``repeats`` (users come back
    to items at later times), ``doubled`` (every row twice), ``ties`` (repeats and exact
    duplicates sharing timestamps)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, 41):
        n = int(rng.integers(3, 12))
        if kind == "clean":
            items = rng.choice(30, size=n, replace=False)
        else:  # a small pool: many repeats (three distinct items first, for loo)
            items = np.concatenate([rng.choice(8, 3, replace=False), rng.integers(0, 8, n - 3)])
        times = np.sort(rng.integers(0, 1000, size=n)) if kind != "ties" else rng.integers(0, 3, n)
        rows += [(u, int(i), int(t)) for i, t in zip(items, times)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    if kind in ("doubled", "ties"):
        frame = pd.concat([frame, frame.sample(frac=1.0, random_state=seed)], ignore_index=True)
    return frame


def _dataset(kind: str, seed: int) -> genrec.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateInteractionWarning)
        return genrec.Dataset(_frame(kind, seed))


def _split(ds: genrec.Dataset, method: str, reconsumption: str) -> Split | None:
    """The split, or ``None`` where this data cannot be split this way (e.g. loo needs three
    interactions per user; after removing repeats some users have fewer)."""
    try:
        return split_dataset(ds, method, reconsumption=reconsumption)
    except genrec.errors.DataValidationError:
        return None


def _check_stage(full: sp.csr_matrix, split: Split, stage: str, reconsumption: str) -> None:
    holdout = getattr(split, stage)
    if holdout is None:
        return
    hist = _pairs(holdout.history)[holdout.users]  # (U, n_items + 1) counts
    total = full[holdout.users]
    targets = holdout.targets.tocoo()
    t_rows, t_cols = targets.row, targets.col
    in_hist, in_data = _at(hist, t_rows, t_cols), _at(total, t_rows, t_cols)
    # the held-out interaction itself is never part of the history
    assert (in_hist < in_data).all(), f"{stage}: a target interaction is in its own history"
    n_seen = int((in_hist > 0).sum())
    if reconsumption == "miss":
        assert split.describe()[f"n_{stage}_targets_in_history"] == n_seen
    else:  # drop / first: no target was seen before
        assert n_seen == 0
    # the validation history is the training data; the test history adds validation only
    if stage == "valid":
        assert holdout.history.fingerprint() == split.train.fingerprint()


@pytest.mark.parametrize("reconsumption", RECONSUMPTION)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["clean", "repeats", "doubled", "ties"])
@pytest.mark.parametrize("seed", [0, 1])
def test_no_target_in_its_own_history(kind, method, reconsumption, seed):
    ds = _dataset(kind, seed)
    split = _split(ds, method, reconsumption)
    if split is None:
        pytest.skip(f"{method} cannot split this {kind} data with reconsumption={reconsumption}")
    base = ds.subset(first_occurrences(ds)) if reconsumption == "first" else ds
    full = _pairs(base)
    for stage in ("valid", "test"):
        _check_stage(full, split, stage, reconsumption)
    # training never holds a held-out interaction of either stage
    train = _pairs(split.train)
    for holdout in (split.valid, split.test):
        if holdout is not None:
            t = holdout.targets.tocoo()
            rows = holdout.users[t.row]
            assert (_at(train, rows, t.col) < _at(full, rows, t.col)).all()


@pytest.mark.parametrize("method", METHODS)
def test_doubled_file_splits_like_the_original(method):
    """Every row twice: collapsed with a warning, then the very same split as the original."""
    frame = _frame("repeats", 3)
    once = genrec.Dataset(frame)
    with pytest.warns(DuplicateInteractionWarning, match=f"{len(frame):,} exact duplicate"):
        twice = genrec.Dataset(pd.concat([frame, frame], ignore_index=True))
    a, b = split_dataset(once, method), split_dataset(twice, method)
    assert a.train.fingerprint() == b.train.fingerprint()
    assert (a.test.users == b.test.users).all()
    assert (a.test.targets != b.test.targets).nnz == 0
    assert a.describe() == b.describe()


def test_doubled_file_keeps_metrics_honest():
    """Leave-one-out on a doubled file used to score exactly 0 (the test item's twin sat in the
    training history). Now a model that can learn the data scores the same as on the original."""
    ds = make_synthetic_dataset(n_users=60, n_items=30, seq_len=7, seed=4)
    frame = ds.interactions[["user_id", "item_id", "timestamp"]]
    with pytest.warns(DuplicateInteractionWarning):
        doubled = genrec.Dataset(pd.concat([frame, frame], ignore_index=True))
    scores = []
    for data in (genrec.Dataset(frame), doubled):
        split = split_dataset(data, "loo")
        model = genrec.get_model("itemknn")().fit(split.train)
        scores.append(genrec.evaluate(model, split, ks=[10]).metrics["recall@10"])
    assert scores[0] > 0.1
    assert scores[0] == scores[1]


def test_duplicates_error_mode():
    frame = _frame("clean", 0)
    with pytest.raises(genrec.errors.DataValidationError, match="3 exact duplicate"):
        genrec.Dataset(pd.concat([frame, frame.head(3)]), duplicates="error")


def test_repeats_at_other_times_are_not_duplicates():
    """Re-consumption (same user and item, another time) is data, not a duplicate."""
    frame = pd.DataFrame(
        {"user_id": [1, 1, 1, 1], "item_id": [5, 6, 5, 7], "timestamp": [1, 2, 3, 4]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateInteractionWarning)
        ds = genrec.Dataset(frame)
    assert ds.n_interactions == 4


@pytest.mark.parametrize(
    ("reconsumption", "users", "expected"),
    [
        # user 1's test target (item 5) was seen before: a target under "miss" ...
        ("miss", [1, 2], {"n_test_targets_in_history": 1}),
        # ... not evaluated under "drop" (user 1 has no other test target) ...
        ("drop", [2], {"n_test_targets_dropped": 1, "n_test_targets_in_history": 0}),
        # ... and gone with "first": user 1's last distinct item (8) becomes the target
        ("first", [1, 2], {"n_repeats_removed": 1, "n_test_targets_in_history": 0}),
    ],
)
def test_reconsumption_semantics(reconsumption, users, expected):
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 1, 2, 2, 2],
            "item_id": [5, 6, 7, 8, 5, 1, 2, 3],
            "timestamp": [1, 2, 3, 4, 5, 1, 2, 3],
        }
    )
    split = split_dataset(genrec.Dataset(frame), "loo", reconsumption=reconsumption)
    info = split.describe()
    assert info["reconsumption"] == reconsumption
    for key, value in expected.items():
        assert info[key] == value, (key, info)
    ext = split.train.user_map.to_external(split.test.users).tolist()
    assert ext == users
    if reconsumption == "first":
        row = ext.index(1)
        target = split.test.targets[row].indices
        assert split.train.item_map.to_external(target).tolist() == [8]
