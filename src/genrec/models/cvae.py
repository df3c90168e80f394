"""CVAE: Collaborative Variational Autoencoder (Li & She, KDD 2017), simplified.

The paper's generative story: an item's content ``x_j`` has a VAE latent ``z_j``; the item's
collaborative factor is ``v_j = z_j + eps_j`` with ``eps_j ~ N(0, lambda_v^-1 I)``; user
factors ``u_i ~ N(0, lambda_u^-1 I)``; ratings ``r_ij ~ N(u_i^T v_j, c_ij^-1)`` with confidence
``c_ij = a`` for observed and ``b`` for unobserved pairs (Eq. 1-3). Training maximises
the joint objective (Eq. 8): the item VAE's ELBO (weighted by ``lambda_r``), the rating fit
and both Gaussian priors.

What genrec implements (and how it is simplified):

* Item side, as in the paper: a VAE on the content (encoder -> ``(mu_j, logvar_j)``,
  decoder -> Bernoulli logits for binary content such as genre one-hots, or a Gaussian
  mean for real vectors) and a learned offset ``eps_j`` per item: ``v_j = mu_j + eps_j``
  with the prior penalty ``lambda_v / 2 ||eps_j||^2``. Items with few or no interactions
  barely move ``eps_j``, so their factors come from content.
* User side: instead of free per-user parameters, ``u_i`` is the paper's closed-form EM
  update given ``V`` (Eq. 9, the CTR/WMF ridge step) computed on the fly from the history
  row: ``u_i = (b V^T V + (a - b) V_S^T V_S + lambda_u I)^-1 a V_S^T 1`` with ``S`` the
  items in the history. This is exactly the fold-in the paper uses for its users, makes
  every history (training, train + validation at test time, ad-hoc) scorable, and lets
  gradient descent (through ``torch.linalg.solve``) replace the alternating EM over ``V``
  and the VAE: one AdamW over all weights, not the paper's layer-wise pre-training.
* Loss per batch of users: ``mean_u [sum_j c_uj / 2 (r_uj - u^T v_j)^2 + lambda_u / 2
  ||u||^2] + (lambda_v / 2 sum_j ||eps_j||^2 + lambda_r * sum_j VAE_loss_j) / n_users``
  (the full objective divided by the number of users).

Content: ``content="genres"`` (default) uses ``dataset.item_genres()``; otherwise a path to
a ``.npy`` of shape ``(n_items + 1, d)`` (row 0 = padding) or ``(n_items, d)``, rows in
internal item-id order; or pass ``item_vectors=`` to the constructor (same shapes). A wrong
number of rows, a non-2-D array, non-finite values or a width other than ``content_dim``
(when set) raise :class:`~genrec.errors.DataValidationError` naming the shapes. The content
is stored with the model's weights, so a saved model needs nothing else.

Empty histories: ``u = 0`` would score every item 0, so a known user with no interactions
is ranked by training popularity (ad-hoc empty histories are handled by the base class the
same way).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError, DataValidationError
from genrec.models.ae_common import (
    binary_matrix,
    gaussian_kl,
    pad_scores,
    sparse_rows_batches,
    training_users,
)
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.registry import register_model

Likelihood = Literal["auto", "bernoulli", "gaussian"]


@dataclass(frozen=True)
class CVAEConfig(NeuralConfig):
    """Config of :class:`CVAE`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "latent_dim": {"type": "categorical", "choices": [25, 50, 100]},
        "lambda_u": {"type": "float", "low": 0.01, "high": 10.0, "log": True},
        "lambda_v": {"type": "float", "low": 0.1, "high": 100.0, "log": True},
    }

    batch_size: int = field(256, "users per batch")
    grad_clip: float = field(0.0, "clip the gradient norm (0 = off)")
    latent_dim: int = field(50, "K: size of item and user factors (paper: 50)")
    content: str = field("genres", "'genres' (item table) or a path to a .npy of item vectors")
    content_dim: int = field(0, "expected content width (0 = accept any)")
    content_hidden: tuple[int, ...] = field((200,), "content encoder widths (decoder mirrors)")
    content_likelihood: Likelihood = field(
        "auto", "'bernoulli' (binary content), 'gaussian' (real vectors) or 'auto'"
    )
    content_dropout: float = field(0.1, "dropout on the content input (denoising, as the paper)")
    a: float = field(1.0, "confidence of observed pairs (paper: a = 1)")
    b: float = field(0.01, "confidence of unobserved pairs (paper: b = 0.01)")
    lambda_u: float = field(0.1, "user factor prior precision (paper: 0.1)")
    lambda_v: float = field(10.0, "precision of v_j around its content latent (paper: 10)")
    lambda_r: float = field(1.0, "weight of the content VAE's negative ELBO")

    def validate(self) -> None:
        super().validate()
        self.positive("latent_dim", "a", "lambda_u")
        self.positive("b", "lambda_v", "lambda_r", "content_dim", allow_zero=True)
        if self.b > self.a:
            raise ConfigError(f"CVAEConfig needs b <= a, got a={self.a}, b={self.b}")
        if not 0.0 <= self.content_dropout < 1.0:
            raise ConfigError(
                f"CVAEConfig.content_dropout must be in [0, 1), got {self.content_dropout}"
            )
        if any(d <= 0 for d in self.content_hidden):
            raise ConfigError(f"CVAEConfig.content_hidden must be positive: {self.content_hidden}")


