import numpy as np
import pandas as pd
import pytest

from genrec import Dataset
from genrec.data.splitting import leave_one_out, ratio_split, split_dataset, temporal_split
from genrec.errors import ConfigError, DataValidationError


def _random_dataset(seed=0, n_users=50, n_items=30, n=600):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n),
            "item_id": rng.integers(0, n_items, n),
            "timestamp": rng.integers(0, 10_000, n),
        }
    )
    counts = df.user_id.value_counts()
    return Dataset(df[df.user_id.isin(counts[counts >= 3].index)])


def _pairs(ds):
    """(user, item, timestamp) triples of a dataset."""
    return set(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), ds.timestamps.tolist()))


def test_leave_one_out_positions(tiny_frame):
    split = leave_one_out(Dataset(tiny_frame))
    ds = split.train
    ext = lambda h: {  # noqa: E731
        ds.user_map.to_external([u])[0]: ds.item_map.to_external(h.targets[r].indices).tolist()
        for r, u in enumerate(h.users)
    }
    assert ext(split.test) == {1: ["d"], 2: ["d"], 3: ["c"], 4: ["f"]}
    assert ext(split.valid) == {1: ["c"], 2: ["c"], 3: ["a"], 4: ["a"]}
    assert split.train.n_interactions == 14 - 8


@pytest.mark.parametrize("method", ["loo", "temporal", "ratio"])
def test_no_leak_from_targets_into_history(method):
    ds = _random_dataset()
    split = split_dataset(ds, method)
    train = _pairs(split.train)
    full = _pairs(ds)
    # every interaction is in exactly one of train / valid / test
    valid_hist = _pairs(split.valid.history) if split.valid else set()
    test_hist = _pairs(split.test.history)
    if split.valid is not None:
        assert train == valid_hist
    assert train <= test_hist <= full
    # test targets are interactions that are not in the test-time history
    later = full - test_hist
    for r, u in enumerate(split.test.users):
        items = set(split.test.targets[r].indices.tolist())
        assert items == {i for (uu, i, _) in later if uu == u}
    # validation targets are not in train (the validation-time history)
    if split.valid is not None:
        val_only = test_hist - train
        for r, u in enumerate(split.valid.users):
            items = set(split.valid.targets[r].indices.tolist())
            assert items == {i for (uu, i, _) in val_only if uu == u}


def test_temporal_split_respects_time():
    ds = _random_dataset(1)
    split = temporal_split(ds, test_fraction=0.2, valid_fraction=0.1)
    start = split.params["test_start"]
    assert split.test.history.timestamps.max() <= start
    assert split.train.timestamps.max() <= split.test.history.timestamps.max()


def test_temporal_split_refuses_order_only_data():
    """P5-style data (has_timestamps=False: the column only orders each user's items) has
    no global time, so a temporal cut-off would be meaningless."""
    ds = _random_dataset(1)
    order_only = Dataset(ds.interactions, name="p5", has_timestamps=False)
    with pytest.raises(DataValidationError, match="'p5' has no real timestamps"):
        split_dataset(order_only, "temporal")
    assert len(split_dataset(order_only, "loo").test) > 0


def test_ratio_split_shuffle_is_seeded():
    ds = _random_dataset(2)
    a = ratio_split(ds, shuffle=True, seed=3)
    b = ratio_split(ds, shuffle=True, seed=3)
    c = ratio_split(ds, shuffle=True, seed=4)
    assert (a.test.targets != b.test.targets).nnz == 0
    assert (a.test.targets != c.test.targets).nnz > 0


def test_loo_rejects_short_users_with_clear_message():
    df = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [1, 2, 3, 1]})
    with pytest.raises(DataValidationError, match="at least 3 interactions.*user ids \\[2\\]"):
        leave_one_out(Dataset(df))


def test_unknown_split_and_bad_fractions():
    ds = _random_dataset()
    with pytest.raises(ConfigError, match="unknown split"):
        split_dataset(ds, "random")
    with pytest.raises(ConfigError):
        temporal_split(ds, test_fraction=1.5)
    with pytest.raises(ConfigError):
        ratio_split(ds, test_fraction=0.0)


def test_describe_counts():
    split = leave_one_out(_random_dataset())
    d = split.describe()
    assert d["method"] == "loo"
    assert d["n_test_users"] == d["n_test_targets"] == len(split.test)
