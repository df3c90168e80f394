"""Random semantic IDs: the control for every learned tokenizer.

Codes of the same shape (``L`` levels of ``K``) carrying no content, as the random-ID ablation
of TIGER (Rajput et al., NeurIPS 2023, Sec. 4.4) and Hua et al. ("How to Index Item IDs for
Recommendation Foundation Models", SIGIR-AP 2023). An item's codes are derived from a hash of
its vector and the seed, so :meth:`RandomTokenizer.encode` is deterministic and a fitted item's
vector gets its fitted codes back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from genrec.tokenizers.base import SemanticIDTokenizer, TokenizerConfig, register_tokenizer


@dataclass(frozen=True)
class RandomConfig(TokenizerConfig):
    """Config of :class:`RandomTokenizer`."""


@register_tokenizer("random")
class RandomTokenizer(SemanticIDTokenizer):
    """Uniformly random codes, a deterministic function of (seed, vector)."""

    config_class = RandomConfig
    config: RandomConfig

    def _fit(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self._encode(x)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {}  # stateless: codes are hashes of the vectors

    def _load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays:
            raise ValueError(f"the random tokenizer has no state, got {sorted(arrays)}")

    def _encode(self, x: np.ndarray) -> np.ndarray:
        cfg = self.config
        out = np.empty((len(x), cfg.n_levels), dtype=np.int64)
        for i, row in enumerate(np.ascontiguousarray(x, dtype=np.float32)):
            digest = hashlib.sha256(f"{cfg.seed}:".encode() + row.tobytes()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            out[i] = rng.integers(0, cfg.codebook_size, size=cfg.n_levels)
        return out
