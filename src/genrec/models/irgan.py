"""IRGAN for item recommendation (Wang et al., SIGIR 2017), with fold-in user factors.

Two MF-style players score user-item pairs: the generator ``p_theta(i | u) = softmax_i(
(g_u^T q_i + b_i) / temperature)`` and the discriminator ``f_phi(u, i) = d_u^T q'_i + b'_i``
whose probability that ``i`` is a true interaction is ``sigma(f_phi)`` (paper Eq. 2).

* Discriminator step (Eq. 3): binary cross-entropy on the user's true items (label 1) and as
  many items sampled from the generator (label 0).
* Generator step (Eq. 5, REINFORCE): sample ``n_samples`` items per user from
  ``p_theta`` mixed with ``sample_lambda`` uniform mass over the user's true items (the
  reference code's importance sampling), reward ``2 sigma(f_phi(u, i)) - 1`` (the
  reference code's ``2 * (sigmoid - 0.5)``), importance weight ``p_theta / p_mix``, loss
  ``-mean(log p_theta(i|u) * reward * weight)``.
* Pre-training: the paper starts both players from a trained MF; here the first
  ``pretrain_epochs`` epochs fit both with the multinomial log-likelihood of the users'
  items.

Deviation (documented): IRGAN's MF has a free vector per user, which cannot score a history
it has not seen. genrec's contract scores from the history row (fold-in, ad-hoc histories),
so each player's user vector is the FISM-style sum of "context" item vectors of the history,
``g_u = |H_u|^-alpha sum_{j in H_u} c_j`` (Kabbur et al., KDD 2013). A known user with an
empty row gets ``g_u = 0``: the item biases rank (a learned popularity); items never seen in
training only receive the softmax's push-down and rank low.

Schedule and the shared trainer: one trainer epoch is ``d_epochs`` discriminator passes then
``g_epochs`` generator passes (after pre-training). Each batch carries its phase; the
inactive player's weights get no gradient (``.grad is None``), so the single AdamW skips
them (Adam's state is per parameter: equivalent to two optimizers at one learning rate).
Early stopping and best-epoch restore use the generator's validation metric, as the paper
reports the generator. Under plain DDP the unused half would be rejected: run in one process.

Instability (known, Sec. 4 of the paper and follow-ups): the adversarial phase can drift
after pre-training; the trainer's best-epoch restore on the validation metric keeps the
best generator. ``phase_losses_`` records ``(epoch, phase, loss)`` per batch so the
discriminator's and generator's losses can be inspected (see tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError
from genrec.models.ae_common import (
    binary_matrix,
    csr_to_dense,
    densify,
    multinomial_nll,
    pad_scores,
    sparse_rows_batches,
    training_users,
)
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.registry import register_model

PRETRAIN, DISCRIMINATOR, GENERATOR = 0, 1, 2


@dataclass(frozen=True)
class IRGANConfig(NeuralConfig):
    """Config of :class:`IRGAN`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
        "temperature": {"type": "float", "low": 0.05, "high": 1.0, "log": True},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    }

    batch_size: int = field(256, "users per batch")
    weight_decay: float = field(1e-4, "AdamW weight decay (the paper's L2 on factors)")
    grad_clip: float = field(5.0, "clip the gradient norm (0 = off)")
    embedding_dim: int = field(64, "factor size of both players")
    alpha: float = field(0.5, "FISM normalisation |H_u|^-alpha of the folded-in user vector")
    temperature: float = field(0.2, "generator softmax temperature (reference code: 0.2)")
    n_samples: int = field(16, "items sampled per user in a generator step")
    sample_lambda: float = field(0.2, "uniform mass over the user's true items when sampling")
    pretrain_epochs: int = field(10, "epochs of maximum-likelihood pre-training of both players")
    d_epochs: int = field(1, "discriminator passes per adversarial epoch")
    g_epochs: int = field(1, "generator passes per adversarial epoch")

    def validate(self) -> None:
        super().validate()
        self.positive("embedding_dim", "temperature", "n_samples", "d_epochs", "g_epochs")
        self.positive("alpha", "pretrain_epochs", allow_zero=True)
        if not 0.0 <= self.sample_lambda < 1.0:
            raise ConfigError(
                f"IRGANConfig.sample_lambda must be in [0, 1), got {self.sample_lambda}"
            )


