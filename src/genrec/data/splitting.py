"""Leak-free splits: leave-one-out, global temporal, per-user ratio and cold items.

Every split returns a :class:`Split`: the training :class:`Dataset`, and for validation and
test a :class:`Holdout` holding the evaluated users, their target items and the *history*
the model may see at that stage. Validation history = train; test history = train +
validation (the SASRec/TIGER protocol: the validation item is known at test time). A target
interaction never appears in the history given for its own stage (exact duplicates, which
could smuggle one in, are collapsed when the :class:`Dataset` is built).

Re-consumption, a user interacting with the same item again later, is a protocol choice
(``reconsumption=`` of :func:`split_dataset`, ``--reconsumption`` on the command line):

* ``"miss"`` (default): repeats stay. A target the user already had in the stage's history
  remains a target; since seen items are excluded from the ranked lists, it counts as a
  miss. ``Split.describe()`` reports how many there are (``n_test_targets_in_history``).
* ``"drop"``: repeats stay in the training data, but targets already in the stage's history
  are removed from the holdout (a user with no target left is not evaluated at that stage);
  ``n_<stage>_targets_dropped`` counts them.
* ``"first"``: only each user's first interaction with an item is kept before splitting
  (later repeats are removed, ``n_repeats_removed``), so no target was seen before.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from genrec.data.dataset import Dataset
from genrec.errors import ConfigError, DataValidationError, expect_type

SplitMethod = Literal["loo", "temporal", "ratio", "cold"]
Reconsumption = Literal["miss", "drop", "first"]
RECONSUMPTION: tuple[str, ...] = ("miss", "drop", "first")
_DATASET_HINT = "load one with genrec.load_dataset(...) or build genrec.Dataset(dataframe)"


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

    def sample(self, n: int, seed: int = 0) -> Holdout:
        """A seeded subset of ``n`` users (all of them when ``n >= len(self)``), in their
        original order, with the same history."""
        if n < 1:
            raise ConfigError(f"Holdout.sample needs n >= 1, got {n}")
        if n >= len(self.users):
            return self
        rows = np.sort(np.random.default_rng(seed).choice(len(self.users), n, replace=False))
        return Holdout(self.users[rows], self.targets[rows], self.history)


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
    expect_type(dataset, Dataset, "leave_one_out() dataset", _DATASET_HINT)
    need = 3 if validation else 2
    pos, lens = _positions(dataset)
    short = np.unique(dataset.user_idx[lens < need])
    if len(short):
        ext = dataset.user_map.to_external(short[:5]).tolist()
        raise DataValidationError(
            f"leave-one-out needs at least {need} interactions per user; {len(short)} user(s) "
            f"have fewer (e.g. user ids {ext}). Filter them first: --min-user-interactions "
            f"{need} on the command line, genrec.data.preprocess(dataset, "
            f"min_user_interactions={need}) in Python"
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
    expect_type(dataset, Dataset, "temporal_split() dataset", _DATASET_HINT)
    for name, frac in (("test_fraction", test_fraction), ("valid_fraction", valid_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {frac}")
    if test_fraction <= 0 or test_fraction + valid_fraction >= 1.0:
        raise ConfigError("temporal split needs test_fraction > 0 and test+valid fractions < 1")
    if not dataset.has_timestamps:
        raise DataValidationError(
            f"temporal split: dataset {dataset.name!r} has no real timestamps (its order "
            "column only ranks each user's interactions), so a global time cut-off would "
            "mix users' positions, not times; use the leave-one-out split ('loo')"
        )
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
    expect_type(dataset, Dataset, "ratio_split() dataset", _DATASET_HINT)
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


@dataclass
class ColdItemSplit(Split):
    """A :class:`Split` whose test targets are cold items (see :func:`cold_item_split`).

    Attributes:
        cold_items: sorted internal ids of the held-out (cold) items.
    """

    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def cold_mask(self) -> np.ndarray:
        """Bool ``(n_items + 1,)``: True for the cold items."""
        mask = np.zeros(self.train.n_items + 1, dtype=bool)
        mask[self.cold_items] = True
        return mask


def cold_item_split(
    dataset: Dataset, *, new_item_share: float = 0.05, validation: bool = True
) -> ColdItemSplit:
    """Cold-start items: hold out the newest items entirely and test on them.

    The newest ``new_item_share`` of the items that have interactions become *cold*: by
    first-interaction time when the dataset has real timestamps, otherwise (order-only
    "timestamps") by item-id order, the last internal ids (the id map sorts external ids) being
    the newest. Ties are broken by internal id, so the split is deterministic.

    * **Test**: every user whose interactions include a cold item and who has at least one
      earlier non-cold interaction. The target is the user's *first* cold interaction; the
      history is the user's non-cold interactions before it. The user's interactions after the
      target are dropped altogether (neither history nor training), so nothing from the
      future of a test user leaks into training.
    * **Train**: every remaining non-cold interaction. No cold item has a training
      interaction, but all items stay in the id map and the item table, so content-based
      models (text k-NN, TIGER with a tokenizer fitted on all items' text) can still
      recommend them; collaborative models see them as items without interactions.
    * **Validation** (``validation=True``): each user's last training interaction when the
      user has at least two (warm-item leave-one-out, for early stopping; cold items cannot
      be validation targets without leaking). The test history is train + validation.

    Args:
        dataset: the full dataset.
        new_item_share: share of the items with interactions to hold out, in ``(0, 1)``;
            at least one item is cold.
        validation: carve a warm-item validation holdout out of training.

    Returns:
        A :class:`ColdItemSplit` (``method="cold"``) with the cold items' internal ids.

    Raises:
        ConfigError: ``new_item_share`` outside ``(0, 1)``.
        DataValidationError: no user has a cold target after a non-cold interaction.
    """
    expect_type(dataset, Dataset, "cold_item_split() dataset", _DATASET_HINT)
    if not 0.0 < new_item_share < 1.0:
        raise ConfigError(f"new_item_share must be in (0, 1), got {new_item_share!r}")
    n_items = dataset.n_items
    items, users = dataset.item_idx, dataset.user_idx
    present = np.flatnonzero(np.bincount(items, minlength=n_items + 1)[1:] > 0) + 1
    n_cold = min(max(1, int(round(new_item_share * len(present)))), len(present) - 1)
    if n_cold < 1:
        raise DataValidationError("cold_item_split needs at least two items with interactions")
    if dataset.has_timestamps:
        first = np.full(n_items + 1, np.inf)
        np.minimum.at(first, items, dataset.timestamps.astype(np.float64))
        order = np.lexsort((present, first[present]))  # oldest first, ties by id
        cold_items, by = np.sort(present[order[-n_cold:]]), "first_interaction_time"
    else:
        cold_items, by = present[-n_cold:], "item_id_order"
    is_cold_item = np.zeros(n_items + 1, dtype=bool)
    is_cold_item[cold_items] = True
    cold = is_cold_item[items]  # (N,) interactions with a cold item
    pos, lens = _positions(dataset)  # interactions are sorted by (user, time)
    # position of each user's first cold interaction (lens = none)
    first_cold = np.full(dataset.n_users + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_cold, users[cold], pos[cold])
    target_pos = first_cold[users]  # (N,)
    test_mask = cold & (pos == target_pos) & (target_pos > 0)
    # a test user keeps only what came before the target; users whose first interaction is
    # cold (no history) keep their non-cold interactions for training
    keep = ~cold & ((pos < target_pos) | (target_pos == 0))
    train_all = keep
    valid_mask = np.zeros_like(keep)
    if validation:
        n_keep = np.bincount(users[keep], minlength=dataset.n_users + 1)
        last = np.full(dataset.n_users + 1, -1, dtype=np.int64)
        np.maximum.at(last, users[keep], pos[keep])
        valid_mask = keep & (pos == last[users]) & (n_keep[users] >= 2)
        train_all = keep & ~valid_mask
    if not test_mask.any():
        raise DataValidationError(
            "cold_item_split: no user interacts with a cold item after a non-cold one; "
            "raise new_item_share"
        )
    train = dataset.subset(train_all)
    valid = _holdout(dataset, valid_mask, train) if validation else None
    test = _holdout(dataset, test_mask, dataset.subset(keep))
    params = {
        "new_item_share": new_item_share,
        "n_cold_items": int(n_cold),
        "cold_by": by,
        "validation": validation,
        # non-cold interactions of test users after their target (dropped everywhere)
        "n_dropped_after_target": int((~cold & ~keep).sum()),
    }
    return ColdItemSplit(train, valid, test, "cold", params, cold_items=cold_items.astype(np.int64))


def first_occurrences(dataset: Dataset) -> np.ndarray:
    """Bool mask (aligned with ``dataset.interactions``): True for each user's first
    interaction with each item, False for the later repeats (re-consumption)."""
    key = dataset.user_idx.astype(np.int64) * (dataset.n_items + 1) + dataset.item_idx
    _, first = np.unique(key, return_index=True)  # rows are chronological within a user
    mask = np.zeros(dataset.n_interactions, dtype=bool)
    mask[first] = True
    return mask


def _drop_seen_targets(holdout: Holdout) -> tuple[Holdout, int]:
    """``holdout`` without the targets already in its history; users left without a target
    are removed. Returns the new holdout and the number of targets dropped."""
    seen = holdout.history.matrix()[holdout.users].multiply(holdout.targets).tocsr()
    if seen.nnz == 0:
        return holdout, 0
    seen.data[:] = 1.0
    kept = (holdout.targets - seen).tocsr()
    kept.eliminate_zeros()
    rows = np.flatnonzero(np.diff(kept.indptr) > 0)
    return Holdout(holdout.users[rows], kept[rows], holdout.history), int(seen.nnz)


def split_dataset(
    dataset: Dataset,
    method: str = "loo",
    *,
    reconsumption: Reconsumption = "miss",
    **kwargs: Any,
) -> Split:
    """Split ``dataset`` by name: ``"loo"``, ``"temporal"``, ``"ratio"`` or ``"cold"``.

    Args:
        dataset: the interactions (a :class:`~genrec.data.dataset.Dataset`).
        method: the split's name.
        reconsumption: how to treat a user's repeated interactions with an item (see the
            module docs): ``"miss"`` (default; a target seen before counts as a miss),
            ``"drop"`` (such targets are not evaluated) or ``"first"`` (repeats are removed
            before splitting).
        **kwargs: options of the split function (``test_fraction``, ``validation``...).

    Raises:
        GenrecTypeError: ``dataset`` is not a Dataset or ``method`` not a string.
        ConfigError: an unknown method, option or ``reconsumption`` value.
        DataValidationError: the data cannot be split this way (too-short histories...).
    """
    expect_type(dataset, Dataset, "split_dataset() dataset", _DATASET_HINT)
    expect_type(method, str, "split_dataset() method")
    methods = {
        "loo": leave_one_out,
        "temporal": temporal_split,
        "ratio": ratio_split,
        "cold": cold_item_split,
    }
    if method not in methods:
        raise ConfigError(f"unknown split {method!r}; choose one of {sorted(methods)}")
    if reconsumption not in RECONSUMPTION:
        raise ConfigError(
            f"reconsumption must be one of {list(RECONSUMPTION)}, got {reconsumption!r}"
        )
    fn = methods[method]
    accepted = [p for p in inspect.signature(fn).parameters if p != "dataset"]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ConfigError(
            f"split {method!r} got unexpected option(s) {unknown}; it accepts "
            f"{', '.join(accepted) or 'no options'} (and reconsumption)"
        )
    n_removed = 0
    if reconsumption == "first":
        keep = first_occurrences(dataset)
        n_removed = int((~keep).sum())
        if n_removed:
            dataset = dataset.subset(keep)
    split = fn(dataset, **kwargs)
    split.params["reconsumption"] = reconsumption
    if reconsumption == "first":
        split.params["n_repeats_removed"] = n_removed
    elif reconsumption == "drop":
        for stage in ("valid", "test"):
            holdout = getattr(split, stage)
            if holdout is None:
                continue
            holdout, n_dropped = _drop_seen_targets(holdout)
            split.params[f"n_{stage}_targets_dropped"] = n_dropped
            setattr(split, stage, holdout)
        if len(split.test) == 0:
            raise DataValidationError(
                "reconsumption='drop' left no test target: every test target was already in "
                "its user's history; use reconsumption='miss' or 'first'"
            )
    return split
