"""LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation
(He et al., SIGIR 2020).

Users and items are nodes of the bipartite interaction graph with the symmetrically
normalised adjacency ``A_hat = D^-1/2 A D^-1/2`` (paper Eq. 7), ``A = [[0, R], [R^T, 0]]``
for the binary user-item matrix ``R``. The only parameters are the layer-0 embeddings
``E^(0)``; each layer propagates without weights or non-linearities,
``E^(k+1) = A_hat E^(k)`` (Eq. 3 in matrix form), and the final embeddings combine the
layers with ``alpha_k = 1 / (K + 1)`` (Eq. 4): ``e = sum_k alpha_k e^(k)``. The score is the
inner product ``y_ui = e_u . e_i`` (Eq. 5). Training minimises BPR (Eq. 15) with one
sampled negative per observed pair and the paper's L2 penalty on the layer-0 embeddings of
the batch, ``l2 / 2 * (|e_u^(0)|^2 + |e_i^(0)|^2 + |e_j^(0)|^2) / B`` as in the reference
code (LightGCN-PyTorch).

Fold-in (``fold_in=True``, the default): a user's layers ``k >= 1`` depend only on the items
of its history and the item embeddings of layer ``k - 1``:
``e_u^(k) = sum_{i in H_u} e_i^(k-1) / sqrt(|H_u| |N_i|)``. Scoring recomputes them from
the history it is given (train + validation at test time, or an ad-hoc history) with the
items' training-graph layers and degrees ``|N_i|``, so the newest interaction counts
without refitting. With the training history this is exactly the propagated user embedding
(tested). Known users keep their layer-0 embedding; ad-hoc histories have none (zero).
History items without training interactions are not in the graph and are skipped (they
would bring an untrained embedding). ``fold_in=False`` scores known users with their
training-graph embeddings (the paper's transductive evaluation); ad-hoc histories are always
folded in. The user's own new edges do not change the item embeddings (approximation).

:meth:`LightGCN.item_embeddings` returns the final item embeddings, e.g. as tokenizer input
for graph-refined semantic IDs (MMGRec, Liu et al. 2024): ``benchmarks/tiger_codebooks.py
--vectors-from lightgcn``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.registry import register_model


@dataclass(frozen=True)
class LightGCNConfig(NeuralConfig):
    """Config of :class:`LightGCN` (defaults: the paper's setting, Sec. 4.1.2)."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 5e-4, "high": 1e-2, "log": True},
        "l2": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        "n_layers": {"type": "int", "low": 1, "high": 4},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
    }

    embedding_dim: int = field(64, "layer-0 user/item embedding size (paper: 64)")
    n_layers: int = field(3, "propagation layers K (paper: 3)")
    l2: float = field(1e-4, "L2 penalty on the batch's layer-0 embeddings (paper lambda 1e-4)")
    batch_size: int = field(2048, "(user, positive, negative) triples per batch (paper: 2048)")
    epochs: int = field(400, "maximum number of training epochs (one per observed pair)")
    init_std: float = field(0.1, "std of the normal initialisation of the embeddings")
    fold_in: bool = field(
        True,
        "recompute known users' layers 1..K from the history being scored (train + "
        "validation at test time); false: their training-graph embeddings (the paper's)",
    )

    def validate(self) -> None:
        super().validate()
        self.positive("embedding_dim", "n_layers", "init_std")
        self.positive("l2", allow_zero=True)


