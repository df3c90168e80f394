"""Leak-free splits: leave-one-out, global temporal and per-user ratio.

Every split returns a :class:`Split`: the training :class:`Dataset`, and for validation and
test a :class:`Holdout` holding the evaluated users, their target items and the *history*
the model may see at that stage. Validation history = train; test history = train +
validation (the SASRec/TIGER protocol: the validation item is known at test time). Targets
never appear in the history given for their own stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from genrec.data.dataset import Dataset
from genrec.errors import ConfigError, DataValidationError

SplitMethod = Literal["loo", "temporal", "ratio"]


@dataclass
class Holdout:
    """Users to evaluate with their targets and the history visible to the model.

    Attributes:
        users: internal user ids ``(U,)``, each with at least one target.
        targets: CSR ``(U, n_items + 1)``: row ``r`` marks the target items of ``users[r]``.
        history: dataset whose interactions are the users' known history at this stage.
    """

    users: np.ndarray
    targets: sp.csr_matrix
    history: Dataset

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_targets(self) -> np.ndarray:
        return np.diff(self.targets.indptr)


@dataclass
class Split:
    """Train data plus validation and test holdouts sharing one id space."""

    train: Dataset
    valid: Holdout | None
    test: Holdout
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary for reports."""
        out: dict[str, Any] = {"method": self.method, **self.params}
        out["n_train_interactions"] = int(self.train.n_interactions)
        for name, h in (("valid", self.valid), ("test", self.test)):
            if h is None:
                continue
            out[f"n_{name}_users"] = len(h)
            out[f"n_{name}_targets"] = int(h.targets.nnz)
            seen = h.history.matrix()[h.users].multiply(h.targets)
            out[f"n_{name}_targets_in_history"] = int(seen.nnz)
        return out


def _holdout(ds: Dataset, mask: np.ndarray, history: Dataset) -> Holdout:
    users, items = ds.user_idx[mask], ds.item_idx[mask]
    uniq, inverse = np.unique(users, return_inverse=True)
    targets = sp.csr_matrix(
        (np.ones(len(items), dtype=np.float32), (inverse, items)),
        shape=(len(uniq), ds.n_items + 1),
    )
    targets.sum_duplicates()
    targets.data[:] = 1.0
    return Holdout(users=uniq.astype(np.int64), targets=targets, history=history)


