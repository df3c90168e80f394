"""RQ-VAE semantic IDs (TIGER), with optional LETTER regularisers.

Rajput et al., "Recommender Systems with Generative Retrieval" (TIGER, NeurIPS 2023, Sec. 3.1)
quantise an item's content vector with a residual-quantised auto-encoder (RQ-VAE; Zeghidour et
al., SoundStream 2021; Lee et al., CVPR 2022): an MLP encoder maps ``x`` (d) to a latent
``z`` (32); level ``l`` picks the codeword ``e_l`` nearest to the residual ``r_l``
(``r_1 = z``, ``r_{l+1} = r_l - e_l``); the decoder reconstructs ``x`` from
``z_q = sum_l e_l``. The loss (TIGER Eq. 1-2) is

    L = ||x - x_hat||^2 + sum_l ( ||sg[r_l] - e_l||^2 + beta * ||r_l - sg[e_l]||^2 )

with the straight-through estimator ``z + sg(z_q - z)`` for the decoder input and
``beta = 0.25``. Squared errors are summed over features and averaged over the batch.
Codebooks are initialised with k-means on the initial encoder outputs (TIGER) and codewords
unused for ``dead_code_every`` steps are re-seeded with random residuals of the current batch
(the codebook-restart trick of Dhariwal et al., Jukebox 2020), which keeps utilisation high.

LETTER (Wang et al., "Learnable Item Tokenization for Generative Recommendation", CIKM 2024)
adds two regularisers, both off by default:

* collaborative alignment (LETTER Eq. 5): an in-batch InfoNCE between the quantised vector
  ``z_q`` and the item's collaborative vector (e.g. SASRec's item embedding, projected to the
  latent size), so items with similar interactions share code prefixes; weight ``cf_weight``;
* code-assignment diversity: LETTER clusters the codewords and pushes them apart to avoid
  code-assignment bias; we penalise the same bias directly, as the KL divergence between the
  batch's soft code usage (softmax of negative distances) and the uniform distribution, per
  level; weight ``diversity_weight``.

Two more terms for better codes, both off by default:

* CoST (Zhu et al., "CoST: Contrastive Quantization based Semantic Tokenization for
  Generative Recommendation", RecSys 2024): an in-batch InfoNCE that treats an item's input
  ``x`` and its reconstruction ``x_hat`` as the positive pair and the other items of the batch
  as negatives, so the codes must tell neighbouring items apart rather than only reconstruct
  them on average; weight ``cost_weight`` (``recon_weight`` can lower the squared error);
* co-occurrence alignment (after COSETTE-style contrastive collaborative tokenization):
  ``fit(..., cooccurrence=pairs)`` takes item pairs that follow each other in training
  histories (:func:`genrec.tokenizers.quality.transitions`); for a batch of pairs ``(a, b)``
  an InfoNCE with in-batch negatives pulls the quantised vector of ``a`` towards the
  collaborative vector of ``b`` (``cooc_target="collaborative"``, projected like LETTER's)
  or towards the quantised vector of ``b`` (``"quantized"``, symmetric, no outside model).
  Unlike LETTER's term, which aligns an item with its *own* collaborative vector, this one
  aligns it with the items it is consumed next to; the gradient reaches the encoder and the
  codebooks (``z_q + z - sg(z)``). Weight ``cooc_weight``.

Configs: the defaults are a CPU config (AdamW lr 1e-3, batch 256, 30 epochs: about 25 s on
Amazon Beauty's 12k x 384 text vectors on one core; the total loss stops falling there, and
longer training lowers the reconstruction error but raises collisions);
:meth:`RQVAEConfig.paper` gives TIGER's (Adagrad lr 0.4, batch 1024, 20k epochs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.errors import ConfigError, DataValidationError
from genrec.tokenizers.base import SemanticIDTokenizer, TokenizerConfig, register_tokenizer
from genrec.tokenizers.codebook import ItemCodebook
from genrec.tokenizers.rkmeans import kmeans, sq_distances
from genrec.training.loop import minibatch_epochs


@dataclass(frozen=True)
class RQVAEConfig(TokenizerConfig):
    """Config of :class:`RQVAETokenizer` (defaults: a fast CPU config)."""

    hidden_dims: tuple[int, ...] = field((512, 256, 128), "encoder MLP widths (decoder mirrors)")
    latent_dim: int = field(32, "latent / codeword dimension")
    beta: float = field(0.25, "commitment loss weight (TIGER beta)")
    epochs: int = field(30, "passes over the catalogue")
    batch_size: int = field(256, "items per step")
    lr: float = field(1e-3, "learning rate")
    optimizer: Literal["adamw", "adagrad"] = field("adamw", "adamw or adagrad (TIGER)")
    weight_decay: float = field(0.0, "AdamW weight decay")
    kmeans_init: Literal["all", "first_batch", "none"] = field(
        "all", "initialise codebooks with k-means on all items' or the first batch's latents"
    )
    dead_code_every: int = field(100, "re-seed codes unused for this many steps (0 = never)")
    cf_weight: float = field(0.0, "LETTER collaborative alignment weight (needs collaborative=)")
    cf_temperature: float = field(0.1, "InfoNCE temperature of the alignment")
    diversity_weight: float = field(0.0, "LETTER-style code usage diversity weight")
    diversity_temperature: float = field(1.0, "softmax temperature of the soft code usage")
    recon_weight: float = field(1.0, "weight of the squared reconstruction error")
    cost_weight: float = field(
        0.0, "CoST contrastive quantisation weight: InfoNCE of x_hat against x (batch negatives)"
    )
    cost_temperature: float = field(0.1, "InfoNCE temperature of the CoST term")
    cooc_weight: float = field(
        0.0, "co-occurrence alignment weight (needs fit(..., cooccurrence=item pairs))"
    )
    cooc_target: Literal["collaborative", "quantized"] = field(
        "collaborative",
        "align with the collaborative vector of the co-occurring item (needs collaborative=) "
        "or with its quantised vector",
    )
    cooc_temperature: float = field(0.1, "InfoNCE temperature of the co-occurrence alignment")

    def validate(self) -> None:
        super().validate()
        self.positive("latent_dim", "epochs", "batch_size", "lr", "cf_temperature")
        self.positive("diversity_temperature")
        self.positive("beta", "weight_decay", "dead_code_every", "cf_weight", allow_zero=True)
        self.positive("diversity_weight", "recon_weight", "cost_weight", allow_zero=True)
        self.positive("cooc_weight", allow_zero=True)
        self.positive("cost_temperature", "cooc_temperature")
        if self.cooc_target not in ("collaborative", "quantized"):
            raise ConfigError(
                f"RQVAEConfig.cooc_target must be 'collaborative' or 'quantized', "
                f"got {self.cooc_target!r}"
            )
        if not self.hidden_dims or any(h < 1 for h in self.hidden_dims):
            raise ConfigError(f"RQVAEConfig.hidden_dims must be positive, got {self.hidden_dims!r}")

    @classmethod
    def paper(cls, **overrides: Any) -> RQVAEConfig:
        """TIGER's setting: Adagrad lr 0.4, batch 1024, 20k epochs, 3 x 256 codes, latent 32."""
        base = {"optimizer": "adagrad", "lr": 0.4, "batch_size": 1024, "epochs": 20_000}
        base.update(overrides)
        return cls(**base)

    @classmethod
    def fast(cls, **overrides: Any) -> RQVAEConfig:
        """The CPU default (same as ``RQVAEConfig()``)."""
        return cls(**overrides)


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAENetwork(nn.Module):
    """Encoder, residual codebooks and decoder; pure (no data handling).

    Args:
        input_dim: item vector size d.
        hidden_dims: encoder widths; the decoder mirrors them.
        latent_dim: codeword size.
        n_levels: residual levels L.
        codebook_size: codes per level K.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: tuple[int, ...],
        latent_dim: int,
        n_levels: int,
        codebook_size: int,
    ):
        super().__init__()
        self.encoder = _mlp([input_dim, *hidden_dims, latent_dim])
        self.decoder = _mlp([latent_dim, *reversed(hidden_dims), input_dim])
        self.codebooks = nn.Parameter(torch.randn(n_levels, codebook_size, latent_dim) * 0.1)

    def quantize(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Residual quantisation of ``z (B, D)``.

        Returns:
            ``codes (B, L)``, ``quantized (B, D)`` (sum of codewords, differentiable w.r.t.
            the codebooks), ``residuals (L, B, D)``, ``codewords (L, B, D)`` and ``distances
            (L, B, K)``.
        """
        residual = z
        codes, residuals, words, dists = [], [], [], []
        for book in self.codebooks:  # book: (K, D)
            d = sq_distances(residual, book)  # (B, K)
            idx = d.argmin(1)  # (B,)
            e = book[idx]  # (B, D)
            codes.append(idx)
            residuals.append(residual)
            words.append(e)
            dists.append(d)
            residual = residual - e.detach()  # r_{l+1} = r_l - e_l
        words_t = torch.stack(words)  # (L, B, D)
        return {
            "codes": torch.stack(codes, 1),
            "quantized": words_t.sum(0),
            "residuals": torch.stack(residuals),
            "codewords": words_t,
            "distances": torch.stack(dists),
        }

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)  # (B, D)
        out = self.quantize(z)
        z_q = z + (out["quantized"] - z).detach()  # straight-through estimator
        out["z"] = z
        out["x_hat"] = self.decoder(z_q)  # (B, d)
        return out


