"""Checks shared by the sequence-model tests (imported by test modules in this folder)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genrec.data.dataset import Dataset
from genrec.data.sequences import epoch_generator
from genrec.data.splitting import Split, leave_one_out
from genrec.testing import make_synthetic_dataset


def variable_length_split(seed: int = 0) -> Split:
    """Leave-one-out split of the synthetic data with histories of 3 to 10 items (each user
    keeps a random number of its newest interactions), so batches mix lengths and padding."""
    ds = make_synthetic_dataset(seq_len=10, seed=seed)
    df = ds.interactions
    keep = np.random.default_rng(seed).integers(3, 11, size=ds.n_users)  # per user
    rank = df.groupby("user_id").cumcount(ascending=False)  # 0 = newest
    users = ds.user_map.to_internal(df["user_id"].to_numpy(), what="user") - 1
    df = df[rank.to_numpy() < keep[users]]
    return leave_one_out(Dataset(df, ds.items, name="synthetic-varlen", item_map=ds.item_map))


def check_left_truncation(model: Any, split: Split) -> list[dict[str, torch.Tensor]]:
    """A model fitted with ``max_seq_len=4`` keeps the newest 4 items of every training
    sequence (inputs and shifted targets), and an ad-hoc history longer than 4 scores exactly
    like its last 4 items. Returns the epoch's batches for model-specific checks."""
    batches = list(model.epoch_batches(split.train, epoch_generator(0, 0)))
    # batches are trimmed to their longest row: left-pad them back to a common width
    width = max(b["inputs"].shape[1] for b in batches)
    inputs = torch.cat([F.pad(b["inputs"], (width - b["inputs"].shape[1], 0)) for b in batches])
    targets = torch.cat([F.pad(b["targets"], (width - b["targets"].shape[1], 0)) for b in batches])
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


def check_trimming_keeps_the_loss(model: Any, split: Split, pad_keys: tuple[str, ...]) -> None:
    """Every training batch of a fitted model gives the same loss (eval mode: no dropout)
    trimmed, as produced, and left-padded back to the full window (``pad_keys`` are the
    ``(B, W)`` tensors to pad with 0): dropping all-padding columns saves compute only.
    Also checks that length bucketing covers every training row once with less padding."""
    net = model.network_
    net.eval()
    full = model.config.max_seq_len
    widths = []
    with torch.no_grad():
        for batch in model.epoch_batches(split.train, epoch_generator(0, 0)):
            width = batch["inputs"].shape[1]
            widths.append(width)
            padded = {
                k: F.pad(v, (full - width, 0)) if k in pad_keys else v for k, v in batch.items()
            }
            torch.testing.assert_close(
                model.training_step(net, batch),
                model.training_step(net, padded),
                rtol=1e-5,
                atol=1e-6,
            )
    assert min(widths) < full  # the synthetic data has short users: something was trimmed
