"""Full-ranking evaluation at scale: a factor model, every user against every item.

A factor model (random user and item vectors of ``--dim`` dimensions, scores ``U @ V.T``) is
evaluated with ``genrec.evaluate`` on a leave-one-out split of synthetic histories (3 to 7
items per user): seen items masked, exact top-k with pessimistic tie-breaking, all accuracy
metrics (beyond-accuracy off, as it does not grow with the catalogue). Printed:

* the evaluation's wall time, scores per second (users x items / seconds) and its peak RSS;
* the same scores computed by a plain ``torch.mm`` of the same shapes (user chunks against
  the whole item table, no masking or top-k), timed in the same process on a sample of
  users and extrapolated: the matmul "roof" for this work; the evaluation's throughput is
  printed as a fraction of it.

The issue's goal: 400k users x 200k items (8e10 scores) in at most 5 minutes on 2 cores::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_eval_scale.py --users 400000 \\
        --items 200000 --threads 2

Machine load moves every number: the load average and torch's thread count are printed
beside them.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd
import torch

import genrec
from genrec.config import ModelConfig
from genrec.core.recommender import ScoringRecommender
from genrec.data.splitting import leave_one_out


class Factors(ScoringRecommender):
    """Scores ``U[user] @ V.T`` from fixed random factors (row 0 of ``V`` is padding)."""

    config_class = ModelConfig
    fresh_scores = True  # a matmul per call: rank masks it in place

    def __init__(self, users: torch.Tensor, items: torch.Tensor):
        super().__init__()
        self.U, self.V = users, items  # (n_users + 1, d), (n_items + 1, d)

    def _fit(self, dataset, valid):
        pass

    def _score(self, batch):
        return self.U[torch.from_numpy(batch.user_ids)] @ self.V.T  # (B, n_items + 1)


def make_split(n_users: int, n_items: int, seed: int = 0):
    """Leave-one-out split of synthetic histories: 3 to 7 random items per user."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(3, 8, n_users)
    users = np.repeat(np.arange(n_users, dtype=np.int64), lens)
    items = rng.integers(0, n_items, len(users))
    items[: min(n_items, len(items))] = np.arange(min(n_items, len(items)))  # all items seen
    df = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": np.arange(len(users))})
    return leave_one_out(genrec.Dataset(df))


def matmul_roof(users: torch.Tensor, items: torch.Tensor, chunk: int, sample: int) -> float:
    """Scores per second of a plain ``torch.mm`` of ``(chunk, d) x (d, n_items)`` over
    ``sample`` users (the same shapes the evaluation scores in)."""
    out = torch.empty(chunk, items.shape[0])
    torch.mm(users[:chunk], items.T, out=out)  # warm up
    done, t = 0, time.perf_counter()
    while done < sample:
        torch.mm(users[done % (len(users) - chunk) :][:chunk], items.T, out=out)
        done += chunk
    return done * items.shape[0] / (time.perf_counter() - t)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--roof-users", type=int, default=8192, help="users timed for the roof")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(
        f"{args.users:,} users x {args.items:,} items, d={args.dim}; torch threads "
        f"{torch.get_num_threads()}; load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start",
        flush=True,
    )
    t = time.perf_counter()
    split = make_split(args.users, args.items)
    print(f"data and split: {time.perf_counter() - t:.1f} s", flush=True)
    gen = torch.Generator().manual_seed(0)
    U = torch.randn(args.users + 1, args.dim, generator=gen)
    V = torch.randn(args.items + 1, args.dim, generator=gen)
    model = Factors(U, V).fit(split.train)
    chunk = 1024
    roof = matmul_roof(U, V, chunk, min(args.roof_users, args.users))

    t = time.perf_counter()
    res = genrec.evaluate(model, split, ks=(10,), beyond_accuracy=False)
    seconds = time.perf_counter() - t
    n_scores = float(len(split.test)) * (args.items + 1)
    rate = n_scores / seconds
    load = os.getloadavg()
    print(
        f"genrec.evaluate: {seconds:.1f} s for {len(split.test):,} test users "
        f"({n_scores:.3g} scores, {rate:.3g} scores/s); recall@10={res.metrics['recall@10']:.5f}"
    )
    print(
        f"plain torch.mm of the same shapes: {roof:.3g} scores/s -> roof {n_scores / roof:.1f} s; "
        f"evaluation at {rate / roof:.2f} of the roof"
    )
    print(f"peak RSS {peak_rss_gb():.1f} GB; load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at end")
    goal = 300.0 * (args.users * args.items) / (400_000 * 200_000)
    print(f"goal (5 min at 400k x 200k, scaled to this size: {goal:.1f} s): "
          f"{'met' if seconds <= goal else 'MISSED'}")  # fmt: skip
    return {"seconds": seconds, "scores_per_second": rate, "roof_scores_per_second": roof}


if __name__ == "__main__":
    main()
