"""Tests for genrec.data.preprocessing: threshold, de-duplication, iterative k-core."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrec.data.dataset import Dataset
from genrec.data.loaders import load_dataset
from genrec.data.preprocessing import binarize, deduplicate, kcore, preprocess
from genrec.errors import ConfigError, DataValidationError


def _frame(pairs, **extra):
    df = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    for k, v in extra.items():
        df[k] = v
    return df


# ---------------------------------------------------------------------- k-core
def test_kcore_needs_several_passes_to_reach_the_fixed_point():
    # pass 1 removes (c, z) because z has one interaction; only then does user c fall
    # below 2 and (c, y) must go in pass 2.
    df = _frame([("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "y"), ("c", "z")])
    one_pass = df[
        df.groupby("user_id")["item_id"].transform("size").ge(2)
        & df.groupby("item_id")["user_id"].transform("size").ge(2)
    ]
    assert (one_pass["user_id"] == "c").sum() == 1  # a single pass is not a 2-core

    out = kcore(df, user_k=2, item_k=2)
    assert sorted(map(tuple, out[["user_id", "item_id"]].to_numpy())) == [
        ("a", "x"),
        ("a", "y"),
        ("b", "x"),
        ("b", "y"),
    ]
    assert out.groupby("user_id").size().min() >= 2
    assert out.groupby("item_id").size().min() >= 2
    # a fixed point: applying it again changes nothing
    pd.testing.assert_frame_equal(kcore(out, 2, 2), out)


def test_kcore_chain_collapses_completely():
    # a path graph has no 2-core: the peeling must continue to the end
    df = _frame([("u1", "i1"), ("u1", "i2"), ("u2", "i2"), ("u2", "i3"), ("u3", "i3")])
    assert len(kcore(df, 2, 2)) == 0


def test_kcore_zero_or_one_is_a_noop_and_rejects_negative():
    df = _frame([("a", "x"), ("b", "y")])
    assert len(kcore(df, 0, 1)) == 2
    with pytest.raises(ConfigError, match="user_core"):
        kcore(df, -1, 0)
    with pytest.raises(ConfigError, match="item_core"):
        kcore(df, 0, 2.5)


# ---------------------------------------------------------------------- threshold / dedupe
def test_binarize_keeps_ratings_at_or_above_threshold():
    df = _frame([(1, 1), (1, 2), (2, 1)], rating=[3.5, 4.0, 5.0])
    out = binarize(df, 4)
    assert out["rating"].tolist() == [4.0, 5.0]
    with pytest.raises(DataValidationError, match="rating_threshold=4.*'rating' column"):
        binarize(df.drop(columns="rating"), 4)


def test_deduplicate_first_and_last_follow_timestamps_not_rows():
    # rows out of time order: the earliest (1, 10) is the second row
    df = _frame([(1, 10), (1, 10), (1, 11), (1, 10)], timestamp=[5, 1, 3, 9], rating=[2, 1, 3, 4])
    first = deduplicate(df, "first")
    last = deduplicate(df, "last")
    assert first.set_index("item_id").loc[10, "rating"] == 1
    assert last.set_index("item_id").loc[10, "rating"] == 4
    assert len(first) == len(last) == 2
    # original row order is kept
    assert first["timestamp"].tolist() == [1, 3]
    with pytest.raises(ConfigError, match="deduplicate"):
        deduplicate(df, "middle")


def test_deduplicate_without_timestamps_uses_row_order():
    df = _frame([(1, 10), (1, 10)], rating=[1.0, 2.0])
    assert deduplicate(df, "first")["rating"].tolist() == [1.0]
    assert deduplicate(df, "last")["rating"].tolist() == [2.0]


# ---------------------------------------------------------------------- preprocess
@pytest.fixture()
def small_ds():
    inter = _frame(
        [
            ("a", "x"),
            ("a", "y"),
            ("a", "z"),
            ("a", "x"),
            ("b", "x"),
            ("b", "y"),
            ("c", "w"),
        ],
        timestamp=[1, 2, 3, 4, 1, 2, 1],
        rating=[5, 4, 1, 3, 5, 2, 5],
    )
    items = pd.DataFrame({"item_id": ["w", "x", "y", "z"], "title": ["W", "X", "Y", "Z"]})
    return Dataset(inter, items, name="toy")


def test_preprocess_rebuilds_id_maps_and_keeps_name_and_side_tables(small_ds):
    out = preprocess(small_ds, rating_threshold=4)
    assert out is not small_ds and out.name == "toy"
    assert out.n_interactions == 4
    assert set(out.item_map.external_ids) == {"w", "x", "y"}
    assert out.n_items == 3  # fresh, contiguous ids
    assert sorted(out.items["item_id"]) == ["w", "x", "y"]
    assert small_ds.n_interactions == 7  # input untouched


def test_preprocess_dedupe_then_min_user_interactions(small_ds):
    out = preprocess(small_ds, deduplicate="last", min_user_interactions=2)
    assert set(out.user_map.external_ids) == {"a", "b"}
    assert out.n_interactions == 5  # a: x (last, t=4), y, z; b: x, y
    a_x = out.interactions[(out.interactions.user_id == "a") & (out.interactions.item_id == "x")]
    assert a_x["timestamp"].tolist() == [4]


def test_preprocess_combines_k_core_with_min_user_interactions(small_ds):
    out = preprocess(small_ds, deduplicate="first", item_core=2, min_user_interactions=2)
    counts_u = out.interactions.groupby("user_id").size()
    counts_i = out.interactions.groupby("item_id").size()
    assert counts_u.min() >= 2 and counts_i.min() >= 2
    assert set(out.item_map.external_ids) == {"x", "y"}


def test_preprocess_everything_filtered_names_the_parameters(small_ds):
    with pytest.raises(DataValidationError, match=r"rating_threshold=6"):
        preprocess(small_ds, rating_threshold=6)
    with pytest.raises(DataValidationError, match="removed every interaction.*user_core=10"):
        preprocess(small_ds, user_core=10)


def test_preprocess_rejects_bad_parameters(small_ds):
    with pytest.raises(ConfigError, match="min_user_interactions"):
        preprocess(small_ds, min_user_interactions=-1)
    with pytest.raises(ConfigError, match="user_core"):
        preprocess(small_ds, user_core=-3)
    with pytest.raises(ConfigError, match="deduplicate"):
        preprocess(small_ds, deduplicate="all")
    with pytest.raises(DataValidationError, match="rating"):
        preprocess(Dataset(_frame([(1, 2)])), rating_threshold=3)


def test_preprocess_keeps_order_when_dataset_has_no_timestamps():
    ds = Dataset(_frame([(1, 30), (1, 10), (1, 20), (2, 10), (2, 30)]))
    assert not ds.has_timestamps
    out = preprocess(ds, item_core=2)
    assert not out.has_timestamps
    seq = out.item_map.to_external(out.sequences()[out.user_map.to_internal([1])[0]])
    assert list(seq) == [30, 10]


def test_preprocess_movielens_small_is_a_fixed_point():
    ds = load_dataset("movielens-small", rating_threshold=4, user_core=5, item_core=5)
    df = ds.interactions
    assert (df["rating"] >= 4).all()
    assert df.groupby("user_id").size().min() >= 5
    assert df.groupby("item_id").size().min() >= 5
    assert ds.n_items == df["item_id"].nunique() and ds.n_users == df["user_id"].nunique()
    assert ds.n_interactions < 100_004
    assert np.all(ds.item_popularity()[1:] >= 5)
