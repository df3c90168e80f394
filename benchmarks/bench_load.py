"""Peak memory and time of loading + splitting a large Parquet log, before vs after.

Each side runs in its own child process (``ru_maxrss`` is per process), with ``PYTHONPATH``
pointing at its source tree:

* ``after``: this checkout's ``src`` (the Parquet loader reads record batches into
  preallocated arrays);
* ``before``: ``src`` of ``--before-rev`` (default ``5c0b0c5``, the loader that read the
  whole file with ``pandas.read_parquet``), extracted with ``git archive`` into a temporary
  folder.

A child loads the file with ``genrec.load_dataset("parquet", data_dir=FILE)`` and splits it
leave-one-out; it reports seconds and peak RSS after each step. The floor printed beside
them is the size of the raw columns (rows x 8 bytes x columns), what any loader must hold.

Make the file first (20M interactions: 400k users x 200k items, mean length 51)::

    genrec datasets synth --users 400000 --items 200000 --mean-length 51 --zipf 1.0 \\
        --seed 0 --out /tmp/synth20m.parquet
    python benchmarks/bench_load.py /tmp/synth20m.parquet
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, time
import torch
t0 = time.perf_counter()
import genrec
ds = genrec.load_dataset("parquet", data_dir=sys.argv[1])
t1 = time.perf_counter()
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
split = genrec.split_dataset(ds, "loo")
t2 = time.perf_counter()
rss_split = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({
    "n_interactions": ds.n_interactions, "n_users": ds.n_users, "n_items": ds.n_items,
    "n_train": split.train.n_interactions,
    "load_s": t1 - t0, "split_s": t2 - t1, "rss_load": rss_load, "rss_split": rss_split,
    "load_avg": os.getloadavg()[0], "threads": torch.get_num_threads(),
}))
"""


def run_child(src: Path, path: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"child on {src} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def extract_src(rev: str, into: Path) -> Path:
    archive = into / "src.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="Parquet file (or folder of parts)")
    parser.add_argument("--before-rev", default="5c0b0c5", help="git revision of 'before'")
    parser.add_argument("--sides", default="after,before", help="which sides, in order")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    meta = pq.ParquetFile(args.path).metadata if Path(args.path).is_file() else None
    if meta is not None:
        raw = meta.num_rows * 8 * meta.num_columns
        print(
            f"{args.path}: {meta.num_rows:,} rows, {meta.num_columns} columns, "
            f"{meta.num_row_groups} row groups; raw columns {raw / 2**30:.2f} GiB (floor)"
        )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sides.split(","):
            src = REPO / "src" if side == "after" else extract_src(args.before_rev, Path(tmp))
            rows[side] = r = run_child(src, args.path)
            print(
                f"{side:7s} load {r['load_s']:6.1f} s  peak {r['rss_load'] / 2**30:5.2f} GiB | "
                f"+split {r['split_s']:6.1f} s  peak {r['rss_split'] / 2**30:5.2f} GiB | "
                f"{r['n_interactions']:,} interactions, {r['n_users']:,} users, "
                f"{r['n_items']:,} items | load avg {r['load_avg']:.1f}, "
                f"torch threads {r['threads']}",
                flush=True,
            )
    if "after" in rows and "before" in rows:
        a, b = rows["after"], rows["before"]
        assert a["n_interactions"] == b["n_interactions"] and a["n_train"] == b["n_train"]
        print(
            f"peak RSS after/before: load {a['rss_load'] / b['rss_load']:.2f}, "
            f"load+split {a['rss_split'] / b['rss_split']:.2f}"
        )


if __name__ == "__main__":
    main()
