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

    Per-row restrictions come in one of two forms, with the same meaning: a branch whose
    subtree holds no allowed item is masked too, so ``beams >= k`` always yields ``k``
    allowed items when that many exist (no over-generation and post-filtering needed).

    Args:
        trie: the semantic-ID trie.
        item_mask: optional ``(B, n_items + 1)`` bool allow-list per user (candidate sets);
            costs ``B x n_items`` once per batch.
        denied: optional ``(rows, items)`` ``(P,)`` pairs denied to a row, each pair once
            (seen items); costs ``P``, whatever the catalogue size
            (:meth:`SemanticIDTrie.closed_branches`). Needs ``n_rows``.
        n_rows: the number of users ``B`` when ``denied`` is given.
    """

    def __init__(
        self,
        trie: SemanticIDTrie,
        item_mask: torch.Tensor | None = None,
        denied: tuple[torch.Tensor, torch.Tensor] | None = None,
        n_rows: int | None = None,
    ):
        if item_mask is not None and denied is not None:
            raise ValueError("give item_mask or denied, not both")
        if denied is not None and n_rows is None:
            raise ValueError("denied pairs need n_rows, the number of users")
        self.trie = trie
        self.item_mask = item_mask
        self.node_ok = None if item_mask is None else trie.allowed_nodes(item_mask)
        self.closed = None if denied is None else trie.closed_branches(*denied)
        self.n_rows = len(item_mask) if item_mask is not None else n_rows

    def __call__(self, tokens: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        node = self.trie.walk(tokens)  # (N,) node at depth t, -1 if the prefix is invalid
        child = self.trie.children[t][node.clamp(min=0)]  # (N, V_t)
        ok = (child >= 0) & (node >= 0)[:, None]  # (N, V_t)
        if self.n_rows is None:
            return log_probs.masked_fill(~ok, float("-inf"))
        N, R = tokens.shape[0], self.n_rows
        if N % R:
            raise ValueError(f"{N} beam rows are not a multiple of {R} item-mask rows")
        row = torch.arange(N, device=tokens.device) // (N // R)  # (N,) user of each beam
        if self.node_ok is not None:
            ok &= self.node_ok[t][row[:, None], child.clamp(min=0)]  # (N, V_t)
        if self.closed is not None and len(self.closed[t][0]):
            parent_key, token = self.closed[t]  # (Q,) closed children of (row, node) keys
            key = row * self.trie.n_nodes[t] + node.clamp(min=0)  # (N,)
            uniq, inv = torch.unique(key, return_inverse=True)  # beams of a row may share
            pos = torch.searchsorted(uniq, parent_key).clamp(max=len(uniq) - 1)  # (Q,)
            hit = uniq[pos] == parent_key  # the closed child's parent is on a beam
            shut = torch.zeros(len(uniq), ok.shape[1], dtype=torch.bool, device=ok.device)
            shut[pos[hit], token[hit]] = True  # (U, V_t)
            ok &= ~shut[inv]  # (N, V_t)
        return log_probs.masked_fill(~ok, float("-inf"))


class TemperatureProcessor:
    """Divide log-probabilities by ``temperature`` (a generic example processor)."""

    def __init__(self, temperature: float):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def __call__(self, tokens: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
        return log_probs / self.temperature
