"""Features of (user, candidate) pairs for the cascade's ranker.

:class:`FeatureBuilder` is fitted on the interactions the ranker may know at that stage (for
the ranker's training window: the training data *without* the window; at inference: the
full training data), so no statistic ever counts the interaction being predicted. Every
feature is computed from that fitted state and the batch's own histories; nothing depends
on the user being known (ad-hoc histories work, with NaN time features).

Feature groups (names in :attr:`FeatureBuilder.feature_names`):

* per source ``s``: ``{s}_score``, ``{s}_rank`` (``n_s + 1`` when missed), ``{s}_in``;
  ``n_sources`` (how many sources returned the item);
* item: ``item_pop`` (log distinct users), ``item_pop_recent`` (log interactions in the last
  ``recent_days`` of the data), ``item_days_since_last`` (data end minus the item's last
  interaction);
* item at the user's time ``t_u`` (their last interaction): ``item_pop_before_user``,
  ``item_pop_window_user`` (interactions in ``(t_u - user_window_days, t_u]``),
  ``item_age_at_user`` (``t_u`` minus the item's first interaction; negative = the item did
  not exist yet), ``item_since_last_at_user`` (``t_u`` minus the item's last interaction
  before ``t_u``);
* user: ``user_hist_len`` (log), ``user_span_days``, ``user_days_since_last`` (data end minus
  ``t_u``);
* sequence: ``next_count`` (how often the candidate directly followed the user's last item in
  the data, log), ``next_prob`` (that count over the last item's transitions),
  ``window_cooc`` (how often it followed any of the user's last ``cooc_window`` items within
  ``cooc_window`` steps, log);
* category (when the catalogue has categories): ``cat_share_max`` / ``cat_share_mean``
  (share of the history in the candidate's categories, max/mean over its categories),
  ``cat_last_match`` (shares a category with the last item), and ``interest`` (predicted
  probability of the candidate's category being next, from an
  :class:`~genrec.ranking.interest.InterestPredictor`, when one is given);
* vectors (per named item-vector table, e.g. each source's item embeddings and optional text
  vectors): ``{v}_cos_last`` (cosine with the last item) and ``{v}_cos_hist`` (cosine with the
  mean of the last ``cooc_window`` items).

Time features are NaN without timestamps; both rankers treat NaN as missing. ``t_u`` is
clipped to the fitted data's end: at serving time a history may include interactions after it
(the validation item, and every held-out item under a temporal split).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from genrec.data.dataset import HistoryBatch, UserHistories, left_pad
from genrec.ranking.candidates import CandidateSet
from genrec.text.encoders import normalize_rows

DAY = 86_400.0

__all__ = ["FeatureBuilder"]


class FeatureBuilder:
    """Computes the ranker's feature matrix (see the module docstring).

    Args:
        source_names: names of the candidate sources, in order.
        recent_days: window of ``item_pop_recent`` (before the data's last timestamp).
        user_window_days: window of ``item_pop_window_user`` (before the user's time).
        cooc_window: steps of the sequential co-occurrence and items of the history centroid.
    """

    def __init__(
        self,
        source_names: list[str],
        *,
        recent_days: float = 30.0,
        user_window_days: float = 30.0,
        cooc_window: int = 5,
    ):
        self.source_names = list(source_names)
        self.recent_days = float(recent_days)
        self.user_window_days = float(user_window_days)
        self.cooc_window = int(cooc_window)
        self.categories: sp.csr_matrix | None = None
        self.vectors: dict[str, np.ndarray] = {}
        self.interest: Callable[[HistoryBatch], np.ndarray] | None = None

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        hist: UserHistories,
        *,
        categories: sp.csr_matrix | None = None,
        vectors: Mapping[str, np.ndarray] | None = None,
        interest: Callable[[HistoryBatch], np.ndarray] | None = None,
    ) -> FeatureBuilder:
        """Collect the statistics of ``hist`` (the interactions known at this stage).

        Args:
            hist: user histories (sequences with times when the data has them).
            categories: ``(n_items + 1, C)`` binary item x category matrix, or ``None``.
            vectors: named ``(n_items + 1, d)`` item vectors (normalised here).
            interest: ``batch -> (B, C)`` next-category probabilities aligned with
                ``categories`` (the :class:`~genrec.ranking.interest.InterestPredictor`
                hook), or ``None``.
        """
        n = hist.n_items
        self.n_items = n
        items = hist.seq_items.astype(np.int64)
        lens = np.diff(hist.seq_indptr)
        users = np.repeat(np.arange(hist.n_rows), lens)
        self.pop = np.log1p(np.bincount(hist.matrix.indices, minlength=n + 1)).astype(np.float32)
        self.has_times = hist.seq_times is not None and len(items) > 0
        if self.has_times:
            times = hist.seq_times.astype(np.float64)
            self.t_end = float(times.max())
            recent = times > self.t_end - self.recent_days * DAY
            self.pop_recent = np.log1p(np.bincount(items[recent], minlength=n + 1)).astype(
                np.float32
            )
            self.first_t = np.full(n + 1, np.nan)
            self.last_t = np.full(n + 1, np.nan)
            order = np.lexsort((times, items))  # by item, then time
            self.it_items, self.it_times = items[order], times[order]
            self.uniq_t = np.unique(times)
            self.T = len(self.uniq_t) + 1
            self.it_keys = self.it_items * self.T + np.searchsorted(self.uniq_t, self.it_times)
            starts = np.searchsorted(self.it_items, np.arange(n + 2))
            self.item_ptr = starts  # (n + 2,) item i spans it_items[ptr[i]:ptr[i + 1]]
            has = starts[1:] > starts[:-1]  # (n + 1,)
            idx = np.flatnonzero(has)
            self.first_t[idx] = self.it_times[starts[idx]]
            self.last_t[idx] = self.it_times[starts[idx + 1] - 1]
        # directed transitions within the same user's sequence: a -> b after d steps
        W = max(1, self.cooc_window)
        nxt = sp.csr_matrix((n + 1, n + 1), dtype=np.float32)
        win = sp.csr_matrix((n + 1, n + 1), dtype=np.float32)
        for d in range(1, W + 1):
            if len(items) <= d:
                break
            same = users[:-d] == users[d:]
            a, b = items[:-d][same], items[d:][same]
            m = sp.csr_matrix((np.ones(len(a), dtype=np.float32), (a, b)), shape=(n + 1, n + 1))
            if d == 1:
                nxt = m
            win = win + m
        self.next_counts = nxt.tocsr()
        self.next_counts.sum_duplicates()
        self.out_degree = np.asarray(self.next_counts.sum(axis=1)).ravel().astype(np.float32)
        self.window_counts = win.tocsr()
        self.window_counts.sum_duplicates()
        self.categories = (
            None if categories is None else sp.csr_matrix(categories, dtype=np.float32)
        )
        self.vectors = {
            name: normalize_rows(np.asarray(v, dtype=np.float32))
            for name, v in (vectors or {}).items()
        }
        self.interest = interest
        return self

    # ------------------------------------------------------------------ names
    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for s in self.source_names:
            names += [f"{s}_score", f"{s}_rank", f"{s}_in"]
        names += ["n_sources", "item_pop", "item_pop_recent", "item_days_since_last"]
        names += [
            "item_pop_before_user", "item_pop_window_user", "item_age_at_user",
            "item_since_last_at_user",
        ]  # fmt: skip
        names += ["user_hist_len", "user_span_days", "user_days_since_last"]
        names += ["next_count", "next_prob", "window_cooc"]
        if self.categories is not None:
            names += ["cat_share_max", "cat_share_mean", "cat_last_match"]
            if self.interest is not None:
                names += ["interest"]
        for v in self.vectors:
            names += [f"{v}_cos_last", f"{v}_cos_hist"]
        return names

    # ------------------------------------------------------------------ transform
    def transform(self, batch: HistoryBatch, cand: CandidateSet) -> np.ndarray:
        """Feature matrix ``(M, F)`` float32 for the candidates of ``batch``."""
        r, i = cand.rows, cand.items
        M = len(i)
        cols: list[np.ndarray] = []
        found = cand.found
        for s in range(len(cand.names)):
            cols += [cand.scores[:, s], cand.ranks[:, s], found[:, s]]
        cols.append(found.sum(1))
        # ---- item
        nan = np.full(M, np.nan, dtype=np.float64)
        cols.append(self.pop[i])
        # ---- user
        B = len(batch)
        lens = np.diff(batch.seq_indptr)
        nonempty = lens > 0
        last = np.zeros(B, dtype=np.int64)
        last[nonempty] = batch.seq_items[batch.seq_indptr[1:][nonempty] - 1]
        t_u = np.full(B, np.nan)
        t_first = np.full(B, np.nan)
        if self.has_times and batch.seq_times is not None:
            t_u[nonempty] = batch.seq_times[batch.seq_indptr[1:][nonempty] - 1]
            t_first[nonempty] = batch.seq_times[batch.seq_indptr[:-1][nonempty]]
            # A serving history may run past the fitted data (train + validation items after
            # the training data's end, always so under a temporal split): clip to the data end
            # so the features stay in the range the ranker was trained on (no negative
            # "days since last", no item counts at times the builder never saw).
            t_u = np.minimum(t_u, self.t_end)
        if self.has_times:
            cols.append(self.pop_recent[i])
            cols.append((self.t_end - self.last_t[i]) / DAY)
            tu = t_u[r]
            ok = ~np.isnan(tu)
            before, window, since = nan.copy(), nan.copy(), nan.copy()
            if ok.any():
                cnt_le, last_idx = self._count_le(i[ok], tu[ok])
                cnt_w, _ = self._count_le(i[ok], tu[ok] - self.user_window_days * DAY)
                before[ok] = np.log1p(cnt_le)
                window[ok] = np.log1p(cnt_le - cnt_w)
                s = np.full(ok.sum(), np.nan)
                has = last_idx >= 0
                s[has] = (tu[ok][has] - self.it_times[last_idx[has]]) / DAY
                since[ok] = s
            cols += [before, window, (tu - self.first_t[i]) / DAY, since]
        else:
            cols += [nan] * 6
        cols.append(np.log1p(lens)[r])
        cols.append(((t_u - t_first) / DAY)[r])
        cols.append(((self.t_end - t_u) / DAY)[r] if self.has_times else nan)
        # ---- sequence
        li = last[r]
        nc = _lookup(self.next_counts, li, i)
        cols.append(np.log1p(nc))
        cols.append(nc / np.maximum(self.out_degree[li], 1.0))
        W = max(1, self.cooc_window)
        recent_items = left_pad(batch.seq_indptr, batch.seq_items.astype(np.int64), np.arange(B), W)
        wc = np.zeros(M, dtype=np.float32)
        for j in range(W):
            h = recent_items[r, j]
            wc += _lookup(self.window_counts, h, i)
        cols.append(np.log1p(wc))
        # ---- categories
        if self.categories is not None:
            cat = self.categories
            counts = ((batch.matrix > 0).astype(np.float32) @ cat).toarray()  # (B, C)
            share = counts / np.maximum(lens, 1)[:, None]
            smax, smean = _per_category(cat, i, share[r])
            cols += [smax, smean]
            cols.append((_row_dot(cat, i, li) > 0).astype(np.float32))
            if self.interest is not None:
                proba = np.asarray(self.interest(batch), dtype=np.float32)  # (B, C)
                imax, _ = _per_category(cat, i, proba[r])
                cols.append(imax)
        # ---- vectors
        if self.vectors:
            for V in self.vectors.values():
                cols.append((V[i] * V[li]).sum(1))
                cent = normalize_rows(V[recent_items].sum(1))  # (B, d); padding rows are zero
                cols.append((V[i] * cent[r]).sum(1))
        X = (
            np.column_stack([np.asarray(c, dtype=np.float32) for c in cols])
            if M
            else np.zeros((0, len(self.feature_names)), dtype=np.float32)
        )
        assert X.shape[1] == len(self.feature_names), (X.shape, len(self.feature_names))
        return X

    def _count_le(self, items: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interactions of each item at time ``<= t`` and the index (in the item-sorted
        arrays) of the last one (``-1`` when none)."""
        tq = np.searchsorted(self.uniq_t, t, side="right")  # unique times <= t
        hi = np.searchsorted(self.it_keys, items * self.T + tq, side="left")
        lo = self.item_ptr[items]
        count = hi - lo
        return count.astype(np.float64), np.where(count > 0, hi - 1, -1)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        """Arrays that cannot be recomputed from the training histories."""
        out: dict[str, np.ndarray] = {}
        if self.categories is not None:
            c = self.categories.tocsr()
            out["categories.indptr"] = c.indptr.astype(np.int64)
            out["categories.indices"] = c.indices.astype(np.int64)
            out["categories.shape"] = np.asarray(c.shape, dtype=np.int64)
        for name, v in self.vectors.items():
            out[f"vectors.{name}"] = v
        return out

    @staticmethod
    def categories_from_state(state: Mapping[str, np.ndarray]) -> sp.csr_matrix | None:
        if "categories.indptr" not in state:
            return None
        indices = state["categories.indices"]
        shape = tuple(int(x) for x in state["categories.shape"])
        return sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, state["categories.indptr"]),
            shape=shape,
        )


def _lookup(mat: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``mat[rows[m], cols[m]]`` for every m, as float32 (0 for row/col 0)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.asarray(mat[rows, cols], dtype=np.float32).ravel()


def _per_category(cat: sp.csr_matrix, items: np.ndarray, values: np.ndarray) -> tuple[Any, Any]:
    """Max and mean of ``values[m, c]`` over the categories ``c`` of ``items[m]`` (0 if none)."""
    sub = cat[items]  # (M, C)
    rows = np.repeat(np.arange(len(items)), np.diff(sub.indptr))
    v = values[rows, sub.indices]
    n = np.diff(sub.indptr)
    vmax = np.zeros(len(items), dtype=np.float32)
    np.maximum.at(vmax, rows, v)
    vsum = np.bincount(rows, weights=v, minlength=len(items))
    return vmax, (vsum / np.maximum(n, 1)).astype(np.float32)


def _row_dot(cat: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of shared categories of items ``a[m]`` and ``b[m]``."""
    return np.asarray(cat[a].multiply(cat[b]).sum(axis=1)).ravel()
