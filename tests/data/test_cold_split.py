"""Cold-item split: no cold item in training, cold targets, full catalogue kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrec import Dataset
from genrec.data.splitting import ColdItemSplit, cold_item_split, split_dataset
from genrec.errors import ConfigError, DataValidationError
from genrec.testing import make_synthetic_dataset


def _random_dataset(seed: int = 0, n_users: int = 80, n_items: int = 60, n: int = 1500):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n),
            "item_id": rng.integers(0, n_items, n),
            "timestamp": rng.integers(0, 100_000, n),
        }
    )
    items = pd.DataFrame(
        {"item_id": np.arange(n_items), "title": [f"t{i}" for i in range(n_items)]}
    )
    return Dataset(df, items)


def _triples(ds: Dataset) -> set[tuple[int, int, float]]:
    return set(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), ds.timestamps.tolist()))


@pytest.mark.parametrize("validation", [True, False])
def test_no_leak_and_cold_targets(validation: bool) -> None:
    ds = _random_dataset()
    split = cold_item_split(ds, new_item_share=0.1, validation=validation)
    assert isinstance(split, ColdItemSplit) and split.method == "cold"
    cold = split.cold_mask()
    assert cold.sum() == split.params["n_cold_items"] == 6  # 10% of the 60 items
    # the newest items by first interaction time
    first = {}
    for i, t in zip(ds.item_idx.tolist(), ds.timestamps.tolist()):
        first[i] = min(first.get(i, np.inf), t)
    newest = sorted(first, key=lambda i: (first[i], i))[-6:]
    assert set(split.cold_items.tolist()) == set(newest)
    # no leak: cold items have no training, validation or history interaction
    assert not cold[split.train.item_idx].any()
    assert not cold[split.test.history.item_idx].any()
    if validation:
        assert split.valid is not None and not cold[split.valid.targets.indices].any()
        assert _triples(split.valid.history) == _triples(split.train)
    # every test target is a cold item, one per user, after at least one history item
    assert cold[split.test.targets.indices].all()
    assert (split.test.n_targets == 1).all()
    hist = split.test.history
    counts = np.bincount(hist.user_idx, minlength=ds.n_users + 1)
    assert (counts[split.test.users] >= 1).all()
    # the target is the user's first cold interaction and the history precedes it
    full = ds.interactions.assign(u=ds.user_idx, i=ds.item_idx)
    for r, u in enumerate(split.test.users):
        rows = full[full.u == u]
        cold_rows = rows[cold[rows.i.to_numpy()]]
        target = int(split.test.targets[r].indices[0])
        assert target == int(cold_rows.i.iloc[0])
        t_target = cold_rows.timestamp.iloc[0]
        assert (hist.timestamps[hist.user_idx == u] <= t_target).all()
    # the training interactions are a subset of the test history, which is a subset of the data
    assert _triples(split.train) <= _triples(hist) <= _triples(ds)
    # the catalogue (id map and item table) still holds the cold items
    assert split.train.item_map == ds.item_map
    titles = split.train.item_titles()
    assert all(titles[i] for i in split.cold_items)
    assert split.train.item_popularity()[split.cold_items].sum() == 0


def test_order_only_timestamps_use_item_id_order() -> None:
    ds = make_synthetic_dataset(n_users=60, n_items=40, noise=0.2)
    ds = Dataset(ds.interactions.drop(columns="timestamp"), ds.items)  # row order only
    assert not ds.has_timestamps
    split = cold_item_split(ds, new_item_share=0.1)
    assert split.params["cold_by"] == "item_id_order"
    present = np.flatnonzero(ds.item_popularity()[1:] > 0) + 1
    np.testing.assert_array_equal(split.cold_items, present[-len(split.cold_items) :])


def test_dispatch_determinism_and_errors() -> None:
    ds = _random_dataset(1)
    a, b = split_dataset(ds, "cold", new_item_share=0.05), cold_item_split(ds, new_item_share=0.05)
    np.testing.assert_array_equal(a.cold_items, b.cold_items)
    assert (a.test.targets != b.test.targets).nnz == 0
    assert a.describe()["method"] == "cold"
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="new_item_share"):
            cold_item_split(ds, new_item_share=bad)
    # the only cold interactions are users' first ones: no test user
    df = pd.DataFrame(
        {"user_id": [1, 1, 2, 2], "item_id": ["a", "b", "c", "a"], "timestamp": [1, 2, 3, 4]}
    )
    with pytest.raises(DataValidationError, match="no user"):
        cold_item_split(Dataset(df), new_item_share=0.2)
