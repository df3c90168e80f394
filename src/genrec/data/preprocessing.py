"""Filtering interactions before splitting: rating threshold, de-duplication, k-core.

:func:`preprocess` works on a :class:`~genrec.data.dataset.Dataset` and returns a new one with
fresh (contiguous) id maps; the DataFrame helpers :func:`binarize`, :func:`deduplicate` and
:func:`kcore` are pure functions on interaction tables with canonical column names.

The steps run in this order: ``rating_threshold`` -> ``deduplicate`` -> k-core with
``user_core`` / ``item_core`` / ``min_user_interactions``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.data.dataset import Dataset
from genrec.errors import ConfigError, DataValidationError, expect_type

_KEEP = ("first", "last")


def binarize(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Keep the interactions whose ``rating`` is at least ``threshold``.

    Args:
        df: interactions with a ``rating`` column.
        threshold: minimum rating kept (inclusive), e.g. 4 for "liked" on a 1-5 scale.

    Returns:
        The filtered rows (same columns, original order, index reset).

    Raises:
        DataValidationError: ``df`` has no ``rating`` column.
        ConfigError: ``threshold`` is not a number.
    """
    if C.RATING not in df.columns:
        raise DataValidationError(
            f"rating_threshold={threshold!r} needs a 'rating' column, but the interactions "
            f"only have {list(df.columns)}"
        )
    try:
        thr = float(threshold)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"rating_threshold must be a number, got {threshold!r}") from exc
    if np.isnan(thr):
        raise ConfigError("rating_threshold must be a number, got NaN")
    keep = pd.to_numeric(df[C.RATING], errors="coerce").to_numpy() >= thr
    return df[keep].reset_index(drop=True)


def deduplicate(df: pd.DataFrame, keep: str = "first") -> pd.DataFrame:
    """Keep one interaction per (user, item) pair.

    Args:
        df: interactions with ``user_id`` and ``item_id`` (and optionally ``timestamp``).
        keep: ``"first"`` keeps the earliest interaction of each pair, ``"last"`` the latest
            (by ``timestamp``; ties and tables without timestamps use row order).

    Returns:
        The kept rows in their original order (index reset).

    Raises:
        ConfigError: ``keep`` is not ``"first"`` or ``"last"``.
    """
    if keep not in _KEEP:
        raise ConfigError(f"deduplicate must be 'first', 'last' or None, got {keep!r}")
    _require_ids(df)
    if len(df) == 0:
        return df.reset_index(drop=True)
    pos = np.arange(len(df))
    has_ts = C.TIMESTAMP in df.columns
    order = np.lexsort((pos, df[C.TIMESTAMP].to_numpy())) if has_ts else pos
    ordered = df.iloc[order]
    dup = ordered.duplicated(subset=[C.USER, C.ITEM], keep=keep).to_numpy()
    kept = np.sort(order[~dup])
    return df.iloc[kept].reset_index(drop=True)


def kcore(df: pd.DataFrame, user_k: int = 0, item_k: int = 0) -> pd.DataFrame:
    """Iterative k-core: drop users with fewer than ``user_k`` and items with fewer than
    ``item_k`` interactions, repeatedly, until both conditions hold for every row.

    Every interaction row counts (de-duplicate first to count distinct pairs).

    Args:
        df: interactions with ``user_id`` and ``item_id``.
        user_k: minimum interactions per user (0 or 1 = no constraint).
        item_k: minimum interactions per item.

    Returns:
        The rows of the fixed point, original order, index reset (possibly empty).

    Raises:
        ConfigError: a negative or non-integer ``k``.
    """
    user_k = _check_count("user_core", user_k)
    item_k = _check_count("item_core", item_k)
    _require_ids(df)
    if (user_k <= 1 and item_k <= 1) or len(df) == 0:
        return df.reset_index(drop=True)
    u, _ = pd.factorize(df[C.USER])
    i, _ = pd.factorize(df[C.ITEM])
    alive = np.ones(len(df), dtype=bool)
    while True:
        uc = np.bincount(u[alive], minlength=u.max() + 1)
        ic = np.bincount(i[alive], minlength=i.max() + 1)
        ok = alive & (uc[u] >= user_k) & (ic[i] >= item_k)
        if ok.sum() == alive.sum():
            break
        alive = ok
        if not alive.any():
            break
    return df[alive].reset_index(drop=True)


