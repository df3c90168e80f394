"""The one data structure every model reads: :class:`Dataset`, with :class:`IdMap` and
:class:`UserHistories`.

Internal ids are contiguous integers starting at 1; id 0 is reserved for padding in every
user and item index (sequence models use it as the padding token, matrices keep an empty
row/column 0). External ids are whatever the source data used (ints or strings).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genrec import columns as C
from genrec.errors import (
    ConfigError,
    DataValidationError,
    DuplicateIdWarning,
    DuplicateInteractionWarning,
    UnknownIdError,
    caller_stacklevel,
    expect_type,
)


class IdMap:
    """Bidirectional map between external ids and internal ids ``1..n`` (0 = padding).

    Args:
        external_ids: distinct external ids; their order defines the internal ids.
    """

    def __init__(self, external_ids: Iterable[Any]):
        ext = pd.Index(list(external_ids))
        if ext.has_duplicates:
            dup = ext[ext.duplicated()][0]
            raise DataValidationError(f"IdMap got duplicate external id {dup!r}")
        if ext.hasnans:
            raise DataValidationError("IdMap got a missing (NaN/None) external id")
        self._index = ext
        self._numeric = pd.api.types.is_integer_dtype(ext.dtype)

    @classmethod
    def from_values(cls, values: Iterable[Any]) -> IdMap:
        """Distinct values, sorted when comparable (reproducible internal ids)."""
        uniq = pd.unique(pd.Series(list(values) if not isinstance(values, pd.Series) else values))
        with contextlib.suppress(TypeError):  # mixed types: keep first-appearance order
            uniq = np.sort(uniq)
        return cls(uniq)

    def __len__(self) -> int:
        return len(self._index)

    @property
    def size(self) -> int:
        """Number of real ids (internal ids run 1..size)."""
        return len(self._index)

    @property
    def external_ids(self) -> np.ndarray:
        """External ids in internal-id order (position 0 is internal id 1)."""
        return self._index.to_numpy()

    def _normalise(self, values: np.ndarray) -> np.ndarray:
        # CLI and JSON hand us strings for integer ids and vice versa: accept both.
        if self._numeric and values.dtype.kind in "OUS":
            out = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
            if not out.isna().any() and (out == np.floor(out)).all():
                with contextlib.suppress(OverflowError, ValueError):
                    return out.to_numpy().astype(np.int64)
        if self._index.dtype.kind == "f" and values.dtype.kind in "OUS":  # float ids: "1.5"
            out = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
            if not out.isna().any():
                return out.to_numpy(dtype=np.float64)
        if (
            not self._numeric
            and values.dtype.kind in "iuO"
            and pd.api.types.is_string_dtype(self._index.dtype)
        ):
            return np.array(
                [str(v) if isinstance(v, (int, np.integer)) else v for v in values], dtype=object
            )
        return values

    def to_internal(self, values: Any, *, missing: str = "raise", what: str = "id") -> np.ndarray:
        """Map external ids to internal ids.

        Args:
            values: a scalar or sequence of external ids.
            missing: ``"raise"`` (UnknownIdError naming the first unknown ids) or ``"zero"``.
            what: word used in error messages, e.g. ``"user"``.
        """
        arr = np.atleast_1d(np.asarray(values, dtype=object if _is_obj(values) else None))
        arr = self._normalise(arr)
        idx = self._index.get_indexer(arr)
        unknown = idx < 0
        if unknown.any():
            if missing == "raise":
                bad = [v.item() if hasattr(v, "item") else v for v in pd.unique(arr[unknown])[:5]]
                raise UnknownIdError(
                    f"unknown {what} id(s) {', '.join(map(repr, bad))} "
                    f"({int(unknown.sum())} of {len(arr)} not in the {len(self)} known {what}s)"
                )
            idx = np.where(unknown, -1, idx)
        return (idx + 1).astype(np.int64)

    def to_external(self, internal: np.ndarray | Sequence[int]) -> np.ndarray:
        """Map internal ids to external ids; internal 0 (padding) maps to ``None``."""
        internal = np.asarray(internal, dtype=np.int64)
        if internal.size and (internal.min() < 0 or internal.max() > len(self)):
            raise UnknownIdError(f"internal id out of range 0..{len(self)}")
        table = np.empty(len(self) + 1, dtype=object)
        table[0] = None
        table[1:] = self._index.to_numpy(dtype=object)
        if (internal > 0).all() and self._numeric:
            return self._index.to_numpy()[internal - 1]
        return table[internal]

    def __contains__(self, value: Any) -> bool:
        return bool(self.to_internal([value], missing="zero")[0] > 0)

    def to_list(self) -> list[Any]:
        """JSON-serialisable list of external ids (numpy scalars converted)."""
        return [v.item() if hasattr(v, "item") else v for v in self._index.tolist()]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)})"


def _is_obj(values: Any) -> bool:
    if isinstance(values, (str, bytes)):
        return True
    if isinstance(values, (list, tuple)):
        return any(isinstance(v, str) for v in values)
    return False


def left_pad(
    indptr: np.ndarray, values: np.ndarray, rows: np.ndarray, length: int, *, left: bool = True
) -> np.ndarray:
    """The last ``length`` values of each row's slice ``values[indptr[r]:indptr[r + 1]]``,
    zero padded (on the left by default): ``(len(rows), length)`` with ``values``' dtype.

    Longer slices are truncated from the left (the oldest entries are dropped).
    """
    out = np.zeros((len(rows), length), dtype=values.dtype)
    for r, row in enumerate(rows):
        seq = values[indptr[row] : indptr[row + 1]][-length:]
        if len(seq):
            if left:
                out[r, length - len(seq) :] = seq
            else:
                out[r, : len(seq)] = seq
    return out


@dataclass
class HistoryBatch:
    """What a model sees of a batch of users at inference time.

    Attributes:
        user_ids: internal user ids ``(B,)``; 0 for ad-hoc histories (no known user).
        matrix: ``(B, n_items + 1)`` CSR rows of the users' history (weights).
        seq_indptr: ``(B + 1,)`` offsets into ``seq_items``.
        seq_items: chronological internal item ids of all users, concatenated.
        seq_times: timestamps aligned with ``seq_items`` (float64), or ``None`` when the
            history has no real timestamps (ad-hoc histories, datasets without times).
    """

    user_ids: np.ndarray
    matrix: sp.csr_matrix
    seq_indptr: np.ndarray
    seq_items: np.ndarray
    seq_times: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user_ids)

    def sequence(self, row: int) -> np.ndarray:
        """Chronological history of batch row ``row``."""
        return self.seq_items[self.seq_indptr[row] : self.seq_indptr[row + 1]]

    def padded_times(self, max_len: int) -> np.ndarray | None:
        """Timestamps of the last ``max_len`` items, left-padded with 0: ``(B, max_len)``
        float64, aligned with :meth:`padded_sequences`; ``None`` without timestamps."""
        if self.seq_times is None:
            return None
        rows = np.arange(len(self))
        return left_pad(self.seq_indptr, self.seq_times.astype(np.float64), rows, max_len)

    def padded_sequences(self, max_len: int, *, left: bool = True) -> np.ndarray:
        """Last ``max_len`` items of each history, zero padded: ``(B, max_len)`` int64."""
        rows = np.arange(len(self))
        items = self.seq_items.astype(np.int64)
        return left_pad(self.seq_indptr, items, rows, max_len, left=left)

    def as_histories(self) -> UserHistories:
        """This batch as :class:`UserHistories` whose row ``r`` is batch row ``r`` (pass
        ``user_ids`` separately: the rows are not user ids)."""
        return UserHistories(self.matrix, self.seq_indptr, self.seq_items, self.seq_times)


class UserHistories:
    """Every user's history as a CSR matrix ``(n_users + 1, n_items + 1)`` plus sequences
    (and their timestamps when the data has real ones)."""

    def __init__(
        self,
        matrix: sp.csr_matrix,
        seq_indptr: np.ndarray,
        seq_items: np.ndarray,
        seq_times: np.ndarray | None = None,
    ):
        self.matrix = matrix.tocsr()
        self.seq_indptr = np.asarray(seq_indptr, dtype=np.int64)
        self.seq_items = np.asarray(seq_items, dtype=np.int64)
        self.seq_times = None if seq_times is None else np.asarray(seq_times, dtype=np.float64)
        if len(self.seq_indptr) != self.matrix.shape[0] + 1:
            raise DataValidationError("UserHistories: seq_indptr length must be n_rows + 1")
        if self.seq_times is not None and len(self.seq_times) != len(self.seq_items):
            raise DataValidationError("UserHistories: seq_times must align with seq_items")

    @property
    def n_rows(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        """Catalogue size (without padding)."""
        return self.matrix.shape[1] - 1

    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        n_users: int,
        n_items: int,
        times: np.ndarray | None = None,
    ) -> UserHistories:
        """Build from interaction arrays already sorted by (user, time)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        mat = sp.csr_matrix(
            (np.asarray(weights, dtype=np.float32), (users, items)),
            shape=(n_users + 1, n_items + 1),
        )
        mat.sum_duplicates()
        counts = np.bincount(users, minlength=n_users + 1)
        indptr = np.zeros(n_users + 2, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(mat, indptr, items, times)

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]], n_items: int) -> UserHistories:
        """Ad-hoc histories (internal item ids); row ``r`` is sequence ``r``."""
        lens = np.array([len(s) for s in sequences], dtype=np.int64)
        items = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
            if len(sequences) and lens.sum()
            else np.zeros(0, dtype=np.int64)
        )
        rows = np.repeat(np.arange(len(sequences)), lens)
        mat = sp.csr_matrix(
            (np.ones(len(items), dtype=np.float32), (rows, items)),
            shape=(len(sequences), n_items + 1),
        )
        mat.sum_duplicates()
        indptr = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        return cls(mat, indptr, items)

    def batch(self, rows: np.ndarray, user_ids: np.ndarray | None = None) -> HistoryBatch:
        """Slice rows into a :class:`HistoryBatch`. ``user_ids`` default to ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.seq_indptr[rows], self.seq_indptr[rows + 1]
        lens = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        take = (
            np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
            if lens.sum()
            else np.zeros(0, dtype=np.int64)
        )
        return HistoryBatch(
            user_ids=rows if user_ids is None else np.asarray(user_ids, dtype=np.int64),
            matrix=self.matrix[rows],
            seq_indptr=indptr,
            seq_items=self.seq_items[take],
            seq_times=None if self.seq_times is None else self.seq_times[take],
        )


class Dataset:
    """Interactions plus optional item and user tables, with id maps and derived views.

    Args:
        interactions: DataFrame with ``user_id`` and ``item_id`` columns, optional
            ``timestamp`` (numbers or datetimes; row order is used when absent),
            ``weight`` and ``rating``.
        items: optional item table keyed by ``item_id`` (``title``, ``genres`` as a list or
            a ``|``-separated string, ``year``, ``text``, anything else).
        users: optional user table keyed by ``user_id``.
        name: dataset name used in reports.
        user_map, item_map: reuse existing id maps (splits share them); every id in
            ``interactions`` must then be known.
        has_timestamps: whether the ``timestamp`` column holds real times; default: whether
            the column is present. Pass ``False`` for data whose "timestamps" only encode the
            order (e.g. P5 sequence positions): time-aware models then ignore them.
        duplicates: what to do with *exact* duplicates, interactions with the same user, item
            and timestamp (e.g. a file whose rows all appear twice): ``"collapse"`` (default)
            keeps the first of each and warns with the count
            (:class:`~genrec.errors.DuplicateInteractionWarning`); ``"error"`` refuses them.
            Left in, an exact duplicate of a held-out interaction would sit in the training
            history and turn every hit into a miss. Repeats at *different* times are
            re-consumption, kept as they are (see ``reconsumption`` in
            :func:`genrec.data.splitting.split_dataset`).

    Raises:
        GenrecTypeError: ``interactions``, ``items`` or ``users`` is not a DataFrame.
        DataValidationError: on missing columns, empty data, NaN ids, non-numeric or
            non-finite timestamps or weights, or exact duplicates with
            ``duplicates="error"``, naming the problem.
    """

    def __init__(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        *,
        name: str = "custom",
        user_map: IdMap | None = None,
        item_map: IdMap | None = None,
        allow_empty: bool = False,
        has_timestamps: bool | None = None,
        duplicates: Literal["collapse", "error"] = "collapse",
    ):
        expect_type(name, str, "Dataset name")
        if duplicates not in ("collapse", "error"):
            raise ConfigError(f"duplicates must be 'collapse' or 'error', got {duplicates!r}")
        self.name = name
        df = _validate_interactions(interactions, allow_empty=allow_empty)
        #: whether ``timestamp`` holds real times (False: it only encodes the order)
        self.has_timestamps = (
            C.TIMESTAMP in interactions.columns if has_timestamps is None else has_timestamps
        )
        self.user_map = user_map if user_map is not None else IdMap.from_values(df[C.USER])
        self.item_map = item_map if item_map is not None else IdMap.from_values(df[C.ITEM])
        u = self.user_map.to_internal(df[C.USER].to_numpy(), what="user")
        i = self.item_map.to_internal(df[C.ITEM].to_numpy(), what="item")
        # chronological per user; stable so equal timestamps keep the input order
        order = np.lexsort((np.arange(len(df)), df[C.TIMESTAMP].to_numpy(), u))
        dup = _exact_duplicates(u[order], i[order], df[C.TIMESTAMP].to_numpy()[order])
        if dup.any():
            order = self._drop_duplicates(df, order, dup, duplicates)
        self.interactions = df.iloc[order].reset_index(drop=True)
        self._u, self._i = u[order], i[order]
        self._t = self.interactions[C.TIMESTAMP].to_numpy()
        self._w = self.interactions[C.WEIGHT].to_numpy(dtype=np.float32)
        self.items = _validate_side_table(items, C.ITEM, self.item_map, "item")
        self.users = _validate_side_table(users, C.USER, self.user_map, "user")
        self._histories: UserHistories | None = None

    def _drop_duplicates(
        self, df: pd.DataFrame, order: np.ndarray, dup: np.ndarray, mode: str
    ) -> np.ndarray:
        """``order`` without the exact duplicates ``dup`` (aligned with it); warn or raise."""
        n = int(dup.sum())
        first = df.iloc[order[np.flatnonzero(dup)[0]]]
        example = f"e.g. user {_plain_id(first[C.USER])!r}, item {_plain_id(first[C.ITEM])!r}"
        what = (
            f"dataset {self.name!r} has {n:,} exact duplicate interaction{'s' if n > 1 else ''} "
            f"(same user, item and timestamp; {example})"
        )
        if mode == "error":
            raise DataValidationError(
                f"{what}; remove them, or pass duplicates='collapse' to keep the first of each"
            )
        warnings.warn(
            f"{what}: collapsed, the first of each is kept",
            DuplicateInteractionWarning,
            stacklevel=caller_stacklevel(),
        )
        return order[~dup]

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def n_interactions(self) -> int:
        return len(self._u)

    def __len__(self) -> int:
        return self.n_interactions

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={self.n_interactions})"
        )

    # ------------------------------------------------------------------ arrays
    @property
    def user_idx(self) -> np.ndarray:
        """Internal user id of each interaction, sorted by (user, time)."""
        return self._u

    @property
    def item_idx(self) -> np.ndarray:
        """Internal item id of each interaction."""
        return self._i

    @property
    def timestamps(self) -> np.ndarray:
        return self._t

    @property
    def weights(self) -> np.ndarray:
        return self._w

    def histories(self) -> UserHistories:
        """CSR matrix and chronological sequences of every user (cached)."""
        if self._histories is None:
            times = self._t.astype(np.float64) if self.has_timestamps else None
            self._histories = UserHistories.from_arrays(
                self._u, self._i, self._w, self.n_users, self.n_items, times
            )
        return self._histories

    def matrix(self, binary: bool = True) -> sp.csr_matrix:
        """User-item matrix ``(n_users + 1, n_items + 1)`` (row/col 0 are padding, empty)."""
        mat = self.histories().matrix
        if binary:
            mat = mat.copy()
            mat.data = np.ones_like(mat.data)
        return mat

    def sequences(self) -> list[np.ndarray]:
        """Per internal user id (index 0 empty), the chronological internal item ids."""
        h = self.histories()
        return [h.seq_items[h.seq_indptr[u] : h.seq_indptr[u + 1]] for u in range(self.n_users + 1)]

    def item_popularity(self) -> np.ndarray:
        """Number of distinct users per internal item id, length ``n_items + 1``."""
        mat = self.histories().matrix
        return np.bincount(mat.indices, minlength=self.n_items + 1).astype(np.int64)

    # ------------------------------------------------------------------ metadata
    def item_titles(self) -> np.ndarray:
        """Title per internal item id (index 0 and unknown titles are ``""``)."""
        out = np.full(self.n_items + 1, "", dtype=object)
        if self.items is not None and C.TITLE in self.items.columns:
            idx = self.item_map.to_internal(self.items[C.ITEM].to_numpy(), missing="zero")
            titles = self.items[C.TITLE].fillna("").astype(str).to_numpy()
            out[idx[idx > 0]] = titles[idx > 0]
        return out

    def item_genres(self) -> sp.csr_matrix | None:
        """Binary item x genre matrix ``(n_items + 1, n_genres)``, or ``None`` without genres."""
        if self.items is None or C.GENRES not in self.items.columns:
            return None
        idx = self.item_map.to_internal(self.items[C.ITEM].to_numpy(), missing="zero")
        lists = [_as_list(g) for g in self.items[C.GENRES].tolist()]
        vocab = sorted({g for lst in lists for g in lst})
        if not vocab:
            return None
        pos = {g: j for j, g in enumerate(vocab)}
        rows, cols = [], []
        for r, lst in zip(idx, lists):
            if r > 0:
                for g in lst:
                    rows.append(r)
                    cols.append(pos[g])
        data = np.ones(len(rows), dtype=np.float32)
        mat = sp.csr_matrix((data, (rows, cols)), shape=(self.n_items + 1, len(vocab)))
        mat.data[:] = 1.0
        return mat

    # ------------------------------------------------------------------ derived datasets
    def subset(self, mask: np.ndarray, *, allow_empty: bool = False) -> Dataset:
        """Interactions where ``mask`` (aligned with :attr:`interactions`) is true.

        Keeps the id maps and side tables, so internal ids stay the same.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise DataValidationError(
                f"subset mask has shape {mask.shape}, expected ({len(self)},): one flag per "
                "interaction of the dataset"
            )
        if not mask.any() and not allow_empty:  # the constructor's own "empty" error
            return Dataset(
                self.interactions[mask],
                name=self.name,
                user_map=self.user_map,
                item_map=self.item_map,
                has_timestamps=self.has_timestamps,
            )
        # This dataset is validated, id-mapped, de-duplicated and sorted (user, time, input
        # order); a masked selection keeps all of that, so it is sliced instead of rebuilt:
        # no second validation frame, id lookup or sort (at 20M interactions those made
        # each split dataset cost a full constructor's time and memory).
        frame = self.interactions[mask].reset_index(drop=True)
        return self._from_parts(
            name=self.name,
            has_timestamps=self.has_timestamps,
            user_map=self.user_map,
            item_map=self.item_map,
            interactions=frame,
            _u=self._u[mask],
            _i=self._i[mask],
            _t=frame[C.TIMESTAMP].to_numpy(),
            _w=frame[C.WEIGHT].to_numpy(dtype=np.float32),
            items=self.items,
            users=self.users,
            _histories=None,
        )

    @classmethod
    def _from_parts(cls, **attributes: Any) -> Dataset:
        """A dataset from parts that are already validated, mapped and sorted (every
        attribute ``__init__`` sets); no checks. Used by :meth:`subset`."""
        out = cls.__new__(cls)
        out.__dict__.update(attributes)
        return out

    def with_interactions(self, interactions: pd.DataFrame) -> Dataset:
        """A dataset over new interactions with the same id maps and side tables."""
        return Dataset(
            interactions,
            self.items,
            self.users,
            name=self.name,
            user_map=self.user_map,
            item_map=self.item_map,
            allow_empty=True,
            has_timestamps=self.has_timestamps,
        )

    # ------------------------------------------------------------------ summaries
    def stats(self) -> dict[str, Any]:
        """Users, items, interactions, density and sequence-length quantiles."""
        lens = np.bincount(self._u, minlength=self.n_users + 1)[1:]
        active = lens[lens > 0]
        q = np.quantile(active, [0.0, 0.25, 0.5, 0.75, 0.9, 1.0]) if len(active) else np.zeros(6)
        n_pairs = self.histories().matrix.nnz
        return {
            "name": self.name,
            "n_users": int(self.n_users),
            "n_items": int(self.n_items),
            "n_interactions": int(self.n_interactions),
            "n_unique_pairs": int(n_pairs),
            "density": float(n_pairs / max(1, self.n_users * self.n_items)),
            "avg_seq_len": float(active.mean()) if len(active) else 0.0,
            "seq_len_quantiles": {
                k: float(v) for k, v in zip(["min", "p25", "p50", "p75", "p90", "max"], q)
            },
            "has_timestamps": bool(self.has_timestamps),
            "has_item_table": self.items is not None,
        }

    def fingerprint(self) -> str:
        """SHA-256 of the interactions (external ids, timestamps, weights) and item titles."""
        h = hashlib.sha256()
        for col in (C.USER, C.ITEM, C.TIMESTAMP, C.WEIGHT):
            values = self.interactions[col].to_numpy()
            if values.dtype == object:
                h.update("\x1f".join(map(str, values)).encode())
            else:
                h.update(np.ascontiguousarray(values).tobytes())
        h.update("\x1f".join(map(str, self.item_titles())).encode())
        return h.hexdigest()


