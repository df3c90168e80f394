"""benchmarks/tiger_codebooks.py: codebooks fitted ahead of TIGER training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genrec.data.loaders import load_dataset
from genrec.tokenizers import ItemCodebook


def test_fits_saves_and_reports(tmp_path: Path, benchmark_script) -> None:
    ds = load_dataset("movielens-small")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "v.npy", rng.normal(size=(ds.n_items, 16)).astype(np.float32))
    out = tmp_path / "cb"
    argv = ["--dataset", "movielens-small", "--vectors", str(tmp_path / "v.npy"),
            "--tokenizers", "hkmeans", "--variant", "small=rkmeans",
            "--set", "small.n_iter=5", "--codebook-size", "16", "--out", str(out)]  # fmt: skip
    assert benchmark_script("tiger_codebooks").main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["codebooks"]) == {"hkmeans", "small"}
    small = stats["codebooks"]["small"]
    assert small["tokenizer"] == "rkmeans" and small["options"]["balanced"] is True
    for name in ("hkmeans", "small"):
        cb = ItemCodebook.load(out / name)
        cb.check_catalogue(ds.item_map.to_list())
        assert cb.n_levels == 4 and cb.is_unique()
        assert stats["codebooks"][name]["n_coded_items"] == ds.n_items


def test_rejects_sets_for_unfitted_names(tmp_path: Path, benchmark_script) -> None:
    script = benchmark_script("tiger_codebooks")
    with pytest.raises(SystemExit, match="not fitted here"):
        script.main(["--dataset", "movielens-small", "--vectors", "x.npy",
                     "--tokenizers", "hkmeans", "--set", "rqvae.epochs=3",
                     "--out", str(tmp_path)])  # fmt: skip
