"""A toy next-item model for trainer tests: logits = E[last item] @ E^T (tied embeddings)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genrec.config import field
from genrec.data.sequences import last_items, minibatches, training_rows
from genrec.models.neural import NeuralConfig, NeuralRecommender


@dataclass(frozen=True)
class ToyConfig(NeuralConfig):
    embedding_dim: int = field(16, "embedding size")
    dropout: float = field(0.1, "dropout on the input embedding")


class ToyNet(nn.Module):
    def __init__(self, n_items: int, dim: int, dropout: float):
        super().__init__()
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.drop = nn.Dropout(dropout)

    def forward(self, last: torch.Tensor, target: torch.Tensor | None = None):
        h = self.drop(self.emb(last))  # (B, D)
        logits = h @ self.emb.weight.T  # (B, n_items + 1)
        if target is None:
            return logits
        return nn.functional.cross_entropy(logits[:, 1:], target - 1)


class Toy(NeuralRecommender):
    """Unregistered toy model."""

    name = "toy"
    config_class = ToyConfig

    def _build_network(self):
        return ToyNet(self.n_items, self.config.embedding_dim, self.config.dropout)

    def epoch_batches(self, dataset, generator):
        hist = dataset.histories()
        rows = training_rows(hist)
        pairs = last_items(hist, rows, 2)  # (R, 2): previous item, next item
        for idx in minibatches(len(rows), self.config.batch_size, generator):
            p = torch.from_numpy(pairs[idx])
            yield {"last": p[:, 0], "target": p[:, 1]}

    def training_step(self, net, batch):
        return net(batch["last"], batch["target"])

    def _score_network(self, batch):
        last = torch.from_numpy(batch.padded_sequences(1)[:, 0]).to(self.device_)
        return self.network_(last)