def check_content(content: Any, n_items: int, content_dim: int = 0) -> np.ndarray:
    """Validate item content and return it as float32 ``(n_items + 1, d)`` (row 0 = zeros).

    Raises:
        DataValidationError: not 2-D, wrong number of rows or columns, non-finite values.
    """
    if sp.issparse(content):
        content = content.toarray()
    arr = np.asarray(content, dtype=np.float32)
    if arr.ndim != 2:
        raise DataValidationError(
            f"item content must be a 2-D array (items x features), got shape {arr.shape}"
        )
    if arr.shape[0] == n_items:
        arr = np.concatenate([np.zeros((1, arr.shape[1]), np.float32), arr])
    elif arr.shape[0] != n_items + 1:
        raise DataValidationError(
            f"item content has shape {arr.shape}; expected ({n_items + 1}, d) with row 0 for "
            f"padding or ({n_items}, d), one row per internal item id"
        )
    if content_dim and arr.shape[1] != content_dim:
        raise DataValidationError(
            f"item content has shape {arr.shape}: width {arr.shape[1]} != content_dim {content_dim}"
        )
    if arr.shape[1] == 0:
        raise DataValidationError(f"item content has shape {arr.shape}: no features")
    if not np.isfinite(arr).all():
        raise DataValidationError("item content contains NaN or infinite values")
    arr[0] = 0.0
    return arr


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Sigmoid())  # the paper's SDAE/VAE uses sigmoid units
    return nn.Sequential(*layers)


