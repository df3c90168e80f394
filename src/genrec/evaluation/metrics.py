"""Pure, vectorized top-k recommendation metrics (numpy only).

Conventions shared by every function in this module:

* Items are internal integer ids ``1..n_items``; ``0`` means padding / "no item".
* ``ranked`` is an int array of shape ``(U, K)``; rank 1 is column 0.
* ``hits`` is a bool array of shape ``(U, K)``; ``hits[u, r]`` is True when
  ``ranked[u, r]`` is one of user ``u``'s target items.
* ``n_targets`` is an int array of shape ``(U,)`` with the number of target items per
  user (each ``>= 1``).

Accuracy metrics return one float64 value per user (shape ``(U,)``) so that callers can
average them, bootstrap them or run paired significance tests. Beyond-accuracy metrics
describe a whole set of recommendation lists and return a single float.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = [
    "ACCURACY_METRICS",
    "avg_popularity_at_k",
    "coverage_at_k",
    "gini_at_k",
    "hit_rate_at_k",
    "hits_from_targets",
    "ild_at_k",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty_at_k",
    "precision_at_k",
    "recall_at_k",
]

# Upper bound on the number of float elements held by one ILD batch (gathered features
# plus pairwise matrices); keeps memory at a few tens of MiB whatever U is.
_ILD_BATCH_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- validation


def _as_2d(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (U, K), got shape {array.shape}")
    return array


def _check_k(k: int, K: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    k = int(k)
    if k <= 0:
        raise ValueError(f"k must be positive, got k={k}")
    if k > K:
        raise ValueError(f"k={k} exceeds the number of ranked columns K={K}")
    return k


def _check_hits(hits: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    hits = _as_2d("hits", hits).astype(bool, copy=False)
    return hits, _check_k(k, hits.shape[1])


def _check_n_targets(n_targets: np.ndarray, n_users: int) -> np.ndarray:
    n_targets = np.asarray(n_targets)
    if n_targets.shape != (n_users,):
        raise ValueError(
            f"n_targets must have shape ({n_users},) to match hits, got {n_targets.shape}"
        )
    if n_users and n_targets.min() < 1:
        raise ValueError("n_targets must be >= 1 for every user, found a value < 1")
    return n_targets.astype(np.int64, copy=False)


def _check_ranked(ranked: np.ndarray, k: int, n_rows: int | None = None) -> np.ndarray:
    """Validate ``ranked`` and return its top-``k`` columns as int64 ``(U, k)``."""
    ranked = _as_2d("ranked", ranked)
    if not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked must hold integer item ids, got dtype {ranked.dtype}")
    k = _check_k(k, ranked.shape[1])
    top = ranked[:, :k].astype(np.int64, copy=False)  # (U, k)
    if top.size:
        if top.min() < 0:
            raise ValueError("ranked contains negative item ids")
        if n_rows is not None and top.max() >= n_rows:
            raise ValueError(
                f"ranked contains item id {int(top.max())} but only ids 0..{n_rows - 1} are known"
            )
    return top


# --------------------------------------------------------------------------- hits


def hits_from_targets(
    ranked: np.ndarray, target_indptr: np.ndarray, target_indices: np.ndarray
) -> np.ndarray:
    """Mark which ranked items are targets, for all users at once.

    Each ``(user, item)`` pair is encoded as the int64 key ``u * (n + 1) + item`` (``n`` the
    largest id present), and membership of the ranked keys in the target keys is decided
    with a single sort-based :func:`numpy.isin`; there is no Python loop over users.
    Padding (item ``0``) in ``ranked`` is never a hit.

    Args:
        ranked: Int array ``(U, K)`` of recommended item ids, rank 1 first.
        target_indptr: Int array ``(U + 1,)``; user ``u``'s targets are
            ``target_indices[target_indptr[u]:target_indptr[u + 1]]`` (CSR layout).
        target_indices: Int array ``(nnz,)`` of target item ids.

    Returns:
        Bool array ``(U, K)``; ``True`` where ``ranked[u, r]`` is a target of user ``u``.

    Raises:
        ValueError: If shapes are inconsistent, ``target_indptr`` is not a valid CSR
            pointer array, or ids are negative.
    """
    ranked = _as_2d("ranked", ranked)
    if not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked must hold integer item ids, got dtype {ranked.dtype}")
    ranked = ranked.astype(np.int64, copy=False)  # (U, K)
    indptr = np.asarray(target_indptr, dtype=np.int64)  # (U + 1,)
    indices = np.asarray(target_indices, dtype=np.int64)  # (nnz,)
    U = ranked.shape[0]
    if indptr.shape != (U + 1,):
        raise ValueError(
            f"target_indptr must have shape ({U + 1},) for {U} ranked users, got {indptr.shape}"
        )
    if indices.ndim != 1:
        raise ValueError(f"target_indices must be 1-D, got shape {indices.shape}")
    if indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise ValueError(
            "target_indptr must start at 0, be non-decreasing and end at "
            f"len(target_indices)={indices.size}"
        )
    if (ranked.size and ranked.min() < 0) or (indices.size and indices.min() < 0):
        raise ValueError("item ids in ranked and target_indices must be non-negative")
    if ranked.size == 0 or indices.size == 0:
        return np.zeros(ranked.shape, dtype=bool)

    n = int(max(ranked.max(), indices.max()))
    stride = np.int64(n + 1)
    target_users = np.repeat(np.arange(U, dtype=np.int64), np.diff(indptr))  # (nnz,)
    target_keys = target_users * stride + indices  # (nnz,)
    ranked_keys = np.arange(U, dtype=np.int64)[:, None] * stride + ranked  # (U, K)
    hits = np.isin(ranked_keys, target_keys)  # (U, K)
    hits &= ranked != 0
    return hits


# --------------------------------------------------------------------------- accuracy


def recall_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Recall@k per user.

    ``Recall@k = |hits in top k| / n_targets``; equals HitRate@k when a user has a single
    target.

    Args:
        hits: Bool array ``(U, K)``.
        n_targets: Int array ``(U,)`` of target counts (``>= 1``).
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Float64 array ``(U,)``.
    """
    hits, k = _check_hits(hits, k)
    n_targets = _check_n_targets(n_targets, hits.shape[0])
    return hits[:, :k].sum(axis=1) / n_targets.astype(np.float64)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """HitRate@k per user: ``1`` if any of the top ``k`` items is a target, else ``0``.

    Args:
        hits: Bool array ``(U, K)``.
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Float64 array ``(U,)`` of zeros and ones.
    """
    hits, k = _check_hits(hits, k)
    return hits[:, :k].any(axis=1).astype(np.float64)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Precision@k per user: ``|hits in top k| / k``.

    Args:
        hits: Bool array ``(U, K)``.
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Float64 array ``(U,)``.
    """
    hits, k = _check_hits(hits, k)
    return hits[:, :k].sum(axis=1) / float(k)


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(r + 1)`` for ranks ``r = 1..k``; shape ``(k,)``."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per user with binary gains.

    ``DCG@k = sum_{r=1..k} hit_r / log2(r + 1)`` and
    ``IDCG@k = sum_{i=1..min(n_targets, k)} 1 / log2(i + 1)``; ``NDCG@k = DCG@k / IDCG@k``.

    Args:
        hits: Bool array ``(U, K)``.
        n_targets: Int array ``(U,)`` of target counts (``>= 1``).
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Float64 array ``(U,)`` in ``[0, 1]``.
    """
    hits, k = _check_hits(hits, k)
    n_targets = _check_n_targets(n_targets, hits.shape[0])
    discounts = _discounts(k)  # (k,)
    dcg = hits[:, :k].astype(np.float64) @ discounts  # (U,)
    ideal = np.cumsum(discounts)  # (k,) ideal DCG for 1..k relevant items
    idcg = ideal[np.minimum(n_targets, k) - 1]  # (U,)
    return dcg / idcg


