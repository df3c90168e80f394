"""A prefix tree over semantic IDs, stored as dense per-level child tables.

Constrained decoding of semantic IDs (TIGER, Rajput et al., NeurIPS 2023, Sec. 3.2 and the
"invalid IDs" discussion of Sec. 4.4) only lets the decoder emit code tuples that belong to
a real item. The trie is built once from an ``(n_items, L)`` code table:

* depth ``t`` (``0..L``) has ``n_nodes[t]`` nodes, numbered ``0..n_nodes[t] - 1``; depth 0
  is the root alone, depth ``L`` holds one leaf per coded item;
* ``children[t]`` is a dense ``(n_nodes[t], V_t)`` int64 table: the child node at depth
  ``t + 1`` reached from node ``n`` by token ``c``, or ``-1``;
* ``leaf_items`` maps each leaf to its internal item id.

Walking a batch of prefixes ``(N, t)`` is ``t`` gathers, and the allowed-token mask at depth
``t`` is one more gather: no Python loop per beam and no scan over the items per step. With
a per-row *item* allow-list (seen items excluded, candidate sets) the mask also hides every
branch whose subtree holds no allowed item: :meth:`allowed_nodes` counts allowed items per
node once per batch (one scatter per depth over the catalogue), then each step stays a
gather. A per-row *deny*-list (seen items) does not need the catalogue at all:
:meth:`closed_branches` finds the nodes whose whole subtree is denied from the denied pairs
alone (``subtree_items`` holds each node's item count), so excluding seen items costs the
histories' length whatever the catalogue size.

Memory: ``sum_t n_nodes[t] * V_t`` int64 entries, e.g. ~25 MB for Amazon Beauty's 12,101
items x (256, 256, 256, collision) codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class SemanticIDTrie:
    """Dense-table trie over item code tuples (see the module docstring).

    Build it with :meth:`from_codes` or :meth:`from_codebook`.

    Attributes:
        vocab_sizes: ``L`` token counts per level.
        children: ``L`` tensors ``(n_nodes[t], V_t)`` int64, child node id or ``-1``.
        leaf_items: ``(n_leaves,)`` int64 item id of each leaf.
        item_nodes: ``L`` tensors ``(n_items + 1,)`` int64: the node at depth ``t + 1`` on the
            path of each item (``-1`` for items without a code, and for the padding item 0).
        codes: ``(n_items + 1, L)`` int64 code table the trie was built from (row 0 and
            uncoded items are ``-1``); kept so that :meth:`add_items` can rebuild.
        parents / tokens: ``L`` tensors ``(n_nodes[t + 1],)``: each node's parent at depth
            ``t`` and the token that leads to it.
        subtree_items: ``L`` tensors ``(n_nodes[t + 1],)``: the number of items under each
            node.
    """

    def __init__(self, codes: np.ndarray, vocab_sizes: Sequence[int] | None = None):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] < 1:
            raise ValueError(f"codes must be a 2-d (n_items + 1, L) table, got {codes.shape}")
        codes = codes.copy()
        codes[0] = -1  # the padding item is never decodable
        coded = (codes >= 0).all(1)  # (n_items + 1,) items that have a full code tuple
        partial = ~coded & (codes >= 0).any(1)
        if partial.any():
            bad = np.flatnonzero(partial)[:5].tolist()
            raise ValueError(f"items {bad} have a partial code tuple (some levels -1)")
        if vocab_sizes is None:
            body = codes[coded]
            vocab_sizes = (body.max(0) + 1).tolist() if len(body) else [1] * codes.shape[1]
        sizes = [int(v) for v in vocab_sizes]
        if len(sizes) != codes.shape[1]:
            raise ValueError(f"{len(sizes)} vocab sizes for codes with {codes.shape[1]} levels")
        if (codes[coded] >= np.asarray(sizes)).any():
            raise ValueError(f"codes out of range of the vocab sizes {sizes}")
        self.codes = codes
        self.vocab_sizes = sizes
        self._build()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_codes(
        cls, codes: torch.Tensor | np.ndarray, vocab_sizes: Sequence[int] | None = None
    ) -> SemanticIDTrie:
        """Trie over ``codes`` ``(n_items, L)``: row ``i`` is the code tuple of item ``i + 1``
        (internal ids, 0 = padding). Rows of ``-1`` are items left out of the trie."""
        codes = torch.as_tensor(codes).cpu().numpy().astype(np.int64)
        full = np.concatenate([np.full((1, codes.shape[1]), -1, np.int64), codes])
        return cls(full, vocab_sizes)

    @classmethod
    def from_codebook(cls, codebook) -> SemanticIDTrie:  # noqa: ANN001 - ItemCodebook
        """Trie over an :class:`~genrec.tokenizers.ItemCodebook` (row 0 = padding)."""
        return cls(codebook.codes, codebook.codebook_sizes)

    def _build(self) -> None:
        codes, sizes = self.codes, self.vocab_sizes
        L = len(sizes)
        items = np.flatnonzero((codes >= 0).all(1))  # (n,) item ids with codes
        if len(items) == 0:
            raise ValueError("no item has a code tuple: the trie would be empty")
        body = codes[items]  # (n, L)
        node = np.zeros(len(items), dtype=np.int64)  # every item starts at the root
        n_nodes = [1]
        children: list[np.ndarray] = []
        item_nodes: list[np.ndarray] = []
        parents: list[np.ndarray] = []
        tokens: list[np.ndarray] = []
        sizes_below: list[np.ndarray] = []
        for t in range(L):
            key = node * sizes[t] + body[:, t]  # (n,) (parent, token) pairs
            uniq, inv = np.unique(key, return_inverse=True)
            table = np.full((n_nodes[t], sizes[t]), -1, dtype=np.int64)
            table[uniq // sizes[t], uniq % sizes[t]] = np.arange(len(uniq))
            children.append(table)
            parents.append(uniq // sizes[t])  # (n_nodes[t + 1],) parent at depth t
            tokens.append(uniq % sizes[t])  # (n_nodes[t + 1],) token from the parent
            node = inv.reshape(-1)
            n_nodes.append(len(uniq))
            sizes_below.append(np.bincount(node, minlength=len(uniq)).astype(np.int64))
            per_item = np.full(len(codes), -1, dtype=np.int64)
            per_item[items] = node
            item_nodes.append(per_item)
        if n_nodes[L] != len(items):
            _, counts = np.unique(body, axis=0, return_counts=True)
            raise ValueError(
                f"code tuples are not unique ({len(items) - n_nodes[L]} duplicates, largest "
                f"group {int(counts.max())}): add a collision level to the codebook"
            )
        leaf_items = np.zeros(n_nodes[L], dtype=np.int64)
        leaf_items[node] = items
        device = getattr(self, "device", torch.device("cpu"))
        self.n_nodes = n_nodes
        self.children = [torch.from_numpy(c).to(device) for c in children]
        self.item_nodes = [torch.from_numpy(n).to(device) for n in item_nodes]
        self.leaf_items = torch.from_numpy(leaf_items).to(device)
        self.parents = [torch.from_numpy(p).to(device) for p in parents]
        self.tokens = [torch.from_numpy(v).to(device) for v in tokens]
        self.subtree_items = [torch.from_numpy(c).to(device) for c in sizes_below]
        self.device = device

    def add_items(self, item_ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        """Add (or re-code) items: ``codes`` ``(n, L)`` for internal ``item_ids`` ``(n,)``.

        Cold start (TIGER Sec. 4.3): a new item only needs its semantic ID, computed from its
        content by the tokenizer; the trie is rebuilt (O(n_items), once per call). Ids past the
        current table grow it; tuples must stay unique.
        """
        ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        codes = np.asarray(codes, dtype=np.int64).reshape(len(ids), -1)
        if codes.shape[1] != self.n_levels:
            raise ValueError(f"codes have {codes.shape[1]} levels, the trie {self.n_levels}")
        if (ids <= 0).any():
            raise ValueError("item ids must be >= 1 (0 is padding)")
        if (codes < 0).any() or (codes >= np.asarray(self.vocab_sizes)).any():
            raise ValueError(f"codes out of range of the vocab sizes {self.vocab_sizes}")
        old = self.codes
        table = old
        if ids.max() >= len(old):
            table = np.full((int(ids.max()) + 1, self.n_levels), -1, dtype=np.int64)
            table[: len(old)] = old
        else:
            table = old.copy()
        table[ids] = codes
        self.codes = table
        try:
            self._build()
        except ValueError:
            self.codes = old
            self._build()
            raise

    def to(self, device: torch.device | str) -> SemanticIDTrie:
        """Move the tables to ``device`` (in place); returns ``self``."""
        self.device = torch.device(device)
        self.children = [c.to(self.device) for c in self.children]
        self.item_nodes = [n.to(self.device) for n in self.item_nodes]
        self.leaf_items = self.leaf_items.to(self.device)
        self.parents = [p.to(self.device) for p in self.parents]
        self.tokens = [v.to(self.device) for v in self.tokens]
        self.subtree_items = [c.to(self.device) for c in self.subtree_items]
        return self

    # ------------------------------------------------------------------ queries
    @property
    def n_levels(self) -> int:
        return len(self.vocab_sizes)

    @property
    def n_items(self) -> int:
        """Number of decodable items (leaves)."""
        return self.n_nodes[-1]

    def walk(self, prefix: torch.Tensor) -> torch.Tensor:
        """Node ids ``(N,)`` at depth ``t`` of prefixes ``(N, t)``; ``-1`` for invalid ones
        (``t`` gathers)."""
        N, t = prefix.shape
        if t > self.n_levels:
            raise ValueError(f"prefix of length {t} is longer than the {self.n_levels} levels")
        node = torch.zeros(N, dtype=torch.long, device=prefix.device)  # (N,) at the root
        for d in range(t):
            tok = prefix[:, d]
            ok = (node >= 0) & (tok >= 0) & (tok < self.vocab_sizes[d])  # (N,)
            child = self.children[d][node.clamp(min=0), tok.clamp(0, self.vocab_sizes[d] - 1)]
            node = torch.where(ok, child, torch.full_like(child, -1))  # (N,)
        return node

    def allowed_mask(self, prefix: torch.Tensor) -> torch.Tensor:
        """``(N, V_t)`` bool: tokens that extend prefixes ``(N, t)`` towards a real item."""
        t = prefix.shape[1]
        if t >= self.n_levels:
            raise ValueError(f"prefix of length {t}: no level left after {self.n_levels}")
        node = self.walk(prefix)  # (N,)
        child = self.children[t][node.clamp(min=0)]  # (N, V_t)
        return (child >= 0) & (node >= 0)[:, None]

    def allowed_nodes(self, item_mask: torch.Tensor) -> list[torch.Tensor]:
        """Per depth ``t + 1`` (``t = 0..L-1``), ``(R, n_nodes[t + 1])`` bool: whether the
        node's subtree holds an item allowed by ``item_mask`` ``(R, n_items + 1)``.

        One scatter per depth over the catalogue, done once per batch of users (not per
        step)."""
        R, n_cols = item_mask.shape
        out = []
        values = item_mask.to(torch.float32)  # (R, n_items + 1)
        for t in range(self.n_levels):
            nodes = self.item_nodes[t]
            if n_cols != len(nodes):
                raise ValueError(
                    f"item mask has {n_cols} columns, the trie knows {len(nodes)} item ids"
                )
            coded = nodes >= 0
            counts = torch.zeros(R, self.n_nodes[t + 1], device=item_mask.device)
            counts.index_add_(1, nodes[coded], values[:, coded])  # (R, n_nodes[t + 1])
            out.append(counts > 0)
        return out

    def closed_branches(
        self, rows: torch.Tensor, items: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The branches a per-row *deny*-list closes, without a catalogue-sized table.

        ``rows`` / ``items`` ``(P,)`` are the denied (row, item id) pairs, each pair once
        (e.g. the seen items). A node is closed for a row when every item of its subtree is
        denied to it. Per depth ``t = 0..L-1``, returns ``(parent_keys, tokens)`` ``(Q_t,)``:
        the closed nodes at depth ``t + 1``, each as its parent's key ``row * n_nodes[t] +
        parent`` and the token that leads to it. The cost grows with ``P``, not with the
        catalogue (one ``unique`` per depth), so seen-item exclusion stays flat as the
        catalogue grows; :meth:`allowed_nodes` is the allow-list (candidate set) form.
        """
        rows = rows.to(self.device, torch.long)
        items = items.to(self.device, torch.long)
        out = []
        for t in range(self.n_levels):
            known = (items >= 0) & (items < len(self.item_nodes[t]))
            node = self.item_nodes[t][items.clamp(0, len(self.item_nodes[t]) - 1)]  # (P,)
            keep = known & (node >= 0)  # uncoded items and padding are never decodable
            key = rows[keep] * self.n_nodes[t + 1] + node[keep]  # (P',) (row, node) pairs
            uniq, count = torch.unique(key, return_counts=True)
            closed_node = uniq % self.n_nodes[t + 1]
            closed = count >= self.subtree_items[t][closed_node]  # whole subtree denied
            closed_row, closed_node = uniq[closed] // self.n_nodes[t + 1], closed_node[closed]
            parent_key = closed_row * self.n_nodes[t] + self.parents[t][closed_node]
            out.append((parent_key, self.tokens[t][closed_node]))
        return out

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Item ids ``(N,)`` of code tuples ``(N, L)``; 0 where the tuple is not an item."""
        if codes.shape[1] != self.n_levels:
            raise ValueError(f"codes have {codes.shape[1]} levels, the trie {self.n_levels}")
        leaf = self.walk(codes.to(self.device))  # (N,)
        items = self.leaf_items[leaf.clamp(min=0)]
        return torch.where(leaf >= 0, items, torch.zeros_like(items))
