"""Bounded load test of ``genrec serve`` on 127.0.0.1: requests/s and latency vs in-process.

For each model (EASE on movielens-small by default, plus item-KNN) the script

1. measures the baseline: sequential in-process ``model.recommend([user], k)`` calls/s on the
   artifact as loaded from disk (what the server runs);
2. starts the server in a subprocess (``genrec.serve.run`` on a free localhost port);
3. sends a fixed number of ``POST /recommend`` requests (one user each, k=10) from N client
   threads with keep-alive connections (``http.client``), under a wall-clock cap;
4. prints requests/s, p50/p90/p99/max latency, error count, and the ratio of server
   requests/s to in-process calls/s (below 1: HTTP overhead; above 1: micro-batching gain).

Goal on 2 CPU cores: >= 200 requests/s with p99 < 100 ms and no errors for EASE at k=10.
Machine load (``uptime``) is printed before and after, since the cores may be shared.

Run::

    python benchmarks/bench_serve.py                       # fits EASE/item-KNN (about 1 min)
    python benchmarks/bench_serve.py --artifact artifacts/ease --artifact artifacts/itemknn
    python benchmarks/bench_serve.py --requests 2000 --concurrency 8 --no-micro-batch
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import genrec

GOAL_RPS, GOAL_P99_MS = 200.0, 100.0


def load_average() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit_artifacts(dataset: str, models: list[str], out: Path) -> list[Path]:
    """Fit ``models`` on all of ``dataset`` (as ``genrec train --full`` does) and save them."""
    ds = genrec.load_dataset(dataset)
    paths = []
    for name in models:
        start = time.perf_counter()
        model = genrec.get_model(name)().fit(ds)
        paths.append(model.save(out / name))
        print(f"fitted {name} on {dataset} in {time.perf_counter() - start:.1f}s")
    return paths


def baseline(model: Any, users: np.ndarray, k: int, seconds: float = 3.0) -> float:
    """Sequential in-process ``recommend([user], k)`` calls per second."""
    for u in users[:5]:
        model.recommend([u], k=k)  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and n < 20 * len(users):
        model.recommend([users[n % len(users)]], k=k)
        n += 1
    return n / (time.perf_counter() - start)


def start_server(paths: list[Path], port: int, micro_batch: bool) -> subprocess.Popen:
    code = (
        "import sys; from genrec.serve import run; "
        f"run({[str(p) for p in paths]!r}, port={port}, micro_batch={micro_batch}, "
        "log_level='warning')"
    )
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy in 120 s")


def load_test(
    port: int,
    model: str,
    users: list[Any],
    *,
    requests: int,
    concurrency: int,
    k: int,
    time_cap: float,
) -> dict[str, Any]:
    """``requests`` POST /recommend calls from ``concurrency`` threads (stops at ``time_cap``)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + time_cap

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body = json.dumps({"model": model, "user_id": users[i % len(users)], "k": k})
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/recommend", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                ok = resp.status == 200 and len(json.loads(data)["items"]) == k
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                ok, data = False, repr(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if not ok:
                    errors.append(data[:200].decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat_ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat_ms, 50)),
        "p90_ms": float(np.percentile(lat_ms, 90)),
        "p99_ms": float(np.percentile(lat_ms, 99)),
        "max_ms": float(lat_ms.max()),
        "capped": len(latencies) < requests,
    }


def batch_rate(port: int, model: str, users: list[Any], k: int, n: int = 20) -> float:
    """Users/s through ``POST /recommend/batch`` with 100 users per request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start, served = time.perf_counter(), 0
    for i in range(n):
        chunk = [users[(i * 100 + j) % len(users)] for j in range(100)]
        body = json.dumps({"model": model, "user_ids": chunk, "k": k})
        conn.request(
            "POST", "/recommend/batch", body=body, headers={"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        resp.read()
        served += 100 if resp.status == 200 else 0
    return served / (time.perf_counter() - start)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifact", action="append", default=[], help="artifact dir (repeatable)")
    p.add_argument(
        "--dataset", default="movielens-small", help="dataset to fit on without --artifact"
    )
    p.add_argument("--models", default="ease,itemknn", help="models to fit without --artifact")
    p.add_argument("--requests", type=int, default=2000, help="requests per model")
    p.add_argument("--concurrency", type=int, default=8, help="client threads")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds per model at most")
    p.add_argument("--no-micro-batch", action="store_true", help="one model call per request")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)  # the in-process baseline shares the cores with nothing else
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
    tmp = None
    if args.artifact:
        paths = [Path(a) for a in args.artifact]
    else:
        tmp = tempfile.TemporaryDirectory(prefix="genrec-bench-serve-")
        paths = fit_artifacts(args.dataset, args.models.split(","), Path(tmp.name))

    models = {}
    for path in paths:
        m = genrec.load(path)
        models[m.name] = m
    rng = np.random.default_rng(0)
    port = free_port()
    server = start_server(paths, port, micro_batch=not args.no_micro_batch)
    rows = []
    try:
        for name, model in models.items():
            ext = model.user_map.external_ids
            users = [u.item() if hasattr(u, "item") else u for u in rng.permutation(ext)]
            base = baseline(model, np.asarray(users, dtype=object), args.k)
            res = load_test(
                port,
                name,
                users,
                requests=args.requests,
                concurrency=args.concurrency,
                k=args.k,
                time_cap=args.time_cap,
            )
            res.update(model=name, baseline_calls_per_s=base, ratio=res["rps"] / base)
            res["batch_users_per_s"] = batch_rate(port, name, users, args.k)
            rows.append(res)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if tmp is not None:
            tmp.cleanup()

    mode = "off" if args.no_micro_batch else "on"
    print(
        f"\n{args.requests} requests per model, {args.concurrency} client threads, k={args.k}, "
        f"micro-batching {mode}, 127.0.0.1"
    )
    header = (
        f"{'model':<11}{'req/s':>8}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'errors':>7}{'in-proc/s':>10}{'ratio':>7}{'batch users/s':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['model']:<11}{r['rps']:>8.0f}{r['p50_ms']:>8.1f}{r['p90_ms']:>8.1f}"
            f"{r['p99_ms']:>8.1f}{r['max_ms']:>8.0f}{r['errors']:>7d}"
            f"{r['baseline_calls_per_s']:>10.0f}{r['ratio']:>7.2f}{r['batch_users_per_s']:>14.0f}"
            + ("  (time cap hit)" if r["capped"] else "")
        )
        if r["first_error"]:
            print(f"  first error: {r['first_error']}")
    print(f"load average after: {load_average()}")
    first = rows[0]
    ok = first["rps"] >= GOAL_RPS and first["p99_ms"] < GOAL_P99_MS and first["errors"] == 0
    print(
        f"goal ({first['model']}: >= {GOAL_RPS:.0f} req/s, p99 < {GOAL_P99_MS:.0f} ms, 0 errors): "
        + ("met" if ok else "NOT met")
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load_average(), "rows": rows}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
