"""The registered cascade: no-leak protocol, persistence, LightGBM, error cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import genrec
from genrec.core.recommender import Recommender
from genrec.data.splitting import Split, leave_one_out
from genrec.errors import DataValidationError, UnknownNameError
from genrec.ranking.cascade import Cascade, _window_mask
from genrec.ranking.features import FeatureBuilder
from genrec.registry import get_model
from genrec.testing import make_synthetic_dataset, recall_at_k

ALS = {"embedding_dim": 8, "iterations": 10, "regularization": 1.0, "num_threads": 1}
TINY: dict[str, Any] = {
    "candidates": [{"model": "als", "n": 15, "config": ALS}],
    "iterations": 30,
    "depth": 4,
    "threads": 1,
}


@pytest.fixture(scope="module")
def split() -> Split:
    return leave_one_out(make_synthetic_dataset(n_users=80, noise=0.1, seed=1))


def _pairs(ds: Any) -> set[tuple[int, int, float]]:
    return set(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), ds.timestamps.tolist()))


def test_no_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranker's labels are the last *training* interactions, the candidate models that
    produced its candidates never saw them, and no fit ever receives a test interaction."""
    split = leave_one_out(make_synthetic_dataset(n_users=80, seed=1))  # no repeated items
    fits: list[Any] = []
    built: list[Any] = []
    windows: list[tuple[np.ndarray, np.ndarray]] = []
    orig_fit, orig_rows, orig_build = Recommender.fit, Cascade._ranker_rows, FeatureBuilder.fit

    def spy_fit(self: Any, dataset: Any, valid: Any = None) -> Any:
        if not isinstance(self, Cascade):
            fits.append(dataset)
        return orig_fit(self, dataset, valid)

    def spy_rows(self: Any, models: Any, builder: Any, hist: Any, users: Any, targets: Any):
        windows.append((users.copy(), targets.copy()))
        return orig_rows(self, models, builder, hist, users, targets)

    def spy_build(self: Any, hist: Any, **kw: Any) -> Any:
        built.append(hist.matrix.copy())
        return orig_build(self, hist, **kw)

    monkeypatch.setattr(Recommender, "fit", spy_fit)
    monkeypatch.setattr(Cascade, "_ranker_rows", spy_rows)
    monkeypatch.setattr(FeatureBuilder, "fit", spy_build)
    model = get_model("cascade")(**TINY).fit(split.train, valid=split.valid)

    full = split.test.history  # train + validation, i.e. everything except the test items
    test_u = np.repeat(split.test.users, split.test.n_targets)
    test_pairs = set(zip(test_u.tolist(), split.test.targets.indices.tolist()))
    valid_u = np.repeat(split.valid.users, split.valid.n_targets)
    valid_pairs = set(zip(valid_u.tolist(), split.valid.targets.indices.tolist()))
    train_pairs = set(zip(split.train.user_idx.tolist(), split.train.item_idx.tolist()))
    assert not (test_pairs | valid_pairs) & train_pairs  # the synthetic data has no repeats
    # 1. the ranker's labels: each user's last training interaction, never a test target
    ((users, targets),) = windows
    label_pairs = set(zip(users.tolist(), targets.tolist()))
    mask = _window_mask(split.train)
    expected = set(zip(split.train.user_idx[mask].tolist(), split.train.item_idx[mask].tolist()))
    assert label_pairs == expected
    assert not label_pairs & test_pairs and not label_pairs & valid_pairs
    # 2. two candidate fits: without the window (for the ranker), then on all training data
    assert len(fits) == 2
    inner, refit = fits
    assert inner.n_interactions == split.train.n_interactions - len(label_pairs)
    inner_pairs = set(zip(inner.user_idx.tolist(), inner.item_idx.tolist()))
    assert not inner_pairs & label_pairs
    assert _pairs(refit) == _pairs(split.train)
    for ds in fits:  # no fit ever saw a test or validation interaction
        pairs = set(zip(ds.user_idx.tolist(), ds.item_idx.tolist()))
        assert not pairs & test_pairs and not pairs & valid_pairs
    # 3. the ranker's feature statistics exclude the window; inference ones are the train data
    assert built[0].nnz == inner.histories().matrix.nnz
    assert built[1].nnz == split.train.histories().matrix.nnz
    assert full.n_interactions > split.train.n_interactions
    # 4. the candidate recall is measured on that window
    rec = model.candidate_recall
    assert rec["users"] == len(label_pairs) and 0 <= rec["sources"]["als"] <= rec["union"] <= 1


