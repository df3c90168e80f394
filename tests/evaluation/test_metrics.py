"""Metric tests against hand-computed values (arithmetic shown in comments)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from genrec.evaluation.metrics import (
    ACCURACY_METRICS,
    avg_popularity_at_k,
    coverage_at_k,
    gini_at_k,
    hit_rate_at_k,
    hits_from_targets,
    ild_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty_at_k,
    precision_at_k,
    recall_at_k,
)

# Four users, K = 5.
#   u0: one target, hit at rank 3
#   u1: three targets, hits at ranks 1 and 3
#   u2: one target, no hit, list padded with zeros
#   u3: two targets, hits at ranks 1 and 2 (ideal)
RANKED = np.array(
    [
        [3, 1, 7, 2, 9],
        [4, 8, 6, 5, 2],
        [5, 0, 0, 0, 0],
        [2, 9, 1, 3, 4],
    ],
    dtype=np.int64,
)
TARGET_INDPTR = np.array([0, 1, 4, 5, 7])
# u0: {7}; u1: {4, 6, 1} (1 is not recommended); u2: {3}; u3: {9, 2}
TARGET_INDICES = np.array([7, 4, 6, 1, 3, 9, 2])
N_TARGETS = np.diff(TARGET_INDPTR)  # [1, 3, 1, 2]
HITS = np.array(
    [
        [0, 0, 1, 0, 0],
        [1, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
    ],
    dtype=bool,
)


def test_hits_from_targets_matches_hand_marked_hits():
    hits = hits_from_targets(RANKED, TARGET_INDPTR, TARGET_INDICES)
    assert hits.dtype == bool
    assert hits.shape == RANKED.shape
    np.testing.assert_array_equal(hits, HITS)


def test_hits_from_targets_keys_do_not_leak_across_users():
    # u0 is recommended item 4, which is only u1's target; u1 is recommended 7 (u0's).
    ranked = np.array([[4, 7], [7, 4]])
    indptr = np.array([0, 1, 2])
    indices = np.array([7, 4])
    hits = hits_from_targets(ranked, indptr, indices)
    np.testing.assert_array_equal(hits, [[False, True], [False, True]])


def test_hits_from_targets_padding_is_never_a_hit():
    # A (malformed) target of 0 must not turn padding into hits.
    ranked = np.array([[0, 2, 0]])
    hits = hits_from_targets(ranked, np.array([0, 2]), np.array([0, 2]))
    np.testing.assert_array_equal(hits, [[False, True, False]])


def test_hits_from_targets_user_without_targets_and_empty_targets():
    ranked = np.array([[1, 2], [3, 4]])
    hits = hits_from_targets(ranked, np.array([0, 0, 1]), np.array([4]))
    np.testing.assert_array_equal(hits, [[False, False], [False, True]])
    empty = hits_from_targets(ranked, np.array([0, 0, 0]), np.array([], dtype=np.int64))
    assert not empty.any()


def test_hits_from_targets_validates_indptr():
    with pytest.raises(ValueError, match="target_indptr must have shape"):
        hits_from_targets(RANKED, np.array([0, 1]), TARGET_INDICES)
    with pytest.raises(ValueError, match="non-decreasing"):
        hits_from_targets(RANKED, np.array([0, 3, 2, 5, 7]), TARGET_INDICES)
    with pytest.raises(ValueError, match="integer"):
        hits_from_targets(RANKED.astype(float), TARGET_INDPTR, TARGET_INDICES)


def test_recall_at_k():
    # k=5: u0 1/1; u1 2/3; u2 0/1; u3 2/2
    np.testing.assert_allclose(recall_at_k(HITS, N_TARGETS, 5), [1.0, 2 / 3, 0.0, 1.0])
    # k=2: u0 0/1 (hit is at rank 3); u1 1/3; u2 0; u3 2/2
    np.testing.assert_allclose(recall_at_k(HITS, N_TARGETS, 2), [0.0, 1 / 3, 0.0, 1.0])


def test_hit_rate_at_k():
    out = hit_rate_at_k(HITS, 5)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(hit_rate_at_k(HITS, 2), [0.0, 1.0, 0.0, 1.0])


def test_recall_equals_hit_rate_for_single_target():
    single = N_TARGETS == 1
    np.testing.assert_array_equal(
        recall_at_k(HITS, N_TARGETS, 5)[single], hit_rate_at_k(HITS, 5)[single]
    )


def test_precision_at_k():
    # k=5: hits 1, 2, 0, 2 over 5 -> 0.2, 0.4, 0, 0.4
    np.testing.assert_allclose(precision_at_k(HITS, 5), [0.2, 0.4, 0.0, 0.4])
    # k=2: hits 0, 1, 0, 2 over 2 -> 0, 0.5, 0, 1
    np.testing.assert_allclose(precision_at_k(HITS, 2), [0.0, 0.5, 0.0, 1.0])


def test_ndcg_at_k():
    # u0: hit at rank 3, 1 target: 1/log2(4) / 1 = 0.5
    # u1: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG (3 targets) = 1 + 1/log2(3) + 1/log2(4)
    #     = 1 + 0.6309297535714575 + 0.5 = 2.1309297535714575 -> 0.7039180890341347
    # u2: no hit -> 0
    # u3: hits at ranks 1, 2 with 2 targets is ideal -> 1
    np.testing.assert_allclose(ndcg_at_k(HITS, N_TARGETS, 5), [0.5, 0.7039180890341347, 0.0, 1.0])
    # k=2: u0 0; u1 DCG = 1, IDCG = min(3, 2) items = 1 + 1/log2(3) = 1.6309297535714575
    #      -> 0.6131471927654584; u2 0; u3 1
    np.testing.assert_allclose(ndcg_at_k(HITS, N_TARGETS, 2), [0.0, 0.6131471927654584, 0.0, 1.0])


def test_mrr_at_k():
    # first hits at ranks 3, 1, none, 1
    np.testing.assert_allclose(mrr_at_k(HITS, 5), [1 / 3, 1.0, 0.0, 1.0])
    # k=2 cuts u0's rank-3 hit
    np.testing.assert_allclose(mrr_at_k(HITS, 2), [0.0, 1.0, 0.0, 1.0])


def test_map_at_k():
    # u0: P@3 * 1 / min(1, 5) = (1/3) / 1
    # u1: (P@1 + P@3) / min(3, 5) = (1 + 2/3) / 3 = 0.5555...
    # u3: (P@1 + P@2) / min(2, 5) = (1 + 1) / 2 = 1
    np.testing.assert_allclose(map_at_k(HITS, N_TARGETS, 5), [1 / 3, 5 / 9, 0.0, 1.0])
    # k=2: u1: P@1 / min(3, 2) = 1 / 2
    np.testing.assert_allclose(map_at_k(HITS, N_TARGETS, 2), [0.0, 0.5, 0.0, 1.0])


def test_accuracy_metrics_registry_is_uniform():
    assert set(ACCURACY_METRICS) == {"recall", "hit_rate", "precision", "ndcg", "mrr", "map"}
    expected = {
        "recall": recall_at_k(HITS, N_TARGETS, 3),
        "hit_rate": hit_rate_at_k(HITS, 3),
        "precision": precision_at_k(HITS, 3),
        "ndcg": ndcg_at_k(HITS, N_TARGETS, 3),
        "mrr": mrr_at_k(HITS, 3),
        "map": map_at_k(HITS, N_TARGETS, 3),
    }
    for name, fn in ACCURACY_METRICS.items():
        out = fn(HITS, N_TARGETS, 3)
        assert out.shape == (4,) and out.dtype == np.float64
        np.testing.assert_array_equal(out, expected[name])


def test_accuracy_validation_errors():
    with pytest.raises(ValueError, match="k must be positive"):
        recall_at_k(HITS, N_TARGETS, 0)
    with pytest.raises(ValueError, match="exceeds"):
        ndcg_at_k(HITS, N_TARGETS, 6)
    with pytest.raises(ValueError, match="n_targets must have shape"):
        map_at_k(HITS, N_TARGETS[:3], 2)
    with pytest.raises(ValueError, match="n_targets must be >= 1"):
        ndcg_at_k(HITS, np.array([1, 0, 1, 1]), 2)
    with pytest.raises(ValueError, match="2-D"):
        mrr_at_k(HITS[0], 2)


# --------------------------------------------------------------------------- beyond accuracy


def test_coverage_at_k():
    ranked = np.array([[1, 2, 0], [1, 3, 0]])
    # k=2: {1, 2, 3} of 4 items -> 0.75; k=3 adds only padding
    assert coverage_at_k(ranked, n_items=4, k=2) == pytest.approx(0.75)
    assert coverage_at_k(ranked, n_items=4, k=3) == pytest.approx(0.75)
    # k=1: {1} of 4 -> 0.25
    assert coverage_at_k(ranked, n_items=4, k=1) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="item id 5"):
        coverage_at_k(np.array([[5]]), n_items=4, k=1)


def test_gini_at_k():
    ranked = np.array([[1, 2, 0], [1, 3, 0]])
    # exposure of items 1..4 = [2, 1, 1, 0] -> sorted [0, 1, 1, 2], n = 4, sum = 4
    # weights 2i - n - 1 = [-3, -1, 1, 3]: (0 - 1 + 1 + 6) / (4 * 4) = 6 / 16 = 0.375
    assert gini_at_k(ranked, n_items=4, k=3) == pytest.approx(0.375)
    # perfectly equal exposure -> 0
    assert gini_at_k(np.array([[1, 2], [3, 4]]), n_items=4, k=2) == pytest.approx(0.0)
    # everything on item 1: x = [0, 0, 0, 3] -> 3 * 3 / (4 * 3) = 0.75 = (n - 1) / n
    assert gini_at_k(np.array([[1], [1], [1]]), n_items=4, k=1) == pytest.approx(0.75)
    # only padding -> defined as 0
    assert gini_at_k(np.zeros((2, 2), dtype=np.int64), n_items=4, k=2) == 0.0


ITEM_POPULARITY = np.array([0, 8, 4, 0, 2])  # index = item id; n_items = 4


def test_novelty_at_k():
    ranked = np.array([[1, 2, 0], [3, 4, 0]])
    # n_users = 8. pops 8, 4, 0 -> 1 (floor), 2:
    # -log2(8/8) = 0, -log2(4/8) = 1, -log2(1/8) = 3, -log2(2/8) = 2 -> mean 6/4 = 1.5
    assert novelty_at_k(ranked, ITEM_POPULARITY, n_users=8, k=3) == pytest.approx(1.5)
    # k=1: items 1 and 3 -> (0 + 3) / 2 = 1.5; padding-only lists -> 0
    assert novelty_at_k(ranked, ITEM_POPULARITY, n_users=8, k=1) == pytest.approx(1.5)
    assert novelty_at_k(np.zeros((1, 2), np.int64), ITEM_POPULARITY, 8, 2) == 0.0


def test_avg_popularity_at_k():
    ranked = np.array([[1, 2, 0], [3, 4, 0], [0, 0, 0]])
    # u0 mean(8, 4) = 6; u1 mean(0, 2) = 1; u2 all padding -> excluded: (6 + 1) / 2 = 3.5
    assert avg_popularity_at_k(ranked, ITEM_POPULARITY, k=3) == pytest.approx(3.5)
    # k=1: u0 8, u1 0 -> 4
    assert avg_popularity_at_k(ranked, ITEM_POPULARITY, k=1) == pytest.approx(4.0)


# rows = item ids 0..4; 0 is padding
GENRES = sp.csr_matrix(
    np.array(
        [
            [0, 0, 0],  # 0 padding
            [1, 1, 0],  # 1: {a, b}
            [0, 1, 0],  # 2: {b}
            [0, 0, 1],  # 3: {c}
            [0, 0, 0],  # 4: {}
        ],
        dtype=bool,
    )
)


def test_ild_jaccard():
    ranked = np.array([[1, 2, 3], [1, 0, 0], [4, 4, 0]])
    # u0: d(1,2) = 1 - 1/2 = 0.5; d(1,3) = 1 - 0/3 = 1; d(2,3) = 1 - 0/2 = 1
    #     -> (0.5 + 1 + 1) / 3 = 0.8333...
    # u1: one real item -> excluded
    # u2: two empty sets -> distance 0 -> 0
    # ILD = (0.8333... + 0) / 2 = 0.41666...
    assert ild_at_k(ranked, GENRES, k=3, metric="jaccard") == pytest.approx(5 / 12)
    # k=2: u0 only pair (1,2) = 0.5; u1 excluded; u2 0 -> 0.25
    assert ild_at_k(ranked, GENRES, k=2, metric="jaccard") == pytest.approx(0.25)


def test_ild_cosine():
    emb = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    ranked = np.array([[1, 2, 3], [1, 4, 0], [2, 0, 0]])
    # u0: d(1,2) = 1 - 0 = 1; d(1,3) = d(2,3) = 1 - 1/sqrt(2) = 0.2928932188
    #     -> (1 + 2 * 0.2928932188) / 3 = 0.5285954792
    # u1: item 4 is a zero vector -> similarity 0 -> distance 1
    # u2: single item -> excluded; ILD = (0.5285954792 + 1) / 2 = 0.7642977396
    assert ild_at_k(ranked, emb, k=3, metric="cosine") == pytest.approx(0.7642977396044841)


def _naive_ild(ranked, feats, k, metric):
    per_user = []
    for row in ranked[:, :k]:
        items = [i for i in row if i > 0]
        if len(items) < 2:
            continue
        dists = []
        for i, j in itertools.permutations(range(len(items)), 2):
            a, b = feats[items[i]], feats[items[j]]
            if metric == "jaccard":
                a, b = a != 0, b != 0
                union = np.sum(a | b)
                dists.append(0.0 if union == 0 else 1 - np.sum(a & b) / union)
            else:
                na, nb = np.linalg.norm(a), np.linalg.norm(b)
                sim = 0.0 if na == 0 or nb == 0 else a @ b / (na * nb)
                dists.append(1 - sim)
        per_user.append(np.mean(dists))
    return float(np.mean(per_user))


@pytest.mark.parametrize("metric", ["jaccard", "cosine"])
def test_ild_matches_naive_loop(metric):
    rng = np.random.default_rng(0)
    n_items, F = 30, 6
    ranked = rng.integers(0, n_items + 1, size=(40, 7))
    if metric == "jaccard":
        dense = (rng.random((n_items + 1, F)) < 0.3).astype(float)
        feats = sp.csr_matrix(dense)
    else:
        dense = rng.normal(size=(n_items + 1, F))
        dense[5] = 0.0
        feats = dense
    got = ild_at_k(ranked, feats, k=5, metric=metric)
    assert got == pytest.approx(_naive_ild(ranked, dense, 5, metric))


def test_ild_validation():
    with pytest.raises(ValueError, match="metric must be"):
        ild_at_k(np.array([[1, 2]]), GENRES, k=2, metric="euclid")
    with pytest.raises(ValueError, match="item id 7"):
        ild_at_k(np.array([[1, 7]]), GENRES, k=2)
