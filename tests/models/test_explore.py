"""The exploration wrapper (genrec.ranking.explore)."""

from __future__ import annotations

import numpy as np
import pytest

import genrec
from genrec.data.splitting import leave_one_out
from genrec.errors import ConfigError
from genrec.testing import make_synthetic_dataset

TINY = {"base": "ease", "base_config": {"l2": 10.0}, "n_clusters": 4, "window": 5,
        "predictor": "transition"}  # fmt: skip


@pytest.fixture(scope="module")
def split():
    return leave_one_out(make_synthetic_dataset(n_users=80, seed=1))


def _fit(split, **kw):
    return genrec.get_model("explore")(**{**TINY, **kw}).fit(split.train)


def test_share_zero_is_the_base_model(split):
    model = _fit(split, share=0.0)
    base = genrec.get_model("ease")(l2=10.0).fit(split.train)
    users = split.train.user_map.external_ids
    a = model.recommend(users, k=10)
    b = base.recommend(users, k=10)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)


def test_exploration_slots_hold_novel_cluster_items(split):
    model = _fit(split, share=0.3, n_novel=2)
    base = model.base_
    users = split.train.user_map.external_ids
    k, n_exp = 10, 3
    recs = model.recommend(users, k=k).internal_item_ids
    ref = base.recommend(users, k=k).internal_item_ids
    hist = split.train.histories()
    internal = split.train.user_map.to_internal(users)
    novel = model.novel_clusters(hist.batch(internal))  # (U, 2)
    labels = model.clusters_.labels
    for r in range(len(users)):
        np.testing.assert_array_equal(recs[r, : k - n_exp], ref[r, : k - n_exp])  # base head
        tail = recs[r, k - n_exp :]
        # every exploration slot holds an item of a predicted novel cluster (4 clusters of
        # 10 items: each novel cluster has unseen items left)
        assert set(labels[tail]) <= set(novel[r].tolist()), (r, labels[tail], novel[r])
    # the lists stay valid: no duplicates, no seen items
    for r, u in enumerate(internal):
        seen = set(hist.matrix.indices[hist.matrix.indptr[u] : hist.matrix.indptr[u + 1]])
        assert len(set(recs[r])) == k and not seen & set(recs[r].tolist())


def test_exploration_raises_cluster_diversity(split):
    explore = _fit(split, share=0.5)
    users = split.train.user_map.external_ids
    labels = explore.clusters_.labels

    def n_clusters(recs):
        return np.mean([len(set(labels[row])) for row in recs.internal_item_ids])

    assert n_clusters(explore.recommend(users, k=10)) > n_clusters(
        explore.base_.recommend(users, k=10)
    )


def test_candidates_are_respected(split):
    model = _fit(split, share=0.5)
    cand = split.train.item_map.external_ids[::3]
    recs = model.recommend(split.train.user_map.external_ids[:10], k=5, candidates=cand)
    allowed = set(split.train.item_map.to_internal(cand).tolist()) | {0}
    assert set(recs.internal_item_ids.ravel().tolist()) <= allowed


def test_bad_config():
    with pytest.raises(ConfigError, match="share"):
        genrec.get_model("explore")(share=1.5)
    with pytest.raises(ConfigError, match="itself"):
        genrec.get_model("explore")(base="explore")
