"""Evaluator speed at Amazon Beauty scale: 22,363 users x 12,101 items, k in {5, 10, 20}.

Scores are synthetic (a fixed random matrix, generated before timing) and every user has a
Beauty-like history of ~9 items plus one held-out target (leave-one-out). Both contenders
read the same score matrix:

* genrec: ``genrec.evaluate`` (masking of seen items, exact top-k with pessimistic
  tie-breaking, all accuracy and beyond-accuracy metrics);
* baseline: straightforward numpy (mask seen, ``argsort`` every row, metrics from the top 20).

Prints seconds for both and the speed-up ratio (target: genrec < 5 s on 2 CPU cores).
Run: ``python benchmarks/bench_evaluator.py [--users N --items M]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

import genrec
from genrec.config import ModelConfig
from genrec.core.recommender import ScoringRecommender
from genrec.data.splitting import leave_one_out


class MatrixScores(ScoringRecommender):
    """Returns rows of a precomputed score matrix (indexed by internal user id)."""

    config_class = ModelConfig

    def __init__(self, scores: torch.Tensor):
        super().__init__()
        self.scores = scores  # (n_users + 1, n_items + 1)

    def _fit(self, dataset, valid):
        pass

    def _score(self, batch):
        return self.scores[torch.from_numpy(batch.user_ids)]


def make_split(n_users: int, n_items: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(5, 15, n_users)  # mean ~9.5 like Beauty
    users = np.repeat(np.arange(n_users), lens)
    items = rng.integers(0, n_items, len(users))
    items[:n_items] = np.arange(n_items)  # every item appears at least once
    df = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": np.arange(len(users))})
    return leave_one_out(genrec.Dataset(df))


def numpy_baseline(scores: np.ndarray, split, ks=(5, 10, 20)) -> dict[str, float]:
    test = split.test
    hist = test.history.matrix()[test.users].tocsr()
    K = max(ks)
    out = {f"{m}@{k}": 0.0 for m in ("recall", "ndcg") for k in ks}
    target = np.array([test.targets[r].indices[0] for r in range(len(test))])
    for start in range(0, len(test), 1024):
        users = test.users[start : start + 1024]
        s = scores[users].copy()
        s[:, 0] = -np.inf
        h = hist[start : start + 1024]
        rows = np.repeat(np.arange(len(users)), np.diff(h.indptr))
        s[rows, h.indices] = -np.inf
        top = np.argsort(-s, axis=1, kind="stable")[:, :K]
        hit = top == target[start : start + 1024, None]
        for k in ks:
            out[f"recall@{k}"] += hit[:, :k].any(1).sum()
            ranks = np.argmax(hit[:, :k], axis=1)
            out[f"ndcg@{k}"] += (hit[:, :k].any(1) / np.log2(ranks + 2)).sum()
    return {k: v / len(test) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=22_363)
    parser.add_argument("--items", type=int, default=12_101)
    args = parser.parse_args()
    split = make_split(args.users, args.items)
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(args.users + 1, args.items + 1, generator=gen)
    model = MatrixScores(scores).fit(split.train)
    print(
        f"{args.users:,} users x {args.items:,} items, k in (5, 10, 20), "
        f"torch threads {torch.get_num_threads()}"
    )

    t = time.perf_counter()
    res = genrec.evaluate(model, split, ks=(5, 10, 20))
    t_genrec = time.perf_counter() - t

    t = time.perf_counter()
    base = numpy_baseline(scores.numpy(), split)
    t_base = time.perf_counter() - t

    for key in ("recall@10", "ndcg@10"):
        assert abs(res.metrics[key] - base[key]) < 1e-9, (key, res.metrics[key], base[key])
    print(
        f"genrec.evaluate : {t_genrec:6.2f} s  (all metrics incl. beyond-accuracy; "
        f"recall@10={res.metrics['recall@10']:.5f})"
    )
    print(f"numpy baseline  : {t_base:6.2f} s  (argsort per row; recall and ndcg only)")
    print(
        f"ratio baseline/genrec: {t_base / t_genrec:.1f}x  "
        f"target < 5 s: {'met' if t_genrec < 5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
