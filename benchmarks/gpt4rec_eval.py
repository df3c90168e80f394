"""GPT4Rec as a recommender (issue 27, part 4b): SmolLM2 queries + BM25 vs text k-NN.

Leave-one-out split; every model is fitted on the training part and scored by the standard
evaluator (full ranking, history excluded, targets lose ties) on the same seeded sample of
``--users`` test users (the LM writes ``n_queries`` beams per user on a CPU, seconds each).

Models: ``gpt4rec`` with SmolLM2-135M (zero-shot), ``gpt4rec`` after ``--finetune-steps``
LoRA steps on (history titles -> next title) pairs (``--finetune-steps 0`` skips it),
``gpt4rec`` without an LM (the history items' texts as BM25 queries), ``textknn`` (MiniLM
item vectors, the shipped preset), EASE and popularity for scale. Paired t-tests of every
model against textknn on per-user NDCG@10 and Recall@10 (Holm). A few users' generated
queries are printed and stored, next to their history and target titles.

Run (CPU)::

    PYTHONPATH=src python benchmarks/gpt4rec_eval.py --dataset amazon-beauty \\
        --data-dir ../shared/data/amazon-beauty --users 200 \\
        --out docs/measurements/gpt4rec/beauty.json
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


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg} (load {os.getloadavg()[0]:.1f})", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--n-queries", type=int, default=4)
    p.add_argument("--finetune-steps", type=int, default=0)
    p.add_argument("--finetune-batch", type=int, default=4)
    p.add_argument("--examples", type=int, default=5)
    p.add_argument("--skip", default="", help="comma-separated model labels to skip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    load0 = os.getloadavg()
    started = time.perf_counter()
    ds = genrec.load_dataset(args.dataset, data_dir=args.data_dir)
    split = leave_one_out(ds)
    holdout = split.test.sample(args.users, seed=args.seed)
    log(f"{ds!r}; {len(holdout)} sampled test users")
    spec = BenchmarkSpec(dataset=args.dataset)
    g = {"n_queries": args.n_queries, "seed": args.seed}
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("popularity", "popularity", {}),
        ("ease", "ease", resolve_config("ease", args.dataset, spec)[0]),
        ("textknn", "textknn", resolve_config("textknn", args.dataset, spec)[0]),
        ("gpt4rec-no-lm", "gpt4rec", {**g, "lm": "none"}),
        ("gpt4rec-smollm2", "gpt4rec", {**g, "lm": "smollm2"}),
    ]
    if args.finetune_steps:
        runs.append(
            ("gpt4rec-smollm2-lora", "gpt4rec", {**g, "lm": "smollm2",
             "finetune_steps": args.finetune_steps, "finetune_batch": args.finetune_batch})
        )  # fmt: skip
    rows: dict[str, Any] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {}
    examples: dict[str, Any] = {}
    batch = holdout.history.histories().batch(holdout.users[: args.examples])
    titles = ds.item_titles()
    for label, name, cfg in runs:
        if label in skip:
            continue
        cls = genrec.get_model(name)
        t0 = time.perf_counter()
        model = cls(cls.config_class.from_dict(cfg)).fit(split.train)
        fit_s = time.perf_counter() - t0
        res = genrec.evaluate(model, holdout, ks=[10], beyond_accuracy=False, batch_size=64)
        m = res.metrics
        rows[label] = {
            "recall@10": m["recall@10"],
            "ndcg@10": m["ndcg@10"],
            "hit_rate@10": m["hit_rate@10"],
            "ci95_ndcg@10": stats.bootstrap_ci(res.per_user["ndcg@10"]),
            "fit_seconds": round(fit_s, 1),
            "recommend_seconds": round(res.seconds, 1),
            "seconds_per_user": round(res.seconds / len(holdout), 2),
            "config": model.config.to_dict(),
        }
        if label.startswith("gpt4rec") and "finetune_losses" in (model.training_info_ or {}):
            fl = model.training_info_["finetune_losses"]
            rows[label]["finetune_losses_first_last"] = [fl[:5], fl[-5:]]
        per_user[label] = {k: res.per_user[k] for k in ("ndcg@10", "recall@10")}
        log(f"{label}: {rows[label]}")
        if name == "gpt4rec":
            qs = model.queries(batch)
            for r, u in enumerate(holdout.users[: args.examples]):
                seq = batch.sequence(r)
                tgt = holdout.targets.indices[holdout.targets.indptr[r]]
                ex = examples.setdefault(int(u), {
                    "history": [str(titles[i]) for i in seq[-5:]],
                    "target": str(titles[tgt]),
                })  # fmt: skip
                ex[label] = qs[r]
        del model
    sig = {}
    if "textknn" in per_user:
        for key in ("ndcg@10", "recall@10"):
            comp = stats.compare_to_reference({k: v[key] for k, v in per_user.items()}, "textknn")
            sig[key] = {
                k: {"delta": round(c["delta"], 5), "p_adjusted": c["p_adjusted"],
                    "significant": c["significant"]}
                for k, c in comp.items()
            }  # fmt: skip
    out = {
        "dataset": args.dataset,
        "args": vars(args),
        "n_users": int(len(holdout)),
        "rows": rows,
        "significance_vs_textknn": sig,
        "examples": examples,
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
        Path(args.out).write_text(json.dumps(out, indent=2, default=float))
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
