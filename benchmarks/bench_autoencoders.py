"""Speed and memory of the auto-encoder, diffusion and adversarial recommenders.

1. Speed (``--dataset``, default ``movielens-small``): for every model, seconds per training
   epoch (mean over ``--epochs`` epochs, no validation) and seconds to score and rank all
   users (top-10 through ``recommend``), next to EASE's fit and scoring time in the same run
   and on the same data (leave-one-out training split). Presets from ``configs/<dataset>/``
   are used when present.
2. Peak memory, each measurement in a fresh subprocess, reported as the child's peak
   resident set size (``VmHWM`` of ``/proc/self/status``, falling back to ``ru_maxrss``; the
   whole process including Python, torch and the data, not tracemalloc, which misses
   torch's allocator):
   * Amazon Beauty (if ``--beauty-dir`` exists): load + 1 training epoch + scoring 4,096
     users (scoring runs in batches of 1,024, so more users do not raise the peak);
   * a synthetic 100,000-item catalogue (2,000 users x 20 items): 1 training epoch + scoring
     a batch of 256 users. EASE is skipped there: its dense 100k x 100k item matrix
     (40 GB in float32) is exactly what these models avoid.

3. ``--ab FIELD``: the same preset, seed and epochs trained twice in this process, with the
   boolean config field ``FIELD`` off and on, for every model that has it:
   ``--ab sparse_input`` (Mult-VAE, Mult-DAE, RecVAE: the first layer computed from the
   rows' items only, the default, against the dense ``(B, n_items)`` product) or ``--ab
   fused_adamw`` (every neural model: torch's fused AdamW, the default, against its default
   loop). Printed: seconds per epoch of each, their ratio, and Recall@10 / NDCG@10 on the
   test split after the same epochs (the two sides differ only by random draws and float
   rounding). The load average and thread count are printed beside the times.

Run: ``PYTHONPATH=src python benchmarks/bench_autoencoders.py [--dataset movielens-100k
--data-dir ../shared/data/movielens-100k] [--models multvae,diffrec] [--skip-memory]``.
Threads: ``torch.set_num_threads(--threads)`` (default 1, the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

MODELS = "multvae,multdae,recvae,cvae,diffrec,tdiffrec,ldiffrec,irgan"
ROOT = Path(__file__).resolve().parents[1]


def _config(name: str, dataset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    from genrec.config import load_yaml
    from genrec.registry import get_model

    preset = ROOT / "configs" / dataset / f"{name}.yaml"
    cfg = load_yaml(preset) if preset.is_file() else {}
    names = get_model(name).config_class.field_names()
    return {**cfg, **{k: v for k, v in overrides.items() if k in names}}


def _load_split(args: argparse.Namespace) -> tuple[Any, Any]:
    """``--dataset`` (``--data-dir``) and its leave-one-out split."""
    import genrec
    from genrec.data.loaders import load_dataset

    kwargs = {"data_dir": args.data_dir} if args.data_dir else {}
    ds = load_dataset(args.dataset, **kwargs)
    return ds, genrec.split_dataset(ds, "loo")


def speed(args: argparse.Namespace) -> None:
    import genrec

    ds, split = _load_split(args)
    train = split.train
    users = train.user_map.external_ids
    print(f"{ds!r}; {torch.get_num_threads()} torch thread(s)")
    t0 = time.perf_counter()
    ease = genrec.get_model("ease")(**_config("ease", args.dataset, {})).fit(train)
    ease_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ease.recommend(users, k=10)
    ease_score = time.perf_counter() - t0
    print(f"{'model':10s} {'s/epoch':>9s} {'x EASE fit':>10s} {'score all':>10s} {'x EASE':>7s}")
    print(f"{'ease':10s} {ease_fit:9.2f} {1.0:10.2f} {ease_score:10.2f} {1.0:7.2f}  (fit)")
    common = {"epochs": args.epochs, "progress": False, "device": "cpu", "patience": 0}
    for name in args.models.split(","):
        extra = {"pretrain_epochs": 1} if name == "irgan" else {}
        model = genrec.get_model(name)(**_config(name, args.dataset, {**common, **extra}))
        model.fit(train)
        per_epoch = float(np.mean([h["seconds"] for h in model.training_history_]))
        t0 = time.perf_counter()
        model.recommend(users, k=10)
        score = time.perf_counter() - t0
        print(
            f"{name:10s} {per_epoch:9.2f} {per_epoch / ease_fit:10.2f} {score:10.2f} "
            f"{score / ease_score:7.2f}"
        )


def ab(args: argparse.Namespace) -> None:
    """Seconds per epoch and quality with the boolean field ``args.ab`` off and on."""
    import os

    import genrec

    ds, split = _load_split(args)
    print(f"{ds!r}; {torch.get_num_threads()} torch thread(s); {args.epochs} epoch(s)")
    common = {"epochs": args.epochs, "progress": False, "device": "cpu", "patience": 0}
    print(f"{'model':9s} {args.ab:6s} {'s/epoch':>8s} {'R@10':>7s} {'N@10':>7s}  load")
    for name in args.models.split(","):
        if args.ab not in genrec.get_model(name).config_class.field_names():
            print(f"{name:9s} (no {args.ab} option)")
            continue
        seconds = {}
        for on in (False, True):
            cfg = _config(name, args.dataset, {**common, args.ab: on})
            model = genrec.get_model(name)(**cfg, seed=0).fit(split.train)
            seconds[on] = float(np.mean([h["seconds"] for h in model.training_history_]))
            res = genrec.evaluate(
                model, split, ks=(10,), metrics=("recall", "ndcg"), beyond_accuracy=False
            )
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(
                f"{name:9s} {'on' if on else 'off':6s} {seconds[on]:8.2f} "
                f"{res.metrics['recall@10']:7.4f} {res.metrics['ndcg@10']:7.4f}  {load}"
            )
        ratio = seconds[False] / seconds[True]
        print(f"{name:9s} {args.ab} off / on seconds per epoch: {ratio:.2f}x")


def synthetic_catalogue(n_items: int, n_users: int, per_user: int, seed: int = 0):
    """``n_users`` users with ``per_user`` Zipf-popular items each, over ``n_items`` items
    (all of them in the id map, so every model scores the full catalogue)."""
    import genrec
    from genrec.data.dataset import IdMap

    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = (rng.zipf(1.3, size=len(users)) - 1) % n_items
    frame = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": np.arange(len(users))})
    return genrec.Dataset(
        frame, name="synthetic-100k", item_map=IdMap.from_values(np.arange(n_items))
    )


def child(args: argparse.Namespace) -> None:
    """One memory measurement (runs in its own process); prints a JSON line."""
    import genrec
    from genrec.data.loaders import load_dataset

    t0 = time.perf_counter()
    if args.child_data == "beauty":
        ds = load_dataset("amazon-beauty", data_dir=args.beauty_dir)
        train = genrec.split_dataset(ds, "loo").train
        users = train.user_map.external_ids[:4096]  # bounded runtime; batches bound memory
        dataset_name = "amazon-beauty"
    else:
        train = synthetic_catalogue(100_000, 2_000, 20)
        users = train.user_map.external_ids[:256]
        dataset_name = "none"
    name = args.child
    extra: dict[str, Any] = {"epochs": 1, "progress": False, "device": "cpu", "patience": 0}
    if name == "irgan":
        extra["pretrain_epochs"] = 0
    kwargs: dict[str, Any] = {}
    if name == "cvae" and args.child_data != "beauty":
        kwargs["item_vectors"] = np.random.default_rng(0).normal(size=(train.n_items, 16))
    cfg = _config(name, dataset_name, extra) if name != "ease" else _config(name, dataset_name, {})
    model = genrec.get_model(name)(cfg, **kwargs)
    model.fit(train)
    model.recommend(users, k=10)
    print(
        json.dumps(
            {"model": name, "peak_rss_mb": peak_rss_mb(), "seconds": time.perf_counter() - t0}
        )
    )


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB: ``VmHWM`` from ``/proc/self/status``
    (reset by ``exec``), else ``ru_maxrss``, which Linux carries over from the forking
    parent's resident size and so over-reports children of a large parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # KiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(args: argparse.Namespace) -> None:
    runs = []
    if args.memory_data == "synthetic":
        pass
    elif Path(args.beauty_dir).exists():
        runs += [("beauty", m) for m in ["ease", *args.models.split(",")]]
    else:
        print(f"(no Amazon Beauty at {args.beauty_dir}: skipped)")
    runs += [("synthetic", m) for m in args.models.split(",")]
    print("peak memory: VmHWM (peak RSS) of a fresh process (load + 1 epoch + scoring)")
    print(f"{'data':10s} {'model':10s} {'peak RSS MB':>12s} {'seconds':>8s}")
    for data, name in runs:
        cmd = [sys.executable, __file__, "--child", name, "--child-data", data]
        cmd += ["--beauty-dir", args.beauty_dir, "--threads", str(args.threads)]
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.child_timeout, check=True
            )
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{data:10s} {name:10s} {rec['peak_rss_mb']:12.0f} {rec['seconds']:8.1f}")
        except subprocess.TimeoutExpired:
            print(f"{data:10s} {name:10s} {'timeout':>12s} {args.child_timeout:8.0f}")
        except subprocess.CalledProcessError as exc:
            last = (exc.stderr or "").strip().splitlines()[-1:] or ["?"]
            print(f"{data:10s} {name:10s} {'failed':>12s}  {last[0][:80]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="movielens-small")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--models", default=MODELS)
    p.add_argument("--epochs", type=int, default=2, help="training epochs timed per model")
    p.add_argument("--beauty-dir", default=str(ROOT.parent / "shared" / "data" / "amazon-beauty"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--ab", default=None, metavar="FIELD", help="only the on/off A/B (3.)")
    p.add_argument("--memory-data", default="all", choices=["all", "synthetic"])
    p.add_argument("--child-timeout", type=float, default=150.0)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-data", default="synthetic", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return
    if args.ab:
        ab(args)
        return
    if not args.skip_speed:
        speed(args)
    if not args.skip_memory:
        memory(args)


if __name__ == "__main__":
    main()
