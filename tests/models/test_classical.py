"""Model-specific checks of the classical baselines against reference computations."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import genrec
from genrec.data.dataset import Dataset, IdMap
from genrec.errors import MissingExtraError
from genrec.models.als import ALS, bm25_weights
from genrec.models.ease import EASE
from genrec.models.itemknn import ItemKNN, shrunk_cosine_topk
from genrec.models.popularity import Popularity


def dataset_from_dense(X: np.ndarray) -> Dataset:
    """Users ``100 + u`` and items ``10 + j`` (internal ids ``u + 1``, ``j + 1``)."""
    u, j = np.nonzero(X)
    df = pd.DataFrame({"user_id": 100 + u, "item_id": 10 + j, "timestamp": np.arange(len(u))})
    return Dataset(
        df,
        user_map=IdMap(100 + np.arange(X.shape[0])),
        item_map=IdMap(10 + np.arange(X.shape[1])),
    )


def random_binary(shape: tuple[int, int], density: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = (rng.random(shape) < density).astype(np.float64)
    X[np.arange(shape[0]), rng.integers(shape[1], size=shape[0])] = 1.0  # no empty user
    return X


def all_scores(model, ds: Dataset) -> np.ndarray:
    users = np.arange(1, ds.n_users + 1)
    return model.score(ds.histories().batch(users)).numpy()  # (U, n_items + 1)


# ---------------------------------------------------------------------- EASE
def test_ease_closed_form_matches_numpy() -> None:
    X = random_binary((12, 7), 0.4, seed=1)
    l2 = 2.5
    P = np.linalg.inv(X.T @ X + l2 * np.eye(7))
    B = np.eye(7) - P / np.diag(P)[None, :]  # B_ij = -P_ij / P_jj off the diagonal
    np.fill_diagonal(B, 0.0)
    ds = dataset_from_dense(X)
    model = EASE(l2=l2).fit(ds)
    np.testing.assert_allclose(model.B_.numpy(), B, rtol=1e-4, atol=1e-6)
    scores = all_scores(model, ds)
    np.testing.assert_allclose(scores[:, 1:], X @ B, rtol=1e-4, atol=1e-5)
    assert (scores[:, 0] == 0).all()


# ---------------------------------------------------------------------- ItemKNN
def brute_force_knn(X: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """Dense reference: row i keeps its k largest positive sim(i, j), j != i, ties -> lower j."""
    n = X.shape[1]
    norms = np.sqrt(X.sum(0))
    G = X.T @ X
    S = np.zeros((n, n))
    for i in range(n):
        sims = {}
        for j in range(n):
            denom = norms[i] * norms[j] + shrink
            s = G[i, j] / denom if denom > 0 else 0.0
            if j != i and s > 0:
                sims[j] = s
        for j in sorted(sims, key=lambda j: (-sims[j], j))[:k]:
            S[i, j] = sims[j]
    return S


@pytest.mark.parametrize("k,shrink", [(3, 2.0), (5, 0.0), (100, 10.0), (1, 0.5)])
def test_itemknn_similarity_matches_brute_force(k: int, shrink: float) -> None:
    X = random_binary((30, 15), 0.25, seed=k)
    X[:, 4] = 0.0  # an item nobody saw: no NaN even with shrink=0
    ds = dataset_from_dense(X)
    model = ItemKNN(n_neighbors=k, shrink=shrink).fit(ds)
    S = model.similarity_.toarray()  # (16, 16) with padding row/column 0
    ref = brute_force_knn(X, k, shrink)
    assert (S[0] == 0).all() and (S[:, 0] == 0).all()
    np.testing.assert_array_equal(S[1:, 1:] != 0, ref != 0)  # same neighbours (ties included)
    np.testing.assert_allclose(S[1:, 1:], ref, rtol=1e-6)
    assert (np.count_nonzero(S, axis=1) <= k).all()
    scores = all_scores(model, ds)
    np.testing.assert_allclose(scores[:, 1:], X @ ref, rtol=1e-5, atol=1e-6)


def test_itemknn_blocks_do_not_change_the_result() -> None:
    X = sp.csr_matrix(random_binary((40, 25), 0.2, seed=3))
    X = sp.hstack([sp.csr_matrix((40, 1)), X]).tocsr()  # padding column 0
    full = shrunk_cosine_topk(X, 4, 1.0)
    for rows in (1, 3, 7, 100):
        blocked = shrunk_cosine_topk(X, 4, 1.0, block_rows=rows)
        assert (full != blocked).nnz == 0


# ---------------------------------------------------------------------- Popularity
def test_popularity_counts_and_ties() -> None:
    # items 10..13 -> internal 1..4. Distinct users: item 13: 3, items 10, 11, 12: 2 each.
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3, 3, 3, 3, 3],
            "item_id": [13, 12, 11, 13, 10, 13, 12, 11, 10, 10],
        }
    )
    ds = Dataset(df)
    model = Popularity().fit(ds)
    recs = model.recommend_for_history([[]], k=4)
    assert recs.item_ids[0].tolist() == [13, 10, 11, 12]  # ties: lower internal id first
    assert recs.scores[0].tolist() == [3.0, 2.0, 2.0, 2.0]
    # every interaction counts: user 3 saw item 10 twice -> 3 interactions, ties with 13
    model = Popularity(count="interactions").fit(ds)
    recs = model.recommend_for_history([[]], k=4)
    assert recs.item_ids[0].tolist() == [10, 13, 11, 12]
    # the same list for every user, minus what each has seen
    recs = Popularity().fit(ds).recommend([1, 2], k=2)
    assert recs.item_ids.tolist() == [[10, None], [11, 12]]


# ---------------------------------------------------------------------- ALS
def block_data(seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """90 users x 90 items in 3 blocks of 30; each user saw 8 random items of its block.

    Users ``100 + u``, items ``10 + j``; block of user u: ``u // 30``, of item j: ``j // 30``.
    """
    rng = np.random.default_rng(seed)
    X = np.zeros((90, 90))
    block = np.repeat([0, 1, 2], 30)  # (90,) user -> block
    for u in range(90):
        X[u, block[u] * 30 + rng.choice(30, size=8, replace=False)] = 1.0
    return dataset_from_dense(X), block


def test_als_recovers_block_structure() -> None:
    ds, block = block_data()
    users = 100 + np.arange(90)
    # rank of the structure = 3 blocks: every recommendation is in the user's block
    model = ALS(embedding_dim=3, regularization=0.1, iterations=15).fit(ds)
    recs = model.recommend(users, k=10)
    rec_block = (recs.internal_item_ids - 1) // 30  # (90, 10) block of each recommendation
    assert (rec_block == block[:, None]).all()
    # fold-in of ad-hoc histories lands in the right block too
    recs = model.recommend_for_history([[10, 11, 12], [45, 50], [99, 70, 71]], k=10)
    for r, (lo, hi) in enumerate([(10, 40), (40, 70), (70, 100)]):
        assert all(lo <= i < hi for i in recs.item_ids[r]), recs.item_ids[r]
    # more factors than the structure needs (some within-block noise gets fitted): still
    # nearly every recommendation is in-block (random would give 1/3)
    model = ALS(embedding_dim=8, regularization=1.0, iterations=15).fit(ds)
    rec_block = (model.recommend(users, k=10).internal_item_ids - 1) // 30
    assert (rec_block == block[:, None]).mean() >= 0.95


def test_als_fold_in_matches_fitted_factors() -> None:
    ds, _ = block_data()
    model = ALS(embedding_dim=3, regularization=0.1, iterations=30, use_cg=False).fit(ds)
    folded = model.fold_in(ds.matrix(binary=False)[1:])  # (90, f) exact solve per user
    fitted = model.user_factors_[1:]
    cos = (folded * fitted).sum(1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(fitted, axis=1)
    )
    assert cos.min() > 0.99, cos.min()


def test_als_confidence_and_bm25() -> None:
    from implicit.nearest_neighbours import bm25_weight

    ds, _ = block_data()
    W = ds.matrix(binary=False)
    idf = np.log(ds.n_users) - np.log1p(np.bincount(W[1:].indices, minlength=W.shape[1]))
    avg = float(np.asarray(W[1:].sum(axis=1)).mean())
    ours = bm25_weights(W, idf, avg, 100.0, 0.8)[1:].toarray()
    ref = np.maximum(bm25_weight(W[1:], K1=100, B=0.8).toarray(), 0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    model = ALS(embedding_dim=3, regularization=0.1, weighting="bm25").fit(ds)
    recs = model.recommend_for_history([[10, 11, 12]], k=3)
    assert all(10 <= i < 40 for i in recs.item_ids[0])


def test_als_fit_does_not_warn_about_blas_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import implicit.utils

    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    ds, _ = block_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ALS(embedding_dim=4, iterations=2).fit(ds)


def test_als_without_implicit(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    ds, _ = block_data()
    model = ALS(embedding_dim=4, iterations=5).fit(ds)
    path = model.save(tmp_path / "als")
    expected = model.recommend([100, 150], k=5)
    for mod in [m for m in list(sys.modules) if m == "implicit" or m.startswith("implicit.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "implicit", None)  # import implicit -> ImportError
    with pytest.raises(MissingExtraError, match=r"genrec\[als\]"):
        ALS(embedding_dim=4).fit(ds)
    loaded = genrec.load(path)  # scoring is numpy/torch only
    got = loaded.recommend([100, 150], k=5)
    np.testing.assert_array_equal(got.internal_item_ids, expected.internal_item_ids)
    assert loaded.recommend_for_history([[10, 11]], k=3).item_ids.shape == (1, 3)


def test_registry_imports_without_implicit() -> None:
    code = (
        "import sys; sys.modules['implicit'] = None\n"
        "import genrec\n"
        "assert 'als' in genrec.list_models(), genrec.list_models()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ease_weights_are_row_contiguous() -> None:
    """Scoring gathers rows of B: a column-major B (as cholesky_inverse returns) is ~30x slower."""
    from genrec.testing import make_synthetic_dataset

    model = genrec.get_model("ease")(l2=10.0).fit(make_synthetic_dataset())
    assert model.B_.is_contiguous()
