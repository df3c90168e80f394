"""Residual k-means semantic IDs, and the k-means used by every tokenizer here.

Residual k-means (RQ-KMeans) quantises a vector level by level: level 1 clusters the vectors,
level ``l + 1`` clusters what level ``l`` left over (the residual ``r_{l+1} = r_l - c_l``), as
in residual quantisation (Juang & Gray, ICASSP 1982; Chen et al., Sensors 2010). It is the
training-free alternative to RQ-VAE used by OneRec (Deng et al., 2025) and GRID's RK-Means.

:func:`kmeans` is Lloyd's algorithm with k-means++ seeding (Arthur & Vassilvitskii, SODA
2007) in torch, vectorised over points; empty clusters are re-seeded with the points farthest
from their centroid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genrec.config import field
from genrec.tokenizers.base import SemanticIDTokenizer, TokenizerConfig, register_tokenizer


def sq_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(n, k)`` between rows of ``x (n, d)`` and ``c (k, d)``."""
    d = (x * x).sum(1, keepdim=True) - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]  # (n, k)
    return d.clamp_min_(0.0)


def nearest(x: torch.Tensor, c: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Index of the nearest row of ``c`` for each row of ``x``: ``(n,)`` int64."""
    return torch.cat([sq_distances(x[s : s + chunk], c).argmin(1) for s in range(0, len(x), chunk)])


def kmeans_plusplus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centre is drawn with probability ~ D(x)^2.

    Args:
        x: ``(n, d)`` points.
        k: number of centres (``k <= n``).
        generator: seeded torch generator.

    Returns:
        ``(k, d)`` centres.
    """
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    centers = [x[first]]
    d2 = sq_distances(x, x[first : first + 1]).squeeze(1)  # (n,)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # fewer distinct points than k: draw uniformly
            idx = int(torch.randint(n, (1,), generator=generator))
        else:
            idx = int(torch.multinomial(d2 / total, 1, generator=generator))
        centers.append(x[idx])
        d2 = torch.minimum(d2, sq_distances(x, x[idx : idx + 1]).squeeze(1))
    return torch.stack(centers)  # (k, d)


def kmeans(
    x: np.ndarray | torch.Tensor,
    k: int,
    *,
    n_iter: int = 50,
    seed: int = 0,
    tol: float = 1e-6,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ initialisation.

    Args:
        x: ``(n, d)`` points.
        k: clusters; when ``k >= n`` every point is its own centre (the rest duplicate points).
        n_iter: maximum Lloyd iterations.
        seed: seed of the k-means++ draw.
        tol: stop when the mean squared error improves by less than ``tol`` (relative).
        init: optional ``(k, d)`` initial centres instead of k-means++.

    Returns:
        ``(centers (k, d) float32, labels (n,) int64)``; labels are the nearest final centre.
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    n = x.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    if init is not None:
        centers = init.clone().float()
    elif k >= n:
        extra = torch.randint(n, (k - n,), generator=g)
        centers = torch.cat([x, x[extra]])
        return centers, torch.arange(n)
    else:
        centers = kmeans_plusplus(x, k, g)
    prev = float("inf")
    for _ in range(n_iter):
        dist = sq_distances(x, centers)  # (n, k)
        best, labels = dist.min(1)
        err = float(best.mean())
        counts = torch.bincount(labels, minlength=k).float()  # (k,)
        sums = torch.zeros_like(centers).index_add_(0, labels, x)  # (k, d)
        empty = counts == 0
        centers = torch.where(empty[:, None], centers, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            # Re-seed empty clusters with the worst-fitted points (largest error first).
            far = best.argsort(descending=True)[: int(empty.sum())]
            centers[empty] = x[far]
        if prev - err <= tol * max(prev, 1e-12) and not empty.any():
            break
        prev = err
    return centers, nearest(x, centers)


@dataclass(frozen=True)
class RKMeansConfig(TokenizerConfig):
    """Config of :class:`RKMeansTokenizer`."""

    n_iter: int = field(50, "Lloyd iterations per level")
    normalize: bool = field(False, "L2-normalise the vectors before quantising")

    def validate(self) -> None:
        super().validate()
        self.positive("n_iter")


@register_tokenizer("rkmeans")
class RKMeansTokenizer(SemanticIDTokenizer):
    """Residual k-means: ``L`` levels of ``K`` centroids fitted on successive residuals.

    Example:
        >>> tok = RKMeansTokenizer(n_levels=3, codebook_size=256)
        >>> codebook = tok.fit(vectors)          # (n_items + 1, d) -> ItemCodebook
        >>> tok.encode(new_vectors)              # (n_new, 3) codes
    """

    config_class = RKMeansConfig
    config: RKMeansConfig

    def __init__(self, config: RKMeansConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.centroids_: list[torch.Tensor] = []

    def _prepare(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)
        if self.config.normalize:
            t = torch.nn.functional.normalize(t, dim=1)
        return t

    def _fit(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        residual = self._prepare(x)  # (n, d)
        self.centroids_ = []
        codes = []
        for level in range(self.config.n_levels):
            centers, labels = kmeans(
                residual,
                self.config.codebook_size,
                n_iter=self.config.n_iter,
                seed=self.config.seed + 1000 * level,
            )
            self.centroids_.append(centers)
            codes.append(labels)
            residual = residual - centers[labels]  # (n, d): what this level left over
        return torch.stack(codes, 1).numpy()  # (n, L)

    def _encode(self, x: np.ndarray) -> np.ndarray:
        residual = self._prepare(x)
        codes = []
        for centers in self.centroids_:
            labels = nearest(residual, centers)
            codes.append(labels)
            residual = residual - centers[labels]
        return torch.stack(codes, 1).numpy()

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """Sum of the chosen centroids of each level: ``(n, d)`` from ``(n, >= L)`` codes."""
        codes = torch.as_tensor(np.asarray(codes)[:, : len(self.centroids_)], dtype=torch.long)
        out = torch.zeros(codes.shape[0], self.centroids_[0].shape[1])
        for level, centers in enumerate(self.centroids_):
            out += centers[codes[:, level]]
        return out.numpy()
