"""TextKNN: text-based scores, cold items, aggregation maths, persistence, errors.

The contract itself runs in test_contract.py (tiny config: tests/models/tiny/textknn.yaml).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import genrec
from genrec.data.dataset import UserHistories
from genrec.errors import ConfigError, DataValidationError, UnknownIdError
from genrec.testing import make_synthetic_dataset, make_text_dataset


def textknn(**overrides):
    return genrec.get_model("textknn")(encoder="tfidf", progress=False, **overrides)


@pytest.fixture(scope="module")
def shop():
    return make_text_dataset()


@pytest.fixture(scope="module")
def fitted(shop):
    return textknn().fit(shop)


def test_cold_item_is_recommended_by_text(shop, fitted):
    # p7 ("night cream for very dry skin") has no interactions; u1 bought dry-skin moisturizers
    assert fitted.item_popularity_[shop.item_map.to_internal(["p7"])[0]] == 0
    recs = fitted.recommend(["u1"], k=2)
    assert recs.item_ids[0, 0] == "p7"
    assert recs.scores[0, 0] > recs.scores[0, 1]
    # a collaborative model cannot rank the cold item first: it has no co-occurrences
    knn = genrec.get_model("itemknn")().fit(shop)
    assert knn.recommend(["u1"], k=1).item_ids[0, 0] != "p7"


def test_ad_hoc_history_and_item_neighbours(fitted):
    recs = fitted.recommend_for_history([["p3"]], k=1)  # shampoo -> the other hair product
    assert recs.item_ids[0, 0] == "p4"
    sim = fitted.similar_items(["p1", "p5"], k=2)
    assert list(sim.columns) == ["query_item_id", "rank", "item_id", "score", "title"]
    first = sim[sim["rank"] == 1].set_index("query_item_id")["item_id"]
    assert first["p1"] in {"p2", "p7"} and first["p5"] == "p6"
    assert "p1" not in set(sim.loc[sim.query_item_id == "p1", "item_id"])  # not itself
    assert "p8" not in set(sim["item_id"])  # no text, never a neighbour


def test_items_without_text(shop, fitted):
    info = fitted.training_info_
    assert info["encoder"] == "tfidf" and info["items_without_text"] == 1
    p8 = shop.item_map.to_internal(["p8"])[0]
    assert not fitted.has_text_[p8]
    # u6 only bought p8 (no text): no text signal, so the popularity ranking
    recs = fitted.recommend(["u6"], k=3)
    pop = fitted.item_popularity_.astype(float)
    pop[p8] = -1  # seen
    expected = sorted(range(1, fitted.n_items + 1), key=lambda i: (-pop[i], i))[:3]
    assert recs.internal_item_ids[0].tolist() == expected
    with pytest.raises(DataValidationError, match="no text"):
        fitted.similar_items("p8")
    with pytest.raises(UnknownIdError, match="p9"):
        fitted.similar_items("p9")


def test_no_item_text_raises():
    ds = make_synthetic_dataset(with_items=False)
    with pytest.raises(DataValidationError, match="item table"):
        textknn().fit(ds)


def _hand_vectors(model, n):
    """Replace the item vectors with known unit vectors (3-d, dense)."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(n + 1, 3)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v[0] = 0
    model.item_vectors_ = v
    model.has_text_ = np.r_[False, np.ones(n, dtype=bool)]
    return v


@pytest.mark.parametrize("aggregation", ["centroid", "max"])
@pytest.mark.parametrize("recent,halflife", [(0, 0.0), (2, 0.0), (0, 1.0), (2, 1.5)])
def test_score_formulas(shop, aggregation, recent, halflife):
    model = textknn(aggregation=aggregation, recent=recent, recency_halflife=halflife).fit(shop)
    n = model.n_items
    v = _hand_vectors(model, n)
    seqs = [[1, 2, 3], [4], [2, 5, 2]]
    batch = UserHistories.from_sequences(seqs, n).batch(np.arange(3), np.zeros(3, np.int64))
    got = model.score(batch).numpy()
    for r, seq in enumerate(seqs):
        L = len(seq)
        w = np.array([0.5 ** ((L - 1 - j) / halflife) if halflife else 1.0 for j in range(L)])
        keep = np.arange(L) >= L - recent if recent else np.ones(L, bool)
        items, w = np.array(seq)[keep], w[keep]
        if aggregation == "centroid":
            c = (w[:, None] * v[items]).sum(0)
            want = v @ (c / np.linalg.norm(c))
        else:  # a repeated item keeps its largest weight, then max over items
            best = {}
            for i, wi in zip(items, w):
                best[i] = max(best.get(i, 0.0), wi)
            want = np.max([wi * (v @ v[i]) for i, wi in best.items()], axis=0)
        np.testing.assert_allclose(got[r], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("aggregation", ["centroid", "max"])
def test_blocked_scoring_matches_one_block(shop, monkeypatch, aggregation):
    import genrec.models.textknn as mod

    model = textknn(aggregation=aggregation).fit(shop)
    users = model.user_map.external_ids
    full = model.recommend(users, k=5, exclude_seen=False)
    monkeypatch.setattr(mod, "_BLOCK_ELEMENTS", 1)  # one history item / user per block
    small = model.recommend(users, k=5, exclude_seen=False)
    np.testing.assert_array_equal(full.internal_item_ids, small.internal_item_ids)
    np.testing.assert_allclose(full.scores, small.scores, rtol=1e-6)


@pytest.mark.parametrize("overrides", [{}, {"svd_dim": 4, "aggregation": "max"}])
def test_save_load_identity(shop, tmp_path, overrides):
    model = textknn(**overrides).fit(shop)
    loaded = genrec.load(model.save(tmp_path / "tk"))
    assert loaded.encoder_name == "tfidf" and loaded.config == model.config
    assert sp.issparse(loaded.item_vectors_) == (not overrides)
    users = model.user_map.external_ids
    a, b = model.recommend(users, k=4), loaded.recommend(users, k=4)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    sa, sb = model.similar_items(["p1", "p3"], k=3), loaded.similar_items(["p1", "p3"], k=3)
    assert sa[["query_item_id", "item_id", "title"]].equals(
        sb[["query_item_id", "item_id", "title"]]
    )
    # the loaded encoder maps new text to the same vectors
    q = ["dry skin cream"]
    va, vb = model.encoder_.encode(q), loaded.encoder_.encode(q)
    va = va.toarray() if sp.issparse(va) else va
    vb = vb.toarray() if sp.issparse(vb) else vb
    np.testing.assert_allclose(va, vb, rtol=1e-6)
    assert loaded.training_info_["encoder"] == "tfidf"


def test_auto_encoder_is_recorded(shop, monkeypatch):
    import genrec.text.encoders as enc

    monkeypatch.setattr(enc.importlib.util, "find_spec", lambda name: None)  # no text extra
    model = genrec.get_model("textknn")(progress=False).fit(shop)
    assert model.config.encoder == "auto"
    assert model.encoder_name == "tfidf" and model.training_info_["encoder"] == "tfidf"


@pytest.mark.parametrize(
    "bad",
    [
        {"aggregation": "mean"},
        {"encoder": "bert"},
        {"recent": -1},
        {"recency_halflife": -0.5},
        {"min_df": 0},
        {"svd_dim": -2},
    ],
)
def test_config_validation(bad):
    key, value = next(iter(bad.items()))
    with pytest.raises(ConfigError, match=key):
        genrec.get_model("textknn")(**bad)
    assert value is not None
