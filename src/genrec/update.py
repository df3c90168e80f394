"""Continuous training: bring a fitted model up to date with new interactions.

``genrec update ARTIFACT --data NEW --out NEW_ARTIFACT [--epochs N]`` and
:func:`update_model` take a fitted model and a batch of new interactions (which may name new
users and new items) and return a *new* model; the old artifact is never touched.

What happens depends on the model:

* **Neural models** (every :class:`~genrec.models.neural.NeuralRecommender`):
  **warm start**. The id maps grow (old ids keep their internal ids, new ones are appended),
  every weight tensor is copied into a freshly built network of the new size; rows/columns
  of new users and items keep the fresh initialisation (tables with trailing special rows,
  e.g. BERT4Rec's mask token, keep them at the end). Then the shared trainer runs ``epochs``
  epochs (default: the config's) on the *affected* users, i.e. those with new interactions,
  with their whole history as context, plus a seeded ``replay`` share of the other users
  (against forgetting). The optimizer starts afresh (artifacts hold no optimizer state).
* **ALS: fold-in**, its natural incremental path: the affected users (those with new
  interactions) are re-solved against the fixed item factors, then the factors of new items
  against the user factors of the users who interacted with them, then the affected users
  once more, all with the exact normal equations of implicit ALS
  (:meth:`genrec.models.als.ALS.fold_in`). ``epochs`` repeats the item and user steps
  (default 1). Unaffected users and old items do not move.
* **Everything else refits** on all interactions (old + new), and says so in the report:
  popularity, item-KNN, EASE (closed forms; refitting is their update), text k-NN, the
  cascade, GPT4Rec, the exploration wrapper.
* **Semantic-ID models** (TIGER, SID-split): **warm start with new codes**. They have no
  item-id tables, so nothing grows but the codebook: the fitted items keep their codes, and
  the new items get the codes the *fitted* tokenizer's ``encode`` gives their text vectors
  (no refit; random codes for ``codebook="random"``), plus the smallest free collision code
  (:meth:`~genrec.models.tiger.TIGER.grown_codebook`). Every weight is copied; new users hash
  into the existing user buckets. Then training runs on the affected users as above. The
  artifact stores the fitted tokenizer (rkmeans, rqvae) since 2026-12-08; a model whose codes
  came from ``codebook_path``, or an older artifact, has none and refuses with a clear error.

The updated model's training history (what it filters as seen, serves from, and saves) is the
old history plus the new interactions. Old interactions are read back from the model itself
(``train_histories_``), so an artifact is all an update needs.

The warm start goes through the public ``fit(..., warm_start=...)`` option
(:class:`~genrec.core.recommender.FitOptions`): it loads the grown weights into the network
the model builds. Still wished from the trainer: a way to keep and restore the optimizer
state in artifacts, and a per-epoch time budget that a short update can use.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from genrec import columns as C
from genrec.data.dataset import Dataset, IdMap
from genrec.errors import (
    ConfigError,
    DataValidationError,
    DuplicateInteractionWarning,
    GenrecError,
    NotFittedError,
    caller_stacklevel,
)
from genrec.models.base import Recommender
from genrec.text.embed import load_item_vectors

__all__ = [
    "UpdateError",
    "UpdateReport",
    "grow_state",
    "grow_tensor",
    "history_frame",
    "merged_dataset",
    "update_model",
]


class UpdateError(GenrecError, ValueError):
    """The model cannot be updated this way."""


def _check_fitted(model: Recommender) -> None:
    if not model.is_fitted:
        raise NotFittedError(f"{type(model).__name__} is not fitted: nothing to update")


@dataclass
class UpdateReport:
    """What an update did.

    Attributes:
        model: registered name.
        mode: ``"warm-start"``, ``"fold-in"`` or ``"refit"``.
        n_new_interactions, n_new_users, n_new_items: size of the update.
        n_users_trained: users whose data the update trained on (warm start: affected +
            replay; fold-in: affected; refit: all).
        epochs: epochs (warm start) or fold-in sweeps.
        seconds: wall time of the update.
        note: one sentence for people.
    """

    model: str
    mode: str
    n_new_interactions: int
    n_new_users: int
    n_new_items: int
    n_users_trained: int
    epochs: int | None
    seconds: float
    note: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# ---------------------------------------------------------------------- data
def history_frame(model: Recommender) -> pd.DataFrame:
    """The model's training interactions as a frame (``user_id``, ``item_id``,
    ``timestamp``; the position in the user's history when no times were stored)."""
    _check_fitted(model)
    h = model.train_histories_
    assert h is not None and model.user_map is not None and model.item_map is not None
    counts = np.diff(h.seq_indptr)
    users = np.repeat(np.arange(len(counts)), counts)
    items = np.asarray(h.seq_items, dtype=np.int64)
    if h.seq_times is not None:
        times = np.asarray(h.seq_times)
    else:
        starts = np.repeat(h.seq_indptr[:-1], counts)
        times = np.arange(len(items)) - starts
    return pd.DataFrame(
        {
            C.USER: model.user_map.to_external(users),
            C.ITEM: model.item_map.to_external(items),
            C.TIMESTAMP: times,
        }
    )


