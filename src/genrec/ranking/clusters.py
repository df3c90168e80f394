"""Item interest clusters: a small, reproducible vocabulary of user interests.

"LLMs for User Interest Exploration in Large-scale Recommendation Systems" (Wang et al.,
RecSys 2024) describes users by the *clusters* of the items they consumed and asks a
language model which cluster they should explore next. This module builds those clusters:

* ``source="collaborative"``: item vectors from a truncated SVD of the symmetrically
  normalised user-item matrix (``D_u^-1/2 X D_i^-1/2``, the LightGCN normalisation); items
  without training interactions get no cluster;
* ``source="text"``: item text vectors (all-MiniLM-L6-v2 with the ``text`` extra, else TF-IDF
  reduced by SVD); items without text get no cluster;
* ``source="both"``: both, L2-normalised and concatenated (an item needs one of them);
* :meth:`ItemClusters.from_codebook`: the level-1 codes of a fitted semantic-ID codebook
  (:mod:`genrec.tokenizers`), so TIGER's first code doubles as the interest cluster;
* ``vectors=``: any ``(n_items + 1, d)`` array, rows of zeros meaning "no vector".

Clustering is balanced k-means (equal-size clusters, the assignment of
:func:`genrec.tokenizers.rkmeans.balanced_kmeans`; the paper's clusters are also balanced so
that each cluster is a comparable unit of interest) or plain k-means (``balanced=False``).
``levels=2`` builds a two-level balanced tree with :class:`~genrec.tokenizers.hkmeans.
HKMeansTokenizer` (``n_clusters`` children per node): the fine clusters are the leaves and
:attr:`ItemClusters.parents` maps each to its coarse cluster (:meth:`ItemClusters.coarse`).

:func:`cluster_quality` reports size balance, coverage, coherence against the item table's
categories (purity and normalised mutual information, each beside a random clustering of the
same sizes) and sequential coherence (how often a user's next item stays in the cluster of
the previous one, beside the chance rate).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from genrec.data.dataset import Dataset
from genrec.errors import ConfigError, DataValidationError

Source = Literal["collaborative", "text", "both"]
SOURCES: tuple[str, ...] = ("collaborative", "text", "both")

__all__ = [
    "ItemClusters",
    "cluster_quality",
    "collaborative_item_vectors",
    "fit_item_clusters",
    "text_item_vectors",
]


@dataclass
class ItemClusters:
    """A clustering of the catalogue.

    Attributes:
        labels: ``(n_items + 1,)`` int64 cluster of each internal item id; ``-1`` for the
            padding row 0 and for items without a vector (no interactions / no text).
        n_clusters: number of clusters (ids ``0 .. n_clusters - 1``).
        source: where the vectors came from (``collaborative``, ``text``, ``both``,
            ``vectors``, ``semantic-id``).
        method: ``balanced-kmeans``, ``kmeans``, ``hkmeans`` or ``semantic-id``.
        parents: for ``levels=2``: ``(n_clusters,)`` coarse cluster of each fine cluster.
        names: a short readable label per cluster (:func:`cluster_names`), or ``None``.
        meta: provenance (seed, sizes, seconds).
    """

    labels: np.ndarray
    n_clusters: int
    source: str
    method: str
    parents: np.ndarray | None = None
    names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.ndim != 1 or len(self.labels) < 2:
            raise DataValidationError("labels must be a 1-D array (n_items + 1,)")
        if self.labels.max() >= self.n_clusters or self.labels.min() < -1:
            raise DataValidationError(
                f"labels must lie in -1 .. {self.n_clusters - 1}, got "
                f"{self.labels.min()} .. {self.labels.max()}"
            )
        if self.parents is not None:
            self.parents = np.asarray(self.parents, dtype=np.int64)

    @property
    def n_items(self) -> int:
        return len(self.labels) - 1

    def sizes(self) -> np.ndarray:
        """``(n_clusters,)`` items per cluster."""
        lab = self.labels[self.labels >= 0]
        return np.bincount(lab, minlength=self.n_clusters)

    def members(self, cluster: int) -> np.ndarray:
        """Internal item ids of ``cluster``."""
        return np.flatnonzero(self.labels == int(cluster))

    def item_mask(self, clusters: np.ndarray | list[int]) -> np.ndarray:
        """Bool ``(n_items + 1,)``: items in any of ``clusters``."""
        want = np.zeros(self.n_clusters + 1, dtype=bool)  # last slot: label -1
        want[np.asarray(clusters, dtype=np.int64)] = True
        return want[self.labels]

    def of_sequence(self, items: np.ndarray) -> np.ndarray:
        """Clusters of internal item ids (``-1`` for items without one)."""
        return self.labels[np.asarray(items, dtype=np.int64)]

    def coarse(self) -> ItemClusters:
        """The level-1 clustering of a two-level tree (``parents`` required)."""
        if self.parents is None:
            raise ConfigError("coarse() needs a two-level clustering (levels=2)")
        lab = np.where(self.labels >= 0, self.parents[np.maximum(self.labels, 0)], -1)
        return ItemClusters(
            lab, int(self.parents.max()) + 1, self.source, self.method, meta=dict(self.meta)
        )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels.tolist(),
            "n_clusters": int(self.n_clusters),
            "source": self.source,
            "method": self.method,
            "parents": None if self.parents is None else self.parents.tolist(),
            "names": self.names,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemClusters:
        return cls(
            np.asarray(data["labels"], dtype=np.int64),
            int(data["n_clusters"]),
            data["source"],
            data["method"],
            None if data.get("parents") is None else np.asarray(data["parents"]),
            data.get("names"),
            dict(data.get("meta") or {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write a JSON file (``path`` must not exist yet)."""
        from genrec.paths import atomic_write_text, to_jsonable

        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} exists; clusters are never written over a file")
        atomic_write_text(path, json.dumps(to_jsonable(self.to_dict())))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ItemClusters:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_codebook(cls, codebook: Any, dataset: Dataset, level: int = 0) -> ItemClusters:
        """Clusters = the semantic-ID code at ``level`` (0 = the first code) of a fitted
        :class:`~genrec.tokenizers.codebook.ItemCodebook` (or its saved path)."""
        from genrec.tokenizers.codebook import ItemCodebook

        cb = ItemCodebook.load(codebook) if isinstance(codebook, (str, Path)) else codebook
        cb.check_catalogue(dataset.item_map.to_list())
        codes = np.asarray(cb.codes)  # (n_items + 1, L), row 0 = -1
        if not 0 <= level < codes.shape[1]:
            raise ConfigError(f"level must be in 0..{codes.shape[1] - 1}, got {level}")
        labels = codes[:, level].astype(np.int64).copy()
        labels[0] = -1
        n = max(int(cb.codebook_sizes[level]), int(labels.max()) + 1)
        return cls(labels, n, "semantic-id", "semantic-id", meta={"codebook_level": level})


