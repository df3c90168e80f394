"""GRU4Rec: session-based recommendations with recurrent neural networks.

References:
    B. Hidasi, A. Karatzoglou, L. Baltrunas, D. Tikk. "Session-based Recommendations with
    Recurrent Neural Networks", ICLR 2016.
    B. Hidasi, A. Karatzoglou. "Recurrent Neural Networks with Top-k Gains for Session-based
    Recommendations", CIKM 2018 (the BPR-max loss, eq. 9-10, and its score regulariser).
    B. Hidasi, A. T. Czapp. "The effect of third party implementations on reproducibility",
    RecSys 2023 (what a faithful GRU4Rec needs: shared "constrained" embeddings, output
    bias, BPR-max with popularity-sampled negatives and ELU-transformed scores, or CE).

A GRU reads the (left-padded, left-truncated) item sequence; the hidden state at every
position scores all items through the item embedding matrix that also embeds the input
(the official implementation's ``constrained_embedding``), plus an item bias. Unlike the
original session-parallel mini-batches, each training sequence is one padded row trained
on all of its positions, as in SASRec-style trainers; the recurrence itself is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch, UserHistories
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


@dataclass(frozen=True)
class GRU4RecConfig(NeuralConfig):
    """Config of :class:`GRU4Rec`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
        "hidden_dim": {"type": "categorical", "choices": [64, 128, 256]},
        "n_layers": {"type": "int", "low": 1, "high": 2},
    }

    embedding_dim: int = field(64, "item embedding size (input and output, shared)")
    hidden_dim: int = field(64, "GRU hidden size (projected to embedding_dim if different)")
    n_layers: int = field(1, "stacked GRU layers")
    dropout: float = field(0.2, "dropout on the input embeddings and the GRU output")
    max_seq_len: int = field(50, "keep the last max_seq_len items of each sequence")
    loss: Literal["ce", "bpr_max"] = field("ce", "'ce' (full softmax) or 'bpr_max' (sampled)")
    n_negatives: int = field(256, "bpr_max: negatives sampled per batch (shared by positions)")
    sample_alpha: float = field(0.5, "bpr_max: negatives ~ popularity**alpha (0 = uniform)")
    bpreg: float = field(1.0, "bpr_max: weight of the softmax-weighted score regulariser")
    elu_param: float = field(0.5, "bpr_max: ELU(alpha) applied to scores in the loss (0 = off)")
    ce_chunk_size: int = ce_chunk_size_field("; loss='ce'")
    bucket_batches: int = bucket_batches_field()

    def validate(self) -> None:
        super().validate()
        self.positive("embedding_dim", "hidden_dim", "n_layers", "max_seq_len", "n_negatives")
        self.positive("sample_alpha", "bpreg", "elu_param", "bucket_batches", allow_zero=True)
        self.positive("ce_chunk_size")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"GRU4RecConfig.dropout must be in [0, 1), got {self.dropout!r}")


