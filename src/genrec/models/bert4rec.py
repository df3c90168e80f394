"""BERT4Rec: bidirectional transformer trained by masked-item prediction
(Sun et al., CIKM 2019, "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
Representations from Transformer").

Training (paper Sec. 3.6, the Cloze task): in each training sequence every item is replaced
by a ``[MASK]`` token with probability ``mask_prob`` and the network predicts the original
items at the masked positions with a full softmax over the catalogue (Eq. 7-8). To match
next-item prediction, a fraction ``last_item_mask_prob`` of the sequences instead masks only
their last item (Sec. 3.6: "we also produce samples that only mask the last item"). Masks are
re-drawn every epoch from the epoch's generator (the original code pre-generated 10 masked
copies of each sequence, its ``dupe_factor``).

Inference: ``[MASK]`` is appended after the most recent ``max_seq_len - 1`` items and its
output is scored against every item (Sec. 3.6). Histories are truncated from the LEFT.

The ``[MASK]`` token has id ``n_items + 1`` (embedding table size ``n_items + 2``; row 0 is
padding); the output layer is restricted to the real items ``1..n_items``. The output head
is the paper's ``GELU(h W^P + b^P) E^T + b^O`` (Eq. 7) with a LayerNorm as in BERT, sharing
the input item embeddings ``E``.

BERT4Rec needs many more epochs than SASRec: Petrov & Macdonald (RecSys 2022, "A Systematic
Review and Replicability Study of BERT4Rec") found that most reported under-performance
comes from under-training (the original trains for 400k steps). The defaults therefore
train up to 200 epochs with a patience of 20 evaluations; do not cut them to SASRec's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch, UserHistories
from genrec.data.sequences import (
    epoch_batches,
    last_items,
    length_order,
    row_lengths,
    training_rows,
    trim_left_padding,
)
from genrec.errors import ConfigError
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.nn.losses import full_softmax_ce
from genrec.nn.transformer import PositionEmbedding, TransformerEncoder, attention_mask
from genrec.registry import register_model
from genrec.training.neural import bucket_batches_field, ce_chunk_size_field


@dataclass(frozen=True)
class BERT4RecConfig(NeuralConfig):
    """Config of :class:`BERT4Rec` (defaults follow the paper, trained for longer)."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
        "n_blocks": {"type": "int", "low": 1, "high": 3},
        "mask_prob": {"type": "float", "low": 0.1, "high": 0.6},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    }

    epochs: int = field(200, "maximum number of training epochs (BERT4Rec needs many)")
    patience: int = field(20, "stop after this many evaluations without improvement (0 = off)")
    weight_decay: float = field(0.01, "AdamW weight decay (paper: l2 0.01)")
    embedding_dim: int = field(64, "item/position embedding and hidden size d")
    n_blocks: int = field(2, "number of transformer blocks (paper: 2)")
    n_heads: int = field(2, "attention heads per block (paper: 2)")
    ffn_multiplier: int = field(4, "feed-forward hidden size = ffn_multiplier * d (paper: 4)")
    dropout: float = field(0.1, "dropout on embeddings, attention and feed-forward outputs")
    max_seq_len: int = field(50, "keep only the most recent max_seq_len items (left truncation)")
    norm_first: bool = field(True, "pre-LayerNorm blocks (False: BERT's post-LN)")
    mask_prob: float = field(0.2, "probability of masking each item in training (paper: 0.2)")
    last_item_mask_prob: float = field(
        0.1, "fraction of training sequences with only their last item masked"
    )
    ce_chunk_size: int = ce_chunk_size_field()
    bucket_batches: int = bucket_batches_field()

    def validate(self) -> None:
        super().validate()
        self.positive(
            "embedding_dim", "n_blocks", "n_heads", "ffn_multiplier", "max_seq_len",
            "ce_chunk_size",
        )  # fmt: skip
        self.positive("bucket_batches", allow_zero=True)
        if self.embedding_dim % self.n_heads:
            raise ConfigError(
                f"BERT4RecConfig.embedding_dim ({self.embedding_dim}) must be divisible by "
                f"n_heads ({self.n_heads})"
            )
        if self.max_seq_len < 2:
            raise ConfigError(f"BERT4RecConfig.max_seq_len must be >= 2, got {self.max_seq_len}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"BERT4RecConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"BERT4RecConfig.mask_prob must be in (0, 1), got {self.mask_prob!r}")
        if not 0.0 <= self.last_item_mask_prob <= 1.0:
            raise ConfigError(
                "BERT4RecConfig.last_item_mask_prob must be in [0, 1], "
                f"got {self.last_item_mask_prob!r}"
            )