class CVAENetwork(nn.Module):
    """Content VAE, item offsets and the closed-form user fold-in.

    Args:
        content: ``(n_items + 1, d)`` item content (stored as a buffer).
        config: :class:`CVAEConfig`.
        bernoulli: Bernoulli (binary content) or Gaussian likelihood for the content.
    """

    def __init__(self, content: torch.Tensor, config: CVAEConfig, bernoulli: bool):
        super().__init__()
        n1, d = content.shape
        K = config.latent_dim
        self.register_buffer("content", content)
        self.bernoulli = bernoulli
        self.cfg = config
        self.encoder = _mlp([d, *config.content_hidden, 2 * K])
        self.decoder = _mlp([K, *reversed(config.content_hidden), d])
        self.offset = nn.Parameter(torch.zeros(n1, K))  # eps_j, row 0 unused
        self.drop = nn.Dropout(config.content_dropout)
        self.K = K

    def content_posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self.drop(self.content[1:]))  # (n_items, 2K)
        return h[:, : self.K], h[:, self.K :]

    def item_factors(self, mu: torch.Tensor) -> torch.Tensor:
        """``V = mu + eps`` ``(n_items, K)``."""
        return mu + self.offset[1:]

    def fold_in(self, V: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Closed-form user factors ``(B, K)`` (paper Eq. 9 / CTR's ridge update).

        Args:
            V: ``(n_items, K)`` item factors.
            hist: ``(B, L)`` 0-based item columns of each history (padding anywhere).
            mask: ``(B, L)`` which entries of ``hist`` are real.
        """
        cfg = self.cfg
        Vh = V[hist] * mask[..., None]  # (B, L, K)
        eye = torch.eye(self.K, device=V.device, dtype=V.dtype)
        A = cfg.b * (V.T @ V) + (cfg.a - cfg.b) * torch.einsum("blk,blm->bkm", Vh, Vh)
        A = A + cfg.lambda_u * eye  # (B, K, K)
        rhs = cfg.a * Vh.sum(1)  # (B, K)
        return torch.linalg.solve(A, rhs.unsqueeze(-1)).squeeze(-1)

    def forward(
        self, x: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor, n_users: int
    ) -> torch.Tensor:
        """The per-batch objective (module docstring) for dense rows ``x`` ``(B, n_items)``."""
        cfg = self.cfg
        mu, logvar = self.content_posterior()
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # (n_items, K)
        recon = self.decoder(z)  # (n_items, d)
        target = self.content[1:]
        if self.bernoulli:
            rec = F.binary_cross_entropy_with_logits(recon, target, reduction="none").sum(-1)
        else:
            rec = 0.5 * ((recon - target) ** 2).sum(-1)
        vae = (rec + gaussian_kl(mu, logvar)).sum()
        V = self.item_factors(mu)
        U = self.fold_in(V, hist, mask)  # (B, K)
        pred = U @ V.T  # (B, n_items)
        conf = cfg.b + (cfg.a - cfg.b) * x
        fit = 0.5 * (conf * (x - pred) ** 2).sum(-1) + 0.5 * cfg.lambda_u * U.pow(2).sum(-1)
        prior_v = 0.5 * cfg.lambda_v * self.offset[1:].pow(2).sum()
        return fit.mean() + (prior_v + cfg.lambda_r * vae) / n_users

    def score(self, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mu, _ = self.content_posterior()
        V = self.item_factors(mu)
        return self.fold_in(V, hist, mask) @ V.T  # (B, n_items)


def _padded_columns(
    rows: np.ndarray, cols: np.ndarray, n_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, L)`` column indices and mask from COO ``rows``/``cols`` sorted by row."""
    counts = np.bincount(rows, minlength=n_rows)
    L = max(1, int(counts.max()) if len(counts) else 1)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.zeros((n_rows, L), dtype=np.int64)
    mask = np.zeros((n_rows, L), dtype=np.float32)
    idx[rows, pos] = cols
    mask[rows, pos] = 1.0
    return torch.from_numpy(idx), torch.from_numpy(mask)


@register_model("cvae")
class CVAE(NeuralRecommender):
    """Collaborative VAE (Li & She 2017), simplified; see the module docstring.

    Args:
        config: :class:`CVAEConfig` or a dict.
        item_vectors: optional item content ``(n_items + 1, d)`` or ``(n_items, d)`` in
            internal item-id order; overrides ``config.content``.
        **overrides: config fields.
    """

    summary = (
        "Collaborative variational auto-encoder that also reads the items' content (Li & She 2017)."
    )

    config_class = CVAEConfig
    config: CVAEConfig

    def __init__(self, config: Any = None, *, item_vectors: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self._item_vectors = item_vectors
        self.content_: np.ndarray | None = None
        self.n_train_users_ = 1

    def _resolve_content(self, dataset: Dataset) -> np.ndarray:
        cfg = self.config
        if self._item_vectors is not None:
            raw = self._item_vectors
        elif cfg.content == "genres":
            raw = dataset.item_genres()
            if raw is None:
                raise DataValidationError(
                    "cvae needs item content: the dataset has no genres in its item table; "
                    "set content to a .npy file of item vectors (command line: --set "
                    "content=PATH) or pass item_vectors=..."
                )
        else:
            path = Path(cfg.content)
            if path.suffix != ".npy" or not path.is_file():
                raise DataValidationError(
                    f"cvae content must be 'genres' or an existing .npy file, got {cfg.content!r}"
                )
            raw = np.load(path, allow_pickle=False)
        return check_content(raw, dataset.n_items, cfg.content_dim)

    def _fit(self, dataset: Dataset, valid: Any) -> None:
        self.content_ = self._resolve_content(dataset)
        self.n_train_users_ = max(1, len(training_users(dataset)))
        super()._fit(dataset, valid)

    def _bernoulli(self) -> bool:
        assert self.content_ is not None
        mode = self.config.content_likelihood
        if mode == "auto":
            return bool(np.isin(self.content_, (0.0, 1.0)).all())
        return mode == "bernoulli"

    def _build_network(self) -> CVAENetwork:
        assert self.content_ is not None
        return CVAENetwork(torch.from_numpy(self.content_), self.config, self._bernoulli())

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        mat = binary_matrix(dataset)
        yield from sparse_rows_batches(
            mat, training_users(dataset), self.config.batch_size, generator
        )

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        B = batch["users"].shape[0]
        x = torch.zeros(B, self.n_items, device=batch["vals"].device)  # (B, n_items)
        x[batch["rows"], batch["cols"]] = 1.0
        hist, mask = _padded_columns(batch["rows"].cpu().numpy(), batch["cols"].cpu().numpy(), B)
        dev = x.device
        return net(x, hist.to(dev), mask.to(dev), self.n_train_users_)

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        m = batch.matrix.tocsr()
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        hist, mask = _padded_columns(rows, m.indices.astype(np.int64) - 1, m.shape[0])
        scores = self.network_.score(hist.to(self.device_), mask.to(self.device_))
        empty = torch.from_numpy(np.diff(m.indptr) == 0).to(self.device_)
        if bool(empty.any()):  # u = 0 scores every item 0: rank by popularity instead
            pop = torch.as_tensor(self.item_popularity_[1:], dtype=scores.dtype)
            scores[empty] = pop.to(self.device_)
        return pad_scores(scores)  # (B, n_items + 1)

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.content_ = np.asarray(state["content"], dtype=np.float32)
        super()._load_state_dict(state)
