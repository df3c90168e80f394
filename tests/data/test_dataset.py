import warnings

import numpy as np
import pandas as pd
import pytest

from genrec import Dataset, IdMap
from genrec.errors import DataValidationError, DuplicateIdWarning, UnknownIdError


def test_idmap_reserves_zero_and_round_trips():
    m = IdMap(["x", "y", "z"])
    assert len(m) == 3
    assert m.to_internal(["z", "x"]).tolist() == [3, 1]
    assert m.to_external([0, 2]).tolist() == [None, "y"]
    assert "y" in m and "q" not in m


def test_idmap_accepts_string_form_of_integer_ids():
    m = IdMap([10, 20])
    assert m.to_internal(["20"]).tolist() == [2]


def test_idmap_unknown_id_message_names_it():
    with pytest.raises(UnknownIdError, match="'nope'"):
        IdMap(["a"]).to_internal(["nope"], what="item")
    assert IdMap(["a"]).to_internal(["nope"], missing="zero").tolist() == [0]


def test_idmap_rejects_duplicates():
    with pytest.raises(DataValidationError, match="duplicate"):
        IdMap(["a", "a"])


def test_dataset_sorts_chronologically_and_builds_views(tiny_frame):
    ds = Dataset(tiny_frame)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (4, 6, 14)
    seq3 = ds.item_map.to_external(ds.sequences()[ds.user_map.to_internal(3)[0]]).tolist()
    assert seq3 == ["e", "f", "a", "c"]  # sorted by timestamp 1, 2, 3, 4
    mat = ds.matrix()
    assert mat.shape == (5, 7)
    assert mat[0].nnz == 0 and mat[:, 0].nnz == 0  # padding row/column stay empty
    assert mat.sum() == 14
    pop = ds.item_popularity()
    assert pop[ds.item_map.to_internal("c")[0]] == 3


def test_dataset_stats(tiny_frame):
    st = Dataset(tiny_frame, name="tiny").stats()
    assert st["n_users"] == 4 and st["n_items"] == 6 and st["n_interactions"] == 14
    assert st["density"] == pytest.approx(14 / 24)
    assert st["seq_len_quantiles"]["min"] == 3 and st["seq_len_quantiles"]["max"] == 4


def test_dataset_without_timestamp_uses_row_order():
    ds = Dataset(pd.DataFrame({"user_id": [1, 1, 1], "item_id": [3, 1, 2]}))
    assert ds.item_map.to_external(ds.sequences()[1]).tolist() == [3, 1, 2]
    assert ds.stats()["has_timestamps"] is False


def test_datetime_timestamps_are_converted():
    df = pd.DataFrame(
        {
            "user_id": [1, 1],
            "item_id": [1, 2],
            "timestamp": pd.to_datetime(["2020-01-02", "2020-01-01"]),
        }
    )
    ds = Dataset(df)
    assert ds.item_map.to_external(ds.sequences()[1]).tolist() == [2, 1]


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"user": [1], "item_id": [1]}), "missing required column"),
        (pd.DataFrame({"user_id": [], "item_id": []}), "empty"),
        (pd.DataFrame({"user_id": [1, None], "item_id": [1, 2]}), "missing \\(NaN\\) id"),
        (pd.DataFrame({"user_id": [1], "item_id": [1], "timestamp": ["yesterday"]}), "timestamp"),
        (pd.DataFrame({"user_id": [1], "item_id": [1], "weight": ["heavy"]}), "weight"),
    ],
)
def test_bad_interactions_raise_clear_errors(frame, message):
    with pytest.raises(DataValidationError, match=message):
        Dataset(frame)


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="DataFrame"):  # GenrecTypeError
        Dataset([(1, 2)])  # type: ignore[arg-type]


def test_item_table_titles_and_genres(tiny_frame):
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "zzz"],
            "title": ["Alpha", "Beta", "Unknown item"],
            "genres": ["Drama|Comedy", ["Drama"], "Horror"],
        }
    )
    ds = Dataset(tiny_frame, items=items)
    titles = ds.item_titles()
    assert titles[ds.item_map.to_internal("a")[0]] == "Alpha"
    assert titles[0] == ""
    assert len(ds.items) == 2  # 'zzz' is not in the catalogue
    genres = ds.item_genres()
    assert genres.shape == (7, 2)  # Comedy, Drama (Horror only on an unknown item)
    assert genres[ds.item_map.to_internal("a")[0]].nnz == 2


