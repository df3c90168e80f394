"""Approximate top-k over item embeddings (maximum inner product search), extra ``ann``.

An :class:`ItemIndex` is built from a plain ``(n_items + 1, d)`` float32 matrix whose row 0
is the padding item (genrec's internal id 0; it is never returned) and answers
inner-product top-k queries, optionally excluding each query's seen items::

    index = ItemIndex.build(item_vectors, method="hnsw")          # (n_items + 1, d)
    ids, scores = index.search(user_vectors, k=10, exclude=seen)  # internal item ids
    index.save("artifacts/ann");  ItemIndex.load("artifacts/ann")

Methods (all from faiss, ``pip install 'genrec[ann]'``):

* ``"hnsw"`` (default): a graph index (HNSW, inner product); ``ef_search`` trades speed for
  recall at query time.
* ``"ivf"``: inverted lists over ``nlist`` k-means cells; ``nprobe`` cells are scanned.
* ``"flat"``: exact search (the reference; no speed-up).

Seen-item exclusion over-fetches: each batch asks for ``k`` plus the most items any of its
queries excludes, drops the excluded ones, and asks again with a larger depth for the rare
query left short. :func:`exact_search` is the brute-force reference with the same contract;
``benchmarks/bench_ann.py`` measures recall@10 against it and the speed-up.

Saved indexes are a folder with faiss's own binary format (``index.faiss``) and a JSON
header (``ann.json``); nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from genrec.errors import ArtifactError, ConfigError, DataValidationError, require_extra
from genrec.paths import atomic_dir, follow_umask, prepare_output_dir

__all__ = ["ItemIndex", "exact_search"]

METHODS = ("hnsw", "ivf", "flat")
_FORMAT = 1
Exclude = sp.spmatrix | Sequence[Sequence[int]] | None


def _faiss() -> Any:
    return require_extra("faiss", "ann")


def _check_matrix(x: Any, what: str, d: int | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2 or (d is not None and arr.shape[1] != d):
        want = f"(n, {d})" if d is not None else "2-D"
        raise DataValidationError(f"{what} must be a {want} matrix, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise DataValidationError(f"{what} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DataValidationError(f"{what} has NaN or infinite values")
    return arr


def _exclusion_keys(exclude: Exclude, n_queries: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Excluded ``(query, item)`` pairs as sorted keys ``query * n_cols + item``, and the
    number of excluded items per query."""
    if sp.issparse(exclude):
        csr = sp.csr_matrix(exclude)
        if csr.shape[0] != n_queries:
            raise DataValidationError(f"exclude has {csr.shape[0]} rows for {n_queries} queries")
        csr.sum_duplicates()
        counts = np.diff(csr.indptr)
        items = csr.indices.astype(np.int64)
    else:
        lists = [np.unique(np.asarray(e, dtype=np.int64)) for e in exclude]  # type: ignore[union-attr]
        if len(lists) != n_queries:
            raise DataValidationError(f"exclude has {len(lists)} lists for {n_queries} queries")
        counts = np.array([len(e) for e in lists], dtype=np.int64)
        items = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(n_queries, dtype=np.int64), counts)
    return np.sort(rows * n_cols + items), counts


