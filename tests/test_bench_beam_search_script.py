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
