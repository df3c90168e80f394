"""Small grid search of the classical controls on the *validation* split (never the test).

Used to choose the presets in ``configs/<dataset>/``. Prints NDCG@10 / Recall@10 on the
validation holdout for each grid point and the best one per model.

    python benchmarks/tune_classical.py --dataset movielens-small
    python benchmarks/tune_classical.py --dataset amazon-beauty \
        --data-dir ../shared/data/amazon-beauty
    python benchmarks/tune_classical.py --models als --grid als.alpha=0.25,0.5,1

A best value at the edge of a numeric axis is flagged: widen that axis with ``--grid``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import yaml

import genrec
from genrec.data.loaders import load_dataset

GRIDS: dict[str, dict[str, list]] = {
    "ease": {"l2": [50.0, 100.0, 250.0, 500.0, 1000.0]},
    "itemknn": {"n_neighbors": [20, 50, 100, 200], "shrink": [0.0, 10.0, 50.0]},
    "als": {
        "embedding_dim": [32, 64, 128],
        "regularization": [0.01, 0.1, 1.0],
        "alpha": [1.0, 10.0],
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-small")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--models", default="ease,itemknn,als")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="MODEL.KEY=V1,V2",
        help="replace one axis of a model's grid, e.g. als.alpha=0.25,0.5,1",
    )
    args = parser.parse_args()
    grids = {name: dict(axes) for name, axes in GRIDS.items()}
    for spec in args.grid:
        key, _, raw = spec.partition("=")
        model, _, axis = key.partition(".")
        if model not in grids or not axis or not raw:
            parser.error(f"--grid {spec!r}: expected MODEL.KEY=V1,V2 with MODEL in {list(grids)}")
        grids[model][axis] = [yaml.safe_load(v) for v in raw.split(",")]
    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    split = genrec.split_dataset(ds, "loo")
    for name in args.models.split(","):
        grid = grids[name]
        best = None
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values))
            t = time.perf_counter()
            model = genrec.get_model(name)(**params).fit(split.train)
            res = genrec.evaluate(model, split, stage="valid", ks=[10], beyond_accuracy=False)
            ndcg, rec = res.metrics["ndcg@10"], res.metrics["recall@10"]
            print(
                f"{name:8s} {params}  valid ndcg@10={ndcg:.4f} recall@10={rec:.4f} "
                f"({time.perf_counter() - t:.1f}s)",
                flush=True,
            )
            if best is None or ndcg > best[0]:
                best = (ndcg, params)
        print(f"BEST {name}: {best[1]} (valid ndcg@10={best[0]:.4f})", flush=True)
        edges = [
            k for k, v in best[1].items() if len(grid[k]) > 1 and v in (min(grid[k]), max(grid[k]))
        ]
        if edges:
            print(f"  at the edge of the grid for {', '.join(edges)}: widen it (--grid)")


if __name__ == "__main__":
    main()
