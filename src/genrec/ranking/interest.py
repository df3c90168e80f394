"""Next interest category: which categories will a user's *next* item belong to?

Categories come from the item table (``Dataset.items``):

- ``level=None`` -- every genre is a category (MovieLens: 18-20 flat genres, an item has
  several).
- ``level=k`` (an int) -- Amazon-style category *paths* (the ``categories`` column holds
  lists of paths such as ``["Beauty", "Makeup", "Nails", "Nail Polish"]``): the category of an
  item is the path element at depth ``k`` (depth 0 is the root, e.g. ``"Beauty"``). An item on
  several paths may get several categories.
- ``level="auto"`` (default) -- ``1`` when the table has nested category paths that share one
  root (Amazon), else ``None`` (flat genres).

**Target.** The target of a history is the *set* of categories of the next item. Top-k
accuracy counts a hit when any of the k highest-scored categories is in that set (items
with several genres can be hit by any of them). Users whose next item has no category are
skipped (and counted).

**Probabilities.** ``predict_proba(histories)[u, c]`` estimates ``P(c in categories(next
item of u))``: a multi-label probability per category (rows do not sum to 1 when items have
several categories). The ``"zeroshot"`` method is the exception: a softmax over text
similarities, useful for ranking only.

Methods:

- ``"gru"`` -- a GRU over the history's category embeddings (each step is the mean of the
  item's category embeddings), trained with binary cross-entropy against the next item's
  category set at every position (GRU4Rec-style, Hidasi et al., ICLR 2016, with categories
  instead of item ids).
- ``"last"`` -- the last item's categories (smoothed by the global prior).
- ``"majority"`` -- the share of history items in each category, smoothed by the prior.
- ``"zeroshot"`` -- no training on interactions: the cosine between the centroid of the
  history's item text vectors (all-MiniLM-L6-v2, :mod:`genrec.text`) and each category
  name's vector, turned into a softmax.

The cascade ranker uses ``proba[u, c]`` through :meth:`InterestPredictor.item_affinity`
(``proba @ item_category_matrix.T`` reduced over an item's categories)::

    pred = InterestPredictor("gru").fit(split.train)
    batch = split.test.history.histories().batch(split.test.users)
    proba = pred.predict_proba(batch)                  # (U, C)
    feat = pred.item_affinity(proba, candidate_items)  # (U, K), candidates internal ids
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from genrec import columns as C
from genrec.data.dataset import Dataset, HistoryBatch, UserHistories, _as_list
from genrec.errors import ConfigError, DataValidationError, NotFittedError
from genrec.text.encoders import normalize_rows
from genrec.training.loop import minibatch_epochs

Method = Literal["gru", "last", "majority", "zeroshot"]
METHODS: tuple[str, ...] = ("gru", "last", "majority", "zeroshot")
Histories = HistoryBatch | UserHistories | Sequence[Sequence[int]]


# ---------------------------------------------------------------------- category table
def _is_path_list(value: Any) -> bool:
    """True for a list of paths (nested lists), e.g. ``[["Beauty", "Makeup"], [...]]``."""
    return (
        isinstance(value, (list, tuple, np.ndarray))
        and len(value) > 0
        and all(isinstance(v, (list, tuple, np.ndarray)) for v in value)
    )


def _paths(record: dict[str, Any]) -> list[list[str]]:
    """Category paths of an item: the nested ``categories`` column, else ``genres`` as one
    path (the Amazon loaders flatten a single path into ``genres``)."""
    cats = record.get("categories")
    if _is_path_list(cats):
        return [[str(x) for x in path] for path in cats]
    genres = _as_list(record.get(C.GENRES))
    return [genres] if genres else []


def resolve_level(dataset: Dataset, level: int | str | None = "auto") -> int | None:
    """The category level to use: ``"auto"`` -> 1 for nested single-root paths, else None."""
    if level is None or (isinstance(level, (int, np.integer)) and not isinstance(level, bool)):
        if level is not None and level < 0:
            raise ConfigError(f"level must be >= 0, None or 'auto', got {level}")
        return None if level is None else int(level)
    if level != "auto":
        raise ConfigError(f"level must be an int >= 0, None or 'auto', got {level!r}")
    items = dataset.items
    if items is None or "categories" not in items.columns:
        return None
    sample = items["categories"].head(1000).tolist()
    roots = {str(p[0]) for v in sample if _is_path_list(v) for p in v if len(p)}
    nested = sum(_is_path_list(v) for v in sample)
    return 1 if nested and len(roots) == 1 else None


def item_category_table(
    dataset: Dataset, level: int | str | None = "auto"
) -> tuple[list[str], sp.csr_matrix]:
    """Category names and the binary item x category matrix.

    Args:
        dataset: the catalogue (its item table supplies ``genres`` / ``categories``).
        level: see the module docstring (``None`` flat genres, ``k`` path depth, ``"auto"``).

    Returns:
        ``(categories, matrix)``: sorted category names and a float32 CSR
        ``(n_items + 1, n_categories)`` aligned with internal item ids (row 0 empty).

    Raises:
        DataValidationError: the item table has no genres/categories at that level.
    """
    lvl = resolve_level(dataset, level)
    items = dataset.items
    if items is None or not ({C.GENRES, "categories"} & set(items.columns)):
        raise DataValidationError(
            f"dataset {dataset.name!r} has no item table with 'genres' or 'categories': "
            "interest categories need item categories"
        )
    idx = dataset.item_map.to_internal(items[C.ITEM].to_numpy(), missing="zero")
    per_item: list[list[str]] = []
    for rec in items.to_dict("records"):
        if lvl is None:
            names = _as_list(rec.get(C.GENRES))
            if not names and _is_path_list(rec.get("categories")):
                names = [str(x) for p in rec["categories"] for x in p]
        else:
            names = [p[lvl] for p in _paths(rec) if len(p) > lvl]
        per_item.append(list(dict.fromkeys(n for n in names if n)))
    vocab = sorted({n for names in per_item for n in names})
    if not vocab:
        where = "any genre" if lvl is None else f"a category at depth {lvl}"
        raise DataValidationError(f"no item of {dataset.name!r} has {where}")
    pos = {n: j for j, n in enumerate(vocab)}
    rows, cols = [], []
    for r, names in zip(idx, per_item):
        if r > 0:
            for n in names:
                rows.append(int(r))
                cols.append(pos[n])
    mat = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(dataset.n_items + 1, len(vocab)),
    )
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return vocab, mat


# ---------------------------------------------------------------------- network
class InterestGRU(nn.Module):
    """Category-sequence GRU: ``(B, T, C)`` multi-hot steps -> ``(B, T, C)`` next logits."""

    def __init__(self, n_categories: int, embedding_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.embed = nn.Linear(n_categories, embedding_dim, bias=False)  # mean of cat vectors
        self.gru = nn.GRU(embedding_dim, hidden_dim, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, n_categories)

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        # steps: (B, T, C) rows normalised to sum 1 (0 for padding / uncategorised items)
        x = self.drop(self.embed(steps))  # (B, T, E)
        h, _ = self.gru(x)  # (B, T, H)
        return self.head(self.drop(h))  # (B, T, C)


# ---------------------------------------------------------------------- estimator
class InterestPredictor:
    """Predict a user's next interest category (see the module docstring).

    Args:
        method: ``"gru"`` (trained), ``"last"``, ``"majority"`` or ``"zeroshot"``.
        level: category level (``"auto"``, ``None`` for flat genres, or a path depth).
        embedding_dim, hidden_dim, dropout: GRU sizes.
        max_seq_len: history items the GRU (and the zero-shot centroid) read.
        epochs, batch_size, lr, seed: GRU training.
        prior_weight: smoothing of ``"last"`` / ``"majority"`` towards the global category
            prior (also breaks their ties by popularity).
        temperature: softmax temperature of ``"zeroshot"`` similarities.
        category_template: text embedded for a category name in ``"zeroshot"``.
        item_vectors: ``(n_items + 1, d)`` item text vectors for ``"zeroshot"`` (default:
            :func:`genrec.text.embed_items`, all-MiniLM-L6-v2).
        category_vectors: ``(n_categories, d)`` category vectors (default: embedded names).
        num_threads: torch threads while training/predicting.
    """

    def __init__(
        self,
        method: Method = "gru",
        *,
        level: int | str | None = "auto",
        embedding_dim: int = 32,
        hidden_dim: int = 64,
        dropout: float = 0.1,
        max_seq_len: int = 50,
        epochs: int = 5,
        batch_size: int = 64,
        lr: float = 3e-3,
        seed: int = 0,
        prior_weight: float = 1.0,
        temperature: float = 0.05,
        category_template: str = "{}",
        item_vectors: np.ndarray | None = None,
        category_vectors: np.ndarray | None = None,
        num_threads: int = 1,
    ):
        if method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
        for name, value in (
            ("embedding_dim", embedding_dim),
            ("hidden_dim", hidden_dim),
            ("max_seq_len", max_seq_len),
            ("epochs", epochs),
            ("batch_size", batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if lr <= 0 or temperature <= 0 or prior_weight < 0 or not 0 <= dropout < 1:
            raise ConfigError(
                f"need lr > 0, temperature > 0, prior_weight >= 0, 0 <= dropout < 1; got "
                f"lr={lr}, temperature={temperature}, prior_weight={prior_weight}, "
                f"dropout={dropout}"
            )
        if "{}" not in category_template:
            raise ConfigError(f"category_template needs a '{{}}' slot, got {category_template!r}")
        self.method = method
        self.level = level
        self.embedding_dim = int(embedding_dim)
        self.hidden_dim = int(hidden_dim)
        self.dropout = float(dropout)
        self.max_seq_len = int(max_seq_len)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.seed = int(seed)
        self.prior_weight = float(prior_weight)
        self.temperature = float(temperature)
        self.category_template = category_template
        self.item_vectors = item_vectors
        self.category_vectors = category_vectors
        self.num_threads = int(num_threads)
        # fitted state
        self.categories: list[str] | None = None
        self.item_category_matrix: sp.csr_matrix | None = None
        self.prior_: np.ndarray | None = None
        self.network_: InterestGRU | None = None
        self.level_: int | None = None
        self.train_losses_: list[float] = []

    def __repr__(self) -> str:
        return f"InterestPredictor(method={self.method!r}, level={self.level!r})"

    # ------------------------------------------------------------------ properties
    @property
    def is_fitted(self) -> bool:
        return self.item_category_matrix is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError("InterestPredictor is not fitted: call fit(dataset) first")

    @property
    def n_categories(self) -> int:
        self._check_fitted()
        return len(self.categories)  # type: ignore[arg-type]

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self.item_category_matrix.shape[0] - 1  # type: ignore[union-attr]

    @property
    def item_categories(self) -> list[np.ndarray]:
        """Per internal item id (index 0 = padding, empty), its category indices."""
        m = self._matrix()
        return [
            m.indices[m.indptr[i] : m.indptr[i + 1]].astype(np.int64) for i in range(m.shape[0])
        ]

    @property
    def primary_category(self) -> np.ndarray:
        """``(n_items + 1,)`` the first (lowest-index) category of each item, -1 for none."""
        m = self._matrix()
        out = np.full(m.shape[0], -1, dtype=np.int64)
        has = np.diff(m.indptr) > 0
        out[has] = m.indices[m.indptr[:-1][has]]
        return out

    def _matrix(self) -> sp.csr_matrix:
        self._check_fitted()
        m = self.item_category_matrix.tocsr()  # type: ignore[union-attr]
        m.sort_indices()
        return m

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: Dataset) -> InterestPredictor:
        """Build the category table from ``dataset``'s items and, for ``"gru"``, train on its
        sequences (every position predicts the next item's categories). Returns ``self``."""
        if not isinstance(dataset, Dataset):
            raise DataValidationError(
                f"fit() expects a genrec.Dataset, got {type(dataset).__name__}"
            )
        if dataset.n_interactions == 0:
            raise DataValidationError("cannot fit on an empty dataset")
        self.level_ = resolve_level(dataset, self.level)
        self.categories, self.item_category_matrix = item_category_table(dataset, self.level_)
        counts = np.asarray(
            self.item_category_matrix[dataset.item_idx].sum(axis=0), dtype=np.float64
        ).ravel()
        self.prior_ = (counts + 1.0) / (dataset.n_interactions + 2.0)  # P(c in next item)
        if self.method == "gru":
            self._fit_gru(dataset)
        elif self.method == "zeroshot":
            self._fit_zeroshot(dataset)
        return self

    def _step_table(self) -> torch.Tensor:
        """``(n_items + 1, C)`` each item's categories normalised to sum 1 (GRU input)."""
        dense = np.asarray(self.item_category_matrix.todense(), dtype=np.float32)  # type: ignore[union-attr]
        dense /= np.maximum(dense.sum(1, keepdims=True), 1.0)
        return torch.from_numpy(dense)

    def _fit_gru(self, dataset: Dataset) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        L = self.max_seq_len
        windows: list[np.ndarray] = []
        for seq in dataset.sequences()[1:]:
            # non-overlapping windows of L + 1 items from the end (inputs w[:-1], targets w[1:])
            for end in range(len(seq), 1, -L):
                windows.append(seq[max(0, end - L - 1) : end])
        if not windows:
            raise DataValidationError("the GRU needs users with at least 2 interactions")
        table = self._step_table()  # (N + 1, C)
        multi = torch.from_numpy(np.asarray(self.item_category_matrix.todense(), np.float32))  # type: ignore[union-attr]
        items = np.zeros((len(windows), L + 1), dtype=np.int64)  # right padded
        for r, w in enumerate(windows):
            items[r, : len(w)] = w
        items_t = torch.from_numpy(items)
        self.network_ = InterestGRU(
            self.n_categories, self.embedding_dim, self.hidden_dim, self.dropout
        )
        with torch.no_grad():  # start at the prior log-odds: the first steps learn structure
            p = torch.as_tensor(self.prior_, dtype=torch.float32).clamp(1e-4, 1 - 1e-4)
            self.network_.head.bias.copy_(torch.log(p / (1 - p)))
        opt = torch.optim.AdamW(self.network_.parameters(), lr=self.lr, weight_decay=1e-4)
        loss_fn = nn.BCEWithLogitsLoss(reduction="none")
        net = self.network_

        def step(rows: np.ndarray) -> tuple[torch.Tensor, float] | None:
            b = items_t[torch.from_numpy(rows)]
            inp, tgt = b[:, :-1], b[:, 1:]  # (B, L)
            target = multi[tgt]  # (B, L, C)
            # a position counts when its input is real and the next item has categories
            mask = (inp > 0) & (target.sum(-1) > 0)  # (B, L)
            if not mask.any():
                return None
            logits = net(table[inp])  # (B, L, C)
            return loss_fn(logits, target).sum(-1)[mask].mean(), int(mask.sum())

        before = torch.get_num_threads()
        torch.set_num_threads(max(1, self.num_threads))
        try:
            net.train()
            self.train_losses_ = minibatch_epochs(
                opt,
                n_rows=len(windows),
                batch_size=self.batch_size,
                epochs=self.epochs,
                permutation=rng.permutation,
                step=step,
                clip_params=net.parameters(),
                clip_norm=1.0,
            )
        finally:
            torch.set_num_threads(before)
        self.network_.eval()

    def _fit_zeroshot(self, dataset: Dataset) -> None:
        if self.item_vectors is None:
            from genrec.text.embed import embed_items

            self.item_vectors = embed_items(dataset, progress=False)
        vec = np.asarray(self.item_vectors, dtype=np.float32)
        if vec.shape[0] != dataset.n_items + 1:
            raise DataValidationError(
                f"item_vectors has {vec.shape[0]} rows, expected n_items + 1 = "
                f"{dataset.n_items + 1}"
            )
        if self.category_vectors is None:
            from genrec.text.embed import embed_texts

            texts = [self.category_template.format(c) for c in self.categories]  # type: ignore[union-attr]
            self.category_vectors = embed_texts(texts, progress=False)
        cv = np.asarray(self.category_vectors, dtype=np.float32)
        if cv.shape != (self.n_categories, vec.shape[1]):
            raise DataValidationError(
                f"category_vectors has shape {cv.shape}, expected "
                f"({self.n_categories}, {vec.shape[1]})"
            )
        self.item_vectors = normalize_rows(vec)
        self.category_vectors = normalize_rows(cv)

    # ------------------------------------------------------------------ predicting
    def _sequences(self, histories: Histories) -> list[np.ndarray]:
        if isinstance(histories, HistoryBatch):
            seqs = [histories.sequence(r) for r in range(len(histories))]
        elif isinstance(histories, UserHistories):
            seqs = [
                histories.seq_items[histories.seq_indptr[r] : histories.seq_indptr[r + 1]]
                for r in range(histories.n_rows)
            ]
        elif isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence):
            raise DataValidationError(
                "histories must be a HistoryBatch, UserHistories or a list of internal "
                f"item-id sequences, got {type(histories).__name__}"
            )
        else:
            seqs = [np.asarray(list(h), dtype=np.int64) for h in histories]
        out = []
        for s in seqs:
            s = np.asarray(s, dtype=np.int64)
            if s.size and (s.min() < 0 or s.max() > self.n_items):
                bad = int(s.max() if s.max() > self.n_items else s.min())
                raise DataValidationError(
                    f"history holds internal item id {bad} outside 0..{self.n_items}"
                )
            out.append(s[s > 0])
        return out

    def predict_proba(self, histories: Histories) -> np.ndarray:
        """Next-category probabilities.

        Args:
            histories: a :class:`HistoryBatch` (e.g. ``holdout.history.histories().batch(users)``),
                a :class:`UserHistories` (every row), or a list of chronological *internal*
                item-id sequences. An empty history gets the global prior.

        Returns:
            ``(U, n_categories)`` float32 (see the module docstring for the meaning).
        """
        self._check_fitted()
        seqs = self._sequences(histories)
        prior = self.prior_.astype(np.float32)  # type: ignore[union-attr]
        out = np.tile(prior, (len(seqs), 1))
        nonempty = [r for r, s in enumerate(seqs) if len(s)]
        if not nonempty:
            return out
        m = self._matrix()
        if self.method == "majority":
            for r in nonempty:
                counts = np.asarray(m[seqs[r]].sum(axis=0), dtype=np.float64).ravel()
                a = self.prior_weight
                out[r] = (counts + a * self.prior_) / (len(seqs[r]) + a)
        elif self.method == "last":
            eps = self.prior_weight / (1.0 + self.prior_weight) * 0.1
            last = np.array([seqs[r][-1] for r in nonempty])
            hot = np.asarray(m[last].todense(), dtype=np.float32)
            out[nonempty] = (1 - eps) * hot + eps * prior[None, :]
        elif self.method == "zeroshot":
            iv, cv = self.item_vectors, self.category_vectors
            for r in nonempty:
                recent = iv[seqs[r][-self.max_seq_len :]]  # (T, d)
                centroid = normalize_rows(recent.mean(0, keepdims=True))  # (1, d)
                sims = (centroid @ cv.T)[0] / self.temperature  # (C,)
                sims = np.exp(sims - sims.max())
                out[r] = sims / sims.sum()
        else:
            out[nonempty] = self._predict_gru([seqs[r] for r in nonempty])
        return out.astype(np.float32)

    def _predict_gru(self, seqs: list[np.ndarray], batch_size: int = 512) -> np.ndarray:
        table = self._step_table()
        L = self.max_seq_len
        res = np.zeros((len(seqs), self.n_categories), dtype=np.float32)
        before = torch.get_num_threads()
        torch.set_num_threads(max(1, self.num_threads))
        try:
            with torch.inference_mode():
                for start in range(0, len(seqs), batch_size):
                    chunk = [s[-L:] for s in seqs[start : start + batch_size]]
                    items = np.zeros((len(chunk), L), dtype=np.int64)  # right padded
                    for r, s in enumerate(chunk):
                        items[r, : len(s)] = s
                    logits = self.network_(table[torch.from_numpy(items)])  # type: ignore[misc]
                    last = torch.tensor([len(s) - 1 for s in chunk])  # (B,)
                    out = logits[torch.arange(len(chunk)), last]  # (B, C)
                    res[start : start + len(chunk)] = torch.sigmoid(out).numpy()
        finally:
            torch.set_num_threads(before)
        return res

    def predict(self, histories: Histories, k: int = 1) -> np.ndarray:
        """Indices of the ``k`` most likely next categories, best first: ``(U, k)`` int64."""
        proba = self.predict_proba(histories)
        k = min(int(k), proba.shape[1])
        return _topk(proba, k)

    def item_affinity(
        self,
        proba: np.ndarray,
        items: np.ndarray | None = None,
        reduce: Literal["max", "mean", "sum"] = "max",
    ) -> np.ndarray:
        """Score items by the predicted interest in their categories.

        Args:
            proba: ``(U, C)`` from :meth:`predict_proba`.
            items: ``(U, K)`` internal item ids per user (0 = padding -> 0), or ``None`` for
                every catalogue item.
            reduce: how an item with several categories combines them.

        Returns:
            ``(U, K)`` or ``(U, n_items + 1)`` float32; items without a category score 0.
        """
        m = self._matrix()
        proba = np.asarray(proba, dtype=np.float32)
        if proba.ndim != 2 or proba.shape[1] != self.n_categories:
            raise DataValidationError(
                f"proba must have shape (U, {self.n_categories}), got {proba.shape}"
            )
        if reduce not in ("max", "mean", "sum"):
            raise ConfigError(f"reduce must be 'max', 'mean' or 'sum', got {reduce!r}")
        dense = np.asarray(m.todense(), dtype=np.float32)  # (N + 1, C)
        if items is None:
            if reduce == "max":
                return np.stack([(dense * p[None, :]).max(1) for p in proba]).astype(np.float32)
            full = proba @ dense.T  # (U, N + 1)
            if reduce == "mean":
                full /= np.maximum(dense.sum(1), 1.0)[None, :]
            return full.astype(np.float32)
        items = np.asarray(items, dtype=np.int64)
        if items.ndim != 2 or items.shape[0] != proba.shape[0]:
            raise DataValidationError(
                f"items must have shape (U={proba.shape[0]}, K), got {items.shape}"
            )
        if items.size and (items.min() < 0 or items.max() > self.n_items):
            raise DataValidationError(f"items hold internal ids outside 0..{self.n_items}")
        cats = dense[items]  # (U, K, C)
        weighted = cats * proba[:, None, :]  # (U, K, C)
        if reduce == "max":
            return weighted.max(-1)
        out = weighted.sum(-1)
        if reduce == "mean":
            out /= np.maximum(cats.sum(-1), 1.0)
        return out.astype(np.float32)

    def category_names(self, indices: np.ndarray | Sequence[int]) -> list[str]:
        """Names of category indices."""
        self._check_fitted()
        return [self.categories[int(i)] for i in indices]  # type: ignore[index]


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k column indices per row, ties broken by the lower index (stable)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :k].astype(np.int64)


