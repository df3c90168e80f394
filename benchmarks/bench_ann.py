"""Approximate top-k (genrec.ann, faiss) against exact search: recall@10 and speed-up.

Two kinds of item vectors, each with row 0 as padding, as :class:`genrec.ann.ItemIndex`
takes them:

* ``synthetic``: ``--items`` clustered vectors of width ``--dim`` (256 Gaussian clusters,
  lognormal norms, like trained embeddings with popular items of larger norm); queries are
  drawn the same way and each excludes ``--seen`` random items (a user's history).
* ``als`` (``--als DATASET`` or ``--als synth:USERS,ITEMS``): the item factors of ALS
  (genrec's ``als``, extra ``als``) fitted on the training split, queried with the test
  users' factors, excluding each user's training items, as serving would.

The floor is exact search in the same run: torch matmul over all items + ``topk`` (the
same masking), 2 threads. For each index setting the script prints build seconds, query
seconds for all queries, recall@10 against the exact top-10, and the speed-up
(exact / approximate query time). Load average and thread counts are printed beside the
times (the machine is shared).

Run::

    python benchmarks/bench_ann.py --items 200000 --dim 64 --queries 5000
    python benchmarks/bench_ann.py --als amazon-beauty --data-dir ../shared/data/amazon-beauty
    python benchmarks/bench_ann.py --als synth:100000,200000 --skip-synthetic
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp
import torch

from genrec.ann import ItemIndex, exact_search


def synthetic(n_items: int, dim: int, n_queries: int, n_seen: int, seed: int):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((256, dim)).astype(np.float32)

    def draw(n: int) -> np.ndarray:
        c = centers[rng.integers(0, 256, n)]
        x = c + 0.7 * rng.standard_normal((n, dim)).astype(np.float32)
        return x * rng.lognormal(0.0, 0.3, (n, 1)).astype(np.float32)

    items = np.vstack([np.zeros((1, dim), np.float32), draw(n_items)])  # row 0 = padding
    queries = draw(n_queries)
    seen = rng.integers(1, n_items + 1, (n_queries, n_seen))
    rows = np.repeat(np.arange(n_queries), n_seen)
    exclude = sp.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, seen.ravel())), shape=(n_queries, n_items + 1)
    )
    return items, queries, exclude


def als_vectors(args: argparse.Namespace):
    import genrec

    if args.als.startswith("synth:"):
        from genrec.data.synth import synthesize

        users, items = (int(v) for v in args.als[len("synth:") :].split(","))
        ds = genrec.Dataset(synthesize(users, items, seed=args.seed), name=args.als)
    else:
        ds = genrec.load_dataset(args.als, data_dir=args.data_dir)
    split = genrec.split_dataset(ds, "loo")
    t = time.perf_counter()
    model = genrec.get_model("als")(embedding_dim=args.dim, seed=args.seed).fit(split.train)
    print(
        f"ALS on {ds.name}: {ds.n_items:,} items, {args.dim} factors, fit "
        f"{time.perf_counter() - t:.1f} s (load {os.getloadavg()[0]:.1f})"
    )
    users = split.test.users[: args.queries]
    queries = model.user_factors_[users]
    exclude = split.train.matrix()[users]  # (B, n_items + 1): the training items
    return model.item_factors_, queries, exclude


def recall_at(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = [
        len(set(a[a > 0]) & set(e[e > 0])) / max(1, (e > 0).sum()) for a, e in zip(approx, exact)
    ]
    return float(np.mean(hits))


def run(name: str, items: np.ndarray, queries: np.ndarray, exclude, args) -> None:
    k = 10
    print(
        f"\n## {name}: {items.shape[0] - 1:,} items x {items.shape[1]} dims, "
        f"{len(queries):,} queries, {int(exclude.nnz):,} excluded pairs; torch threads "
        f"{torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}"
    )
    best_exact = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        exact_ids, _ = exact_search(items, queries, k, exclude=exclude)
        best_exact = min(best_exact, time.perf_counter() - t)
    print(f"exact (torch matmul + topk): {best_exact:.3f} s")
    print("| index | build s | query s | recall@10 | speed-up | load |")
    print("|---|---|---|---|---|---|")
    settings = [("hnsw", {"ef_search": ef}) for ef in args.ef] + [
        ("ivf", {"nprobe": p}) for p in args.nprobe
    ]
    built: dict[str, tuple[ItemIndex, float]] = {}
    for method, search in settings:
        if method not in built:
            t = time.perf_counter()
            built[method] = (ItemIndex.build(items, method=method, seed=args.seed), 0.0)
            built[method] = (built[method][0], time.perf_counter() - t)
        index, build_s = built[method]
        index.set_search_params(**search)
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            ids, _ = index.search(queries, k, exclude=exclude)
            best = min(best, time.perf_counter() - t)
        excluded_hits = exclude[np.arange(len(ids))[:, None], ids].sum()
        assert excluded_hits == 0, "an excluded item came back"
        label = f"{method} " + ", ".join(f"{k}={v}" for k, v in search.items())
        print(
            f"| {label} | {build_s:.1f} | {best:.3f} | {recall_at(ids, exact_ids):.3f} | "
            f"{best_exact / best:.1f}x | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--seen", type=int, default=50, help="excluded items per query")
    parser.add_argument(
        "--ef", type=lambda s: [int(v) for v in s.split(",")], default=[32, 64, 128, 256]
    )
    parser.add_argument(
        "--nprobe", type=lambda s: [int(v) for v in s.split(",")], default=[8, 32, 64]
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--als", default=None, help="dataset name, or synth:USERS,ITEMS")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    if not args.skip_synthetic:
        run("synthetic", *synthetic(args.items, args.dim, args.queries, args.seen, args.seed), args)
    if args.als:
        run(f"ALS factors ({args.als})", *als_vectors(args), args)


if __name__ == "__main__":
    main()
