"""HSTU specifics: the layer formula against numpy, pointwise (not softmax) attention,
causality, the time bias, timestamps through save/load, truncation, training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sequence_checks import (
    check_left_truncation,
    check_trimming_keeps_the_loss,
    variable_length_split,
)

import genrec
from genrec.data.dataset import Dataset
from genrec.models.hstu import HSTU, HSTUConfig, HSTULayer, HSTUNetwork, time_buckets
from genrec.testing import make_synthetic_dataset, random_recall_at_k, recall_at_k

TINY = yaml.safe_load((Path(__file__).parent / "tiny" / "hstu.yaml").read_text())["config"]


@pytest.fixture(scope="module")
def fitted(split):
    return HSTU(**TINY).fit(split.train)


def _layer(L: int = 5, n_buckets: int = 8) -> HSTULayer:
    torch.manual_seed(0)
    layer = HSTULayer(4, 1, 3, 2, L, n_buckets, 0.0).eval()
    with torch.no_grad():  # non-trivial biases (they start at zero)
        layer.pos_bias.normal_()
        layer.time_bias.normal_()
    return layer


def _ln(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def test_layer_matches_numpy_formula() -> None:
    """Paper eq. 1-3 on a 1-head example: A = SiLU(QK^T + rab) / n, no softmax."""
    L = 5
    layer = _layer(L)
    x = torch.randn(1, L, 4)
    times = torch.tensor([[0.0, 3.0, 100.0, 5000.0, 5001.0]])
    idx = torch.arange(L)
    mask = (idx[:, None] >= idx[None, :])[None]  # (1, L, L) causal
    rel = (idx[:, None] - idx[None, :]).clamp(0, L - 1)
    tb = time_buckets(times, 8)
    with torch.no_grad():
        got = layer(x, mask, rel, tb)[0].numpy()

    p = {k: v.detach().double().numpy() for k, v in layer.state_dict().items()}
    X = x[0].double().numpy()
    uvqk = _silu(_ln(X) @ p["f1.weight"].T + p["f1.bias"])  # LayerNorm weights are 1, 0
    U, V, Q, K = uvqk[:, :2], uvqk[:, 2:4], uvqk[:, 4:7], uvqk[:, 7:10]
    t = times[0].double().numpy()
    A = np.zeros((L, L))
    for i in range(L):
        for j in range(i + 1):
            bucket = min(int(math.floor(math.log(max(abs(t[i] - t[j]), 1.0)) / 0.301)), 7)
            s = Q[i] @ K[j] + p["pos_bias"][i - j, 0] + p["time_bias"][bucket, 0]
            A[i, j] = _silu(s) / L
    Y = (_ln(A @ V) * U) @ p["f2.weight"].T + p["f2.bias"] + X
    np.testing.assert_allclose(got, Y, rtol=1e-4, atol=1e-5)
    assert not np.allclose(A.sum(1), 1.0)  # not a softmax: rows do not sum to one


def test_attention_is_pointwise_not_softmax() -> None:
    """A softmax is invariant to adding one constant to every score of a row; pointwise
    SiLU attention is not, so shifting the position bias everywhere changes the output."""
    layer = _layer()
    x = torch.randn(1, 5, 4)
    idx = torch.arange(5)
    mask = (idx[:, None] >= idx[None, :])[None]
    rel = (idx[:, None] - idx[None, :]).clamp(0, 4)
    with torch.no_grad():
        a = layer(x, mask, rel)
        layer.pos_bias += 3.0  # a softmax would be unchanged by a constant shift
        b = layer(x, mask, rel)
    assert not torch.allclose(a, b)


def _net(**kw) -> HSTUNetwork:
    torch.manual_seed(0)
    cfg = HSTUConfig(
        embedding_dim=8, attention_dim=4, linear_dim=4, n_heads=2, max_seq_len=12, **kw
    )
    net = HSTUNetwork(30, cfg).eval()
    with torch.no_grad():
        for layer in net.layers:
            layer.pos_bias.normal_()
            layer.time_bias.normal_()
    return net


def test_causal() -> None:
    net = _net()
    x = torch.randint(1, 31, (2, 12))
    x[0, :3] = 0  # left padding
    times = torch.cumsum(torch.rand(2, 12) * 1e5, 1)
    y, ty = x.clone(), times.clone()
    y[:, 7] = (x[:, 7] % 30) + 1
    ty[:, 9:] += 1e6  # later timestamps move too
    with torch.no_grad():
        a, b = net.encode(x, times), net.encode(y, ty)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_padding_does_not_leak() -> None:
    """A row's outputs do not depend on how much left padding precedes it."""
    net = _net()
    seq = torch.randint(1, 31, (1, 6))
    short = torch.cat([torch.zeros(1, 6, dtype=torch.long), seq], 1)  # (1, 12)
    t = torch.cat([torch.zeros(1, 6), torch.arange(6.0)[None] * 1000], 1)
    other = short.clone()
    other[0, :6] = 0
    with torch.no_grad():
        a = net.encode(short, t)[:, 6:]
        pad_emb = net.item_emb.weight[0].abs().sum()
    assert pad_emb == 0
    with torch.no_grad():
        b = net.encode(other, t + 7)[:, 6:]  # a constant time offset changes nothing
    torch.testing.assert_close(a, b)


