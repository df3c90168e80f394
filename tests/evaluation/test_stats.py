"""Tests of the statistics helpers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from genrec.evaluation.stats import (
    bootstrap_ci,
    compare_to_reference,
    holm_correction,
    mean_std,
    paired_test,
)


def test_holm_correction_known_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> cummax 0.06
    # back in input order [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02]
    adjusted = holm_correction([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_correction_clips_and_edge_cases():
    # 0.5 * 2 = 1.0, max(1.0, 0.6) = 1.0
    assert holm_correction([0.5, 0.6]) == [1.0, 1.0]
    # 0.7 * 2 = 1.4 -> clipped to 1
    assert holm_correction([0.7, 0.9]) == [1.0, 1.0]
    # 0.4 * 2 = 0.8, max(0.8, 0.9) = 0.9
    np.testing.assert_allclose(holm_correction([0.9, 0.4]), [0.9, 0.8])
    assert holm_correction([]) == []
    assert holm_correction([0.2]) == [0.2]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_correction([0.1, 1.5])


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    values = np.random.default_rng(1).normal(loc=0.3, scale=0.1, size=500)
    low, high = bootstrap_ci(values, n_resamples=500, seed=7)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values, n_resamples=500, seed=7)
    assert (low, high) != bootstrap_ci(values, n_resamples=500, seed=8)
    # a wider confidence level gives a wider interval
    low99, high99 = bootstrap_ci(values, n_resamples=500, confidence=0.99, seed=7)
    assert low99 <= low and high99 >= high
    # roughly mean +- 1.96 * sd / sqrt(n) = 0.0088 half-width
    assert 0.005 < (high - low) / 2 < 0.013


def test_bootstrap_ci_constant_and_validation():
    assert bootstrap_ci(np.full(10, 0.25)) == (0.25, 0.25)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.ones(3), confidence=1.5)


def test_paired_test_identical_arrays_give_one():
    a = np.array([0.1, 0.5, 0.0, 1.0])
    for method in ("ttest", "wilcoxon"):
        assert paired_test(a, a.copy(), method=method) == 1.0


def test_paired_test_shifted_pair_is_significant():
    rng = np.random.default_rng(0)
    b = rng.random(200)
    a = b + 0.2 + rng.normal(scale=0.05, size=200)
    assert paired_test(a, b, method="ttest") < 1e-6
    assert paired_test(a, b, method="wilcoxon") < 1e-6


def test_paired_test_matches_scipy_and_validates():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([0.0, 0.0, 0.0, 0.0])
    assert paired_test(a, b) == pytest.approx(sps.ttest_rel(a, b).pvalue)
    # a single pair makes the t-test undefined -> 1.0, not NaN
    assert paired_test(np.array([1.0]), np.array([0.0])) == 1.0
    with pytest.raises(ValueError, match="same length"):
        paired_test(a, b[:3])
    with pytest.raises(ValueError, match="method"):
        paired_test(a, b, method="anova")


def test_mean_std():
    # mean 2, sample std sqrt(((1-2)^2 + 0 + (3-2)^2) / 2) = 1
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        mean_std([])


def test_compare_to_reference():
    rng = np.random.default_rng(3)
    ref = rng.random(300)
    per_user = {
        "ref": ref,
        "better": ref + 0.1 + rng.normal(scale=0.05, size=300),
        "same": ref.copy(),
    }
    out = compare_to_reference(per_user, reference="ref", method="wilcoxon")
    assert list(out) == ["better", "same"]
    assert set(out["better"]) == {"p_value", "p_adjusted", "significant", "delta", "test"}
    assert out["better"]["significant"] is True
    assert out["better"]["delta"] == pytest.approx(per_user["better"].mean() - ref.mean())
    assert out["better"]["test"] == "wilcoxon"
    assert out["same"] == {
        "p_value": 1.0,
        "p_adjusted": 1.0,
        "significant": False,
        "delta": 0.0,
        "test": "wilcoxon",
    }
    # Holm over two comparisons: the smaller p-value is doubled
    assert out["better"]["p_adjusted"] == pytest.approx(min(1.0, 2 * out["better"]["p_value"]))


def test_compare_to_reference_validation():
    with pytest.raises(ValueError, match="reference model 'nope'"):
        compare_to_reference({"a": np.ones(3)}, reference="nope")
    with pytest.raises(ValueError, match="per-user values"):
        compare_to_reference({"a": np.ones(3), "b": np.ones(4)}, reference="a")
