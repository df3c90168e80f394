"""The fused full-softmax cross-entropy of genrec.nn.losses against torch's reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genrec.nn.losses import full_softmax_ce


def _data(n: int = 25, v: int = 30, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(v + 1, d, generator=g).requires_grad_()  # row 0: padding, as in models
    bias = torch.randn(v, generator=g).requires_grad_()
    h = torch.randn(n, d, generator=g).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g)
    return h, table, bias, y


@pytest.mark.parametrize("chunk_size", [1, 7, 25, 1000])
@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_ce_matches_cross_entropy_and_its_gradients(chunk_size, with_bias):
    h, table, bias, y = _data()
    b = bias if with_bias else None
    logits = h @ table[1:].T + (bias if with_bias else 0.0)
    ref = F.cross_entropy(logits, y)
    params = (h, table, bias) if with_bias else (h, table)
    ref_grads = torch.autograd.grad(ref * 3.0, params)  # an upstream factor is passed through
    loss = full_softmax_ce(h, table[1:], y, bias=b, chunk_size=chunk_size)
    torch.testing.assert_close(loss, ref)
    for got, want in zip(torch.autograd.grad(loss * 3.0, params), ref_grads):
        torch.testing.assert_close(got, want)
    assert table.grad is None  # autograd.grad leaves .grad alone


def test_fused_ce_accumulates_into_grad_like_any_loss():
    h, table, bias, y = _data(seed=1)
    full_softmax_ce(h, table[1:], y, bias=bias, chunk_size=4).backward()
    got = (h.grad.clone(), table.grad.clone(), bias.grad.clone())
    for t in (h, table, bias):
        t.grad = None
    F.cross_entropy(h @ table[1:].T + bias, y).backward()
    for a, b in zip(got, (h.grad, table.grad, bias.grad)):
        torch.testing.assert_close(a, b)
    assert torch.all(got[1][0] == 0)  # the padding row gets no gradient


def test_fused_ce_without_gradients_is_the_same_loss():
    h, table, bias, y = _data(seed=2)
    ref = F.cross_entropy(h @ table[1:].T + bias, y)
    with torch.no_grad():
        torch.testing.assert_close(full_softmax_ce(h, table[1:], y, bias=bias, chunk_size=6), ref)
    only_h = full_softmax_ce(h, table[1:].detach(), y, chunk_size=6)  # weights frozen
    (grad,) = torch.autograd.grad(only_h, h)
    (want,) = torch.autograd.grad(F.cross_entropy(h @ table[1:].detach().T, y), h)
    torch.testing.assert_close(grad, want)


def test_fused_ce_exact_when_the_target_probability_underflows():
    # a target 200 nats below the best item: its softmax probability is 0 in float32, the
    # loss must still be the exact log-sum-exp minus the target logit (not inf, not capped)
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    table = torch.tensor([[200.0, 0.0], [0.0, 0.0], [0.0, 3.0]], requires_grad=True)
    y = torch.tensor([1, 2])
    loss = full_softmax_ce(h, table, y, chunk_size=1)
    ref = F.cross_entropy(h @ table.T, y)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6) and loss.item() > 99
    loss.backward()
    assert torch.isfinite(h.grad).all() and torch.isfinite(table.grad).all()


def test_fused_ce_under_bf16_autocast_is_close_and_keeps_dtypes():
    h, table, bias, y = _data(n=64, v=50, d=16, seed=3)
    ref = F.cross_entropy(h @ table[1:].T + bias, y)
    ref_grads = torch.autograd.grad(ref, (h, table, bias))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = full_softmax_ce(h, table[1:], y, bias=bias, chunk_size=16)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=2e-2)
    grads = torch.autograd.grad(loss, (h, table, bias))
    for got, want in zip(grads, ref_grads):
        assert got.dtype == want.dtype == torch.float32
        assert (got - want).norm() / want.norm() < 0.05


def test_fused_ce_empty_and_bad_chunk():
    h, table, bias, y = _data()
    empty = full_softmax_ce(h[:0], table[1:], y[:0], bias=bias)
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match="chunk_size"):
        full_softmax_ce(h, table[1:], y, chunk_size=0)
