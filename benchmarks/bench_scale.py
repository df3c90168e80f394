"""The scale curve: fit, inference and memory cost of EASE, ALS, SASRec and TIGER against
catalogue size, on synthetic data with a fixed number of users.

Usage (the default run; estimated at 10-15 minutes on 2 free cores, not yet measured)::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_scale.py \\
        --items 10000,50000,200000 --users 5000 --mean-length 20 --epochs 1 --out /tmp/scale

Smoke run (about a minute on free cores; the sizes are too small for the ratios to mean much)::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_scale.py --users 300 --items 500,2000

Data: for every size, :func:`genrec.data.synth.synthesize` draws ``--users`` histories of
mean length ``--mean-length`` (Zipf popularity, interest clusters, successor chains) over
``--items`` items, with the same seed. The :class:`~genrec.Dataset`'s item map lists *every*
item of the catalogue, also those no user drew (with a fixed number of users most of a large
catalogue is never drawn): every model ranks over the whole catalogue, so the inference cost is
that of the catalogue size on the x axis. Leave-one-out split without validation
(:func:`genrec.split_dataset`): the last item of each user is the test target, the rest train.

Models (``--models``, configs printed at the start; ``--set MODEL.KEY=VALUE`` overrides):

* ``ease``: closed form, ``l2`` 500, refused above ``--ease-max-items`` (EASE's own
  ``max_items`` check) or when EASE's memory check finds too little memory; the estimated
  memory (:func:`genrec.models.ease.fit_memory`) and time (cubic scaling of the 20k-item fit of
  docs/scale.md) are printed for every size;
* ``als``: implicit ALS, 64 factors, 15 iterations;
* ``sasrec``: the large-catalogue path, ``loss: sampled_softmax`` with ``negatives: mixed``
  (the batch's other targets, logQ-corrected, plus 128 uniform negatives per position), 1 block
  of 64 dimensions; inference scores the whole catalogue;
* ``tiger``: 1 encoder + 1 decoder layer, 64-d, beam 20 (``--tiger-beams``), 3 levels of up
  to 256 codes + a collision level. Synthetic items have no text, so the codes come from
  collaborative vectors: the item factors of a 32-factor ALS fitted on the training split
  (items without training interactions get random vectors with the warm items' per-dimension
  spread, so their codes are random, as in TIGER's random-ID control), tokenised by
  ``--tiger-codes``: ``hkmeans`` (default; balanced hierarchical k-means, 5 iterations per
  node: no collisions and at most 256 codes per level at every size, so the decoder's
  vocabulary does not grow with the catalogue) or ``rkmeans`` (unbalanced residual k-means, 20
  iterations: fast, but its collision groups grow with the catalogue, e.g. 1,056 items shared
  one semantic ID at 20k items, and the collision level's size with them); or ``random``:
  TIGER's random codes (no vectors). The codebook (ALS + tokenizer) is timed apart from the
  epochs and printed with its level sizes and collisions.

Measured per model and size, each in a fresh child process (``subprocess``, so
``ru_maxrss`` is that step's own high-water mark) killed after ``--step-timeout`` seconds:

* ``fit s/epoch``: neural models: the trainer's mean epoch time over ``--epochs`` epochs
  (``training_history_``); EASE and ALS: the whole ``fit``;
* ``infer s/1k``: wall time of :func:`genrec.evaluate` on the test split (top-10 over the
  whole catalogue, seen items excluded; beam search for TIGER) per 1,000 test users, after an
  untimed warm-up call on 16 users (``--eval-users N``: time a seeded sample of N users);
* ``peak MB``: the child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end (imports,
  data, fit and evaluation); ``+model MB``: the same minus its value once the data was built;
* ``R@10``: recall@10 of the held-out next item.

A failure (error, refusal, timeout, killed child) is recorded with its message and the run
goes on. Printed: the table, the conditions (CPU count, torch threads, load average before
and after the run and of every step) and, computed from the numbers, how each cost grew
between the smallest and the largest size that ran (e.g. 200k / 10k) -- the question being
whether TIGER's beam-search inference stays flat while SASRec's full scoring and EASE grow.
Written to ``--out`` (default: a new temporary folder, never the repository): ``scale.json``,
``scale.svg`` (log-log cost against catalogue size: fit per epoch, inference per 1k users,
peak memory; one line per model; needs matplotlib, extra ``report``) and ``report.html``
(the SVG and the table, self-contained).

Machine load moves every number: compare the ratios within one run, not seconds across runs.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
K = 10
ALL_MODELS = ("ease", "als", "sasrec", "tiger")
NEURAL = ("sasrec", "tiger")
#: EASE on the synthetic 20k x 20k set took 125 CPU-seconds (docs/scale.md); the fit is cubic
EASE_REF_ITEMS, EASE_REF_CPU_S = 20_000, 125.0

#: the small configs of the scale curve (see the module docstring)
CONFIGS: dict[str, dict[str, Any]] = {
    "ease": {"l2": 500.0},
    "als": {"embedding_dim": 64, "iterations": 15},
    "sasrec": {
        "loss": "sampled_softmax", "negatives": "mixed", "n_negatives": 128,
        "embedding_dim": 64, "n_blocks": 1,
        "n_heads": 1, "max_seq_len": 50, "dropout": 0.2, "batch_size": 128, "lr": 1e-3,
        "bucket_batches": 50,
    },
    "tiger": {
        "embedding_dim": 64, "n_encoder_layers": 1, "n_decoder_layers": 1, "n_heads": 2,
        "head_dim": 32, "ffn_dim": 256, "max_seq_len": 20, "dropout": 0.1, "batch_size": 256,
        "lr": 3e-3, "n_levels": 4, "codebook_size": 256, "bucket_batches": 50,
        "diagnostic_users": 0,
    },
}  # fmt: skip
#: the ALS that gives TIGER's collaborative item vectors (``--tiger-codes hkmeans|rkmeans``)
TIGER_ALS = {"embedding_dim": 32, "iterations": 10}
#: tokenizer options of ``--tiger-codes`` (fitted by :func:`genrec.tokenizers.fit_codebook`)
TIGER_TOKENIZERS: dict[str, dict[str, Any]] = {
    "hkmeans": {"n_iter": 5},
    "rkmeans": {"n_iter": 20, "balanced": False},
}


# --------------------------------------------------------------------------- helpers
def model_config(name: str, sets: list[str]) -> dict[str, Any]:
    """The benchmark config of ``name`` with the ``--set MODEL.KEY=VALUE`` overrides
    (``*.KEY=VALUE``: every model)."""
    from genrec.config import parse_overrides  # the CLI's --set value rules

    cfg = dict(CONFIGS.get(name, {}))
    for item in sets:
        key, _, value = item.partition("=")
        model, _, field = key.partition(".")
        if model in (name, "*") and field:
            cfg.update(parse_overrides([f"{field}={value}"]))
    return cfg


def load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def maxrss_mb() -> float:
    """This process's peak resident set size so far, MB (``ru_maxrss`` is KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024**2 if sys.platform == "darwin" else rss / 1024


