"""benchmarks/bench_autoencoders.py --ab FIELD on the embedded MovieLens-small: both sides
train, their quality and the off/on ratio are printed, and a model without the field is
named, not run."""

from __future__ import annotations

import argparse
import re


def test_ab_trains_both_sides_and_prints_the_ratio(benchmark_script, capsys) -> None:
    bench = benchmark_script("bench_autoencoders")
    args = argparse.Namespace(
        dataset="movielens-small", data_dir=None, models="multvae,ease", epochs=1,
        ab="sparse_input",
    )  # fmt: skip
    bench.ab(args)
    out = capsys.readouterr().out
    rows = re.findall(r"^multvae\s+(off|on)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M)
    assert [r[0] for r in rows] == ["off", "on"]
    assert all(float(r[1]) > 0 and 0.0 <= float(r[3]) <= 1.0 for r in rows)
    assert re.search(r"^multvae\s+sparse_input off / on seconds per epoch: [\d.]+x$", out, re.M)
    assert "ease      (no sparse_input option)" in out
