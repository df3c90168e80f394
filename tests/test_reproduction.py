"""The reproduction check definitions (genrec.bench.reproduction), without running them."""

from __future__ import annotations

import dataclasses

import pytest

from genrec.bench.reproduction import CHECKS, check_config, compare, reference_metrics, repo_root
from genrec.registry import get_model


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_checks_resolve(check):
    ref = reference_metrics(check)
    assert set(ref) == set(check.metrics) and all(0 < v < 1 for v in ref.values())
    paths, overrides = check_config(check)
    cls = get_model(check.model)  # every checked model is registered
    from genrec.bench.benchmark import BenchmarkSpec, resolve_config

    spec = BenchmarkSpec(dataset=check.dataset, models=[check.model], config_paths=paths,
                         overrides=overrides)  # fmt: skip
    cfg, _ = resolve_config(check.model, check.dataset, spec)  # valid config
    cls.config_class.from_dict(cfg)
    assert check.mode in ("match", "at_least")
    if check.gpu:
        assert check.cpu_estimate, "a GPU check must say how long the CPU would take"
    if check.previous:
        assert (repo_root() / check.previous).is_file()


def test_names_unique_and_published_numbers():
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names))
    tiger = next(c for c in CHECKS if c.name == "beauty-tiger")
    assert tiger.reference == {"recall@5": 0.0454, "recall@10": 0.0648, "ndcg@5": 0.0321,
                               "ndcg@10": 0.0384}  # fmt: skip
    ease = next(c for c in CHECKS if c.name == "beauty-ease")
    assert reference_metrics(ease)["ndcg@10"] == pytest.approx(0.0386, abs=1e-4)
    assert check_config(ease)[1]["ease"]["l2"] == 50.0  # the recorded config is rerun
    with pytest.raises(dataclasses.FrozenInstanceError):
        ease.model = "x"  # type: ignore[misc]


def test_compare_modes():
    ref = {"ndcg@10": 0.0400}
    assert compare({"ndcg@10": 0.0404}, ref, "match", 5e-4)["ndcg@10"]["ok"]
    assert not compare({"ndcg@10": 0.0406}, ref, "match", 5e-4)["ndcg@10"]["ok"]
    assert not compare({"ndcg@10": 0.0500}, ref, "match", 5e-4)["ndcg@10"]["ok"]  # too good
    assert compare({"ndcg@10": 0.0500}, ref, "at_least", 0.0)["ndcg@10"]["ok"]  # floors
    assert compare({"ndcg@10": 0.0361}, ref, "at_least", 0.10, relative=True)["ndcg@10"]["ok"]
    row = compare({"ndcg@10": 0.0359}, ref, "at_least", 0.10, relative=True)["ndcg@10"]
    assert not row["ok"] and row["tol"] == pytest.approx(0.004)
    with pytest.raises(ValueError):
        compare({}, {}, "roughly", 0.1)
