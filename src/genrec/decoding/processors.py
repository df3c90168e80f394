"""Logits processors for :func:`~genrec.decoding.beam_search.beam_search`.

A processor (Hugging Face ``generation/logits_process.py`` style) rewrites the per-step
log-probabilities before beams are selected: ``processor(tokens, log_probs) -> log_probs``
with ``tokens`` ``(B * beams, t)`` the prefixes decoded so far and ``log_probs``
``(B * beams, V_t)``. Rows are ordered user-major (row ``b * beams + k``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from genrec.decoding.trie import SemanticIDTrie


@runtime_checkable
class LogitsProcessor(Protocol):
    """Anything callable as ``(tokens (N, t), log_probs (N, V)) -> (N, V)``."""

    def __call__(self, tokens: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor: ...


class TrieConstraint:
    """Mask tokens that leave the trie of real items to ``-inf`` (TIGER's constrained
    decoding, Rajput et al. 2023, Sec. 4.4: every decoded tuple is a catalogue item).

    Args:
        trie: the semantic-ID trie.
        item_mask: optional ``(B, n_items + 1)`` bool allow-list per user (seen items
            excluded, candidate sets). Branches whose subtree holds no allowed item are
            masked too, so ``beams >= k`` always yields ``k`` allowed items when that many
            exist (no over-generation and post-filtering needed).
    """

    def __init__(self, trie: SemanticIDTrie, item_mask: torch.Tensor | None = None):
        self.trie = trie
        self.item_mask = item_mask
        self.node_ok = None if item_mask is None else trie.allowed_nodes(item_mask)

    def __call__(self, tokens: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        node = self.trie.walk(tokens)  # (N,) node at depth t, -1 if the prefix is invalid
        child = self.trie.children[t][node.clamp(min=0)]  # (N, V_t)
        ok = (child >= 0) & (node >= 0)[:, None]  # (N, V_t)
        if self.node_ok is not None:
            N, R = tokens.shape[0], self.node_ok[t].shape[0]
            if N % R:
                raise ValueError(f"{N} beam rows are not a multiple of {R} item-mask rows")
            row = torch.arange(N, device=tokens.device) // (N // R)  # (N,) user of each beam
            ok &= self.node_ok[t][row[:, None], child.clamp(min=0)]  # (N, V_t)
        return log_probs.masked_fill(~ok, float("-inf"))


class TemperatureProcessor:
    """Divide log-probabilities by ``temperature`` (a generic example processor)."""

    def __init__(self, temperature: float):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def __call__(self, tokens: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
        return log_probs / self.temperature
