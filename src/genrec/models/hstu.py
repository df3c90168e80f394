"""HSTU: Hierarchical Sequential Transduction Units.

Reference:
    J. Zhai, L. Liao, X. Liu, Y. Wang, R. Li, X. Cao, L. Gao, Z. Gong, F. Gu, M. He, Y. Lu,
    Y. Shi. "Actions Speak Louder than Words: Trillion-Parameter Sequential Transducers for
    Generative Recommendations", ICML 2024 (arXiv:2402.17152), Sec. 3.1, eq. 1-3.

Each layer (paper eq. 1-3)::

    U, V, Q, K = split(SiLU(f1(Norm(x))))                           # eq. 1
    A = SiLU(Q K^T + rab_pos + rab_time) / n   (causal mask)        # eq. 2
    Y = f2(Norm(A V) * U);   x <- x + Y                             # eq. 3

The attention is *pointwise aggregated*: no softmax, the SiLU weights are divided by the
constant ``n = max_seq_len`` (the padded length, as in the authors' code) rather than by a
row sum, so a row's output does not depend on how much padding precedes it and position
``t`` never depends on later items. ``rab_pos`` is a learned per-head bias of the relative
position ``i - j``; ``rab_time`` a learned per-head bias of the bucketed log time gap
``floor(ln(max(|t_i - t_j|, 1)) / 0.301)`` (the authors' bucketisation).

Differences to the authors' code, on purpose:

* the time gap is measured from the query item's own timestamp ``t_i`` (the reference uses
  the *next* action's time, unknown when recommending); training and inference then see
  the same kind of bias.
* Without timestamps the time bias is all zeros: when ``time_bias`` is false, when the
  dataset has no real times (``Dataset.has_timestamps`` is false, e.g. the P5 Amazon files,
  whose order carries no time), and for ad-hoc sequences (:meth:`recommend_for_history`),
  which carry no times.

Timestamps at inference come with the history itself
(:attr:`~genrec.data.dataset.HistoryBatch.seq_times`): the training data after
``fit``/``load`` (artifacts store them), or the ``history=`` dataset given to ``recommend`` /
``evaluate`` (at test time: train + validation, so the validation item's real time counts).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch, UserHistories, left_pad
from genrec.data.sequences import (
    causal_batches,
    last_items,
    length_order,
    training_rows,
    trim_left_padding,
)
from genrec.errors import ConfigError
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.nn.losses import full_softmax_ce
from genrec.registry import register_model
from genrec.training.neural import bucket_batches_field, ce_chunk_size_field

#: the authors' log-bucket width: bucket = floor(ln(dt) / 0.301), dt in seconds
TIME_BUCKET_WIDTH = 0.301


@dataclass(frozen=True)
class HSTUConfig(NeuralConfig):
    """Config of :class:`HSTU`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
        "n_layers": {"type": "int", "low": 1, "high": 4},
        "n_heads": {"type": "categorical", "choices": [1, 2, 4]},
        "temperature": {"type": "float", "low": 0.02, "high": 0.2, "log": True},
    }

    embedding_dim: int = field(64, "item embedding and residual stream size")
    n_layers: int = field(2, "HSTU layers")
    n_heads: int = field(1, "attention heads")
    attention_dim: int = field(32, "per-head size of Q and K")
    linear_dim: int = field(32, "per-head size of U and V")
    dropout: float = field(0.2, "dropout on the input embeddings and before f2")
    max_seq_len: int = field(50, "keep the last max_seq_len items; also the attention divisor n")
    time_bias: bool = field(True, "relative attention bias on bucketed log time gaps")
    n_time_buckets: int = field(128, "number of log time-gap buckets")
    loss: Literal["sampled_softmax", "ce"] = field(
        "sampled_softmax", "'sampled_softmax' (uniform negatives) or 'ce' (full softmax)"
    )
    n_negatives: int = field(128, "sampled_softmax: uniform negatives per batch")
    l2_norm: bool = field(True, "L2-normalise states and item embeddings (cosine scores)")
    temperature: float = field(0.05, "softmax temperature of the cosine scores (l2_norm only)")
    ce_chunk_size: int = ce_chunk_size_field("; loss='ce'")
    bucket_batches: int = bucket_batches_field()

    def validate(self) -> None:
        super().validate()
        self.positive("embedding_dim", "n_layers", "n_heads", "attention_dim", "linear_dim")
        self.positive("ce_chunk_size")
        self.positive("bucket_batches", allow_zero=True)
        self.positive("max_seq_len", "n_time_buckets", "n_negatives", "temperature")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"HSTUConfig.dropout must be in [0, 1), got {self.dropout!r}")