def ease_estimate(n_items: int, nnz: int) -> dict[str, float]:
    """EASE's fit memory (:func:`genrec.models.ease.fit_memory`, GiB), the memory available
    now (GiB), and its CPU seconds scaled as ``n^3`` from the 20k-item fit of docs/scale.md."""
    from genrec.models.ease import available_memory, fit_memory

    return {
        "memory_gib": fit_memory(n_items, nnz) / 1024**3,
        "available_gib": available_memory() / 1024**3,
        "cpu_seconds": EASE_REF_CPU_S * (n_items / EASE_REF_ITEMS) ** 3,
    }


# --------------------------------------------------------------------------- one step
def build_split(users: int, n_items: int, mean_length: float, zipf: float, seed: int) -> Any:
    """Synthetic log over the whole catalogue (every item in the item map), leave-one-out
    split without validation."""
    import numpy as np

    import genrec
    from genrec.data.synth import synthesize

    frame = synthesize(users, n_items, mean_length, zipf, seed)
    items = genrec.IdMap(np.arange(1, n_items + 1, dtype=np.int64))
    ds = genrec.Dataset(frame, name=f"synth-{users}x{n_items}", item_map=items)
    return genrec.split_dataset(ds, "loo", validation=False)


def tiger_codebook(
    split: Any, cfg: dict[str, Any], source: str, seed: int, threads: int, folder: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build TIGER's codes without item text; returns the config changes (``codebook_path``
    ...) and a record of how the codes were made (source, seconds, level sizes)."""
    if source == "random":
        return {"codebook": "random"}, {"source": "random codes (TIGER's random-ID control)"}
    import numpy as np

    import genrec
    from genrec.text import collaborative_vectors
    from genrec.tokenizers import codebook_health, fit_codebook

    t = time.perf_counter()
    train = split.train
    als = genrec.get_model("als")(**TIGER_ALS, num_threads=threads, seed=seed).fit(train)
    vectors = collaborative_vectors(als)  # (n_items + 1, d), row 0 zeros
    cold = train.item_popularity() == 0  # (n_items + 1,) no training interaction
    cold[0] = False
    warm = vectors[1:][~cold[1:]]
    rng = np.random.default_rng(seed)
    spread = warm.std(0) if len(warm) > 1 else np.ones(vectors.shape[1], np.float32)
    vectors[cold] = rng.normal(0.0, 1.0, (int(cold.sum()), vectors.shape[1])) * spread
    cb = fit_codebook(
        source,
        vectors,
        train.item_map.to_list(),
        n_levels=int(cfg["n_levels"]),
        codebook_size=int(cfg["codebook_size"]),
        seed=seed,
        **TIGER_TOKENIZERS[source],
    )
    cb.save(folder / "codebook")
    seconds = time.perf_counter() - t
    health = codebook_health(cb.codes[1:], cb.codebook_sizes)
    info = {
        "source": (
            f"{source} {TIGER_TOKENIZERS[source]} on ALS item factors "
            f"({TIGER_ALS['embedding_dim']} factors, fitted on the training split); "
            f"{int(cold.sum())} items without training interactions got "
            "random vectors"
        ),
        "seconds": seconds,
        "codebook_sizes": list(cb.codebook_sizes),
        "health": {k: float(v) for k, v in health.items()},
    }
    changes = {
        "codebook_path": str(folder / "codebook"),
        "codebook_size": max(int(cfg["codebook_size"]), *cb.codebook_sizes),
    }
    return changes, info


def run_step(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit and evaluate one model at one catalogue size in this process; ``spec`` holds
    ``model``, ``items``, ``users``, ``mean_length``, ``zipf``, ``seed``, ``epochs``,
    ``threads``, ``config``, ``ease_max_items`` and ``tiger_codes``. Returns the record
    (``status`` ``ok``, ``refused`` or ``error``)."""
    import torch

    import genrec
    from genrec.errors import ConfigError, InsufficientMemoryError

    torch.set_num_threads(int(spec["threads"]))
    name, n_items = spec["model"], int(spec["items"])
    out: dict[str, Any] = {
        "model": name,
        "items": n_items,
        "status": "error",
        "load_before": load_avg(),
        "torch_threads": torch.get_num_threads(),
        "rss_mb_imports": maxrss_mb(),
    }
    t = time.perf_counter()
    split = build_split(spec["users"], n_items, spec["mean_length"], spec["zipf"], spec["seed"])
    train = split.train
    out.update(
        data_seconds=time.perf_counter() - t,
        users=int(train.n_users),
        train_interactions=int(train.n_interactions),
        items_with_interactions=int((train.item_popularity()[1:] > 0).sum()),
        test_users=len(split.test),
        rss_mb_data=maxrss_mb(),
    )
    cfg = dict(spec["config"])
    if name in NEURAL:
        cfg.update(epochs=int(spec["epochs"]), device="cpu", progress=False, patience=0)
    if name == "als":
        cfg.setdefault("num_threads", int(spec["threads"]))
    if name == "ease":
        cfg.setdefault("max_items", int(spec["ease_max_items"]))
        out["ease_estimate"] = ease_estimate(n_items, int(train.n_interactions))
    try:
        with tempfile.TemporaryDirectory(prefix="genrec-scale-") as tmp:
            if name == "tiger":
                changes, out["codes"] = tiger_codebook(
                    split,
                    cfg,
                    spec["tiger_codes"],
                    int(spec["seed"]),
                    int(spec["threads"]),
                    Path(tmp),
                )
                cfg.update(changes)
            model = genrec.get_model(name)(**cfg, seed=int(spec["seed"]))
            out["config"] = model.config.to_dict()
            t = time.perf_counter()
            model.fit(train)
            fit = time.perf_counter() - t
            out["fit_seconds"] = fit
            if name in NEURAL:
                epochs = [float(h["seconds"]) for h in model.training_history_]
                out["epoch_seconds"] = epochs
                out["fit_per_epoch"] = sum(epochs) / max(len(epochs), 1)
                out["fit_kind"] = f"mean of {len(epochs)} epoch(s)"
            else:
                out["fit_per_epoch"] = fit
                out["fit_kind"] = "whole fit"
            out["rss_mb_fit"] = maxrss_mb()
            n_eval = int(spec.get("eval_users") or 0)
            test = split.test.sample(n_eval, seed=int(spec["seed"])) if n_eval else split.test
            out["eval_users"] = len(test)
            kwargs: dict[str, Any] = {"ks": (K,), "metrics": ("recall", "ndcg")}
            # warm-up on a few users, not timed: lazy initialisation of the first call
            genrec.evaluate(model, split.test.sample(16), beyond_accuracy=False, **kwargs)
            t = time.perf_counter()
            res = genrec.evaluate(model, test, beyond_accuracy=False, **kwargs)
            seconds = time.perf_counter() - t
    except (InsufficientMemoryError, ConfigError) as exc:
        out["status"] = "refused" if name == "ease" else "error"
        out["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure is a result of the benchmark
        out["error"] = f"{type(exc).__name__}: {exc}"
    else:
        out.update(
            status="ok",
            infer_seconds=seconds,
            infer_per_1k=seconds / max(out["eval_users"], 1) * 1000.0,
            recall=float(res.metrics[f"recall@{K}"]),
            ndcg=float(res.metrics[f"ndcg@{K}"]),
        )
    out["peak_mb"] = maxrss_mb()
    out["model_mb"] = out["peak_mb"] - out["rss_mb_data"]
    out["load_after"] = load_avg()
    return out


def run_child(spec: dict[str, Any], timeout: float, workdir: Path) -> dict[str, Any]:
    """:func:`run_step` in a fresh interpreter (its own ``ru_maxrss``), killed after
    ``timeout`` seconds; a crash, kill or timeout becomes an ``error`` record."""
    path = workdir / f"{spec['model']}-{spec['items']}.json"
    path.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        json.dumps(spec),
        "--child-out",
        str(path),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(spec["threads"])
    base = {"model": spec["model"], "items": spec["items"], "status": "error"}
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**base, "error": f"timeout: stopped after {timeout:.0f} s (--step-timeout)"}
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        why = "killed (out of memory?)" if proc.returncode in (-9, 137) else "crashed"
        return {**base, "error": f"child {why}, exit code {proc.returncode}: {' | '.join(tail)}"}
    out = json.loads(path.read_text())
    out["step_seconds"] = time.perf_counter() - t
    return out