class BERT4RecNetwork(nn.Module):
    """The pure BERT4Rec network.

    Args:
        n_items: catalogue size; id 0 is padding and ``n_items + 1`` is ``[MASK]``.
        config: architecture fields of :class:`BERT4RecConfig`.
    """

    def __init__(self, n_items: int, config: BERT4RecConfig):
        super().__init__()
        d = config.embedding_dim
        self.n_items = n_items
        self.mask_id = n_items + 1
        self.ce_chunk_size = config.ce_chunk_size
        self.item_emb = nn.Embedding(n_items + 2, d, padding_idx=0)
        self.pos_emb = PositionEmbedding(config.max_seq_len, d)
        self.emb_ln = nn.LayerNorm(d)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(
            config.n_blocks, d, config.n_heads, config.ffn_multiplier * d, config.dropout,
            config.norm_first,
        )  # fmt: skip
        # output head, Eq. 7: GELU(h W^P + b^P) (then LayerNorm, as BERT) . E^T + b^O
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.out_bias = nn.Parameter(torch.zeros(n_items))
        nn.init.normal_(self.item_emb.weight, std=0.02)  # BERT's initialiser range
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Bidirectional hidden states ``(B, L, D)`` of left-padded ids ``seq`` ``(B, L)``
        (padding keys are masked; every real position sees every other one)."""
        real = seq > 0  # (B, L)
        x = self.drop(self.emb_ln(self.pos_emb(self.item_emb(seq))))  # (B, L, D), Eq. 1
        return self.encoder(x, attention_mask(real, causal=False))  # (B, L, D)

    def forward(self, seq: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states, or the masked-item loss when ``labels`` are given.

        Args:
            seq: ``(B, L)`` item ids with some replaced by ``[MASK]`` (0 = padding).
            labels: ``(B, L)`` the original item at masked positions, 0 elsewhere.

        Returns:
            ``(B, L, D)`` without labels, else the mean full-softmax cross-entropy over the
            masked positions (Eq. 8).
        """
        h = self.encode(seq)  # (B, L, D)
        if labels is None:
            return h
        valid = labels > 0  # (B, L)
        hv = self.head(h[valid])  # (N, D)
        E = self.item_emb.weight[1 : self.n_items + 1]  # (n_items, D) real items only
        return full_softmax_ce(
            hv, E, labels[valid] - 1, bias=self.out_bias, chunk_size=self.ce_chunk_size
        )

    def score_last(self, seq: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, n_items + 1)`` of the last position (the appended ``[MASK]``);
        column 0 (padding) is ``-inf``."""
        h = self.head(self.encode(seq)[:, -1])  # (B, D)
        logits = h @ self.item_emb.weight[1 : self.n_items + 1].T + self.out_bias  # (B, n)
        return nn.functional.pad(logits, (1, 0), value=float("-inf"))  # (B, n_items + 1)


@register_model("bert4rec")
class BERT4Rec(NeuralRecommender):
    """BERT4Rec (Sun et al. 2019); see the module docstring for training and inference."""

    summary = "Bidirectional transformer trained by masked-item prediction (Sun et al. 2019)."

    config_class = BERT4RecConfig
    config: BERT4RecConfig

    def _build_network(self) -> BERT4RecNetwork:
        return BERT4RecNetwork(self.n_items, self.config)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        cfg = self.config
        hist = dataset.histories()
        rows = training_rows(hist, min_len=2)
        seqs = torch.from_numpy(last_items(hist, rows, cfg.max_seq_len))  # (R, L)
        lengths = row_lengths(seqs.numpy())
        for idx in epoch_batches(lengths, cfg.batch_size, cfg.bucket_batches, generator):
            # (B, W <= L), left-padded: the last column is real. Positions are right-aligned
            # and padding keys masked, so dropping all-padding columns changes no output.
            s = trim_left_padding(seqs[torch.from_numpy(idx)])
            B = s.shape[0]
            masked = (torch.rand(s.shape, generator=generator) < cfg.mask_prob) & (s > 0)
            last_only = torch.rand(B, generator=generator) < cfg.last_item_mask_prob  # (B,)
            masked[last_only] = False
            masked[:, -1] |= last_only | ~masked.any(1)  # at least one mask per sequence
            labels = torch.where(masked, s, 0)  # (B, L)
            inputs = torch.where(masked, self.n_items + 1, s)  # (B, L) [MASK] = n_items + 1
            yield {"inputs": inputs, "labels": labels}

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return net(batch["inputs"], batch["labels"])

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray:
        """Users by history length, so that each scoring batch is trimmed to little padding."""
        return length_order(hist.seq_indptr, rows, self.config.max_seq_len - 1)

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        hist = torch.from_numpy(batch.padded_sequences(self.config.max_seq_len - 1))
        hist = trim_left_padding(hist)  # (B, W <= L - 1)
        mask = torch.full((len(batch), 1), self.n_items + 1, dtype=torch.long)  # (B, 1)
        seq = torch.cat([hist, mask], dim=1).to(self.device_)  # (B, L)
        return self.network_.score_last(seq)  # (B, n_items + 1)
