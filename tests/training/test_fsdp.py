"""FSDP2 under torchrun: 2 CPU processes (gloo) hold half of SASRec's item table each and
train to the weights that one process reaches on the whole batch
(:func:`genrec.distributed.fully_shard_network`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory) -> list[dict]:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available in this build")
    pytest.importorskip("torch.distributed.fsdp", reason="this torch has no FSDP2")
    out = tmp_path_factory.mktemp("fsdp")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(HERE / "fsdp_train.py"), str(out),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"torchrun did not finish in 180 s: {exc.stderr}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_each_rank_holds_half_the_item_table(fsdp_run):
    for info in fsdp_run:
        assert info["table_type"] == "DTensor"
        assert info["table_rows"] == 102 and info["table_local_rows"] == 51
    assert sum(i["local_numel"] for i in fsdp_run) == fsdp_run[0]["numel"]
    for info in fsdp_run:  # Adam's two moments are sharded like the weights
        assert info["adam_local_numel"] == 2 * info["local_numel"]


def test_sharded_training_equals_one_process_on_the_whole_batch(fsdp_run):
    for info in fsdp_run:
        assert max(info["grad_diffs"]) < 1e-6  # the averaged gradients of the whole batch
        assert info["max_param_diff"] < 1e-5, info["param_diffs"]
        assert info["score_diff"] < 1e-4
        assert info["losses"] == pytest.approx(info["ref_losses"], rel=1e-5)
        assert info["losses"][-1] < info["losses"][0]
