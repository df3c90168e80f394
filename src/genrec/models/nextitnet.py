"""NextItNet: a simple convolutional generative network for next item recommendation.

Reference:
    F. Yuan, A. Karatzoglou, I. Arapakis, J. M. Jose, X. He. "A Simple Convolutional
    Generative Network for Next Item Recommendation", WSDM 2019.

Stacked residual blocks of dilated causal 1-D convolutions (paper Sec. 3.2, Fig. 3-4).
Each block follows the authors' code: ``conv(dilation d) -> LayerNorm -> ReLU ->
conv(dilation 2d) -> LayerNorm -> ReLU`` plus the identity shortcut, with ``d`` taken from
``dilations`` (repeated ``n_repeats`` times). Every convolution is padded only on the
left by ``(kernel_size - 1) * dilation`` so position ``t`` sees inputs ``<= t`` (paper
eq. 5, "causal"). The model is trained with a full softmax at every position (paper
Sec. 3.3) and scores items with the tied input embedding matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
class NextItNetConfig(NeuralConfig):
    """Config of :class:`NextItNet`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
        "n_repeats": {"type": "int", "low": 1, "high": 3},
        "kernel_size": {"type": "int", "low": 2, "high": 5},
    }

    embedding_dim: int = field(64, "item embedding size = residual channels")
    dilations: list[int] = field((1, 2, 4, 8), "block dilations d (a block convolves d, 2d)")
    n_repeats: int = field(2, "how many times the dilations stack is repeated")
    kernel_size: int = field(3, "convolution kernel width")
    dropout: float = field(0.0, "dropout on the input embeddings and the final states")
    max_seq_len: int = field(50, "keep the last max_seq_len items of each sequence")
    ce_chunk_size: int = ce_chunk_size_field()
    bucket_batches: int = bucket_batches_field()

    def validate(self) -> None:
        super().validate()
        self.positive("embedding_dim", "n_repeats", "kernel_size", "max_seq_len", "ce_chunk_size")
        self.positive("bucket_batches", allow_zero=True)
        if not self.dilations or any(d <= 0 for d in self.dilations):
            raise ConfigError(
                f"NextItNetConfig.dilations must be positive integers, got {self.dilations!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"NextItNetConfig.dropout must be in [0, 1), got {self.dropout!r}")


class CausalConv1d(nn.Module):
    """A dilated 1-D convolution over ``(B, L, D)`` padded on the left only."""

    def __init__(self, dim: int, kernel_size: int, dilation: int):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(dim, dim, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pad(x.transpose(1, 2), (self.pad, 0))  # (B, D, pad + L)
        return self.conv(y).transpose(1, 2)  # (B, L, D)


class NextItNetBlock(nn.Module):
    """Residual block (paper Fig. 4b): two dilated causal convolutions (d, 2d), each
    followed by layer norm and ReLU, and an identity shortcut."""

    def __init__(self, dim: int, kernel_size: int, dilation: int):
        super().__init__()
        self.conv1 = CausalConv1d(dim, kernel_size, dilation)
        self.norm1 = nn.LayerNorm(dim)
        self.conv2 = CausalConv1d(dim, kernel_size, 2 * dilation)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, D)``; ``real (B, L, 1)`` zeroes the output at padding positions."""
        h = F.relu(self.norm1(self.conv1(x)))  # (B, L, D)
        if real is not None:
            h = h * real  # padding stays 0 inside the block too (see NextItNetNetwork.encode)
        h = F.relu(self.norm2(self.conv2(h)))  # (B, L, D)
        out = x + h
        return out if real is None else out * real


class NextItNetNetwork(nn.Module):
    """Item embedding -> residual dilated causal conv blocks -> tied-softmax scores."""

    def __init__(self, n_items: int, cfg: NextItNetConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.embedding_dim
        self.item_emb = nn.Embedding(n_items + 1, D, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=D**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.drop = nn.Dropout(cfg.dropout)
        dilations = list(cfg.dilations) * cfg.n_repeats
        self.blocks = nn.ModuleList(NextItNetBlock(D, cfg.kernel_size, d) for d in dilations)

    @property
    def receptive_field(self) -> int:
        """How many positions (itself included) one output position can see."""
        k = self.cfg.kernel_size
        return 1 + sum((k - 1) * 3 * d for d in self.cfg.dilations) * self.cfg.n_repeats

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """States ``(B, L, D)`` for left-padded item ids ``(B, L)``; causal.

        Padding positions are held at exactly 0 after every convolution, i.e. they look
        like the zeros the causal convolutions pad with on the left. Their bias, LayerNorm
        and ReLU would otherwise give them non-zero states that later positions read, so
        the outputs would depend on how much left padding a batch has (its width)."""
        real = (inputs > 0).unsqueeze(-1).to(self.item_emb.weight.dtype)  # (B, L, 1)
        x = self.drop(self.item_emb(inputs))  # (B, L, D), 0 at padding (padding_idx)
        for block in self.blocks:
            x = block(x, real)  # (B, L, D)
        return self.drop(x)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Scores after the last position ``(B, n_items + 1)``, or with ``targets``
        ``(B, L)`` (0 = none) the full-softmax cross-entropy over every target position."""
        h = self.encode(inputs)  # (B, L, D)
        if targets is None:
            return h[:, -1] @ self.item_emb.weight.T  # (B, n_items + 1)
        keep = targets > 0
        w = self.item_emb.weight[1:]  # (n_items, D): padding is never a class
        return full_softmax_ce(h[keep], w, targets[keep] - 1, chunk_size=self.cfg.ce_chunk_size)


@register_model("nextitnet")
class NextItNet(NeuralRecommender):
    """NextItNet (Yuan et al., WSDM 2019); see the module docstring."""

    summary = "Dilated causal convolutions over the user's item sequence (Yuan et al. 2019)."

    config_class = NextItNetConfig
    config: NextItNetConfig

    def _build_network(self) -> nn.Module:
        return NextItNetNetwork(self.n_items, self.config)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        hist = dataset.histories()
        rows = training_rows(hist)
        cfg = self.config
        padded = last_items(hist, rows, cfg.max_seq_len + 1)  # (R, L + 1)
        for _, inputs, targets in causal_batches(
            padded, cfg.batch_size, cfg.bucket_batches, generator
        ):  # (B, W) each, W <= L: padding is inert, so the width changes nothing
            yield {"inputs": inputs, "targets": targets}

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return net(batch["inputs"], batch["targets"])

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray:
        """Users by history length, so that each scoring batch is trimmed to little padding."""
        return length_order(hist.seq_indptr, rows, self.config.max_seq_len)

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        seqs = trim_left_padding(torch.from_numpy(batch.padded_sequences(self.config.max_seq_len)))
        return self.network_(seqs.to(self.device_))  # (B, n_items + 1)
