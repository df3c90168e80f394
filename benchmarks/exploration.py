"""Interest exploration (issue 27, part 1): clusters, next novel cluster, exploration slots.

After "LLMs for User Interest Exploration in Large-scale Recommendation Systems" (Wang et
al., RecSys 2024). Leave-one-out split, everything fitted on the training part only.

1. **Clusters** (``genrec.ranking.clusters``): balanced k-means with ``--n-clusters`` over
   collaborative SVD vectors, text vectors (MiniLM with the ``text`` extra, else TF-IDF) and
   both; a two-level collaborative tree; and the level-1 code of a balanced residual k-means
   semantic-ID codebook over the text vectors. Quality per clustering
   (:func:`~genrec.ranking.clusters.cluster_quality`).
2. **Next novel cluster** (``genrec.ranking.novelty``) with the ``--cluster-source``
   clustering: ``popular``, ``transition``, ``gru`` and (``--lm``) SmolLM2-135M fine-tuned with
   LoRA for ``--lm-steps`` steps (and zero-shot with ``--lm-zero-shot``), top-1/top-5 accuracy
   on the held-out novel transitions of the test split; the LM on a seeded sample of
   ``--lm-users`` of them, and every method is also scored on that same sample. Paired
   t-test of each method against ``popular`` on the per-user hits (Holm).
3. **Exploration slots** (``genrec.ranking.explore``): the ``--base`` model (its shipped
   preset) fitted once, then for each share in ``--shares`` the list of 10 keeps the base
   model's top ``10 - round(10 share)`` and fills the rest from the ``--n-novel`` predicted
   novel clusters (GRU predictor). Recall/NDCG@10, novelty, genre ILD, coverage, distinct
   clusters per list, the share of recommended items outside the user's current clusters,
   the share of hits that come from a novel cluster, and the recall on users whose target is
   in a novel cluster; paired t-tests of every share against share 0 (Holm over shares).

Run (CPU)::

    PYTHONPATH=src python benchmarks/exploration.py --dataset movielens-small \\
        --out docs/measurements/exploration/movielens-small.json \\
        --plot docs/measurements/exploration/movielens-small.png --lm
    PYTHONPATH=src python benchmarks/exploration.py --dataset amazon-beauty \\
        --data-dir ../shared/data/amazon-beauty --out ... --plot ... --lm --lm-users 500
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
from genrec.data.splitting import leave_one_out
from genrec.evaluation import stats
from genrec.ranking.clusters import ItemClusters, cluster_quality, fit_item_clusters
from genrec.ranking.explore import Explore
from genrec.ranking.novelty import NovelClusterPredictor, novel_accuracy


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg} (load {os.getloadavg()[0]:.1f})", flush=True)


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


# ---------------------------------------------------------------------- 1. clusters
def clusters_section(split: Any, args: argparse.Namespace) -> tuple[dict[str, Any], dict]:
    train = split.train
    out: dict[str, Any] = {}
    made: dict[str, ItemClusters] = {}
    specs = [("collaborative", dict(source="collaborative"))]
    if not args.no_text:
        specs += [("text", dict(source="text")), ("both", dict(source="both"))]
    specs += [("collaborative-2level", dict(source="collaborative", levels=2))]
    for name, kw in specs:
        t0 = time.perf_counter()
        k = args.tree_branching if kw.get("levels") == 2 else args.n_clusters
        cl = fit_item_clusters(train, k, seed=args.seed, **kw)
        made[name] = cl
        q = cluster_quality(cl, train)
        q["seconds"] = time.perf_counter() - t0
        q["example_names"] = (cl.names or [])[:5]
        out[name] = _round(q)
        log(f"clusters {name}: {out[name]}")
        if kw.get("levels") == 2:
            qc = cluster_quality(cl.coarse(), train)
            out[name + " (coarse level)"] = _round(qc)
    if not args.no_text:
        from genrec.text.embed import embed_items
        from genrec.tokenizers import get_tokenizer

        t0 = time.perf_counter()
        vec = embed_items(train, progress=False)
        tok = get_tokenizer("rkmeans")(
            n_levels=3, codebook_size=args.n_clusters, balanced=True, seed=args.seed
        )
        cb = tok.fit(vec, item_ids=train.item_map.to_list())
        cl = ItemClusters.from_codebook(cb, train, level=0)
        q = cluster_quality(cl, train)
        q["seconds"] = time.perf_counter() - t0
        out["semantic-id level 1 (rkmeans, MiniLM)"] = _round(q)
        made["semantic-id"] = cl
        log(f"clusters semantic-id: {out['semantic-id level 1 (rkmeans, MiniLM)']}")
    return out, made


# ---------------------------------------------------------------------- 2. novel clusters
def novelty_section(
    split: Any, clusters: ItemClusters, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, NovelClusterPredictor]]:
    out: dict[str, Any] = {"window": args.window, "cluster_source": args.cluster_source}
    preds: dict[str, NovelClusterPredictor] = {}
    methods = ["popular", "transition", "gru"]
    full: dict[str, dict[str, Any]] = {}
    for m in methods:
        t0 = time.perf_counter()
        pred = NovelClusterPredictor(
            m, window=args.window, epochs=args.gru_epochs, seed=args.seed, num_threads=None
        ).fit(split.train, clusters)
        fit_s = time.perf_counter() - t0
        acc = novel_accuracy(pred, split, ks=(1, 5))
        full[m] = acc
        preds[m] = pred
        out[m] = _round({
            "top1": acc["top1"], "top5": acc["top5"], "n_users": acc["n_users"],
            "fit_seconds": fit_s, "n_train_examples": pred.n_train_examples_,
        })  # fmt: skip
        log(f"novel {m}: {out[m]}")
    any_acc = next(iter(full.values()))
    out["n_test_users"] = any_acc["n_holdout"]
    out["n_novel_test_users"] = any_acc["n_novel"]
    out["novel_share"] = round(any_acc["novel_share"], 4)
    out["random_top1"] = round(any_acc["random_top1"], 4)
    out["significance_vs_popular"] = _tests({m: full[m]["hits"] for m in methods}, "popular")
    if args.lm:
        sample = min(args.lm_users, any_acc["n_novel"])
        lm_rows: dict[str, dict[int, np.ndarray]] = {}
        variants = [("lm", args.lm_steps)]
        if args.lm_zero_shot:
            variants.insert(0, ("lm-zero-shot", 0))
        for name, steps in variants:
            t0 = time.perf_counter()
            pred = NovelClusterPredictor(
                "lm", window=args.window, lm_steps=steps, lm_batch_size=args.lm_batch,
                seed=args.seed, num_threads=None,
            ).fit(split.train, clusters)  # fmt: skip
            fit_s = time.perf_counter() - t0
            acc = novel_accuracy(pred, split, ks=(1, 5), max_users=sample, seed=args.seed)
            lm_rows[name] = acc["hits"]
            out[name] = _round({
                "top1": acc["top1"], "top5": acc["top5"], "n_users": acc["n_users"],
                "fit_seconds": fit_s, "train_seconds": pred.lm_.train_seconds_,
                "lora_steps": steps, "batch_size": args.lm_batch,
                "first_losses": [round(x, 3) for x in pred.lm_.train_losses_[:5]],
                "last_losses": [round(x, 3) for x in pred.lm_.train_losses_[-5:]],
                "predict_seconds": acc["predict_seconds"],
            })  # fmt: skip
            log(f"novel {name}: {out[name]}")
            del pred
        same = {}
        for m in methods:  # the cheap methods on the LM's user sample
            acc = novel_accuracy(preds[m], split, ks=(1, 5), max_users=sample, seed=args.seed)
            same[m] = {"top1": round(acc["top1"], 4), "top5": round(acc["top5"], 4)}
            lm_rows[m] = acc["hits"]
        out["on_lm_sample"] = same
        out["lm_sample_users"] = int(sample)
        out["significance_on_lm_sample_vs_popular"] = _tests(lm_rows, "popular")
    return out, preds


def _tests(hits: dict[str, dict[int, np.ndarray]], ref: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for k in (1, 5):
        arrays = {m: h[k] for m, h in hits.items()}
        comp = stats.compare_to_reference(arrays, ref)
        res[f"top{k}"] = {
            m: {"delta": round(r["delta"], 4), "p_adjusted": r["p_adjusted"],
                "significant": r["significant"]}
            for m, r in comp.items() if m != ref
        }  # fmt: skip
    return res


# ---------------------------------------------------------------------- 3. exploration
def exploration_section(
    split: Any, clusters: ItemClusters, predictor: NovelClusterPredictor, args: argparse.Namespace
) -> dict[str, Any]:
    spec = BenchmarkSpec(dataset=args.dataset)
    cfg, source = resolve_config(args.base, args.dataset, spec)
    cls = genrec.get_model(args.base)
    t0 = time.perf_counter()
    base = cls(cls.config_class.from_dict({**cfg, "seed": args.seed})).fit(split.train, split.valid)
    log(f"base {args.base} fitted in {time.perf_counter() - t0:.0f} s ({source})")
    test = split.test
    hist = test.history.histories()
    batch = hist.batch(test.users)
    ctx = predictor.contexts(batch)
    labels = clusters.labels
    first = np.asarray([test.targets.indices[test.targets.indptr[r]] for r in range(len(test))])
    tgt_c = labels[first]
    novel_target = np.array([c >= 0 and c not in cx for c, cx in zip(tgt_c, ctx)])
    pop = np.asarray(base.item_popularity_, dtype=np.float64)
    n_train_users = base.user_map.size
    rows: dict[str, Any] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    for share in args.shares:
        model = Explore.from_fitted(
            base, clusters, predictor, share=share, n_novel=args.n_novel, window=args.window,
            n_clusters=clusters.n_clusters,
        )  # fmt: skip
        t0 = time.perf_counter()
        res = genrec.evaluate(model, split, ks=[10])
        sec = time.perf_counter() - t0
        ranked = res.ranked[:, :10]
        rec_c = np.where(ranked > 0, labels[ranked], -1)
        outside = np.array(
            [np.mean([c not in set(cx) for c in row if c >= 0]) for row, cx in zip(rec_c, ctx)]
        )
        distinct = np.array([len(set(row[row >= 0].tolist())) for row in rec_c])
        novelty_u = np.array(
            [np.mean(-np.log2(np.maximum(pop[row[row > 0]], 1) / n_train_users)) for row in ranked]
        )
        hit = res.per_user["recall@10"] > 0
        key = f"{share:g}"
        per_user[key] = {
            "recall@10": res.per_user["recall@10"],
            "ndcg@10": res.per_user["ndcg@10"],
            "novelty@10": novelty_u,
            "clusters_per_list": distinct.astype(float),
            "outside_context@10": outside,
        }
        m = res.metrics
        rows[key] = _round({
            "share": share,
            "recall@10": m["recall@10"],
            "ndcg@10": m["ndcg@10"],
            "novelty@10": m["novelty@10"],
            "ild_genre@10": m.get("ild_genre@10"),
            "coverage@10": m["coverage@10"],
            "clusters_per_list": float(distinct.mean()),
            "outside_context@10": float(outside.mean()),
            "novel_hit_share": float(hit[novel_target].sum() / max(hit.sum(), 1)),
            "recall@10_novel_target_users": float(res.per_user["recall@10"][novel_target].mean()),
            "recall@10_familiar_target_users": float(
                res.per_user["recall@10"][~novel_target & (tgt_c >= 0)].mean()
            ),
            "recommend_seconds": sec,
        })  # fmt: skip
        log(f"share {share}: {rows[key]}")
    sig: dict[str, Any] = {}
    ref = f"{args.shares[0]:g}"
    for metric in per_user[ref]:
        comp = stats.compare_to_reference({s: per_user[s][metric] for s in per_user}, ref)
        sig[metric] = {
            s: {"delta": round(r["delta"], 5), "p_adjusted": r["p_adjusted"],
                "significant": r["significant"]}
            for s, r in comp.items() if s != ref
        }  # fmt: skip
    return {
        "base": args.base,
        "base_config_source": source,
        "n_test_users": int(len(test)),
        "n_novel_target_users": int(novel_target.sum()),
        "rows": rows,
        "significance_vs_share_0": sig,
        "n_novel": args.n_novel,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(result["exploration"]["rows"].values())
    x = [r["share"] for r in rows]
    base = rows[0]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    accuracy = (
        ("recall@10", "Recall@10"),
        ("ndcg@10", "NDCG@10"),
        ("recall@10_novel_target_users", "Recall@10, novel-target users"),
    )
    for key, label in accuracy:
        ax[0].plot(
            x, [r[key] / base[key] if base[key] else np.nan for r in rows], "o-", label=label
        )
    ax[0].axhline(1.0, color="grey", lw=0.5)
    ax[0].set_xlabel("exploration share of the 10 slots")
    ax[0].set_ylabel("relative to share 0")
    ax[0].set_title("accuracy")
    ax[0].legend(fontsize=8)
    for key, label in (("novelty@10", "novelty"), ("ild_genre@10", "genre ILD"),
                       ("coverage@10", "coverage"), ("clusters_per_list", "clusters per list"),
                       ("outside_context@10", "items outside current clusters")):  # fmt: skip
        if base.get(key):
            ax[1].plot(x, [r[key] / base[key] for r in rows], "o-", label=label)
    ax[1].axhline(1.0, color="grey", lw=0.5)
    ax[1].set_xlabel("exploration share of the 10 slots")
    ax[1].set_title("beyond accuracy")
    ax[1].legend(fontsize=8)
    fig.suptitle(
        f"{result['dataset']}: {result['exploration']['base']} + exploration slots "
        f"({result['clusters_used']['n_clusters']} clusters)", fontsize=10,
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="movielens-small")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n-clusters", type=int, default=32)
    p.add_argument("--tree-branching", type=int, default=8, help="children per node, 2 levels")
    p.add_argument("--cluster-source", default="collaborative",
                   choices=["collaborative", "text", "both", "semantic-id"])  # fmt: skip
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--gru-epochs", type=int, default=5)
    p.add_argument("--lm", action="store_true", help="also SmolLM2-135M + LoRA")
    p.add_argument("--lm-zero-shot", action="store_true")
    p.add_argument("--lm-steps", type=int, default=150)
    p.add_argument("--lm-batch", type=int, default=8)
    p.add_argument("--lm-users", type=int, default=500)
    p.add_argument("--base", default="ease")
    p.add_argument("--shares", default="0,0.1,0.2,0.3,0.5")
    p.add_argument("--n-novel", type=int, default=2)
    p.add_argument("--no-text", action="store_true", help="skip text clusters (no MiniLM)")
    p.add_argument("--skip", default="", help="sections to skip: clusters,novelty,exploration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    args.shares = [float(s) for s in args.shares.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()
    load0 = os.getloadavg()
    ds = genrec.load_dataset(args.dataset, data_dir=args.data_dir)
    split = leave_one_out(ds)
    log(f"{ds!r}")
    result: dict[str, Any] = {
        "dataset": args.dataset,
        "args": {k: v for k, v in vars(args).items()},
        "split": split.describe(),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_at_start": load0,
        },  # fmt: skip
    }
    made: dict[str, ItemClusters] = {}
    if "clusters" not in skip:
        result["clusters"], made = clusters_section(split, args)
    src = args.cluster_source
    clusters = made.get(src) or fit_item_clusters(
        split.train, args.n_clusters, source=src, seed=args.seed, names=True
    )
    if clusters.names is None:
        from genrec.ranking.clusters import cluster_names

        clusters.names = cluster_names(clusters, split.train)
    result["clusters_used"] = {"source": src, "n_clusters": clusters.n_clusters,
                               "names": clusters.names}  # fmt: skip
    preds: dict[str, NovelClusterPredictor] = {}
    if "novelty" not in skip:
        result["novelty"], preds = novelty_section(split, clusters, args)
    if "exploration" not in skip:
        pred = preds.get("gru") or NovelClusterPredictor(
            "gru", window=args.window, epochs=args.gru_epochs, seed=args.seed, num_threads=None
        ).fit(split.train, clusters)
        result["exploration"] = exploration_section(split, clusters, pred, args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_at_end"] = os.getloadavg()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))
        log(f"wrote {args.out}")
    if args.plot and "exploration" in result:
        plot(result, Path(args.plot))
        log(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
