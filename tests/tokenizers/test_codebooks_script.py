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


def test_collaborative_vectors_reach_only_the_aligned_tokenizers(
    tmp_path: Path, benchmark_script, monkeypatch
) -> None:
    from genrec.tokenizers import build

    ds = load_dataset("movielens-small")
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(ds.n_items, 8)))
    seen: dict[str, object] = {}
    real_fit = build.fit_codebook

    def spy(name, *args, collaborative=None, **kw):
        seen[kw.get("cf_weight", name)] = collaborative
        return real_fit(name, *args, collaborative=collaborative, **kw)

    monkeypatch.setattr(build, "fit_codebook", spy)
    out = tmp_path / "cb"
    argv = ["--dataset", "movielens-small", "--vectors", str(tmp_path / "v.npy"),
            "--tokenizers", "rkmeans", "--variant", "letter=rqvae", "--set", "letter.epochs=2",
            "--set", "letter.cf_weight=0.5", "--set", "rkmeans.n_iter=3", "--codebook-size", "8",
            "--collaborative", "als", "--out", str(out)]  # fmt: skip
    assert benchmark_script("tiger_codebooks").main(argv) == 0
    assert seen["rkmeans"] is None  # cf_weight 0 / not an aligning tokenizer: no vectors
    cf = seen[0.5]
    assert isinstance(cf, np.ndarray) and cf.shape[0] == ds.n_items + 1
    assert not cf[0].any()  # row 0 is padding
    assert (np.abs(cf[1:]).sum(1) > 0).mean() > 0.9  # items with training interactions
    stats = json.loads((out / "stats.json").read_text())["codebooks"]
    assert "collaborative" not in stats["rkmeans"]
    assert stats["letter"]["collaborative"] == "als on the leave-one-out training split"
    ItemCodebook.load(out / "letter").check_catalogue(ds.item_map.to_list())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "rqvae.cf_weight=0.5"], "give --collaborative MODEL"),
        (["--collaborative", "als"], "no tokenizer here sets cf_weight > 0"),
        (["--set", "rqvae.cf_weight=0.5", "--collaborative", "nope"], "--collaborative: "),
    ],
)
def test_collaborative_mistakes_stop_before_fitting(
    tmp_path: Path, benchmark_script, extra, message
) -> None:
    script = benchmark_script("tiger_codebooks")
    argv = ["--dataset", "movielens-small", "--vectors", "x.npy", "--tokenizers", "rqvae",
            "--out", str(tmp_path), *extra]  # fmt: skip
    with pytest.raises(SystemExit, match=message):
        script.main(argv)


def test_vectors_from_a_fitted_model(tmp_path: Path, benchmark_script, capsys) -> None:
    ds = load_dataset("movielens-small")
    out = tmp_path / "cb"
    argv = ["--dataset", "movielens-small", "--vectors-from", "als", "--tokenizers", "rkmeans",
            "--set", "rkmeans.n_iter=3", "--codebook-size", "8", "--out", str(out)]  # fmt: skip
    assert benchmark_script("tiger_codebooks").main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["vectors"] == "als item embeddings"
    assert "movielens-small/als.yaml" in capsys.readouterr().out  # the shipped preset
    assert stats["vector_dim"] == 64  # its factors
    ItemCodebook.load(out / "rkmeans").check_catalogue(ds.item_map.to_list())
    with pytest.raises(SystemExit):  # one source of vectors only
        benchmark_script("tiger_codebooks").main([*argv, "--vectors", "x.npy"])


def test_lightgcn_vectors_appended_and_cached(tmp_path: Path, benchmark_script, capsys) -> None:
    ds = load_dataset("movielens-small")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "v.npy", rng.normal(size=(ds.n_items, 8)).astype(np.float32))
    out, cache = tmp_path / "cb", tmp_path / "cache"
    argv = ["--dataset", "movielens-small", "--vectors", str(tmp_path / "v.npy"),
            "--append-vectors-from", "lightgcn", "--append-weight", "2",
            "--model-set", "lightgcn.epochs=1", "--model-set", "lightgcn.embedding_dim=4",
            "--model-set", "lightgcn.device=cpu",
            "--vectors-cache", str(cache), "--tokenizers", "rkmeans",
            "--set", "rkmeans.n_iter=3", "--codebook-size", "8", "--out", str(out)]  # fmt: skip
    assert benchmark_script("tiger_codebooks").main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["vector_dim"] == 8 + 4  # text block + LightGCN block
    assert "lightgcn item embeddings" in stats["codebooks"]["rkmeans"]["vectors"]
    proxy = stats["codebooks"]["rkmeans"]["proxy"]
    assert proxy["n_transitions"] > 0 and 0 <= proxy["next_shares_l1"] <= 1
    assert proxy["lift_l1"] > 0 and "heldout_l1_bits_saved" in proxy
    assert len(list(cache.glob("*.npy"))) == 1
    capsys.readouterr()
    assert benchmark_script("tiger_codebooks").main(argv) == 0  # second run: cached vectors
    assert "vectors from" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no flag here fits"):
        benchmark_script("tiger_codebooks").main([*argv, "--model-set", "sasrec.epochs=1"])
    with pytest.raises(SystemExit, match="unknown config fields"):
        benchmark_script("tiger_codebooks").main([*argv, "--model-set", "lightgcn.nope=1"])


def test_concat_normalized(benchmark_script) -> None:
    concat = benchmark_script("tiger_codebooks").concat_normalized
    a = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    b = np.array([[0.0], [2.0], [0.0]])
    out = concat([a, b], [1.0, 0.5])
    np.testing.assert_allclose(out, [[0, 0, 0], [0.6, 0.8, 0.5], [1, 0, 0]])


def test_cooccurrence_pairs_reach_the_tokenizer(tmp_path: Path, benchmark_script) -> None:
    ds = load_dataset("movielens-small")
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(ds.n_items, 8)))
    out = tmp_path / "cb"
    argv = ["--dataset", "movielens-small", "--vectors", str(tmp_path / "v.npy"),
            "--tokenizers", "rqvae", "--variant", "co=rqvae", "--set", "rqvae.epochs=1",
            "--set", "co.epochs=1", "--set", "co.cooc_weight=1",
            "--set", "co.cooc_target=quantized", "--codebook-size", "8",
            "--out", str(out)]  # fmt: skip
    assert benchmark_script("tiger_codebooks").main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())["codebooks"]
    assert "cooccurrence" not in stats["rqvae"]
    assert "pairs up to 1 apart" in stats["co"]["cooccurrence"]
    cb = ItemCodebook.load(out / "co")
    assert cb.n_levels == 4 and cb.is_unique()
    assert cb.meta["loss_history"][-1]["cooccurrence"] > 0
    # the collaborative target needs --collaborative
    with pytest.raises(SystemExit, match="give --collaborative"):
        benchmark_script("tiger_codebooks").main(
            [*argv[:-2], "--set", "co.cooc_target=collaborative", "--out", str(out)]
        )
