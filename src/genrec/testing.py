"""The shipped test kit: a tiny structured dataset and the recommender contract.

:func:`make_synthetic_dataset` builds data in which the held-out item is obviously
predictable, so a model that learns anything beats random by a wide margin.

:class:`RecommenderContract` is a pytest mixin: subclass it, set ``model_name`` (and
``config_overrides`` for a tiny, fast config) and the class runs every behaviour the
:class:`~genrec.core.recommender.Recommender` API promises against that model::

    from genrec.testing import RecommenderContract

    class TestMyModel(RecommenderContract):
        model_name = "my-model"
        config_overrides = {"epochs": 2}
        quality_floor = 0.5  # recall@10 it must reach on the synthetic leave-one-out test

The contract needs ``pytest`` (``pip install 'genrec[dev]'``); the dataset does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from genrec.core.recommender import ScoringRecommender
from genrec.data.dataset import Dataset, IdMap
from genrec.data.splitting import Split, leave_one_out
from genrec.errors import (
    ConfigError,
    DataValidationError,
    GenrecTypeError,
    KClampedWarning,
    MissingExtraError,
    NotFittedError,
    UnknownIdError,
)
from genrec.io import load
from genrec.registry import get_model

try:  # the contract is a pytest mixin; the dataset helper works without pytest
    import pytest
except ImportError:  # pragma: no cover - depends on the environment
    pytest = None  # type: ignore[assignment]

__all__ = [
    "RecommenderContract",
    "make_synthetic_dataset",
    "make_text_dataset",
    "random_recall_at_k",
    "recall_at_k",
]

_T0 = 1_700_000_000  # first timestamp (unix seconds)


def make_synthetic_dataset(
    n_users: int = 60,
    n_items: int = 40,
    seq_len: int = 8,
    seed: int = 0,
    with_items: bool = True,
    *,
    string_ids: bool = False,
    n_clusters: int = 4,
    noise: float = 0.0,
) -> Dataset:
    """A tiny dataset with strong, learnable structure.

    Items are split into ``n_clusters`` contiguous clusters, each an ordered cyclic chain.
    Every user belongs to one cluster (cluster ``c`` is drawn with probability proportional
    to ``1 / (c + 1)``, so popularity is skewed too) and walks ``seq_len`` consecutive items
    of its chain from a random start. The next item, and every unseen cluster-mate, is thus
    highly predictable from the history; e.g. with the defaults (10 items per cluster) a
    leave-one-out test user has seen 7 items of its cluster and the target is one of the 3
    unseen ones.

    Args:
        n_users: number of users (all appear in the interactions).
        n_items: catalogue size; every item is in the id map (and the item table) even if
            no user happened to interact with it.
        seq_len: interactions per user (``seq_len`` <= cluster size avoids repeats).
        seed: random seed; the same arguments always give the same dataset.
        with_items: attach an item table (``item_id, title, genres, year``); the genre is
            ``"Cluster<c>"``.
        string_ids: external ids as strings (``"u007"``, ``"i012"``) instead of integers
            (users ``501 + u``, items ``1001 + i``; never equal to the internal ids).
        n_clusters: number of item clusters.
        noise: probability that an interaction is replaced by a uniformly random item.

    Returns:
        A :class:`~genrec.data.dataset.Dataset` named ``"synthetic"`` with integer unix
        timestamps (strictly increasing per user, users interleaved in time).
    """
    if n_users < 1 or seq_len < 1:
        raise DataValidationError("make_synthetic_dataset needs n_users >= 1 and seq_len >= 1")
    if not 1 <= n_clusters <= n_items:
        raise DataValidationError(
            f"make_synthetic_dataset needs 1 <= n_clusters <= n_items, got {n_clusters}, {n_items}"
        )
    if not 0.0 <= noise <= 1.0:
        raise DataValidationError(f"noise must be in [0, 1], got {noise!r}")
    rng = np.random.default_rng(seed)
    bounds = np.linspace(0, n_items, n_clusters + 1).round().astype(np.int64)  # cluster edges
    cluster_of_item = np.repeat(np.arange(n_clusters), np.diff(bounds))  # (n_items,)
    p = 1.0 / np.arange(1, n_clusters + 1)
    user_cluster = rng.choice(n_clusters, size=n_users, p=p / p.sum())  # (n_users,)
    users, items, times = [], [], []
    for u in range(n_users):
        lo, hi = bounds[user_cluster[u]], bounds[user_cluster[u] + 1]
        size = hi - lo
        start = rng.integers(size)
        walk = lo + (start + np.arange(seq_len)) % size  # (seq_len,) item indices
        if noise > 0:
            flip = rng.random(seq_len) < noise
            walk = np.where(flip, rng.integers(n_items, size=seq_len), walk)
        t0 = _T0 + int(rng.integers(0, 30 * 86_400))
        users.extend([u] * seq_len)
        items.extend(walk.tolist())
        times.extend((t0 + 3_600 * np.arange(seq_len) + rng.integers(0, 3_600, seq_len)).tolist())
    users_a, items_a = np.asarray(users), np.asarray(items)

    def user_id(u: np.ndarray) -> np.ndarray:
        return np.array([f"u{x:03d}" for x in u], dtype=object) if string_ids else 501 + u

    def item_id(i: np.ndarray) -> np.ndarray:
        return np.array([f"i{x:03d}" for x in i], dtype=object) if string_ids else 1001 + i

    interactions = pd.DataFrame(
        {"user_id": user_id(users_a), "item_id": item_id(items_a), "timestamp": times}
    )
    # shuffle rows: the Dataset must order by (user, time) itself
    interactions = interactions.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    table = None
    if with_items:
        idx = np.arange(n_items)
        table = pd.DataFrame(
            {
                "item_id": item_id(idx),
                "title": [f"Item {i:03d} (cluster {c})" for i, c in zip(idx, cluster_of_item)],
                "genres": [f"Cluster{c}" for c in cluster_of_item],
                "year": 1990 + cluster_of_item,
            }
        )
    return Dataset(
        interactions,
        table,
        name="synthetic",
        user_map=IdMap.from_values(user_id(np.arange(n_users))),
        item_map=IdMap.from_values(item_id(np.arange(n_items))),
    )


#: Items of :func:`make_text_dataset`: id -> (title, categories); ``p8`` has no metadata.
TEXT_ITEMS = {
    "p1": ("Hydrating face moisturizer for dry skin", "Skin Care|Moisturizers"),
    "p2": ("Oil-free light moisturizer gel", "Skin Care|Moisturizers"),
    "p3": ("Volumizing shampoo for fine hair", "Hair Care|Shampoo"),
    "p4": ("Repair conditioner for damaged hair", "Hair Care|Conditioner"),
    "p5": ("Matte red lipstick", "Makeup|Lips"),
    "p6": ("Waterproof black mascara", "Makeup|Eyes"),
    "p7": ("Rich night cream for very dry skin", "Skin Care|Moisturizers"),
}


def make_text_dataset() -> Dataset:
    """A tiny shop with item text, for text models and search.

    Items ``p1..p8`` (:data:`TEXT_ITEMS`): skin care ``p1, p2, p7``, hair care ``p3, p4``,
    makeup ``p5, p6``. ``p7`` is a cold item (in the catalogue and the item table, but no
    interactions) and ``p8`` has interactions but no metadata. Users: ``u1`` bought skin care
    (``p1, p2``), ``u2`` hair care, ``u3`` makeup, ``u4`` and ``u5`` a mix, ``u6`` only ``p8``.
    Popularity: ``p1`` (3 users) first.
    """
    history = {
        "u1": ["p1", "p2"],
        "u2": ["p3", "p4"],
        "u3": ["p5", "p6"],
        "u4": ["p1", "p3"],
        "u5": ["p2", "p5", "p1"],
        "u6": ["p8"],
    }
    rows = [(u, i, t) for u, items in history.items() for t, i in enumerate(items)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    table = pd.DataFrame(
        [(i, title, cats) for i, (title, cats) in TEXT_ITEMS.items()],
        columns=["item_id", "title", "genres"],
    )
    return Dataset(
        interactions,
        table,
        name="shop",
        item_map=IdMap([f"p{i}" for i in range(1, 9)]),
    )


def recall_at_k(model: Any, split: Split, k: int = 10) -> float:
    """Mean recall@k on ``split.test`` (targets vs ``model.recommend(..., history=...)``).

    Self-contained (does not use :mod:`genrec.evaluation`), for the contract's sanity check.
    """
    test = split.test
    users = model.user_map.to_external(test.users)
    recs = model.recommend(users, k=k, history=test.history)
    targets = test.targets.toarray()  # (U, n_items + 1); column 0 (padding) is never a target
    hits = np.take_along_axis(targets, recs.internal_item_ids, axis=1) > 0  # (U, k)
    return float((hits.sum(1) / np.maximum(test.n_targets, 1)).mean())


def random_recall_at_k(split: Split, k: int = 10) -> float:
    """Expected recall@k of a uniformly random ranking of the unseen items (an upper bound:
    targets already in the history count as reachable)."""
    test = split.test
    n_items = test.history.n_items
    n_seen = np.diff(test.history.matrix()[test.users].indptr)  # (U,)
    return float(np.minimum(1.0, k / np.maximum(n_items - n_seen, 1)).mean())


if pytest is not None:

    class RecommenderContract:
        """Pytest mixin: every behaviour the public ``Recommender`` API promises.

        Class attributes:
            model_name: registered model name (required).
            config_overrides: config fields for a tiny, fast model.
            quality_floor: recall@10 the model must reach on the synthetic leave-one-out test
                (it must also beat a random ranking); ``None`` skips the quality check.
            recommends_seen_items: the model scores some seen items highly enough that they
                show up when ``exclude_seen=False`` on the synthetic data.
            k: list length used by the tests.
        """

        model_name: ClassVar[str] = ""
        config_overrides: ClassVar[dict[str, Any]] = {}
        quality_floor: ClassVar[float | None] = 0.0
        recommends_seen_items: ClassVar[bool] = True
        k: ClassVar[int] = 10

        # -------------------------------------------------------------- helpers
        @classmethod
        def make_model(cls, **overrides: Any) -> Any:
            """An unfitted model with the tiny config plus ``overrides``."""

            return get_model(cls.model_name)(**{**cls.config_overrides, **overrides})

        @staticmethod
        def seen_sets(model: Any, histories: Any = None) -> list[set[int]]:
            """Per internal user id, the set of internal item ids in the history."""
            mat = (model.train_histories_ if histories is None else histories).matrix
            ptr = mat.indptr
            return [set(mat.indices[ptr[u] : ptr[u + 1]].tolist()) for u in range(mat.shape[0])]

        @staticmethod
        def some_users(model: Any, n: int = 12) -> np.ndarray:
            """External ids of ``n`` known users spread over the user map."""
            ids = model.user_map.external_ids
            return ids[np.linspace(0, len(ids) - 1, min(n, len(ids))).round().astype(int)]

        def assert_valid_lists(self, model: Any, recs: Any, k: int) -> None:
            """Shapes, dtypes, catalogue ids, no duplicates, sorted scores, consistent padding."""
            U = len(recs.user_ids)
            assert recs.item_ids.shape == (U, k)
            assert recs.internal_item_ids.shape == (U, k)
            assert recs.scores.shape == (U, k)
            assert recs.scores.dtype == np.float32
            catalogue = set(model.item_map.to_list())
            internal = recs.internal_item_ids
            assert internal.min() >= 0 and internal.max() <= model.n_items
            for r in range(U):
                real = internal[r] > 0
                # padding only at the end of a list
                assert not np.any(np.diff(real.astype(int)) > 0), internal[r]
                ids = [x.item() if hasattr(x, "item") else x for x in recs.item_ids[r][real]]
                assert all(x in catalogue for x in ids), ids
                assert all(x is None for x in recs.item_ids[r][~real])
                assert len(set(internal[r][real])) == int(real.sum()), "duplicate items"
                assert np.all(np.isneginf(recs.scores[r][~real]))
                s = recs.scores[r][real]
                assert np.all(np.isfinite(s))
                assert np.all(s[:-1] >= s[1:]), f"scores not sorted: {s}"
                mapped = model.item_map.to_internal(ids, what="item") if ids else []
                assert np.array_equal(mapped, internal[r][real])

        # -------------------------------------------------------------- fixtures
        @pytest.fixture(autouse=True)
        def _needs_extras(self) -> None:
            """Skip (naming the extra) when the model's optional packages are missing."""
            missing = get_model(self.model_name).missing_extras()
            if missing:
                extras = ",".join(missing)
                pytest.skip(f"{self.model_name} needs pip install 'genrec[{extras}]'")

        @pytest.fixture(scope="class")
        @classmethod
        def dataset(cls) -> Dataset:
            return make_synthetic_dataset()

        @pytest.fixture(scope="class")
        @classmethod
        def split(cls, dataset: Dataset) -> Split:
            return leave_one_out(dataset)

        @pytest.fixture(scope="class")
        @classmethod
        def fitted(cls, split: Split) -> Any:
            """The model fitted once on the training split; tests must not modify it."""
            return cls.make_model().fit(split.train)

        # -------------------------------------------------------------- fitting
        def test_fit_returns_self(self, split: Split) -> None:
            model = self.make_model()
            assert not model.is_fitted
            assert model.fit(split.train) is model
            assert model.is_fitted
            assert model.n_items == split.train.n_items

        def test_fit_rejects_non_dataset(self, split: Split) -> None:

            model = self.make_model()
            with pytest.raises(GenrecTypeError, match=r"Dataset.*genrec\.Dataset\(df\)"):
                model.fit(split.train.interactions)
            with pytest.raises(GenrecTypeError, match="NoneType"):
                model.fit(None)

        def test_unknown_config_key(self) -> None:

            cls = get_model(self.model_name)
            with pytest.raises(ConfigError, match="not_a_real_key"):
                cls(not_a_real_key=1)
            with pytest.raises(ConfigError, match="not_a_real_key"):
                cls({"not_a_real_key": 1})

        def test_not_fitted(self, tmp_path: Path) -> None:

            model = self.make_model()
            with pytest.raises(NotFittedError):
                model.recommend([1], k=self.k)
            with pytest.raises(NotFittedError):
                model.recommend_for_history([[1]], k=self.k)
            with pytest.raises(NotFittedError):
                model.save(tmp_path / "never")
            assert not (tmp_path / "never").exists()

        def test_refit_same_seed_same_output(self, split: Split, fitted: Any) -> None:
            again = self.make_model().fit(split.train)
            users = fitted.user_map.external_ids
            a = fitted.recommend(users, k=self.k)
            b = again.recommend(users, k=self.k)
            np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
            np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)

        # -------------------------------------------------------------- recommending
        def test_recommend_shapes_and_ids(self, fitted: Any) -> None:
            users = self.some_users(fitted)
            recs = fitted.recommend(users, k=self.k)
            assert list(recs.user_ids) == list(users)
            self.assert_valid_lists(fitted, recs, self.k)
            assert (recs.internal_item_ids > 0).all()  # 40 items, <= 8 seen: lists are full
            frame = recs.to_frame()
            assert list(frame.columns) == ["user_id", "rank", "item_id", "score"]
            assert len(frame) == len(users) * self.k

        def test_single_user_and_k1(self, fitted: Any) -> None:
            user = fitted.user_map.external_ids[0]
            recs = fitted.recommend([user], k=1)
            self.assert_valid_lists(fitted, recs, 1)
            full = fitted.recommend([user], k=self.k)
            assert recs.internal_item_ids[0, 0] == full.internal_item_ids[0, 0]

        def test_exclude_seen(self, fitted: Any, split: Split) -> None:
            users = fitted.user_map.external_ids
            internal = fitted.user_map.to_internal(users)
            seen = self.seen_sets(fitted)
            recs = fitted.recommend(users, k=self.k, exclude_seen=True)
            for r, u in enumerate(internal):
                assert not seen[u] & set(recs.internal_item_ids[r].tolist()), f"user {users[r]}"
            # with an explicit history, that history's items are excluded
            hist = split.test.history
            seen_t = self.seen_sets(fitted, hist.histories())
            recs = fitted.recommend(users, k=self.k, history=hist)
            self.assert_valid_lists(fitted, recs, self.k)
            for r, u in enumerate(internal):
                assert not seen_t[u] & set(recs.internal_item_ids[r].tolist()), f"user {users[r]}"

        def test_include_seen(self, fitted: Any) -> None:
            users = fitted.user_map.external_ids
            internal = fitted.user_map.to_internal(users)
            seen = self.seen_sets(fitted)
            recs = fitted.recommend(users, k=self.k, exclude_seen=False)
            self.assert_valid_lists(fitted, recs, self.k)
            n_seen = sum(
                len(seen[u] & set(recs.internal_item_ids[r].tolist()))
                for r, u in enumerate(internal)
            )
            if self.recommends_seen_items:
                assert n_seen > 0, "exclude_seen=False never returned a seen item"

        def test_candidates(self, fitted: Any) -> None:
            users = fitted.user_map.external_ids
            internal = fitted.user_map.to_internal(users)
            cand_ext = fitted.item_map.external_ids[::6]  # 7 of 40 items, every cluster
            cand = set(fitted.item_map.to_internal(cand_ext).tolist())
            seen = self.seen_sets(fitted)
            recs = fitted.recommend(users, k=self.k, candidates=cand_ext)
            self.assert_valid_lists(fitted, recs, self.k)
            exact = self._scores_everything(fitted)
            for r, u in enumerate(internal):
                got = set(recs.internal_item_ids[r][recs.internal_item_ids[r] > 0])
                allowed = cand - seen[u]
                assert got <= allowed
                if exact:  # a scoring model returns every qualifying item, then pads
                    assert len(got) == min(self.k, len(allowed))
            # without seen-filtering every candidate qualifies: 7 items then 3 pads
            recs = fitted.recommend(users, k=self.k, candidates=cand_ext, exclude_seen=False)
            if exact:
                assert (recs.internal_item_ids[:, : len(cand)] > 0).all()
                assert (recs.internal_item_ids[:, len(cand) :] == 0).all()
                assert (recs.item_ids[:, len(cand) :] == None).all()  # noqa: E711

        def test_k_larger_than_catalogue(self, fitted: Any) -> None:
            """``k`` above the catalogue is lowered to it, with a warning (docs/errors.md)."""
            users = self.some_users(fitted)
            k = fitted.n_items + 5
            with pytest.warns(KClampedWarning, match=f"k={k} is larger than the catalogue"):
                recs = fitted.recommend(users, k=k)
            self.assert_valid_lists(fitted, recs, fitted.n_items)
            seen = self.seen_sets(fitted)
            n_real = (recs.internal_item_ids > 0).sum(1)
            expected = [fitted.n_items - len(seen[u]) for u in fitted.user_map.to_internal(users)]
            if self._scores_everything(fitted):
                np.testing.assert_array_equal(n_real, expected)
            else:
                assert (n_real <= np.asarray(expected)).all()
            with pytest.warns(KClampedWarning):
                recs = fitted.recommend_for_history([[]], k=10**12)  # never allocated
            assert recs.item_ids.shape == (1, fitted.n_items)

        def test_bad_k(self, fitted: Any) -> None:

            user = fitted.user_map.external_ids[0]
            item = fitted.item_map.external_ids[0]
            for k in (0, -1, 2.5, True):
                with pytest.raises(ConfigError, match="k must be"):
                    fitted.recommend([user], k=k)
                with pytest.raises(ConfigError, match="k must be"):
                    fitted.recommend_for_history([[item]], k=k)

        def test_unknown_user(self, fitted: Any) -> None:

            known = fitted.user_map.external_ids[0]
            for ghost in ("ghost-user-42", 987_654_321):
                with pytest.raises(UnknownIdError, match=str(ghost)):
                    fitted.recommend([known, ghost], k=self.k)

        def test_on_unknown_popular(self, fitted: Any) -> None:

            known = fitted.user_map.external_ids[0]
            recs = fitted.recommend([known, "ghost-user-42"], k=self.k, on_unknown="popular")
            self.assert_valid_lists(fitted, recs, self.k)
            pop = np.asarray(fitted.item_popularity_)
            expected = sorted(range(1, fitted.n_items + 1), key=lambda i: (-pop[i], i))[: self.k]
            assert recs.internal_item_ids[1].tolist() == expected
            alone = fitted.recommend([known], k=self.k)
            np.testing.assert_array_equal(recs.internal_item_ids[0], alone.internal_item_ids[0])
            with pytest.raises(ConfigError, match="on_unknown"):
                fitted.recommend([known], k=self.k, on_unknown="ignore")

        def test_recommend_for_history(self, fitted: Any, dataset: Dataset) -> None:
            seqs = dataset.sequences()
            hist_int = [seqs[1][:5].tolist(), [], seqs[2].tolist()]
            hist_ext = [
                fitted.item_map.to_external(np.asarray(h, dtype=np.int64)).tolist() if h else []
                for h in hist_int
            ]
            recs = fitted.recommend_for_history(hist_ext, k=self.k)
            assert len(recs.user_ids) == 3 and all(u is None for u in recs.user_ids)
            self.assert_valid_lists(fitted, recs, self.k)
            for r, h in enumerate(hist_int):
                assert not set(h) & set(recs.internal_item_ids[r].tolist())
            recs = fitted.recommend_for_history(hist_ext, k=self.k, exclude_seen=False)
            self.assert_valid_lists(fitted, recs, self.k)

        def test_recommend_for_history_unknown_item(self, fitted: Any) -> None:

            item = fitted.item_map.external_ids[0]
            with pytest.raises(UnknownIdError, match="ghost-item"):
                fitted.recommend_for_history([[item, "ghost-item"]], k=self.k)

        # -------------------------------------------------------------- persistence
        def test_save_load_roundtrip(self, fitted: Any, split: Split, tmp_path: Path) -> None:

            path = fitted.save(tmp_path / "artifact")
            loaded = load(path)
            assert type(loaded) is type(fitted)
            assert loaded.config == fitted.config
            users = fitted.user_map.external_ids
            for kwargs in ({}, {"history": split.test.history}, {"exclude_seen": False}):
                a = fitted.recommend(users, k=self.k, **kwargs)
                b = loaded.recommend(users, k=self.k, **kwargs)
                np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
                np.testing.assert_array_equal(a.item_ids, b.item_ids)
                np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
            hist = [fitted.item_map.external_ids[:3].tolist()]
            a = fitted.recommend_for_history(hist, k=self.k)
            b = loaded.recommend_for_history(hist, k=self.k)
            np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
            np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)

        def test_string_ids(self) -> None:
            ds = make_synthetic_dataset(string_ids=True)
            model = self.make_model().fit(leave_one_out(ds).train)
            users = ["u000", "u007"]
            recs = model.recommend(users, k=self.k)
            self.assert_valid_lists(model, recs, self.k)
            assert all(isinstance(x, str) and x.startswith("i") for x in recs.item_ids.ravel())
            recs = model.recommend_for_history([["i000", "i001"]], k=self.k)
            self.assert_valid_lists(model, recs, self.k)

        # -------------------------------------------------------------- quality
        def test_quality_beats_random(self, fitted: Any, split: Split) -> None:
            if self.quality_floor is None:
                pytest.skip(f"{self.model_name} opts out of the quality check")
            recall = recall_at_k(fitted, split, k=10)
            chance = random_recall_at_k(split, k=10)
            assert recall > chance, f"recall@10 {recall:.3f} <= random {chance:.3f}"
            assert recall >= self.quality_floor, (
                f"recall@10 {recall:.3f} < floor {self.quality_floor} (random {chance:.3f})"
            )

        # -------------------------------------------------------------- internals
        @staticmethod
        def _scores_everything(model: Any) -> bool:

            return isinstance(model, ScoringRecommender)

else:  # pragma: no cover - depends on the environment

    def __getattr__(name: str) -> Any:
        if name == "RecommenderContract":
            raise MissingExtraError(
                "genrec.testing.RecommenderContract needs pytest: pip install 'genrec[dev]'"
            )
        raise AttributeError(name)