def test_leak_canary(split: Split) -> None:
    """Scrambling the test targets of the full data changes nothing the cascade learns."""
    ds = make_synthetic_dataset(n_users=80, noise=0.1, seed=1)
    df = ds.interactions.copy()
    last = df.groupby("user_id")["timestamp"].transform("max") == df["timestamp"]
    rng = np.random.default_rng(0)
    df.loc[last, "item_id"] = rng.permutation(df.loc[last, "item_id"].to_numpy())
    other = leave_one_out(ds.with_interactions(df))
    assert not np.array_equal(other.test.targets.indices, split.test.targets.indices)
    a = get_model("cascade")(**TINY).fit(split.train, valid=split.valid)
    b = get_model("cascade")(**TINY).fit(other.train, valid=other.valid)
    users = split.test.users
    ra = a.recommend(a.user_map.to_external(users), k=10, history=split.test.history)
    rb = b.recommend(b.user_map.to_external(users), k=10, history=other.test.history)
    np.testing.assert_array_equal(ra.internal_item_ids, rb.internal_item_ids)


def test_quality_and_info(split: Split) -> None:
    model = get_model("cascade")(**TINY).fit(split.train, valid=split.valid)
    assert recall_at_k(model, split) >= 0.8
    info = model.training_info_
    assert info["ranker_rows"] > 0 and "als_score" in info["features"]
    assert set(model.candidate_recall["sources"]) == {"als"}


def test_lightgbm_pairlogit_and_roundtrip(split: Split, tmp_path: Path) -> None:
    cfg = {
        **TINY,
        "ranker": "lightgbm",
        "candidates": [
            {"model": "als", "n": 10, "config": ALS},
            {"model": "itemknn", "n": 10, "name": "knn", "config": {"n_neighbors": 20}},
        ],
        "interest": "majority",
    }
    model = get_model("cascade")(**cfg).fit(split.train, valid=split.valid)
    assert "interest" in model.builder_.feature_names
    assert "knn_rank" in model.builder_.feature_names
    path = model.save(tmp_path / "casc")
    assert (path / "ranker" / "model.txt").is_file()
    assert (path / "sources" / "1-knn" / "config.json").is_file()
    assert (path / "cascade.json").is_file()
    loaded = genrec.load(path)
    users = split.test.history.user_map.to_external(split.test.users)
    a = model.recommend(users, k=10, history=split.test.history)
    b = loaded.recommend(users, k=10, history=split.test.history)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    assert loaded.candidate_recall["sources"] == pytest.approx(model.candidate_recall["sources"])
    pl = get_model("cascade")(**{**TINY, "loss": "PairLogit"}).fit(split.train)
    assert pl.ranker_.loss == "PairLogit"


def test_refit_false_and_prefitted_artifact(split: Split, tmp_path: Path) -> None:
    m = get_model("cascade")(**{**TINY, "refit": False}).fit(split.train)
    # without refit the inference ALS is the window-less one (fewer interactions)
    assert m.sources_[0].train_histories_.matrix.nnz < split.train.histories().matrix.nnz
    als = get_model("als")(**ALS).fit(split.train)
    art = als.save(tmp_path / "als")
    cfg = {**TINY, "candidates": [{"model": "als", "n": 15, "config": ALS, "path": str(art)}]}
    m = get_model("cascade")(**cfg).fit(split.train)
    np.testing.assert_array_equal(m.sources_[0].user_factors_, als.user_factors_)
    # an artifact trained on another dataset is refused with a clear message
    other = leave_one_out(make_synthetic_dataset(n_users=50, seed=7, string_ids=True))
    bad = get_model("als")(**ALS).fit(other.train).save(tmp_path / "als-other")
    cfg = {**TINY, "candidates": [{"model": "als", "n": 15, "config": ALS, "path": str(bad)}]}
    with pytest.raises(DataValidationError, match="trained on another dataset"):
        get_model("cascade")(**cfg).fit(split.train)


