"""Transformer layers shared by the sequence models (SASRec, BERT4Rec, ...).

One block (Vaswani et al., NeurIPS 2017, "Attention Is All You Need") in two flavours:

* pre-LN (``norm_first=True``, Xiong et al., ICML 2020): ``x + Attn(LN(x))`` then
  ``x + FFN(LN(x))``, followed by one final LayerNorm in :class:`TransformerEncoder`; stable
  without warm-up, the default of SASRec's reference code (Kang & McAuley, ICDM 2018, Sec. III-B);
* post-LN (``norm_first=False``, BERT, Devlin et al. 2019): ``LN(x + Attn(x))`` then
  ``LN(x + FFN(x))``, as in BERT4Rec (Sun et al., CIKM 2019, Eq. 2-5);
* the original SASRec block (``sasrec=True``, Kang & McAuley's reference code, also
  RecTools' ``SASRecTransformerLayer``): ``q = LN(x)``, ``x = q + Attn(q, keys=values=x)``,
  then ``f = LN(x)``, ``f + FFN(f)``: both residuals start from the normalised input, and
  the keys and values are the raw input; a final LayerNorm follows the stack.

Attention is :func:`torch.nn.functional.scaled_dot_product_attention` (a fused kernel on GPU)
with a boolean mask built by :func:`attention_mask`: causal (SASRec) or bidirectional
(BERT4Rec), always hiding padding keys. Sequences are left-padded with item id 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attention_mask(real: torch.Tensor, causal: bool) -> torch.Tensor:
    """Boolean attention mask, ``True`` where a query may attend to a key.

    Args:
        real: ``(B, L)`` bool, ``True`` at real (non-padding) positions.
        causal: also hide keys after the query (auto-regressive models).

    Returns:
        ``(B, 1, L, L)`` bool mask (broadcast over heads). Every query may attend to itself,
        so no row is fully masked (which would make softmax return NaN) even for padding
        queries, whose outputs are ignored anyway.
    """
    B, L = real.shape
    mask = real[:, None, None, :].expand(B, 1, L, L)  # (B, 1, L, L): padding keys hidden
    if causal:
        tril = torch.ones(L, L, dtype=torch.bool, device=real.device).tril()  # (L, L)
        mask = mask & tril
    eye = torch.eye(L, dtype=torch.bool, device=real.device)  # (L, L)
    return mask | eye


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention: ``softmax(Q K^T / sqrt(d_h) + mask) V`` per head
    (Vaswani et al. 2017, Eq. 1), one fused QKV projection and an output projection.

    Args:
        dim: model width ``D`` (divisible by ``n_heads``).
        n_heads: number of heads.
        dropout: dropout on the attention weights.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"embedding_dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, kv: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x``: ``(B, L, D)``; ``mask``: ``(B, 1, L, L)`` bool (True = attend) or None;
        ``kv``: ``(B, L, D)`` to take keys and values from instead of ``x`` (queries always
        come from ``x``), as the original SASRec block does."""
        B, L, D = x.shape
        if kv is None:
            q, k, v = self.qkv(x).split(D, dim=-1)  # 3 x (B, L, D)
        else:
            w_q, w_kv = self.qkv.weight.split([D, 2 * D])
            b_q, b_kv = self.qkv.bias.split([D, 2 * D])
            q = F.linear(x, w_q, b_q)  # (B, L, D)
            k, v = F.linear(kv, w_kv, b_kv).split(D, dim=-1)  # 2 x (B, L, D)
        q, k, v = (t.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, L, D/H)
        y = y.transpose(1, 2).reshape(B, L, D)  # (B, L, D)
        return self.proj(y)


class FeedForward(nn.Module):
    """Point-wise feed-forward network ``W2 act(W1 x + b1) + b2`` with ``act`` GELU (BERT4Rec
    Eq. 4) or ReLU (SASRec Eq. 4)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, activation: str = "gelu"):
        super().__init__()
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)
        self.act = F.gelu if activation == "gelu" else F.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))  # (B, L, D)


class TransformerBlock(nn.Module):
    """Self-attention + feed-forward, each with dropout and a residual connection.

    Args:
        dim: model width ``D``.
        n_heads: attention heads.
        ffn_dim: hidden width of the feed-forward network.
        dropout: dropout on attention weights and on both sub-layer outputs.
        norm_first: pre-LN (True) or post-LN (False); see the module docstring.
        sasrec: the original SASRec block instead (see the module docstring); then
            ``norm_first`` is ignored.
        activation: of the feed-forward network, ``"gelu"`` or ``"relu"``.
    """

    def __init__(
        self,
        dim: int,
        n_heads: int,
        ffn_dim: int,
        dropout: float = 0.0,
        norm_first: bool = True,
        *,
        sasrec: bool = False,
        activation: str = "gelu",
    ):
        super().__init__()
        self.norm_first = norm_first
        self.sasrec = sasrec
        self.attn = MultiHeadSelfAttention(dim, n_heads, dropout)
        self.ffn = FeedForward(dim, ffn_dim, dropout, activation)
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(B, L, D)`` -> ``(B, L, D)``."""
        if self.sasrec:  # Kang & McAuley's code: residuals from the normalised inputs
            q = self.ln1(x)  # (B, L, D)
            x = q + self.attn(q, mask, kv=x)  # keys and values: the raw input
            f = self.ln2(x)
            return f + self.drop(self.ffn(f))
        if self.norm_first:
            x = x + self.drop(self.attn(self.ln1(x), mask))  # (B, L, D)
            return x + self.drop(self.ffn(self.ln2(x)))
        x = self.ln1(x + self.drop(self.attn(x, mask)))  # (B, L, D)
        return self.ln2(x + self.drop(self.ffn(x)))


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerBlock` (plus the final LayerNorm a pre-LN stack needs).

    Args:
        n_blocks: number of blocks.
        dim, n_heads, ffn_dim, dropout, norm_first: see :class:`TransformerBlock`.
    """

    def __init__(
        self,
        n_blocks: int,
        dim: int,
        n_heads: int,
        ffn_dim: int,
        dropout: float = 0.0,
        norm_first: bool = True,
        *,
        sasrec: bool = False,
        activation: str = "gelu",
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(
                dim, n_heads, ffn_dim, dropout, norm_first, sasrec=sasrec, activation=activation
            )
            for _ in range(n_blocks)
        )
        self.ln_f = nn.LayerNorm(dim) if norm_first or sasrec else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(B, L, D)``, ``mask``: ``(B, 1, L, L)`` -> ``(B, L, D)``."""
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)


class PositionEmbedding(nn.Module):
    """Learned absolute position embeddings for left-padded sequences.

    Positions are aligned to the right: the most recent item always gets the last embedding
    (``max_len - 1``), whatever the input length, so a shorter (e.g. inference) window sees
    the same encoding of recency as training.

    Args:
        max_len: the longest sequence.
        dim: embedding width.
    """

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, L, D)`` with ``L <= max_len`` -> ``x`` plus positions ``(B, L, D)``."""
        length = x.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_seq_len {self.max_len}")
        return x + self.weight[self.max_len - length :]  # (L, D) broadcast over B
