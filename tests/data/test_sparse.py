"""The sparse regime (genrec.data.sparse): truncated histories and sparse-user evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genrec.bench.benchmark import BenchmarkSpec, run_benchmark
from genrec.bench.suites import Suite, SuiteMode, SuiteModel, run_suite
from genrec.cli import main
from genrec.data.sparse import keep_last, limit_history
from genrec.data.splitting import leave_one_out, temporal_split
from genrec.errors import ConfigError
from genrec.testing import make_synthetic_dataset


@pytest.fixture(scope="module")
def ds():
    return make_synthetic_dataset(n_users=50, n_items=40, seq_len=8, seed=2, noise=0.1)


def _sequences(dataset):
    return {u: s.tolist() for u, s in enumerate(dataset.sequences()) if len(s)}


def test_keep_last_keeps_the_most_recent(ds):
    mask = keep_last(ds, 3)
    kept = ds.subset(mask)
    full, short = _sequences(ds), _sequences(kept)
    assert set(short) == set(full)
    for u, seq in full.items():
        assert short[u] == seq[-3:]


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_last_mode_truncates_train_and_histories(ds, m):
    split = leave_one_out(ds)
    sparse = limit_history(split, m)
    train_full, train = _sequences(split.train), _sequences(sparse.train)
    for u, seq in train_full.items():
        assert train[u] == seq[-m:]
    # validation sees the truncated training data; test sees it plus the validation item
    assert sparse.valid.history is sparse.train
    test_hist = _sequences(sparse.test.history)
    full_test_hist = _sequences(split.test.history)
    for u, seq in full_test_hist.items():
        assert test_hist[u] == seq[-(m + 1) :]  # last m train items + the validation item
    # users, targets and the catalogue are untouched
    np.testing.assert_array_equal(sparse.test.users, split.test.users)
    assert (sparse.test.targets != split.test.targets).nnz == 0
    assert sparse.train.item_map == split.train.item_map
    assert sparse.params["max_history"] == m and sparse.params["history_mode"] == "last"
    assert sparse.params["n_train_dropped"] == split.train.n_interactions - train_n(train)
    # no target leaks into its own stage's history
    seen = sparse.test.history.matrix()[sparse.test.users].multiply(sparse.test.targets)
    full_seen = split.test.history.matrix()[split.test.users].multiply(split.test.targets)
    assert seen.nnz <= full_seen.nnz


def train_n(seqs):
    return sum(len(s) for s in seqs.values())


def test_last_mode_on_temporal_split_drops_only_old_rows(ds):
    split = temporal_split(ds)
    sparse = limit_history(split, 2)
    n_train = np.bincount(sparse.train.user_idx, minlength=ds.n_users + 1)
    assert n_train.max() <= 2
    # the test history = truncated train + the whole validation period
    n_valid_rows = split.test.history.n_interactions - split.train.n_interactions
    assert sparse.test.history.n_interactions == sparse.train.n_interactions + n_valid_rows


def test_users_mode_keeps_data_and_filters_users():
    full = make_synthetic_dataset(n_users=60, seq_len=8, seed=0)
    # even users lose their first 3 interactions: 5 left, 3 of them for training
    pos = np.concatenate([np.arange(c) for c in np.bincount(full.user_idx)[1:]])
    short_user = full.user_idx % 2 == 0
    data = full.subset(~(short_user & (pos < 3)))
    split = leave_one_out(data)
    n_train = np.bincount(split.train.user_idx, minlength=split.train.n_users + 1)
    sparse = limit_history(split, 3, mode="users")
    assert sparse.train is split.train  # the data stay whole
    assert len(sparse.test) == int((n_train[split.test.users] <= 3).sum()) > 0
    assert all(n_train[u] == 3 for u in sparse.test.users)
    assert all(n_train[u] <= 3 for u in sparse.valid.users)
    assert sparse.params["n_test_users_before"] == len(split.test)
    assert len(limit_history(split, 6, mode="users").test) == len(split.test)
    with pytest.raises(Exception, match="at most 2"):
        limit_history(split, 2, mode="users")


def test_bad_arguments(ds):
    split = leave_one_out(ds)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="max_history"):
            limit_history(split, bad)
    with pytest.raises(ConfigError, match="history mode"):
        limit_history(split, 3, mode="first")
    with pytest.raises(ConfigError, match="already limited"):
        limit_history(limit_history(split, 3), 2)


def test_benchmark_spec_records_the_regime(ds):
    spec = BenchmarkSpec(
        dataset="synthetic", models=["popularity", "ease"], max_history=2,
        overrides={"ease": {"l2": 10.0}},
    )  # fmt: skip
    res, _ = run_benchmark(spec, ds)
    assert res["split"]["max_history"] == 2 and res["split"]["history_mode"] == "last"
    assert res["manifest"]["max_history"] == 2
    assert res["manifest"]["history_mode"] == "last"
    full, _ = run_benchmark(BenchmarkSpec(dataset="synthetic", models=["ease"]), ds)
    assert full["manifest"]["max_history"] is None
    assert full["split"]["n_train_interactions"] > res["split"]["n_train_interactions"]


def test_cli_flag(ds, tmp_path):
    path = tmp_path / "inter.csv"
    ds.interactions[["user_id", "item_id", "timestamp"]].to_csv(path, index=False)
    out = tmp_path / "run"
    code = main([
        "benchmark", "--dataset", "csv", "--data-dir", str(path), "--models", "popularity,ease",
        "--max-history", "3", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["split"]["max_history"] == 3
    assert res["manifest"]["max_history"] == 3
    assert "--max-history 3" in res["command"]


def test_suite_runs_sparse(ds):
    suite = Suite(
        name="mini",
        description="cheap",
        models=(SuiteModel("popularity", "classical"), SuiteModel("ease", "classical")),
        modes={"quick": SuiteMode(1, 0.05, 0.0), "full": SuiteMode(1, 0.05, 0.0)},
        protocols=("loo",),
    )
    res = run_suite(suite, ds, dataset_name="synthetic", mode="quick", max_history=3)
    assert res["settings"]["max_history"] == 3
    loo = res["protocols"]["loo"]
    assert loo["split"]["max_history"] == 3
    assert loo["manifest"]["max_history"] == 3
    assert loo["split"]["n_train_interactions"] <= 3 * ds.n_users
