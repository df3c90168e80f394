"""Next-item training losses as pure functions (no modules, no state).

All take logits of *valid* positions only (callers select non-padding positions first), so
shapes are flat: ``N`` positions, ``K`` negatives per position, ``V`` catalogue items.

* :func:`bce_one_negative`: SASRec's loss (Kang & McAuley, ICDM 2018, Eq. 8): one sampled
  negative per positive, binary cross-entropy.
* :func:`gbce`: generalised BCE of gSASRec (Petrov & Macdonald, RecSys 2023, Eq. 12-13):
  the positive probability is raised to ``beta`` to undo the overconfidence that negative
  sampling induces; ``t = 0`` is plain BCE with ``K`` negatives, ``t = 1`` is fully calibrated.
* :func:`sampled_softmax`: softmax over the positive and ``K`` sampled negatives, with the
  optional logQ correction of Yi et al. (RecSys 2019, Eq. 3) for non-uniform samplers.
* :func:`full_softmax_ce`: cross-entropy over the whole catalogue (BERT4Rec, and SASRec-CE of
  Klenitskiy & Vasilev, RecSys 2023), fused with its gradients and computed in cache-sized
  chunks of positions, so the ``(N, V)`` logits never exist at once, forward or backward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def _masked_mean(per_pos: torch.Tensor) -> torch.Tensor:
    return per_pos.mean() if per_pos.numel() else per_pos.sum()  # 0 (not NaN) when empty


def bce_one_negative(pos_logits: torch.Tensor, neg_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with one negative per positive (SASRec, Eq. 8).

    ``-log sigma(s+) - log(1 - sigma(s-))`` = ``softplus(-s+) + softplus(s-)``, averaged.

    Args:
        pos_logits: ``(N,)`` scores of the true next items.
        neg_logits: ``(N,)`` scores of one sampled negative each.

    Returns:
        Scalar mean loss.
    """
    per_pos = F.softplus(-pos_logits) + F.softplus(neg_logits)  # (N,)
    return _masked_mean(per_pos)


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """gSASRec's power ``beta = alpha (t (1 - 1/alpha) + 1/alpha)`` with the sampling rate
    ``alpha = K / (|I| - 1)`` (Petrov & Macdonald 2023, Eq. 13). ``t = 0`` gives
    ``beta = 1`` (BCE); ``t = 1`` gives ``beta = alpha``."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"gbce t must be in [0, 1], got {t}")
    alpha = n_negatives / max(n_items - 1, 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def gbce(
    pos_logits: torch.Tensor,
    neg_logits: torch.Tensor,
    n_items: int,
    t: float,
    neg_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generalised binary cross-entropy (gSASRec, Petrov & Macdonald 2023, Eq. 12).

    ``-log(sigma(s+)^beta) - sum_j log(1 - sigma(s-_j))``
    = ``beta softplus(-s+) + sum_j softplus(s-_j)``, computed in log space (stable: the
    official code's ``logit(sigma(s+)^beta)`` detour needs clamping).

    Args:
        pos_logits: ``(N,)`` positive scores.
        neg_logits: ``(N, K)`` scores of ``K`` uniformly sampled negatives.
        n_items: catalogue size ``|I|`` (for ``alpha``).
        t: calibration in ``[0, 1]``; ``0`` is BCE with ``K`` negatives.
        neg_mask: optional ``(N, K)`` bool, ``True`` for negatives to ignore (accidental
            hits: a sampled negative equal to the positive).

    Returns:
        Scalar loss averaged over positions and summed over negatives. Eq. 12 and the
        official code also divide by ``1 + K``; that constant factor is left out here so that
        ``t = 0, K = 1`` is SASRec's Eq. 8 (under Adam it changes nothing but the loss scale).

    Note:
        With ``K`` negatives the constant score minimising this loss is the prior log-odds
        ``log(beta / K)`` (about -6.9 for ``K = 256``, ``t = 0.75``, 12k items); a model
        scoring ``h . e_i`` needs an output bias started there (see
        :class:`~genrec.models.sasrec.SASRecNetwork`) or it reaches that shift by collapsing
        its item embeddings onto one shared direction.
    """
    beta = gbce_beta(neg_logits.shape[-1], n_items, t)
    neg = F.softplus(neg_logits)  # (N, K)
    if neg_mask is not None:
        neg = neg.masked_fill(neg_mask, 0.0)
    per_pos = beta * F.softplus(-pos_logits) + neg.sum(-1)  # (N,)
    return _masked_mean(per_pos)


