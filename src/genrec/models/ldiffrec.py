"""L-DiffRec: latent DiffRec (Wang et al., SIGIR 2023, Sec. 3.5).

Large catalogues make DiffRec's ``n_items``-wide denoiser expensive. L-DiffRec

1. clusters the items into ``n_groups`` groups (k-means on item embeddings; here the item
   factors of a truncated SVD of the training matrix, since genrec has no pre-trained
   LightGCN embeddings as the reference code uses),
2. compresses each group's slice of the row with its own variational encoder
   (``q(z_c | x_c)``, latent size proportional to the group size, ``latent_dim`` in total),
3. runs the Gaussian diffusion of :mod:`genrec.models.diffrec` on the concatenated latent
   ``z = [z_1, ..., z_C]`` with a small denoiser, and
4. decodes the predicted ``z_0`` per group back to item logits.

Loss: ``diffusion loss(sg(z)) / (T p_t) + [-sum_i x_ui log softmax(dec(z0_hat))_i
- sum_i x_ui log softmax(dec(z))_i + lambda * KL(q(z|x) || N(0, I))]`` with ``lambda =
max(lamda * (1 - step/anneal_steps), anneal_cap)`` (``anneal_steps = 0``: ``max(lamda,
anneal_cap)``). Inference: posterior mean ``z``, reverse diffusion from it
(``sampling_steps`` as DiffRec), decode.

Deviation from the reference code (which trains the two jointly with the latent not
detached, with two Adam optimizers): there the SNR-reweighted diffusion loss (weights in the
thousands for the small noise scales used) dominates and, on our data, collapses the encoder
to one constant latent (every user gets the same list). genrec stops the diffusion loss's
gradient into the encoder (``sg``, as latent diffusion models train on fixed latents) and
adds the plain VAE reconstruction from ``z``, so the encoder is trained by the VAE terms and
the denoiser/decoder by both.

Fold-in, empty rows and unseen items behave as in DiffRec (unseen items: their group's
decoder learns low logits; they still have a group, chosen by their all-zero SVD factor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.models.ae_common import (
    csr_to_dense,
    densify,
    gaussian_kl,
    l2_normalise,
    pad_scores,
)
from genrec.models.diffrec import Denoiser, DiffRec, DiffRecConfig, make_diffusion
from genrec.registry import register_model


@dataclass(frozen=True)
class LDiffRecConfig(DiffRecConfig):
    """Config of :class:`LDiffRec`: DiffRec's diffusion fields plus the grouped VAE."""

    dims: tuple[int, ...] = field((300,), "latent denoiser widths (reference --mlp_dims)")
    n_groups: int = field(2, "item clusters, each with its own encoder (reference --n_cate)")
    latent_dim: int = field(300, "total latent size, split over groups by size")
    ae_dropout: float = field(0.5, "input dropout of the group encoders")
    lamda: float = field(0.03, "KL weight of the group VAEs (reference --lamda)")
    anneal_steps: int = field(0, "steps over which the KL weight decays to anneal_cap (0 = off)")
    anneal_cap: float = field(0.005, "floor of the KL weight")
    svd_dim: int = field(32, "item embedding size of the truncated SVD used for clustering")

    def validate(self) -> None:
        super().validate()
        self.positive("n_groups", "latent_dim", "svd_dim")
        self.positive("lamda", "anneal_steps", "anneal_cap", "ae_dropout", allow_zero=True)


