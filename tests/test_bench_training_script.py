"""benchmarks/bench_training.py on tiny synthetic data: configs, the useful-FLOP count, one
measured model, the table, and the clean skip without the Beauty folder."""

from __future__ import annotations

import argparse
import sys

import pytest

from genrec.data.splitting import leave_one_out
from genrec.testing import make_synthetic_dataset


def test_configs_follow_rectools_presets_and_overrides(benchmark_script) -> None:
    bench = benchmark_script("bench_training")
    sas = bench.model_config("sasrec", ["sasrec.lr=0.003", "*.bucket_batches=50", "hstu.x=1"])
    assert sas["loss"] == "ce" and sas["dropout"] == 0.2 and sas["batch_size"] == 128
    assert sas["lr"] == 0.003 and sas["bucket_batches"] == 50 and "x" not in sas
    gru = bench.model_config("gru4rec", [])
    assert gru["loss"] == "ce" and "epochs" not in gru and "patience" not in gru  # preset


def test_useful_flops_count_the_output_layer_without_padding(benchmark_script) -> None:
    import genrec

    bench = benchmark_script("bench_training")
    split = leave_one_out(make_synthetic_dataset())
    model = genrec.get_model("sasrec")(
        embedding_dim=16, n_blocks=1, max_seq_len=20, epochs=1, progress=False, device="cpu"
    ).fit(split.train)
    rows = int(model.training_history_[0]["sequences"])
    flop = bench.useful_flops(model, split.train, sample=1000, rows=rows, seed=0)
    # every user trains on 5 positions (6 training items). Per position and forward +
    # backward: the output layer 6 D V, one block's linear layers 6 x (3 + 1 + 2) D^2 (QKV,
    # projection, FFN of width D); the attention products are not counted on the CPU. A
    # window padded to max_seq_len 20 would count 4x as much.
    d, n_pos = 16, 5 * rows
    hand = n_pos * (6 * d * model.n_items + 36 * d * d)
    assert flop == pytest.approx(hand, rel=0.1), (flop, hand)
    assert model.config.batch_size == 128  # restored


def test_measure_one_model_and_print(benchmark_script, capsys) -> None:
    bench = benchmark_script("bench_training")
    split = leave_one_out(make_synthetic_dataset())
    args = argparse.Namespace(seed=0, no_quality=False, flop_sample=16)
    cfg = {"embedding_dim": 16, "max_seq_len": 8, "epochs": 2, "device": "cpu"}
    res = bench.measure_genrec("gru4rec", cfg, split, args)
    assert len(res["epochs"]) == 2 and res["sequences_per_epoch"] == 60
    assert res["useful_flop_per_epoch"] > 0 and res["matmul_flops_per_second"] > 0
    assert 0.0 <= res["recall@10"] <= 1.0 and 0.0 <= res["ndcg@10"] <= 1.0
    bench.print_table([res])
    out = capsys.readouterr().out
    assert "gru4rec genrec" in out and "load" in out


def test_missing_data_is_a_clean_skip(benchmark_script, monkeypatch, capsys, tmp_path) -> None:
    bench = benchmark_script("bench_training")
    missing = tmp_path / "nowhere"
    monkeypatch.setattr(sys, "argv", ["bench_training.py", "--data-dir", str(missing)])
    bench.main()
    assert "skipped" in capsys.readouterr().out


def test_unknown_model_is_an_error(benchmark_script, monkeypatch) -> None:
    bench = benchmark_script("bench_training")
    monkeypatch.setattr(sys, "argv", ["bench_training.py", "--models", "sasrec,nope"])
    with pytest.raises(SystemExit) as exc:
        bench.main()
    assert exc.value.code == 2
