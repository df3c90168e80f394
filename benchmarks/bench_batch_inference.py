"""Batch inference throughput: ``genrec.distributed.batch_recommend`` with the local engine,
and with Ray Data on 1 and 2 workers, in the same run on the same artifact.

The data is :func:`genrec.testing.make_synthetic_dataset` scaled up (``--users`` users,
``--items`` items, ``--seq-len`` interactions each); the model is EASE by default. Every
engine writes the top-``k`` lists of every user to Parquet; the Ray outputs are checked to
be identical to the local one. The local engine runs twice, with torch's default threads and
with one (a Ray worker gets one thread per CPU): on an oversubscribed machine one thread can
be the faster. Times are wall clock from the first batch to the file in
place: the Ray numbers include starting the actors and loading the artifact in each (the
local instance of Ray itself is started before timing, as a cluster would be running).
"first batch s" is that fixed cost (until the first lists come back) and "steady users/s"
the throughput after it, with the workers started and the artifact loaded. The
load average and the thread counts (torch in this process, torch in a Ray worker) are
printed beside the times: on a shared machine they explain more than the engine does.

Run: ``python benchmarks/bench_batch_inference.py [--users N --items M --workers 1,2]``
(needs ``pip install 'genrec[distributed]'``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import genrec
from genrec.distributed import batch_recommend, ray_session
from genrec.testing import make_synthetic_dataset


def load_average() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on this platform
        return "n/a"


def worker_threads(ray) -> int:
    """torch's intra-op threads inside a one-CPU Ray worker (Ray sets OMP_NUM_THREADS)."""

    @ray.remote(num_cpus=1)
    def threads() -> int:
        import torch

        return torch.get_num_threads()

    return ray.get(threads.remote())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--model", default="ease")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--workers", default="1,2", help="Ray worker counts, comma-separated")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]

    t0 = time.perf_counter()
    ds = make_synthetic_dataset(
        n_users=args.users, n_items=args.items, seq_len=args.seq_len, n_clusters=20, noise=0.1
    )
    model = genrec.get_model(args.model)().fit(ds)
    print(
        f"{args.model} on synthetic {args.users:,} users x {args.items:,} items "
        f"({ds.n_interactions:,} interactions), fitted in {time.perf_counter() - t0:.1f}s; "
        f"k={args.k}, batch_size={args.batch_size}"
    )
    with tempfile.TemporaryDirectory(prefix="genrec-bench-") as tmp:
        folder = Path(tmp)
        artifact = model.save(folder / "model")
        users = folder / "users.parquet"
        pq.write_table(pa.table({"user_id": model.user_map.external_ids}), users)
        rows: list[dict] = []

        def run(engine: str, n: int | None, threads: int | None = None) -> pd.DataFrame:
            out = folder / f"{engine}-{n}-{threads}.parquet"
            load_before = load_average()
            default_threads = torch.get_num_threads()
            torch.set_num_threads(threads or default_threads)
            result = batch_recommend(
                artifact,
                users,
                out,
                k=args.k,
                engine=engine,  # type: ignore[arg-type]
                num_workers=n,
                batch_size=args.batch_size,
            )
            torch.set_num_threads(default_threads)
            rows.append(
                {
                    "engine": engine,
                    "workers": result.num_workers,
                    "threads": threads or (default_threads if engine == "local" else ray_threads),
                    "seconds": result.seconds,
                    "first batch s": result.first_batch_seconds,
                    "users/s": result.users_per_second,
                    "steady users/s": result.steady_users_per_second,
                    "load before": load_before,
                    "load after": load_average(),
                }
            )
            return pd.read_parquet(out)

        ray_threads = 0
        local = run("local", None)
        pd.testing.assert_frame_equal(run("local", None, threads=1), local)
        with ray_session(num_cpus=max(workers)) as ray:
            ray_threads = worker_threads(ray)
            for n in workers:
                pd.testing.assert_frame_equal(run("ray", n), local)  # identical output
        table = pd.DataFrame(rows)
        table["vs local"] = table["users/s"] / table["users/s"].iloc[0]
        table["steady vs local"] = table["steady users/s"] / table["steady users/s"].iloc[0]
    print(
        f"threads: torch {torch.get_num_threads()} by default in this process (local engine, "
        f"also run with 1), {ray_threads} per Ray worker (1 CPU each); {os.cpu_count()} cores"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    print("Ray outputs identical to the local engine's: yes")


if __name__ == "__main__":
    main()
