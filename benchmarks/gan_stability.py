"""GraphGAN beside IRGAN (issue 27, part 4a): accuracy and training stability.

Runs ``genrec.bench.benchmark.run_benchmark`` with EASE (the reference), IRGAN and GraphGAN on
the same leave-one-out split with their shipped presets (``configs/<dataset>/``), and keeps
for every seed of the two GANs what the results file does not hold: the mean loss of every
phase per epoch (pre-training, discriminator, generator) and, for GraphGAN, the mean
discriminator reward of the generator's samples per epoch. The trainer's per-epoch
validation NDCG@10 shows whether the adversarial phase helps after pre-training or drifts;
the best epoch is restored either way.

Run (CPU)::

    PYTHONPATH=src python benchmarks/gan_stability.py --dataset movielens-100k \\
        --data-dir ../shared/data/movielens-100k --seeds 2 \\
        --out docs/measurements/gan/movielens-100k.json \\
        --plot docs/measurements/gan/movielens-100k.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

import genrec
from genrec.bench.benchmark import BenchmarkSpec, run_benchmark

PHASES = {0: "pretrain", 1: "discriminator", 2: "generator"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg} (load {os.getloadavg()[0]:.1f})", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="movielens-100k")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--models", default="ease,irgan,graphgan")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE")
    p.add_argument("--out", default=None)
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    from genrec.cli import _model_overrides

    models = args.models.split(",")
    overrides = _model_overrides(args.set, models)
    for m in models:
        if m != "ease":
            overrides.setdefault(m, {})["progress"] = False
    load0 = os.getloadavg()
    started = time.perf_counter()
    ds = genrec.load_dataset(args.dataset, data_dir=args.data_dir)
    log(repr(ds))
    phases: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def on_fit(name: str, seed: int, model: Any) -> None:
        rec: dict[str, Any] = {"seed": seed}
        losses = getattr(model, "phase_losses_", None)
        if losses:
            per: dict[tuple[int, int], list[float]] = defaultdict(list)
            for epoch, phase, loss in losses:
                per[(epoch, phase)].append(loss)
            rec["phase_loss"] = [
                {"epoch": e, "phase": PHASES[ph], "mean_loss": float(np.mean(v))}
                for (e, ph), v in sorted(per.items())
            ]
        rewards = getattr(model, "reward_history_", None)
        if rewards:
            per_r: dict[int, list[float]] = defaultdict(list)
            for epoch, r in rewards:
                per_r[epoch].append(r)
            rec["reward"] = [
                {"epoch": e, "mean_reward": float(np.mean(v))} for e, v in sorted(per_r.items())
            ]
        if rec.keys() - {"seed"}:
            phases[name].append(rec)
        log(f"{name} seed {seed} fitted in {model.fit_seconds_:.0f} s")

    spec = BenchmarkSpec(
        dataset=args.dataset, models=models, seeds=args.seeds, data_dir=args.data_dir,
        overrides=overrides, ks=(10, 20), reference="ease" if "ease" in models else None,
    )  # fmt: skip
    results, _ = run_benchmark(spec, ds, on_fit=on_fit, on_progress=log)
    out = {
        "dataset": args.dataset,
        "results": results,
        "phases": phases,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_at_start": load0,
            "load_at_end": os.getloadavg(),
        },  # fmt: skip
    }
    for name, res in results["models"].items():
        m = res["metrics"]
        sig = res.get("significance", {}).get("ndcg@10", {})
        log(
            f"{name}: R@10 {m['recall@10']['mean']:.4f} N@10 {m['ndcg@10']['mean']:.4f} "
            f"(p_adj vs ease {sig.get('p_adjusted', float('nan')):.3g}) fit "
            f"{res['fit_seconds']['mean']:.0f} s"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2, default=float))
        log(f"wrote {args.out}")
    if args.plot:
        plot(out, Path(args.plot))
        log(f"wrote {args.plot}")
    return 0


def plot(out: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in out["results"]["models"] if out["results"]["models"][m].get("training")]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, name in enumerate(models):
        res = out["results"]["models"][name]
        cfg = res["config"]
        for s, tr in enumerate(res["training"] or []):
            hist = [h for h in tr["history"] if "ndcg@10" in h]
            ax[0].plot([h["epoch"] + 1 for h in hist], [h["ndcg@10"] for h in hist],
                       color=f"C{i}", alpha=0.8, label=name if s == 0 else None)  # fmt: skip
        ax[0].axvline(cfg.get("pretrain_epochs", 0) + 0.5, color=f"C{i}", ls=":", lw=0.8)
        for s, rec in enumerate(out["phases"].get(name, [])):
            for phase, style in (("discriminator", "-"), ("generator", "--")):
                pts = [r for r in rec.get("phase_loss", []) if r["phase"] == phase]
                if pts:
                    ax[1].plot([r["epoch"] + 1 for r in pts], [r["mean_loss"] for r in pts],
                               style, color=f"C{i}", alpha=0.8,
                               label=f"{name} {phase}" if s == 0 else None)  # fmt: skip
    ax[0].set_xlabel("epoch (dotted: end of pre-training)")
    ax[0].set_ylabel("validation NDCG@10")
    ax[0].legend(fontsize=8)
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("mean loss of the phase")
    ax[1].set_yscale("symlog", linthresh=0.1)
    ax[1].legend(fontsize=7)
    fig.suptitle(f"{out['dataset']}: IRGAN and GraphGAN training", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