def step_spec(
    args: argparse.Namespace, model: str, n_items: int, config: dict[str, Any]
) -> dict[str, Any]:
    """What :func:`run_step` needs for ``model`` at ``n_items`` items (JSON-able)."""
    keys = ("users", "mean_length", "zipf", "seed", "epochs", "threads", "ease_max_items",
            "tiger_codes", "eval_users")  # fmt: skip
    return {"model": model, "items": n_items, "config": config,
            **{k: getattr(args, k) for k in keys}}  # fmt: skip


def codes_note(codes: dict[str, Any]) -> str:
    """One line on TIGER's codebook: source, fit seconds, level sizes, collisions."""
    if "codebook_sizes" not in codes:
        return codes["source"]
    health = codes.get("health", {})
    return (
        f"{codes['source']}; {codes['seconds']:.1f} s; level sizes {codes['codebook_sizes']}; "
        f"collision rate before de-duplication "
        f"{health.get('collision_rate_before_dedup', float('nan')):.3f}, largest group "
        f"{health.get('max_items_per_semantic_id', float('nan')):.0f} items"
    )


# --------------------------------------------------------------------------- reporting
def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row of strings per result: model, items, fit s/epoch, infer s/1k users, peak MB,
    +model MB, R@10, load before -> after, status."""
    rows = []
    for r in results:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error', '')}"
        load = f"{r['load_before'][0]:.1f}->{r['load_after'][0]:.1f}" if "load_after" in r else "-"
        rows.append(
            [
                r["model"],
                f"{r['items']:,}",
                _fmt(r.get("fit_per_epoch"), ".2f"),
                _fmt(r.get("infer_per_1k"), ".3f"),
                _fmt(r.get("peak_mb"), ".0f"),
                _fmt(r.get("model_mb"), ".0f"),
                _fmt(r.get("recall"), ".4f"),
                load,
                status,
            ]
        )
    return rows


HEADER = [
    "model",
    "items",
    "fit s/epoch",
    "infer s/1k",
    "peak MB",
    "+model MB",
    f"R@{K}",
    "load",
    "status",
]


def print_table(results: list[dict[str, Any]]) -> None:
    """The model x size table (status messages cut at 100 characters)."""
    rows = [[*row[:-1], row[-1][:100]] for row in table_rows(results)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER[:-1])]
    line = "  ".join(
        h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(HEADER[:-1], widths))
    )
    print(f"{line}  {HEADER[-1]}")
    for r in rows:
        cells = "  ".join(
            c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r[:-1], widths))
        )
        print(f"{cells}  {r[-1]}")


def growth(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: the smallest and largest size it ran at and the ratios largest / smallest
    of fit per epoch, inference per 1k users and peak memory."""
    out: dict[str, dict[str, Any]] = {}
    for model in dict.fromkeys(r["model"] for r in results):
        ok = sorted(
            (r for r in results if r["model"] == model and r["status"] == "ok"),
            key=lambda r: r["items"],
        )
        if len(ok) < 2:
            out[model] = {"sizes": [r["items"] for r in ok]}
            continue
        lo, hi = ok[0], ok[-1]
        out[model] = {
            "sizes": [lo["items"], hi["items"]],
            "catalogue": hi["items"] / lo["items"],
            **{
                key: hi[key] / lo[key] if lo[key] > 0 else None
                for key in ("fit_per_epoch", "infer_per_1k", "peak_mb")
            },
        }
    return out


