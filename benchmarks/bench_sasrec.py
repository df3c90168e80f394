"""SASRec training speed on CPU: genrec vs RecTools' ``SASRecModel``, same data, same config.

Both sides train SASRec with full-softmax cross-entropy on the same leave-one-out training
interactions (``genrec.split_dataset(ds, "loo")``): max_seq_len 50, 64 factors, 2 blocks,
1 head, dropout 0.2, lr 1e-3, batch 128, ``--epochs`` epochs, no validation during training,
on CPU with the same torch thread count. After training, both are scored on the same test
users with the same history (train + validation, seen items excluded): genrec through
``genrec.evaluate``, RecTools through its ``recommend(..., filter_viewed=True)`` top-10, whose
lists are scored with ``genrec.evaluation.metrics`` against the same targets.

Printed per side: seconds per epoch and sequences per second (mean over epochs; an epoch is
building/collating its batches + forward + backward + optimizer step, i.e. data set
preparation, model construction and evaluation are excluded), the training seconds needed to
reach the printed quality (the sum of the epochs), recall@10 / ndcg@10 after those epochs,
the wall time of the whole ``fit()`` call (which includes each library's own data preparation)
and the peak resident memory of the side's process (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``: interpreter + torch + data + training + evaluation; the RSS just before
``fit()`` is printed beside it). Then the ratio genrec / RecTools of throughput.

Each side runs in its own child process (clean peak memory, no shared warm-up). RecTools is
imported only in its child, which may use another interpreter, so the project's venv stays
free of it::

    python3 -m venv /tmp/rtvenv
    /tmp/rtvenv/bin/pip install torch==2.13.0      # first: keep the CPU build, same torch
    /tmp/rtvenv/bin/pip install 'rectools[torch]'
    PYTHONPATH=src python benchmarks/bench_sasrec.py --rectools-python /tmp/rtvenv/bin/python

Options: ``--dataset amazon-beauty`` (default; read from ``--data-dir``, default
``../shared/data/amazon-beauty``, skipped with a message when absent) or ``--dataset
movielens-small`` (embedded), ``--epochs N`` (default 1), ``--threads T`` (default 2),
``--seed S``, ``--loss ce|bce`` (default ``ce``; ``bce``: one uniform negative per position on
both sides, RecTools ``loss="BCE"``). Without ``--rectools-python`` the current interpreter
is used if it can import rectools; otherwise only genrec's numbers are printed.

Runtime (Amazon Beauty, 2 CPU cores shared with other jobs, load average ~4-7): genrec
~130 s per epoch, RecTools ~1,100 s per epoch (it computes the full softmax at all 50
positions, padding included; genrec only at real positions, and Beauty histories are short).
Hence the default of 1 epoch; ``--epochs 3`` takes about an hour with RecTools.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
K = 10


# --------------------------------------------------------------------------- helpers
def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def load_split(args: argparse.Namespace):
    """The dataset and its leave-one-out split (genrec), or ``None`` when data is missing."""
    import genrec

    if args.dataset == "movielens-small":
        ds = genrec.load_dataset("movielens-small")
    else:
        data_dir = Path(args.data_dir)
        if not data_dir.is_dir():
            return None, None
        ds = genrec.load_dataset(args.dataset, data_dir=str(data_dir))
    return ds, genrec.split_dataset(ds, "loo")


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
    set_threads(args.threads)
    import torch

    import genrec

    ds, split = load_split(args)
    model = genrec.get_model("sasrec")(
        epochs=args.epochs,
        batch_size=128,
        lr=1e-3,
        dropout=0.2,
        max_seq_len=50,
        embedding_dim=64,
        n_blocks=2,
        n_heads=1,
        loss=args.loss,
        n_negatives=1,  # used by loss="bce" only: the original SASRec's one negative
        grad_clip=0.0,  # RecTools' default Lightning trainer does not clip
        device="cpu",
        progress=False,
        seed=args.seed,
    )
    rss_before = current_rss_mb()
    t, cpu = time.perf_counter(), time.process_time()
    model.fit(split.train)  # no validation holdout: training only
    fit_wall, fit_cpu = time.perf_counter() - t, time.process_time() - cpu
    epochs = [
        {"seconds": h["seconds"], "sequences": h["sequences"], "loss": h["loss"]}
        for h in model.training_history_
    ]
    t = time.perf_counter()
    res = genrec.evaluate(model, split, ks=(K,), metrics=("recall", "ndcg"), beyond_accuracy=False)
    eval_seconds = time.perf_counter() - t
    return {
        "name": "genrec",
        "version": genrec.__version__,
        **summarize_epochs(epochs),
        "fit_wall_seconds": fit_wall,
        "fit_cpu_seconds": fit_cpu,
        "eval_seconds": eval_seconds,
        f"recall@{K}": float(res.metrics[f"recall@{K}"]),
        f"ndcg@{K}": float(res.metrics[f"ndcg@{K}"]),
        "rss_before_fit_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


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
    set_threads(args.threads)
    import logging
    import warnings

    import pytorch_lightning as pl
    import rectools
    import torch
    from pytorch_lightning.callbacks import Callback
    from rectools.dataset import Dataset as RTDataset
    from rectools.models import SASRecModel

    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    data = np.load(args.data_npz)

    class EpochTimer(Callback):
        """Seconds and sequences of every training epoch (batches, forward, backward, step)."""

        def __init__(self) -> None:
            self.epochs: list[dict] = []
            self._start = 0.0
            self._n = 0
            self._loss = 0.0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._start, self._n, self._loss = time.perf_counter(), 0, 0.0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._n += int(batch["x"].shape[0])
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self._loss += float(loss)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            seconds = time.perf_counter() - self._start
            n_batches = -(-self._n // 128)
            self.epochs.append(
                {"seconds": seconds, "sequences": self._n, "loss": self._loss / max(n_batches, 1)}
            )

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
    model = SASRecModel(
        n_blocks=2,
        n_heads=1,
        n_factors=64,
        dropout_rate=0.2,
        session_max_len=50,
        train_min_user_interactions=2,
        loss={"ce": "softmax", "bce": "BCE"}[args.loss],
        n_negatives=1,
        lr=1e-3,
        batch_size=128,
        epochs=args.epochs,
        verbose=0,
        dataloader_num_workers=0,
        get_trainer_func=get_trainer,
        recommend_torch_device="cpu",
    )
    rss_before = current_rss_mb()
    t, cpu = time.perf_counter(), time.process_time()
    model.fit(train)
    fit_wall, fit_cpu = time.perf_counter() - t, time.process_time() - cpu
    timer = next(c for c in model.fit_trainer.callbacks if isinstance(c, EpochTimer))
    test_users = data["test_users"]
    t = time.perf_counter()
    reco = model.recommend(
        users=test_users,
        dataset=history,
        k=K,
        filter_viewed=True,
        on_unsupported_targets="warn",
    )
    eval_seconds = time.perf_counter() - t
    reco = reco.sort_values(["user_id", "rank"])
    ranked = np.zeros((len(test_users), K), dtype=np.int64)  # 0 = no recommendation
    row = {int(u): r for r, u in enumerate(test_users)}
    rows = np.array([row[int(u)] for u in reco["user_id"]], dtype=np.int64)
    ranked[rows, reco["rank"].to_numpy(dtype=np.int64) - 1] = reco["item_id"].to_numpy()
    return {
        "name": "RecTools",
        "version": rectools.__version__,
        **summarize_epochs(timer.epochs),
        "fit_wall_seconds": fit_wall,
        "fit_cpu_seconds": fit_cpu,
        "eval_seconds": eval_seconds,
        "ranked": ranked.tolist(),
        "users_without_recos": int(len(test_users) - len(np.unique(rows))),
        "rss_before_fit_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
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


def child(python: str, side: str, args: argparse.Namespace, out: Path, npz: Path) -> dict | None:
    cmd = [
        python, str(Path(__file__).resolve()), "--side", side, "--out", str(out),
        "--data-npz", str(npz), "--dataset", args.dataset, "--data-dir", str(args.data_dir),
        "--epochs", str(args.epochs), "--threads", str(args.threads), "--seed", str(args.seed),
        "--loss", args.loss,
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if proc.returncode != 0 or not out.is_file():
        print(f"[{side}] child process failed (exit code {proc.returncode})")
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


def print_table(results: list[dict], args: argparse.Namespace) -> None:
    head = (
        f"{'':<16}{'s/epoch':>9}{'seq/s':>9}{'train s':>9}{f'recall@{K}':>11}{f'ndcg@{K}':>10}"
        f"{'fit() s':>9}{'fit CPU s':>10}{'eval s':>8}{'peak RSS':>10}{'RSS@fit':>9}"
    )
    print(head)
    for r in results:
        label = f"{r['name']} {r['version']}"
        print(
            f"{label:<16}{r['seconds_per_epoch']:>9.1f}{r['sequences_per_second']:>9.0f}"
            f"{r['train_seconds']:>9.1f}{r[f'recall@{K}']:>11.4f}{r[f'ndcg@{K}']:>10.4f}"
            f"{r['fit_wall_seconds']:>9.1f}{r['fit_cpu_seconds']:>10.1f}{r['eval_seconds']:>8.1f}"
            f"{r['peak_rss_mb']:>7.0f} MB{r['rss_before_fit_mb']:>6.0f} MB"
        )
    for r in results:
        per = ", ".join(f"{e['seconds']:.1f}" for e in r["epochs"])
        loss = ", ".join(f"{e['loss']:.3f}" for e in r["epochs"])
        print(
            f"  {r['name']}: {r['sequences_per_epoch']:,} sequences/epoch, epoch seconds [{per}], "
            f"train loss [{loss}], torch {r['torch']}, threads {r['threads']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared/data/amazon-beauty"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--loss", choices=("ce", "bce"), default="ce",
        help="ce: full softmax (RecTools 'softmax'); bce: one uniform negative per position "
        "(RecTools 'BCE', n_negatives 1)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rectools-python", default=None, help="interpreter with rectools[torch] installed"
    )
    parser.add_argument("--side", choices=("both", "genrec", "rectools"), default="both")
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-npz", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side != "both":  # child process: one side, results to --out
        result = run_genrec(args) if args.side == "genrec" else run_rectools(args)
        Path(args.out).write_text(json.dumps(result))
        return

    ds, split = load_split(args)
    if ds is None:
        print(
            f"{args.dataset}: no data at {args.data_dir}; skipped (pass --data-dir, or use "
            "--dataset movielens-small)"
        )
        return
    load0 = os.getloadavg()
    print(
        f"{ds.name}: {ds.n_users:,} users, {ds.n_items:,} items, {split.train.n_interactions:,} "
        f"train interactions, {len(split.test):,} test users (leave-one-out)"
    )
    print(
        f"SASRec, {'full-softmax CE' if args.loss == 'ce' else 'BCE, 1 negative'}: "
        f"max_seq_len 50, d 64, 2 blocks, 1 head, dropout 0.2, "
        f"lr 1e-3, batch 128, {args.epochs} epochs, CPU, torch threads {args.threads}; "
        f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} (1/5/15 min) at start"
    )
    rt_python = find_rectools_python(args)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "rectools_inputs.npz"
        write_rectools_inputs(split, npz)
        g = child(sys.executable, "genrec", args, Path(tmp) / "genrec.json", npz)
        if g is not None:
            results.append(g)
        r = None
        if rt_python is None:
            where = args.rectools_python or sys.executable
            print(
                f"RecTools is not importable by {where}: install rectools[torch] to compare "
                "(e.g. in /tmp/rtvenv, then --rectools-python /tmp/rtvenv/bin/python)"
            )
        else:
            r = child(rt_python, "rectools", args, Path(tmp) / "rectools.json", npz)
        if r is not None:
            rectools_metrics(r, split)
            results.append(r)
    load1 = os.getloadavg()
    print()
    print_table(results, args)
    print(
        "  s/epoch, seq/s: training epochs only (batch building + forward + backward + step);"
        " train s = sum of epochs; fit() s includes the library's own data preparation;"
        " fit CPU s = process CPU time of fit() (all threads; less sensitive to machine load);"
        " peak RSS = ru_maxrss of the side's process, RSS@fit = VmRSS just before fit()"
    )
    if r is not None:
        if r.get("users_without_recos"):
            print(f"  RecTools returned no list for {r['users_without_recos']} test users")
        if g is not None:
            ratio = g["sequences_per_second"] / r["sequences_per_second"]
            print(
                f"ratio genrec/RecTools: throughput {ratio:.2f}x "
                f"(s/epoch {g['seconds_per_epoch'] / r['seconds_per_epoch']:.2f}x), "
                f"ndcg@{K} {g[f'ndcg@{K}'] / max(r[f'ndcg@{K}'], 1e-12):.2f}x, "
                f"recall@{K} {g[f'recall@{K}'] / max(r[f'recall@{K}'], 1e-12):.2f}x, "
                f"peak RSS {g['peak_rss_mb'] / r['peak_rss_mb']:.2f}x; "
                f"target (genrec at least as fast, ndcg@{K} within 5% or better): "
                f"{'met' if ratio >= 1 and g[f'ndcg@{K}'] >= 0.95 * r[f'ndcg@{K}'] else 'NOT met'}"
            )
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
