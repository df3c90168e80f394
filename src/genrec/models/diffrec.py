"""DiffRec: Diffusion Recommender Model (Wang et al., SIGIR 2023).

A Gaussian diffusion over the user's interaction row ``x_0`` (binary, ``n_items`` wide):

* Forward process (paper Eq. 2-3): ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``
  with ``1 - abar_t = s * [a_min + (t - 1)/(T - 1) * (a_max - a_min)]`` (Eq. 14, the
  "linear-var" schedule: the variance grows linearly; ``s`` = ``noise_scale``,
  ``a_min/a_max`` = ``noise_min``/``noise_max``, ``T`` = ``steps``). The small scale keeps the
  personalised signal: the row is never corrupted into pure noise (Sec. 3.2).
* Reverse model: an MLP ``f_theta(x_t, t)`` predicting ``x_0`` (``mean_type="x0"``, Sec.
  3.3, the paper's choice) or the noise (``"eps"``), with a sinusoidal timestep embedding of
  ``emb_size`` concatenated to the (dropped-out) input (reference code's ``DNN``).
* Loss (Eq. 11-12): ``||x_0 - f(x_t, t)||^2`` averaged over items, weighted by
  ``SNR(t - 1) - SNR(t)`` when ``reweight`` (weight 1 at the first step).
* Importance sampling of ``t`` (Eq. 13): uniform until every step has
  ``history_num_per_term`` recorded losses, then ``p_t ∝ sqrt(E[L_t^2])`` (mixed with
  ``uniform_prob`` of uniform mass) and each sample's loss divided by ``T p_t``.
* Inference (Sec. 3.4, Algorithm 2): noise the history row for ``sampling_steps`` steps
  (``0`` = start from ``x_T' = x`` itself, the reference code's default), then run the
  ``T`` reverse steps with the posterior mean (``sampling_noise=False``); the result scores
  the items.

Fold-in: the row given at inference is the history (train, train + validation at test time,
or an ad-hoc history). A known user with an empty row is denoised from zeros: one fixed
ranking for every such user. Items never seen in training get near-zero reconstructions.
:class:`~genrec.models.tdiffrec.TDiffRec` and :class:`~genrec.models.ldiffrec.LDiffRec`
reuse :class:`GaussianDiffusion` and :class:`Denoiser` from this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
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
    pad_scores,
    sparse_rows_batches,
    training_users,
)
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.registry import register_model

MeanType = Literal["x0", "eps"]
Schedule = Literal["linear-var", "linear"]


@dataclass(frozen=True)
class DiffRecConfig(NeuralConfig):
    """Config of :class:`DiffRec` (defaults: the reference code's ML-1M clean setting)."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        "dims": {"type": "categorical", "choices": [[300], [200, 600], [1000]]},
        "noise_scale": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "steps": {"type": "int", "low": 5, "high": 100, "log": True},
    }

    batch_size: int = field(400, "users per batch (reference: 400)")
    grad_clip: float = field(0.0, "clip the gradient norm (0 = off, as the reference code)")
    dims: tuple[int, ...] = field(
        (200, 600), "denoiser widths after the bottleneck (reference --dims); input half mirrors"
    )
    emb_size: int = field(10, "timestep embedding size")
    norm: bool = field(False, "L2-normalise the denoiser input")
    dropout: float = field(0.5, "dropout on the denoiser input")
    mean_type: MeanType = field("x0", "what the network predicts: 'x0' (paper) or 'eps'")
    noise_schedule: Schedule = field("linear-var", "'linear-var' (Eq. 14) or 'linear' betas")
    noise_scale: float = field(0.005, "s: scales the noise variance (Eq. 14)")
    noise_min: float = field(0.005, "a_min: lower noise bound (Eq. 14)")
    noise_max: float = field(0.01, "a_max: upper noise bound (Eq. 14)")
    steps: int = field(40, "T: diffusion steps")
    sampling_steps: int = field(
        0, "T': forward noising steps before denoising at inference (0 = start from x)"
    )
    sampling_noise: bool = field(False, "add the posterior noise in reverse steps")
    reweight: bool = field(True, "weight the x0 loss by SNR(t-1) - SNR(t) (Eq. 12)")
    history_num_per_term: int = field(10, "losses kept per step for importance sampling")
    uniform_prob: float = field(0.001, "uniform mass mixed into the importance distribution")

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if not self.dims or any(d <= 0 for d in self.dims):
            raise ConfigError(f"{name}.dims must be positive ints, got {self.dims}")
        self.positive("emb_size", "steps", "history_num_per_term")
        self.positive("noise_scale", "noise_min", "noise_max", "sampling_steps", allow_zero=True)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{name}.dropout must be in [0, 1), got {self.dropout}")
        if self.noise_min > self.noise_max:
            raise ConfigError(
                f"{name}.noise_min ({self.noise_min}) must be <= noise_max ({self.noise_max})"
            )
        if self.noise_scale * self.noise_max >= 1.0:
            raise ConfigError(f"{name}: noise_scale * noise_max must be < 1")
        if self.sampling_steps > self.steps:
            raise ConfigError(
                f"{name}.sampling_steps ({self.sampling_steps}) must be <= steps ({self.steps})"
            )
        if not 0.0 <= self.uniform_prob < 1.0:
            raise ConfigError(f"{name}.uniform_prob must be in [0, 1), got {self.uniform_prob}")


