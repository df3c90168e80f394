"""The Parquet loader reads by record batches: same Dataset as reading the whole frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrec.data.dataset import Dataset
from genrec.data.loaders import files
from genrec.data.loaders.files import load_parquet
from genrec.errors import DatasetUnavailableError, DataValidationError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def tiny_batches(monkeypatch):
    monkeypatch.setattr(files, "PARQUET_BATCH_ROWS", 7)


def frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user": [f"u{v:03d}" for v in rng.integers(0, 9, n)],
            "item": rng.integers(100, 130, n),
            "ts": rng.integers(1_600_000_000, 1_600_100_000, n),
            "rating": rng.integers(1, 6, n).astype(float),
            "other": ["x"] * n,
        }
    )


def assert_same(ds: Dataset, ref: Dataset) -> None:
    pd.testing.assert_frame_equal(ds.interactions, ref.interactions)
    assert ds.user_map == ref.user_map and ds.item_map == ref.item_map
    assert ds.fingerprint() == ref.fingerprint()


def test_batches_give_the_in_memory_result(tmp_path, tiny_batches):
    df = frame()
    path = tmp_path / "inter.parquet"
    pq.write_table(pa.Table.from_pandas(df), path, row_group_size=11)
    ds = load_parquet(path, columns={"user": "user_id", "item": "item_id", "ts": "timestamp",
                                      "rating": "rating"})  # fmt: skip
    ref = Dataset(
        df.rename(columns={"user": "user_id", "item": "item_id", "ts": "timestamp"})[
            ["user_id", "item_id", "timestamp", "rating"]
        ],
        name="inter",
    )
    assert_same(ds, ref)
    assert "other" not in ds.interactions.columns
    assert ds.user_map.external_ids.dtype == object  # string ids stay strings


def test_folder_of_parts_and_integer_strings(tmp_path, tiny_batches):
    df = frame(50, seed=1)
    df["user"] = [u[1:] for u in df["user"]]  # "003" -> leading zeros: stay strings
    df["item"] = df["item"].astype(str)  # "117" -> plain integers: become int64
    folder = tmp_path / "parts"
    folder.mkdir()
    for j, (start, stop) in enumerate(((0, 17), (17, 33), (33, 50))):
        part = df.iloc[start:stop]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / f"p{j}.parquet")
    ds = load_parquet(folder, columns={"user": "user_id", "item": "item_id", "ts": "timestamp"})
    assert ds.n_interactions == 50
    assert ds.item_map.external_ids.dtype.kind == "i"
    assert ds.user_map.external_ids.dtype == object and "003" in ds.user_map.to_list()
    ref = Dataset(
        pd.DataFrame({"user_id": df["user"].to_numpy(dtype=object),
                      "item_id": df["item"].astype(np.int64), "timestamp": df["ts"],
                      "rating": df["rating"]}),  # canonical columns come along unmapped
    )  # fmt: skip
    pd.testing.assert_frame_equal(ds.interactions, ref.interactions)


def test_missing_ids_are_named_as_before(tmp_path, tiny_batches):
    df = pd.DataFrame({"user_id": [1.0, 2.0, None, 4.0] * 3, "item_id": ["a", None, "b", "c"] * 3})
    path = tmp_path / "gaps.parquet"
    df.to_parquet(path)
    with pytest.raises(DataValidationError, match="'user_id' has 3 missing"):
        load_parquet(path)
    df["user_id"] = 1
    df.to_parquet(path)
    with pytest.raises(DataValidationError, match="'item_id' has 3 missing"):
        load_parquet(path)
    ints = pa.table({"user_id": pa.array([1, None, 3] * 4, pa.int64()), "item_id": [1, 2, 3] * 4})
    pq.write_table(ints, path)
    with pytest.raises(DataValidationError, match="'user_id' has 4 missing"):
        load_parquet(path)


def test_bad_files(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="not found"):
        load_parquet(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DataValidationError, match="not a readable Parquet file"):
        load_parquet(bad)
    empty = tmp_path / "empty.parquet"
    pd.DataFrame(
        {"user_id": pd.Series([], dtype=int), "item_id": pd.Series([], dtype=int)}
    ).to_parquet(empty)
    with pytest.raises(DataValidationError, match="has no rows"):
        load_parquet(empty)


def test_date_strings_and_float_ids(tmp_path, tiny_batches):
    df = pd.DataFrame(
        {"user_id": [1.0, 1.0, 2.0] * 4, "item_id": [5.0, 6.0, 5.0] * 4,
         "timestamp": [f"2024-01-0{1 + i % 9}" for i in range(12)]}
    )  # fmt: skip
    path = tmp_path / "dates.parquet"
    df.to_parquet(path)
    ds = load_parquet(path)
    assert ds.user_map.external_ids.dtype.kind == "i" and ds.item_map.to_list() == [5, 6]
    assert ds.timestamps.min() == 1704067200  # 2024-01-01 UTC
