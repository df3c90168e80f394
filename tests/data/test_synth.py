"""The synthetic generator: shape, reproducibility, skew, planted structure, Parquet, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genrec
from genrec.cli import main
from genrec.data.dataset import Dataset
from genrec.data.synth import synthesize, write_parquet
from genrec.errors import ConfigError


def test_columns_ids_and_order():
    df = synthesize(50, 30, mean_length=6, seed=0)
    assert list(df.columns) == ["user_id", "item_id", "timestamp"]
    assert all(df[c].dtype == np.int64 for c in df.columns)
    assert df["user_id"].between(1, 50).all() and df["item_id"].between(1, 30).all()
    assert df["user_id"].nunique() == 50  # every user has a history
    assert not df.duplicated(["user_id", "item_id"]).any()
    # sorted by user, strictly increasing time within a user
    assert (np.diff(df["user_id"].to_numpy()) >= 0).all()
    same = np.diff(df["user_id"].to_numpy()) == 0
    assert (np.diff(df["timestamp"].to_numpy())[same] > 0).all()
    assert df.groupby("user_id").size().min() >= 3  # min_length


def test_same_seed_same_rows_other_seed_other_rows():
    a = synthesize(40, 25, mean_length=5, seed=3)
    b = synthesize(40, 25, mean_length=5, seed=3)
    c = synthesize(40, 25, mean_length=5, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_mean_length_and_popularity_skew():
    df = synthesize(2000, 500, mean_length=12, zipf=1.0, seed=0)
    assert abs(len(df) / 2000 - 12) < 1.5  # lognormal mean, after de-duplication
    counts = df["item_id"].value_counts().to_numpy()
    # Zipf(1): the top 5% of the items take a large share, far above uniform's 5%
    assert counts[: len(counts) // 20].sum() / counts.sum() > 0.2
    flat = synthesize(2000, 500, mean_length=12, zipf=0.0, seed=0)["item_id"].value_counts()
    flat_top = flat.to_numpy()[: len(flat) // 20].sum() / flat.sum()
    assert flat_top < counts[: len(counts) // 20].sum() / counts.sum()


def test_bad_values_raise_naming_them():
    with pytest.raises(ConfigError, match="n_items"):
        synthesize(10, 1)
    with pytest.raises(ConfigError, match="zipf"):
        synthesize(10, 10, zipf=-1)
    with pytest.raises(ConfigError, match="mean_length"):
        synthesize(10, 10, mean_length=1)
    with pytest.raises(ConfigError, match="interest \\+ transition"):
        synthesize(10, 10, interest=0.8, transition=0.5)
    with pytest.raises(ConfigError, match="n_clusters"):
        synthesize(10, 10, n_clusters=11)


@pytest.fixture(scope="module")
def small_split():
    df = synthesize(1200, 300, mean_length=15, seed=0)
    return genrec.split_dataset(Dataset(df, name="synth"), "loo")


def test_cooccurrence_models_beat_popularity(small_split):
    """The planted interest clusters are learnable: EASE and item-KNN clearly beat
    popularity on the same leave-one-out split."""
    scores = {}
    for name, kw in (("popularity", {}), ("itemknn", {}), ("ease", {"l2": 50.0})):
        model = genrec.get_model(name)(**kw).fit(small_split.train)
        scores[name] = genrec.evaluate(model, small_split).metrics["ndcg@10"]
    assert scores["ease"] > 1.5 * scores["popularity"]
    assert scores["itemknn"] > 1.3 * scores["popularity"]


def test_order_carries_signal(small_split):
    """The planted successor pattern is directional: a first-order Markov chain on the last
    history item hits the test item more often forwards than with its edges reversed."""
    train = small_split.train
    n = train.n_items + 1
    seqs = [s for s in train.sequences() if len(s) > 1]
    prev = np.concatenate([s[:-1] for s in seqs])
    nxt = np.concatenate([s[1:] for s in seqs])
    forward = np.zeros((n, n))
    np.add.at(forward, (prev, nxt), 1.0)
    history = small_split.test.history.sequences()
    targets = small_split.test.targets

    def hit_rate(M: np.ndarray) -> float:
        hits = 0
        for row, user in enumerate(small_split.test.users):
            scores = M[history[user][-1]].copy()
            scores[history[user]] = -1.0
            scores[0] = -1.0
            top = np.argsort(-scores, kind="stable")[:10]
            hits += targets[row, top].sum() > 0
        return hits / len(small_split.test.users)

    assert hit_rate(forward) > 1.3 * hit_rate(forward.T)


def test_parquet_round_trip_through_the_loader(tmp_path):
    pytest.importorskip("pyarrow")
    df = synthesize(60, 40, mean_length=6, seed=1)
    path = write_parquet(df, tmp_path / "sub" / "synth.parquet", row_group_size=50)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(path).num_row_groups == -(-len(df) // 50)
    ds = genrec.load_dataset("parquet", data_dir=str(path))
    assert ds.n_interactions == len(df)
    assert ds.n_users == df["user_id"].nunique() and ds.n_items == df["item_id"].nunique()
    assert ds.has_timestamps
    with pytest.raises(ConfigError, match="row_group_size"):
        write_parquet(df, tmp_path / "x.parquet", row_group_size=0)


def test_cli_synth_writes_parquet(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    out = tmp_path / "s.parquet"
    args = ["datasets", "synth", "--users", "30", "--items", "20", "--mean-length", "5"]
    assert main([*args, "--zipf", "0.8", "--seed", "2", "--out", str(out)]) == 0
    assert "interactions" in capsys.readouterr().out
    written = pd.read_parquet(out)
    pd.testing.assert_frame_equal(written, synthesize(30, 20, 5, 0.8, seed=2))
    assert main(["datasets", "synth", "--users", "30", "--out", str(out)]) == 2
    assert "--items" in capsys.readouterr().err
