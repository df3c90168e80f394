"""Feature correctness on hand-made data (values computed by hand in the comments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrec.data.dataset import Dataset, IdMap
from genrec.ranking.candidates import union_candidates
from genrec.ranking.features import DAY, FeatureBuilder

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture
def data() -> Dataset:
    # times in days; items a..e; genres: a,b -> X; c -> Y; d -> X|Y; e -> none
    rows = [
        ("u1", "a", 0), ("u1", "b", 1), ("u1", "c", 2),
        ("u2", "a", 3), ("u2", "b", 4), ("u2", "d", 5),
        ("u3", "b", 6), ("u3", "c", 10),
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    df["timestamp"] = df["timestamp"] * int(DAY)
    items = pd.DataFrame({"item_id": list("abcde"), "genres": ["X", "X", "Y", "X|Y", None]})
    return Dataset(df, items, item_map=IdMap(list("abcde")))


def test_features_by_hand(data: Dataset) -> None:
    from genrec.ranking.interest import item_category_table

    names, cats = item_category_table(data)
    assert names == ["X", "Y"]
    hist = data.histories()
    fb = FeatureBuilder(["s1", "s2"], recent_days=5.0, user_window_days=3.0, cooc_window=2)
    fb.fit(hist, categories=cats)
    a, b, c, d, e = data.item_map.to_internal(list("abcde"))
    u1, u2 = data.user_map.to_internal(["u1", "u2"])
    # batch: u1's history (a, b, c; last c at day 2) and u2's (a, b, d; last d at day 5)
    batch = hist.batch(np.array([u1, u2]))
    s1 = (np.array([[d, e], [c, e]]), np.array([[0.9, 0.5], [0.8, 0.1]], dtype=np.float32))
    s2 = (np.array([[e, 0], [e, 0]]), np.array([[0.3, -np.inf], [0.2, -np.inf]], np.float32))
    cand = union_candidates([s1, s2], ["s1", "s2"], data.n_items)
    X = fb.transform(batch, cand)
    F = dict(zip(fb.feature_names, X.T))
    assert X.shape == (4, len(fb.feature_names))
    order = list(zip(cand.rows.tolist(), cand.items.tolist()))
    assert order == sorted([(0, d), (0, e), (1, c), (1, e)])
    row = {key: j for j, key in enumerate(order)}
    j_d, j_e0, j_c, j_e1 = row[(0, d)], row[(0, e)], row[(1, c)], row[(1, e)]
    # source features: rank, flag, score; missing -> rank n + 1 (s2 has n = 2 -> 3), NaN, 0
    assert F["s1_rank"][j_d] == 1 and F["s1_rank"][j_e0] == 2
    assert F["s2_rank"][j_d] == 3 and F["s2_in"][j_d] == 0 and np.isnan(F["s2_score"][j_d])
    assert F["s2_rank"][j_e0] == 1 and F["s2_in"][j_e0] == 1
    assert F["s2_score"][j_e1] == pytest.approx(0.2)
    assert F["n_sources"][j_e0] == 2 and F["n_sources"][j_c] == 1
    # popularity: c seen by u1, u3 -> log1p(2); e never -> 0
    assert F["item_pop"][j_c] == pytest.approx(np.log1p(2))
    assert F["item_pop"][j_e0] == 0
    # recent (last 5 days before day 10, i.e. (5, 10]): c at day 10 -> 1; d at day 5 -> 0
    assert F["item_pop_recent"][j_c] == pytest.approx(np.log1p(1))
    assert F["item_pop_recent"][j_d] == 0
    assert F["item_days_since_last"][j_d] == pytest.approx(5.0)  # data ends at day 10
    assert np.isnan(F["item_days_since_last"][j_e0])
    # at u1's time (day 2): d first seen day 5 -> age -3 days; before-count 0
    assert F["item_age_at_user"][j_d] == pytest.approx(-3.0)
    assert F["item_pop_before_user"][j_d] == 0
    # at u2's time (day 5): c seen at day 2 only -> 1 before, window (2, 5] -> 0, 3 days since
    assert F["item_pop_before_user"][j_c] == pytest.approx(np.log1p(1))
    assert F["item_pop_window_user"][j_c] == 0
    assert F["item_since_last_at_user"][j_c] == pytest.approx(3.0)
    # user features
    assert F["user_hist_len"][j_d] == pytest.approx(np.log1p(3))
    assert F["user_span_days"][j_d] == pytest.approx(2.0)
    assert F["user_span_days"][j_c] == pytest.approx(2.0)  # u2: day 3 -> 5
    assert F["user_days_since_last"][j_c] == pytest.approx(5.0)
    # sequence: transitions a->b (u1, u2), b->c (u1, u3), b->d (u2); u2's last item is d
    assert F["next_count"][j_c] == 0  # d -> c never
    # u1: last c; c -> d never; within 2 steps of u1's last 2 items (b, c): b -> d once (u2)
    assert F["next_count"][j_d] == 0 and F["window_cooc"][j_d] == pytest.approx(np.log1p(1))
    # u2: last 2 items (b, d); b -> c within 2 steps: u1 (b, c) and u3 (b, c) -> 2
    assert F["window_cooc"][j_c] == pytest.approx(np.log1p(2))
    # categories: u1 history a(X), b(X), c(Y): share X = 2/3, Y = 1/3
    assert F["cat_share_max"][j_d] == pytest.approx(2 / 3)  # d in X and Y
    assert F["cat_share_mean"][j_d] == pytest.approx(0.5)
    assert F["cat_last_match"][j_d] == 1  # u1's last item c (Y) shares Y with d
    assert F["cat_share_max"][j_e0] == 0 and F["cat_last_match"][j_e0] == 0
    # u2 history a(X), b(X), d(X, Y): share Y = 1/3 for c
    assert F["cat_share_max"][j_c] == pytest.approx(1 / 3)


def test_next_prob_and_vectors(data: Dataset) -> None:
    hist = data.histories()
    a, b, c, d, e = data.item_map.to_internal(list("abcde"))
    V = np.zeros((data.n_items + 1, 2), dtype=np.float32)
    V[a], V[b], V[c], V[d], V[e] = [1, 0], [1, 1], [0, 1], [1, 0], [-1, 0]
    fb = FeatureBuilder(["s"], cooc_window=1).fit(hist, vectors={"v": V})
    # an ad-hoc history [a, b] (no times): candidates c, d
    from genrec.data.dataset import UserHistories

    batch = UserHistories.from_sequences([[a, b]], data.n_items).batch(np.array([0]))
    batch.user_ids[:] = 0
    cand = union_candidates([(np.array([[c, d]]), np.array([[2.0, 1.0]], np.float32))], ["s"], 5)
    F = dict(zip(fb.feature_names, fb.transform(batch, cand).T))
    # b -> c twice, b -> d once: next_prob = 2/3 and 1/3
    assert F["next_count"][0] == pytest.approx(np.log1p(2))
    assert F["next_prob"][0] == pytest.approx(2 / 3)
    assert F["next_prob"][1] == pytest.approx(1 / 3)
    # cosine with the last item b = (1, 1)/sqrt2: c -> 1/sqrt2
    assert F["v_cos_last"][0] == pytest.approx(1 / np.sqrt(2), rel=1e-5)
    # no timestamps in an ad-hoc history: time features are missing
    assert np.isnan(F["item_age_at_user"]).all() and np.isnan(F["user_span_days"]).all()
    assert "cat_share_max" not in F  # no categories given


def test_serving_history_past_the_data_end_is_clipped(data: Dataset) -> None:
    """A serving history may end after the fitted data (validation items, temporal split):
    time features are computed at the data end, never from a time the builder never saw."""
    fit_on = data.subset(data.timestamps <= 6 * DAY)  # drop u3's day-10 interaction
    fb = FeatureBuilder(["s1"], recent_days=5.0, user_window_days=3.0, cooc_window=2)
    fb.fit(fit_on.histories())
    a, c = data.item_map.to_internal(["a", "c"])
    (u3,) = data.user_map.to_internal(["u3"])
    batch = data.histories().batch(np.array([u3]))  # last interaction at day 10 > end (6)
    s1 = (np.array([[a, c]]), np.array([[0.9, 0.5]], dtype=np.float32))
    X = fb.transform(batch, union_candidates([s1], ["s1"], data.n_items))
    F = dict(zip(fb.feature_names, X.T))
    assert np.all(F["user_days_since_last"] == 0.0)
    assert np.all(F["item_since_last_at_user"] >= 0.0)
