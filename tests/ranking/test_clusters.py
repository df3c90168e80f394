"""Item interest clusters (genrec.ranking.clusters)."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.data.splitting import leave_one_out
from genrec.errors import ConfigError, DataValidationError
from genrec.ranking.clusters import (
    ItemClusters,
    cluster_quality,
    collaborative_item_vectors,
    fit_item_clusters,
)
from genrec.testing import make_synthetic_dataset
from genrec.tokenizers.codebook import ItemCodebook


@pytest.fixture(scope="module")
def ds():
    # 4 item clusters of 10 items (genre "Cluster<c>"), users stay in their cluster
    return make_synthetic_dataset(n_users=120, n_items=40, seq_len=8, seed=0)


def _truth(ds):
    return np.array([-1] + [int(g[-1]) for g in ds.items.sort_values("item_id")["genres"]])


def _agreement(labels, truth):
    """Share of item pairs on which two labelings agree (same vs different cluster)."""
    keep = labels[1:] >= 0
    a, b = labels[1:][keep], truth[1:][keep]
    same_a, same_b = a[:, None] == a[None, :], b[:, None] == b[None, :]
    return float((same_a == same_b).mean())


def test_collaborative_clusters_recover_the_structure(ds):
    cl = fit_item_clusters(ds, 4, source="collaborative", dim=8, seed=0)
    assert cl.labels[0] == -1 and cl.n_clusters == 4
    assert _agreement(cl.labels, _truth(ds)) > 0.95
    sizes = cl.sizes()
    assert sizes.max() - sizes.min() <= 1  # balanced
    q = cluster_quality(cl, ds)
    assert q["category_purity"] > 0.95 > q["category_purity_random"]
    assert q["category_nmi"] > 0.9 > q["category_nmi_random"]
    assert q["same_cluster_next"] > 0.95 and q["same_cluster_next_chance"] < 0.5
    assert q["coverage_items"] == 1.0 and q["size_entropy_ratio"] > 0.99


def test_same_seed_same_clusters_and_names(ds):
    a = fit_item_clusters(ds, 4, seed=3)
    b = fit_item_clusters(ds, 4, seed=3)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.names == b.names
    assert all("Cluster" in n for n in a.names)  # the majority category leads the name


def test_items_without_interactions_get_no_collaborative_cluster(ds):
    split = leave_one_out(ds)
    vec, has = collaborative_item_vectors(split.train, dim=8)
    assert vec.shape == (ds.n_items + 1, 8) and not has[0]
    cold = np.bincount(split.train.item_idx, minlength=ds.n_items + 1) == 0
    cl = fit_item_clusters(split.train, 4)
    assert (cl.labels[cold] == -1).all() and (cl.labels[~cold][1:] >= 0).all()
    q = cluster_quality(cl, split.train)
    assert q["coverage_items"] == pytest.approx(1 - cold[1:].mean())
    assert q["coverage_interactions"] == 1.0


def test_text_and_both_sources(ds):
    text = fit_item_clusters(ds, 4, source="text", text_encoder="tfidf", seed=0)
    # titles say "(cluster c)": text clusters follow them
    assert _agreement(text.labels, _truth(ds)) > 0.9
    both = fit_item_clusters(ds, 4, source="both", text_encoder="tfidf", seed=0)
    assert (both.labels[1:] >= 0).all()


def test_plain_kmeans_and_explicit_vectors(ds):
    vec = np.zeros((ds.n_items + 1, 2), dtype=np.float32)
    vec[1:21] = [1.0, 0.0]
    vec[21:] = [0.0, 1.0]
    vec[40] = 0.0  # no vector: no cluster
    cl = fit_item_clusters(ds, 2, vectors=vec, balanced=False, names=False)
    assert cl.source == "vectors" and cl.method == "kmeans" and cl.names is None
    assert cl.labels[40] == -1
    assert len(set(cl.labels[1:21])) == 1 and len(set(cl.labels[21:40])) == 1
    assert cl.labels[1] != cl.labels[21]


def test_hierarchical_two_levels(ds):
    cl = fit_item_clusters(ds, 2, levels=2, seed=0)
    assert cl.method == "hkmeans" and cl.parents is not None
    assert cl.n_clusters == 4 and sorted(set(cl.parents.tolist())) == [0, 1]
    coarse = cl.coarse()
    assert coarse.n_clusters == 2
    # every fine cluster lies inside one coarse cluster
    for c in range(cl.n_clusters):
        assert len(set(coarse.labels[cl.members(c)])) == 1
    with pytest.raises(ConfigError, match="two-level"):
        coarse.coarse()


def test_from_codebook_and_roundtrip(ds, tmp_path):
    codes = np.full((ds.n_items + 1, 2), -1)
    codes[1:, 0] = np.arange(ds.n_items) // 10
    codes[1:, 1] = np.arange(ds.n_items) % 10
    cb = ItemCodebook(codes, [4, 10], ds.item_map.to_list())
    cl = ItemClusters.from_codebook(cb, ds)
    assert cl.source == "semantic-id" and cl.n_clusters == 4
    np.testing.assert_array_equal(cl.labels, _truth(ds))
    path = cl.save(tmp_path / "c.json")
    again = ItemClusters.load(path)
    np.testing.assert_array_equal(again.labels, cl.labels)
    with pytest.raises(FileExistsError):
        cl.save(path)


def test_bad_inputs(ds):
    with pytest.raises(ConfigError):
        fit_item_clusters(ds, 1)
    with pytest.raises(ConfigError):
        fit_item_clusters(ds, 4, levels=3)
    with pytest.raises(ConfigError):
        fit_item_clusters(ds, 4, source="magic")
    with pytest.raises(DataValidationError):
        fit_item_clusters(ds, 4, vectors=np.zeros((3, 2)))
    with pytest.raises(DataValidationError):
        ItemClusters(np.array([-1, 5]), 2, "x", "y")
