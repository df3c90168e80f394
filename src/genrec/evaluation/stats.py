"""Statistics for comparing recommenders: bootstrap CIs, paired tests, Holm correction."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

__all__ = [
    "bootstrap_ci",
    "compare_to_reference",
    "holm_correction",
    "mean_std",
    "paired_effect_size",
    "paired_test",
]

# Upper bound on the number of indices drawn per bootstrap chunk (int64: 8 bytes each).
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22

_TESTS = ("ttest", "wilcoxon")


def _as_1d(name: str, values: np.ndarray | Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def bootstrap_ci(
    values: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Draws ``n_resamples`` resamples of ``values`` with replacement, takes the mean of each,
    and returns the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those
    means. Resample indices are drawn as a matrix in chunks so memory stays bounded; for the
    same inputs and ``seed`` the result is identical.

    Args:
        values: 1-D array of per-user metric values.
        n_resamples: Number of bootstrap resamples (``>= 1``).
        confidence: Confidence level in ``(0, 1)``.
        seed: Seed of the random generator.

    Returns:
        ``(low, high)`` bounds of the interval.

    Raises:
        ValueError: If ``values`` is empty or not 1-D, or a parameter is out of range.
    """
    x = _as_1d("values", values)
    n = x.size
    if n == 0:
        raise ValueError("values must not be empty")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    means = np.empty(n_resamples, dtype=np.float64)  # (n_resamples,)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))  # (chunk, n)
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def paired_test(a: np.ndarray, b: np.ndarray, method: str = "ttest") -> float:
    """Two-sided p-value of a paired test between per-user values ``a`` and ``b``.

    ``"ttest"`` uses :func:`scipy.stats.ttest_rel`; ``"wilcoxon"`` uses
    :func:`scipy.stats.wilcoxon` with ``zero_method="zsplit"``. When every difference
    ``a - b`` is exactly zero the models are indistinguishable and ``1.0`` is returned;
    an undefined test result (e.g. a single pair) also gives ``1.0``, never NaN.

    Args:
        a: 1-D array of per-user values of the first model.
        b: 1-D array of per-user values of the second model, same length as ``a``.
        method: ``"ttest"`` or ``"wilcoxon"``.

    Returns:
        The p-value in ``[0, 1]``.

    Raises:
        ValueError: On length mismatch, empty input or an unknown method.
    """
    if method not in _TESTS:
        raise ValueError(f"method must be one of {_TESTS}, got {method!r}")
    x = _as_1d("a", a)
    y = _as_1d("b", b)
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {x.size} and {y.size}")
    if x.size == 0:
        raise ValueError("a and b must not be empty")
    diff = x - y
    if np.all(diff == 0):
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "ttest":
            p = sps.ttest_rel(x, y).pvalue
        else:
            p = sps.wilcoxon(x, y, zero_method="zsplit").pvalue
    p = float(p)
    if np.isnan(p):
        return 1.0
    return min(max(p, 0.0), 1.0)


def paired_effect_size(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's d_z of paired values: ``mean(a - b) / std(a - b)`` (``ddof=1``).

    The standardized mean difference that the paired t-test uses (t = d_z * sqrt(n)); by
    Cohen's rule of thumb 0.2 is small, 0.5 medium, 0.8 large. ``0.0`` when every difference
    is zero; ``+/-inf`` when the differences are a non-zero constant.

    Args:
        a: 1-D per-user values of a model.
        b: 1-D per-user values of the reference, same length.
    """
    x, y = _as_1d("a", a), _as_1d("b", b)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"a and b must be non-empty and of equal length, got {x.size}, {y.size}")
    diff = x - y
    mean = float(diff.mean())
    sd = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd


def holm_correction(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    With the ``m`` p-values sorted ascending ``p_(1) <= ... <= p_(m)``, the adjusted value
    is ``p~_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j))``, so adjusted values are
    monotone in the raw ones and never exceed 1.

    Args:
        p_values: Raw p-values in ``[0, 1]``.

    Returns:
        Adjusted p-values, one per input, in the same order.

    Raises:
        ValueError: If a p-value is NaN or outside ``[0, 1]``.
    """
    p = _as_1d("p_values", list(p_values))
    m = p.size
    if m == 0:
        return []
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")  # (m,)
    scaled = (m - np.arange(m)) * p[order]  # (m,) multipliers m, m-1, ..., 1
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


def mean_std(values: np.ndarray | Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of values over seeds.

    Args:
        values: 1-D values, e.g. one metric value per seed.

    Returns:
        ``(mean, std)``; ``std`` is ``0.0`` when there is a single value.

    Raises:
        ValueError: If ``values`` is empty.
    """
    x = _as_1d("values", values)
    if x.size == 0:
        raise ValueError("values must not be empty")
    std = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    return float(np.mean(x)), std


def compare_to_reference(
    per_user: dict[str, np.ndarray],
    reference: str,
    method: str = "ttest",
    alpha: float = 0.05,
) -> dict[str, dict]:
    """Test every model against a reference model on paired per-user values.

    Each model other than ``reference`` gets a paired-test p-value against the reference;
    the p-values are Holm-adjusted over all compared models and a model is significant
    when its adjusted p-value is below ``alpha``.

    Args:
        per_user: Model name -> 1-D per-user metric values (same users, same order).
        reference: Name of the reference model, a key of ``per_user``.
        method: ``"ttest"`` or ``"wilcoxon"`` (see :func:`paired_test`).
        alpha: Family-wise significance level in ``(0, 1)``.

    Returns:
        ``{model: {"p_value", "p_adjusted", "significant", "delta", "test"}}`` in the order
        of ``per_user``, where ``delta = mean(model) - mean(reference)``.

    Raises:
        ValueError: If ``reference`` is missing, lengths differ, or a parameter is invalid.
    """
    if reference not in per_user:
        raise ValueError(
            f"reference model {reference!r} is not among the compared models {sorted(per_user)}"
        )
    if method not in _TESTS:
        raise ValueError(f"method must be one of {_TESTS}, got {method!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    ref = _as_1d(reference, per_user[reference])
    names = [name for name in per_user if name != reference]
    p_values = []
    deltas = []
    for name in names:
        values = _as_1d(name, per_user[name])
        if values.shape != ref.shape:
            raise ValueError(
                f"model {name!r} has {values.size} per-user values but reference "
                f"{reference!r} has {ref.size}"
            )
        p_values.append(paired_test(values, ref, method=method))
        deltas.append(float(values.mean() - ref.mean()))
    adjusted = holm_correction(p_values)
    return {
        name: {
            "p_value": p,
            "p_adjusted": p_adj,
            "significant": bool(p_adj < alpha),
            "delta": delta,
            "test": method,
        }
        for name, p, p_adj, delta in zip(names, p_values, adjusted, deltas)
    }
