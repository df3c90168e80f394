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
  Klenitskiy & Vasilev, RecSys 2023), computed in chunks of positions so the ``(N, V)``
  logits never exist at once, forward or backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


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
        log_q_neg: optional ``(N, K)`` log sampling probability of each negative.
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


def _ce_chunk(
    hidden: torch.Tensor, item_emb: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor
) -> torch.Tensor:
    logits = hidden @ item_emb.T  # (c, V)
    if bias is not None:
        logits = logits + bias
    return F.cross_entropy(logits.float(), targets, reduction="sum")  # summed over c


def full_softmax_ce(
    hidden: torch.Tensor,
    item_emb: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk_size: int = 4096,
) -> torch.Tensor:
    """Cross-entropy over the full catalogue, ``-log softmax(h E^T + b)[target]``, averaged.

    Positions are processed ``chunk_size`` at a time; with gradients enabled each chunk is
    activation-checkpointed, so backward recomputes its logits instead of storing them and
    peak memory is ``O(chunk_size x V)`` rather than ``O(N x V)``. Logits are upcast to
    float32 for the softmax (safe under bf16 autocast).

    Args:
        hidden: ``(N, D)`` final hidden states of the positions to train.
        item_emb: ``(V, D)`` output item embeddings (real items only: no padding row).
        targets: ``(N,)`` int64 in ``[0, V)``, row indices of ``item_emb``.
        bias: optional ``(V,)`` output bias.
        chunk_size: positions per chunk (``>= N`` disables chunking).

    Returns:
        Scalar mean loss (0 for ``N = 0``).
    """
    n_pos = hidden.shape[0]
    if n_pos == 0:
        return hidden.sum() * 0.0 + item_emb.sum() * 0.0
    if n_pos <= chunk_size:
        return _ce_chunk(hidden, item_emb, bias, targets) / n_pos
    total = hidden.new_zeros((), dtype=torch.float32)
    grad = torch.is_grad_enabled()
    for start in range(0, n_pos, chunk_size):
        h, y = hidden[start : start + chunk_size], targets[start : start + chunk_size]
        if grad:
            total = total + checkpoint(_ce_chunk, h, item_emb, bias, y, use_reentrant=False)
        else:
            total = total + _ce_chunk(h, item_emb, bias, y)
    return total / n_pos
