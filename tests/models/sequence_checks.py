"""Checks shared by the sequence-model tests (imported by test modules in this folder)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genrec.data.sequences import epoch_generator
from genrec.data.splitting import Split


def check_left_truncation(model: Any, split: Split) -> list[dict[str, torch.Tensor]]:
    """A model fitted with ``max_seq_len=4`` keeps the newest 4 items of every training
    sequence (inputs and shifted targets), and an ad-hoc history longer than 4 scores exactly
    like its last 4 items. Returns the epoch's batches for model-specific checks."""
    batches = list(model.epoch_batches(split.train, epoch_generator(0, 0)))
    inputs = torch.cat([b["inputs"] for b in batches])
    targets = torch.cat([b["targets"] for b in batches])
    assert inputs.shape[1] == 4
    seqs = {tuple(s[-5:-1]): tuple(s[-4:]) for s in split.train.sequences() if len(s) >= 5}
    for x, t in zip(inputs.tolist(), targets.tolist()):
        assert seqs[tuple(x)] == tuple(t)  # the newest items are kept, the oldest dropped
    long = model.item_map.external_ids[:9].tolist()
    a = model.recommend_for_history([long], k=5, exclude_seen=False)
    b = model.recommend_for_history([long[-4:]], k=5, exclude_seen=False)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    return batches
