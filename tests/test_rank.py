"""The one ranking call, ``Recommender.rank(RankRequest)``: its validation, the strategies
under it, and the callers built on it (recommend, the evaluator, the cascade's candidates)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import genrec
from genrec.core.recommender import (
    FitOptions,
    GenerativeRecommender,
    RankRequest,
    ScoringRecommender,
    _demote_within_ties,
)
from genrec.data.dataset import UserHistories
from genrec.errors import ConfigError, DataValidationError
from genrec.testing import make_synthetic_dataset


@pytest.fixture(scope="module")
def split():
    return genrec.split_dataset(make_synthetic_dataset(n_users=40, n_items=25, seed=2), "loo")


@pytest.fixture(scope="module")
def ease(split):
    return genrec.get_model("ease")(l2=10.0).fit(split.train)


class ListGenerator(GenerativeRecommender):
    """Generates a fixed list per row (best first) and records what it was allowed."""

    name = "list-generator"

    def __init__(self, lists, scores):
        super().__init__()
        self.lists, self.list_scores, self.seen_allowed = lists, scores, []

    def _fit(self, dataset, valid):
        pass

    def _generate(self, batch, k, allowed):
        self.seen_allowed.append(allowed.dense().clone())
        rows = np.repeat(np.asarray(self.lists)[None], len(batch), 0)
        return rows, np.repeat(np.asarray(self.list_scores, np.float32)[None], len(batch), 0)


def _request(model, rows, **kw):
    return RankRequest(histories=model.train_histories_, rows=np.asarray(rows), **kw)


def test_request_validation(ease):
    hist = ease.train_histories_
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        RankRequest(histories=hist, rows=np.array([1]), k=0)
    with pytest.raises(DataValidationError, match="rows must be in"):
        RankRequest(histories=hist, rows=np.array([hist.n_rows]), k=3)
    with pytest.raises(DataValidationError, match="1-D array of integer"):
        RankRequest(histories=hist, rows=np.array([[1]]), k=3)
    with pytest.raises(DataValidationError, match="candidates mask must have shape"):
        RankRequest(histories=hist, rows=np.array([1]), k=3, candidates=np.ones(3, bool))
    with pytest.raises(DataValidationError, match="demote must"):
        RankRequest(histories=hist, rows=np.array([1, 2]), k=3, demote=sp.csr_matrix((1, 26)))
    with pytest.raises(TypeError, match="UserHistories"):
        RankRequest(histories="not histories", rows=np.array([1]), k=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="RankRequest"):
        ease.rank({"rows": [1]})  # type: ignore[arg-type]
    other = UserHistories.from_sequences([[1, 2]], n_items=10)
    with pytest.raises(DataValidationError, match="cover 10 items"):
        ease.rank(RankRequest(histories=other, rows=np.array([0]), k=3))
    with pytest.raises(ConfigError, match="max_batch_bytes"):
        RankRequest(histories=hist, rows=np.array([1]), k=3, max_batch_bytes=True)
    with pytest.raises(DataValidationError, match="popular must be a bool"):
        RankRequest(histories=hist, rows=np.array([1]), k=3, popular=np.array([1]))
    with pytest.raises(DataValidationError, match="non-negative integer user ids"):
        RankRequest(histories=hist, rows=np.array([1]), k=3, user_ids=np.array([-1]))


def test_an_empty_checkpoint_path_is_refused(split):
    model = genrec.get_model("sasrec")(epochs=1, embedding_dim=8, n_blocks=1, max_seq_len=5)
    with pytest.raises(ConfigError, match="checkpoint_dir is empty"):
        model.fit(split.train, checkpoint_dir="  ")


def test_rank_masks_seen_items_and_candidates(ease, split):
    users = np.arange(1, 11)
    ranking = ease.rank(_request(ease, users, k=5))
    hist = ease.train_histories_.matrix
    for r, u in enumerate(users):
        assert not set(ranking.items[r]) & set(hist[u].indices)
    allow = np.zeros(ease.n_items + 1, bool)
    allow[[3, 4, 5]] = True
    only = ease.rank(_request(ease, users, k=5, candidates=allow))
    assert set(only.items[only.items > 0].tolist()) <= {3, 4, 5}
    assert np.isneginf(only.scores[only.items == 0]).all()  # padded where fewer qualified
    full = ease.rank(_request(ease, users, k=5, keep_scores=True))
    assert full.all_scores.shape == (10, ease.n_items + 1)
    raw = ease.score(ease.train_histories_.batch(users)).numpy()
    np.testing.assert_allclose(full.all_scores, raw)


def test_popular_rows_and_empty_anonymous_histories_get_popularity(ease):
    hist = UserHistories.from_sequences([[], [1, 2]], ease.n_items)
    req = RankRequest(histories=hist, rows=np.array([0, 1]), k=4, user_ids=np.zeros(2, int))
    ranking = ease.rank(req)
    pop = np.asarray(ease.item_popularity_, dtype=np.float32)
    assert np.allclose(ranking.scores[0], np.sort(pop[1:])[::-1][:4])  # popularity
    assert not np.allclose(ranking.scores[1], ranking.scores[0])  # the model's own scores
    forced = ease.rank(
        RankRequest(histories=ease.train_histories_, rows=np.array([3]), k=4, popular=[True])
    )
    np.testing.assert_allclose(forced.scores[0], ranking.scores[0])


def test_ties_never_favour_demoted_items(ease):
    class Flat(ScoringRecommender):
        name = "flat"

        def _fit(self, dataset, valid):
            pass

        def _score(self, batch):
            return torch.zeros(len(batch), self.n_items + 1)

    flat = Flat().fit(make_synthetic_dataset(n_users=40, n_items=25, seed=2))
    users = np.array([1, 2])
    first = flat.rank(_request(flat, users, k=3)).items
    demote = sp.csr_matrix((np.ones(2), (np.arange(2), first[:, 0])), shape=(2, 26))
    again = flat.rank(_request(flat, users, k=3, demote=demote)).items
    assert not (again == first[:, :1]).any()  # the demoted item lost every tie


def test_generative_strategy_filters_pads_and_breaks_ties_within_runs():
    train = make_synthetic_dataset(n_users=40, n_items=25, seed=2)
    gen = ListGenerator([5, 6, 7, 8, 0], [-1.0, -1.0, -1.0, -2.0, -np.inf]).fit(train)
    hist = UserHistories.from_sequences([[6], [2]], gen.n_items)
    allow = np.ones(gen.n_items + 1, bool)
    allow[8] = False
    demote = sp.csr_matrix((np.ones(1), ([1], [5])), shape=(2, gen.n_items + 1))
    req = RankRequest(
        histories=hist, rows=np.array([0, 1]), k=4, candidates=allow, demote=demote,
        user_ids=np.array([1, 2]),
    )  # fmt: skip
    ranking = gen.rank(req)
    np.testing.assert_array_equal(ranking.items[0], [5, 7, 0, 0])  # 6 seen, 8 not allowed
    np.testing.assert_array_equal(ranking.items[1], [6, 7, 5, 0])  # 5 demoted within its tie
    assert ranking.scores[1, 3] == -np.inf
    allowed = gen.seen_allowed[0]  # the generator was told what it may return
    assert (
        not allowed[0, 6] and allowed[1, 6] and not allowed[:, 8].any() and not allowed[:, 0].any()
    )


def test_demote_within_ties_keeps_the_generated_order_elsewhere():
    items = np.array([[4, 3, 2, 1]])
    scores = np.array([[-1.0, -2.0, -2.0, -3.0]], dtype=np.float32)
    demote = sp.csr_matrix((np.ones(2), ([0, 0], [3, 1])), shape=(1, 5))
    got, got_scores = _demote_within_ties(items, scores, demote)
    np.testing.assert_array_equal(got, [[4, 2, 3, 1]])  # 3 after 2 (tie); 1 alone stays last
    np.testing.assert_array_equal(got_scores, scores)


def test_fit_options_are_one_signature_for_every_model(split, tmp_path):
    with pytest.raises(ConfigError, match="fitted in one go"):
        genrec.get_model("ease")().fit(split.train, checkpoint_dir=tmp_path / "ck")
    with pytest.raises(TypeError, match="unexpected keyword"):
        genrec.get_model("ease")().fit(split.train, checkpoint=True)
    with pytest.raises(TypeError, match="FitOptions"):
        genrec.get_model("ease")().fit(split.train, options={"resume": True})
    calls = []
    model = genrec.get_model("ease")()
    model.fit(split.train, options=FitOptions(on_epoch_end=lambda e, r: calls.append(e)))
    assert calls == []  # fitted in one go: no epochs to report
    sas = genrec.get_model("sasrec")(epochs=2, embedding_dim=8, max_seq_len=5, progress=False)
    sas.fit(split.train, split.valid, options=FitOptions(on_epoch_end=lambda e, r: calls.append(e)))
    assert calls == [0, 1]


def test_cascade_with_a_tiger_source_generates_with_beam_search(split, monkeypatch):
    """A generative source ranks through its own strategy (beam search), never by scoring
    every item (TIGER used to be a scorer by accident)."""
    from genrec.models.tiger import TIGER
    from genrec.ranking.candidates import source_top_n

    tiger = TIGER(
        epochs=1, embedding_dim=16, n_heads=2, head_dim=8, ffn_dim=32, n_encoder_layers=1,
        n_decoder_layers=1, max_seq_len=5, n_levels=3, codebook_size=8, num_beams=10,
        n_user_buckets=8, progress=False, val_metric="ndcg@5",
    ).fit(split.train)  # fmt: skip
    assert not isinstance(tiger, ScoringRecommender)
    calls = {"decode": 0}
    real = TIGER.decode

    def decode(self, *args, **kwargs):
        calls["decode"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TIGER, "decode", decode)
    monkeypatch.setattr(
        TIGER, "score_all_items", lambda *a, **k: pytest.fail("exact scoring was used to rank")
    )
    batch = split.train.histories().batch(np.arange(1, 9))
    items, scores, full = source_top_n(tiger, batch, n=5)
    assert calls["decode"] == 1 and full is None and items.shape == (8, 5)
    assert (items > 0).all() and np.all(np.diff(scores, axis=1) <= 0)


def test_memory_bound_shrinks_batches_without_changing_results(ease, monkeypatch):
    users = np.arange(1, 41)
    full = ease.rank(_request(ease, users, k=5))
    sizes = []
    real = type(ease)._rank_batch

    def spy(self, batch, *args):
        sizes.append(len(batch))
        return real(self, batch, *args)

    monkeypatch.setattr(type(ease), "_rank_batch", spy)
    row = 4 * (ease.n_items + 1)
    small = ease.rank(_request(ease, users, k=5, max_batch_bytes=3 * row))
    assert max(sizes) == 3 and len(sizes) == 14  # ceil(40 / 3) batches of <= 3 rows
    np.testing.assert_array_equal(small.items, full.items)
    np.testing.assert_array_equal(small.scores, full.scores)
    with pytest.raises(ConfigError, match="max_batch_bytes"):
        _request(ease, users, k=5, max_batch_bytes=0)


class CachedScores(ScoringRecommender):
    """Returns the same tensor it keeps on every call (fresh_scores stays False)."""

    name = "cached-scores"

    def __init__(self):
        super().__init__()

    def _fit(self, dataset, valid):
        self.cache = torch.arange(self.n_items + 1, dtype=torch.float32).repeat(40, 1)

    def _score(self, batch):
        return self.cache[: len(batch)]  # a view of what the model keeps


def test_rank_never_writes_into_scores_the_model_keeps(split):
    model = CachedScores().fit(split.train)
    before = model.cache.clone()
    ranked = model.rank(_request(model, np.arange(1, 11), k=5)).items
    assert torch.equal(model.cache, before)  # masking went into a copy
    seen = model.train_histories_.matrix[1:11]
    assert not any(set(r) & set(seen[i].indices) for i, r in enumerate(ranked))


def test_fresh_scores_models_rank_exactly_as_with_a_copy(ease, split, monkeypatch):
    """EASE and ALS declare fresh scores (no copy before masking): same lists either way."""
    assert ease.fresh_scores
    req = _request(ease, np.arange(1, 30), k=10, demote=None)
    fresh = ease.rank(req).items
    monkeypatch.setattr(type(ease), "fresh_scores", False)
    assert np.array_equal(ease.rank(req).items, fresh)


def test_nan_scores_are_refused_after_the_top_k(split):
    model = CachedScores().fit(split.train)
    model.cache[3, 7] = float("nan")
    with pytest.raises(ValueError, match="NaN scores"):
        model.rank(_request(model, np.arange(1, 6), k=3))


def test_allowed_items_without_a_dense_table(ease) -> None:
    """AllowedItems answers membership from the sparse seen rows and the candidates, the
    same as its dense table, and builds the table only when asked."""
    from genrec.core.recommender import AllowedItems

    hist = ease.train_histories_
    batch = hist.batch(np.arange(1, 9))
    n = ease.n_items
    rng = np.random.default_rng(0)
    items = rng.integers(0, n + 1, (8, 30))
    for candidates in (None, rng.random(n + 1) < 0.5, sp.csr_matrix(rng.random((8, n + 1)) < 0.3)):
        for exclude_seen in (True, False):
            allowed = AllowedItems.build(batch, n, exclude_seen, candidates)
            got = allowed.contains(items)
            assert allowed._dense is None
            table = allowed.dense().numpy()
            assert not table[:, 0].any()
            if exclude_seen:
                assert not table[batch.matrix.toarray() > 0].any()
            np.testing.assert_array_equal(got, np.take_along_axis(table, items, 1))
            rows = np.array([5, 2])
            np.testing.assert_array_equal(allowed.dense_rows(rows).numpy(), table[rows])
            np.testing.assert_array_equal(
                allowed.contains(items[:2], rows=rows),
                np.take_along_axis(table[rows], items[:2], 1),
            )


def test_allowed_items_deny_stored_entries_whatever_their_weight() -> None:
    """A seen item stored with weight 0 (or twice, unsorted) is still excluded, as the dense
    table of the stored pattern always did."""
    from genrec.core.recommender import AllowedItems

    weights = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
    seen = sp.csr_matrix(
        (weights, np.array([3, 1, 3, 2, 3]), np.array([0, 2, 5])), shape=(2, 5)
    )  # row 0: items 3 (weight 0) and 1; row 1: items 3, 2, 3 (a repeat)
    allowed = AllowedItems(2, 4, seen)
    got = allowed.contains(np.array([[3, 1, 2, 4], [3, 2, 1, 4]]))
    np.testing.assert_array_equal(got, [[False, False, True, True], [False, False, True, True]])
    np.testing.assert_array_equal(
        allowed.dense().numpy(),
        [[False, False, True, False, True], [False, True, False, False, True]],
    )
