"""RecVAE (Shenbin et al., WSDM 2020): Mult-VAE with a stronger encoder, a composite prior,
a user-dependent KL weight and alternating encoder/decoder updates.

* Encoder (paper Sec. 3.1): L2-normalised, dropped-out row -> 5 densely connected
  swish + LayerNorm layers -> ``(mu, logvar)``; the decoder is one linear layer.
* Composite prior (Sec. 3.2, Eq. 6): ``p(z | phi_old, x) = a1 N(z | 0, I)
  + a2 q_{phi_old}(z | x) + a3 N(z | 0, e^10 I)`` with the posterior of the encoder's
  previous-epoch copy (``mixture_weights`` = (3/20, 3/4, 1/10) as in the reference code).
* Rescaled KL (Sec. 3.3, Eq. 9): ``beta'(x_u) = gamma * |x_u|`` (``gamma``), or a constant
  ``beta`` when ``gamma = 0``. The KL is the single-sample Monte-Carlo estimate
  ``log q(z|x) - log p(z|phi_old, x)`` of the reference code.
* Alternating updates (Sec. 3.4): each trainer epoch runs ``n_enc_epochs`` passes that
  update the encoder only (dropout on), copies the encoder into the prior's old encoder,
  then ``n_dec_epochs`` passes that update the decoder only (dropout off).

How the alternation fits the shared trainer's single AdamW: in an encoder pass the decoder
weights enter the forward pass detached, in a decoder pass the latent code is detached, so
the frozen half gets no gradient (``.grad is None``) and AdamW skips it entirely (no
moment update, no weight decay). Adam keeps per-parameter state, so this equals two
optimizers with the same learning rate. The old encoder's weights are buffers. Caveat: each
pass leaves half the parameters unused, which plain DDP rejects; train RecVAE in one process.

Scoring (fold-in) and empty rows / unseen items: as Mult-VAE (posterior mean of the given
history row; an empty row gives one fixed ranking; unseen items get low logits).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError
from genrec.models.ae_common import (
    SparseRows,
    binary_matrix,
    encoder_input,
    l2_normalise,
    multinomial_nll,
    pad_scores,
    sparse_rows_batches,
    training_users,
)
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.registry import register_model

PHASE_ENCODER, PHASE_DECODER = 0, 1


@dataclass(frozen=True)
class RecVAEConfig(NeuralConfig):
    """Config of :class:`RecVAE` (defaults: the reference code's)."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.7},
        "hidden_dim": {"type": "categorical", "choices": [300, 600]},
        "latent_dim": {"type": "categorical", "choices": [100, 200]},
        "gamma": {"type": "float", "low": 1e-3, "high": 2e-2, "log": True},
    }

    batch_size: int = field(500, "users per batch")
    lr: float = field(5e-4, "AdamW learning rate (reference: 5e-4 for both halves)")
    grad_clip: float = field(0.0, "clip the gradient norm (0 = off; the paper does not clip)")
    hidden_dim: int = field(600, "encoder width")
    latent_dim: int = field(200, "latent size")
    dropout: float = field(0.5, "input dropout in the encoder passes")
    gamma: float = field(0.005, "KL weight per interaction: beta(x_u) = gamma * |x_u| (Eq. 9)")
    beta: float = field(0.2, "constant KL weight, used only when gamma = 0")
    mixture_weights: tuple[float, ...] = field(
        (0.15, 0.75, 0.1), "composite prior weights: standard, old posterior, wide normal"
    )
    sparse_input: bool = field(
        True,
        "compute the first layer from the row's items only (exact, no (B, n_items) product; "
        "CPU and CUDA, elsewhere dense); False: the dense product",
    )
    n_enc_epochs: int = field(3, "encoder passes over the data per epoch")
    n_dec_epochs: int = field(1, "decoder passes over the data per epoch")

    def validate(self) -> None:
        super().validate()
        self.positive("hidden_dim", "latent_dim", "n_enc_epochs", "n_dec_epochs")
        self.positive("gamma", "beta", allow_zero=True)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"RecVAEConfig.dropout must be in [0, 1), got {self.dropout}")
        w = self.mixture_weights
        if len(w) != 3 or any(x <= 0 for x in w) or abs(sum(w) - 1.0) > 1e-6:
            raise ConfigError(
                f"RecVAEConfig.mixture_weights must be 3 positive numbers summing to 1, got {w}"
            )


