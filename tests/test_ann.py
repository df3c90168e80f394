"""genrec.ann: approximate inner-product top-k with seen-item exclusion, save/load."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from genrec.errors import ArtifactError, ConfigError, DataValidationError

pytest.importorskip("faiss")

from genrec.ann import ItemIndex, exact_search  # noqa: E402


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    items = rng.standard_normal((801, 16)).astype(np.float32)
    items[0] = 100.0  # padding row with the largest inner products: must never come back
    queries = rng.standard_normal((40, 16)).astype(np.float32)
    seen = sp.random(40, 801, density=0.05, format="csr", random_state=1)
    return items, queries, seen


def brute_force(items, queries, k, seen=None):
    scores = queries @ items.T
    scores[:, 0] = -np.inf
    if seen is not None:
        scores[seen.toarray() != 0] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_exact_search_matches_brute_force(vectors):
    items, queries, seen = vectors
    ids, scores = exact_search(items, queries, 10, exclude=seen)
    np.testing.assert_array_equal(ids, brute_force(items, queries, 10, seen))
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("method", ["flat", "hnsw", "ivf"])
def test_search_excludes_seen_and_padding(vectors, method):
    items, queries, seen = vectors
    index = ItemIndex.build(items, method=method, nlist=8, nprobe=8)
    ids, scores = index.search(queries, 10, exclude=seen)
    assert ids.shape == scores.shape == (40, 10)
    assert (ids > 0).all()
    assert seen[np.arange(40)[:, None], ids].sum() == 0
    exact = brute_force(items, queries, 10, seen)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ids, exact)])
    assert recall == 1.0 if method == "flat" else recall >= 0.9
    if method == "flat":
        np.testing.assert_array_equal(ids, exact)
        np.testing.assert_allclose(
            scores, np.take_along_axis(queries @ items.T, ids, axis=1), rtol=1e-5
        )


def test_exclude_as_lists_and_long_histories(vectors):
    """One query excluding most of the catalogue gets the rest; lists work like CSR."""
    items, queries, _ = vectors
    index = ItemIndex.build(items, method="hnsw")
    lists = [list(range(1, 795)), [], [5, 5, 7]]  # query 0 keeps only items 795..800
    ids, scores = index.search(queries[:3], 10, exclude=lists)
    assert sorted(ids[0][:6]) == list(range(795, 801))
    assert (ids[0][6:] == 0).all() and np.isneginf(scores[0][6:]).all()
    np.testing.assert_array_equal(ids[1], brute_force(items, queries[1:2], 10)[0])
    assert not {5, 7} & set(ids[2])


def test_save_load_round_trip(vectors, tmp_path):
    items, queries, seen = vectors
    for method in ("hnsw", "ivf"):
        index = ItemIndex.build(items, method=method, ef_search=40, nlist=8, nprobe=3)
        before = index.search(queries, 5, exclude=seen)
        path = index.save(tmp_path / method)
        assert sorted(p.name for p in path.iterdir()) == ["ann.json", "index.faiss"]
        loaded = ItemIndex.load(path)
        assert (loaded.method, loaded.n_items, loaded.dim) == (method, 800, 16)
        assert loaded.params == index.params
        after = loaded.search(queries, 5, exclude=seen)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])
    (tmp_path / "ivf" / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(ArtifactError, match="corrupt"):
        ItemIndex.load(tmp_path / "ivf")
    (tmp_path / "hnsw" / "ann.json").unlink()
    with pytest.raises(ArtifactError, match="ann.json is missing"):
        ItemIndex.load(tmp_path / "hnsw")


def test_bad_input_names_the_problem(vectors):
    items, queries, seen = vectors
    with pytest.raises(ConfigError, match="method"):
        ItemIndex.build(items, method="lsh")
    with pytest.raises(DataValidationError, match="row 0"):
        ItemIndex.build(items[:1])
    with pytest.raises(DataValidationError, match="2-D"):
        ItemIndex.build(items[0])
    bad = items.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataValidationError, match="NaN"):
        ItemIndex.build(bad)
    index = ItemIndex.build(items, method="flat")
    with pytest.raises(DataValidationError, match=r"\(n, 16\)"):
        index.search(queries[:, :8], 5)
    with pytest.raises(ConfigError, match="k must be"):
        index.search(queries, 0)
    with pytest.raises(DataValidationError, match="rows for 40 queries"):
        index.search(queries, 5, exclude=seen[:3])
    with pytest.raises(ConfigError, match="ef_search"):
        ItemIndex.build(items, ef_search=0)


def test_missing_extra_names_the_install_command():
    code = (
        "import sys; sys.modules['faiss'] = None\n"
        "import numpy as np\n"
        "from genrec.ann import ItemIndex\n"
        "try:\n"
        "    ItemIndex.build(np.ones((3, 2), dtype=np.float32))\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'genrec[ann]'" in out.stdout