def test_time_bias_changes_outputs() -> None:
    net = _net()
    x = torch.randint(1, 31, (1, 12))
    t1 = torch.arange(12.0)[None] * 60
    t2 = torch.arange(12.0)[None] * 86_400
    with torch.no_grad():
        a, b, c = net(x, times=t1), net(x, times=t2), net(x)
        # time_valid = 0 is the same as no times at all
        d = net(x, times=t2, time_valid=torch.zeros(1))
    assert not torch.allclose(a, b)
    assert not torch.allclose(a, c)
    torch.testing.assert_close(c, d)
    off = _net(time_bias=False)
    with torch.no_grad():
        torch.testing.assert_close(off(x, times=t1), off(x, times=t2))


def test_training_lowers_loss_and_beats_random(split, fitted) -> None:
    losses = [h["loss"] for h in fitted.training_history_]
    assert losses[-1] < 0.5 * losses[0]
    assert recall_at_k(fitted, split) > max(0.8, random_recall_at_k(split) + 0.3)
    ce = HSTU(**{**TINY, "loss": "ce", "l2_norm": False}).fit(split.train)
    assert recall_at_k(ce, split) > max(0.8, random_recall_at_k(split) + 0.3)


def test_known_users_use_their_timestamps(split, fitted) -> None:
    """Histories carry their timestamps: the same sequences without times score
    differently; the test-time history (train + validation) brings its own times."""
    hist = fitted.train_histories_
    assert hist.seq_times is not None and len(hist.seq_times) == len(hist.seq_items)
    users = np.arange(1, 6)
    batch = hist.batch(users)
    known = fitted.score(batch)
    batch.seq_times = None  # the same sequences, ad hoc (no times)
    adhoc = fitted.score(batch)
    assert not torch.allclose(known, adhoc)
    full = split.test.history.histories()  # train + validation item, with its real time
    assert full.seq_times is not None and len(full.seq_times) == len(full.seq_items)


def test_save_load_keeps_timestamps(split, fitted, tmp_path: Path) -> None:
    loaded = genrec.load(fitted.save(tmp_path / "hstu"))
    np.testing.assert_array_equal(
        loaded.train_histories_.seq_times, fitted.train_histories_.seq_times
    )
    users = fitted.user_map.external_ids
    for kw in ({}, {"history": split.test.history}):
        a, b = fitted.recommend(users, k=10, **kw), loaded.recommend(users, k=10, **kw)
        np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


def test_no_timestamps_means_no_time_bias(tmp_path: Path) -> None:
    ds = make_synthetic_dataset()
    frame = ds.interactions.drop(columns=["timestamp"])
    plain = Dataset(pd.DataFrame(frame), user_map=ds.user_map, item_map=ds.item_map)
    assert not plain.has_timestamps
    model = HSTU(**{**TINY, "epochs": 2}).fit(plain)
    assert model.train_histories_.seq_times is None
    assert model._batch_times(model.train_histories_.batch(np.arange(1, 4)), 8) is None
    loaded = genrec.load(model.save(tmp_path / "plain"))
    assert loaded.train_histories_.seq_times is None
    users = model.user_map.external_ids
    np.testing.assert_allclose(
        model.recommend(users, k=5).scores, loaded.recommend(users, k=5).scores, rtol=1e-6
    )
    off = HSTU(**{**TINY, "epochs": 1, "time_bias": False}).fit(ds)
    assert off._batch_times(off.train_histories_.batch(np.arange(1, 4)), 8) is None


def test_left_truncation(split) -> None:
    model = HSTU(**{**TINY, "epochs": 1, "max_seq_len": 4}).fit(split.train)
    batches = check_left_truncation(model, split)
    inputs = torch.cat([b["inputs"] for b in batches])
    times = torch.cat([b["times"] for b in batches])
    assert times.shape == inputs.shape
    assert (times[:, -1] == 0).all() and (times <= 0).all()  # relative to the newest input


@pytest.mark.parametrize("loss,bucket_batches", [("sampled_softmax", 0), ("ce", 4)])
def test_trimmed_batches_keep_the_loss(loss: str, bucket_batches: int) -> None:
    # positions count among real items, the divisor is the constant max_seq_len and padding
    # keys are masked: dropping all-padding columns (times too) changes no loss
    split = variable_length_split()
    cfg = {**TINY, "epochs": 1, "batch_size": 8, "loss": loss, "bucket_batches": bucket_batches}
    model = HSTU(**cfg).fit(split.train)
    check_trimming_keeps_the_loss(model, split, ("inputs", "targets", "times"))


def test_trimmed_scoring_gives_the_same_scores(split, fitted) -> None:
    users = np.arange(1, 9)
    batch = fitted.train_histories_.batch(users)
    L = fitted.config.max_seq_len
    seqs = torch.from_numpy(batch.padded_sequences(L))
    rel, ok = fitted._batch_times(batch, L)
    with torch.no_grad():
        full = fitted.network_.eval()(
            seqs, times=torch.from_numpy(rel.astype(np.float32)), time_valid=torch.from_numpy(ok)
        )
    torch.testing.assert_close(fitted._score(batch), full)