def info_nce(
    a: torch.Tensor, b: torch.Tensor, temperature: float, b_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """In-batch InfoNCE: row ``i`` of ``a (B, D)`` should match row ``i`` of ``b (B, D)``
    (cosine similarity over ``temperature``), the other rows are its negatives. With
    ``b_ids (B,)``, rows of ``b`` with the positive's id are no negatives (accidental hits:
    the same item drawn twice in a batch)."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature  # (B, B)
    target = torch.arange(len(a), device=a.device)
    if b_ids is not None:
        hit = (b_ids[:, None] == b_ids[None, :]) & (target[:, None] != target[None, :])
        logits = logits.masked_fill(hit, float("-inf"))
    return F.cross_entropy(logits, target)


def _quantized_with_encoder_grad(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """``z_q`` in value, with gradients to the codebooks and (straight-through) the encoder."""
    return out["quantized"] + out["z"] - out["z"].detach()


def rqvae_losses(
    net: RQVAENetwork,
    x: torch.Tensor,
    config: RQVAEConfig,
    cf: torch.Tensor | None = None,
    cf_proj: nn.Module | None = None,
    cooc: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    cooc_proj: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """Loss terms of one batch (TIGER Eq. 1-2; LETTER, CoST and co-occurrence terms when
    weighted).

    Args:
        net: the network.
        x: ``(B, d)`` item vectors.
        config: weights and beta.
        cf: ``(B, d_cf)`` collaborative vectors of the same items (for ``cf_weight > 0``).
        cf_proj: linear map ``d_cf -> latent_dim``.
        cooc: for ``cooc_weight > 0``: ``(x_a (P, d), t_b, ids (P, 2))``, the vectors of
            the first items of ``P`` co-occurring pairs, for the second items their
            collaborative vectors ``(P, d_cf)`` (``cooc_target="collaborative"``) or their
            item vectors ``(P, d)`` (``"quantized"``), and the pairs' item ids (repeated
            items are no negatives of each other).
        cooc_proj: linear map ``d_cf -> latent_dim`` (``"collaborative"`` target).

    Returns:
        ``loss`` (the total) and its terms ``reconstruction``, ``codebook``, ``commitment``,
        ``alignment``, ``diversity``, ``contrastive`` (CoST), ``cooccurrence``, plus the
        forward outputs under ``out``.
    """
    out = net(x)
    recon = ((out["x_hat"] - x) ** 2).sum(-1).mean()
    r, e = out["residuals"], out["codewords"]  # (L, B, D)
    codebook = ((r.detach() - e) ** 2).sum(-1).mean(1).sum()  # sum over levels
    commit = ((r - e.detach()) ** 2).sum(-1).mean(1).sum()
    loss = config.recon_weight * recon + codebook + config.beta * commit
    zero = x.new_zeros(())
    align, div, contrast, co = zero, zero, zero, zero
    if config.cost_weight > 0:  # CoST: (x_hat_i, x_i) positive, (x_hat_i, x_j) negatives
        contrast = info_nce(out["x_hat"], x, config.cost_temperature)
        loss = loss + config.cost_weight * contrast
    if config.cooc_weight > 0:
        if cooc is None:
            raise DataValidationError("cooc_weight > 0 needs co-occurring item pairs")
        x_a, t_b, ids = cooc
        tau = config.cooc_temperature
        q_a = _quantized_with_encoder_grad(net(x_a))  # (P, D)
        if config.cooc_target == "collaborative":
            if cooc_proj is None:
                raise DataValidationError("cooc_target='collaborative' needs collaborative vectors")
            co = info_nce(q_a, cooc_proj(t_b), tau, ids[:, 1])
        else:  # symmetric InfoNCE between the quantised vectors of both items
            q_b = _quantized_with_encoder_grad(net(t_b))  # (P, D)
            co = 0.5 * (info_nce(q_a, q_b, tau, ids[:, 1]) + info_nce(q_b, q_a, tau, ids[:, 0]))
        loss = loss + config.cooc_weight * co
    if config.cf_weight > 0:
        if cf is None or cf_proj is None:
            raise DataValidationError("cf_weight > 0 needs collaborative vectors")
        q = F.normalize(out["quantized"], dim=-1)  # (B, D)
        h = F.normalize(cf_proj(cf), dim=-1)  # (B, D)
        logits = q @ h.T / config.cf_temperature  # (B, B): the diagonal are the positives
        align = F.cross_entropy(logits, torch.arange(len(x), device=x.device))
        loss = loss + config.cf_weight * align
    if config.diversity_weight > 0:
        p = torch.softmax(-out["distances"] / config.diversity_temperature, dim=-1)  # (L, B, K)
        usage = p.mean(1)  # (L, K)
        k = usage.shape[-1]
        div = (usage * torch.log(usage * k + 1e-12)).sum(-1).mean()  # KL(usage || uniform)
        loss = loss + config.diversity_weight * div
    return {
        "loss": loss,
        "reconstruction": recon,
        "codebook": codebook,
        "commitment": commit,
        "alignment": align,
        "diversity": div,
        "contrastive": contrast,
        "cooccurrence": co,
        "out": out,  # type: ignore[dict-item]
    }


@register_tokenizer("rqvae")
class RQVAETokenizer(SemanticIDTokenizer):
    """TIGER's RQ-VAE tokenizer (LETTER, CoST and co-occurrence terms optional).

    ``fit(vectors, item_ids=None, collaborative=None, cooccurrence=None)``: ``collaborative``
    is an ``(n_items + 1, d_cf)`` array (e.g. :func:`genrec.text.collaborative_vectors`),
    needed when ``cf_weight > 0`` or ``cooc_weight > 0`` with ``cooc_target="collaborative"``;
    ``cooccurrence`` is a ``(P, 2)`` array of internal item ids ``1..n_items`` (e.g.
    :func:`genrec.tokenizers.quality.transitions` of the training histories), needed when
    ``cooc_weight > 0``.
    """

    config_class = RQVAEConfig
    config: RQVAEConfig

    def __init__(self, config: RQVAEConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.network_: RQVAENetwork | None = None
        self.history_: list[dict[str, float]] = []
        self.train_seconds_: float = 0.0

    def _fit(
        self, x: np.ndarray, collaborative: Any = None, cooccurrence: Any = None, **kwargs: Any
    ) -> np.ndarray:
        if kwargs:
            raise TypeError(f"unexpected fit() arguments: {', '.join(kwargs)}")
        cfg = self.config
        cf = self._collaborative(collaborative, len(x))
        pairs = self._pairs(cooccurrence, len(x)) if cfg.cooc_weight > 0 else None
        co_cf = cfg.cooc_weight > 0 and cfg.cooc_target == "collaborative"
        start = time.perf_counter()
        with torch.random.fork_rng():  # seed locally, leave the global RNG untouched
            torch.manual_seed(cfg.seed)
            net = RQVAENetwork(
                x.shape[1], tuple(cfg.hidden_dims), cfg.latent_dim, cfg.n_levels, cfg.codebook_size
            )
            cf_proj = nn.Linear(cf.shape[1], cfg.latent_dim) if cf is not None else None
            cooc_proj = nn.Linear(cf.shape[1], cfg.latent_dim) if co_cf and cf is not None else None
        g = torch.Generator().manual_seed(cfg.seed)
        data = torch.from_numpy(x)  # (n, d)
        n = len(data)
        self._init_codebooks(net, data, g)
        params = list(net.parameters())
        params += list(cf_proj.parameters()) if cf_proj is not None and cfg.cf_weight > 0 else []
        params += list(cooc_proj.parameters()) if cooc_proj is not None else []
        if cfg.optimizer == "adagrad":
            opt: torch.optim.Optimizer = torch.optim.Adagrad(params, lr=cfg.lr, foreach=True)
        else:
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
        usage = torch.zeros(cfg.n_levels, cfg.codebook_size)
        steps = 0
        self.history_ = []
        record_every = max(1, cfg.epochs // 100)  # at most ~100 points in the history
        keys = ["loss", "reconstruction", "commitment"]
        keys += ["contrastive"] if cfg.cost_weight > 0 else []
        keys += ["cooccurrence"] if pairs is not None else []
        sums = dict.fromkeys(keys, 0.0)
        last: dict[str, Any] = {}

        def step(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
            cooc = None
            if pairs is not None:  # a batch of co-occurring pairs, drawn with replacement
                pick = pairs[torch.randint(len(pairs), (cfg.batch_size,), generator=g)]
                a, b = pick[:, 0], pick[:, 1]
                cooc = (data[a], cf[b] if co_cf and cf is not None else data[b], pick)
            terms = rqvae_losses(
                net, data[idx], cfg, cf[idx] if cf is not None else None, cf_proj,
                cooc, cooc_proj,
            )  # fmt: skip
            codes = terms["out"]["codes"]  # (B, L)
            for level in range(cfg.n_levels):
                usage[level] += torch.bincount(codes[:, level], minlength=cfg.codebook_size)
            for key in sums:
                sums[key] += float(terms[key].detach()) * len(idx)
            last["residuals"] = terms["out"]["residuals"]
            return terms["loss"], float(len(idx))

        def after_step() -> None:  # dead codes restart on the batch's residuals
            nonlocal steps
            steps += 1
            if cfg.dead_code_every and steps % cfg.dead_code_every == 0:
                self._restart_dead_codes(net, usage, last["residuals"], g)
                usage.zero_()

        def on_epoch_end(epoch: int, _loss: float) -> None:
            if epoch % record_every == 0 or epoch == cfg.epochs - 1:
                self.history_.append({"epoch": epoch, **{k: v / n for k, v in sums.items()}})
            for key in sums:
                sums[key] = 0.0

        net.train()
        minibatch_epochs(
            opt,
            n_rows=n,
            batch_size=cfg.batch_size,
            epochs=cfg.epochs,
            permutation=lambda rows: torch.randperm(rows, generator=g),
            step=step,
            after_step=after_step,
            on_epoch_end=on_epoch_end,
        )
        net.eval()
        self.network_ = net
        self.train_seconds_ = time.perf_counter() - start
        return self._encode(x)  # the final codes, exactly what encode() gives

    @staticmethod
    def _collaborative(collaborative: Any, n: int) -> torch.Tensor | None:
        if collaborative is None:
            return None
        arr = np.asarray(collaborative, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] not in (n, n + 1):
            raise DataValidationError(
                f"collaborative vectors must be ({n} + 1, d_cf) like the item vectors, "
                f"got shape {arr.shape}"
            )
        if arr.shape[0] == n + 1:
            arr = arr[1:]
        if not np.isfinite(arr).all():
            raise DataValidationError("collaborative vectors contain NaN or infinite values")
        return torch.from_numpy(np.ascontiguousarray(arr))

    @staticmethod
    def _pairs(cooccurrence: Any, n: int) -> torch.Tensor:
        """``(P, 2)`` internal ids ``1..n`` -> 0-based row indices of the item vectors."""
        arr = np.asarray(cooccurrence)
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0 or arr.dtype.kind not in "iu":
            raise DataValidationError(
                f"cooccurrence must be a non-empty (P, 2) integer array of item ids, got "
                f"shape {arr.shape} and dtype {arr.dtype}"
            )
        if arr.min() < 1 or arr.max() > n:
            raise DataValidationError(
                f"cooccurrence item ids must be internal ids 1..{n}, got {arr.min()}..{arr.max()}"
            )
        return torch.from_numpy(arr.astype(np.int64) - 1)

    def fit(self, vectors: np.ndarray, item_ids: Any = None, **kwargs: Any) -> ItemCodebook:
        """See :meth:`SemanticIDTokenizer.fit`; also takes ``collaborative=`` (LETTER, and
        the co-occurrence term's collaborative target) and ``cooccurrence=`` (item pairs)."""
        cfg = self.config
        if cfg.cf_weight > 0 and kwargs.get("collaborative") is None:
            raise ConfigError("RQVAEConfig.cf_weight > 0 needs fit(..., collaborative=vectors)")
        if cfg.cooc_weight > 0 and kwargs.get("cooccurrence") is None:
            raise ConfigError("RQVAEConfig.cooc_weight > 0 needs fit(..., cooccurrence=pairs)")
        if (
            cfg.cooc_weight > 0
            and cfg.cooc_target == "collaborative"
            and kwargs.get("collaborative") is None
        ):
            raise ConfigError(
                "RQVAEConfig.cooc_target='collaborative' needs fit(..., collaborative=vectors); "
                "use cooc_target='quantized' without an outside model"
            )
        return super().fit(vectors, item_ids, **kwargs)

    def _init_codebooks(self, net: RQVAENetwork, data: torch.Tensor, g: torch.Generator) -> None:
        """k-means on the initial latents' residuals, level by level (TIGER Sec. 3.1)."""
        cfg = self.config
        if cfg.kmeans_init == "none":
            return
        if cfg.kmeans_init == "first_batch":
            data = data[torch.randperm(len(data), generator=g)[: cfg.batch_size]]
        with torch.no_grad():
            residual = net.encoder(data)  # (m, D)
            for level in range(cfg.n_levels):
                centers, labels = kmeans(
                    residual, cfg.codebook_size, n_iter=25, seed=cfg.seed + level
                )
                net.codebooks[level].copy_(centers)
                residual = residual - centers[labels]

    @staticmethod
    def _restart_dead_codes(
        net: RQVAENetwork, usage: torch.Tensor, residuals: torch.Tensor, g: torch.Generator
    ) -> None:
        """Re-seed codewords unused since the last restart with random batch residuals."""
        with torch.no_grad():
            for level in range(usage.shape[0]):
                dead = (usage[level] == 0).nonzero().squeeze(1)
                if len(dead) == 0:
                    continue
                pool = residuals[level].detach()  # (B, D)
                pick = torch.randint(len(pool), (len(dead),), generator=g)
                net.codebooks[level, dead] = pool[pick]

    def _encode(self, x: np.ndarray) -> np.ndarray:
        assert self.network_ is not None
        with torch.no_grad():
            z = self.network_.encoder(torch.from_numpy(x))
            return self.network_.quantize(z)["codes"].numpy()

    def _fit_meta(self) -> dict[str, Any]:
        last = self.history_[-1] if self.history_ else {}
        return {
            "train_seconds": round(self.train_seconds_, 3),
            "final_loss": last.get("loss"),
            "final_reconstruction": last.get("reconstruction"),
            "loss_history": self.history_,
        }

    def _state_arrays(self) -> dict[str, np.ndarray]:
        assert self.network_ is not None
        return {f"network.{k}": v.detach().numpy() for k, v in self.network_.state_dict().items()}

    def _load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        cfg = self.config
        assert self.dim_ is not None
        net = RQVAENetwork(
            self.dim_, tuple(cfg.hidden_dims), cfg.latent_dim, cfg.n_levels, cfg.codebook_size
        )
        state = {
            k.removeprefix("network."): torch.from_numpy(np.array(v)) for k, v in arrays.items()
        }
        net.load_state_dict(state)  # strict: a wrong or partial state is a RuntimeError
        self.network_ = net.eval()

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """Decode ``(n, >= L)`` codes to item vectors ``(n, d)``."""
        assert self.network_ is not None
        idx = torch.as_tensor(np.asarray(codes)[:, : self.config.n_levels], dtype=torch.long)
        with torch.no_grad():
            books = self.network_.codebooks  # (L, K, D)
            z_q = sum(books[level, idx[:, level]] for level in range(idx.shape[1]))
            return self.network_.decoder(z_q).numpy()