def _grow_map(old: IdMap, values: Any) -> IdMap:
    """``old`` plus the unseen ``values`` appended (sorted when comparable)."""
    new = IdMap.from_values(values)
    extra = [v for v in new.external_ids if v not in old]
    return IdMap([*old.to_list(), *extra]) if extra else old


def merged_dataset(
    model: Recommender,
    new: Dataset | pd.DataFrame,
    items: pd.DataFrame | None = None,
) -> tuple[Dataset, np.ndarray]:
    """The model's training interactions plus ``new`` over grown id maps.

    Args:
        model: a fitted model.
        new: new interactions (a :class:`Dataset` or a frame with ``user_id``, ``item_id``
            and optionally ``timestamp``). Without timestamps (or when the model stored
            none) they follow each user's old history in their row order.
        items: optional item table for new items (title, genres, text...); old items keep
            the titles stored in the model.

    Returns:
        ``(dataset, is_new)``: the merged dataset and a bool mask of its new interactions
        (aligned with ``dataset.interactions``).
    """
    old = history_frame(model)
    frame = new.interactions if isinstance(new, Dataset) else new
    if not isinstance(frame, pd.DataFrame) or not {C.USER, C.ITEM} <= set(frame.columns):
        raise DataValidationError("new interactions need 'user_id' and 'item_id' columns")
    if len(frame) == 0:
        raise DataValidationError("no new interactions to update with")
    add = frame[[c for c in (C.USER, C.ITEM, C.TIMESTAMP) if c in frame.columns]].copy()
    timed = model.train_histories_.seq_times is not None  # type: ignore[union-attr]
    if not timed or C.TIMESTAMP not in add.columns:
        # order only: after each user's old history, in the given order
        last = old.groupby(C.USER)[C.TIMESTAMP].max()
        base = add[C.USER].map(last).fillna(-1).to_numpy(dtype=np.float64)
        add[C.TIMESTAMP] = base + 1 + add.groupby(C.USER).cumcount().to_numpy()
        if not timed:
            old[C.TIMESTAMP] = old[C.TIMESTAMP].astype(np.float64)
    user_map = _grow_map(model.user_map, add[C.USER])  # type: ignore[arg-type]
    item_map = _grow_map(model.item_map, add[C.ITEM])  # type: ignore[arg-type]
    marker = "__genrec_new__"
    old[marker] = False
    add[marker] = True
    both = pd.concat([old, add], ignore_index=True)
    # exact repeats (same user, item and time) of an old or an earlier new interaction are
    # not new: drop them here, or the Dataset collapses them and the marker loses its rows
    repeat = both.duplicated([C.USER, C.ITEM, C.TIMESTAMP], keep="first").to_numpy()
    if repeat.any():
        n_rep = int(repeat.sum())
        if n_rep == len(add):
            raise DataValidationError(
                f"no new interactions: all {n_rep} rows repeat interactions the model already "
                "has (same user, item and timestamp)"
            )
        warnings.warn(
            f"{n_rep} of the {len(add)} new rows repeat an interaction the model (or an "
            "earlier new row) already has, with the same user, item and timestamp: skipped",
            DuplicateInteractionWarning,
            stacklevel=caller_stacklevel(),
        )
        both = both.loc[~repeat].reset_index(drop=True)
    titles = model.item_titles_
    table = None
    if titles is not None:
        table = pd.DataFrame(
            {C.ITEM: model.item_map.to_list(), C.TITLE: list(titles[1:])}  # type: ignore[union-attr]
        )
    if items is not None:
        if C.ITEM not in items.columns:
            raise DataValidationError("the item table needs an 'item_id' column")
        table = items if table is None else pd.concat([items, table], ignore_index=True)
        table = table.drop_duplicates(C.ITEM, keep="first")
    ds = Dataset(
        both.drop(columns=[marker]),
        table,
        name="update",
        user_map=user_map,
        item_map=item_map,
        has_timestamps=timed,
    )
    # the Dataset sorts by (user, time, input order): recover the marker in that order
    u = user_map.to_internal(both[C.USER].to_numpy())
    order = np.lexsort((np.arange(len(both)), both[C.TIMESTAMP].to_numpy(), u))
    return ds, both[marker].to_numpy()[order]


