"""Continuous training (issue 27, part 2): update vs retrain vs frozen on a temporal replay.

The interactions, ordered by time, are cut into a first training block (the oldest
``--initial`` share) and ``--periods`` consecutive periods of equal size. For every period
``j`` each model exists in three versions, all trained only on data before ``P_j``:

* ``frozen``: fitted once on the first block, never changed;
* ``retrain``: fitted from scratch on everything before ``P_j`` (``--retrain-epochs``);
* ``update``: the previous period's ``update`` model brought up to date with ``P_{j-1}`` by
  :func:`genrec.update.update_model` (warm start for SASRec with ``--update-epochs``; ALS
  fold-in; popularity refits), so new users and items enter as they appear.

Each version is scored on ``P_j``: every user of ``P_j`` with at least one earlier
interaction gets a top-10 list from their whole history before ``P_j``
(``recommend_for_history``: the same input for every version; history items the version
does not know are dropped), full ranking, history excluded; the targets are the user's
``P_j`` items not already in their history (items the version does not know count as
misses). Per period: Recall/NDCG@10, the share of targets that are items new since the
first block (data drift), the Jaccard overlap of each version's lists with the frozen
model's (model drift), fit/update wall time, and paired t-tests of ``update`` and ``frozen``
against ``retrain`` on per-user NDCG@10 (Holm within the period).

Run (CPU)::

    PYTHONPATH=src python benchmarks/continuous.py --dataset movielens-small \\
        --out docs/measurements/continuous/movielens-small.json --plot ...png
    PYTHONPATH=src python benchmarks/continuous.py --dataset movielens-100k \\
        --data-dir ../shared/data/movielens-100k --out ... --plot ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import genrec
from genrec.bench.benchmark import BenchmarkSpec, resolve_config
from genrec.evaluation import metrics as M
from genrec.evaluation import stats
from genrec.update import update_model

VARIANTS = ("frozen", "retrain", "update")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg} (load {os.getloadavg()[0]:.1f})", flush=True)


def periods(ds: Any, initial: float, n: int) -> np.ndarray:
    """Period of each interaction (0 = the first block, then 1..n), cut by time rank."""
    order = np.argsort(ds.timestamps, kind="stable")
    frac = np.empty(len(order))
    frac[order] = np.arange(len(order)) / len(order)
    out = np.zeros(len(order), dtype=np.int64)
    for j in range(1, n + 1):
        out[frac >= initial + (j - 1) * (1 - initial) / n] = j
    return out


def model_config(name: str, args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    cfg, _ = resolve_config(name, dataset, BenchmarkSpec(dataset=dataset))
    if "epochs" in cfg:
        cfg.update(epochs=args.retrain_epochs, patience=0, progress=False, seed=args.seed)
        cfg["time_budget_minutes"] = 0.0
    if name == "als":
        cfg["num_threads"] = 1
    return cfg


def evaluate_period(
    model: Any, hist: dict[Any, list[Any]], targets: dict[Any, set[Any]], users: list[Any], k: int
) -> dict[str, Any]:
    known = set(model.item_map.to_list())
    seqs = [[i for i in hist[u] if i in known] for u in users]
    recs = model.recommend_for_history(seqs, k=k)
    ids = recs.item_ids  # (U, k) external, None where padded
    hits = np.array(
        [[x is not None and x in targets[u] for x in row] for u, row in zip(users, ids)]
    )
    n_t = np.array([len(targets[u]) for u in users])
    return {
        "recall": M.recall_at_k(hits, n_t, k),
        "ndcg": M.ndcg_at_k(hits, n_t, k),
        "lists": [set(x for x in row if x is not None) for row in ids],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="movielens-small")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--models", default="sasrec,als,popularity")
    p.add_argument("--periods", type=int, default=4)
    p.add_argument("--initial", type=float, default=0.6)
    p.add_argument("--retrain-epochs", type=int, default=20)
    p.add_argument("--update-epochs", type=int, default=3)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    started = time.perf_counter()
    load0 = os.getloadavg()
    ds = genrec.load_dataset(args.dataset, data_dir=args.data_dir)
    if not ds.has_timestamps:
        raise SystemExit(f"{args.dataset} has no timestamps: a temporal replay needs them")
    per = periods(ds, args.initial, args.periods)
    frame = ds.interactions
    log(f"{ds!r}; period sizes {np.bincount(per).tolist()}")
    first_items = set(frame.loc[per == 0, "item_id"])
    models = args.models.split(",")
    current: dict[str, dict[str, Any]] = {m: {} for m in models}
    rows: list[dict[str, Any]] = []
    for j in range(1, args.periods + 1):
        before = ds.subset(per < j)
        period = frame[per == j]
        hist_frame = frame[per < j]
        hist = hist_frame.groupby("user_id")["item_id"].apply(list).to_dict()
        targets = {}
        for u, items in period.groupby("user_id")["item_id"]:
            if u in hist:
                t = set(items) - set(hist[u])
                if t:
                    targets[u] = t
        users = sorted(targets)
        all_targets = [i for u in users for i in targets[u]]
        new_share = float(np.mean([i not in first_items for i in all_targets]))
        row: dict[str, Any] = {
            "period": j,
            "n_train_interactions": int(before.n_interactions),
            "n_period_interactions": int(len(period)),
            "n_eval_users": len(users),
            "n_targets": len(all_targets),
            "target_new_item_share": round(new_share, 4),
            "new_users_since_first_block": int(
                len(set(hist_frame["user_id"]) - set(frame.loc[per == 0, "user_id"]))
            ),
            "models": {},
        }
        log(
            f"period {j}: {len(users)} users, {len(all_targets)} targets, "
            f"new-item share {new_share:.3f}"
        )
        for name in models:
            cls = genrec.get_model(name)
            cfg = model_config(name, args, args.dataset)
            res: dict[str, Any] = {}
            cur = current[name]
            # frozen: the first block only
            if "frozen" not in cur:
                t0 = time.perf_counter()
                first = _own_maps(ds.subset(per == 0))
                cur["frozen"] = cls(cls.config_class.from_dict(cfg)).fit(first)
                cur["frozen_seconds"] = time.perf_counter() - t0
            # retrain from scratch on everything before P_j
            t0 = time.perf_counter()
            retrain = cls(cls.config_class.from_dict(cfg)).fit(_own_maps(before))
            retrain_s = time.perf_counter() - t0
            # update: the previous update model + P_{j-1}
            if j == 1:
                upd, upd_s, note = cur["frozen"], 0.0, "the first block's model"
            else:
                new = frame[per == j - 1][["user_id", "item_id", "timestamp"]]
                upd, rep = update_model(cur["update"], new, epochs=args.update_epochs)
                upd_s, note = rep.seconds, rep.note
            cur["update"] = upd
            evals = {
                "frozen": evaluate_period(cur["frozen"], hist, targets, users, args.k),
                "retrain": evaluate_period(retrain, hist, targets, users, args.k),
                "update": evaluate_period(upd, hist, targets, users, args.k),
            }
            ref = evals["frozen"]["lists"]
            for v in VARIANTS:
                e = evals[v]
                overlap = np.mean(
                    [len(a & b) / max(len(a | b), 1) for a, b in zip(e["lists"], ref)]
                )
                rec_new = np.mean(
                    [
                        np.mean([i not in first_items for i in lst]) if lst else 0.0
                        for lst in e["lists"]
                    ]
                )
                res[v] = {
                    "recall@10": round(float(e["recall"].mean()), 4),
                    "ndcg@10": round(float(e["ndcg"].mean()), 4),
                    "overlap_with_frozen@10": round(float(overlap), 4),
                    "recommended_new_item_share": round(float(rec_new), 4),
                }
            res["retrain"]["seconds"] = round(retrain_s, 2)
            res["update"]["seconds"] = round(upd_s, 2)
            res["update"]["how"] = note
            res["frozen"]["seconds"] = 0.0
            res["frozen"]["fit_seconds_once"] = round(cur["frozen_seconds"], 2)
            comp = stats.compare_to_reference({v: evals[v]["ndcg"] for v in VARIANTS}, "retrain")
            res["significance_vs_retrain_ndcg@10"] = {
                v: {"delta": round(c["delta"], 5), "p_adjusted": c["p_adjusted"],
                    "significant": c["significant"]}
                for v, c in comp.items()
            }  # fmt: skip
            row["models"][name] = res
            log(f"  {name}: " + ", ".join(f"{v} {res[v]['ndcg@10']:.4f}" for v in VARIANTS)
                + f"; retrain {retrain_s:.1f}s, update {upd_s:.1f}s")  # fmt: skip
        rows.append(row)
    result = {
        "dataset": args.dataset,
        "args": vars(args),
        "configs": {m: model_config(m, args, args.dataset) for m in models},
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_at_start": load0,
            "load_at_end": os.getloadavg(),
        },  # fmt: skip
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))
        log(f"wrote {args.out}")
    if args.plot:
        plot(result, Path(args.plot))
        log(f"wrote {args.plot}")
    return 0


def _own_maps(ds: Any) -> Any:
    """The dataset with id maps of only its own users and items (what a model trained on it
    at that time would know)."""
    return genrec.Dataset(ds.interactions, ds.items, name=ds.name, has_timestamps=ds.has_timestamps)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    x = [r["period"] for r in rows]
    models = list(rows[0]["models"])
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    styles = {"frozen": ":", "retrain": "-", "update": "--"}
    for i, m in enumerate(models):
        color = f"C{i}"
        for v in VARIANTS:
            ax[0].plot(x, [r["models"][m][v]["ndcg@10"] for r in rows], styles[v], marker="o",
                       color=color, label=f"{m} {v}")  # fmt: skip
        ax[1].plot(x, [max(r["models"][m]["retrain"]["seconds"], 1e-2) for r in rows], "-",
                   marker="o", color=color, label=f"{m} retrain")  # fmt: skip
        ax[1].plot(x, [max(r["models"][m]["update"]["seconds"], 1e-2) for r in rows], "--",
                   marker="o", color=color, label=f"{m} update")  # fmt: skip
    ax[0].set_xlabel("period")
    ax[0].set_ylabel("NDCG@10 on the period")
    ax[0].legend(fontsize=7)
    ax[1].set_yscale("log")
    ax[1].set_xlabel("period")
    ax[1].set_ylabel("seconds to get the model")
    ax[1].legend(fontsize=7)
    fig.suptitle(f"{result['dataset']}: temporal replay, {len(rows)} periods", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
