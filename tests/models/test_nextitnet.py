"""NextItNet specifics: causal dilated convolutions, receptive field, truncation, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from sequence_checks import (
    check_left_truncation,
    check_trimming_keeps_the_loss,
    variable_length_split,
)

import genrec
from genrec.models.nextitnet import NextItNet, NextItNetConfig, NextItNetNetwork
from genrec.testing import random_recall_at_k, recall_at_k

TINY = yaml.safe_load((Path(__file__).parent / "tiny" / "nextitnet.yaml").read_text())["config"]


def _net(dilations: list[int], n_repeats: int = 1, L: int = 40) -> NextItNetNetwork:
    torch.manual_seed(0)
    cfg = NextItNetConfig(embedding_dim=8, dilations=dilations, n_repeats=n_repeats, max_seq_len=L)
    return NextItNetNetwork(50, cfg).eval()


def test_causal() -> None:
    net = _net([1, 2, 4])
    x = torch.randint(1, 51, (2, 40))
    y = x.clone()
    y[:, 25] = (x[:, 25] % 50) + 1
    with torch.no_grad():
        a, b = net.encode(x), net.encode(y)
    torch.testing.assert_close(a[:, :25], b[:, :25])
    assert not torch.allclose(a[:, 25:], b[:, 25:])


@pytest.mark.parametrize("dilations,n_repeats", [([1, 2], 1), ([1, 2], 2), ([1, 4], 1)])
def test_receptive_field(dilations: list[int], n_repeats: int) -> None:
    net = _net(dilations, n_repeats, L=60)
    rf = net.receptive_field
    # kernel 3, each block convolves with dilations d and 2d
    assert rf == 1 + 2 * sum(3 * d for d in dilations) * n_repeats
    assert rf < 60
    x = torch.randint(1, 51, (1, 60))
    with torch.no_grad():
        base = net.encode(x)[0, -1]
        for offset, changes in ((rf - 1, True), (rf, False), (rf + 3, False)):
            y = x.clone()
            y[0, 59 - offset] = (x[0, 59 - offset] % 50) + 1
            out = net.encode(y)[0, -1]
            assert (not torch.allclose(out, base)) == changes, offset


def test_training_lowers_loss_and_beats_random(split) -> None:
    model = NextItNet(**TINY).fit(split.train)
    losses = [h["loss"] for h in model.training_history_]
    assert losses[-1] < 0.5 * losses[0]
    assert recall_at_k(model, split) > max(0.8, random_recall_at_k(split) + 0.3)


def test_left_truncation(split) -> None:
    model = NextItNet(**{**TINY, "epochs": 1, "max_seq_len": 4}).fit(split.train)
    check_left_truncation(model, split)


def test_save_load_and_config_roundtrip(split, tmp_path: Path) -> None:
    model = NextItNet(**{**TINY, "epochs": 2}).fit(split.train)
    loaded = genrec.load(model.save(tmp_path / "nin"))
    assert loaded.config.dilations == [1, 2]
    users = model.user_map.external_ids
    a, b = model.recommend(users, k=10), loaded.recommend(users, k=10)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_bad_dilations() -> None:
    from genrec.errors import ConfigError

    with pytest.raises(ConfigError, match="dilations"):
        NextItNet(dilations=[1, 0])
    with pytest.raises(ConfigError, match="dilations"):
        NextItNet(dilations=[])


def test_left_padding_changes_nothing() -> None:
    # padding states are held at 0, like the convolutions' own left padding, so the amount
    # of left padding (a trimmed batch's width) leaves every real position unchanged
    net = _net([1, 2, 4], n_repeats=2)
    x = torch.tensor([[0, 0, 0, 5, 6, 7], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 9]])
    with torch.no_grad():
        h = net.encode(x)
        for row in range(3):
            real = int((x[row] > 0).sum())
            alone = net.encode(x[row : row + 1, -real:])  # no padding at all
            torch.testing.assert_close(h[row : row + 1, -real:], alone)
            wider = net.encode(F.pad(x[row : row + 1], (30, 0)))  # more padding
            torch.testing.assert_close(h[row : row + 1, -real:], wider[:, -real:])


@pytest.mark.parametrize("bucket_batches", [0, 4])
def test_trimmed_batches_keep_the_loss(bucket_batches: int) -> None:
    split = variable_length_split()
    cfg = {**TINY, "epochs": 1, "batch_size": 8, "bucket_batches": bucket_batches}
    model = NextItNet(**cfg).fit(split.train)
    check_trimming_keeps_the_loss(model, split, ("inputs", "targets"))
