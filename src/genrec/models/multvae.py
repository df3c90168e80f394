"""Mult-VAE: Variational Autoencoders for Collaborative Filtering (Liang et al., WWW 2018).

The user's binary interaction row ``x_u`` is L2-normalised, dropped out (input dropout),
encoded by a tanh MLP into ``q(z_u | x_u) = N(mu, diag(sigma^2))`` and decoded into logits
``f(z_u)`` over the catalogue. The likelihood is multinomial (paper Eq. 2):
``log p(x_u | z_u) = sum_i x_ui log softmax(f(z_u))_i``, and the loss is the negative
beta-ELBO (Eq. 6) ``-log p(x_u|z_u) + beta * KL(q(z_u|x_u) || N(0, I))`` with ``beta``
annealed linearly from 0 to ``anneal_cap`` over ``total_anneal_steps`` updates (Sec. 2.2.2).

Scoring is fold-in: the encoder reads the history row given at inference (the training
row, train + validation at test time, or an ad-hoc history), takes the posterior mean
(no sampling, no dropout) and the decoder's logits are the scores. A known user with an
empty row is scored from ``z = encoder(0)``: one fixed ranking, the same for every such user
(close to popularity); items never seen in training get low logits (the softmax pushes
them down), so they are rarely recommended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError
from genrec.models.ae_common import (
    SparseRows,
    anneal_beta,
    binary_matrix,
    encoder_input,
    gaussian_kl,
    l2_normalise,
    multinomial_nll,
    pad_scores,
    sparse_rows_batches,
    training_users,
)
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.registry import register_model


@dataclass(frozen=True)
class MultVAEConfig(NeuralConfig):
    """Config of :class:`MultVAE` (defaults: the paper's ML-20M setting)."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.7},
        "dims": {"type": "categorical", "choices": [[200], [600, 200], [600, 100]]},
        "anneal_cap": {"type": "float", "low": 0.0, "high": 1.0},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    }

    batch_size: int = field(500, "users per batch (paper: 500)")
    grad_clip: float = field(0.0, "clip the gradient norm (0 = off; the paper does not clip)")
    dims: tuple[int, ...] = field(
        (600, 200), "encoder widths; the last is the latent size (decoder mirrors them)"
    )
    dropout: float = field(0.5, "input dropout on the normalised row (paper: 0.5)")
    sparse_input: bool = field(
        True,
        "compute the first layer from the row's items only (exact, no (B, n_items) product; "
        "CPU and CUDA, elsewhere dense); False: the dense product",
    )
    anneal_cap: float = field(0.2, "largest KL weight beta (paper: 0.2)")
    total_anneal_steps: int = field(
        20_000, "updates over which beta grows linearly from 0 to anneal_cap (0 = cap at once)"
    )

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if not self.dims or any(d <= 0 for d in self.dims):
            raise ConfigError(f"{name}.dims must be positive ints, got {self.dims}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{name}.dropout must be in [0, 1), got {self.dropout}")
        self.positive("anneal_cap", "total_anneal_steps", allow_zero=True)


def _mlp(sizes: list[int]) -> nn.ModuleList:
    layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
    for layer in layers:  # Xavier weights, N(0, 0.001) biases as in the reference code
        nn.init.xavier_normal_(layer.weight)
        nn.init.normal_(layer.bias, std=0.001)
    return layers


class MultVAENetwork(nn.Module):
    """Encoder/decoder tanh MLPs; ``variational=False`` gives Mult-DAE.

    Args:
        n_items: catalogue size (inputs and outputs have ``n_items`` columns, no padding).
        dims: encoder widths, the last one the latent size.
        dropout: input dropout probability.
        variational: Gaussian posterior with reparameterisation (VAE) or a deterministic
            code (DAE).
    """

    def __init__(self, n_items: int, dims: tuple[int, ...], dropout: float, variational: bool):
        super().__init__()
        self.variational = variational
        enc = [n_items, *dims]
        if variational:  # the last encoder layer outputs (mu, logvar)
            enc[-1] = 2 * dims[-1]
        self.latent_dim = dims[-1]
        self.encoder = _mlp(enc)
        self.decoder = _mlp([*reversed(dims), n_items])
        self.drop = nn.Dropout(dropout)
        # updates seen so far, for the KL annealing schedule (checkpointed with the weights)
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))

    def encode(self, x: torch.Tensor | SparseRows) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mu, logvar)`` (``logvar`` is ``None`` for the DAE) of rows ``x`` ``(B, n)``,
        dense or :class:`SparseRows` (the same first layer without the dense product)."""
        if isinstance(x, SparseRows):
            h = x.l2_normalised().dropout(self.drop.p, self.training).linear(self.encoder[0])
        else:
            h = self.encoder[0](self.drop(l2_normalise(x)))  # (B, n_items) -> (B, d_1)
        for i, layer in enumerate(self.encoder):
            h = layer(h) if i else h
            if i < len(self.encoder) - 1 or not self.variational:
                h = torch.tanh(h)
        if not self.variational:
            return h, None  # (B, latent)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]  # (B, latent) x 2

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = torch.tanh(h)
        return h  # (B, n_items) logits

    def forward(
        self, x: torch.Tensor | SparseRows
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Logits ``(B, n_items)``, ``mu`` and ``logvar``; samples ``z`` only in training."""
        mu, logvar = self.encode(x)
        z = mu
        if self.variational and self.training:
            assert logvar is not None
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        return self.decode(z), mu, logvar


@register_model("multvae")
class MultVAE(NeuralRecommender):
    """Mult-VAE (Liang et al. 2018); see the module docstring."""

    summary = (
        "Variational auto-encoder of the user's items, multinomial likelihood (Liang et al. 2018)."
    )

    config_class = MultVAEConfig
    config: MultVAEConfig
    variational = True

    def _build_network(self) -> MultVAENetwork:
        return MultVAENetwork(self.n_items, self.config.dims, self.config.dropout, self.variational)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        mat = binary_matrix(dataset)
        yield from sparse_rows_batches(
            mat, training_users(dataset), self.config.batch_size, generator
        )

    def current_beta(self) -> float:
        """The KL weight the next update uses."""
        assert self.network_ is not None
        step = int(self.network_.anneal_step)
        return anneal_beta(step, self.config.total_anneal_steps, self.config.anneal_cap)

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self.network_ is not None
        rows = SparseRows.from_batch(batch, self.n_items)
        x = encoder_input(rows, self.config.sparse_input, self.device_)
        logits, mu, logvar = net(x)
        loss = multinomial_nll(logits, x.dense() if isinstance(x, SparseRows) else x)
        if self.variational:
            beta = self.current_beta()
            loss = loss + beta * gaussian_kl(mu, logvar).mean()
        self.network_.anneal_step += 1
        return loss

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        rows = SparseRows.from_csr(batch.matrix, self.device_)
        logits, _, _ = self.network_(encoder_input(rows, self.config.sparse_input, self.device_))
        return pad_scores(logits)  # (B, n_items + 1)