def observations(results: list[dict[str, Any]]) -> list[str]:
    """Sentences computed from the numbers: how each cost grew with the catalogue, and
    TIGER's inference growth against SASRec's and EASE's."""
    g = growth(results)
    lines = []
    for model, r in g.items():
        if "catalogue" not in r:
            failed = [x for x in results if x["model"] == model and x["status"] != "ok"]
            why = "; ".join(f"{x['items']:,}: {x['status']}" for x in failed)
            lines.append(f"{model}: ran at {len(r['sizes'])} size(s), no ratio ({why})")
            continue
        lo, hi = r["sizes"]
        lines.append(
            f"{model}: {hi:,} / {lo:,} items (x{r['catalogue']:.0f}): inference per 1k users "
            f"x{_fmt(r['infer_per_1k'], '.2f')}, fit per epoch x{_fmt(r['fit_per_epoch'], '.2f')}"
            f", peak memory x{_fmt(r['peak_mb'], '.2f')}"
        )
    tiger = g.get("tiger", {}).get("infer_per_1k")
    if tiger is not None:
        flat = "within" if 1 / 1.5 <= tiger <= 1.5 else "outside"
        lines.append(f"TIGER's inference per 1k users grew x{tiger:.2f} ({flat} 1.5x of flat)")
        for other in ("sasrec", "ease", "als"):
            r = g.get(other, {})
            if r.get("infer_per_1k") is None:
                continue
            same = r["sizes"] == g["tiger"]["sizes"]
            verdict = "less" if tiger < r["infer_per_1k"] else "as much or more"
            lines.append(
                f"  vs {other}: x{r['infer_per_1k']:.2f} over {r['sizes'][1]:,}/{r['sizes'][0]:,}"
                f" items{'' if same else ' (other sizes)'}: TIGER's grew {verdict}"
            )
    return lines