def _positions(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Position of each interaction in its user's chronological history, and lengths."""
    counts = np.bincount(ds.user_idx, minlength=ds.n_users + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(ds.n_interactions) - starts[ds.user_idx]
    return pos, counts[ds.user_idx]


def leave_one_out(dataset: Dataset, *, validation: bool = True) -> Split:
    """Last interaction of each user -> test, second to last -> validation, rest -> train.

    Raises:
        DataValidationError: when a user has too few interactions (3 with validation,
            2 without); filter them first (``preprocess(min_user_interactions=3)``).
    """
    need = 3 if validation else 2
    pos, lens = _positions(dataset)
    short = np.unique(dataset.user_idx[lens < need])
    if len(short):
        ext = dataset.user_map.to_external(short[:5]).tolist()
        raise DataValidationError(
            f"leave-one-out needs at least {need} interactions per user; {len(short)} user(s) "
            f"have fewer (e.g. user ids {ext}). Filter them with "
            f"genrec.data.preprocess(dataset, min_user_interactions={need})"
        )
    test_mask = pos == lens - 1
    valid_mask = (pos == lens - 2) if validation else np.zeros_like(test_mask)
    train = dataset.subset(~test_mask & ~valid_mask)
    valid = _holdout(dataset, valid_mask, train) if validation else None
    test_history = dataset.subset(~test_mask) if validation else train
    test = _holdout(dataset, test_mask, test_history)
    return Split(train, valid, test, "loo", {"validation": validation})


def temporal_split(
    dataset: Dataset, *, test_fraction: float = 0.1, valid_fraction: float = 0.1
) -> Split:
    """Global time split: the last ``test_fraction`` of interactions (by time) -> test, the
    ``valid_fraction`` before them -> validation. Only users with history before a
    period are evaluated in it; items are not dropped (the catalogue stays fixed)."""
    for name, frac in (("test_fraction", test_fraction), ("valid_fraction", valid_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {frac}")
    if test_fraction <= 0 or test_fraction + valid_fraction >= 1.0:
        raise ConfigError("temporal split needs test_fraction > 0 and test+valid fractions < 1")
    ts = dataset.timestamps
    order = np.argsort(ts, kind="stable")
    n = len(ts)
    n_test, n_valid = int(round(n * test_fraction)), int(round(n * valid_fraction))
    if n_test == 0:
        raise DataValidationError(f"temporal split: {n} interactions leave no test period")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    test_mask = rank >= n - n_test
    valid_mask = (rank >= n - n_test - n_valid) & ~test_mask
    train = dataset.subset(~test_mask & ~valid_mask)
    before_test = dataset.subset(~test_mask)
    valid = None
    if n_valid:
        has_hist = np.bincount(train.user_idx, minlength=dataset.n_users + 1) > 0
        valid = _holdout(dataset, valid_mask & has_hist[dataset.user_idx], train)
    has_hist = np.bincount(before_test.user_idx, minlength=dataset.n_users + 1) > 0
    test = _holdout(dataset, test_mask & has_hist[dataset.user_idx], before_test)
    if len(test) == 0:
        raise DataValidationError("temporal split: no test user has history before the test period")
    cut = float(ts[order[n - n_test]])
    return Split(
        train,
        valid,
        test,
        "temporal",
        {"test_fraction": test_fraction, "valid_fraction": valid_fraction, "test_start": cut},
    )


def ratio_split(
    dataset: Dataset,
    *,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    shuffle: bool = False,
    seed: int = 0,
) -> Split:
    """Per-user split: the last ``test_fraction`` of each user's interactions -> test (or a
    seeded random share with ``shuffle=True``), the ``valid_fraction`` before -> validation.
    Users keep at least one training interaction."""
    if not (
        0 < test_fraction < 1 and 0 <= valid_fraction < 1 and test_fraction + valid_fraction < 1
    ):
        raise ConfigError(
            f"ratio split needs 0 < test_fraction, 0 <= valid_fraction and a sum < 1; "
            f"got {test_fraction}, {valid_fraction}"
        )
    pos, lens = _positions(dataset)
    if shuffle:
        rng = np.random.default_rng(seed)
        key = rng.random(dataset.n_interactions)
        order = np.lexsort((key, dataset.user_idx))
        pos = np.empty_like(pos)
        counts = np.bincount(dataset.user_idx, minlength=dataset.n_users + 1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pos[order] = np.arange(dataset.n_interactions) - starts[dataset.user_idx[order]]
    n_test = np.floor(lens * test_fraction).astype(np.int64)
    n_valid = np.floor(lens * valid_fraction).astype(np.int64)
    n_test = np.minimum(n_test, lens - 1)
    n_valid = np.minimum(n_valid, lens - 1 - n_test)
    test_mask = pos >= lens - n_test
    valid_mask = (pos >= lens - n_test - n_valid) & ~test_mask
    train = dataset.subset(~test_mask & ~valid_mask)
    valid = _holdout(dataset, valid_mask, train) if valid_fraction > 0 else None
    test = _holdout(dataset, test_mask, dataset.subset(~test_mask))
    if len(test) == 0:
        raise DataValidationError("ratio split: no user has enough interactions for a test item")
    params = {
        "test_fraction": test_fraction,
        "valid_fraction": valid_fraction,
        "shuffle": shuffle,
        "seed": seed,
    }
    return Split(train, valid, test, "ratio", params)


def split_dataset(dataset: Dataset, method: str = "loo", **kwargs: Any) -> Split:
    """Dispatch by name: ``"loo"``, ``"temporal"`` or ``"ratio"``."""
    methods = {"loo": leave_one_out, "temporal": temporal_split, "ratio": ratio_split}
    if method not in methods:
        raise ConfigError(f"unknown split {method!r}; choose one of {sorted(methods)}")
    return methods[method](dataset, **kwargs)