# ---------------------------------------------------------------------- validation helpers
def _exact_duplicates(u: np.ndarray, i: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bool mask (aligned with the inputs, sorted by user then time) of the rows that repeat
    an earlier row's user, item and timestamp; the first of each group is False."""
    out = np.zeros(len(u), dtype=bool)
    if len(u) < 2:
        return out
    tie = (u[1:] == u[:-1]) & (t[1:] == t[:-1])
    if not tie.any():  # the common case: no two interactions of a user share a timestamp
        return out
    frame = pd.DataFrame({"u": u, "i": i, "t": t})
    return frame.duplicated(keep="first").to_numpy()


def _validate_interactions(df: pd.DataFrame, *, allow_empty: bool) -> pd.DataFrame:
    expect_type(
        df,
        pd.DataFrame,
        "interactions",
        "build one with pandas, or load a file with genrec.load_dataset(path)",
    )
    missing = [c for c in C.INTERACTION_REQUIRED if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"interactions are missing required column(s) {missing}; got columns "
            f"{list(df.columns)}. Rename them (e.g. df.rename(columns={{'userId': 'user_id'}})) "
            "or use genrec.data.loaders.load_csv(..., columns={...})"
        )
    if len(df) == 0 and not allow_empty:
        raise DataValidationError("interactions are empty: nothing to train or evaluate on")
    for col in C.INTERACTION_REQUIRED:
        n_nan = int(df[col].isna().sum())
        if n_nan:
            raise DataValidationError(f"column {col!r} has {n_nan} missing (NaN) id(s)")
        if pd.api.types.is_float_dtype(df[col].dtype) and not np.isfinite(df[col]).all():
            first = _plain_id(df[col][~np.isfinite(df[col])].iloc[0])
            raise DataValidationError(f"column {col!r} has a non-finite id {first!r}")
    out = pd.DataFrame({C.USER: df[C.USER].to_numpy(), C.ITEM: df[C.ITEM].to_numpy()})
    if C.TIMESTAMP in df.columns:
        out[C.TIMESTAMP] = _to_epoch(df[C.TIMESTAMP])
    else:
        out[C.TIMESTAMP] = np.arange(len(df), dtype=np.int64)
    for col in (C.WEIGHT, C.RATING):
        if col in df.columns:
            values = pd.to_numeric(df[col], errors="coerce")
            bad = values.isna() & df[col].notna()
            if bad.any() or values.isna().any():
                first = df[col][values.isna()].iloc[0]
                raise DataValidationError(
                    f"column {col!r} must be numeric without gaps, found {first!r}"
                )
            arr = values.to_numpy(dtype=np.float64)
            # weights are stored as float32: larger magnitudes would become infinite
            bound = float(np.finfo(np.float32).max) if col == C.WEIGHT else np.inf
            bad = ~(np.abs(arr) <= bound)
            if bad.any():
                first = _plain_id(df[col][bad].iloc[0])
                raise DataValidationError(
                    f"column {col!r} must hold finite numbers"
                    f"{' within the float32 range' if col == C.WEIGHT else ''}, found {first!r}"
                )
            out[col] = arr
    if C.WEIGHT not in out.columns:
        out[C.WEIGHT] = 1.0
    return out


def _to_epoch(ts: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(ts):
        if ts.isna().any():
            n_missing = int(ts.isna().sum())
            raise DataValidationError(f"column 'timestamp' has {n_missing} missing values")
        if getattr(ts.dt, "tz", None) is not None:  # time-zone aware: compare in UTC
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        # seconds in the column's own unit: a cast to nanoseconds overflows past 2262
        # (Parquet stores microseconds); numpy's unit conversion floors like // 10**9 did
        return ts.to_numpy().astype("datetime64[s]").astype(np.int64)
    if pd.api.types.is_bool_dtype(ts):
        raise DataValidationError("column 'timestamp' must be numeric or datetime, got booleans")
    values = pd.to_numeric(ts, errors="coerce")
    if values.isna().any():
        first = ts[values.isna()].iloc[0]
        raise DataValidationError(
            f"column 'timestamp' must be numeric (unix time) or datetime; found {first!r}"
        )
    out = values.to_numpy()
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        first = _plain_id(ts[~np.isfinite(out)].iloc[0])
        raise DataValidationError(f"column 'timestamp' must hold finite numbers, found {first!r}")
    return out


def _plain_id(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _validate_side_table(
    table: pd.DataFrame | None, key: str, id_map: IdMap, what: str
) -> pd.DataFrame | None:
    if table is None:
        return None
    expect_type(table, pd.DataFrame, f"{what} table")
    if key not in table.columns:
        raise DataValidationError(
            f"{what} table needs a {key!r} column; got columns {list(table.columns)}"
        )
    if table[key].isna().any():
        raise DataValidationError(f"{what} table has missing {key!r} values")
    known = id_map.to_internal(table[key].to_numpy(), missing="zero") > 0
    table = table[known]  # rows of ids outside the catalogue are dropped silently
    repeated = table[key].duplicated()
    if repeated.any():
        shown = [_plain_id(v) for v in table.loc[repeated, key].unique()[:3]]
        warnings.warn(
            f"{what} table repeats {int(repeated.sum())} {key!r} values (e.g. {shown}); "
            "the first row of each is kept",
            DuplicateIdWarning,
            stacklevel=caller_stacklevel(),
        )
        table = table[~repeated]
    return table.reset_index(drop=True)


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [
            g.strip() for g in value.split("|") if g.strip() and g.strip() != "(no genres listed)"
        ]
    if isinstance(value, (list, tuple, np.ndarray)):
        out: list[str] = []
        for v in value:
            out.extend(_as_list(v) if isinstance(v, (list, tuple, np.ndarray)) else [str(v)])
        return out
    return [str(value)]
