"""Run under ``torchrun --nproc_per_node=2``: trains the toy model with DDP (gloo, CPU) and
writes ``OUTDIR/rank{r}.safetensors`` (final weights) and ``OUTDIR/rank{r}.json`` (history,
summary, the batches and sequences this rank trained on, the process-group state after fit).

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_train.py OUTDIR``
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file
from toy import Toy

import genrec
from genrec.data.sequences import training_rows
from genrec.testing import make_synthetic_dataset

BATCH_SIZE = 8  # 80 training rows: 10 batches per epoch, 5 per rank
EPOCHS = 4


class CountingToy(Toy):
    """Counts the batches and sequences this process trains on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen_batches = 0
        self.seen_sequences = 0

    def training_step(self, net, batch):
        self.seen_batches += 1
        self.seen_sequences += int(batch["last"].shape[0])
        return super().training_step(net, batch)


def main(out: Path) -> None:
    rank = int(os.environ["RANK"])
    ds = make_synthetic_dataset(n_users=80, n_items=40, seed=3)
    split = genrec.split_dataset(ds, "loo")
    model = CountingToy(
        epochs=EPOCHS, batch_size=BATCH_SIZE, lr=0.05, patience=0, progress=False, device="cpu"
    )
    model.fit(split.train, split.valid)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.network_.state_dict().items()}
    save_file(weights, str(out / f"rank{rank}.safetensors"))
    info = {
        "history": model.training_history_,
        "summary": {k: v for k, v in model.training_info_.items() if k != "history"},
        "seen_batches": model.seen_batches,
        "seen_sequences": model.seen_sequences,
        "n_train_rows": len(training_rows(split.train.histories())),
        "process_group_left": dist.is_initialized(),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(info))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