# ---------------------------------------------------------------------- tensors
def grow_tensor(old: torch.Tensor, fresh: torch.Tensor, sizes: dict[int, int]) -> torch.Tensor:
    """``fresh`` with the entries of ``old`` copied in where they belong.

    Every axis whose length changed must have grown by one of the amounts in ``sizes``
    (``{old_count: growth}``, e.g. ``{n_items: 5, n_users: 3}``). On such an axis the
    leading ``min(length, old_count + 1)`` entries (padding row 0 and the old ids) keep
    their place and any trailing special entries (length > old_count + 1, e.g. a mask
    token) move to the new end; entries in between are new ids and keep ``fresh``'s values.
    """
    if old.dim() != fresh.dim():
        raise UpdateError(f"tensor rank changed: {tuple(old.shape)} -> {tuple(fresh.shape)}")
    out = fresh.clone()
    plans = []
    for axis, (a, b) in enumerate(zip(old.shape, fresh.shape)):
        if a == b:
            plans.append([(slice(0, a), slice(0, a))])
            continue
        match = [n for n, g in sizes.items() if b - a == g and a >= n and g > 0]
        if not match:
            raise UpdateError(
                f"cannot grow a tensor of shape {tuple(old.shape)} to {tuple(fresh.shape)}: "
                f"axis {axis} changed by {b - a}, not by the number of new users/items"
            )
        n = max(match)
        head = min(a, n + 1)
        tail = a - head
        parts = [(slice(0, head), slice(0, head))]
        if tail:
            parts.append((slice(a - tail, a), slice(b - tail, b)))
        plans.append(parts)

    for combo in itertools.product(*plans):
        o = tuple(p[0] for p in combo)
        f = tuple(p[1] for p in combo)
        out[f] = old[o]
    return out


def grow_state(
    old: dict[str, Any], fresh: dict[str, torch.Tensor], sizes: dict[int, int]
) -> dict[str, torch.Tensor]:
    """:func:`grow_tensor` over a whole state dict (keys must match)."""
    missing = sorted(set(fresh) ^ set(old))
    if missing:
        raise UpdateError(f"the saved weights and the new network differ in {missing[:5]}")
    out = {}
    for key, value in fresh.items():
        o = old[key]
        o = torch.as_tensor(np.asarray(o)) if not isinstance(o, torch.Tensor) else o
        out[key] = grow_tensor(o.to(value.dtype), value, sizes) if value.dim() else o.clone()
    return out


def _semantic_id_note(model: Any, n_new_items: int, n_new_users: int) -> str:
    """What an update did to a semantic-ID model's items and users, for the report."""
    source = (
        f"the fitted {model.tokenizer_.name} tokenizer"
        if model.tokenizer_ is not None
        else "random codes (codebook='random')"
    )
    users = (
        f"{n_new_users} new users in the hashed user buckets"
        if getattr(model.config, "n_user_buckets", 0)
        else f"{n_new_users} new users (no user token)"
    )
    return f"codes for {n_new_items} new items from {source}, {users}"


# ---------------------------------------------------------------------- update
def _affected(ds: Dataset, is_new: np.ndarray) -> np.ndarray:
    """Internal ids of users with new interactions."""
    return np.unique(ds.user_idx[is_new])


def _take_history(model: Recommender, ds: Dataset) -> None:
    model.user_map, model.item_map = ds.user_map, ds.item_map
    model.train_histories_ = ds.histories()
    model.item_popularity_ = ds.item_popularity()
    model.item_titles_ = ds.item_titles()