def test_item_table_with_repeated_ids_warns_and_keeps_the_first_row(tiny_frame):
    items = pd.DataFrame({"item_id": ["a", "b", "a"], "title": ["First", "Beta", "Second"]})
    with pytest.warns(
        DuplicateIdWarning, match=r"repeats 1 'item_id' values \(e.g. \['a'\]\)"
    ) as caught:
        ds = Dataset(tiny_frame, items=items)
    assert caught[0].filename == __file__  # the warning names the caller's line
    assert ds.item_titles()[ds.item_map.to_internal("a")[0]] == "First"
    assert len(ds.items) == 2
    users = pd.DataFrame({"user_id": [1, 1, 999, 999], "age": [30, 31, 40, 41]})
    with pytest.warns(DuplicateIdWarning, match=r"user table repeats 1 'user_id'"):
        Dataset(tiny_frame, users=users)  # 999 is no user: dropped first, not reported
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean table (and a subset of the clean one) is quiet
        clean = Dataset(tiny_frame, items=items.iloc[:2])
        clean.subset(np.arange(clean.n_interactions) < 3)


def test_item_table_needs_key(tiny_frame):
    with pytest.raises(DataValidationError, match="'item_id'"):
        Dataset(tiny_frame, items=pd.DataFrame({"title": ["x"]}))


def test_fingerprint_changes_with_data(tiny_frame):
    a = Dataset(tiny_frame).fingerprint()
    b = Dataset(tiny_frame.assign(timestamp=tiny_frame.timestamp + 1)).fingerprint()
    assert a == Dataset(tiny_frame.copy()).fingerprint()
    assert a != b


def test_subset_keeps_id_maps(tiny_frame):
    ds = Dataset(tiny_frame)
    sub = ds.subset(ds.user_idx == 1)
    assert sub.item_map == ds.item_map and sub.n_items == ds.n_items
    assert sub.n_interactions == 4


def test_history_batch_padding(tiny_frame):
    ds = Dataset(tiny_frame)
    batch = ds.histories().batch(np.array([1, 3]))
    padded = batch.padded_sequences(5)
    assert padded.shape == (2, 5)
    assert padded[0, 0] == 0 and (padded[0, 1:] > 0).all()
    assert batch.matrix.shape == (2, 7)


def test_timestamps_flow_into_histories_and_subsets(tiny_frame):
    ds = Dataset(tiny_frame)
    batch = ds.histories().batch(np.array([3]))
    assert batch.seq_times.tolist() == [1.0, 2.0, 3.0, 4.0]  # user 3, chronological
    assert batch.padded_times(6).tolist() == [[0.0, 0.0, 1.0, 2.0, 3.0, 4.0]]
    order_only = Dataset(tiny_frame, has_timestamps=False)
    assert order_only.histories().seq_times is None
    assert order_only.subset(order_only.user_idx > 1).has_timestamps is False
    assert ds.subset(ds.user_idx > 1).has_timestamps is True


def test_subset_slices_exactly_what_a_rebuilt_dataset_holds():
    """subset() slices the sorted, mapped arrays instead of re-validating: it must hold
    the same frame, ids, times, weights, histories and fingerprint as the constructor
    would build from the selected rows (ties in time, repeats, weights, side tables)."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "user_id": rng.choice(["a", "b", "c", "d", "e"], n),
            "item_id": rng.integers(100, 130, n),
            "timestamp": rng.integers(0, 40, n).astype(float),  # many ties
            "weight": rng.random(n).astype(np.float32),
        }
    )
    items = pd.DataFrame({"item_id": np.arange(100, 130), "title": [f"t{i}" for i in range(30)]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exact duplicates are collapsed with a warning
        ds = Dataset(frame, items=items, name="ties")
    for mask in (rng.random(len(ds)) < 0.5, ds.user_idx != 2, np.ones(len(ds), bool)):
        fast = ds.subset(mask)
        slow = Dataset(
            ds.interactions[mask],
            ds.items,
            name=ds.name,
            user_map=ds.user_map,
            item_map=ds.item_map,
            has_timestamps=ds.has_timestamps,
        )
        assert set(vars(fast)) == set(vars(slow))  # every attribute __init__ sets
        pd.testing.assert_frame_equal(fast.interactions, slow.interactions)
        for a, b in ((fast.user_idx, slow.user_idx), (fast.item_idx, slow.item_idx)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(fast.timestamps, slow.timestamps)
        np.testing.assert_array_equal(fast.weights, slow.weights)
        assert fast.fingerprint() == slow.fingerprint()
        assert (fast.matrix() != slow.matrix()).nnz == 0
        assert fast.items is ds.items and fast.item_map is ds.item_map
    assert ds.subset(np.zeros(len(ds), bool), allow_empty=True).n_interactions == 0
    with pytest.raises(DataValidationError, match="empty"):
        ds.subset(np.zeros(len(ds), bool))
    with pytest.raises(DataValidationError, match="one flag per interaction"):
        ds.subset(np.ones(3, bool))
