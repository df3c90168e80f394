"""GraphGAN on the user-item bipartite graph (Wang et al., AAAI 2018), link prediction as
recommendation.

Every vertex (user or item) has a generator embedding ``g_v`` and a discriminator embedding
``d_v``. The discriminator says how likely an edge is: ``D(v | v_c) = sigma(d_v . d_{v_c})``
(paper Eq. 5). The generator is the paper's **graph softmax** (Sec. 3.3, Eq. 6-7): on the
BFS tree rooted at the user ``v_c``, a random walk moves from vertex ``v`` to a neighbour
``w`` with probability ``softmax_{w in N_c(v)} (g_w . g_v)``, where ``N_c(v)`` holds the
children of ``v`` and its parent; when the walk chooses to go back to the parent it stops
and the current vertex is the generated sample (Algorithm 1, online generating). The
probability of a sample is the product of the relevance probabilities along its path.

On the bipartite graph the tree from user ``u`` has the user's items at depth 1, the other
users of those items at depth 2 and their items that ``u`` has not consumed at depth 3:

* at ``u`` (the root): move to one of ``u``'s items (no parent, no stop);
* at a depth-1 item ``i``: stop (sample ``i``) or move to another user of ``i``;
* at a depth-2 user ``w``: move to one of ``w``'s items that ``u`` has not consumed (the
  walk must end on an item: deviation, the paper may also sample user vertices; a ``w``
  with no such item ends the walk on ``i``);
* at a depth-3 item: the depth limit, stop (sample it).

Training (the paper's minimax game, Eq. 1):

* discriminator: binary cross-entropy on ``n_samples`` true edges ``(u, i)`` per user
  (label 1) and as many generated samples (label 0), Eq. 3-4;
* generator: REINFORCE on the log-probability of each sampled path with the reward
  ``log(1 + exp(d_s . d_u))`` (the reference implementation's reward), minus the batch mean
  reward as a baseline (variance reduction; not in the paper);
* pre-training: the paper starts both players from pretrained node embeddings; here the
  first ``pretrain_epochs`` epochs fit both with BPR on the edges (one uniform negative per
  edge), as genrec's IRGAN starts from a likelihood fit.

Wide vertices: a vertex with more than ``max_neighbors`` tree children offers a seeded
uniform subset of them at each step (the softmax runs over the subset).

Scoring: ``g_u . g_i`` (``score_with="generator"``, default) or ``d_u . d_i``. Users are
free vertices, as in the paper: a known user is scored from the embedding learned on the
training graph (interactions added later, e.g. the validation item at test time, change
only which items are filtered as seen). An ad-hoc history (``recommend_for_history``) has no
vertex: it is folded in as the mean of its items' embeddings, a new vertex joined to those
items.

Stability: like IRGAN, the adversarial phase may drift after pre-training; the trainer keeps
the best epoch by the validation metric, and ``phase_losses_`` records ``(epoch, phase,
loss)`` of every batch and ``reward_history_`` the mean discriminator reward of every
generator batch (see docs/models.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.data.sequences import minibatches
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.registry import register_model

PRETRAIN, DISCRIMINATOR, GENERATOR = 0, 1, 2


@dataclass(frozen=True)
class GraphGANConfig(NeuralConfig):
    """Config of :class:`GraphGAN`."""

    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    }

    batch_size: int = field(256, "root users per batch")
    weight_decay: float = field(1e-5, "AdamW weight decay (the paper's L2 on embeddings)")
    grad_clip: float = field(5.0, "clip the gradient norm (0 = off)")
    embedding_dim: int = field(64, "embedding size of both players")
    n_samples: int = field(8, "generated samples (walks) and true edges per root user")
    max_neighbors: int = field(32, "tree children offered at one walk step (seeded subset)")
    pretrain_epochs: int = field(10, "epochs of BPR pre-training of both players")
    d_epochs: int = field(1, "discriminator passes per adversarial epoch")
    g_epochs: int = field(1, "generator passes per adversarial epoch")
    score_with: Literal["generator", "discriminator"] = field(
        "generator", "which player's embeddings rank items"
    )

    def validate(self) -> None:
        super().validate()
        self.positive("embedding_dim", "n_samples", "max_neighbors", "d_epochs", "g_epochs")
        self.positive("pretrain_epochs", allow_zero=True)


class Player(nn.Module):
    """User and item vertex embeddings of one player (row 0 of each table is padding)."""

    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.user = nn.Embedding(n_users + 1, dim)
        self.item = nn.Embedding(n_items + 1, dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)


class GraphGANNetwork(nn.Module):
    """Generator and discriminator; the walk sampling lives in :class:`GraphGAN`."""

    def __init__(self, n_users: int, n_items: int, cfg: GraphGANConfig):
        super().__init__()
        self.gen = Player(n_users, n_items, cfg.embedding_dim)
        self.dis = Player(n_users, n_items, cfg.embedding_dim)
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        phase = int(batch["phase"])
        u = batch["users"]  # (N,) one row per sample
        if phase == PRETRAIN:  # BPR on edges for both players
            loss = 0.0
            for p in (self.gen, self.dis):
                eu = p.user(u)
                pos = (eu * p.item(batch["pos"])).sum(-1)
                neg = (eu * p.item(batch["neg"])).sum(-1)
                loss = loss + F.softplus(neg - pos).mean()
            return loss  # type: ignore[return-value]
        if phase == DISCRIMINATOR:
            du = self.dis.user(u)
            pos = (du * self.dis.item(batch["pos"])).sum(-1)  # (N,)
            fake = (du * self.dis.item(batch["fake"])).sum(-1)  # (N,)
            return F.binary_cross_entropy_with_logits(
                pos, torch.ones_like(pos)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        # generator: REINFORCE over the recorded walk steps
        cur, opts, kind, chosen, walk = (
            batch["step_cur"], batch["step_opts"], batch["step_kind"], batch["step_chosen"],
            batch["step_walk"],
        )  # fmt: skip
        # kind 0: current = user, options = items; kind 1: current = item, options = users
        is_user = kind == 0
        e_cur = torch.where(
            is_user[:, None], self.gen.user(cur * is_user), self.gen.item(cur * ~is_user)
        )  # (S, D)
        valid = opts > 0  # (S, W)
        e_opt = torch.where(
            is_user[:, None, None], self.gen.item(opts * is_user[:, None]),
            self.gen.user(opts * ~is_user[:, None]),
        )  # (S, W, D)  # fmt: skip
        logits = torch.einsum("sd,swd->sw", e_cur, e_opt).masked_fill(~valid, float("-inf"))
        logp = torch.log_softmax(logits, -1).gather(1, chosen[:, None]).squeeze(1)  # (S,)
        n_walks = batch["reward"].shape[0]
        path_logp = torch.zeros(n_walks, device=logp.device).index_add(0, walk, logp)
        advantage = batch["reward"] - batch["reward"].mean()
        return -(path_logp * advantage).mean()


class _Graph:
    """CSR adjacency of the training graph: user -> items and item -> users."""

    def __init__(self, matrix: sp.csr_matrix):
        self.u2i = matrix.tocsr()
        self.i2u = matrix.T.tocsr()

    def items(self, u: int) -> np.ndarray:
        return self.u2i.indices[self.u2i.indptr[u] : self.u2i.indptr[u + 1]]

    def users(self, i: int) -> np.ndarray:
        return self.i2u.indices[self.i2u.indptr[i] : self.i2u.indptr[i + 1]]


@register_model("graphgan")
class GraphGAN(NeuralRecommender):
    """GraphGAN (Wang et al. 2018) on the user-item graph; see the module docstring."""

    config_class = GraphGANConfig
    config: GraphGANConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.phase_losses_: list[tuple[int, int, float]] = []
        self.reward_history_: list[tuple[int, float]] = []
        self.graph_: _Graph | None = None

    def _build_network(self) -> GraphGANNetwork:
        assert self.user_map is not None
        return GraphGANNetwork(self.user_map.size, self.n_items, self.config)

    # ------------------------------------------------------------------ batches
    def _fit(self, dataset: Dataset, valid: Any) -> None:
        mat = dataset.matrix(binary=True)
        mat.eliminate_zeros()
        self.graph_ = _Graph(mat)
        super()._fit(dataset, valid)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        assert self.network_ is not None
        cfg = self.config
        epoch = int(self.network_.epoch)
        self.network_.epoch += 1  # checkpointed: a resumed run continues in the right phase
        deg = np.diff(self.graph_.u2i.indptr)  # type: ignore[union-attr]
        users = np.flatnonzero(deg > 0).astype(np.int64)
        plan = (
            [PRETRAIN]
            if epoch < cfg.pretrain_epochs
            else [DISCRIMINATOR] * cfg.d_epochs + [GENERATOR] * cfg.g_epochs
        )
        batches = []
        for phase in plan:
            for idx in minibatches(len(users), cfg.batch_size, generator):
                seed = torch.randint(0, 2**62, (1,), generator=generator)
                batches.append(
                    {
                        "roots": torch.from_numpy(users[idx]),
                        "phase": torch.tensor([phase]),
                        "epoch": torch.tensor([epoch]),
                        "seed": seed,
                    }
                )
        return iter(batches)

    # ------------------------------------------------------------------ sampling
    def _true_edges(self, roots: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        g = self.graph_
        assert g is not None
        n = self.config.n_samples
        users = np.repeat(roots, n)
        pos = np.concatenate([rng.choice(g.items(u), n) for u in roots])
        return users, pos

    def _walks(self, roots: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n_samples`` graph-softmax walks per root with the current generator."""
        g = self.graph_
        assert g is not None and self.network_ is not None
        cfg = self.config
        G_u = self.network_.gen.user.weight.detach().cpu().numpy()
        G_i = self.network_.gen.item.weight.detach().cpu().numpy()
        M = cfg.max_neighbors

        def subset(options: np.ndarray) -> np.ndarray:
            return options if len(options) <= M else rng.choice(options, M, replace=False)

        def pick(e: np.ndarray, table: np.ndarray, options: np.ndarray) -> int:
            z = table[options] @ e
            p = np.exp(z - z.max())
            return int(rng.choice(len(options), p=p / p.sum()))

        steps_cur, steps_opts, steps_kind, steps_chosen, steps_walk = [], [], [], [], []
        samples, walk_users = [], []

        def record(cur: int, kind: int, options: np.ndarray, chosen: int, walk: int) -> None:
            steps_cur.append(cur)
            steps_kind.append(kind)
            steps_opts.append(options)
            steps_chosen.append(chosen)
            steps_walk.append(walk)

        for u in roots:
            own = g.items(u)
            own_set = set(own.tolist())
            for _ in range(cfg.n_samples):
                w_id = len(samples)
                opts = subset(own)  # depth 1: the root's items
                j = pick(G_u[u], G_i, opts)
                record(u, 0, opts, j, w_id)
                i = int(opts[j])
                others = g.users(i)
                others = subset(others[others != u])
                opts = np.concatenate([[u], others])  # parent first: choosing it stops
                j = pick(G_i[i], G_u, opts)
                record(i, 1, opts, j, w_id)
                sample = i
                if j > 0:  # moved on to a depth-2 user
                    w = int(opts[j])
                    cand = np.asarray([x for x in g.items(w) if x not in own_set], np.int64)
                    if len(cand):
                        opts = subset(cand)
                        j = pick(G_u[w], G_i, opts)
                        record(w, 0, opts, j, w_id)
                        sample = int(opts[j])  # depth 3: the depth limit, stop
                samples.append(sample)
                walk_users.append(u)
        W = max(len(o) for o in steps_opts)
        opts_arr = np.zeros((len(steps_opts), W), dtype=np.int64)
        for r, o in enumerate(steps_opts):
            opts_arr[r, : len(o)] = o
        return {
            "users": np.asarray(walk_users, np.int64),
            "fake": np.asarray(samples, np.int64),
            "step_cur": np.asarray(steps_cur, np.int64),
            "step_opts": opts_arr,
            "step_kind": np.asarray(steps_kind, np.int64),
            "step_chosen": np.asarray(steps_chosen, np.int64),
            "step_walk": np.asarray(steps_walk, np.int64),
        }

    # ------------------------------------------------------------------ training
    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self.network_ is not None
        phase = int(batch["phase"])
        device = batch["roots"].device
        roots = batch["roots"].cpu().numpy()
        rng = np.random.default_rng(int(batch["seed"]))
        users, pos = self._true_edges(roots, rng)
        feed: dict[str, Any] = {"phase": batch["phase"]}
        if phase == PRETRAIN:
            neg = rng.integers(1, self.n_items + 1, size=len(users))
            feed.update(users=users, pos=pos, neg=neg)
        else:
            walks = self._walks(roots, rng)
            if phase == DISCRIMINATOR:
                feed.update(users=walks["users"], pos=pos, fake=walks["fake"])
            else:
                with torch.no_grad():
                    d = self.network_.dis
                    du = d.user(torch.from_numpy(walks["users"]).to(device))
                    ds = d.item(torch.from_numpy(walks["fake"]).to(device))
                    reward = F.softplus((du * ds).sum(-1))  # log(1 + exp(d_s . d_u))
                self.reward_history_.append((int(batch["epoch"]), float(reward.mean())))
                feed.update({k: v for k, v in walks.items() if k.startswith("step_")})
                feed["users"] = walks["users"]
                feed["reward"] = reward
        tensors = {
            k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v))).to(device)
            for k, v in feed.items()
        }
        loss = net(tensors)
        self.phase_losses_.append((int(batch["epoch"]), phase, float(loss.detach())))
        return loss

    # ------------------------------------------------------------------ scoring
    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        p = self.network_.gen if self.config.score_with == "generator" else self.network_.dis
        uid = torch.as_tensor(batch.user_ids, dtype=torch.long, device=self.device_)
        E_i = p.item.weight  # (n_items + 1, D)
        users = p.user(uid)  # (B, D); row 0 for ad-hoc histories
        adhoc = (uid == 0).cpu().numpy()
        if adhoc.any():  # fold-in: the mean of the history items' embeddings
            m = batch.matrix[adhoc].tocsr()
            m = sp.diags(1.0 / np.maximum(np.diff(m.indptr), 1)) @ m
            dense = torch.from_numpy(m.toarray().astype(np.float32)).to(self.device_)
            users = users.clone()
            users[torch.from_numpy(adhoc).to(self.device_)] = dense @ E_i
        return users @ E_i.T  # (B, n_items + 1)
