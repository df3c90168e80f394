"""``kill -9`` in the middle of training, then resume: bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from toy import Toy

import genrec
from genrec.testing import make_synthetic_dataset
from genrec.training import find_checkpoint

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
CONFIG = dict(epochs=8, batch_size=16, lr=0.05, patience=0, progress=False, device="cpu", seed=5)

# the child trains the same model, only slowed down (sleeping does not touch any RNG)
CHILD = textwrap.dedent(
    """
    import sys, time
    import genrec
    from genrec.testing import make_synthetic_dataset
    from toy import Toy

    class SlowToy(Toy):
        def epoch_batches(self, dataset, generator):
            for batch in super().epoch_batches(dataset, generator):
                time.sleep(0.05)
                yield batch

    split = genrec.split_dataset(make_synthetic_dataset(n_users=80, n_items=40, seed=3), "loo")
    print("training", flush=True)
    SlowToy(**CONFIG).fit(split.train, split.valid, checkpoint_dir=sys.argv[1])
    """
).replace("CONFIG", repr(CONFIG))


@pytest.fixture(autouse=True)
def _one_thread():
    """The toy is tiny: with other jobs on the machine, thread contention dominates."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _split():
    return genrec.split_dataset(make_synthetic_dataset(n_users=80, n_items=40, seed=3), "loo")


def _checkpoint_epoch(ckpt: Path) -> int:
    try:
        return int(json.loads((ckpt / "last" / "trainer.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):  # not there yet, or swapped while reading
        return -1


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    env["OMP_NUM_THREADS"] = "1"  # same as this process (see _one_thread)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ckpt)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core machine starts torch slowly
        while _checkpoint_epoch(ckpt) < 2:
            if child.poll() is not None:
                pytest.fail(
                    f"child exited ({child.returncode}) before epoch 2: {child.stderr.read()}"
                )
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint for epoch >= 2 within 120 s")
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, "the child finished before it was killed"

    # atomicity: what the kill left is a complete checkpoint, never a half-written one
    found = find_checkpoint(ckpt)
    assert found is not None
    assert found == ckpt / "last" or found.name.startswith(".last.old-")
    meta = json.loads((found / "trainer.json").read_text())
    tensors = load_file(str(found / "state.safetensors"))
    killed_at = int(meta["epoch"])
    assert 2 <= killed_at < CONFIG["epochs"]
    assert len(meta["history"]) == killed_at and "rng.torch" in tensors
    assert any(k.startswith("optim.") for k in tensors)

    split = _split()
    resumed = Toy(**CONFIG).fit(split.train, split.valid, checkpoint_dir=ckpt, resume=True)
    assert resumed.training_info_["resumed_from_epoch"] == killed_at
    full = Toy(**CONFIG).fit(split.train, split.valid)
    wa, wb = full.network_.state_dict(), resumed.network_.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [h["loss"] for h in resumed.training_history_] == [
        h["loss"] for h in full.training_history_
    ]
    final = json.loads((ckpt / "last" / "trainer.json").read_text())
    assert final["epoch"] == CONFIG["epochs"]
    assert not list(ckpt.glob(".last.*"))  # leftovers of the killed swap are cleaned up