def time_buckets(times: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """Bucketed log time gaps ``(B, L, L)`` between every pair of positions of ``(B, L)``."""
    dt = (times[:, :, None] - times[:, None, :]).abs().float()  # (B, L, L)
    b = torch.floor(torch.log(dt.clamp(min=1.0)) / TIME_BUCKET_WIDTH).long()
    return b.clamp(0, n_buckets - 1)


class HSTULayer(nn.Module):
    """One HSTU layer (paper eq. 1-3) with its own relative attention bias tables.

    Args:
        dim: residual stream size ``D``.
        n_heads: heads ``H``.
        attention_dim: per-head Q/K size.
        linear_dim: per-head U/V size.
        max_len: padded sequence length ``n`` (attention divisor, position buckets).
        n_time_buckets: size of the time-bias table.
        dropout: dropout before ``f2``.
    """

    def __init__(
        self,
        dim: int,
        n_heads: int,
        attention_dim: int,
        linear_dim: int,
        max_len: int,
        n_time_buckets: int,
        dropout: float,
    ):
        super().__init__()
        self.n_heads, self.da, self.dl, self.max_len = n_heads, attention_dim, linear_dim, max_len
        self.norm_in = nn.LayerNorm(dim)
        self.f1 = nn.Linear(dim, n_heads * (2 * linear_dim + 2 * attention_dim))
        self.norm_attn = nn.LayerNorm(n_heads * linear_dim)
        self.f2 = nn.Linear(n_heads * linear_dim, dim)
        self.pos_bias = nn.Parameter(torch.zeros(max_len, n_heads))  # rab^p[i - j]
        self.time_bias = nn.Parameter(torch.zeros(n_time_buckets, n_heads))  # rab^t[bucket]
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        rel_pos: torch.Tensor,
        tbuckets: torch.Tensor | None = None,
        time_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x (B, L, D)``, ``mask (B, L, L)`` bool (query i may read key j), ``rel_pos
        (L, L)`` long, ``tbuckets (B, L, L)`` long or None (no time bias), ``time_valid
        (B,)`` float (rows whose time bias counts) or None (all)."""
        B, L, _ = x.shape
        H, da, dl = self.n_heads, self.da, self.dl
        uvqk = F.silu(self.f1(self.norm_in(x)))  # (B, L, H * (2 dl + 2 da)), eq. 1
        u, v, q, k = uvqk.split([H * dl, H * dl, H * da, H * da], dim=-1)
        q = q.view(B, L, H, da).transpose(1, 2)  # (B, H, L, da)
        k = k.view(B, L, H, da).transpose(1, 2)  # (B, H, L, da)
        v = v.view(B, L, H, dl).transpose(1, 2)  # (B, H, L, dl)
        s = q @ k.transpose(-1, -2)  # (B, H, L, L)
        s = s + self.pos_bias[rel_pos].permute(2, 0, 1)  # + rab^p (H, L, L)
        if tbuckets is not None:
            rab_t = self.time_bias[tbuckets].permute(0, 3, 1, 2)  # (B, H, L, L)
            if time_valid is not None:
                rab_t = rab_t * time_valid[:, None, None, None].to(rab_t.dtype)
            s = s + rab_t
        else:  # zero time bias; keeps the table in the graph so DDP's reduction completes
            s = s + 0.0 * self.time_bias.sum()
        a = F.silu(s) / self.max_len  # (B, H, L, L), eq. 2: pointwise, no softmax
        a = a * mask[:, None].to(a.dtype)  # causal and key-padding mask
        o = (a @ v).transpose(1, 2).reshape(B, L, H * dl)  # (B, L, H dl)
        y = self.f2(self.drop(self.norm_attn(o) * u))  # (B, L, D), eq. 3
        return x + y


class HSTUNetwork(nn.Module):
    """Item + position embeddings -> HSTU layers -> (cosine) scores with tied embeddings."""

    def __init__(self, n_items: int, cfg: HSTUConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.embedding_dim
        self.item_emb = nn.Embedding(n_items + 1, D, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, D)
        nn.init.normal_(self.item_emb.weight, std=D**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            HSTULayer(
                D,
                cfg.n_heads,
                cfg.attention_dim,
                cfg.linear_dim,
                cfg.max_seq_len,
                cfg.n_time_buckets,
                cfg.dropout,
            )
            for _ in range(cfg.n_layers)
        )
        self.norm_out = nn.LayerNorm(D)

    def encode(
        self,
        inputs: torch.Tensor,
        times: torch.Tensor | None = None,
        time_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """States ``(B, L, D)`` for left-padded items ``(B, L)`` (``L <= max_seq_len``)
        and their timestamps ``(B, L)`` (seconds, any per-row offset) or None."""
        B, L = inputs.shape
        valid = inputs > 0  # (B, L)
        pos = (valid.long().cumsum(1) - 1).clamp(min=0)  # (B, L): index among real items
        x = self.item_emb(inputs) * math.sqrt(self.cfg.embedding_dim) + self.pos_emb(pos)
        x = self.drop(x) * valid[..., None].to(x.dtype)  # (B, L, D)
        idx = torch.arange(L, device=inputs.device)
        rel_pos = (idx[:, None] - idx[None, :]).clamp(0, self.cfg.max_seq_len - 1)  # (L, L)
        mask = (idx[:, None] >= idx[None, :])[None] & valid[:, None, :]  # (B, L, L)
        tb = None
        if times is not None and self.cfg.time_bias:
            tb = time_buckets(times, self.cfg.n_time_buckets)  # (B, L, L)
        for layer in self.layers:
            x = layer(x, mask, rel_pos, tb, time_valid)  # (B, L, D)
        return self.norm_out(x)

    def _out(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Scores of states ``(N, D)`` against item vectors ``(M, D)`` -> ``(N, M)``."""
        if self.cfg.l2_norm:
            return F.normalize(h, dim=-1) @ F.normalize(w, dim=-1).T / self.cfg.temperature
        return h @ w.T

    def _pair(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Row-wise scores of states ``(N, D)`` with item vectors ``(N, D)`` -> ``(N,)``."""
        if self.cfg.l2_norm:
            return (F.normalize(h, dim=-1) * F.normalize(w, dim=-1)).sum(-1) / self.cfg.temperature
        return (h * w).sum(-1)

    def forward(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor | None = None,
        times: torch.Tensor | None = None,
        time_valid: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores after the last position ``(B, n_items + 1)``, or with ``targets``
        ``(B, L)`` (0 = none) the mean loss over every target position."""
        h = self.encode(inputs, times, time_valid)  # (B, L, D)
        w = self.item_emb.weight  # (n_items + 1, D), tied
        if targets is None:
            return self._out(h[:, -1], w)  # (B, n_items + 1)
        keep = targets > 0
        h, t = h[keep], targets[keep]  # (N, D), (N,)
        if self.cfg.loss == "ce":  # fused, chunked full softmax (padding is never a class)
            if self.cfg.l2_norm:  # cosine scores / temperature
                hn, wn = F.normalize(h, dim=-1) / self.cfg.temperature, F.normalize(w[1:], dim=-1)
                return full_softmax_ce(hn, wn, t - 1, chunk_size=self.cfg.ce_chunk_size)
            return full_softmax_ce(h, w[1:], t - 1, chunk_size=self.cfg.ce_chunk_size)
        assert negatives is not None, "sampled_softmax needs negatives"
        pos = self._pair(h, w[t])  # (N,)
        neg = self._out(h, w[negatives])  # (N, M)
        neg = neg.masked_fill(negatives[None, :] == t[:, None], float("-inf"))
        logits = torch.cat([pos[:, None], neg], dim=1).float()  # (N, 1 + M)
        return F.cross_entropy(logits, torch.zeros_like(t))


@register_model("hstu")
class HSTU(NeuralRecommender):
    """HSTU (Zhai et al., ICML 2024) for next-item retrieval; see the module docstring."""

    summary = (
        "Hierarchical sequential transduction units with pointwise attention (Zhai et al. 2024)."
    )

    config_class = HSTUConfig
    config: HSTUConfig

    def _build_network(self) -> nn.Module:
        return HSTUNetwork(self.n_items, self.config)

    def _batch_times(self, batch: HistoryBatch, L: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Times ``(B, L)`` relative to each row's last item and a validity flag ``(B,)``;
        None when the history carries no timestamps (ad-hoc or time-less data)."""
        if not self.config.time_bias:
            return None
        times = batch.padded_times(L)
        if times is None:
            return None
        n = np.diff(batch.seq_indptr)
        ok = (n > 0).astype(np.float32)
        rel = np.where(batch.padded_sequences(L) > 0, times - times[:, -1:], 0.0)
        return (rel, ok) if ok.any() else None

    # ------------------------------------------------------------------ training
    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        cfg = self.config
        hist = dataset.histories()
        rows = training_rows(hist)
        padded = last_items(hist, rows, cfg.max_seq_len + 1)  # (R, L + 1)
        times = None
        if cfg.time_bias and hist.seq_times is not None:
            tpad = left_pad(hist.seq_indptr, hist.seq_times, rows, cfg.max_seq_len + 1)
            tpad = tpad[:, :-1]  # (R, L) times of the inputs
            times = (tpad - tpad[:, -1:]).astype(np.float32)  # small relative seconds
        # positions count among real items and the attention divisor is the constant
        # max_seq_len: dropping all-padding columns changes no output
        for idx, inputs, targets in causal_batches(
            padded, cfg.batch_size, cfg.bucket_batches, generator
        ):  # (B, W) each, W <= L
            batch = {"inputs": inputs, "targets": targets}
            if times is not None:
                batch["times"] = torch.from_numpy(times[idx][:, -inputs.shape[1] :])
            if cfg.loss == "sampled_softmax":
                batch["negatives"] = torch.randint(
                    1, self.n_items + 1, (cfg.n_negatives,), generator=generator
                )
            yield batch

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return net(
            batch["inputs"],
            batch["targets"],
            times=batch.get("times"),
            negatives=batch.get("negatives"),
        )

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray:
        """Users by history length, so that each scoring batch is trimmed to little padding."""
        return length_order(hist.seq_indptr, rows, self.config.max_seq_len)

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        L = self.config.max_seq_len
        seqs = trim_left_padding(torch.from_numpy(batch.padded_sequences(L)))  # (B, W)
        width = seqs.shape[1]
        seqs = seqs.to(self.device_)
        times = valid = None
        bt = self._batch_times(batch, L)
        if bt is not None:
            times = torch.from_numpy(bt[0][:, -width:].astype(np.float32)).to(self.device_)
            valid = torch.from_numpy(bt[1]).to(self.device_)
        return self.network_(seqs, times=times, time_valid=valid)  # (B, n_items + 1)
