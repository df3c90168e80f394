"""TIGER per-run diagnostics (invalid codes, beam-vs-exact gap, code-table health) and
cold-start recommendation of items without training interactions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from genrec.data.splitting import cold_item_split
from genrec.errors import ConfigError
from genrec.evaluation.evaluator import evaluate
from genrec.models.popularity import Popularity
from genrec.models.tiger import TIGER
from genrec.testing import make_synthetic_dataset
from genrec.tokenizers import get_tokenizer

TINY = yaml.safe_load((Path(__file__).parent / "tiny" / "tiger.yaml").read_text())["config"]


@pytest.fixture(scope="module")
def fitted(split):
    return TIGER(**TINY).fit(split.train, valid=None)


def test_default_diagnostics_are_empty(split) -> None:
    assert Popularity().fit(split.train).diagnostics(split) == {}


def test_exhaustive_beams_have_no_gap(fitted, split) -> None:
    d = fitted.diagnostics(split, sample_users=20, seed=1)
    assert d["diagnostic_users"] == 20
    assert d["invalid_code_rate"] == 0.0  # the trie makes every tuple an item
    assert 0.0 <= d["invalid_code_rate_unconstrained"] <= 1.0
    # num_beams (40) covers the catalogue: beam search is exact
    assert d["beam_exact_overlap@10"] == pytest.approx(1.0)
    assert d["beam_recall@10"] == pytest.approx(d["exact_recall@10"])
    assert d["beam_exact_recall_gap@10"] == pytest.approx(0.0)
    assert d == {
        **fitted.diagnostics(split, sample_users=20, seed=1),
        "diagnostics_seconds": d["diagnostics_seconds"],
    }  # seeded sample: same numbers
    assert all(isinstance(v, (int, float)) for v in d.values())


def test_few_beams_and_training_users(split) -> None:
    model = TIGER(**{**TINY, "epochs": 2, "num_beams": 10}).fit(split.train)
    d = model.diagnostics(split, sample_users=12)
    assert d["invalid_code_rate"] == 0.0
    assert 0.0 <= d["beam_exact_overlap@10"] <= 1.0
    d_train = model.diagnostics(None, sample_users=5)  # no holdout: no recall
    assert "beam_recall@10" not in d_train and "beam_exact_overlap@10" in d_train


def test_codebook_diagnostics_match_the_code_table(fitted) -> None:
    d = fitted.codebook_diagnostics()
    codes = fitted.codes_[1:]
    sizes = fitted.codebook_sizes_
    assert d["n_coded_items"] == fitted.n_items == 40
    for lvl, size in enumerate(sizes):
        assert d[f"codebook_utilisation_l{lvl + 1}"] == len(np.unique(codes[:, lvl])) / size
    sem = codes[:, 0]
    counts = np.bincount(sem)
    assert d["collision_rate_before_dedup"] == pytest.approx((counts[sem] > 1).mean())
    assert d["items_per_prefix_l1"] == pytest.approx(40 / len(np.unique(sem)))
    assert d["max_items_per_semantic_id"] == counts.max()
    assert d["dedup_level_size"] == sizes[-1]
    assert d["dedup_items"] == int((codes[:, 1] > 0).sum())


def test_tiger_recommends_cold_items(tmp_path: Path) -> None:
    """Cold items (text, no interactions) get codes from a tokenizer fitted on every item's
    vector; sharing their cluster's semantic prefix, they are decoded for cold-target users."""
    ds = make_synthetic_dataset(n_users=200, n_items=40, seq_len=6)
    split = cold_item_split(ds, new_item_share=0.1)
    cold = split.cold_mask()
    assert not cold[split.train.item_idx].any()
    # content vectors: the item's cluster (4 clusters of 10 consecutive items) plus noise
    rng = np.random.default_rng(0)
    vectors = np.zeros((41, 8), dtype=np.float32)
    vectors[1:, :4] = np.eye(4, dtype=np.float32)[np.arange(40) // 10] * 5
    vectors[1:] += rng.normal(scale=0.1, size=(40, 8))
    cb = get_tokenizer("rkmeans")(n_levels=1, codebook_size=4, seed=0).fit(
        vectors, ds.item_map.to_list()
    )
    cb.save(tmp_path / "cb")
    cfg = {**TINY, "epochs": 15, "codebook_path": str(tmp_path / "cb"), "codebook_size": 16}
    model = TIGER(**cfg).fit(split.train)
    assert (model.codes_[split.cold_items] >= 0).all()  # coded, so in the trie
    res = evaluate(model, split, ks=[10], beyond_accuracy=False)
    assert res.metrics["recall@10"] >= 0.5, res.metrics
    assert cold[res.ranked].any()
    # popularity never ranks an item without training interactions above warm ones
    pop = evaluate(Popularity().fit(split.train), split, ks=[10], beyond_accuracy=False)
    assert pop.metrics["recall@10"] == 0.0 and not cold[pop.ranked].any()


def test_benchmark_stores_diagnostics(split) -> None:
    import json

    import jsonschema

    import genrec
    from genrec.bench.benchmark import BenchmarkSpec, run_benchmark

    spec = BenchmarkSpec(
        dataset="synthetic",
        models=["popularity", "tiger"],
        ks=[10],
        overrides={"tiger": {**TINY, "epochs": 2}},
    )
    results, _ = run_benchmark(spec, make_synthetic_dataset(), split=split)
    schema = json.loads(
        (Path(genrec.__file__).parent / "evaluation" / "results_schema.json").read_text()
    )
    jsonschema.validate(results, schema)
    assert results["models"]["popularity"]["diagnostics"] is None
    diag = results["models"]["tiger"]["diagnostics"]
    assert diag["invalid_code_rate"] == {"mean": 0.0, "per_seed": [0.0]}
    assert 0.0 <= diag["beam_exact_overlap@10"]["mean"] <= 1.0
    from genrec.report import render_markdown

    md = render_markdown(results)
    assert "## Model diagnostics" in md and "| invalid_code_rate | 0 |" in md


def test_failing_diagnostics_keep_the_metrics(split, monkeypatch) -> None:
    """A crash inside diagnostics() is reported and recorded; the evaluated metrics stay."""
    from genrec.bench.benchmark import BenchmarkSpec, run_benchmark

    def boom(self, split=None, **kwargs):
        raise RuntimeError("diagnostics exploded")

    monkeypatch.setattr(Popularity, "diagnostics", boom)
    said: list[str] = []
    spec = BenchmarkSpec(dataset="synthetic", models=["popularity"], ks=[10])
    with pytest.warns(RuntimeWarning, match="diagnostics exploded"):
        results, _ = run_benchmark(
            spec, make_synthetic_dataset(), split=split, on_progress=said.append
        )
    rec = results["models"]["popularity"]
    assert rec["metrics"]["recall@10"]["mean"] >= 0.0
    assert rec["diagnostics"] == {"diagnostics_failed": {"mean": 1.0, "per_seed": [1.0]}}
    assert any("diagnostics exploded" in m for m in said)


def test_diagnostics_failed_counts_every_seed() -> None:
    from genrec.bench.benchmark import _diagnostics_summary

    out = _diagnostics_summary([{"a": 1.0}, {"diagnostics_failed": 1}, {"a": 3.0}])
    assert out["diagnostics_failed"] == {"mean": 1 / 3, "per_seed": [0.0, 1.0, 0.0]}
    assert out["a"] == {"mean": 2.0, "per_seed": [1.0, 3.0]}


def test_cold_slots_add_prefix_matching_cold_items(tmp_path: Path) -> None:
    """TIGER Sec. 4.3's epsilon: cold items sharing a generated item's code prefix join the
    list right after it, at most int(cold_slots * k) of them; the beams keep their order."""
    ds = make_synthetic_dataset(n_users=200, n_items=40, seq_len=6)
    split = cold_item_split(ds, new_item_share=0.1)
    vectors = np.zeros((41, 8), dtype=np.float32)
    vectors[1:, :4] = np.eye(4, dtype=np.float32)[np.arange(40) // 10] * 5
    vectors[1:] += np.random.default_rng(0).normal(scale=0.1, size=(40, 8))
    cb = get_tokenizer("rkmeans")(n_levels=1, codebook_size=4, seed=0).fit(
        vectors, ds.item_map.to_list()
    )
    cb.save(tmp_path / "cb")
    cfg = {**TINY, "epochs": 3, "num_beams": 12, "codebook_path": str(tmp_path / "cb")}
    model = TIGER(**{**cfg, "codebook_size": 16}).fit(split.train)
    cold = set(model.cold_items().tolist())
    assert cold == set(np.flatnonzero(split.cold_mask()).tolist())
    users = model.user_map.external_ids[:60]
    base = model.recommend(users, k=10).internal_item_ids
    model.config = model.config.replace(cold_slots=0.3)
    with_cold = model.recommend(users, k=10).internal_item_ids
    seen = model.train_histories_.batch(model.user_map.to_internal(users, what="user")).matrix
    added_any = False
    for b in range(len(users)):
        row, ref = with_cold[b].tolist(), base[b].tolist()
        added = [i for i in row if i not in ref]
        assert len(added) <= 3 and all(i in cold for i in added)
        assert [i for i in row if i in ref] == ref[: len(row) - len(added)]  # beams in order
        for i in added:  # right after an item of the same prefix
            pos = row.index(i)
            assert pos > 0 and model.codes_[row[pos - 1], 0] == model.codes_[i, 0]
        assert not set(row) & set(seen[b].indices.tolist())
        added_any |= bool(added)
    assert added_any
    # the prefix index follows add_items: a cold item moved to another cluster
    mover = min(cold)
    old_prefix = int(model.codes_[mover, 0])
    other = 1 + int(np.flatnonzero(model.codes_[1:, 0] != old_prefix)[0])  # clusters are full:
    new_prefix = int(model.codes_[other, 0])  # swap the cold item with an item of another
    ids = model.item_map.external_ids
    model.add_items([ids[mover - 1], ids[other - 1]], np.array([[new_prefix], [old_prefix]]))
    assert mover in model._cold_prefix_index()[(new_prefix,)]
    assert mover not in model._cold_prefix_index().get((old_prefix,), [])
    # the index follows cold_prefix_levels: both levels (the full tuple) match only itself
    model.config = model.config.replace(cold_prefix_levels=2)
    assert model._cold_prefix_index()[tuple(model.codes_[mover].tolist())] == [mover]
    with pytest.raises(ConfigError, match="cold_slots"):
        TIGER(**{**TINY, "cold_slots": 1.5})
    with pytest.raises(ConfigError, match="cold_prefix_levels"):
        TIGER(**{**TINY, "cold_prefix_levels": 3})