def test_errors(split: Split) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'als'"):
        get_model("cascade")(candidates=["alss"])
    model = get_model("cascade")(**TINY).fit(split.train)
    batch = split.train.histories().batch(split.test.users[:3])
    cand, _ = model._candidates(model.sources_, batch, True)
    X = model.builder_.transform(batch, cand)
    with pytest.raises(DataValidationError, match="columns"):
        model.ranker_.predict(X[:, :-1])
    with pytest.raises(DataValidationError, match="got None"):
        model.ranker_.predict(None)
    names = list(model.builder_.feature_names)
    names[0] = "wrong"
    with pytest.raises(DataValidationError, match="unexpected \\['wrong'\\]"):
        model.ranker_.predict(X, names)


def test_exclude_seen_false_can_return_seen(split: Split) -> None:
    model = get_model("cascade")(**TINY).fit(split.train)
    users = model.user_map.external_ids[:10]
    recs = model.recommend(users, k=10, exclude_seen=False)
    seen = model.train_histories_.matrix
    internal = model.user_map.to_internal(users)
    n_seen = sum(
        len(set(seen[u].indices) & set(recs.internal_item_ids[r])) for r, u in enumerate(internal)
    )
    assert n_seen > 0


def test_text_and_gru_interest_roundtrip(
    split: Split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optional features: text vectors (stubbed; the real ones come from genrec.text) and a
    trained GRU interest predictor survive save/load."""
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(split.train.n_items + 1, 8)).astype(np.float32)
    monkeypatch.setattr(Cascade, "_text_vectors", lambda self, ds: vecs)
    cfg = {**TINY, "text_features": True, "interest": "gru"}
    model = get_model("cascade")(**cfg).fit(split.train)
    names = model.builder_.feature_names
    assert {"text_cos_last", "text_cos_hist", "interest"} <= set(names)
    loaded = genrec.load(model.save(tmp_path / "c"))
    users = model.user_map.external_ids
    a = model.recommend(users, k=10, history=split.test.history)
    b = loaded.recommend(users, k=10, history=split.test.history)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5)


def test_prefitted_source_trained_on_more_data_is_refused(split: Split, tmp_path: Path) -> None:
    # same id maps (every split keeps the full dataset's), but fitted on train + test
    full = get_model("als")(**ALS).fit(split.test.history).save(tmp_path / "als-full")
    cfg = {**TINY, "candidates": [{"model": "als", "n": 15, "config": ALS, "path": str(full)}]}
    with pytest.raises(DataValidationError, match="other interactions"):
        get_model("cascade")(**cfg).fit(split.train)


def test_saved_cascade_does_not_need_its_preset(split: Split, tmp_path: Path) -> None:
    preset = tmp_path / "als.yaml"
    preset.write_text("embedding_dim: 8\niterations: 10\nregularization: 1.0\nnum_threads: 1\n")
    cfg = {**TINY, "candidates": [{"model": "als", "n": 15, "preset": str(preset)}]}
    model = get_model("cascade")(**cfg).fit(split.train)
    art = model.save(tmp_path / "cascade")
    preset.unlink()
    loaded = genrec.load(art)
    users = split.test.users[:5]
    np.testing.assert_array_equal(
        loaded.recommend(loaded.user_map.to_external(users), k=5).item_ids,
        model.recommend(model.user_map.to_external(users), k=5).item_ids,
    )


def test_source_without_item_table_is_skipped_for_vectors(split: Split) -> None:
    # Mult-VAE has no item-embedding table: the cascade fits without its vector features
    vae = {"model": "multvae", "n": 15, "config": {"epochs": 1, "progress": False}}
    model = get_model("cascade")(**{**TINY, "candidates": [*TINY["candidates"], vae]})
    model.fit(split.train)
    assert not any(n.startswith("multvae_emb") for n in model.builder_.feature_names)