def update_model(
    model: Recommender,
    new: Dataset | pd.DataFrame,
    *,
    epochs: int | None = None,
    items: pd.DataFrame | None = None,
    valid: Any = None,
    replay: float = 0.0,
    seed: int | None = None,
    item_vectors: np.ndarray | str | None = None,
) -> tuple[Recommender, UpdateReport]:
    """A new model: ``model`` brought up to date with ``new`` interactions (see the module
    docstring). ``model`` itself is not modified.

    Args:
        model: a fitted model (e.g. ``genrec.load(artifact)``).
        new: the new interactions.
        epochs: warm-start epochs (default: the model's ``epochs``) or ALS fold-in sweeps
            (default 1); ignored by refitted models.
        items: item table rows for new items (text models use it).
        valid: an optional holdout for early stopping during a warm start.
        replay: share of the unaffected users whose histories are trained on too
            (warm start only), in ``[0, 1]``.
        seed: seed of the update (default: the model's).
        item_vectors: semantic-ID models: ``(n_items + 1, d)`` item vectors of the *grown*
            catalogue (or a ``.npy`` path) for the fitted tokenizer to code the new items
            with; default the model's ``item_vectors_path``, else the embedded item text.

    Returns:
        ``(updated_model, report)``.

    Raises:
        UpdateError: a semantic-ID model without a tokenizer for its new items, or weights
            that cannot be grown.
    """
    from genrec.models.neural import NeuralRecommender
    from genrec.registry import get_model

    _check_fitted(model)
    if not 0.0 <= replay <= 1.0:
        raise ConfigError(f"replay must be in [0, 1], got {replay!r}")
    if epochs is not None and (isinstance(epochs, bool) or epochs < 1):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    from genrec.models.tiger import TIGER

    start = time.perf_counter()
    ds, is_new = merged_dataset(model, new, items)
    n_new_users = ds.user_map.size - model.user_map.size  # type: ignore[union-attr]
    n_new_items = ds.item_map.size - model.item_map.size  # type: ignore[union-attr]
    affected = _affected(ds, is_new)
    seed = int(model.config.seed if seed is None else seed)
    cls = get_model(model.name)
    base = dict(
        model=model.name,
        n_new_interactions=int(is_new.sum()),
        n_new_users=int(n_new_users),
        n_new_items=int(n_new_items),
    )
    if isinstance(model, (NeuralRecommender, TIGER)):
        cfg = model.config.replace(seed=seed, **({"epochs": epochs} if epochs else {}))
        fresh = cls(cfg)
        users = affected
        if replay > 0:
            rng = np.random.default_rng(seed)
            others = np.setdiff1d(np.unique(ds.user_idx), affected)
            users = np.union1d(users, rng.choice(others, int(round(replay * len(others))), False))
        mask = np.isin(ds.user_idx, users)
        train = ds.subset(mask)
        assert model.network_ is not None
        old_state = {k: v.detach().cpu() for k, v in model.network_.state_dict().items()}
        if isinstance(model, TIGER):  # no item-id tables: new items get codes, not rows
            vectors = item_vectors
            if isinstance(vectors, str):
                vectors = load_item_vectors(vectors, ds)
            try:
                grown = model.grown_codebook(ds, vectors)
            except ConfigError as exc:  # no tokenizer to code the new items with
                raise UpdateError(str(exc)) from exc
            fresh.preset_codebook(grown, model.tokenizer_)
            # only the code-token table can grow: at its end, when the collision level did
            n_tokens = old_state["token_emb.weight"].shape[0]  # 1 + sum of the level sizes
            sizes = {n_tokens - 1: 1 + sum(grown.codebook_sizes) - n_tokens}
        else:
            sizes = {model.item_map.size: n_new_items, model.user_map.size: n_new_users}  # type: ignore[union-attr]

        def warm_start(net: torch.nn.Module) -> None:
            net.load_state_dict(grow_state(old_state, net.state_dict(), sizes))

        fresh.fit(train, valid, warm_start=warm_start)
        _take_history(fresh, ds)
        report = UpdateReport(
            **base, mode="warm-start", n_users_trained=int(len(users)),
            epochs=int(cfg.epochs), seconds=time.perf_counter() - start,
            note=f"warm start: {len(affected)} affected users (+{len(users) - len(affected)} "
            f"replayed) trained for up to {cfg.epochs} epochs; "
            + (
                _semantic_id_note(model, n_new_items, n_new_users)
                if isinstance(model, TIGER)
                else f"new rows for {n_new_users} users and {n_new_items} items"
            ),
        )  # fmt: skip
    elif model.name == "als":
        fresh = _als_fold_in(model, ds, affected, sweeps=epochs or 1)
        report = UpdateReport(
            **base, mode="fold-in", n_users_trained=int(len(affected)), epochs=epochs or 1,
            seconds=time.perf_counter() - start,
            note=f"ALS fold-in: factors of {n_new_items} new items solved against the user "
            f"factors, then {len(affected)} affected users re-solved; other factors fixed",
        )  # fmt: skip
    else:
        fresh = cls(model.config.replace(seed=seed)).fit(ds, valid)
        report = UpdateReport(
            **base, mode="refit", n_users_trained=int(ds.user_map.size), epochs=None,
            seconds=time.perf_counter() - start,
            note=f"{model.name} has no incremental path: refitted on all "
            f"{ds.n_interactions} interactions (old + new)",
        )  # fmt: skip
    fresh.fit_seconds_ = report.seconds
    info = dict(fresh.training_info_ or {})
    info["update"] = report.to_dict()
    fresh.training_info_ = info
    return fresh, report