class MFPlayer(nn.Module):
    """Item factors, context factors (for the folded-in user vector) and item biases."""

    def __init__(self, n_items: int, dim: int, alpha: float):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, dim)
        self.context = nn.Embedding(n_items + 1, dim)
        self.bias = nn.Parameter(torch.zeros(n_items + 1))
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.normal_(self.context.weight, std=0.1)
        self.alpha = alpha

    def user(self, x: torch.Tensor) -> torch.Tensor:
        """FISM user vectors ``(B, D)`` from binary rows ``x`` ``(B, n_items)``."""
        n = x.sum(-1, keepdim=True).clamp(min=1.0)
        return (x @ self.context.weight[1:]) * n.pow(-self.alpha)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.user(x) @ self.item.weight[1:].T + self.bias[1:]  # (B, n_items)


class IRGANNetwork(nn.Module):
    """Generator and discriminator; ``forward`` returns the loss of the batch's phase."""

    def __init__(self, n_items: int, cfg: IRGANConfig):
        super().__init__()
        self.gen = MFPlayer(n_items, cfg.embedding_dim, cfg.alpha)
        self.dis = MFPlayer(n_items, cfg.embedding_dim, cfg.alpha)
        self.cfg = cfg
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, phase: int) -> torch.Tensor:
        cfg = self.cfg
        if phase == PRETRAIN:  # MLE for both players (stands in for the paper's MF init)
            return multinomial_nll(self.gen.logits(x), x) + multinomial_nll(self.dis.logits(x), x)
        if phase == DISCRIMINATOR:
            with torch.no_grad():  # negatives from the current generator
                p = torch.softmax(self.gen.logits(x) / cfg.temperature, -1)  # (B, n_items)
                n_pos = int(x.sum(-1).max().clamp(min=1))
                neg = torch.multinomial(p, n_pos, replacement=True)  # (B, n_pos)
                pos_mask = x > 0
            d = self.dis.logits(x)  # (B, n_items)
            pos_loss = F.binary_cross_entropy_with_logits(d, torch.ones_like(d), reduction="none")[
                pos_mask
            ]
            # as many negatives as each user has positives
            keep = torch.arange(n_pos, device=x.device)[None] < x.sum(-1, keepdim=True)
            d_neg = torch.gather(d, 1, neg)[keep]
            neg_loss = F.binary_cross_entropy_with_logits(d_neg, torch.zeros_like(d_neg))
            return pos_loss.mean() + neg_loss
        # generator: REINFORCE with the discriminator's reward (Eq. 5)
        logp = torch.log_softmax(self.gen.logits(x) / cfg.temperature, -1)  # (B, n_items)
        with torch.no_grad():
            p = logp.exp()
            uniform_pos = x / x.sum(-1, keepdim=True).clamp(min=1.0)
            mix = (1 - cfg.sample_lambda) * p + cfg.sample_lambda * uniform_pos
            mix = mix / mix.sum(-1, keepdim=True)
            idx = torch.multinomial(mix, cfg.n_samples, replacement=True)  # (B, S)
            reward = 2.0 * torch.sigmoid(torch.gather(self.dis.logits(x), 1, idx)) - 1.0
            weight = torch.gather(p, 1, idx) / torch.gather(mix, 1, idx)
        return -(torch.gather(logp, 1, idx) * reward * weight).mean()

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.gen.logits(x)  # (B, n_items)


@register_model("irgan")
class IRGAN(NeuralRecommender):
    """IRGAN (Wang et al. 2017) for item recommendation; see the module docstring."""

    summary = (
        "Adversarial training of a generator of items against a discriminator (Wang et al. 2017)."
    )

    config_class = IRGANConfig
    config: IRGANConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.phase_losses_: list[tuple[int, int, float]] = []

    def _build_network(self) -> IRGANNetwork:
        return IRGANNetwork(self.n_items, self.config)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        assert self.network_ is not None
        cfg = self.config
        epoch = int(self.network_.epoch)
        self.network_.epoch += 1  # checkpointed with the weights: resumes in the right phase
        mat, users = binary_matrix(dataset), training_users(dataset)
        if epoch < cfg.pretrain_epochs:
            plan = [PRETRAIN]
        else:
            plan = [DISCRIMINATOR] * cfg.d_epochs + [GENERATOR] * cfg.g_epochs
        batches = []
        for phase in plan:
            for batch in sparse_rows_batches(mat, users, cfg.batch_size, generator):
                batch["phase"] = torch.tensor([phase])
                batch["epoch"] = torch.tensor([epoch])
                batches.append(batch)
        return iter(batches)

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = densify(batch, self.n_items)  # (B, n_items) binary
        phase = int(batch["phase"])
        loss = net(x, phase)
        self.phase_losses_.append((int(batch["epoch"]), phase, float(loss.detach())))
        return loss

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:

        assert self.network_ is not None
        x = csr_to_dense(batch.matrix, self.device_)  # (B, n_items)
        return pad_scores(self.network_.score(x))  # (B, n_items + 1)
