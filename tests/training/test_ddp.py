"""DDP under torchrun: 2 CPU processes (gloo) train the toy model to identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available in this build")
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(HERE / "ddp_train.py"), str(out),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"torchrun did not finish in 120 s: {exc.stderr}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _info(out: Path, rank: int) -> dict:
    return json.loads((out / f"rank{rank}.json").read_text())


def test_ranks_end_with_identical_weights(ddp_run):
    from safetensors.torch import load_file

    w0, w1 = (load_file(str(ddp_run / f"rank{r}.safetensors")) for r in (0, 1))
    assert w0.keys() == w1.keys() and w0
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_loss_decreases_and_validation_is_shared(ddp_run):
    h0, h1 = _info(ddp_run, 0)["history"], _info(ddp_run, 1)["history"]
    assert len(h0) == len(h1) == 4
    assert h0[-1]["loss"] < h0[0]["loss"]
    for a, b in zip(h0, h1):
        assert "ndcg@10" in a and a["ndcg@10"] == b["ndcg@10"]  # rank 0 computes, broadcast
        assert a["loss"] == b["loss"]  # mean over ranks, the same everywhere
    s0, s1 = _info(ddp_run, 0)["summary"], _info(ddp_run, 1)["summary"]
    assert s0["world_size"] == 2 and s0["best_epoch"] == s1["best_epoch"]


def test_each_rank_trains_on_half_the_batches(ddp_run):
    from ddp_train import BATCH_SIZE, EPOCHS

    i0, i1 = _info(ddp_run, 0), _info(ddp_run, 1)
    rows = i0["n_train_rows"]
    assert rows % (2 * BATCH_SIZE) == 0  # the data divides evenly: nothing is dropped
    per_rank = rows // BATCH_SIZE // 2
    assert i0["seen_batches"] == i1["seen_batches"] == per_rank * EPOCHS
    assert i0["seen_sequences"] + i1["seen_sequences"] == rows * EPOCHS
    for rec in i0["history"]:  # throughput and counts are summed over the ranks
        assert rec["sequences"] == rows and rec["batches"] == 2 * per_rank
        assert rec["sequences_per_second"] == pytest.approx(rec["sequences"] / rec["seconds"])


def test_process_group_is_destroyed_after_fit(ddp_run):
    assert not _info(ddp_run, 0)["process_group_left"]
    assert not _info(ddp_run, 1)["process_group_left"]