def normalized_adjacency(matrix: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the bipartite graph of a user-item matrix (paper Eq. 7).

    Args:
        matrix: ``(n_users + 1, n_items + 1)`` interactions (any non-zero is an edge; row and
            column 0 are padding and stay isolated when empty).

    Returns:
        ``(N, N)`` float32 CSR with ``N = n_users + 1 + n_items + 1``: users first, then
        items. Nodes without edges have empty rows (their ``D^-1/2`` is taken as 0).
    """
    R = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    R.data[:] = 1.0
    R.eliminate_zeros()
    A = sp.bmat([[None, R], [R.T, None]], format="csr", dtype=np.float32)  # (N, N)
    deg = np.asarray(A.sum(axis=1)).ravel()  # (N,)
    inv_sqrt = np.zeros_like(deg)
    np.divide(1.0, np.sqrt(deg), out=inv_sqrt, where=deg > 0)
    D = sp.diags(inv_sqrt.astype(np.float32))
    return (D @ A @ D).tocsr().astype(np.float32)


def to_torch_sparse(
    matrix: sp.spmatrix, device: torch.device | str = "cpu", *, csr: bool = False
) -> torch.Tensor:
    """A scipy sparse matrix as a coalesced float32 torch COO tensor (or CSR) on ``device``."""
    coo = sp.coo_matrix(matrix)
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    val = torch.from_numpy(coo.data.astype(np.float32))
    out = torch.sparse_coo_tensor(idx, val, coo.shape, check_invariants=True).coalesce()
    if csr:
        with warnings.catch_warnings():  # "sparse CSR support is in beta": used for matmul only
            warnings.simplefilter("ignore", UserWarning)
            out = out.to_sparse_csr()
    return out.to(device)


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A`` (LightGCN's ``A_hat``): the backward product
    ``A^T @ grad`` is ``A @ grad``, so no transpose is built (CSR products are 2-4x faster
    than COO on a CPU, and torch would otherwise transpose ``A`` at every step)."""

    @staticmethod
    def forward(ctx: object, graph: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.graph = graph  # type: ignore[attr-defined]
        return graph @ x

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.graph @ grad  # type: ignore[attr-defined]


def propagate_layer(graph: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One parameter-free LightGCN layer ``A_hat @ x`` (``graph`` symmetric, sparse)."""
    return _SymmetricSpMM.apply(graph, x)


class LightGCNNetwork(nn.Module):
    """The pure LightGCN network: layer-0 embeddings and parameter-free propagation.

    Args:
        n_users: users; embedding row 0 is padding.
        n_items: items; embedding row 0 is padding.
        config: ``embedding_dim``, ``n_layers``, ``l2``, ``init_std``.
    """

    def __init__(self, n_users: int, n_items: int, config: LightGCNConfig):
        super().__init__()
        self.n_layers = config.n_layers
        self.l2 = config.l2
        self.user_emb = nn.Embedding(n_users + 1, config.embedding_dim)
        self.item_emb = nn.Embedding(n_items + 1, config.embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=config.init_std)  # reference code: N(0, 0.1)
        nn.init.normal_(self.item_emb.weight, std=config.init_std)
        with torch.no_grad():
            self.user_emb.weight[0].zero_()
            self.item_emb.weight[0].zero_()

    def layers(self, graph: torch.Tensor) -> list[torch.Tensor]:
        """Embeddings of every node at layers ``0..K``: ``K + 1`` tensors ``(N, D)``, users
        first (``N = n_users + 1 + n_items + 1``); ``graph`` is the symmetric ``A_hat``
        ``(N, N)``, sparse (CSR is fastest)."""
        x = torch.cat([self.user_emb.weight, self.item_emb.weight])  # (N, D)
        out = [x]
        # sparse products in float32 (autocast does not cover sparse matmul)
        with torch.autocast(x.device.type, enabled=False):
            for _ in range(self.n_layers):
                x = propagate_layer(graph, x.float())  # (N, D): E^(k+1) = A_hat E^(k)
                out.append(x)
        return out

    def propagate(self, graph: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user ``(n_users + 1, D)`` and item ``(n_items + 1, D)`` embeddings, the mean
        of the layers (Eq. 4, ``alpha_k = 1 / (K + 1)``)."""
        final = torch.stack(self.layers(graph)).mean(0)  # (N, D)
        return final[: self.user_emb.num_embeddings], final[self.user_emb.num_embeddings :]

    def forward(
        self, graph: torch.Tensor, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        """BPR loss (Eq. 15) plus the L2 penalty of the batch's layer-0 embeddings.

        Args:
            graph: ``A_hat`` ``(N, N)`` sparse.
            users, pos, neg: ``(B,)`` internal ids of users, observed and sampled items.

        Returns:
            The scalar loss.
        """
        all_users, all_items = self.propagate(graph)  # (n_users + 1, D), (n_items + 1, D)
        u = all_users[users]  # (B, D)
        pos_scores = (u * all_items[pos]).sum(-1)  # (B,)
        neg_scores = (u * all_items[neg]).sum(-1)  # (B,)
        bpr = F.softplus(neg_scores - pos_scores).mean()  # -log sigmoid(y_ui - y_uj)
        reg = (
            self.user_emb(users).pow(2).sum()
            + self.item_emb(pos).pow(2).sum()
            + self.item_emb(neg).pow(2).sum()
        ) / (2 * len(users))
        return bpr + self.l2 * reg


@register_model("lightgcn")
class LightGCN(NeuralRecommender):
    """LightGCN (He et al. 2020) trained with BPR; see the module docstring.

    An epoch visits every distinct training (user, item) pair once, shuffled, each with one
    negative drawn uniformly from the items the user has not interacted with (the reference
    code samples users instead; the expected number of steps is the same).
    """

    config_class = LightGCNConfig
    config: LightGCNConfig
    summary = "Graph convolution over the user-item graph, trained with BPR (He et al. 2020)."

    def __init__(self, config: object = None, **overrides: object):
        super().__init__(config, **overrides)
        self._graph: torch.Tensor | None = None  # A_hat on device_, from the training data
        self._layers: list[torch.Tensor] | None = None  # cached layers of the current weights
        self._degree = np.zeros(0, np.float32)  # training users per item, with the graph
        # the observed training pairs, built for training (see _build_pairs) and freed after
        self._pair_users: np.ndarray | None = None
        self._pair_items: np.ndarray | None = None
        self._pair_keys: np.ndarray | None = None

    # ------------------------------------------------------------------ graph
    def _training_matrix(self) -> sp.csr_matrix:
        assert self.train_histories_ is not None
        R = self.train_histories_.matrix.copy()  # (n_users + 1, n_items + 1)
        R.data = np.ones_like(R.data)
        R.eliminate_zeros()
        return R

    def _graph_on_device(self) -> torch.Tensor:
        if self._graph is None or self._graph.device != self.device_:
            R = self._training_matrix()
            self._degree = np.asarray(R.sum(axis=0)).ravel().astype(np.float32)  # (n_items + 1,)
            self._graph = to_torch_sparse(normalized_adjacency(R), self.device_, csr=True)
        return self._graph

    def _cached_layers(self) -> list[torch.Tensor]:
        """Node embeddings of every layer for the current weights (no gradient), cached until
        the next training step or weight load."""
        assert self.network_ is not None
        if self._layers is None:
            with torch.no_grad():
                self._layers = [x.float() for x in self.network_.layers(self._graph_on_device())]
        return self._layers

    def _invalidate(self) -> None:
        self._layers = None

    # ------------------------------------------------------------------ training
    def _build_network(self) -> LightGCNNetwork:
        self._invalidate()
        return LightGCNNetwork(self.user_map.size, self.n_items, self.config)  # type: ignore[union-attr]

    def _build_pairs(self) -> None:
        """The distinct training (user, item) pairs and their sorted keys
        ``u * (n_items + 1) + i`` (for negative rejection), when not built yet."""
        if self._pair_users is not None:
            return
        R = self._training_matrix()
        self._pair_users = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr)).astype(np.int64)
        self._pair_items = R.indices.astype(np.int64)
        self._pair_keys = np.sort(self._pair_users * R.shape[1] + self._pair_items)

    def _fit(self, dataset: Dataset, valid: object) -> None:
        self._graph = None
        self._invalidate()
        self._build_pairs()
        try:
            super()._fit(dataset, valid)
        finally:
            self._invalidate()  # the trainer restores the best weights after the last step
            self._pair_users = self._pair_items = self._pair_keys = None  # training only

    def _sample_negatives(self, users: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """One item per user, uniform over the items it has not interacted with (rejection,
        at most 20 rounds; a user who has seen almost everything may keep a seen item)."""
        assert self._pair_keys is not None
        n_cols = self.n_items + 1
        neg = torch.randint(1, n_cols, (len(users),), generator=generator).numpy()
        for _ in range(20):
            keys = users * n_cols + neg
            pos = np.searchsorted(self._pair_keys, keys)
            seen = self._pair_keys[np.minimum(pos, len(self._pair_keys) - 1)] == keys
            if not seen.any():
                break
            redraw = torch.randint(1, n_cols, (int(seen.sum()),), generator=generator).numpy()
            neg[seen] = redraw
        return neg.astype(np.int64)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        self._build_pairs()  # also outside fit (e.g. one batch for a test)
        users, items = self._pair_users, self._pair_items
        assert users is not None and items is not None
        n = len(users)
        perm = torch.randperm(n, generator=generator).numpy()
        negatives = self._sample_negatives(users[perm], generator)  # (n,)
        for start in range(0, n, self.config.batch_size):
            idx = perm[start : start + self.config.batch_size]
            yield {
                "users": torch.from_numpy(users[idx]),
                "pos": torch.from_numpy(items[idx]),
                "neg": torch.from_numpy(negatives[start : start + len(idx)]),
            }

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self._invalidate()  # the weights change after this step
        return net(self._graph_on_device(), batch["users"], batch["pos"], batch["neg"])

    # ------------------------------------------------------------------ scoring
    def fold_in(self, batch: HistoryBatch) -> torch.Tensor:
        """Final user embeddings ``(B, D)`` from the batch's histories (module docstring):
        layer 0 is the known user's embedding (zero for ad-hoc rows), layers ``1..K`` are
        propagated from the history's items in the training graph."""
        assert self.network_ is not None
        layers = self._cached_layers()
        n_user_rows = self.network_.user_emb.num_embeddings
        self._graph_on_device()
        deg = self._degree  # (n_items + 1,) training users per item
        H = sp.csr_matrix(batch.matrix, dtype=np.float32, copy=True)  # (B, n_items + 1)
        H.data[:] = 1.0
        H = H.multiply(deg[None, :] > 0).tocsr()  # items outside the graph are skipped
        H.eliminate_zeros()
        n_hist = np.asarray(H.sum(axis=1)).ravel()  # (B,)
        rows = np.repeat(np.arange(H.shape[0]), np.diff(H.indptr))
        H.data = (1.0 / np.sqrt(n_hist[rows] * deg[H.indices])).astype(np.float32)
        W = to_torch_sparse(H, self.device_)  # (B, n_items + 1): 1 / sqrt(|H_u| |N_i|)
        uids = torch.from_numpy(np.asarray(batch.user_ids, dtype=np.int64)).to(self.device_)
        user0 = layers[0][uids]  # (B, D); row 0 (ad-hoc) is the zero padding embedding
        user_layers = [user0]
        for k in range(1, len(layers)):
            items_prev = layers[k - 1][n_user_rows:]  # (n_items + 1, D)
            user_layers.append(torch.sparse.mm(W, items_prev))  # (B, D)
        return torch.stack(user_layers).mean(0)  # (B, D)

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        final = torch.stack(self._cached_layers()).mean(0)  # (N, D)
        n_user_rows = self.network_.user_emb.num_embeddings
        users, items = final[:n_user_rows], final[n_user_rows:]
        uids = np.asarray(batch.user_ids, dtype=np.int64)
        fold = np.ones(len(uids), bool) if self.config.fold_in else uids == 0  # (B,)
        u = users[torch.from_numpy(uids).to(self.device_)]  # (B, D) training-graph embeddings
        if fold.all():
            u = self.fold_in(batch)
        elif fold.any():  # ad-hoc rows among known users (fold_in=False)
            mask = torch.from_numpy(fold).to(self.device_)[:, None]
            u = torch.where(mask, self.fold_in(batch), u)
        return u @ items.T  # (B, n_items + 1)

    def item_embeddings(self) -> np.ndarray:
        """Final (layer-combined) item embeddings ``(n_items + 1, D)`` float32, row 0 zero."""
        self._check_fitted()
        layers = self._cached_layers()
        n_user_rows = self.network_.user_emb.num_embeddings  # type: ignore[union-attr]
        out = torch.stack(layers).mean(0)[n_user_rows:].cpu().numpy().copy()
        out[0] = 0.0
        return out

    # ------------------------------------------------------------------ persistence
    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._graph = None
        self._invalidate()
        super()._load_state_dict(state)
