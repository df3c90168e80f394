"""The sparse regime: how do models cope when each user has only a few interactions?

:func:`limit_history` turns any :class:`~genrec.data.splitting.Split` into a sparse one, in
one of two ways:

* ``mode="last"`` (default): every user keeps only their **last** ``max_history`` training
  interactions. The dropped interactions disappear everywhere: from the training data and
  from the histories the validation and test holdouts show the model (at test time a
  leave-one-out user therefore sees ``max_history`` training items plus the validation item).
  Targets, users and the catalogue do not change, so the numbers are comparable with the
  full split's: only the amount of history differs.
* ``mode="users"``: the data stay whole, but validation and test only evaluate the users
  who naturally have at most ``max_history`` training interactions (the cold end of the
  real distribution). Models still learn from every user.

The first simulates "we only kept the recent past" (or a young service); the second asks how
the same model serves its sparsest real users. Both are recorded in ``Split.params``
(``max_history``, ``history_mode`` and counts), which ``genrec benchmark`` writes into
``results.json``; ``genrec benchmark --max-history M [--history-mode users]`` and suites use
them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from genrec.data.dataset import Dataset
from genrec.data.splitting import Holdout, Split
from genrec.errors import ConfigError, DataValidationError

HistoryMode = Literal["last", "users"]
HISTORY_MODES: tuple[str, ...] = ("last", "users")

__all__ = ["HISTORY_MODES", "HistoryMode", "keep_last", "limit_history"]


def keep_last(dataset: Dataset, max_history: int) -> np.ndarray:
    """Mask (aligned with ``dataset.interactions``) of each user's last ``max_history``
    interactions in chronological order."""
    counts = np.bincount(dataset.user_idx, minlength=dataset.n_users + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(dataset.n_interactions) - starts[dataset.user_idx]  # (N,)
    return pos >= counts[dataset.user_idx] - max_history


def _drop_rows(history: Dataset, dropped: Dataset) -> Dataset:
    """``history`` without the interactions of ``dropped`` (matched on user, item, time and
    multiplicity, so a repeated interaction is removed as many times as it was dropped)."""
    if dropped.n_interactions == 0:
        return history
    key_cols = ["user_id", "item_id", "timestamp"]
    h = history.interactions[key_cols].copy()
    d = dropped.interactions[key_cols].copy()
    # occurrence number of each (user, item, time) key, so duplicates are matched one by one
    h["_n"] = h.groupby(key_cols, sort=False).cumcount()
    d["_n"] = d.groupby(key_cols, sort=False).cumcount()
    d["_drop"] = True
    merged = h.merge(d, on=[*key_cols, "_n"], how="left")
    keep = merged["_drop"].isna().to_numpy()
    return history.subset(keep, allow_empty=True)


def limit_history(split: Split, max_history: int, mode: HistoryMode = "last") -> Split:
    """A sparse version of ``split`` (see the module docstring).

    Args:
        split: any split (leave-one-out, temporal, ratio).
        max_history: the number of training interactions a user keeps (``"last"``) or may
            have at most to be evaluated (``"users"``); ``>= 1``.
        mode: ``"last"`` or ``"users"``.

    Returns:
        A new :class:`Split` with the same method, and params extended by ``max_history``,
        ``history_mode``, ``n_train_dropped`` (``"last"``) or ``n_test_users_before``
        (``"users"``).

    Raises:
        ConfigError: ``max_history < 1`` or an unknown mode, or a split already limited.
        DataValidationError: no evaluated user is left (``"users"``).
    """
    if isinstance(max_history, bool) or not isinstance(max_history, (int, np.integer)):
        raise ConfigError(f"max_history must be a positive integer, got {max_history!r}")
    if max_history < 1:
        raise ConfigError(f"max_history must be >= 1, got {max_history}")
    if mode not in HISTORY_MODES:
        raise ConfigError(f"history mode must be one of {HISTORY_MODES}, got {mode!r}")
    if "max_history" in split.params:
        raise ConfigError(
            f"this split is already limited to max_history={split.params['max_history']}"
        )
    params = {**split.params, "max_history": int(max_history), "history_mode": mode}
    if mode == "users":
        n_train = np.bincount(split.train.user_idx, minlength=split.train.n_users + 1)

        def restrict(h: Holdout | None) -> Holdout | None:
            if h is None:
                return None
            keep = n_train[h.users] <= max_history
            return Holdout(h.users[keep], h.targets[keep], h.history)

        test = restrict(split.test)
        assert test is not None
        if len(test) == 0:
            raise DataValidationError(
                f"no test user has at most {max_history} training interactions"
            )
        params["n_test_users_before"] = len(split.test)
        return Split(split.train, restrict(split.valid), test, split.method, params)
    keep = keep_last(split.train, int(max_history))
    train = split.train.subset(keep)
    dropped = split.train.subset(~keep, allow_empty=True)
    params["n_train_dropped"] = int((~keep).sum())

    def rebuild(h: Holdout | None) -> Holdout | None:
        if h is None:
            return None
        history = train if h.history is split.train else _drop_rows(h.history, dropped)
        return Holdout(h.users, h.targets, history)

    test = rebuild(split.test)
    assert test is not None
    out = Split(train, rebuild(split.valid), test, split.method, params)
    if hasattr(split, "cold_items"):  # a cold-item split keeps its cold items
        out = type(split)(  # type: ignore[call-arg]
            train, out.valid, test, split.method, params, cold_items=split.cold_items
        )
    return out