def bpr_max_loss(
    pos: torch.Tensor,
    neg: torch.Tensor,
    bpreg: float,
    neg_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """BPR-max (Hidasi & Karatzoglou 2018, eq. 9-10), averaged over examples.

    ``L_i = -log(sum_j s_j * sigmoid(r_i - r_j)) + bpreg * sum_j s_j * r_j^2`` with
    ``s = softmax(r_neg)`` over the negatives only.

    Args:
        pos: target scores ``(N,)``.
        neg: negative scores ``(N, M)``.
        bpreg: weight of the score regulariser (lambda in the paper).
        neg_mask: ``(N, M)`` or ``(M,)`` bool, False for negatives to ignore (e.g. a sample
            that equals the target).
    """
    logits = neg
    if neg_mask is not None:
        logits = neg.masked_fill(~neg_mask, float("-inf"))
    s = torch.softmax(logits.float(), dim=-1)  # (N, M), zero where masked
    s = torch.nan_to_num(s, nan=0.0)  # every negative masked: contributes nothing
    diff = torch.sigmoid(pos.float()[:, None] - neg.float())  # (N, M)
    hit = (s * diff).sum(-1)  # (N,)
    reg = (s * neg.float().pow(2)).sum(-1)  # (N,)
    return (-torch.log(hit + 1e-24) + bpreg * reg).mean()


class GRU4RecNetwork(nn.Module):
    """Embedding -> GRU -> (projection) -> scores against the shared item embeddings."""

    def __init__(self, n_items: int, cfg: GRU4RecConfig):
        super().__init__()
        self.cfg = cfg
        D, H = cfg.embedding_dim, cfg.hidden_dim
        self.item_emb = nn.Embedding(n_items + 1, D, padding_idx=0)
        self.item_bias = nn.Parameter(torch.zeros(n_items + 1))
        self.drop = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(
            D, H, cfg.n_layers, batch_first=True, dropout=cfg.dropout if cfg.n_layers > 1 else 0.0
        )
        self.proj = nn.Linear(H, D) if H != D else nn.Identity()
        nn.init.normal_(self.item_emb.weight, std=D**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Hidden state per position ``(B, L, D)`` for left-padded item ids ``(B, L)``.

        Every sequence starts from the zero state at its first real item (as a session does
        in the original GRU4Rec): the GRU runs over packed sequences, so the amount of left
        padding (the batch's width) changes nothing and padding costs no compute. The
        states of padding positions are 0 (before the projection)."""
        x = self.drop(self.item_emb(inputs))  # (B, L, D)
        B, L = inputs.shape
        lengths = (inputs > 0).sum(1)  # (B,): the real items are the last `lengths` columns
        if bool((lengths == L).all()):  # no padding at all: nothing to pack
            h, _ = self.gru(x)  # (B, L, H); position t has read items <= t only
            return self.proj(self.drop(h))
        cols = torch.arange(L, device=inputs.device)
        pad = (L - lengths)[:, None]  # (B, 1)
        left = (cols + pad) % L  # (B, L): roll each row so that its items come first
        x = x.gather(1, left[..., None].expand(-1, -1, x.shape[-1]))  # right-padded
        packed = pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=L)  # (B, L, H)
        back = (cols - pad) % L  # (B, L): and back to the left-padded layout
        h = h.gather(1, back[..., None].expand(-1, -1, h.shape[-1]))  # (B, L, H)
        return self.proj(self.drop(h))  # (B, L, D)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of every item ``(..., n_items + 1)`` for hidden states ``(..., D)``."""
        return h @ self.item_emb.weight.T + self.item_bias  # (..., n_items + 1)

    def forward(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores of the next item after the last position ``(B, n_items + 1)``, or with
        ``targets`` ``(B, L)`` (0 = no target) the mean loss over all target positions."""
        h = self.encode(inputs)  # (B, L, D)
        if targets is None:
            return self.scores(h[:, -1])  # (B, n_items + 1)
        keep = targets > 0
        h, t = h[keep], targets[keep]  # (N, D), (N,)
        if self.cfg.loss == "ce":  # fused, chunked; padding is never a class
            w, b = self.item_emb.weight, self.item_bias
            return full_softmax_ce(h, w[1:], t - 1, bias=b[1:], chunk_size=self.cfg.ce_chunk_size)
        assert negatives is not None, "bpr_max needs sampled negatives"
        w, b = self.item_emb.weight, self.item_bias
        pos = (h * w[t]).sum(-1) + b[t]  # (N,)
        neg = h @ w[negatives].T + b[negatives]  # (N, M)
        if self.cfg.elu_param > 0:  # official GRU4Rec: ELU-transformed scores for BPR-max
            pos, neg = F.elu(pos, self.cfg.elu_param), F.elu(neg, self.cfg.elu_param)
        mask = negatives[None, :] != t[:, None]  # (N, M): a sampled target is no negative
        return bpr_max_loss(pos, neg, self.cfg.bpreg, mask)


def sample_negatives(
    popularity: np.ndarray, n: int, alpha: float, generator: torch.Generator
) -> torch.Tensor:
    """``n`` item ids (with replacement) drawn with probability ``popularity ** alpha``
    (item 0, the padding, never drawn)."""
    w = np.asarray(popularity, dtype=np.float64).copy()
    w = np.where(w > 0, w, 0.0) ** alpha if alpha > 0 else np.ones_like(w)
    w[0] = 0.0
    if w.sum() <= 0:
        w[1:] = 1.0
    probs = torch.from_numpy(w / w.sum())
    return torch.multinomial(probs, n, replacement=True, generator=generator)


@register_model("gru4rec")
class GRU4Rec(NeuralRecommender):
    """GRU4Rec (Hidasi et al. 2016) with CE or BPR-max loss; see the module docstring.

    Scores for a user come from the GRU state after the last ``max_seq_len`` history items.
    """

    summary = (
        "Recurrent (GRU) next-item model with cross-entropy or BPR-max loss (Hidasi et al. 2016)."
    )

    config_class = GRU4RecConfig
    config: GRU4RecConfig

    def _build_network(self) -> nn.Module:
        return GRU4RecNetwork(self.n_items, self.config)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        cfg = self.config
        hist = dataset.histories()
        rows = training_rows(hist)
        padded = last_items(hist, rows, cfg.max_seq_len + 1)  # (R, L + 1), left-truncated
        popularity = dataset.item_popularity()
        for _, inputs, targets in causal_batches(
            padded, cfg.batch_size, cfg.bucket_batches, generator
        ):  # (B, W) each, W <= L: packed sequences make the width irrelevant
            batch = {"inputs": inputs, "targets": targets}
            if cfg.loss == "bpr_max":
                batch["negatives"] = sample_negatives(
                    popularity, cfg.n_negatives, cfg.sample_alpha, generator
                )
            yield batch

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return net(batch["inputs"], batch["targets"], batch.get("negatives"))

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray:
        """Users by history length, so that each scoring batch is trimmed to little padding."""
        return length_order(hist.seq_indptr, rows, self.config.max_seq_len)

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        seqs = trim_left_padding(torch.from_numpy(batch.padded_sequences(self.config.max_seq_len)))
        return self.network_(seqs.to(self.device_))  # (B, n_items + 1)
