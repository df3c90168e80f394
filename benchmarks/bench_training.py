"""Training speed of the sequence models and TIGER on Amazon Beauty, against the matmul roof
and against RecTools.

For every model asked for (``--models``, default all: ``sasrec,bert4rec,gru4rec,nextitnet,
hstu,tiger``) a child process trains ``--epochs`` epochs on the leave-one-out training split
(no validation), then scores the test split with ``genrec.evaluate`` (full ranking, seen
items excluded). Printed per model:

* ``s/epoch`` and ``seq/s``: the trainer's own epoch timing (building the batches, forward,
  backward, optimizer step), mean over the epochs;
* ``useful TFLOP``: the matrix products one epoch needs without padding, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` on a sample of the epoch's training
  sequences fed one at a time (a batch of one has no padding; forward and backward; the
  attention products, which torch does not count on the CPU, are left out: a few percent at
  Beauty's lengths); for full-softmax models nearly all of it is the output layer,
  ``6 N D V`` for ``N`` trained positions, ``V`` items, ``D`` dimensions;
* ``roof s``: the seconds that work takes at the speed of a plain ``torch.mm`` of the
  output layer's shapes (``(c, D) x (D, V)``, its transpose products, ``c`` = 4,096
  positions), measured in the same process right before and after the training (mean);
  ``of roof`` = roof s / s/epoch, the achieved fraction of the machine's matmul throughput;
* ``R@10`` / ``N@10`` after the epochs, and the evaluation seconds.

For SASRec and BERT4Rec the same run also trains RecTools' ``SASRecModel`` /
``BERT4RecModel`` at the same config (``--rectools-python``, a child process in another
interpreter as in ``bench_sasrec.py``), scores its top-10 lists with genrec's metrics against
the same targets, and prints the ratios genrec / RecTools of throughput and quality.

Configs (``--set MODEL.KEY=VALUE`` overrides; everything else is the config's default):

* sasrec: RecTools-equal (max_seq_len 50, d 64, 2 blocks, 1 head, dropout 0.2, lr 1e-3,
  batch 128, full-softmax CE, no gradient clipping as Lightning), as ``bench_sasrec.py``;
* bert4rec: RecTools-equal (max_seq_len 50, d 64, 2 blocks, 2 heads, FFN 4d, dropout 0.1,
  mask_prob 0.6 as the Beauty preset, lr 1e-3, batch 128, no clipping; genrec's last-item-only
  samples off, which RecTools does not have);
* gru4rec, nextitnet, hstu: the Beauty presets ``configs/amazon-beauty/<model>.yaml``;
* tiger: ``configs/amazon-beauty/variants/tiger-cpu.yaml`` (its rkmeans codes are fitted
  from item-text vectors before the first epoch, outside the epoch timing).

Machine load moves every number here: the script prints ``os.getloadavg()`` and the torch
thread count beside each measurement; compare ratios, not absolute times, across runs::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_training.py --models sasrec --epochs 1 \\
        --threads 2 --rectools-python /tmp/rtvenv/bin/python

Without ``--rectools-python`` the current interpreter is used if it can import rectools;
otherwise only genrec's numbers are printed. Without the data folder (``--data-dir``,
default ``../shared/data/amazon-beauty``) the script prints a message and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
K = 10
ALL_MODELS = ("sasrec", "bert4rec", "gru4rec", "nextitnet", "hstu", "tiger")
RECTOOLS_MODELS = ("sasrec", "bert4rec")

#: configs equal to what the RecTools side trains (see the module docstring)
BENCH_CONFIGS: dict[str, dict[str, Any]] = {
    "sasrec": dict(
        max_seq_len=50, embedding_dim=64, n_blocks=2, n_heads=1, dropout=0.2, lr=1e-3,
        batch_size=128, loss="ce", grad_clip=0.0,
    ),
    "bert4rec": dict(
        max_seq_len=50, embedding_dim=64, n_blocks=2, n_heads=2, ffn_multiplier=4, dropout=0.1,
        mask_prob=0.6, last_item_mask_prob=0.0, lr=1e-3, batch_size=128, weight_decay=0.0,
        grad_clip=0.0,
    ),
}  # fmt: skip
PRESETS = {
    "gru4rec": "configs/amazon-beauty/gru4rec.yaml",
    "nextitnet": "configs/amazon-beauty/nextitnet.yaml",
    "hstu": "configs/amazon-beauty/hstu.yaml",
    "tiger": "configs/amazon-beauty/variants/tiger-cpu.yaml",
}
#: preset fields that only matter with validation or long runs
DROP = ("epochs", "patience", "eval_every", "val_users", "time_budget_minutes")


# --------------------------------------------------------------------------- helpers
def load_info() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.1f} {b:.1f} {c:.1f}"


def model_config(name: str, sets: list[str]) -> dict[str, Any]:
    """The benchmark config of ``name``: its fixed or preset fields plus ``--set`` ones."""
    import yaml

    from genrec.config import parse_overrides  # the CLI's --set value rules

    cfg: dict[str, Any] = dict(BENCH_CONFIGS.get(name, {}))
    if name in PRESETS:
        preset = yaml.safe_load((ROOT / PRESETS[name]).read_text()) or {}
        cfg.update({k: v for k, v in preset.items() if k not in DROP})
    for item in sets:
        key, _, value = item.partition("=")
        model, _, field = key.partition(".")
        if model in (name, "*"):
            cfg.update(parse_overrides([f"{field}={value}"]))
    return cfg


def load_split(data_dir: str):
    import genrec

    ds = genrec.load_dataset("amazon-beauty", data_dir=data_dir)
    return ds, genrec.split_dataset(ds, "loo")


def matmul_rate(n_items: int, dim: int, rows: int = 4096, repeats: int = 3) -> float:
    """FLOP/s of a plain ``torch.mm`` of the output layer's shapes: logits ``(c, D) x (D, V)``
    and the two backward products ``(c, V) x (V, D)``, ``(D, c) x (c, V)``; best of
    ``repeats``."""
    import torch

    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(rows, dim, generator=g), torch.randn(n_items, dim, generator=g)
    grad = torch.randn(rows, n_items, generator=g)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(h, w.T)
        torch.mm(grad, w)
        torch.mm(h.T, grad)
        best = min(best, time.perf_counter() - start)
    return 6.0 * rows * dim * n_items / best


def useful_flops(model: Any, dataset: Any, sample: int, rows: int, seed: int) -> float:
    """Matmul FLOP of one epoch without padding: ``training_step`` + backward on ``sample``
    single-sequence batches (a batch of one has no padding), scaled to the epoch's ``rows``
    training sequences."""
    from torch.utils.flop_counter import FlopCounterMode

    from genrec.data.sequences import epoch_generator

    config = model.config
    net = model.network_
    model.config = dataclasses.replace(config, batch_size=1)
    net.train()
    total, seen = 0.0, 0
    try:
        for batch in model.epoch_batches(dataset, epoch_generator(seed, 10_000)):
            with FlopCounterMode(display=False) as counter:
                loss = model.training_step(net, batch)
                loss.backward()
            total += counter.get_total_flops()
            seen += 1
            if seen >= sample:
                break
    finally:
        net.zero_grad(set_to_none=True)
        model.config = config
    return total / max(seen, 1) * rows


def summarize_epochs(epochs: list[dict]) -> dict:
    seconds = float(sum(e["seconds"] for e in epochs))
    seqs = int(sum(e["sequences"] for e in epochs))
    return {
        "epochs": epochs,
        "train_seconds": seconds,
        "seconds_per_epoch": seconds / max(len(epochs), 1),
        "sequences_per_epoch": seqs // max(len(epochs), 1),
        "sequences_per_second": seqs / max(seconds, 1e-9),
    }


# --------------------------------------------------------------------------- genrec side
def run_genrec(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    _, split = load_split(args.data_dir)
    cfg = {**model_config(args.model, args.set), "epochs": args.epochs, "device": "cpu"}
    return measure_genrec(args.model, cfg, split, args)


def measure_genrec(name: str, cfg: dict[str, Any], split: Any, args: argparse.Namespace) -> dict:
    """Train ``name`` with ``cfg`` on ``split.train``, time it against the matmul rate and
    (unless ``args.no_quality``) score the test split."""
    import torch

    import genrec

    model = genrec.get_model(name)(**cfg, progress=False, seed=args.seed)
    dim = int(model.config.embedding_dim)
    n_items = split.train.n_items
    load_before = load_info()
    rate0 = matmul_rate(n_items, dim)
    model.fit(split.train)  # no validation holdout: training only
    rate1 = matmul_rate(n_items, dim)
    load_after = load_info()
    epochs = [
        {"seconds": h["seconds"], "sequences": h["sequences"], "loss": h["loss"]}
        for h in model.training_history_
    ]
    rows = epochs[0]["sequences"]
    flop = useful_flops(model, split.train, args.flop_sample, rows, args.seed)
    out: dict[str, Any] = {
        "name": "genrec",
        "model": name,
        "version": genrec.__version__,
        **summarize_epochs(epochs),
        "config": {k: v for k, v in model.config.to_dict().items()},
        "useful_flop_per_epoch": flop,
        "matmul_flops_per_second": (rate0 + rate1) / 2,
        "matmul_flops_per_second_before_after": [rate0, rate1],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_before": load_before,
        "load_after": load_after,
    }
    if not args.no_quality:
        t = time.perf_counter()
        res = genrec.evaluate(
            model, split, ks=(K,), metrics=("recall", "ndcg"), beyond_accuracy=False
        )
        out["eval_seconds"] = time.perf_counter() - t
        out[f"recall@{K}"] = float(res.metrics[f"recall@{K}"])
        out[f"ndcg@{K}"] = float(res.metrics[f"ndcg@{K}"])
        out["load_after_eval"] = load_info()
    return out


# --------------------------------------------------------------------------- RecTools side
def _rectools_frame(user, item, weight):
    """A RecTools interactions frame; ``datetime`` is the row order, which is genrec's
    chronological order (per user), so both libraries see identical sequences."""
    import pandas as pd
    from rectools import Columns

    return pd.DataFrame(
        {
            Columns.User: user,
            Columns.Item: item,
            Columns.Weight: weight.astype(np.float32),
            Columns.Datetime: pd.to_datetime(np.arange(len(user)), unit="s"),
        }
    )


def run_rectools(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    import logging
    import warnings

    import pytorch_lightning as pl
    import rectools
    from pytorch_lightning.callbacks import Callback
    from rectools.dataset import Dataset as RTDataset
    from rectools.models import BERT4RecModel, SASRecModel
    from rectools.models.nn.item_net import IdEmbeddingsItemNet

    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    data = np.load(args.data_npz)
    cfg = model_config(args.model, args.set)
    batch_size = int(cfg["batch_size"])

    class EpochTimer(Callback):
        """Seconds and sequences of every training epoch (batches, forward, backward, step)."""

        def __init__(self) -> None:
            self.epochs: list[dict] = []
            self._start, self._n, self._loss, self._batches = 0.0, 0, 0.0, 0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._start, self._n, self._loss, self._batches = time.perf_counter(), 0, 0.0, 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._n += int(batch["x"].shape[0])
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self._loss += float(loss)
            self._batches += 1

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            seconds = time.perf_counter() - self._start
            loss = self._loss / max(self._batches, 1)
            self.epochs.append({"seconds": seconds, "sequences": self._n, "loss": loss})

    def get_trainer() -> pl.Trainer:
        return pl.Trainer(
            max_epochs=args.epochs,
            min_epochs=args.epochs,
            deterministic=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
            accelerator="cpu",
            devices=1,
            callbacks=[EpochTimer()],
        )

    train = RTDataset.construct(
        _rectools_frame(data["train_user"], data["train_item"], data["train_weight"])
    )
    history = RTDataset.construct(
        _rectools_frame(data["hist_user"], data["hist_item"], data["hist_weight"])
    )
    pl.seed_everything(args.seed, verbose=False)
    common = dict(
        n_blocks=int(cfg["n_blocks"]),
        n_heads=int(cfg["n_heads"]),
        n_factors=int(cfg["embedding_dim"]),
        dropout_rate=float(cfg["dropout"]),
        session_max_len=int(cfg["max_seq_len"]),
        train_min_user_interactions=2,
        loss="softmax",
        lr=float(cfg["lr"]),
        batch_size=batch_size,
        epochs=args.epochs,
        verbose=0,
        dataloader_num_workers=0,
        item_net_block_types=(IdEmbeddingsItemNet,),
        get_trainer_func=get_trainer,
        recommend_torch_device="cpu",
    )
    if args.model == "sasrec":
        model = SASRecModel(**common)
    else:
        model = BERT4RecModel(**common, mask_prob=float(cfg["mask_prob"]))
    load_before = load_info()
    model.fit(train)
    load_after = load_info()
    timer = next(c for c in model.fit_trainer.callbacks if isinstance(c, EpochTimer))
    test_users = data["test_users"]
    t = time.perf_counter()
    reco = model.recommend(
        users=test_users, dataset=history, k=K, filter_viewed=True, on_unsupported_targets="warn"
    )
    eval_seconds = time.perf_counter() - t
    reco = reco.sort_values(["user_id", "rank"])
    ranked = np.zeros((len(test_users), K), dtype=np.int64)  # 0 = no recommendation
    row = {int(u): r for r, u in enumerate(test_users)}
    rows = np.array([row[int(u)] for u in reco["user_id"]], dtype=np.int64)
    ranked[rows, reco["rank"].to_numpy(dtype=np.int64) - 1] = reco["item_id"].to_numpy()
    return {
        "name": "RecTools",
        "model": args.model,
        "version": rectools.__version__,
        **summarize_epochs(timer.epochs),
        "eval_seconds": eval_seconds,
        "ranked": ranked.tolist(),
        "users_without_recos": int(len(test_users) - len(np.unique(rows))),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_before": load_before,
        "load_after": load_after,
    }


# --------------------------------------------------------------------------- driver
def rectools_metrics(result: dict, split) -> None:
    """recall@K / ndcg@K of RecTools' top-K lists with genrec's metric functions."""
    from genrec.evaluation.metrics import hits_from_targets, ndcg_at_k, recall_at_k

    test = split.test
    ranked = np.asarray(result.pop("ranked"), dtype=np.int64)  # rows follow test.users
    hits = hits_from_targets(ranked, test.targets.indptr, test.targets.indices)
    result[f"recall@{K}"] = float(recall_at_k(hits, test.n_targets, K).mean())
    result[f"ndcg@{K}"] = float(ndcg_at_k(hits, test.n_targets, K).mean())


def write_rectools_inputs(split, path: Path) -> None:
    train, hist = split.train, split.test.history
    np.savez(
        path,
        train_user=train.user_idx,
        train_item=train.item_idx,
        train_weight=np.ones(train.n_interactions, dtype=np.float32),
        hist_user=hist.user_idx,
        hist_item=hist.item_idx,
        hist_weight=np.ones(hist.n_interactions, dtype=np.float32),
        test_users=split.test.users,
    )


def child(
    python: str, side: str, model: str, args: argparse.Namespace, out: Path, npz: Path
) -> dict | None:
    cmd = [
        python, str(Path(__file__).resolve()), "--side", side, "--model", model,
        "--out", str(out), "--data-npz", str(npz), "--data-dir", str(args.data_dir),
        "--epochs", str(args.epochs), "--threads", str(args.threads), "--seed", str(args.seed),
        "--flop-sample", str(args.flop_sample),
    ]  # fmt: skip
    for item in args.set:
        cmd += ["--set", item]
    if args.no_quality:
        cmd.append("--no-quality")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if proc.returncode != 0 or not out.is_file():
        print(f"[{side} {model}] child process failed (exit code {proc.returncode})")
        return None
    return json.loads(out.read_text())


def find_rectools_python(args: argparse.Namespace) -> str | None:
    if args.rectools_python:
        python = args.rectools_python
    else:
        import importlib.util

        if importlib.util.find_spec("rectools") is None:
            return None
        python = sys.executable
    probe = subprocess.run(
        [python, "-c", "import rectools, pytorch_lightning"], cwd=ROOT, capture_output=True
    )
    return python if probe.returncode == 0 else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    print(
        f"{'model':<22}{'s/epoch':>9}{'seq/s':>8}{'useful TF':>10}{'roof s':>8}{'of roof':>8}"
        f"{'GF/s mm':>8}{f'R@{K}':>8}{f'N@{K}':>8}{'eval s':>8}{'thr':>4}  load (before/after)"
    )
    for r in rows:
        label = f"{r['model']} {r['name']}"
        roof_s = frac = None
        flop = r.get("useful_flop_per_epoch")
        rate = r.get("matmul_flops_per_second")
        if flop and rate:
            roof_s = flop / rate
            frac = roof_s / r["seconds_per_epoch"]
        print(
            f"{label:<22}{r['seconds_per_epoch']:>9.1f}{r['sequences_per_second']:>8.0f}"
            f"{_fmt(flop and flop / 1e12, '.3f'):>10}{_fmt(roof_s, '.1f'):>8}"
            f"{_fmt(frac, '.2f'):>8}{_fmt(rate and rate / 1e9, '.0f'):>8}"
            f"{_fmt(r.get(f'recall@{K}'), '.4f'):>8}{_fmt(r.get(f'ndcg@{K}'), '.4f'):>8}"
            f"{_fmt(r.get('eval_seconds'), '.1f'):>8}{r['threads']:>4}  "
            f"{r['load_before']} / {r['load_after']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ALL_MODELS))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared/data/amazon-beauty"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", action="append", default=[], metavar="MODEL.KEY=VALUE",
        help="override a config field of one model ('*.KEY=VALUE': every model)",
    )  # fmt: skip
    parser.add_argument(
        "--flop-sample", type=int, default=256,
        help="training sequences fed alone to count an epoch's useful FLOP",
    )  # fmt: skip
    parser.add_argument("--no-quality", action="store_true", help="skip the test evaluation")
    parser.add_argument(
        "--rectools-python", default=None, help="interpreter with rectools[torch] installed"
    )
    parser.add_argument("--no-rectools", action="store_true", help="genrec only")
    parser.add_argument("--json", default=None, help="also write all results to this file")
    parser.add_argument("--side", choices=("both", "genrec", "rectools"), default="both")
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-npz", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side != "both":  # child process: one model, one side, results to --out
        result = run_genrec(args) if args.side == "genrec" else run_rectools(args)
        Path(args.out).write_text(json.dumps(result))
        return

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(ALL_MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(ALL_MODELS)}")
    if not Path(args.data_dir).is_dir():
        print(f"amazon-beauty: no data at {args.data_dir}; skipped (pass --data-dir)")
        return
    ds, split = load_split(args.data_dir)
    print(
        f"{ds.name}: {ds.n_users:,} users, {ds.n_items:,} items, "
        f"{split.train.n_interactions:,} train interactions (leave-one-out); {args.epochs} "
        f"epoch(s), CPU, torch threads {args.threads}; {load_info()} (1/5/15 min) at start"
    )
    rt_python = None
    if not args.no_rectools and any(m in RECTOOLS_MODELS for m in models):
        rt_python = find_rectools_python(args)
        if rt_python is None:
            where = args.rectools_python or sys.executable
            print(
                f"RecTools is not importable by {where}: install rectools[torch] to compare "
                "(e.g. in /tmp/rtvenv, then --rectools-python /tmp/rtvenv/bin/python)"
            )
    results: list[dict] = []
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "rectools_inputs.npz"
        write_rectools_inputs(split, npz)
        for model in models:
            cfg = model_config(model, args.set)
            print(f"\n[{model}] {json.dumps(cfg)}", flush=True)
            g = child(sys.executable, "genrec", model, args, Path(tmp) / f"g-{model}.json", npz)
            if g is not None:
                results.append(g)
                print_table([g])
            if rt_python is None or model not in RECTOOLS_MODELS:
                continue
            r = child(rt_python, "rectools", model, args, Path(tmp) / f"r-{model}.json", npz)
            if r is None:
                continue
            rectools_metrics(r, split)
            results.append(r)
            print_table([r])
            if g is not None:
                ratio = g["sequences_per_second"] / r["sequences_per_second"]
                q = g[f"ndcg@{K}"] / max(r[f"ndcg@{K}"], 1e-12) if f"ndcg@{K}" in g else None
                rq = g[f"recall@{K}"] / max(r[f"recall@{K}"], 1e-12) if q is not None else None
                ratios.append(
                    f"{model}: genrec/RecTools throughput {ratio:.2f}x "
                    f"(goal >= 3x: {'met' if ratio >= 3 else 'NOT met'}); after "
                    f"{args.epochs} epoch(s) ndcg@{K} {_fmt(q, '.2f')}x, recall@{K} "
                    f"{_fmt(rq, '.2f')}x (goal >= 1x: "
                    f"{'met' if q is not None and q >= 1 else 'NOT met'})"
                )
    print("\nall results")
    print_table(results)
    print(
        "  s/epoch, seq/s: the training epoch only (batches + forward + backward + step); "
        "useful TF: matmul TFLOP of one epoch without padding (FlopCounterMode on single "
        "sequences); roof s: that work at the plain-torch.mm rate (GF/s mm, output-layer "
        "shapes, same process, before/after mean); of roof = roof s / s/epoch"
    )
    for line in ratios:
        print(line)
    print(f"{load_info()} at end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
