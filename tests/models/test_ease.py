"""EASE at scale: blocked Gram, in-place Cholesky inverse, memory check, compact storage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import genrec
from genrec.data.dataset import Dataset, IdMap
from genrec.errors import ConfigError, InsufficientMemoryError
from genrec.models import ease as ease_mod
from genrec.models.ease import (
    EASE,
    available_memory,
    ease_weights_inplace,
    fit_memory,
    gram_matrix,
    topn_rows,
)


def dataset_from_dense(X: np.ndarray) -> Dataset:
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
    X[np.arange(shape[0]), rng.integers(shape[1], size=shape[0])] = 1.0
    return X


def reference_weights(X: np.ndarray, l2: float) -> np.ndarray:
    P = np.linalg.inv(X.T @ X + l2 * np.eye(X.shape[1]))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def scores_of(model: EASE, ds: Dataset) -> np.ndarray:
    users = np.arange(1, ds.n_users + 1)
    return model.score(ds.histories().batch(users)).numpy()


@pytest.fixture
def small_blocks(monkeypatch):
    """A block budget of a few rows, so every blocked loop runs several blocks."""
    monkeypatch.setattr(ease_mod, "_BLOCK_BYTES", 200)


def test_gram_matrix_by_blocks_equals_dense_product(small_blocks):
    X = sp.csr_matrix(random_binary((40, 23), 0.2, seed=0))
    G = gram_matrix(X)
    assert G.dtype == np.float32 and G.flags.c_contiguous
    np.testing.assert_array_equal(G, (X.T @ X).toarray())


def test_inplace_weights_match_numpy_inverse(small_blocks):
    X = random_binary((60, 19), 0.3, seed=2)
    A = (X.T @ X + 3.0 * np.eye(19)).astype(np.float32)
    address = A.__array_interface__["data"][0]
    B = ease_weights_inplace(A)
    assert B.__array_interface__["data"][0] == address  # same memory, no copy
    np.testing.assert_allclose(B, reference_weights(X, 3.0), rtol=1e-4, atol=1e-6)


def test_not_positive_definite_is_a_config_error():
    A = np.array([[1.0, 2.0], [2.0, 1.0]], dtype=np.float32)
    with pytest.raises(ConfigError, match="raise l2"):
        ease_weights_inplace(A)


def test_fit_matches_closed_form_and_scores_are_x_times_weights(small_blocks):
    X = random_binary((30, 11), 0.3, seed=1)
    ds = dataset_from_dense(X)
    model = EASE(l2=2.0).fit(ds)
    B = reference_weights(X, 2.0)
    np.testing.assert_allclose(model.B_.numpy(), B, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scores_of(model, ds)[:, 1:], X @ B, rtol=1e-4, atol=1e-5)
    assert model.B_.is_contiguous()


def test_topn_keeps_the_largest_magnitudes_per_row():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((9, 9)).astype(np.float32)
    idx, val = topn_rows(B, 4)
    assert idx.shape == val.shape == (9, 4)
    for r in range(9):
        expected = np.sort(np.argsort(-np.abs(B[r]), kind="stable")[:4])
        np.testing.assert_array_equal(idx[r], expected)
        np.testing.assert_array_equal(val[r], B[r, expected])
    idx, val = topn_rows(B, 50)  # more than the row: everything, in column order
    np.testing.assert_array_equal(idx, np.tile(np.arange(9), (9, 1)))


def test_compact_storages_score_close_to_dense():
    X = random_binary((50, 15), 0.3, seed=3)
    ds = dataset_from_dense(X)
    exact = X @ reference_weights(X, 5.0)
    full = EASE(l2=5.0, storage="topn", topn=15).fit(ds)  # all weights kept: exact
    np.testing.assert_allclose(scores_of(full, ds)[:, 1:], exact, rtol=1e-4, atol=1e-5)
    half = EASE(l2=5.0, storage="float16").fit(ds)
    np.testing.assert_allclose(scores_of(half, ds)[:, 1:], exact, rtol=2e-3, atol=2e-3)
    sparse = EASE(l2=5.0, storage="topn", topn=4).fit(ds)
    B = reference_weights(X, 5.0)
    kept = np.zeros_like(B)
    for r in range(15):
        top = np.argsort(-np.abs(B[r]), kind="stable")[:4]
        kept[r, top] = B[r, top]
    np.testing.assert_allclose(scores_of(sparse, ds)[:, 1:], X @ kept, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("storage", ["dense", "float16", "topn"])
def test_save_load_identity_and_artifact_size(tmp_path, storage):
    X = random_binary((80, 60), 0.15, seed=4)
    ds = dataset_from_dense(X)
    model = EASE(l2=5.0, storage=storage, topn=5).fit(ds)
    before = model.recommend(100 + np.arange(80), k=5)
    path = model.save(tmp_path / storage)
    loaded = genrec.load(path)
    after = loaded.recommend(100 + np.arange(80), k=5)
    np.testing.assert_array_equal(before.item_ids, after.item_ids)
    np.testing.assert_array_equal(before.scores, after.scores)
    from safetensors.numpy import load_file

    arrays = load_file(str(path / "weights.safetensors"))
    size = sum(v.nbytes for k, v in arrays.items() if k.startswith("model."))
    dense_bytes = 4 * 60 * 60
    expected = {"dense": dense_bytes, "float16": dense_bytes // 2, "topn": 60 * 5 * (4 + 4)}
    assert size == expected[storage]


def test_memory_check_refuses_before_allocating(monkeypatch):
    X = random_binary((20, 10), 0.3, seed=5)
    ds = dataset_from_dense(X)

    def no_gram(*args, **kwargs):  # the check must come first
        raise AssertionError("gram_matrix called despite the memory check")

    monkeypatch.setattr(ease_mod, "gram_matrix", no_gram)
    with pytest.raises(InsufficientMemoryError, match="10 items needs about .* GiB") as exc:
        EASE(l2=1.0, memory_limit_gb=1e-6).fit(ds)
    assert isinstance(exc.value, MemoryError)
    assert "memory_limit_gb=1e-06" in str(exc.value)


def test_memory_need_and_availability():
    assert available_memory() > 0
    dense = fit_memory(20_000, 1_000_000)
    assert dense > 4 * 20_000**2
    assert fit_memory(40_000, 1_000_000) > 3.9 * (dense - (1 << 30))
    assert fit_memory(20_000, 1_000_000, "topn", 100) > dense


def test_config_values():
    X = random_binary((10, 8), 0.4, seed=6)
    with pytest.raises(ConfigError, match="max_items"):
        EASE(l2=1.0, max_items=5).fit(dataset_from_dense(X))
    for bad in ({"storage": "sparse"}, {"topn": 0}, {"memory_limit_gb": 0}, {"max_items": 0}):
        with pytest.raises(ConfigError):
            EASE(**bad)
    # the config recorded by earlier runs (max_items=60000) still builds
    assert EASE(l2=50.0, max_items=60_000).config.max_items == 60_000