def plot(results: list[dict[str, Any]], path: Path) -> bool:
    """Write the log-log cost curves to ``path`` (SVG); ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [
        ("fit_per_epoch", "fit s / epoch (EASE, ALS: whole fit)"),
        ("infer_per_1k", "inference s / 1k users (top-10)"),
        ("peak_mb", "peak RSS MB (per child process)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    models = list(dict.fromkeys(r["model"] for r in results))
    for ax, (key, title) in zip(axes, panels):
        for model in models:
            pts = sorted(
                (r["items"], r[key])
                for r in results
                if r["model"] == model and r["status"] == "ok" and r.get(key)
            )
            refused = [r["items"] for r in results if r["model"] == model and r["status"] != "ok"]
            label = model + (
                f" (failed at {', '.join(f'{n:,}' for n in refused)})" if refused else ""
            )
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("catalogue size (items)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    return True


def write_report(out: Path, payload: dict[str, Any], svg: Path | None) -> Path:
    """A self-contained ``report.html``: conditions, the inline SVG, the table and the
    observations."""
    rows = table_rows(payload["results"])
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    figure = ""
    if svg is not None and svg.is_file():
        text = svg.read_text()
        figure = text[text.find("<svg") :]
    obs = "".join(f"<li>{html.escape(line)}</li>" for line in payload["observations"])
    codes = "".join(
        f"<li>{r['items']:,} items: {html.escape(codes_note(r['codes']))}</li>"
        for r in payload["results"]
        if "codes" in r
    )
    cond = html.escape(json.dumps(payload["conditions"], indent=1))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>genrec scale curve</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}pre{{font-size:12px}}</style>
</head><body><h1>genrec scale curve</h1>
<p>{html.escape(payload["description"])}</p>{figure}
<table><tr>{head}</tr>{body}</table>
<h2>Growth between the smallest and the largest size</h2><ul>{obs}</ul>
<h2>TIGER's codes</h2><ul>{codes or "<li>TIGER not run</li>"}</ul>
<h2>Conditions</h2><pre>{cond}</pre></body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--items", default="10000,50000,200000", help="catalogue sizes, comma list")
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--mean-length", type=float, default=20.0)
    p.add_argument("--zipf", type=float, default=1.0)
    p.add_argument("--models", default=",".join(ALL_MODELS))
    p.add_argument("--epochs", type=int, default=1, help="epochs of the neural models")
    p.add_argument("--threads", type=int, default=2, help="torch / BLAS / ALS threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ease-max-items",
        type=int,
        default=20_000,
        help="EASE refuses larger catalogues (its max_items)",
    )
    p.add_argument("--tiger-codes", choices=(*TIGER_TOKENIZERS, "random"), default="hkmeans")
    p.add_argument("--tiger-beams", type=int, default=20)
    p.add_argument(
        "--eval-users", type=int, default=0, help="time inference on a sample (0: all test users)"
    )
    p.add_argument("--step-timeout", type=float, default=600.0, help="seconds per model x size")
    p.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE")
    p.add_argument("--out", default=None, help="output folder (default: a new temp folder)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        return args
    args.model_list = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(args.model_list) - set(ALL_MODELS))
    if unknown:
        p.error(f"unknown models {unknown}; choose from {', '.join(ALL_MODELS)}")
    try:
        args.sizes = sorted({int(v) for v in args.items.split(",") if v.strip()})
    except ValueError:
        p.error(f"--items must be a comma list of integers, got {args.items!r}")
    if not args.sizes or min(args.sizes) < 2:
        p.error("--items needs catalogue sizes >= 2")
    if args.tiger_beams < K:
        p.error(f"--tiger-beams must be >= {K}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run the benchmark (or, with ``--child``, one step); returns the written payload."""
    args = parse_args(argv)
    if args.child is not None:
        Path(args.child_out).write_text(json.dumps(run_step(json.loads(args.child))))
        return None
    import genrec

    configs = {m: model_config(m, args.set) for m in args.model_list}
    if "tiger" in configs:
        configs["tiger"].setdefault("num_beams", args.tiger_beams)
    for m, cfg in configs.items():  # fail on a bad --set before any step runs
        try:
            genrec.get_model(m).config_class(**cfg)
        except Exception as exc:  # noqa: BLE001
            raise SystemExit(f"--set: bad config for {m}: {exc}") from None
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="genrec-scale-"))
    out.mkdir(parents=True, exist_ok=True)
    conditions: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": args.threads,
        "load_before": load_avg(),
        "genrec": genrec.__version__,
        "python": sys.version.split()[0],
    }
    description = (
        f"{args.users:,} synthetic users, mean length {args.mean_length:g}, zipf {args.zipf:g}, "
        f"catalogues {', '.join(f'{n:,}' for n in args.sizes)} items (all in the item map); "
        f"leave-one-out test, top-{K} over the whole catalogue, seen items excluded; "
        f"{args.epochs} epoch(s) for the neural models; TIGER codes: {args.tiger_codes}; "
        f"EASE refused above {args.ease_max_items:,} items; one child process per step "
        f"(peak = its ru_maxrss)"
    )
    print(description)
    print(
        f"CPUs {conditions['cpu_count']} (usable {conditions['cpus_usable']}), threads "
        f"{args.threads}, load {conditions['load_before']} at start; output {out}",
        flush=True,
    )
    for m, cfg in configs.items():
        print(f"  {m}: {json.dumps(cfg)}")
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genrec-scale-steps-") as tmp:
        for n_items in args.sizes:
            for m in args.model_list:
                if m == "ease":
                    est = ease_estimate(n_items, int(args.users * args.mean_length))
                    print(
                        f"[ease {n_items:,}] estimate: {est['memory_gib']:.1f} GiB "
                        f"(available {est['available_gib']:.1f}), ~{est['cpu_seconds']:.0f} "
                        f"CPU-s (n^3 from {EASE_REF_CPU_S:.0f} CPU-s at "
                        f"{EASE_REF_ITEMS:,} items); --ease-max-items {args.ease_max_items:,}",
                        flush=True,
                    )
                spec = step_spec(args, m, n_items, configs[m])
                r = run_child(spec, args.step_timeout, Path(tmp))
                results.append(r)
                print_table([r])
                if "codes" in r:
                    print(f"    TIGER codes: {codes_note(r['codes'])}")
                sys.stdout.flush()
                (out / "scale.json").write_text(json.dumps({"results": results}, indent=1))
    conditions["load_after"] = load_avg()
    conditions["seconds"] = time.perf_counter() - t0
    conditions["torch_threads"] = sorted(
        {r["torch_threads"] for r in results if "torch_threads" in r}
    )
    lines = observations(results)
    payload = {
        "description": description,
        "args": {k: v for k, v in vars(args).items() if not k.startswith("child")},
        "configs": configs,
        "conditions": conditions,
        "results": results,
        "growth": growth(results),
        "observations": lines,
    }
    (out / "scale.json").write_text(json.dumps(payload, indent=1))
    svg = out / "scale.svg"
    has_plot = plot(results, svg)
    report = write_report(out, payload, svg if has_plot else None)
    print(
        "\nall results (fit s/epoch: neural models' mean epoch, EASE/ALS the whole fit; "
        "infer s/1k: genrec.evaluate per 1,000 test users; peak MB: the step's ru_maxrss)"
    )
    print_table(results)
    print("\ngrowth, computed from the numbers above:")
    for line in lines:
        print(f"  {line}")
    print(
        f"\nconditions: CPUs {conditions['cpu_count']}, torch threads "
        f"{conditions['torch_threads']}, load {conditions['load_before']} before, "
        f"{conditions['load_after']} after; {conditions['seconds']:.0f} s in all"
    )
    plot_note = str(svg) if has_plot else "no plot: matplotlib missing (pip install genrec[report])"
    print(f"wrote {out / 'scale.json'}, {plot_note}, {report}")
    return payload


if __name__ == "__main__":
    main()