# ---------------------------------------------------------------------- evaluation
def interest_accuracy(
    predictor: InterestPredictor,
    split: Any,
    stage: Literal["valid", "test"] = "test",
    ks: Sequence[int] = (1, 3),
) -> dict[str, Any]:
    """Top-k accuracy of next-category prediction on a split's holdout.

    A user counts as a hit at k when one of the k most likely categories is a category of a
    held-out target item (with leave-one-out: the one next item). The model sees the
    holdout's history (test: train + validation). Fit ``predictor`` on ``split.train``.

    Returns:
        ``{"method", "stage", "n_users", "n_skipped", "n_categories", "top1", "top3", ...}``
        (one ``top{k}`` per k); users whose targets have no category are skipped.
    """
    holdout = getattr(split, stage, None)
    if stage not in ("valid", "test"):
        raise ConfigError(f"stage must be 'valid' or 'test', got {stage!r}")
    if holdout is None:
        raise DataValidationError(f"the split has no {stage!r} holdout")
    predictor._check_fitted()
    if holdout.targets.shape[1] != predictor.n_items + 1:
        raise DataValidationError(
            f"split has {holdout.targets.shape[1] - 1} items, the predictor "
            f"{predictor.n_items}: fit it on split.train"
        )
    batch = holdout.history.histories().batch(holdout.users)
    proba = predictor.predict_proba(batch)  # (U, C)
    truth = (holdout.targets @ predictor._matrix()) > 0  # (U, C) target categories
    truth = np.asarray(truth.todense(), dtype=bool)
    keep = truth.any(1)
    out: dict[str, Any] = {
        "method": predictor.method,
        "stage": stage,
        "n_users": int(keep.sum()),
        "n_skipped": int((~keep).sum()),
        "n_categories": predictor.n_categories,
    }
    for k in ks:
        top = _topk(proba[keep], min(int(k), proba.shape[1]))  # (U', k)
        hit = np.take_along_axis(truth[keep], top, axis=1).any(1)
        out[f"top{k}"] = float(hit.mean()) if len(hit) else float("nan")
    return out
