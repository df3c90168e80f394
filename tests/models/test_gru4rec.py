"""GRU4Rec specifics: BPR-max against a hand computation, causality, truncation, training."""

from __future__ import annotations

import math
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
from genrec.models.gru4rec import GRU4Rec, GRU4RecConfig, GRU4RecNetwork, bpr_max_loss
from genrec.testing import random_recall_at_k, recall_at_k

TINY = yaml.safe_load((Path(__file__).parent / "tiny" / "gru4rec.yaml").read_text())["config"]


def test_bpr_max_matches_hand_computation() -> None:
    pos = torch.tensor([1.0, 0.5])
    neg = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    bpreg = 0.5

    def one(r: float, negs: list[float]) -> float:
        e = [math.exp(x) for x in negs]
        s = [x / sum(e) for x in e]  # softmax over the negatives only
        hit = sum(sj / (1 + math.exp(-(r - x))) for sj, x in zip(s, negs))
        return -math.log(hit) + bpreg * sum(sj * x * x for sj, x in zip(s, negs))

    expected = (one(1.0, [0.0, 2.0]) + one(0.5, [1.0, -1.0])) / 2
    got = bpr_max_loss(pos, neg, bpreg)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # a masked negative is as if it were absent
    mask = torch.tensor([[True, False], [True, True]])
    expected = (one(1.0, [0.0]) + one(0.5, [1.0, -1.0])) / 2
    assert bpr_max_loss(pos, neg, bpreg, mask).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n_layers,hidden", [(1, 8), (2, 12)])
def test_causal(n_layers: int, hidden: int) -> None:
    torch.manual_seed(0)
    cfg = GRU4RecConfig(embedding_dim=8, hidden_dim=hidden, n_layers=n_layers, max_seq_len=10)
    net = GRU4RecNetwork(30, cfg).eval()
    x = torch.randint(1, 31, (2, 10))
    y = x.clone()
    y[:, 6] = (x[:, 6] % 30) + 1  # change the item at position 6
    with torch.no_grad():
        a, b = net.encode(x), net.encode(y)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


@pytest.mark.parametrize("loss", ["ce", "bpr_max"])
def test_training_lowers_loss_and_beats_random(split, loss: str) -> None:
    extra = {"loss": loss, "n_negatives": 16} if loss == "bpr_max" else {}
    model = GRU4Rec(**TINY, **extra).fit(split.train)
    losses = [h["loss"] for h in model.training_history_]
    assert losses[-1] < 0.5 * losses[0]
    assert recall_at_k(model, split) > max(0.8, random_recall_at_k(split) + 0.3)


def test_left_truncation(split) -> None:
    model = GRU4Rec(**{**TINY, "epochs": 1, "max_seq_len": 4}).fit(split.train)
    check_left_truncation(model, split)


def test_save_load_bpr_max(split, tmp_path: Path) -> None:
    model = GRU4Rec(**{**TINY, "epochs": 2}, loss="bpr_max", n_negatives=8).fit(split.train)
    loaded = genrec.load(model.save(tmp_path / "gru"))
    users = model.user_map.external_ids
    a, b = model.recommend(users, k=10), loaded.recommend(users, k=10)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_bad_config() -> None:
    from genrec.errors import ConfigError

    with pytest.raises(ConfigError, match="loss"):
        GRU4Rec(loss="top1")
    with pytest.raises(ConfigError, match="dropout"):
        GRU4Rec(dropout=1.0)


def test_left_padding_changes_nothing() -> None:
    # packed sequences: each history starts from the zero state at its first item, so the
    # amount of left padding (a trimmed batch's width) leaves every real position unchanged
    torch.manual_seed(0)
    cfg = GRU4RecConfig(embedding_dim=8, hidden_dim=12, n_layers=2, max_seq_len=10)
    net = GRU4RecNetwork(30, cfg).eval()
    x = torch.tensor([[0, 0, 0, 5, 6, 7], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 9]])
    with torch.no_grad():
        h = net.encode(x)
        for row in range(3):
            real = int((x[row] > 0).sum())
            alone = net.encode(x[row : row + 1, -real:])  # no padding at all
            torch.testing.assert_close(h[row : row + 1, -real:], alone)
            wider = net.encode(F.pad(x[row : row + 1], (4, 0)))  # more padding
            torch.testing.assert_close(h[row : row + 1, -real:], wider[:, -real:])


@pytest.mark.parametrize("bucket_batches", [0, 4])
def test_trimmed_batches_keep_the_loss(bucket_batches: int) -> None:
    split = variable_length_split()
    cfg = {**TINY, "epochs": 1, "batch_size": 8, "bucket_batches": bucket_batches}
    model = GRU4Rec(**cfg).fit(split.train)
    check_trimming_keeps_the_loss(model, split, ("inputs", "targets"))
