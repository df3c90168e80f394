"""Hierarchical balanced k-means tree codes (ColaRec / SEATER / DSI).

The catalogue is split recursively: the items of each tree node are divided into ``K``
clusters of (almost) equal size, depth ``L``; an item's code is its path of child indices.
Hierarchical k-means identifiers come from DSI (Tay et al., NeurIPS 2022); the balanced
variant from SEATER (Si et al., "Generative Retrieval with Semantic Tree-Structured Item
Identifiers via Contrastive Learning", 2023) and ColaRec (Wang et al., "Content-Based
Collaborative Generation for Recommender Systems", CIKM 2024), which keep the tree balanced so
that every identifier prefix covers about the same number of items.

Balanced assignment: after k-means++ seeding, each Lloyd step assigns items greedily in order
of their distance to the nearest centre, each to its nearest centre that still has capacity;
capacities are ``floor(m / K)`` or ``ceil(m / K)`` (exactly ``m mod K`` clusters get the
larger one), so sibling cluster sizes differ by at most 1. A node with at most ``K`` items
gives each item its own child; below it codes are 0.

:meth:`HKMeansTokenizer.encode` returns the fitted code of a vector seen in training (balanced
assignment may place an item in a cluster other than its nearest) and routes a new vector down
the tree to the nearest centre at each node.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genrec.config import field
from genrec.errors import ConfigError
from genrec.tokenizers.base import SemanticIDTokenizer, TokenizerConfig, register_tokenizer
from genrec.tokenizers.rkmeans import balanced_kmeans, sq_distances


@dataclass(frozen=True)
class HKMeansConfig(TokenizerConfig):
    """Config of :class:`HKMeansTokenizer` (K = 32, L = 3 covers 32,768 leaves)."""

    codebook_size: int = field(32, "children per tree node K")
    n_iter: int = field(10, "balanced Lloyd iterations per node")
    normalize: bool = field(False, "L2-normalise the vectors before clustering")

    def validate(self) -> None:
        super().validate()
        self.positive("n_iter")
        if self.codebook_size < 2:
            raise ConfigError(
                f"HKMeansConfig.codebook_size must be >= 2, got {self.codebook_size!r}"
            )


@register_tokenizer("hkmeans")
class HKMeansTokenizer(SemanticIDTokenizer):
    """Hierarchical balanced k-means tree: ``L`` levels, ``K`` children per node."""

    config_class = HKMeansConfig
    config: HKMeansConfig

    def __init__(self, config: HKMeansConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.nodes_: dict[tuple[int, ...], torch.Tensor] = {}  # prefix -> (children, d) centres
        self.train_codes_: dict[bytes, np.ndarray] = {}

    def _prepare(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return torch.nn.functional.normalize(t, dim=1) if self.config.normalize else t

    def _fit(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        cfg = self.config
        data = self._prepare(x)  # (n, d)
        n = len(data)
        codes = np.zeros((n, cfg.n_levels), dtype=np.int64)
        self.nodes_ = {}
        stack: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.arange(n))]
        while stack:
            prefix, members = stack.pop()
            level = len(prefix)
            pts = data[members]  # (m, d)
            m = len(members)
            centers: torch.Tensor | None = None
            if m <= cfg.codebook_size:
                # Small node: each item its own child (centre = the item itself); codes below
                # stay 0, which the tree also follows at encode time.
                self.nodes_[prefix] = pts.clone()
                labels = np.arange(m)
            else:
                seed = _node_seed(cfg.seed, prefix)
                centers, labels = balanced_kmeans(
                    pts, cfg.codebook_size, n_iter=cfg.n_iter, seed=seed
                )
                self.nodes_[prefix] = centers
            codes[members, level] = labels
            if level + 1 < cfg.n_levels:
                for child in range(cfg.codebook_size if centers is not None else m):
                    sub = members[labels == child]
                    if len(sub) > 1 or (len(sub) == 1 and centers is not None):
                        stack.append(((*prefix, child), sub))
        self.train_codes_ = {_row_key(row): code for row, code in zip(x, codes)}
        return codes

    def _encode(self, x: np.ndarray) -> np.ndarray:
        data = self._prepare(x)
        out = np.zeros((len(x), self.config.n_levels), dtype=np.int64)
        for i, (row, vec) in enumerate(zip(x, data)):
            known = self.train_codes_.get(_row_key(row))
            if known is not None:
                out[i] = known
                continue
            prefix: tuple[int, ...] = ()
            for level in range(self.config.n_levels):
                centers = self.nodes_.get(prefix)
                if centers is None:  # below a single-item node: codes stay 0
                    break
                out[i, level] = int(sq_distances(vec[None, :], centers).argmin())
                prefix = (*prefix, int(out[i, level]))
        return out


def _node_seed(seed: int, prefix: tuple[int, ...]) -> int:
    digest = hashlib.sha256(f"{seed}:{prefix}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _row_key(row: np.ndarray) -> bytes:
    return np.ascontiguousarray(row, dtype=np.float32).tobytes()
