"""Semantic-ID tokenizers: k-means, residual levels, balanced trees, collisions, RQ-VAE."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genrec.errors import ConfigError, DataValidationError, NotFittedError, UnknownNameError
from genrec.tokenizers import (
    HKMeansTokenizer,
    ItemCodebook,
    RandomTokenizer,
    RKMeansTokenizer,
    RQVAEConfig,
    RQVAETokenizer,
    deduplicate,
    get_tokenizer,
    kmeans,
    list_tokenizers,
)
from genrec.tokenizers.rkmeans import balanced_assign
from genrec.tokenizers.rqvae import RQVAENetwork, rqvae_losses


def _padded(x: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x) + 1, x.shape[1]), dtype=np.float32)
    out[1:] = x
    return out


def _blobs(n_per: int = 40, k: int = 5, d: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10.0, size=(k, d))
    labels = np.repeat(np.arange(k), n_per)
    x = centers[labels] + rng.normal(scale=0.3, size=(len(labels), d))
    return x.astype(np.float32), labels


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(1)
    return _padded(rng.normal(size=(300, 16)).astype(np.float32))


def test_registry():
    assert {"rkmeans", "hkmeans", "rqvae", "random"} <= set(list_tokenizers())
    assert get_tokenizer("rkmeans") is RKMeansTokenizer
    with pytest.raises(UnknownNameError, match="Did you mean 'rqvae'"):
        get_tokenizer("rqvea")


def test_kmeans_recovers_separable_blobs():
    x, labels = _blobs()
    centers, found = kmeans(x, 5, seed=3)
    assert centers.shape == (5, 8)
    assert _same_partition(found.numpy(), labels)


def test_rkmeans_levels_reduce_reconstruction_error(vectors):
    tok = RKMeansTokenizer(n_levels=3, codebook_size=8)
    cb = tok.fit(vectors)
    x = vectors[1:]
    errors = []
    for level in range(1, 4):
        partial = RKMeansTokenizer(n_levels=level, codebook_size=8)
        partial.fit(vectors)
        recon = partial.reconstruct(partial.encode(x))
        errors.append(float(((recon - x) ** 2).sum(1).mean()))
    assert errors[0] > errors[1] > errors[2]
    assert float(((x**2).sum(1)).mean()) > errors[0]
    assert cb.n_levels >= 3 and cb.codebook_sizes[:3] == [8, 8, 8]


def test_rkmeans_first_level_recovers_blobs():
    x, labels = _blobs()
    cb = RKMeansTokenizer(n_levels=2, codebook_size=5, seed=3).fit(_padded(x))
    assert _same_partition(cb.codes[1:, 0], labels)


@pytest.mark.parametrize("name", ["rkmeans", "hkmeans", "random"])
def test_encode_of_training_vector_equals_its_code(vectors, name):
    tok = get_tokenizer(name)(codebook_size=6, n_levels=3)
    cb = tok.fit(vectors)
    np.testing.assert_array_equal(tok.encode(vectors[1:]), cb.codes[1:, :3])
    np.testing.assert_array_equal(tok.encode(vectors[5:9]), cb.codes[5:9, :3])


def test_hkmeans_balanced_splits(vectors):
    k = 4
    tok = HKMeansTokenizer(n_levels=3, codebook_size=k, dedup=False)
    codes = tok.fit(vectors).codes[1:]
    for level in range(3):
        prefixes = {tuple(p) for p in codes[:, :level]}
        for prefix in prefixes:
            members = (codes[:, :level] == np.array(prefix, dtype=np.int64)).all(1)
            if members.sum() <= k:
                continue  # a small node gives each item its own child
            sizes = np.bincount(codes[members, level], minlength=k)
            assert sizes.max() - sizes.min() <= 1, (level, prefix, sizes)
    # a new vector near a training vector routes down the tree like it
    new = tok.encode(vectors[1:2] + 1e-4)
    assert new.shape == (1, 3) and (new[0, :2] == codes[0, :2]).all()


def test_balanced_assign_capacities():
    rng = np.random.default_rng(0)
    dist = rng.random((23, 5))
    dist[:, 0] = 0.0  # everyone prefers cluster 0
    sizes = np.bincount(balanced_assign(dist, 5), minlength=5)
    assert sorted(sizes.tolist()) == [4, 4, 5, 5, 5]


def test_collisions_unique_and_minimal():
    codes = np.array([[0, 1], [0, 1], [2, 2], [0, 1], [2, 2], [3, 0]])
    out, extra = deduplicate(codes)
    assert extra == 3  # the largest group
    assert out.shape == (6, 3) and len(np.unique(out, axis=0)) == 6
    assert out[:, 2].tolist() == [0, 1, 0, 2, 1, 0]  # rank within group, item order
    same, none = deduplicate(np.array([[0], [1]]))
    assert none == 0 and same.shape == (2, 1)


def test_tokenizer_dedup_level_and_stats():
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 3 distinct vectors, 4 copies each
    cb = RKMeansTokenizer(n_levels=2, codebook_size=3).fit(_padded(x))
    assert cb.is_unique() and cb.n_levels == 3 and cb.codebook_sizes[2] == 4
    stats = cb.stats()
    assert stats["collision_rate_before"] == 1.0 and stats["collision_rate"] == 0.0
    assert stats["max_collision_group_before"] == 4
    assert stats["levels"][0]["utilisation"] == 1.0
    raw = RKMeansTokenizer(n_levels=2, codebook_size=3, dedup=False).fit(_padded(x))
    assert raw.n_levels == 2 and not raw.is_unique()


def test_random_control_shape(vectors):
    cb = RandomTokenizer(n_levels=4, codebook_size=7, seed=1).fit(vectors)
    assert cb.codes.shape[0] == len(vectors) and cb.codebook_sizes[:4] == [7] * 4
    assert cb.codes[1:].min() >= 0 and cb.codes[1:, :4].max() < 7 and cb.is_unique()
    other = RandomTokenizer(n_levels=4, codebook_size=7, seed=2).fit(vectors)
    assert (cb.codes[1:, :4] != other.codes[1:, :4]).any()


def _structured(n: int = 400, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(4, d))
    x = rng.normal(size=(n, 4)) @ basis  # a 4-dim subspace, unit norm like text embeddings
    return _padded((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))


TINY = {
    "hidden_dims": (32,),
    "latent_dim": 8,
    "n_levels": 2,
    "codebook_size": 8,
    "batch_size": 64,
    "lr": 3e-3,
    "dead_code_every": 5,
}


def test_rqvae_trains():
    x = _structured()
    tok = RQVAETokenizer(RQVAEConfig(epochs=15, **TINY))
    cb = tok.fit(x)
    hist = cb.meta["loss_history"]
    assert hist[-1]["loss"] < 0.6 * hist[0]["loss"]
    assert hist[-1]["reconstruction"] < 0.4 * hist[0]["reconstruction"]
    assert all(level["utilisation"] >= 0.75 for level in cb.stats()["levels"][:2])
    assert cb.is_unique()
    np.testing.assert_array_equal(tok.encode(x[1:]), cb.codes[1:, :2])
    assert tok.reconstruct(cb.codes[1:]).shape == (400, 24)


def test_rqvae_letter_terms_change_the_loss():
    x = torch.from_numpy(_structured(64)[1:])
    cf = torch.randn(64, 6)
    torch.manual_seed(0)
    net = RQVAENetwork(24, (32,), 8, 2, 8)
    proj = torch.nn.Linear(6, 8)
    base = RQVAEConfig(**TINY)
    plain = rqvae_losses(net, x, base)
    letter = rqvae_losses(
        net, x, base.replace(cf_weight=1.0, diversity_weight=1.0), cf=cf, cf_proj=proj
    )
    value = {k: float(v.detach()) for k, v in letter.items() if k != "out"}
    assert float(plain["alignment"]) == 0.0 and value["alignment"] > 0.0
    assert value["diversity"] > 0.0
    assert value["loss"] > float(plain["loss"].detach())
    letter["loss"].backward()
    assert proj.weight.grad is not None and net.codebooks.grad is not None
    # fit with the regularisers on runs end to end and needs collaborative vectors
    tok = RQVAETokenizer(epochs=2, cf_weight=0.5, diversity_weight=0.1, **TINY)
    with pytest.raises(ConfigError, match="collaborative"):
        tok.fit(_structured(64))
    cb = tok.fit(_structured(64), collaborative=np.random.default_rng(0).normal(size=(65, 6)))
    assert cb.n_items == 64


def test_rqvae_paper_config():
    cfg = RQVAEConfig.paper()
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("adagrad", 0.4, 1024, 20_000)
    assert (cfg.n_levels, cfg.codebook_size, cfg.latent_dim, cfg.beta) == (3, 256, 32, 0.25)
    assert cfg.hidden_dims == (512, 256, 128)
    with pytest.raises(ConfigError):
        RQVAEConfig(beta=-1)


def test_shape_and_dtype_errors(vectors):
    tok = RKMeansTokenizer(codebook_size=4, n_levels=2)
    with pytest.raises(NotFittedError):
        tok.encode(vectors[1:])
    with pytest.raises(DataValidationError, match="2-D"):
        tok.fit(np.zeros(10))
    with pytest.raises(DataValidationError, match="numeric"):
        tok.fit(np.array([["a", "b"]] * 4))
    with pytest.raises(DataValidationError, match="NaN"):
        tok.fit(np.full((5, 3), np.nan))
    with pytest.raises(DataValidationError, match="at least 2 items"):
        tok.fit(np.zeros((2, 3)))
    with pytest.raises(DataValidationError, match="item ids"):
        tok.fit(vectors, item_ids=[1, 2])
    tok.fit(vectors)
    with pytest.raises(DataValidationError, match="dimension 3"):
        tok.encode(np.zeros((2, 3)))
    with pytest.raises(ConfigError):
        RKMeansTokenizer(codebook_size=0)
    with pytest.raises(ConfigError):
        HKMeansTokenizer(codebook_size=1)


def test_duplicate_item_ids_are_rejected(vectors, tmp_path, monkeypatch):
    ids = ["a", "b", "a", "c", "b"] + [f"i{i}" for i in range(len(vectors) - 6)]

    def no_training(self, x, **kwargs):
        raise AssertionError("trained before checking the ids")

    with monkeypatch.context() as m:
        m.setattr(RKMeansTokenizer, "_fit", no_training)
        with pytest.raises(DataValidationError, match=r"duplicate item ids .*2 ids .*'a', 'b'"):
            RKMeansTokenizer(codebook_size=4, n_levels=2).fit(vectors, item_ids=ids)
    with pytest.raises(DataValidationError, match="duplicate item ids"):
        ItemCodebook(np.zeros((4, 2), dtype=np.int64), [2, 2], ["x", "y", "x"])
    # a saved artifact edited by hand to repeat an id fails to load with the same message
    good = [f"i{i}" for i in range(1, len(vectors))]
    RKMeansTokenizer(codebook_size=4, n_levels=2).fit(vectors, item_ids=good).save(tmp_path / "cb")
    meta_file = tmp_path / "cb" / "codebook.json"
    meta = json.loads(meta_file.read_text())
    meta["item_ids"][1] = meta["item_ids"][0]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(DataValidationError, match="duplicate item ids"):
        ItemCodebook.load(tmp_path / "cb")


def test_codebook_save_load(vectors, tmp_path):
    ids = [f"i{i}" for i in range(1, len(vectors))]
    cb = HKMeansTokenizer(codebook_size=4, n_levels=3).fit(vectors, item_ids=ids)
    cb.save(tmp_path / "cb")
    back = ItemCodebook.load(tmp_path / "cb")
    np.testing.assert_array_equal(back.codes, cb.codes)
    assert back.codebook_sizes == cb.codebook_sizes and back.item_ids == ids
    assert back.meta["tokenizer"] == "hkmeans"
    assert back.stats()["collision_rate_before"] == cb.meta["collision_rate_before"]


def test_balanced_rkmeans_spreads_isotropic_residuals():
    # Unit vectors in many dimensions: plain residual k-means leaves most items in one
    # level-2 cluster; the balanced variant gives every cluster the same number of items.
    gen = np.random.default_rng(0)
    x = gen.normal(size=(400, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    plain = RKMeansTokenizer(n_levels=2, codebook_size=8, dedup=False).fit(_padded(x))
    bal = RKMeansTokenizer(n_levels=2, codebook_size=8, dedup=False, balanced=True).fit(_padded(x))
    for level in range(2):
        sizes = np.bincount(bal.codes[1:, level], minlength=8)
        assert sizes.max() - sizes.min() <= 1
    n_plain = len(np.unique(plain.codes[1:, :2], axis=0))
    n_bal = len(np.unique(bal.codes[1:, :2], axis=0))
    assert n_bal >= n_plain