def mrr_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank per user: ``1 / rank`` of the first hit within the top ``k``, else 0.

    Averaging over users gives MRR@k.

    Args:
        hits: Bool array ``(U, K)``.
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Float64 array ``(U,)``.
    """
    hits, k = _check_hits(hits, k)
    top = hits[:, :k]  # (U, k)
    first = top.argmax(axis=1)  # (U,) 0-based rank of the first hit (0 if none)
    return np.where(top.any(axis=1), 1.0 / (first + 1.0), 0.0)


def map_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Average precision@k per user (averaging over users gives MAP@k).

    ``AP@k = (sum_{r=1..k} Precision@r * hit_r) / min(n_targets, k)``.

    Args:
        hits: Bool array ``(U, K)``.
        n_targets: Int array ``(U,)`` of target counts (``>= 1``).
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Float64 array ``(U,)`` in ``[0, 1]``.
    """
    hits, k = _check_hits(hits, k)
    n_targets = _check_n_targets(n_targets, hits.shape[0])
    top = hits[:, :k].astype(np.float64)  # (U, k)
    precision_at_r = np.cumsum(top, axis=1) / np.arange(1, k + 1, dtype=np.float64)  # (U, k)
    return (precision_at_r * top).sum(axis=1) / np.minimum(n_targets, k)


