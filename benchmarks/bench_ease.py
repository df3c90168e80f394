"""EASE fit time against the floor of the same linear algebra, timed in the same run.

Contenders, all on the same training matrix ``X`` (users x n items, binary):

* ``genrec``: ``EASE(l2).fit(train)`` as shipped (float32, Gram built by blocks, LAPACK
  ``spotrf``/``spotri`` in place, memory check first);
* ``floor-torch``: plain torch float32: ``G = (X^T X).toarray()`` (scipy), ``+ l2 I``,
  ``torch.linalg.cholesky`` then ``torch.cholesky_inverse``; nothing else (no ``B``);
* ``floor-lapack``: the same Gram, then scipy ``spotrf`` + ``spotri`` in place (the two
  LAPACK calls EASE's fit cannot avoid);
* ``before`` (``--before``): the previous implementation (float64 Gram, torch Cholesky
  and ``cholesky_inverse`` in float64, ``B`` cast to float32). Slow and 3x the memory.

Each is run ``--repeat`` times in turn (round robin, so load spikes hit all of them) and
the best time is kept. Prints wall and CPU seconds (CPU time of all the process's threads
is steadier than wall time on a shared machine), ``genrec / floor`` ratios of both, the load
average and the thread counts (compare ratios, not seconds across runs).

``--storage dense,float16,topn=100,...`` instead fits EASE once and compares its storage
forms: size of ``B`` in the artifact, of the whole artifact, and test metrics (leave-one-out,
full ranking) of each form.

Run::

    python benchmarks/bench_ease.py --data-dir ../shared/data/amazon-beauty --l2 50
    python benchmarks/bench_ease.py --synth 20000,20000 --l2 500
    python benchmarks/bench_ease.py --dataset movielens-small --l2 250 \\
        --storage dense,float16,topn=50,topn=100,topn=200,topn=500
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

import genrec
from genrec.models.ease import EASE


def _load_split(args: argparse.Namespace) -> genrec.data.Split:
    if args.synth:
        from genrec.data.synth import synthesize

        users, items = (int(v) for v in args.synth.split(","))
        frame = synthesize(users, items, args.mean_length, args.zipf, seed=args.seed)
        ds = genrec.Dataset(frame, name=f"synth-{users}x{items}")
    else:
        ds = genrec.load_dataset(args.dataset, data_dir=args.data_dir)
    return genrec.split_dataset(ds, "loo")


def floor_torch(X: sp.csr_matrix, l2: float) -> torch.Tensor:
    G = torch.from_numpy((X.T @ X).toarray().astype(np.float32))
    G.diagonal().add_(l2)
    return torch.cholesky_inverse(torch.linalg.cholesky(G))


def floor_lapack(X: sp.csr_matrix, l2: float) -> np.ndarray:
    from scipy.linalg import lapack

    G = (X.T @ X).toarray().astype(np.float32)
    G.flat[:: G.shape[0] + 1] += np.float32(l2)
    c, _ = lapack.spotrf(G.T, lower=1, clean=0, overwrite_a=1)
    c, _ = lapack.spotri(c, lower=1, overwrite_c=1)
    return c


def before(X: sp.csr_matrix, l2: float) -> torch.Tensor:
    """The float64 fit genrec shipped before (models/ease.py at 5c0b0c5)."""
    gram = torch.from_numpy((X.T @ X).toarray().astype(np.float64))
    gram.diagonal().add_(l2)
    P = torch.cholesky_inverse(torch.linalg.cholesky(gram))
    B = P / (-P.diagonal())[None, :]
    B.diagonal().zero_()
    return B.to(torch.float32).contiguous()


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def compare_storage(split: genrec.data.Split, l2: float, forms: str) -> None:
    """Fit once; evaluate and save every storage form of the same ``B``."""
    from safetensors.numpy import load_file

    t = time.perf_counter()
    dense = EASE(l2=l2).fit(split.train)
    print(
        f"{split.train.name}: {split.train.n_items:,} items, fit {time.perf_counter() - t:.1f} s "
        f"(load {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()})"
    )
    B = dense.B_.numpy()
    print("| storage | B in artifact | artifact | R@10 | N@10 | R@20 | N@20 | eval s |")
    print("|---|---|---|---|---|---|---|---|")
    for form in forms.split(","):
        storage, _, topn = form.partition("=")
        model = copy.copy(dense)
        model.config = dense.config.replace(storage=storage, topn=int(topn or 200))
        model._set_weights(B.copy())
        t = time.perf_counter()
        m = genrec.evaluate(model, split, ks=(10, 20)).metrics
        dt = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / "ease")
            arrays = load_file(str(path / "weights.safetensors"))
            b_bytes = sum(v.nbytes for k, v in arrays.items() if k.startswith("model."))
            total = _dir_bytes(path)
        print(
            f"| {form} | {b_bytes / 1e6:.1f} MB | {total / 1e6:.1f} MB | "
            f"{m['recall@10']:.4f} | {m['ndcg@10']:.4f} | {m['recall@20']:.4f} | "
            f"{m['ndcg@20']:.4f} | {dt:.1f} (load {os.getloadavg()[0]:.1f}) |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--synth", default=None, help="USERS,ITEMS: a synthetic dataset")
    parser.add_argument("--mean-length", type=float, default=51.0)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--l2", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", action="store_true", help="also time the float64 fit")
    parser.add_argument("--no-torch-floor", action="store_true")
    parser.add_argument(
        "--storage", default=None, help="compare storage forms, e.g. dense,float16,topn=100"
    )
    args = parser.parse_args()

    split = _load_split(args)
    if args.storage:
        compare_storage(split, args.l2, args.storage)
        return
    train = split.train
    X = train.matrix(binary=True)[:, 1:].astype(np.float32)
    print(
        f"{train.name}: {train.n_users:,} users x {train.n_items:,} items, "
        f"{X.nnz:,} training pairs, l2={args.l2}; torch threads {torch.get_num_threads()}, "
        f"cpus {os.cpu_count()}"
    )

    def run_genrec() -> None:
        EASE(l2=args.l2).fit(train)

    contenders = {"genrec": run_genrec, "floor-lapack": lambda: floor_lapack(X, args.l2)}
    if not args.no_torch_floor:
        contenders["floor-torch"] = lambda: floor_torch(X, args.l2)
    if args.before:
        contenders["before"] = lambda: before(X, args.l2)
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    for rep in range(args.repeat):
        for name, fn in contenders.items():
            gc.collect()
            load0 = os.getloadavg()[0]
            t, c = time.perf_counter(), time.process_time()
            fn()
            dt, dc = time.perf_counter() - t, time.process_time() - c
            best[name] = min(best.get(name, float("inf")), dt)
            best_cpu[name] = min(best_cpu.get(name, float("inf")), dc)
            print(
                f"  rep {rep} {name:13s} {dt:8.2f} s wall {dc:8.2f} s cpu   load {load0:.1f} -> "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print("best of", args.repeat, "(wall, cpu: all threads of the process)")
    for name, dt in best.items():
        print(f"{name:13s} {dt:8.2f} s wall {best_cpu[name]:8.2f} s cpu")
    for floor in ("floor-lapack", "floor-torch", "before"):
        if floor in best:
            print(
                f"genrec / {floor}: wall {best['genrec'] / best[floor]:.2f}, "
                f"cpu {best_cpu['genrec'] / best_cpu[floor]:.2f}"
            )


if __name__ == "__main__":
    main()