def preprocess(
    dataset: Dataset,
    *,
    rating_threshold: float | None = None,
    deduplicate: str | None = None,
    user_core: int = 0,
    item_core: int = 0,
    min_user_interactions: int = 0,
) -> Dataset:
    """Filter a dataset and rebuild it with fresh id maps.

    Args:
        dataset: the input (left unchanged).
        rating_threshold: keep interactions with ``rating >= rating_threshold`` (implicit
            feedback from explicit ratings); needs a ``rating`` column.
        deduplicate: ``"first"`` / ``"last"`` keeps one interaction per (user, item) pair (the
            earliest / latest); ``None`` keeps repeats.
        user_core: iterative k-core minimum interactions per user.
        item_core: iterative k-core minimum interactions per item.
        min_user_interactions: drop users with fewer interactions (e.g. 3 so that
            leave-one-out has train, validation and test items). It is folded into the k-core
            (``max(user_core, min_user_interactions)``), so with ``item_core`` the result
            satisfies both.

    Returns:
        A new :class:`Dataset` with the same name and side tables (restricted to the remaining
        users and items) and contiguous internal ids built from what remains.

    Raises:
        ConfigError: negative counts or an invalid ``deduplicate``.
        DataValidationError: no ``rating`` column for ``rating_threshold``, or nothing left
            (the message shows how many interactions each step kept).
    """
    expect_type(dataset, Dataset, "preprocess() dataset")
    user_core = _check_count("user_core", user_core)
    item_core = _check_count("item_core", item_core)
    min_user = _check_count("min_user_interactions", min_user_interactions)
    if deduplicate is not None and deduplicate not in _KEEP:
        raise ConfigError(f"deduplicate must be 'first', 'last' or None, got {deduplicate!r}")

    df = dataset.interactions
    trail = [f"{len(df)} interactions"]
    params: dict[str, Any] = {}
    if rating_threshold is not None:
        params["rating_threshold"] = rating_threshold
        df = binarize(df, rating_threshold)
        trail.append(f"{len(df)} after rating_threshold={rating_threshold!r}")
        _nonempty(df, trail, params)
    if deduplicate is not None:
        params["deduplicate"] = deduplicate
        df = deduplicate_fn(df, deduplicate)
        trail.append(f"{len(df)} after deduplicate={deduplicate!r}")
    user_k = max(user_core, min_user)
    if user_k > 1 or item_core > 1:
        for key, val in (
            ("user_core", user_core),
            ("item_core", item_core),
            ("min_user_interactions", min_user),
        ):
            if val:
                params[key] = val
        df = kcore(df, user_k, item_core)
        trail.append(f"{len(df)} after k-core (users >= {user_k}, items >= {max(item_core, 1)})")
        _nonempty(df, trail, params)
    return Dataset(
        df.reset_index(drop=True),
        dataset.items,
        dataset.users,
        name=dataset.name,
        has_timestamps=dataset.has_timestamps,
    )


# the keyword argument of preprocess shadows the function inside it
deduplicate_fn = deduplicate


def _nonempty(df: pd.DataFrame, trail: list[str], params: dict[str, Any]) -> None:
    if len(df) == 0:
        given = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise DataValidationError(
            f"preprocessing removed every interaction ({' -> '.join(trail)}); relax {given}"
        )


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _require_ids(df: pd.DataFrame) -> None:
    missing = [c for c in (C.USER, C.ITEM) if c not in df.columns]
    if missing:
        raise DataValidationError(f"interactions need columns {missing}; got {list(df.columns)}")