def cluster_items(matrix: sp.csr_matrix, n_groups: int, dim: int, seed: int) -> np.ndarray:
    """Group label ``(n_items,)`` of every item (column 1..n of ``matrix``), labels ``0..G-1``
    contiguous (empty clusters dropped): k-means on L2-normalised truncated-SVD factors."""
    X = matrix[:, 1:].astype(np.float64).T.tocsr()  # (n_items, n_users + 1)
    n = X.shape[0]
    rng = np.random.default_rng(seed)
    k = max(1, min(dim, min(X.shape) - 1))
    if k >= 1 and X.nnz and min(X.shape) > 1:
        u, s, _ = spla.svds(X, k=k, v0=rng.standard_normal(min(X.shape)))
        emb = u * s  # (n_items, k)
    else:
        emb = np.zeros((n, 1))
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
    G = min(n_groups, n)
    centres = emb[rng.choice(n, size=G, replace=False)]
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(25):  # Lloyd iterations
        d = ((emb[:, None, :] - centres[None]) ** 2).sum(-1)  # (n, G)
        labels = d.argmin(1)
        for g in range(G):
            if (labels == g).any():
                centres[g] = emb[labels == g].mean(0)
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class LDiffRecNetwork(nn.Module):
    """Per-group VAE encoders/decoders around a latent diffusion."""

    def __init__(self, n_items: int, groups: np.ndarray, cfg: LDiffRecConfig):
        super().__init__()
        G = int(groups.max()) + 1
        sizes = np.bincount(groups, minlength=G)
        lat = np.maximum(1, np.round(cfg.latent_dim * sizes / n_items)).astype(int)
        self.register_buffer("groups", torch.from_numpy(groups.astype(np.int64)))
        self.idx = [torch.from_numpy(np.flatnonzero(groups == g)) for g in range(G)]
        self.lat = [int(x) for x in lat]
        self.encoders = nn.ModuleList(_mlp([int(sizes[g]), 2 * self.lat[g]]) for g in range(G))
        self.decoders = nn.ModuleList(_mlp([self.lat[g], int(sizes[g])]) for g in range(G))
        self.drop = nn.Dropout(cfg.ae_dropout)
        self.diffusion = make_diffusion(cfg)
        self.denoiser = Denoiser(int(lat.sum()), cfg.dims, cfg.emb_size, cfg.norm, cfg.dropout)
        self.n_items = n_items
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def _index(self, g: int, device: torch.device) -> torch.Tensor:
        if self.idx[g].device != device:
            self.idx[g] = self.idx[g].to(device)
        return self.idx[g]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mu, logvar)`` ``(B, L)`` of the concatenated group latents."""
        h = self.drop(l2_normalise(x))  # (B, n_items)
        mus, logvars = [], []
        for g, enc in enumerate(self.encoders):
            out = enc(h[:, self._index(g, x.device)])  # (B, 2 L_g)
            mus.append(out[:, : self.lat[g]])
            logvars.append(out[:, self.lat[g] :])
        return torch.cat(mus, -1), torch.cat(logvars, -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Item logits ``(B, n_items)`` from latents ``(B, L)``."""
        out = z.new_zeros(z.shape[0], self.n_items)
        for g, (dec, part) in enumerate(zip(self.decoders, z.split(self.lat, dim=-1))):
            out[:, self._index(g, z.device)] = dec(part)
        return out

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-sample diffusion losses ``(B,)``, reconstruction NLL ``(B,)`` and KL ``(B,)``.

        The diffusion runs on the detached latent (see the module docstring), and the NLL
        sums the reconstruction from the predicted ``z0`` and from ``z`` itself.
        """
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # (B, L)
        diff, z0_hat = self.diffusion.training_losses(self.denoiser, z.detach(), t)
        nll = -(torch.log_softmax(self.decode(z0_hat), -1) * x).sum(-1)  # (B,)
        nll = nll - (torch.log_softmax(self.decode(z), -1) * x).sum(-1)
        return diff, nll, gaussian_kl(mu, logvar)

    @torch.no_grad()
    def score(self, x: torch.Tensor, sampling_steps: int, sampling_noise: bool) -> torch.Tensor:
        mu, _ = self.encode(x)
        z = self.diffusion.p_sample(self.denoiser, mu, sampling_steps, sampling_noise)
        return self.decode(z)


@register_model("ldiffrec")
class LDiffRec(DiffRec):
    """L-DiffRec (Wang et al. 2023, Sec. 3.5); see the module docstring."""

    summary = "DiffRec in a compressed latent space of item clusters (Wang et al. 2023)."

    config_class = LDiffRecConfig
    config: LDiffRecConfig  # type: ignore[assignment]

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.groups_: np.ndarray | None = None

    def _fit(self, dataset: Dataset, valid: Any) -> None:
        cfg = self.config
        self.groups_ = cluster_items(dataset.matrix(), cfg.n_groups, cfg.svd_dim, cfg.seed)
        super()._fit(dataset, valid)

    def _build_network(self) -> LDiffRecNetwork:
        assert self.groups_ is not None
        return LDiffRecNetwork(self.n_items, self.groups_, self.config)

    def kl_weight(self, step: int) -> float:
        cfg = self.config
        if cfg.anneal_steps > 0:
            return max((1.0 - step / cfg.anneal_steps) * cfg.lamda, cfg.anneal_cap)
        return max(cfg.lamda, cfg.anneal_cap)

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self.network_ is not None
        x = densify(batch, self.n_items)  # (B, n_items)
        core = self.network_  # the unwrapped module: its diffusion state and step counter
        t, pt = core.diffusion.sample_timesteps(x.shape[0], x.device)
        diff, nll, kl = net(x, t)  # forward through `net` (DDP averages the gradients)
        core.diffusion.update_history(t, diff)
        lam = self.kl_weight(int(core.step))
        core.step += 1
        return (diff / pt).mean() + (nll + lam * kl).mean()

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        x = csr_to_dense(batch.matrix, self.device_)  # (B, n_items)
        out = self.network_.score(x, self.config.sampling_steps, self.config.sampling_noise)
        return pad_scores(out)  # (B, n_items + 1)

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.groups_ = np.asarray(state["groups"], dtype=np.int64)
        super()._load_state_dict(state)