# ---------------------------------------------------------------------- item vectors
def collaborative_item_vectors(
    dataset: Dataset, dim: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Item vectors from a truncated SVD of ``D_u^-1/2 X D_i^-1/2`` (binary ``X``).

    Returns:
        ``(vectors (n_items + 1, d) float32 L2-normalised, has_vector (n_items + 1,) bool)``;
        items without interactions (and row 0) are zero rows.
    """
    X = dataset.matrix(binary=True).astype(np.float64)  # (U + 1, I + 1)
    du = np.asarray(X.sum(1)).ravel()
    di = np.asarray(X.sum(0)).ravel()
    Xn = sp.diags(1.0 / np.sqrt(np.maximum(du, 1))) @ X @ sp.diags(1.0 / np.sqrt(np.maximum(di, 1)))
    Xn = Xn.tocsr()
    k = int(max(1, min(dim, min(Xn.shape) - 1)))
    # Randomised SVD (Halko, Martinsson & Tropp 2011, Alg. 4.4 with 4 power iterations): a
    # seeded Gaussian start makes it reproducible, which ARPACK is not here.
    rng = np.random.default_rng(seed)
    ell = min(k + 10, min(Xn.shape))
    Q, _ = np.linalg.qr(Xn.T @ rng.standard_normal((Xn.shape[0], ell)))  # (I + 1, ell)
    for _ in range(4):
        Q, _ = np.linalg.qr(Xn @ Q)
        Q, _ = np.linalg.qr(Xn.T @ Q)
    _, s, wt = np.linalg.svd(np.asarray(Xn @ Q), full_matrices=False)  # (U+1, ell) -> ell
    vt = (Q @ wt.T[:, :k]).T  # (k, I + 1) right singular vectors
    s = s[:k]
    vec = (vt.T * np.sqrt(s)[None, :]).astype(np.float32)  # (I + 1, k)
    has = di > 0
    has[0] = False
    vec[~has] = 0.0
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    vec = np.where(norms > 0, vec / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
    return vec, has


def text_item_vectors(
    dataset: Dataset, encoder: str = "auto", dim: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Item text vectors (MiniLM with the ``text`` extra, else TF-IDF + SVD to ``dim``).

    Returns:
        ``(vectors (n_items + 1, d) float32, has_text (n_items + 1,) bool)``.
    """
    from genrec.text.encoders import item_text_vectors, make_encoder, to_dense

    vec, has, _ = item_text_vectors(dataset, make_encoder(encoder, svd_dim=dim))
    return np.asarray(to_dense(vec), dtype=np.float32), has


# ---------------------------------------------------------------------- clustering
def _cluster(x: torch.Tensor, k: int, balanced: bool, n_iter: int, seed: int) -> np.ndarray:
    from genrec.tokenizers.rkmeans import balanced_kmeans, kmeans

    if k >= len(x):
        return np.arange(len(x), dtype=np.int64)
    if balanced:
        _, labels = balanced_kmeans(x, k, n_iter=n_iter, seed=seed)
        return np.asarray(labels, dtype=np.int64)
    _, labels = kmeans(x, k, n_iter=n_iter, seed=seed)
    return labels.numpy().astype(np.int64)


def fit_item_clusters(
    dataset: Dataset,
    n_clusters: int = 32,
    *,
    source: Source = "collaborative",
    vectors: np.ndarray | None = None,
    balanced: bool = True,
    levels: int = 1,
    n_iter: int = 20,
    dim: int = 64,
    text_encoder: str = "auto",
    seed: int = 0,
    names: bool = True,
) -> ItemClusters:
    """Cluster the catalogue of ``dataset`` (see the module docstring).

    Args:
        dataset: the training data (collaborative vectors use only its interactions) with
            the item table (text, names).
        n_clusters: clusters (``levels=2``: children per node, so up to ``n_clusters**2``
            leaves).
        source: ``"collaborative"``, ``"text"`` or ``"both"`` (ignored with ``vectors``).
        vectors: explicit ``(n_items + 1, d)`` vectors; all-zero rows get no cluster.
        balanced: equal-size clusters (balanced k-means) instead of plain k-means.
        levels: 1 (flat) or 2 (a balanced two-level tree).
        n_iter: Lloyd iterations.
        dim: SVD rank of the collaborative vectors.
        text_encoder: ``"auto"``, ``"minilm"`` or ``"tfidf"``.
        seed: seeds the SVD start vector and the k-means++ draws; same seed, same clusters.
        names: attach readable cluster names (:func:`cluster_names`).

    Returns:
        :class:`ItemClusters`.
    """
    import time

    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise ConfigError(f"n_clusters must be an integer >= 2, got {n_clusters!r}")
    if n_clusters < 2:
        raise ConfigError(f"n_clusters must be >= 2, got {n_clusters}")
    if levels not in (1, 2):
        raise ConfigError(f"levels must be 1 or 2, got {levels!r}")
    start = time.perf_counter()
    if vectors is not None:
        vec = np.asarray(vectors, dtype=np.float32)
        if vec.ndim != 2 or vec.shape[0] != dataset.n_items + 1:
            raise DataValidationError(
                f"vectors must have shape (n_items + 1, d) = ({dataset.n_items + 1}, d), "
                f"got {vec.shape}"
            )
        has = np.abs(vec).sum(1) > 0
        has[0] = False
        src = "vectors"
    elif source == "collaborative":
        vec, has = collaborative_item_vectors(dataset, dim=dim, seed=seed)
        src = source
    elif source == "text":
        vec, has = text_item_vectors(dataset, encoder=text_encoder)
        src = source
    elif source == "both":
        cv, ch = collaborative_item_vectors(dataset, dim=dim, seed=seed)
        tv, th = text_item_vectors(dataset, encoder=text_encoder)
        vec = np.concatenate([cv, tv], axis=1) / np.sqrt(2.0)
        has = ch | th
        src = source
    else:
        raise ConfigError(f"source must be one of {SOURCES}, got {source!r}")
    idx = np.flatnonzero(has)
    if len(idx) < 2:
        raise DataValidationError("fewer than two items have a vector to cluster")
    x = torch.from_numpy(np.ascontiguousarray(vec[idx]))
    labels = np.full(dataset.n_items + 1, -1, dtype=np.int64)
    parents = None
    if levels == 1:
        labels[idx] = _cluster(x, n_clusters, balanced, n_iter, seed)
        k, method = min(n_clusters, len(idx)), "balanced-kmeans" if balanced else "kmeans"
    else:
        from genrec.tokenizers.hkmeans import HKMeansTokenizer

        tok = HKMeansTokenizer(
            n_levels=2, codebook_size=n_clusters, n_iter=n_iter, seed=seed, dedup=False
        )
        padded = np.zeros((len(idx) + 1, vec.shape[1]), dtype=np.float32)
        padded[1:] = vec[idx]
        codes = tok.fit(padded).codes[1:]  # (n, 2) balanced tree paths, no de-duplication level
        pairs = codes[:, 0] * n_clusters + codes[:, 1]
        uniq, leaf = np.unique(pairs, return_inverse=True)  # compact leaf ids, sorted by path
        labels[idx] = leaf
        parents = (uniq // n_clusters).astype(np.int64)
        k, method = len(uniq), "hkmeans"
    out = ItemClusters(
        labels,
        int(k),
        src,
        method,
        parents,
        meta={
            "seed": seed,
            "levels": levels,
            "requested_clusters": int(n_clusters),
            "n_items_clustered": int(len(idx)),
            "dim": int(vec.shape[1]),
            "fit_seconds": round(time.perf_counter() - start, 3),
        },
    )
    if names:
        out.names = cluster_names(out, dataset)
    return out


# ---------------------------------------------------------------------- names
_WORD = re.compile(r"[a-z][a-z'-]+")
_STOP = {
    "the", "and", "for", "with", "of", "a", "an", "to", "in", "on", "by", "from", "your",
    "you", "new", "set", "pack", "oz", "ml", "fl", "ounce", "count", "size", "inch", "inches",
    "piece", "pieces", "x", "de", "la", "le",
}  # fmt: skip


def cluster_names(clusters: ItemClusters, dataset: Dataset, n_words: int = 3) -> list[str]:
    """A short label per cluster: its most common category (when the item table has some)
    and the ``n_words`` title words most over-represented in it (lift over the catalogue)."""
    titles = dataset.item_titles()
    cats: list[str] | None = None
    try:
        from genrec.ranking.interest import item_category_table

        vocab, mat = item_category_table(dataset)
        counts_all = None
        cats = []
        for c in range(clusters.n_clusters):
            rows = clusters.members(c)
            counts_all = np.asarray(mat[rows].sum(0)).ravel() if len(rows) else None
            cats.append(
                vocab[int(counts_all.argmax())]
                if counts_all is not None and counts_all.max() > 0
                else ""
            )
    except DataValidationError:
        cats = None
    words = [set(_WORD.findall(str(t).lower())) - _STOP for t in titles]
    total = Counter(w for ws in words[1:] for w in ws)
    n_total = max(1, len(words) - 1)
    out = []
    for c in range(clusters.n_clusters):
        rows = clusters.members(c)
        local = Counter(w for r in rows for w in words[r])
        scored = sorted(
            ((cnt / max(len(rows), 1)) * np.log1p(cnt) / (total[w] / n_total), w)
            for w, cnt in local.items()
            if cnt >= 2 or len(rows) < 5
        )
        top = [w for _, w in sorted(scored, reverse=True)[:n_words]]
        parts = [cats[c]] if cats and cats[c] else []
        if top:
            parts.append(", ".join(top))
        out.append(": ".join(parts) if parts else f"cluster {c}")
    return out


# ---------------------------------------------------------------------- quality
def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information (arithmetic mean normalisation) of two labelings."""
    if len(a) == 0:
        return float("nan")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = sp.coo_matrix((np.ones(len(a)), (ai, bi))).toarray()
    ha, hb = _entropy(joint.sum(1)), _entropy(joint.sum(0))
    pj = joint / joint.sum()
    pa, pb = pj.sum(1, keepdims=True), pj.sum(0, keepdims=True)
    nz = pj > 0
    mi = float((pj[nz] * np.log(pj[nz] / (pa @ pb)[nz])).sum())
    denom = (ha + hb) / 2
    return mi / denom if denom > 0 else 0.0


def _purity(labels: np.ndarray, cat_mat: sp.csr_matrix, n_clusters: int) -> float:
    """Share of categorised clustered items in their cluster's most common category (an item
    with several categories counts for each)."""
    keep = (labels >= 0) & (np.diff(cat_mat.indptr) > 0)
    rows = np.flatnonzero(keep)
    if not len(rows):
        return float("nan")
    assign = sp.csr_matrix(
        (np.ones(len(rows)), (labels[rows], np.arange(len(rows)))), shape=(n_clusters, len(rows))
    )
    counts = (assign @ cat_mat[rows]).toarray()  # (K, C)
    return float(counts.max(1).sum() / len(rows))


def cluster_quality(
    clusters: ItemClusters,
    dataset: Dataset,
    *,
    level: int | str | None = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """How good are the clusters? Balance, coverage, and coherence with metadata and with
    user sequences, each coherence beside a random clustering with the same sizes.

    Args:
        clusters: the clustering.
        dataset: the interactions (coverage, sequential coherence) and item table
            (categories, see :func:`genrec.ranking.interest.item_category_table`).
        level: category level for the metadata coherence.
        seed: seed of the random baseline.

    Returns:
        A flat dict: ``n_clusters``, ``size_min/median/max``, ``size_cv`` (std/mean),
        ``size_entropy_ratio`` (entropy / log K; 1 = perfectly balanced),
        ``coverage_items`` (catalogue share with a cluster), ``coverage_interactions``,
        ``category_purity`` / ``_random``, ``category_nmi`` / ``_random`` (primary category),
        ``same_cluster_next`` (share of consecutive interactions of a user in the same
        cluster) / ``_chance`` (``sum_c p_c^2`` with ``p_c`` the interaction share).
    """
    lab = clusters.labels
    sizes = clusters.sizes()
    nonempty = sizes[sizes > 0]
    out: dict[str, Any] = {
        "source": clusters.source,
        "method": clusters.method,
        "n_clusters": int(clusters.n_clusters),
        "n_nonempty": int(len(nonempty)),
        "size_min": int(nonempty.min()),
        "size_median": float(np.median(nonempty)),
        "size_max": int(nonempty.max()),
        "size_cv": float(nonempty.std() / nonempty.mean()),
        "size_entropy_ratio": _entropy(nonempty) / np.log(max(len(nonempty), 2)),
        "coverage_items": float((lab[1:] >= 0).mean()),
    }
    item_of = lab[dataset.item_idx]
    out["coverage_interactions"] = float((item_of >= 0).mean()) if len(item_of) else 0.0
    # metadata coherence
    rng = np.random.default_rng(seed)
    shuffled = lab.copy()
    has = np.flatnonzero(lab >= 0)
    shuffled[has] = rng.permutation(lab[has])
    try:
        from genrec.ranking.interest import item_category_table

        _, cat = item_category_table(dataset, level)
        cat = cat.tocsr()
        cat.sort_indices()
        out["category_purity"] = _purity(lab, cat, clusters.n_clusters)
        out["category_purity_random"] = _purity(shuffled, cat, clusters.n_clusters)
        primary = np.full(len(lab), -1, dtype=np.int64)
        hc = np.diff(cat.indptr) > 0
        primary[hc] = cat.indices[cat.indptr[:-1][hc]]
        both = (lab >= 0) & (primary >= 0)
        out["category_nmi"] = _nmi(lab[both], primary[both])
        both_r = (shuffled >= 0) & (primary >= 0)
        out["category_nmi_random"] = _nmi(shuffled[both_r], primary[both_r])
        out["n_categories"] = int(cat.shape[1])
    except DataValidationError:
        pass
    # sequential coherence: does the next item stay in the previous item's cluster?
    same, n = 0, 0
    for seq in dataset.sequences()[1:]:
        c = lab[seq]
        ok = (c[:-1] >= 0) & (c[1:] >= 0)
        same += int((c[:-1] == c[1:])[ok].sum())
        n += int(ok.sum())
    share = np.bincount(item_of[item_of >= 0], minlength=clusters.n_clusters).astype(float)
    p = share / max(share.sum(), 1.0)
    out["same_cluster_next"] = same / n if n else float("nan")
    out["same_cluster_next_chance"] = float((p**2).sum())
    return out
