"""Cold-start items: can a model recommend items that nobody interacted with in training?

Protocol (:func:`genrec.data.splitting.cold_item_split`): the newest ``--share`` (default
5 %) of the items with interactions become *cold* (by first-interaction time; by item-id order
when the data's timestamps only encode order, e.g. the P5 Amazon files) and lose every
training interaction. Test users are those whose first cold interaction follows at least one
non-cold one; the target is that cold item, the history the user's earlier interactions, and
the user's later interactions are dropped. Validation (early stopping) is warm-item
leave-one-out on the training part. The cold items stay in the catalogue with their text.
Full ranking over the whole catalogue, seen items excluded, pessimistic ties (``evaluate``).

Models (``--models``, default all four):

* ``tiger``: semantic IDs from a tokenizer fitted on *every* item's text vector (cold items
  included, no interactions: the transductive setting of TIGER Sec. 4.3), so cold items have
  code tuples in the trie from the start and can be decoded although the generator never saw
  them as targets. By default a small CPU configuration (``TIGER_CPU`` below: embedding_dim 64,
  2 + 2 layers, 20 history items, hkmeans 3 x 256 codes + collision level); ``--paper`` uses
  the dataset's preset (``configs/<dataset>/tiger.yaml``, the paper's 4 + 4 layers) instead,
  and ``--config tiger=PATH`` a config file (e.g. ``configs/amazon-beauty/variants/
  tiger-cpu.yaml``). ``--budget-minutes`` replaces the file's ``time_budget_minutes``.
  ``--tiger-cold-slots 0.1,0.2`` adds rows for the fitted TIGER with those ``cold_slots``
  (the paper's epsilon: cold items sharing a generated item's code prefix fill up to that
  share of the list; ``--tiger-prefix-levels`` sets how many levels must match, 0 = all but
  the collision level), without retraining; ``--save-tiger DIR`` keeps the model.
* ``textknn``: cosine similarity of item text embeddings to the history (no interactions
  needed, the natural content baseline).
* ``sasrec``: the preset (full-softmax CE). Cold items keep their initial embeddings, and the
  softmax pushes their scores down as negatives of every training step: it cannot rank them.
* ``popularity``: cold items have zero training popularity: never recommended.

Printed per model: Recall@K and NDCG@K over the cold-target users, the share of recommended
top-K slots that go to cold items (``cold_share``; the catalogue's cold share is printed as
the base rate), fit seconds, and for TIGER its :meth:`~genrec.models.tiger.TIGER.diagnostics`
on ``--diagnostic-users`` test users. ``--no-valid`` trains the neural models for their
budget without validation (validating TIGER's beam search on 20k+ users each epoch costs
minutes on CPU). Chance level (K random cold items) is ``K / n_cold``.
``--out FILE`` writes everything as JSON.

Run (CPU, one torch thread)::

    PYTHONPATH=src python benchmarks/cold_start.py --dataset movielens-small \\
        --budget-minutes 10 --out docs/measurements/cold_start_movielens_small.json
    PYTHONPATH=src python benchmarks/cold_start.py --dataset amazon-beauty \\
        --data-dir ../shared/data/amazon-beauty --budget-minutes 15

Measured numbers are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# small CPU TIGER for the tiny-budget runs (override any field with --set tiger.KEY=VALUE)
TIGER_CPU: dict[str, Any] = {
    "codebook": "hkmeans",  # rkmeans collapses on MovieLens titles (85% collisions)
    "n_levels": 4,
    "codebook_size": 256,
    "embedding_dim": 64,
    "n_encoder_layers": 2,
    "n_decoder_layers": 2,
    "n_heads": 4,
    "head_dim": 16,
    "ffn_dim": 256,
    "dropout": 0.1,
    "max_seq_len": 20,
    "n_user_buckets": 2000,
    "num_beams": 20,
    "lr": 3e-3,
    "warmup_steps": 100,
    "batch_size": 256,
    "epochs": 30,
    "patience": 3,
}


def _parse_set(items: list[str]) -> dict[str, dict[str, Any]]:
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, _, value = item.partition("=")
        model, _, field_name = key.partition(".")
        if not field_name or not _:
            raise SystemExit(f"--set expects MODEL.KEY=VALUE, got {item!r}")
        out.setdefault(model, {})[field_name] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="movielens-small")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--share", type=float, default=0.05, help="share of items held out as cold")
    p.add_argument("--models", default="popularity,textknn,sasrec,tiger")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-minutes", type=float, default=10.0, help="per neural model")
    p.add_argument("--paper", action="store_true", help="TIGER: the dataset preset as is")
    p.add_argument("--diagnostic-users", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--no-valid",
        action="store_true",
        help="train neural models for the budget without validation (no early stopping)",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="config YAML for a model (replaces its preset; for tiger also TIGER_CPU)",
    )
    p.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE")
    p.add_argument(
        "--tiger-cold-slots",
        default="",
        metavar="EPS,...",
        help="after fitting TIGER, also evaluate it with each of these cold_slots (the "
        "paper's epsilon, e.g. 0.1,0.2,0.4), without retraining",
    )
    p.add_argument(
        "--tiger-prefix-levels",
        default="0",
        metavar="N,...",
        help="cold_prefix_levels for the --tiger-cold-slots rows (0 = all but the last level)",
    )
    p.add_argument("--save-tiger", default=None, metavar="DIR", help="save the fitted TIGER")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    config_paths: dict[str, str] = {}
    for pair in args.config:
        model, sep, path = pair.partition("=")
        if not sep or not model or not path:
            raise SystemExit(f"--config expects MODEL=PATH, got {pair!r}")
        if not Path(path).is_file():
            raise SystemExit(f"--config {model}: no such file {path!r}")
        config_paths[model] = path
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        eps_grid = [float(x) for x in args.tiger_cold_slots.split(",") if x.strip()]
        prefix_grid = [int(x) for x in args.tiger_prefix_levels.split(",") if x.strip()]
    except ValueError as exc:
        raise SystemExit(f"--tiger-cold-slots / --tiger-prefix-levels: {exc}") from None
    if any(not 0.0 < e <= 1.0 for e in eps_grid):
        raise SystemExit(f"--tiger-cold-slots values must be in (0, 1], got {eps_grid}")
    if eps_grid and "tiger" not in models:
        raise SystemExit("--tiger-cold-slots needs tiger in --models")
    for model in config_paths:
        if model not in models:
            raise SystemExit(f"--config names model {model!r}, which is not in --models")
    if args.paper and "tiger" in config_paths:
        raise SystemExit("--paper and --config tiger=PATH both choose TIGER's config: pick one")

    import torch

    from genrec.bench.benchmark import BenchmarkSpec, resolve_config
    from genrec.data.loaders import load_dataset
    from genrec.data.splitting import cold_item_split
    from genrec.registry import get_model

    torch.set_num_threads(args.threads)
    if args.data_dir and not Path(args.data_dir).exists():
        print(f"skipped: {args.data_dir} does not exist")
        return 0
    t0 = time.perf_counter()
    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    split = cold_item_split(ds, new_item_share=args.share)
    cold = split.cold_mask()
    n_cold = int(cold.sum())
    info = split.describe()
    print(
        f"{ds}: {n_cold} cold items ({info['cold_by']}), {info['n_test_users']} cold-target "
        f"test users, {info['n_train_interactions']} training interactions; "
        f"chance recall@{args.k} = {min(args.k / n_cold, 1.0):.4f}",
        flush=True,
    )
    overrides = _parse_set(args.set)
    rows: dict[str, dict[str, Any]] = {}
    for name in models:
        extra: dict[str, Any] = {}
        cls = get_model(name)
        if hasattr(cls.config_class, "time_budget_minutes"):
            extra = {
                "time_budget_minutes": args.budget_minutes,
                "device": args.device,
                "progress": False,
            }
        if name == "tiger" and not args.paper and name not in config_paths:
            extra = {**TIGER_CPU, **extra}
        if name == "textknn":
            extra["progress"] = False
        spec = BenchmarkSpec(
            dataset=args.dataset,
            config_paths={name: config_paths[name]} if name in config_paths else {},
            overrides={name: {**extra, "seed": args.seed, **overrides.get(name, {})}},
        )
        cfg, source = resolve_config(name, args.dataset, spec)
        print(f"{name}: fitting (preset {source})", flush=True)
        model = cls(cls.config_class.from_dict(cfg)).fit(
            split.train, valid=None if args.no_valid else split.valid
        )
        row = {
            **_metrics(model, split, cold, args.k),
            "fit_seconds": round(float(model.fit_seconds_ or 0.0), 1),
            "config": cfg,
        }
        training = getattr(model, "training_info_", None)
        if training:
            row["epochs_run"] = training.get("epochs_run")
            row["out_of_time"] = training.get("out_of_time")
        diag = model.diagnostics(split, sample_users=args.diagnostic_users, seed=args.seed)
        if diag:
            row["diagnostics"] = diag
        rows[name] = row
        _write(args, info, rows)  # after every model: a later crash keeps the earlier rows
        _print_row(name, row, args.k)
        if name == "tiger":
            if args.save_tiger:
                model.save(args.save_tiger)
            for levels in prefix_grid if eps_grid else []:
                for eps in eps_grid:
                    model.config = model.config.replace(cold_slots=eps, cold_prefix_levels=levels)
                    key = f"tiger[cold_slots={eps:g},prefix_levels={levels}]"
                    rows[key] = {
                        **_metrics(model, split, cold, args.k),
                        "fit_seconds": row["fit_seconds"],
                        "config": {**cfg, "cold_slots": eps, "cold_prefix_levels": levels},
                    }
                    _write(args, info, rows)
                    _print_row(key, rows[key], args.k)
    print()
    print(f"| model | recall@{args.k} | ndcg@{args.k} | cold share of top-{args.k} | fit s |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row[f'recall@{args.k}']:.4f} | {row[f'ndcg@{args.k}']:.4f} | "
            f"{row['cold_share']:.3f} | {row['fit_seconds']} |"
        )
    print(
        f"\ncatalogue cold share {n_cold / ds.n_items:.3f}; total {time.perf_counter() - t0:.0f} s"
    )
    if "tiger" in rows and "diagnostics" in rows["tiger"]:
        d = rows["tiger"]["diagnostics"]
        print("tiger diagnostics: " + ", ".join(f"{k}={v:.4g}" for k, v in d.items()))
    _write(args, info, rows)
    return 0


def _metrics(model: Any, split: Any, cold: np.ndarray, k: int) -> dict[str, Any]:
    """Recall/NDCG@k over the cold-target users and the cold share of the top-k slots."""
    from genrec.evaluation.evaluator import evaluate

    res = evaluate(model, split, ks=[k], beyond_accuracy=False)
    top = res.ranked[:, :k]
    filled = top > 0
    return {
        f"recall@{k}": res.metrics[f"recall@{k}"],
        f"ndcg@{k}": res.metrics[f"ndcg@{k}"],
        "cold_share": float(cold[top][filled].mean()) if filled.any() else 0.0,
        "recommend_seconds": round(res.seconds, 1),
    }


def _print_row(name: str, row: dict[str, Any], k: int) -> None:
    print(
        f"{name}: recall@{k} {row[f'recall@{k}']:.4f}  ndcg@{k} {row[f'ndcg@{k}']:.4f}  "
        f"cold_share {row['cold_share']:.3f}  fit {row['fit_seconds']} s",
        flush=True,
    )


def _write(args: argparse.Namespace, info: dict[str, Any], rows: dict[str, Any]) -> None:
    if args.out:
        out = {
            "dataset": args.dataset,
            "split": info,
            "k": args.k,
            "budget_minutes": args.budget_minutes,
            "threads": args.threads,
            "device": args.device,
            "command": " ".join(["python", "benchmarks/cold_start.py", *sys.argv[1:]]),
            "models": rows,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