def _contains(sorted_keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` found in ``sorted_keys`` (binary search; faster than ``np.isin`` here)."""
    pos = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[pos] == values


def _first_kept(
    ids: np.ndarray, scores: np.ndarray, keep: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the first ``k`` kept candidates (order preserved), padded with 0 / -inf;
    and the number of kept candidates."""
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(keep, order, axis=1)
    got = np.where(valid, np.take_along_axis(ids, order, axis=1), 0)
    val = np.where(valid, np.take_along_axis(scores, order, axis=1), -np.inf)
    return got, val.astype(np.float32), keep.sum(axis=1)


class ItemIndex:
    """Approximate inner-product top-k over item vectors (row 0 = padding, never returned).

    Build with :meth:`build`; load with :meth:`load`.

    Attributes:
        method: ``"hnsw"``, ``"ivf"`` or ``"flat"``.
        n_items: number of real items (internal ids ``1..n_items``).
        dim: embedding width.
        params: the build and search parameters.
    """

    def __init__(self, index: Any, method: str, n_items: int, dim: int, params: dict[str, Any]):
        self._index = index
        self.method = method
        self.n_items = n_items
        self.dim = dim
        self.params = dict(params)
        self._apply_search_params()

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        *,
        method: str = "hnsw",
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        seed: int = 0,
    ) -> ItemIndex:
        """Index the item vectors ``embeddings[1:]``.

        Args:
            embeddings: ``(n_items + 1, d)`` item vectors; row 0 (padding) is skipped.
            method: ``"hnsw"``, ``"ivf"`` or ``"flat"`` (exact).
            m: HNSW: graph neighbours per node.
            ef_construction: HNSW: candidate list size while building.
            ef_search: HNSW: candidate list size while searching (at least the fetch depth).
            nlist: IVF: number of cells (``None``: ``4 sqrt(n_items)``, at most
                ``n_items / 39`` so that k-means has 39 points per cell).
            nprobe: IVF: cells scanned per query.
            seed: IVF: k-means seed.

        Raises:
            MissingExtraError: faiss is not installed (``pip install 'genrec[ann]'``).
            ConfigError: unknown method or a parameter out of range.
            DataValidationError: a matrix that is not ``(n_items + 1, d)`` with finite values.
        """
        if method not in METHODS:
            raise ConfigError(f"ItemIndex method must be one of {list(METHODS)}, got {method!r}")
        for name, value in (("m", m), ("ef_construction", ef_construction),
                            ("ef_search", ef_search), ("nprobe", nprobe)):  # fmt: skip
            if int(value) < 1:
                raise ConfigError(f"ItemIndex {name} must be >= 1, got {value!r}")
        emb = _check_matrix(embeddings, "embeddings")
        if emb.shape[0] < 2:
            raise DataValidationError(
                "embeddings need row 0 (padding) and at least one item row, got "
                f"{emb.shape[0]} row(s)"
            )
        faiss = _faiss()
        items = emb[1:]  # faiss label j = internal item id j + 1
        n, d = items.shape
        params: dict[str, Any] = {"seed": seed}
        if method == "hnsw":
            index = faiss.IndexHNSWFlat(d, int(m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            index.add(items)
            params.update(m=int(m), ef_construction=int(ef_construction), ef_search=int(ef_search))
        elif method == "ivf":
            if nlist is None:
                nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))
            if not 1 <= int(nlist) <= n:
                raise ConfigError(f"ItemIndex nlist must be in 1..{n}, got {nlist!r}")
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, int(nlist), faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = int(seed)
            index.train(items)
            index.add(items)
            index.own_fields = True
            quantizer.this.disown()  # owned by the IVF index from here on
            params.update(nlist=int(nlist), nprobe=int(nprobe))
        else:
            index = faiss.IndexFlatIP(d)
            index.add(items)
        return cls(index, method, n, d, params)

    def _apply_search_params(self) -> None:
        if self.method == "hnsw":
            self._index.hnsw.efSearch = int(self.params["ef_search"])
        elif self.method == "ivf":
            self._index.nprobe = int(self.params["nprobe"])

    def set_search_params(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change the speed/recall trade-off of later searches (HNSW ``ef_search``, IVF
        ``nprobe``); values for the other method are ignored."""
        if ef_search is not None and self.method == "hnsw":
            if ef_search < 1:
                raise ConfigError(f"ef_search must be >= 1, got {ef_search!r}")
            self.params["ef_search"] = int(ef_search)
        if nprobe is not None and self.method == "ivf":
            if nprobe < 1:
                raise ConfigError(f"nprobe must be >= 1, got {nprobe!r}")
            self.params["nprobe"] = int(nprobe)
        self._apply_search_params()

    # ------------------------------------------------------------------ search
    def _raw_search(self, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss search at ``depth``; labels mapped to internal ids (0 = nothing found)."""
        if self.method == "hnsw":  # the candidate list must hold the whole depth
            self._index.hnsw.efSearch = max(int(self.params["ef_search"]), depth)
        scores, labels = self._index.search(queries, depth)
        self._apply_search_params()
        return labels.astype(np.int64) + 1, scores  # -1 (nothing) -> 0 (padding)

    def search(
        self, queries: np.ndarray, k: int, *, exclude: Exclude = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by inner product for each query.

        Args:
            queries: ``(B, d)`` query vectors (e.g. user embeddings).
            k: items per query (at most ``n_items``).
            exclude: items never to return, per query: a CSR ``(B, n_items + 1)`` (e.g. the
                users' history rows) or a list of id lists (internal ids).

        Returns:
            ``(item_ids, scores)``: int64 internal ids ``(B, k)`` and float32 scores, best
            first. A query with fewer than ``k`` eligible items (or an approximate index that
            found fewer) is padded with id 0 and score ``-inf``.

        Raises:
            DataValidationError: queries of the wrong width, or an ``exclude`` of the wrong
                length.
            ConfigError: ``k`` out of range.
        """
        q = _check_matrix(queries, "queries", self.dim)
        if not 1 <= int(k) <= self.n_items:
            raise ConfigError(f"k must be in 1..{self.n_items}, got {k!r}")
        k = int(k)
        n_cols = self.n_items + 1
        if exclude is not None:
            keys, extra = _exclusion_keys(exclude, len(q), n_cols)
        else:
            keys, extra = None, np.zeros(len(q), dtype=np.int64)
        out_ids = np.zeros((len(q), k), dtype=np.int64)
        out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        # Each query fetches k + its own number of excluded items (enough for an exact
        # index); queries are searched in groups of similar depth (powers of two), so one
        # long history does not deepen the search of the whole batch. A query that an
        # approximate index leaves short is searched again twice as deep.
        depth = np.minimum(k + extra, self.n_items)
        todo = np.arange(len(q))
        while len(todo):
            short = []
            bucket = np.ceil(np.log2(depth[todo])).astype(np.int64)
            for b in np.unique(bucket):
                rows = todo[bucket == b]
                d = int(depth[rows].max())
                ids, scores = self._raw_search(q[rows], d)  # (b, d)
                keep = ids > 0
                if keys is not None and len(keys):
                    keep &= ~_contains(keys, rows[:, None] * n_cols + ids)
                out_ids[rows], out_scores[rows], n_kept = _first_kept(ids, scores, keep, k)
                if d < self.n_items:  # else: the whole catalogue was searched
                    short.append(rows[n_kept < k])
            todo = np.concatenate(short) if short else np.zeros(0, dtype=np.int64)
            depth[todo] = np.minimum(2 * depth[todo], self.n_items)
        return out_ids, out_scores

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a folder ``path`` (``index.faiss`` + ``ann.json``), atomically.

        ``path`` must be new, an empty folder, or (with ``overwrite=True``) an index genrec
        saved earlier; anything else raises :class:`~genrec.paths.OutputPathError`."""
        faiss = _faiss()
        path = prepare_output_dir(path, "ann", overwrite=overwrite)
        with atomic_dir(path, kind="ann") as tmp:
            faiss.write_index(self._index, str(tmp / "index.faiss"))
            follow_umask(tmp / "index.faiss")
            header = {
                "kind": "genrec-ann",
                "format_version": _FORMAT,
                "method": self.method,
                "n_items": self.n_items,
                "dim": self.dim,
                "params": self.params,
            }
            (tmp / "ann.json").write_text(json.dumps(header, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ItemIndex:
        """Read a folder written by :meth:`save`.

        Raises:
            ArtifactError: a missing, partial or inconsistent folder.
        """
        faiss = _faiss()
        path = Path(path)
        for name in ("ann.json", "index.faiss"):
            if not (path / name).is_file():
                raise ArtifactError(f"ANN index at {path} is incomplete: {name} is missing")
        try:
            header = json.loads((path / "ann.json").read_text())
            method, n_items, dim = header["method"], int(header["n_items"]), int(header["dim"])
            params = dict(header["params"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"ANN index header {path / 'ann.json'} is corrupt: {exc}") from exc
        if header.get("kind") != "genrec-ann" or header.get("format_version", 0) > _FORMAT:
            raise ArtifactError(f"{path} is not a genrec ANN index this version can read")
        try:
            index = faiss.read_index(str(path / "index.faiss"))
        except RuntimeError as exc:
            raise ArtifactError(f"ANN index file {path / 'index.faiss'} is corrupt: {exc}") from exc
        if index.ntotal != n_items or index.d != dim or method not in METHODS:
            raise ArtifactError(
                f"ANN index at {path} does not match its header ({index.ntotal} vectors of "
                f"width {index.d} vs {n_items} x {dim}, method {method!r})"
            )
        return cls(index, method, n_items, dim, params)

    def __repr__(self) -> str:
        return f"ItemIndex({self.method!r}, n_items={self.n_items}, dim={self.dim})"


def exact_search(
    embeddings: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    exclude: Exclude = None,
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product top-``k`` with the contract of :meth:`ItemIndex.search`.

    Scores every item (torch matmul and ``topk``, in batches of queries); row 0 and the
    excluded items are masked with ``-inf``.
    """
    import torch

    emb = torch.from_numpy(_check_matrix(embeddings, "embeddings"))
    q = _check_matrix(queries, "queries", emb.shape[1])
    n_items = emb.shape[0] - 1
    if not 1 <= int(k) <= n_items:
        raise ConfigError(f"k must be in 1..{n_items}, got {k!r}")
    if exclude is not None:
        keys, _ = _exclusion_keys(exclude, len(q), n_items + 1)
    ids = np.zeros((len(q), k), dtype=np.int64)
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    for s in range(0, len(q), batch_size):
        block = torch.from_numpy(q[s : s + batch_size]) @ emb.T  # (b, n_items + 1)
        block[:, 0] = -torch.inf
        if exclude is not None:
            lo, hi = np.searchsorted(keys, [s * (n_items + 1), (s + len(block)) * (n_items + 1)])
            rows, cols = np.divmod(keys[lo:hi] - s * (n_items + 1), n_items + 1)
            block[torch.from_numpy(rows), torch.from_numpy(cols)] = -torch.inf
        val, idx = torch.topk(block, k, dim=1)  # (b, k) best first
        ids[s : s + len(block)] = idx.numpy()
        scores[s : s + len(block)] = val.numpy()
    ids[~np.isfinite(scores)] = 0
    return ids, scores