def sampled_softmax(
    pos_logits: torch.Tensor,
    neg_logits: torch.Tensor,
    log_q_pos: torch.Tensor | None = None,
    log_q_neg: torch.Tensor | None = None,
    neg_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy over the positive and ``K`` sampled negatives.

    With a non-uniform sampler pass the log sampling probabilities: logits become
    ``s - log Q(i)`` (logQ correction, Yi et al. RecSys 2019, Eq. 3). Under uniform sampling
    ``log Q`` is a constant and cancels, so it can be left out.

    Args:
        pos_logits: ``(N,)``.
        neg_logits: ``(N, K)``.
        log_q_pos: optional ``(N,)`` log sampling probability of each positive.
        log_q_neg: optional ``(N, K)`` log sampling probability of each negative, or
            ``(1, K)`` when the negatives are shared by every position (broadcast).
        neg_mask: optional ``(N, K)`` bool, ``True`` for negatives to drop (accidental hits).

    Returns:
        Scalar mean of ``-log softmax([s+, s-_1..K])[0]``.
    """
    if log_q_pos is not None:
        pos_logits = pos_logits - log_q_pos
    if log_q_neg is not None:
        neg_logits = neg_logits - log_q_neg
    if neg_mask is not None:
        neg_logits = neg_logits.masked_fill(neg_mask, float("-inf"))
    logits = torch.cat([pos_logits[:, None], neg_logits], dim=-1)  # (N, 1 + K)
    per_pos = torch.logsumexp(logits, dim=-1) - pos_logits  # (N,)
    return _masked_mean(per_pos)


def _ce_dtype(device: torch.device) -> torch.dtype:
    """The matmul dtype of the fused loss: the autocast dtype when autocast is on for
    ``device`` (bf16 products, float32 softmax), else float32."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return torch.float32


def _ce_chunk_logits(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    logits = torch.mm(h, w.T)  # (c, V) in the compute dtype
    logits = logits.float() if logits.dtype != torch.float32 else logits
    if bias is not None:
        logits = logits + bias
    return logits


class _FusedLinearCrossEntropy(torch.autograd.Function):
    """``sum_n -log softmax(h_n E^T + b)[y_n]`` with its gradients computed chunk by chunk
    in the forward pass (the "fused linear cross-entropy" of Liger-Kernel and of Wijmans et
    al. 2024, "Cut Your Losses in Large-Vocabulary Language Models"): per chunk of positions
    the logits are made, turned in place into ``softmax - onehot`` (the gradient of the loss
    with respect to the logits) and multiplied back into the gradients of ``h``, ``E`` and
    ``b`` while they are still in cache. The ``(N, V)`` logits never exist; backward only
    scales the stored gradients. Exactly the three products of an unfused loss
    (``6 N V D`` FLOP) and one softmax kernel per chunk, in one reused buffer."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        chunk_size: int,
        compute_dtype: torch.dtype,
    ) -> torch.Tensor:
        n_pos, dev = hidden.shape[0], hidden.device
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        h = hidden.detach().to(compute_dtype)
        w = weight.detach().to(compute_dtype)
        b = None if bias is None else bias.detach().float()
        low = compute_dtype != torch.float32
        grad_h = torch.empty(hidden.shape, dtype=torch.float32, device=dev)
        grad_wt = torch.zeros(weight.shape[::-1], dtype=torch.float32, device=dev)  # (D, V)
        grad_b = None if b is None or not need_b else torch.zeros_like(b)
        losses = torch.empty(n_pos, dtype=torch.float32, device=dev)
        rows = min(chunk_size, n_pos)
        buf = torch.empty(rows, weight.shape[0], dtype=torch.float32, device=dev)  # (c, V)
        low_buf = torch.empty(buf.shape, dtype=compute_dtype, device=dev) if low else None
        arange = torch.arange(rows, device=dev)
        for start in range(0, n_pos, chunk_size):
            hc, y = h[start : start + chunk_size], targets[start : start + chunk_size]
            c = hc.shape[0]
            logits = buf[:c]
            if low_buf is None:
                torch.mm(hc, w.T, out=logits)  # (c, V)
            else:
                logits.copy_(torch.mm(hc, w.T, out=low_buf[:c]))
            if b is not None:
                logits.add_(b)
            target_logit = logits.gather(1, y[:, None])[:, 0]  # (c,)
            probs = torch.ops.aten._softmax.out(logits, 1, False, out=logits)  # in place
            p_target = probs.gather(1, y[:, None])[:, 0]
            loss = losses[start : start + c]
            torch.neg(p_target.log(), out=loss)
            tiny = p_target < 1e-30  # p underflowed: recompute those rows' log-sum-exp
            if bool(tiny.any()):
                lg = torch.mm(hc[tiny], w.T).float()
                lg = lg if b is None else lg + b
                loss[tiny] = torch.logsumexp(lg, 1) - target_logit[tiny]
            probs[arange[:c], y] -= 1.0  # d loss / d logits = softmax - onehot
            g = probs if low_buf is None else low_buf[:c].copy_(probs)
            if need_h:
                if low:
                    grad_h[start : start + c] = torch.mm(g, w)
                else:
                    torch.mm(g, w, out=grad_h[start : start + c])  # (c, D)
            if need_w:  # (D, c) @ (c, V): this orientation is ~2x faster than (V, c) @ (c, D)
                if low:
                    grad_wt += torch.mm(hc.T, g)
                else:
                    grad_wt.addmm_(hc.T, g)
            if grad_b is not None:
                grad_b += probs.sum(0)
        ctx.save_for_backward(grad_h, grad_wt, grad_b if grad_b is not None else grad_h[:0, 0])
        ctx.has_bias = grad_b is not None
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        return losses.sum(dtype=torch.float64).float()

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):  # type: ignore[override]
        grad_h, grad_wt, grad_b = ctx.saved_tensors
        dh, dw, db = ctx.dtypes
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        return (
            (grad_h * grad_out).to(dh) if need_h else None,
            (grad_wt.T * grad_out).to(dw) if need_w else None,
            (grad_b * grad_out).to(db) if ctx.has_bias and need_b else None,
            None,
            None,
            None,
        )


def full_softmax_ce(
    hidden: torch.Tensor,
    item_emb: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk_size: int = 128,
) -> torch.Tensor:
    """Cross-entropy over the full catalogue, ``-log softmax(h E^T + b)[target]``, averaged.

    With gradients enabled this is a fused loss (:class:`_FusedLinearCrossEntropy`): positions
    are processed ``chunk_size`` at a time and each chunk's gradients are formed while its
    ``(chunk_size, V)`` logits are in cache, so peak memory is ``O(chunk_size x V)`` and
    nothing is recomputed in backward. The default chunk (128 positions x 12k items = 6 MB
    of float32 logits) was tuned on a 2-core Xeon (docs/benchmarks.md, "Training at the
    roof"); larger chunks spill out of cache and are slower, not faster. Under autocast the
    three products run in the autocast dtype (bf16), the softmax in float32. The loss does
    not support double backward.

    Args:
        hidden: ``(N, D)`` final hidden states of the positions to train.
        item_emb: ``(V, D)`` output item embeddings (real items only: no padding row).
        targets: ``(N,)`` int64 in ``[0, V)``, row indices of ``item_emb``.
        bias: optional ``(V,)`` output bias.
        chunk_size: positions per chunk.

    Returns:
        Scalar mean loss (0 for ``N = 0``).
    """
    n_pos = hidden.shape[0]
    if n_pos == 0:
        zero = hidden.sum() * 0.0 + item_emb.sum() * 0.0
        return zero if bias is None else zero + bias.sum() * 0.0
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    compute_dtype = _ce_dtype(hidden.device)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (hidden, item_emb, bias)
    )
    if needs_grad:
        with torch.autocast(hidden.device.type, enabled=False):
            total = _FusedLinearCrossEntropy.apply(
                hidden, item_emb, bias, targets, chunk_size, compute_dtype
            )
        return total / n_pos
    total = hidden.new_zeros((), dtype=torch.float32)
    h, w = hidden.to(compute_dtype), item_emb.to(compute_dtype)
    b = None if bias is None else bias.float()
    for start in range(0, n_pos, chunk_size):
        logits = _ce_chunk_logits(h[start : start + chunk_size], w, b)  # (c, V)
        y = targets[start : start + chunk_size]
        total = total + F.cross_entropy(logits, y, reduction="sum")
    return total / n_pos
