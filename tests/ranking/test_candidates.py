"""Candidate union, source parsing and candidate recall."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.data.splitting import leave_one_out
from genrec.errors import ConfigError, UnknownNameError
from genrec.ranking.candidates import (
    candidate_recall,
    parse_sources,
    source_top_n,
    union_candidates,
)
from genrec.registry import get_model
from genrec.testing import make_synthetic_dataset


def test_union_keeps_ranks_scores_and_sentinels() -> None:
    a = (np.array([[3, 1, 2], [5, 0, 0]]), np.array([[0.9, 0.5, 0.1], [2.0, -np.inf, -np.inf]]))
    b = (np.array([[2, 4], [5, 6]]), np.array([[7.0, 6.0], [1.0, 0.5]]))
    cand = union_candidates([a, b], ["a", "b"], n_items=6)
    got = {(r, i): (tuple(k), tuple(s)) for r, i, k, s in zip(
        cand.rows.tolist(), cand.items.tolist(), cand.ranks.tolist(), cand.scores.tolist()
    )}  # fmt: skip
    assert list(got) == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6)]  # sorted by row, item
    assert got[(0, 1)][0] == (2, 3)  # b missed it: sentinel rank n_b + 1 = 3
    assert np.isnan(got[(0, 1)][1][1])
    assert got[(0, 2)] == ((3, 1), (pytest.approx(0.1), 7.0))
    assert got[(0, 4)][0] == (4, 2)  # a missed it: n_a + 1 = 4
    assert got[(1, 5)][0] == (1, 1)
    assert cand.found.sum() == 8
    np.testing.assert_array_equal(cand.group_sizes(), [4, 2])


def test_parse_sources() -> None:
    specs = parse_sources(["als", {"model": "ease", "n": 7, "config": {"l2": 5.0}}], 50)
    assert [(s.name, s.model, s.n) for s in specs] == [("als", "als", 50), ("ease", "ease", 7)]
    assert specs[1].resolved_config()["l2"] == 5.0
    with pytest.raises(UnknownNameError, match="Did you mean 'als'"):
        parse_sources(["alss"], 10)
    with pytest.raises(ConfigError, match="Did you mean 'config'"):
        parse_sources([{"model": "als", "confg": {}}], 10)
    with pytest.raises(ConfigError, match="distinct names"):
        parse_sources(["als", "als"], 10)
    with pytest.raises(ConfigError, match="n must be"):
        parse_sources([{"model": "als", "n": 0}], 10)
    with pytest.raises(ConfigError, match="not_a_key"):  # the source's own config is checked
        parse_sources([{"model": "als", "config": {"not_a_key": 1}}], 10)
    with pytest.raises(ConfigError, match="cascade"):
        parse_sources(["cascade"], 10)
    with pytest.raises(ConfigError, match="non-empty"):
        parse_sources([], 10)


def test_cascade_config_rejects_unknown_source() -> None:
    with pytest.raises(UnknownNameError, match="sasrec"):
        get_model("cascade")(candidates=["sasrek"])


def test_candidate_recall_matches_direct_count() -> None:
    split = leave_one_out(make_synthetic_dataset(noise=0.3, seed=3))
    pop = get_model("popularity")().fit(split.train)
    ease = get_model("ease")(l2=10.0).fit(split.train)
    n = 5
    out = candidate_recall({"pop": pop, "ease": ease}, split, n)
    test = split.test
    hits = {"pop": [], "ease": [], "union": []}
    for r, u in enumerate(test.users):
        target = set(test.targets[r].indices.tolist())
        user = pop.user_map.to_external([u])
        lists = {
            name: set(m.recommend(user, k=n, history=test.history).internal_item_ids[0].tolist())
            for name, m in (("pop", pop), ("ease", ease))
        }
        for name, items in lists.items():
            hits[name].append(len(items & target) / len(target))
        hits["union"].append(len((lists["pop"] | lists["ease"]) & target) / len(target))
    for name, values in hits.items():
        assert out[name] == pytest.approx(np.mean(values)), name
    assert out["union"] >= max(out["pop"], out["ease"])
    assert candidate_recall([pop], split.test, {"popularity": n})["popularity"] == out["pop"]


def test_source_top_n_generative_and_scoring_agree_with_recommend() -> None:
    split = leave_one_out(make_synthetic_dataset())
    model = get_model("ease")(l2=10.0).fit(split.train)
    users = split.test.users[:5]
    batch = split.test.history.histories().batch(users)
    items, scores, full = source_top_n(model, batch, 7)
    ref = model.recommend(model.user_map.to_external(users), k=7, history=split.test.history)
    np.testing.assert_array_equal(items, ref.internal_item_ids)
    assert full is not None and full.shape == (5, model.n_items + 1)
