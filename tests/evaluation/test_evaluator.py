import numpy as np
import pandas as pd
import pytest
import torch

import genrec
from genrec import Dataset
from genrec.config import ModelConfig
from genrec.core.recommender import ScoringRecommender
from genrec.data.splitting import leave_one_out
from genrec.errors import ConfigError, NotFittedError, UnknownNameError


class FixedScores(ScoringRecommender):
    """Test double: scores given by a function of the batch (not registered)."""

    config_class = ModelConfig

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def _fit(self, dataset, valid):
        pass

    def _score(self, batch):
        return self.fn(batch, self.n_items + 1)


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        items = rng.choice(np.arange(1, 41), size=6, replace=False)
        rows += [(u, int(i), t) for t, i in enumerate(items)]
    return leave_one_out(Dataset(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])))


def _target_lookup(split, stage="test"):
    h = split.test if stage == "test" else split.valid
    return {int(u): h.targets[r].indices for r, u in enumerate(h.users)}


def test_constant_scores_never_credit_the_target(split):
    model = FixedScores(lambda b, n: torch.zeros(len(b), n)).fit(split.train)
    res = genrec.evaluate(model, split, ks=[5, 10])
    # every item ties; the target loses every tie, so it is never in a top-10 of 40 items
    assert res.metrics["recall@10"] == 0.0
    assert res.metrics["ndcg@5"] == 0.0


def test_oracle_gets_everything(split):
    targets = _target_lookup(split)

    def oracle(batch, n):
        s = torch.zeros(len(batch), n)
        for r, u in enumerate(batch.user_ids):
            s[r, targets[int(u)]] = 1.0
        return s

    res = genrec.evaluate(FixedScores(oracle).fit(split.train), split, ks=[1, 10])
    assert res.metrics["recall@1"] == 1.0
    assert res.metrics["ndcg@10"] == 1.0
    assert res.metrics["mrr@10"] == 1.0


def test_hand_computed_rank(split):
    # the target is placed at rank 3 for every user: ndcg@5 = 1/log2(4) = 0.5, mrr = 1/3
    targets = _target_lookup(split)

    def third(batch, n):
        s = torch.zeros(len(batch), n)
        for r, u in enumerate(batch.user_ids):
            seen = set(batch.matrix[r].indices.tolist()) | set(targets[int(u)].tolist())
            others = [i for i in range(1, n) if i not in seen][:2]
            s[r, others[0]], s[r, others[1]] = 3.0, 2.5
            s[r, targets[int(u)]] = 2.0
        return s

    res = genrec.evaluate(FixedScores(third).fit(split.train), split, ks=[2, 5])
    assert res.metrics["recall@2"] == 0.0
    assert res.metrics["recall@5"] == 1.0
    assert res.metrics["ndcg@5"] == pytest.approx(0.5)
    assert res.metrics["mrr@5"] == pytest.approx(1 / 3)
    assert res.metrics["precision@5"] == pytest.approx(0.2)


def test_test_stage_history_includes_validation_item(split):
    valid = _target_lookup(split, "valid")

    def likes_valid_item(batch, n):
        s = torch.zeros(len(batch), n)
        for r, u in enumerate(batch.user_ids):
            s[r, valid[int(u)]] = 10.0
        return s

    model = FixedScores(likes_valid_item).fit(split.train)
    val = genrec.evaluate(model, split, stage="valid", ks=[1])
    assert val.metrics["recall@1"] == 1.0  # at validation time it is the target
    test = genrec.evaluate(model, split, ks=[20])
    # at test time the validation item is history: excluded, never recommended
    for r, u in enumerate(test.users):
        assert not set(valid[int(u)]) & set(test.ranked[r].tolist())