def log_norm_pdf(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise ``log N(z | mu, exp(logvar))``."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / logvar.exp())


class RecVAEEncoder(nn.Module):
    """Five densely connected swish + LayerNorm layers (paper Fig. 1)."""

    def __init__(self, n_items: int, hidden_dim: int, latent_dim: int):
        super().__init__()
        self.fcs = nn.ModuleList(
            [nn.Linear(n_items, hidden_dim)] + [nn.Linear(hidden_dim, hidden_dim) for _ in range(4)]
        )
        self.lns = nn.ModuleList(nn.LayerNorm(hidden_dim, eps=0.1) for _ in range(5))
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)

    def forward(
        self, x: torch.Tensor | SparseRows, dropout: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of rows ``x`` ``(B, n_items)``, dense or :class:`SparseRows`
        (the same first layer without the dense product)."""
        if isinstance(x, SparseRows):
            first = x.l2_normalised().dropout(dropout, self.training).linear(self.fcs[0])
        else:
            h = F.dropout(l2_normalise(x), p=dropout, training=self.training)  # (B, n_items)
            first = self.fcs[0](h)  # (B, hidden)
        skip = None
        for i, (fc, ln) in enumerate(zip(self.fcs, self.lns)):
            pre = first if i == 0 else fc(h) + skip
            h = ln(F.silu(pre))  # (B, hidden); swish = silu
            skip = h if skip is None else skip + h  # dense connections: sum of earlier layers
        return self.fc_mu(h), self.fc_logvar(h)  # (B, latent) x 2


class RecVAENetwork(nn.Module):
    """Encoder, linear decoder and the composite prior's frozen old encoder."""

    def __init__(self, n_items: int, config: RecVAEConfig):
        super().__init__()
        self.encoder = RecVAEEncoder(n_items, config.hidden_dim, config.latent_dim)
        self.decoder = nn.Linear(config.latent_dim, n_items)
        self.encoder_old = RecVAEEncoder(n_items, config.hidden_dim, config.latent_dim)
        self.encoder_old.requires_grad_(False)
        self.update_prior()
        self.register_buffer(
            "log_mixture", torch.log(torch.tensor(config.mixture_weights, dtype=torch.float32))
        )
        self.dropout = config.dropout
        self.gamma, self.beta = config.gamma, config.beta

    @torch.no_grad()
    def update_prior(self) -> None:
        """Copy the encoder into the prior's old encoder (after the encoder passes)."""
        self.encoder_old.load_state_dict(self.encoder.state_dict())

    def log_prior(self, x: torch.Tensor | SparseRows, z: torch.Tensor) -> torch.Tensor:
        """``log p(z | phi_old, x)`` element-wise ``(B, latent)`` (paper Eq. 6)."""
        with torch.no_grad():
            self.encoder_old.eval()
            post_mu, post_logvar = self.encoder_old(x, 0.0)
        zero = torch.zeros_like(z)
        parts = torch.stack(
            [
                log_norm_pdf(z, zero, zero),  # standard normal
                log_norm_pdf(z, post_mu, post_logvar),  # old posterior
                log_norm_pdf(z, zero, zero + 10.0),  # wide normal, variance e^10
            ],
            dim=-1,
        )  # (B, latent, 3)
        return torch.logsumexp(parts + self.log_mixture, dim=-1)

    def forward(self, x: torch.Tensor | SparseRows, phase: int = PHASE_ENCODER) -> torch.Tensor:
        """Negative ELBO of a batch (training), updating only the ``phase``'s half; ``x``
        dense ``(B, n_items)`` or :class:`SparseRows`."""
        dense = x.dense() if isinstance(x, SparseRows) else x  # (B, n_items)
        dropout = self.dropout if phase == PHASE_ENCODER else 0.0
        mu, logvar = self.encoder(x, dropout)
        if phase != PHASE_ENCODER:  # the encoder is frozen in decoder passes
            mu, logvar = mu.detach(), logvar.detach()
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # (B, latent)
        if phase == PHASE_ENCODER:
            logits = F.linear(z, self.decoder.weight.detach(), self.decoder.bias.detach())
        else:
            logits = self.decoder(z)  # (B, n_items)
        nll = multinomial_nll(logits, dense)
        weight = self.gamma * dense.sum(-1) if self.gamma > 0 else self.beta  # (B,) Eq. 9
        kl = (log_norm_pdf(z, mu, logvar) - self.log_prior(x, z)).sum(-1)  # (B,)
        return nll + (kl * weight).mean()

    def score(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        mu, _ = self.encoder(x, 0.0)
        return self.decoder(mu)  # (B, n_items)


@register_model("recvae")
class RecVAE(NeuralRecommender):
    """RecVAE (Shenbin et al. 2020); see the module docstring."""

    summary = "Mult-VAE with a composite prior and alternating training (Shenbin et al. 2020)."

    config_class = RecVAEConfig
    config: RecVAEConfig

    def _build_network(self) -> RecVAENetwork:
        return RecVAENetwork(self.n_items, self.config)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        mat, users = binary_matrix(dataset), training_users(dataset)
        cfg = self.config
        for phase, passes in ((PHASE_ENCODER, cfg.n_enc_epochs), (PHASE_DECODER, cfg.n_dec_epochs)):
            for _ in range(passes):
                first = True
                for batch in sparse_rows_batches(mat, users, cfg.batch_size, generator):
                    batch["phase"] = torch.tensor([phase])
                    # refresh the prior once, before the first decoder batch (Sec. 3.4)
                    batch["update_prior"] = torch.tensor([int(phase == PHASE_DECODER and first)])
                    first = False
                    yield batch

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self.network_ is not None
        if int(batch["update_prior"]):
            self.network_.update_prior()
        rows = SparseRows.from_batch(batch, self.n_items)
        return net(encoder_input(rows, self.config.sparse_input, self.device_), int(batch["phase"]))

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        rows = SparseRows.from_csr(batch.matrix, self.device_)
        x = encoder_input(rows, self.config.sparse_input, self.device_)
        return pad_scores(self.network_.score(x))  # (B, n_items + 1)