def _solve_rows(C: Any, F: np.ndarray, reg: float) -> np.ndarray:
    """Implicit-ALS normal equations for the rows of a confidence CSR ``C`` (non-zeros hold
    ``c = 1 + alpha w``) against fixed factors ``F``: ``(F^T F + reg I + sum (c - 1) f f^T)^-1
    sum c f`` (Hu et al. 2008, Eq. 4); empty rows get zeros."""
    F64 = F.astype(np.float64)
    base = F64.T @ F64 + reg * np.eye(F.shape[1])
    out = np.zeros((C.shape[0], F.shape[1]), dtype=np.float32)
    for r in range(C.shape[0]):
        lo, hi = C.indptr[r], C.indptr[r + 1]
        if lo == hi:
            continue
        Fr = F64[C.indices[lo:hi]]
        c = C.data[lo:hi].astype(np.float64)
        out[r] = np.linalg.solve(base + (Fr * (c - 1.0)[:, None]).T @ Fr, (Fr * c[:, None]).sum(0))
    return out


def _als_fold_in(model: Any, ds: Dataset, affected: np.ndarray, sweeps: int) -> Any:
    """ALS update: new item factors against fixed user factors, then the affected users."""
    import copy

    fresh = copy.copy(model)
    n_u, n_i = ds.user_map.size + 1, ds.item_map.size + 1
    n_old_items = model.item_factors_.shape[0]
    f = model.item_factors_.shape[1]
    U = np.zeros((n_u, f), dtype=np.float32)
    Y = np.zeros((n_i, f), dtype=np.float32)
    U[: model.user_factors_.shape[0]] = model.user_factors_
    Y[:n_old_items] = model.item_factors_
    W = ds.matrix(binary=False).astype(np.float32)  # (U + 1, I + 1)
    if model.config.weighting == "bm25":  # idf of the new items, from the merged data
        users = W[1:]
        df = np.bincount(users.indices, minlength=n_i).astype(np.float64)
        idf = (np.log(users.shape[0]) - np.log1p(df)).astype(np.float64)
        idf[:n_old_items] = model.bm25_idf_
        fresh.bm25_idf_ = idf
    new_items = np.arange(n_old_items, n_i)
    fresh.item_factors_ = Y
    # users first (new items still 0), so that an item seen only by new users gets factors
    U[affected] = fresh.fold_in(W[affected])
    for _ in range(sweeps):
        if len(new_items):  # the same equations with users and items swapped (raw weights)
            Ct = sp.csr_matrix(W.T.tocsr()[new_items], dtype=np.float32, copy=True)
            Ct.data = (1.0 + model.config.alpha * Ct.data).astype(np.float32)  # 1 + alpha w
            Y[new_items] = _solve_rows(Ct, U, model.config.regularization)
        U[affected] = fresh.fold_in(W[affected])
    fresh.user_factors_ = U
    _take_history(fresh, ds)
    return fresh


# ---------------------------------------------------------------------- CLI
def read_table(path: str) -> pd.DataFrame:
    """A CSV (``,``), TSV (``.tsv``/``.tab``) or parquet file as a frame."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise DataValidationError(f"no file at {path}")
    if p.suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    return pd.read_csv(p, sep="\t" if p.suffix in (".tsv", ".tab") else ",")


def cmd_update(args: Any) -> int:
    """``genrec update ARTIFACT --data NEW --out NEW_ARTIFACT [--epochs N] [--replay R]``."""
    from pathlib import Path

    from genrec.io import load_model
    from genrec.paths import OutputPathError, prepare_output_dir

    if Path(args.out).expanduser().resolve() == Path(args.artifact).expanduser().resolve():
        raise OutputPathError(
            f"--out {args.out} is the artifact being updated; an update always writes a new "
            "artifact and leaves the old one as it is"
        )
    prepare_output_dir(args.out, "artifact", overwrite=args.overwrite, flag="--overwrite")
    model = load_model(args.artifact)
    new = read_table(args.data)
    items = read_table(args.items) if args.items else None
    updated, report = update_model(
        model, new, epochs=args.epochs, items=items, replay=args.replay,
        item_vectors=getattr(args, "item_vectors", None),
    )  # fmt: skip
    updated.save(args.out, overwrite=args.overwrite)
    print(report.note)
    print(
        f"{report.n_new_interactions} new interactions, {report.n_new_users} new users, "
        f"{report.n_new_items} new items; {report.mode} in {report.seconds:.1f} s; "
        f"wrote {args.out} ({args.artifact} unchanged)"
    )
    return 0