def test_sampled_metrics_are_labelled(split):
    model = genrec.get_model("popularity")().fit(split.train)
    res = genrec.evaluate(model, split, ks=[10], sampled_negatives=5)
    assert res.protocol == "sampled-5"
    assert all(k.startswith("sampled_") for k in res.metrics)
    # with the target among 6 candidates, a top-10 list always contains it
    assert res.metrics["sampled_recall@10"] == 1.0


def test_beyond_accuracy_present(split):
    model = genrec.get_model("popularity")().fit(split.train)
    res = genrec.evaluate(model, split, ks=[10])
    for key in ("coverage@10", "gini@10", "novelty@10", "avg_popularity@10"):
        assert key in res.metrics
    # popularity recommends nearly the same list to everyone: low coverage, high Gini
    assert res.metrics["coverage@10"] < 0.6
    assert res.metrics["gini@10"] > 0.5
    assert set(res.per_user) == {
        f"{m}@10" for m in ("recall", "ndcg", "mrr", "hit_rate", "precision", "map")
    }


def test_errors(split):
    model = genrec.get_model("popularity")()
    with pytest.raises(NotFittedError):
        genrec.evaluate(model, split)
    model.fit(split.train)
    with pytest.raises(UnknownNameError, match="Did you mean 'ndcg'"):
        genrec.evaluate(model, split, metrics=["ndgc"])
    with pytest.raises(ConfigError, match="ks must be positive"):
        genrec.evaluate(model, split, ks=[0])
    with pytest.raises(ConfigError, match="stage"):
        genrec.evaluate(model, split, stage="train")
    with pytest.raises(ConfigError, match="sampled_negatives"):
        genrec.evaluate(model, split, sampled_negatives=0)


def _user_scores(batch, n_cols):
    """Scores that depend only on the user (so any batching gives the same lists)."""
    rows = [np.random.default_rng(int(u)).random(n_cols) for u in batch.user_ids]
    return torch.tensor(np.stack(rows), dtype=torch.float32)


class ReorderedScores(FixedScores):
    """FixedScores that batches users in a shuffled order and records each batch's users."""

    def __init__(self, fn):
        super().__init__(fn)
        self.batches: list[list[int]] = []

    def _row_order(self, hist, rows):
        return np.random.default_rng(1).permutation(len(rows))

    def _rank_batch(self, batch, *args):
        self.batches.append(batch.user_ids.tolist())
        return super()._rank_batch(batch, *args)


@pytest.mark.parametrize("sampled", [None, 5])
def test_a_model_row_order_batches_otherwise_and_keeps_results_in_place(split, sampled):
    plain = FixedScores(_user_scores).fit(split.train)
    moved = ReorderedScores(_user_scores).fit(split.train)
    kw = {"ks": [5], "batch_size": 7, "sampled_negatives": sampled, "seed": 3}
    a, b = genrec.evaluate(plain, split, **kw), genrec.evaluate(moved, split, **kw)
    order = np.random.default_rng(1).permutation(len(a.users))
    assert sorted(moved.batches[0]) == sorted(a.users[order[:7]].tolist())  # its order used
    np.testing.assert_array_equal(b.users, a.users)
    np.testing.assert_array_equal(b.ranked, a.ranked)
    assert b.metrics == a.metrics
    for key in a.per_user:
        np.testing.assert_array_equal(b.per_user[key], a.per_user[key])
    # every item ties: only the held-out targets (demote) lose the ties, so they must be
    # aligned with the reordered users too
    flat = ReorderedScores(lambda b, n: torch.zeros(len(b), n)).fit(split.train)
    key = "sampled_recall@5" if sampled else "recall@5"
    assert genrec.evaluate(flat, split, **kw).metrics[key] == 0.0
    users = split.train.user_map.to_external(np.arange(1, 31))
    ra, rb = plain.recommend(users, k=4, batch_size=7), moved.recommend(users, k=4, batch_size=7)
    np.testing.assert_array_equal(rb.internal_item_ids, ra.internal_item_ids)
    np.testing.assert_array_equal(rb.scores, ra.scores)
