"""benchmarks/bench_beam_search.py without transformers: the genrec side on a small code
table (valid top-10 lists) and the ``--device`` check."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
import torch


def _small_data(bench, users: int = 6) -> dict[str, np.ndarray]:
    from genrec.models.tiger import random_codebook

    cb = random_codebook(60, 3, 8, 0, None)
    rng = np.random.default_rng(0)
    n = cb.codes.shape[0] - 1
    return {
        "codes": cb.codes,
        "sizes": np.asarray(cb.codebook_sizes),
        "hist": rng.integers(1, n + 1, size=(users, bench.MAX_ITEMS)),
        "users": rng.integers(0, bench.USER_BUCKETS, size=users),
    }


def test_genrec_side_returns_valid_top10_lists(benchmark_script) -> None:
    bench = benchmark_script("bench_beam_search")
    data = _small_data(bench)
    args = argparse.Namespace(threads=1, seed=0, batch_size=4, device="cpu")
    res = bench.run_genrec(data, args)
    assert res["users"] == 6
    assert res["valid_lists"] == 1.0  # 10 distinct real items for every user


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_genrec_side_on_a_gpu(benchmark_script) -> None:
    bench = benchmark_script("bench_beam_search")
    args = argparse.Namespace(threads=1, seed=0, batch_size=4, device="cuda")
    assert bench.run_genrec(_small_data(bench), args)["valid_lists"] == 1.0


@pytest.mark.parametrize(
    ("device", "message"),
    [("tpu-ish", "not a torch device"), ("meta", "only cpu and cuda")]
    + ([] if torch.cuda.is_available() else [("cuda", "CUDA is not available")]),
)
def test_bad_device_is_a_clear_error(benchmark_script, monkeypatch, capsys, device, message):
    bench = benchmark_script("bench_beam_search")
    monkeypatch.setattr(sys, "argv", ["bench_beam_search.py", "--device", device])
    with pytest.raises(SystemExit) as exc:
        bench.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--device" in err and message in err


def test_padded_histories_are_sorted_trimmed_and_give_valid_lists(benchmark_script) -> None:
    bench = benchmark_script("bench_beam_search")
    data = _small_data(bench, users=8)
    for r, n in enumerate([3, 20, 1, 7, 0, 12, 5, 2]):  # left-padded real lengths
        data["hist"][r, : bench.MAX_ITEMS - n] = 0
    order = bench.by_length(data["hist"])
    assert (data["hist"][order] > 0).sum(1).tolist() == [0, 1, 2, 3, 5, 7, 12, 20]
    short = data["hist"][order[:4]]
    assert bench.trim_columns(short).shape == (4, 3)  # 17 all-padding columns dropped
    np.testing.assert_array_equal(bench.trim_columns(short), short[:, -3:])
    assert bench.trim_columns(np.zeros((2, 5), np.int64)).shape == (2, 1)  # one column kept
    args = argparse.Namespace(threads=1, seed=0, batch_size=3, device="cpu")
    res = bench.run_genrec(data, args)
    assert res["users"] == 8 and res["valid_lists"] == 1.0


def test_beauty_histories_skip_without_data(benchmark_script, monkeypatch, capsys, tmp_path):
    bench = benchmark_script("bench_beam_search")
    argv = ["bench_beam_search.py", "--histories", "beauty", "--data-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()  # returns: nothing to measure
    assert "skipped: no Amazon Beauty data" in capsys.readouterr().out


def test_beauty_histories_are_the_test_histories(benchmark_script, shared_data) -> None:
    from genrec.data.loaders import load_dataset
    from genrec.data.splitting import leave_one_out

    bench = benchmark_script("bench_beam_search")
    hist, item_ids = bench.beauty_histories(shared_data / "amazon-beauty")
    ds = load_dataset("amazon-beauty", data_dir=shared_data / "amazon-beauty")
    assert hist.shape == (ds.n_users, bench.MAX_ITEMS) and item_ids == ds.item_map.to_list()
    test = leave_one_out(ds).test  # what the evaluator gives the model at test time
    seen, full = test.history.histories(), ds.histories()
    for r in (0, 99, len(test.users) - 1):
        u = int(test.users[r])
        seq = seen.seq_items[seen.seq_indptr[u] : seen.seq_indptr[u + 1]][-bench.MAX_ITEMS :]
        whole = full.seq_items[full.seq_indptr[u] : full.seq_indptr[u + 1]]
        np.testing.assert_array_equal(whole[:-1][-bench.MAX_ITEMS :], seq)  # all but the last
        row = hist[r]
        np.testing.assert_array_equal(row[row > 0], seq)  # right-aligned, left-padded
        assert (row[: bench.MAX_ITEMS - len(seq)] == 0).all()


def test_beauty_histories_time_the_same_users_on_both_sides(benchmark_script, monkeypatch, capsys):
    bench = benchmark_script("bench_beam_search")
    argv = ["bench_beam_search.py", "--histories", "beauty", "--users", "10", "--hf-users", "20"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        bench.main()
    assert exc.value.code == 2 and "same users on both sides" in capsys.readouterr().err