def _recall(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    return recall_at_k(hits, n_targets, k)


def _hit_rate(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    return hit_rate_at_k(hits, k)


def _precision(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    return precision_at_k(hits, k)


def _ndcg(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    return ndcg_at_k(hits, n_targets, k)


def _mrr(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    return mrr_at_k(hits, k)


def _map(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    return map_at_k(hits, n_targets, k)


#: Accuracy metrics by name, each with the uniform signature
#: ``f(hits, n_targets, k) -> float64 array (U,)``.
ACCURACY_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "recall": _recall,
    "hit_rate": _hit_rate,
    "precision": _precision,
    "ndcg": _ndcg,
    "mrr": _mrr,
    "map": _map,
}


# --------------------------------------------------------------------------- beyond accuracy


def coverage_at_k(ranked: np.ndarray, n_items: int, k: int) -> float:
    """Catalogue coverage@k.

    ``Coverage@k = |{i in 1..n_items : i appears in some top-k list}| / n_items``;
    padding (``0``) is ignored.

    Args:
        ranked: Int array ``(U, K)``.
        n_items: Catalogue size (ids ``1..n_items``).
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Coverage in ``[0, 1]``.
    """
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    top = _check_ranked(ranked, k, n_rows=n_items + 1)  # (U, k)
    seen = np.zeros(n_items + 1, dtype=bool)
    seen[top.ravel()] = True
    return float(seen[1:].sum() / n_items)


def gini_at_k(ranked: np.ndarray, n_items: int, k: int) -> float:
    """Gini index of item exposure in the top-k lists.

    Exposure ``x_i`` is how many top-k lists contain item ``i``, over all catalogue items
    ``1..n_items`` (never-recommended items have ``x_i = 0``). With ``x`` sorted ascending,
    ``G = sum_{i=1..n} (2i - n - 1) x_(i) / (n * sum x)``. ``0`` means perfectly equal
    exposure; values near ``1`` mean exposure concentrated on few items. If nothing at all
    is recommended (only padding) the result is defined as ``0.0``.

    Args:
        ranked: Int array ``(U, K)``.
        n_items: Catalogue size (ids ``1..n_items``).
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Gini index in ``[0, 1)``.
    """
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    top = _check_ranked(ranked, k, n_rows=n_items + 1)  # (U, k)
    exposure = np.bincount(top.ravel(), minlength=n_items + 1)[1:].astype(np.float64)
    total = exposure.sum()
    if total == 0:
        return 0.0
    x = np.sort(exposure)  # (n,) ascending
    n = n_items
    weights = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1.0  # (n,)
    return float((weights @ x) / (n * total))


def _check_popularity(item_popularity: np.ndarray) -> np.ndarray:
    pop = np.asarray(item_popularity)
    if pop.ndim != 1:
        raise ValueError(f"item_popularity must be 1-D (indexed by item id), got shape {pop.shape}")
    if pop.size and pop.min() < 0:
        raise ValueError("item_popularity must be non-negative")
    return pop.astype(np.float64, copy=False)


def novelty_at_k(ranked: np.ndarray, item_popularity: np.ndarray, n_users: int, k: int) -> float:
    """Mean self-information (novelty) of the recommended items.

    ``Novelty@k = mean over recommended items i of -log2(pop(i) / n_users)``, where the
    mean runs over every non-padding entry of every top-k list. Items with popularity 0
    (never seen in training) are treated as ``pop = 1`` so the value stays finite. If no
    item is recommended the result is defined as ``0.0``.

    Args:
        ranked: Int array ``(U, K)``.
        item_popularity: Array ``(n_items + 1,)``; ``item_popularity[i]`` is the number of
            training users who interacted with item ``i``.
        n_users: Number of training users (the popularity denominator).
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Mean novelty in bits.
    """
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    pop = _check_popularity(item_popularity)
    top = _check_ranked(ranked, k, n_rows=pop.size)  # (U, k)
    items = top[top > 0]  # (n_recommended,)
    if items.size == 0:
        return 0.0
    p = np.maximum(pop[items], 1.0) / n_users
    return float(np.mean(-np.log2(p)))


def avg_popularity_at_k(ranked: np.ndarray, item_popularity: np.ndarray, k: int) -> float:
    """Average recommendation popularity (ARP).

    ``ARP@k = mean over users u of (sum_{i in L_u} pop(i)) / |L_u|`` where ``L_u`` are the
    non-padding items of user ``u``'s top-k list. Users whose list is all padding are left
    out of the mean; if every list is empty the result is ``0.0``.

    Args:
        ranked: Int array ``(U, K)``.
        item_popularity: Array ``(n_items + 1,)`` of training popularity per item id.
        k: Cut-off, ``1 <= k <= K``.

    Returns:
        Mean popularity of recommended items.
    """
    pop = _check_popularity(item_popularity)
    top = _check_ranked(ranked, k, n_rows=pop.size)  # (U, k)
    valid = top > 0  # (U, k)
    counts = valid.sum(axis=1)  # (U,)
    sums = np.where(valid, pop[top], 0.0).sum(axis=1)  # (U,)
    has_items = counts > 0
    if not has_items.any():
        return 0.0
    return float(np.mean(sums[has_items] / counts[has_items]))


def _gather_rows(features: np.ndarray | sp.spmatrix, idx: np.ndarray) -> np.ndarray:
    """Dense float64 rows ``features[idx]`` for a dense array or a scipy sparse matrix."""
    if sp.issparse(features):
        return np.asarray(features[idx].toarray(), dtype=np.float64)
    return np.asarray(features[idx], dtype=np.float64)


def ild_at_k(
    ranked: np.ndarray,
    item_features: np.ndarray | sp.spmatrix,
    k: int,
    metric: str = "jaccard",
) -> float:
    """Intra-list diversity (ILD): mean pairwise distance within each top-k list.

    ``ILD_u = (1 / (n_u (n_u - 1))) * sum_{i != j in L_u} d(i, j)`` over the ``n_u``
    non-padding items ``L_u`` of user ``u``'s list, and ``ILD@k`` is the mean of ``ILD_u``
    over users with ``n_u >= 2`` (shorter lists are excluded; if no list qualifies the
    result is ``0.0``). Distances:

    * ``"jaccard"``: ``d = 1 - |A ∩ B| / |A ∪ B|`` on binary feature sets (e.g. genre
      one-hots; any non-zero entry counts as present); ``d = 0`` when both sets are empty.
    * ``"cosine"``: ``d = 1 - cos(a, b)``; a zero vector has similarity 0 to everything.

    Work is done in batches of users: features are gathered to ``(B, k, F)`` and pairwise
    matrices ``(B, k, k)`` are computed with :func:`numpy.einsum`.

    Args:
        ranked: Int array ``(U, K)``.
        item_features: Matrix with one row per item id, shape ``(n_items + 1, F)``: a scipy
            sparse (CSR) 0/1 matrix for ``"jaccard"``, a dense float array for
            ``"cosine"`` (either kind is accepted for both).
        k: Cut-off, ``1 <= k <= K``.
        metric: ``"jaccard"`` or ``"cosine"``.

    Returns:
        Mean intra-list distance.
    """
    if metric not in ("jaccard", "cosine"):
        raise ValueError(f"metric must be 'jaccard' or 'cosine', got {metric!r}")
    if sp.issparse(item_features):
        item_features = sp.csr_matrix(item_features)  # row gathering needs CSR
    else:
        item_features = np.asarray(item_features)
    if item_features.ndim != 2:
        raise ValueError(
            f"item_features must be 2-D (n_items + 1, F), got shape {item_features.shape}"
        )
    top = _check_ranked(ranked, k, n_rows=item_features.shape[0])  # (U, k)
    U, k = top.shape
    F = item_features.shape[1]
    if U == 0:
        return 0.0

    batch = max(1, _ILD_BATCH_ELEMENTS // (k * max(F, k)))
    off_diagonal = ~np.eye(k, dtype=bool)  # (k, k)
    total = 0.0
    n_lists = 0
    for start in range(0, U, batch):
        items = top[start : start + batch]  # (B, k)
        B = items.shape[0]
        valid = items > 0  # (B, k)
        X = _gather_rows(item_features, items.ravel()).reshape(B, k, F)  # (B, k, F)
        if metric == "jaccard":
            X = (X != 0).astype(np.float64)
            inter = np.einsum("bif,bjf->bij", X, X)  # (B, k, k)
            size = X.sum(axis=2)  # (B, k)
            union = size[:, :, None] + size[:, None, :] - inter  # (B, k, k)
            sim = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
        else:
            norm = np.linalg.norm(X, axis=2, keepdims=True)  # (B, k, 1)
            X = np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)
            sim = np.einsum("bif,bjf->bij", X, X)  # (B, k, k)
        dist = 1.0 - sim  # (B, k, k)
        pairs = valid[:, :, None] & valid[:, None, :] & off_diagonal  # (B, k, k)
        n_valid = valid.sum(axis=1)  # (B,)
        n_pairs = n_valid * (n_valid - 1)  # (B,) ordered pairs
        dist_sum = np.where(pairs, dist, 0.0).sum(axis=(1, 2))  # (B,)
        keep = n_valid >= 2
        total += float((dist_sum[keep] / n_pairs[keep]).sum())
        n_lists += int(keep.sum())
    return total / n_lists if n_lists else 0.0