def betas_for(schedule: str, steps: int, scale: float, lo: float, hi: float) -> np.ndarray:
    """Noise schedule ``beta_1..beta_T`` (float64).

    ``"linear-var"`` (paper Eq. 14): ``1 - abar_t`` grows linearly from ``scale * lo`` to
    ``scale * hi``, so ``beta_t = 1 - abar_t / abar_{t-1}`` (capped at 0.999).
    ``"linear"``: the betas themselves are linear.
    """
    start, end = scale * lo, scale * hi
    if schedule == "linear":
        return np.linspace(start, end, steps, dtype=np.float64)
    variance = np.linspace(start, end, steps, dtype=np.float64)
    abar = 1.0 - variance
    betas = [1.0 - abar[0]] + [min(1.0 - abar[i] / abar[i - 1], 0.999) for i in range(1, steps)]
    return np.asarray(betas, dtype=np.float64)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of integer steps ``t`` ``(B,)`` (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t[:, None].float() * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb  # (B, dim)


class GaussianDiffusion(nn.Module):
    """Schedule buffers, the forward process, the loss, importance sampling of steps and the
    reverse process. Holds no trainable weights (``Lt_history``/``Lt_count`` are buffers so
    checkpoints resume the importance sampler exactly).
    """

    def __init__(
        self,
        *,
        steps: int,
        noise_schedule: str,
        noise_scale: float,
        noise_min: float,
        noise_max: float,
        mean_type: str = "x0",
        reweight: bool = True,
        history_num_per_term: int = 10,
        uniform_prob: float = 0.001,
    ):
        super().__init__()
        self.steps, self.mean_type, self.reweight = steps, mean_type, reweight
        self.noise_scale = noise_scale
        self.uniform_prob = uniform_prob
        self.history_num_per_term = history_num_per_term
        betas = betas_for(noise_schedule, steps, noise_scale, noise_min, noise_max)
        if noise_scale > 0 and not ((betas > 0) & (betas <= 1)).all():
            raise ConfigError(f"diffusion betas out of (0, 1]: {betas}")
        alphas = 1.0 - betas
        abar = np.cumprod(alphas)
        abar_prev = np.append(1.0, abar[:-1])
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        arrays = {
            "betas": betas,
            "alphas_cumprod": abar,
            "alphas_cumprod_prev": abar_prev,
            "sqrt_alphas_cumprod": np.sqrt(abar),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - abar),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / abar),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / abar - 1.0),
            "posterior_log_variance_clipped": np.log(
                np.append(post_var[1], post_var[1:]) if steps > 1 else np.maximum(post_var, 1e-20)
            ),
            "posterior_mean_coef1": betas * np.sqrt(abar_prev) / (1.0 - abar),
            "posterior_mean_coef2": (1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
        }
        for name, arr in arrays.items():
            self.register_buffer(name, torch.as_tensor(arr, dtype=torch.float64), persistent=False)
        self.register_buffer("Lt_history", torch.zeros(steps, history_num_per_term))
        self.register_buffer("Lt_count", torch.zeros(steps, dtype=torch.long))

    @staticmethod
    def _at(arr: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``arr[t]`` broadcast to ``like``'s shape ``(B, ...)``."""
        out = arr[t].to(like.dtype)
        return out.view(-1, *([1] * (like.dim() - 1)))

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio ``abar_t / (1 - abar_t)``."""
        a = self.alphas_cumprod[t]
        return a / (1.0 - a)

    # ------------------------------------------------------------------ training
    def sample_timesteps(self, batch_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Steps ``(B,)`` and their relative probabilities ``T p_t`` ``(B,)`` (Eq. 13).

        Uniform (``p_t = 1/T``) until every step has ``history_num_per_term`` losses, then
        ``p_t ∝ sqrt(mean(L_t^2))`` mixed with ``uniform_prob`` of uniform mass.
        """
        if not bool((self.Lt_count == self.history_num_per_term).all()):
            t = torch.randint(0, self.steps, (batch_size,), device=device)
            return t, torch.ones(batch_size, device=device)
        pt_all = self.importance_probs().to(device)
        t = torch.multinomial(pt_all, batch_size, replacement=True)
        return t, pt_all[t] * self.steps

    def importance_probs(self) -> torch.Tensor:
        """``p_t`` ``(T,)`` from the loss history (Eq. 13, with the uniform mix-in)."""
        lt = torch.sqrt((self.Lt_history.double() ** 2).mean(-1))  # (T,)
        p = lt / lt.sum()
        return (p * (1.0 - self.uniform_prob) + self.uniform_prob / self.steps).float()

    @torch.no_grad()
    def update_history(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Append each sample's loss to its step's ring of ``history_num_per_term`` values."""
        hist, count = self.Lt_history, self.Lt_count
        k = self.history_num_per_term
        for step, loss in zip(t.tolist(), losses.detach().float().tolist()):
            if count[step] == k:
                hist[step, :-1] = hist[step, 1:].clone()
                hist[step, -1] = loss
            else:
                hist[step, count[step]] = loss
                count[step] += 1

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` (Eq. 3)."""
        if noise is None:
            noise = torch.randn_like(x0)
        return (
            self._at(self.sqrt_alphas_cumprod, t, x0) * x0
            + self._at(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def training_losses(
        self, model: nn.Module, x0: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample weighted losses ``(B,)`` (before dividing by ``T p_t``) and the
        predicted ``x_0`` ``(B, D)`` (Eq. 11-12)."""
        noise = torch.randn_like(x0)
        x_t = self.q_sample(x0, t, noise) if self.noise_scale > 0 else x0
        out = model(x_t, t)  # (B, D)
        target = x0 if self.mean_type == "x0" else noise
        mse = ((target - out) ** 2).mean(-1)  # (B,)
        if self.reweight:
            if self.mean_type == "x0":
                weight = self.snr((t - 1).clamp(min=0)) - self.snr(t)
            else:
                weight = torch.ones_like(mse, dtype=torch.float64)
            weight = torch.where(t == 0, torch.ones_like(weight), weight).to(mse.dtype)
        else:
            weight = torch.ones_like(mse)
        pred_x0 = out if self.mean_type == "x0" else self._x0_from_eps(x_t, t, out)
        return weight * mse, pred_x0

    def _x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return (
            self._at(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - self._at(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def p_sample(
        self,
        model: nn.Module,
        x: torch.Tensor,
        sampling_steps: int = 0,
        sampling_noise: bool = False,
    ) -> torch.Tensor:
        """Reverse process from the history row ``x`` (Algorithm 2): noise it for
        ``sampling_steps`` steps, then take ``T`` posterior-mean steps."""
        B = x.shape[0]
        if sampling_steps == 0:
            x_t = x
        else:
            t = torch.full((B,), sampling_steps - 1, dtype=torch.long, device=x.device)
            x_t = self.q_sample(x, t)
        for i in reversed(range(self.steps)):
            t = torch.full((B,), i, dtype=torch.long, device=x.device)
            out = model(x_t, t)
            if self.noise_scale == 0:
                x_t = out
                continue
            x0 = out if self.mean_type == "x0" else self._x0_from_eps(x_t, t, out)
            mean = (
                self._at(self.posterior_mean_coef1, t, x_t) * x0
                + self._at(self.posterior_mean_coef2, t, x_t) * x_t
            )
            if sampling_noise and i > 0:
                logvar = self._at(self.posterior_log_variance_clipped, t, x_t)
                mean = mean + torch.exp(0.5 * logvar) * torch.randn_like(x_t)
            x_t = mean
        return x_t


class Denoiser(nn.Module):
    """The reference code's ``DNN``: ``[dropout(x_t), emb(t)]`` -> tanh MLP -> output.

    Args:
        in_dim: width of ``x_t`` (``n_items``, or the latent size for L-DiffRec).
        dims: widths after the bottleneck (reference ``--dims``); the input half mirrors
            them, e.g. ``(200, 600)`` -> ``in_dim -> 600 -> 200 -> 600 -> in_dim``.
        emb_size: timestep embedding size.
        norm: L2-normalise the input.
        dropout: input dropout.
    """

    def __init__(
        self, in_dim: int, dims: tuple[int, ...], emb_size: int, norm: bool, dropout: float
    ):
        super().__init__()
        out_dims = [*dims, in_dim]
        in_dims = out_dims[::-1]  # [in_dim, ..., dims[0]]
        self.emb_size, self.norm = emb_size, norm
        self.emb_layer = nn.Linear(emb_size, emb_size)
        sizes_in = [in_dims[0] + emb_size, *in_dims[1:]]
        self.in_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes_in[:-1], sizes_in[1:]))
        self.out_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(out_dims[:-1], out_dims[1:])
        )
        self.drop = nn.Dropout(dropout)
        for layer in [self.emb_layer, *self.in_layers, *self.out_layers]:
            fan_out, fan_in = layer.weight.shape
            nn.init.normal_(layer.weight, std=math.sqrt(2.0 / (fan_in + fan_out)))
            nn.init.normal_(layer.bias, std=0.001)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.emb_layer(timestep_embedding(t, self.emb_size))  # (B, emb)
        if self.norm:
            x = F.normalize(x, dim=-1)
        h = torch.cat([self.drop(x), emb], dim=-1)  # (B, D + emb)
        for layer in self.in_layers:
            h = torch.tanh(layer(h))
        for i, layer in enumerate(self.out_layers):
            h = layer(h)
            if i < len(self.out_layers) - 1:
                h = torch.tanh(h)
        return h  # (B, D)


def make_diffusion(cfg: DiffRecConfig) -> GaussianDiffusion:
    return GaussianDiffusion(
        steps=cfg.steps,
        noise_schedule=cfg.noise_schedule,
        noise_scale=cfg.noise_scale,
        noise_min=cfg.noise_min,
        noise_max=cfg.noise_max,
        mean_type=cfg.mean_type,
        reweight=cfg.reweight,
        history_num_per_term=cfg.history_num_per_term,
        uniform_prob=cfg.uniform_prob,
    )


class DiffRecNetwork(nn.Module):
    """Diffusion schedule + denoiser; ``forward`` gives per-sample losses for steps ``t``."""

    def __init__(self, n_items: int, cfg: DiffRecConfig):
        super().__init__()
        self.diffusion = make_diffusion(cfg)
        self.denoiser = Denoiser(n_items, cfg.dims, cfg.emb_size, cfg.norm, cfg.dropout)

    def forward(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        losses, _ = self.diffusion.training_losses(self.denoiser, x0, t)
        return losses  # (B,)


@register_model("diffrec")
class DiffRec(NeuralRecommender):
    """DiffRec (Wang et al. 2023); see the module docstring."""

    summary = "Diffusion model that denoises the user's interaction vector (Wang et al. 2023)."

    config_class = DiffRecConfig
    config: DiffRecConfig

    def _build_network(self) -> DiffRecNetwork:
        return DiffRecNetwork(self.n_items, self.config)

    # the rows the diffusion runs on; T-DiffRec overrides both with recency weights
    def _training_matrix(self, dataset: Dataset) -> sp.csr_matrix:
        return binary_matrix(dataset)

    def _input_rows(self, batch: HistoryBatch) -> torch.Tensor:
        return csr_to_dense(batch.matrix, self.device_)  # (B, n_items)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        mat = self._training_matrix(dataset)
        yield from sparse_rows_batches(
            mat, training_users(dataset), self.config.batch_size, generator
        )

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self.network_ is not None
        x0 = densify(batch, self.n_items)  # (B, n_items)
        diffusion = self.network_.diffusion
        t, pt = diffusion.sample_timesteps(x0.shape[0], x0.device)
        losses = net(x0, t)  # (B,)
        diffusion.update_history(t, losses)
        return (losses / pt).mean()

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        x = self._input_rows(batch)  # (B, n_items)
        net = self.network_
        out = net.diffusion.p_sample(
            net.denoiser, x, self.config.sampling_steps, self.config.sampling_noise
        )
        return pad_scores(out)  # (B, n_items + 1)
