"""Shared pieces of the catalogue-row models (Mult-VAE/DAE, RecVAE, CVAE, DiffRec family,
IRGAN): batches of users' interaction rows kept sparse until the training step, the
multinomial log-likelihood, the Gaussian KL and the KL-annealing schedule.

Memory: a training batch travels as the COO triplets of its CSR rows (``rows``, ``cols``,
``vals``) and is only made dense ``(B, n_items)`` inside ``training_step`` on the training
device, so the trainer (which lists an epoch's batches up front) never holds a dense
users x items matrix. Scoring densifies one evaluation batch at a time the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from genrec.data.dataset import Dataset
from genrec.data.sequences import minibatches


def sparse_rows_batches(
    matrix: sp.csr_matrix,
    users: np.ndarray,
    batch_size: int,
    generator: torch.Generator,
    *,
    values: bool = True,
) -> Iterator[dict[str, torch.Tensor]]:
    """Shuffled batches of CSR rows as COO tensors.

    Args:
        matrix: ``(n_users + 1, n_items + 1)`` user-item CSR (column 0 is padding, empty).
        users: rows to train on (internal user ids).
        batch_size: users per batch.
        generator: the epoch's generator (the order depends on it only).
        values: keep the stored values; ``False`` binarises them.

    Yields:
        ``{"users": (B,), "rows": (nnz,), "cols": (nnz,), "vals": (nnz,)}`` where ``rows``
        indexes the batch and ``cols`` are 0-based item columns (internal id - 1).
    """
    for idx in minibatches(len(users), batch_size, generator):
        sub = matrix[users[idx]]  # (B, n_items + 1) CSR
        rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
        vals = sub.data.astype(np.float32) if values else np.ones(sub.nnz, np.float32)
        yield {
            "users": torch.from_numpy(users[idx].astype(np.int64)),
            "rows": torch.from_numpy(rows.astype(np.int64)),
            "cols": torch.from_numpy(sub.indices.astype(np.int64) - 1),
            "vals": torch.from_numpy(vals),
        }


class SparseRows:
    """A batch of interaction rows ``(B, n_items)`` kept sparse: the input of an
    auto-encoder's first layer without the dense matrix.

    A user of Amazon Beauty has about 7 of 12,101 items, so the first layer's dense product
    ``(B, n_items) x (n_items, hidden)`` is >99.9% multiplications by zero. :meth:`linear`
    computes the same product from the stored entries only (dense x sparse CSR products),
    and :meth:`l2_normalised` / :meth:`dropout` act on the stored values only, which is
    exact: normalising or dropping a zero leaves it zero.

    Attributes:
        rows: ``(nnz,)`` int64 batch row of each entry, non-decreasing.
        cols: ``(nnz,)`` int64 0-based item column (internal id - 1).
        vals: ``(nnz,)`` float32 values.
        n_rows / n_cols: the dense shape ``(B, n_items)``.
    """

    def __init__(
        self, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n_rows: int, n_cols: int
    ):
        self.rows, self.cols, self.vals = rows, cols, vals
        self.n_rows, self.n_cols = int(n_rows), int(n_cols)

    @classmethod
    def from_batch(cls, batch: dict[str, torch.Tensor], n_items: int) -> SparseRows:
        """The rows of a :func:`sparse_rows_batches` batch."""
        B = batch["users"].shape[0]
        return cls(batch["rows"], batch["cols"], batch["vals"], B, n_items)

    @classmethod
    def from_csr(
        cls, matrix: sp.csr_matrix, device: torch.device, binary: bool = True
    ) -> SparseRows:
        """``(B, n_items + 1)`` CSR rows (padding column dropped), as :func:`csr_to_dense`."""
        matrix = matrix.tocsr()
        B, n = matrix.shape[0], matrix.shape[1] - 1
        rows = np.repeat(np.arange(B, dtype=np.int64), np.diff(matrix.indptr))
        vals = np.ones(matrix.nnz, np.float32) if binary else matrix.data.astype(np.float32)
        return cls(
            torch.from_numpy(rows).to(device),
            torch.from_numpy(matrix.indices.astype(np.int64) - 1).to(device),
            torch.from_numpy(vals).to(device),
            B,
            n,
        )

    def _with(self, vals: torch.Tensor) -> SparseRows:
        return SparseRows(self.rows, self.cols, vals, self.n_rows, self.n_cols)

    def dense(self) -> torch.Tensor:
        """The dense ``(B, n_items)`` matrix."""
        x = torch.zeros(self.n_rows, self.n_cols, device=self.vals.device, dtype=self.vals.dtype)
        x[self.rows, self.cols] = self.vals
        return x

    def l2_normalised(self) -> SparseRows:
        """Rows scaled to unit L2 norm, as :func:`l2_normalise` (``F.normalize``, eps 1e-12)."""
        norm = torch.zeros(self.n_rows, device=self.vals.device, dtype=self.vals.dtype)
        norm = norm.index_add_(0, self.rows, self.vals * self.vals).sqrt().clamp_min(1e-12)
        return self._with(self.vals / norm[self.rows])

    def dropout(self, p: float, training: bool) -> SparseRows:
        """``F.dropout`` of the stored values (the zeros stay zero either way)."""
        return self._with(F.dropout(self.vals, p=p, training=training))

    def linear(self, layer: torch.nn.Linear) -> torch.Tensor:
        """``layer(self.dense())`` ``(B, out)`` without the dense matrix.

        Forward ``(W @ X^T)^T`` and backward ``dW = G^T @ X``, both dense x sparse CSR
        products that read and write ``W`` ``(out, n_items)`` in its own row-major layout
        (torch's ``X @ W^T`` copies the transposed weight, 29 MB for Beauty, in each
        direction). On Beauty-sized rows (7 of 12,101 items) this takes about a fifth of
        the dense product's time; with ~2% of the items per row (MovieLens) about the same.
        """
        with warnings.catch_warnings():  # torch flags its sparse CSR layout as beta
            warnings.simplefilter("ignore", UserWarning)
            idx = torch.stack([self.rows, self.cols])
            shape = (self.n_rows, self.n_cols)
            x = torch.sparse_coo_tensor(idx, self.vals, shape).to_sparse_csr()  # (B, n)
            xt = torch.sparse_coo_tensor(idx.flip(0), self.vals, shape[::-1]).to_sparse_csr()
            out = _SparseInputProduct.apply(layer.weight, x, xt)  # (B, out)
        return out if layer.bias is None else out + layer.bias


def sparse_input_applies(enabled: bool, device: torch.device) -> bool:
    """Whether a model's ``sparse_input`` is used on ``device``: torch's sparse CSR
    products run on the CPU and CUDA; elsewhere (e.g. Apple's MPS) the dense product is."""
    return bool(enabled) and device.type in ("cpu", "cuda")


def encoder_input(
    rows: SparseRows, sparse_input: bool, device: torch.device
) -> torch.Tensor | SparseRows:
    """What an auto-encoder's first layer reads: ``rows`` themselves when ``sparse_input``
    applies on ``device`` (:func:`sparse_input_applies`), else their dense matrix."""
    return rows if sparse_input_applies(sparse_input, device) else rows.dense()


class _SparseInputProduct(torch.autograd.Function):
    """``X @ W^T`` for a sparse CSR ``X`` ``(B, n)`` (its transpose ``xt`` given too) and a
    dense ``W`` ``(out, n)``; the gradient flows to ``W`` only."""

    @staticmethod
    def forward(ctx, weight, x, xt):  # noqa: ANN001, ANN205 - autograd.Function protocol
        ctx.save_for_backward(x)
        return torch.mm(weight, xt).t()  # (out, B) -> (B, out)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: ANN001, ANN205 - autograd.Function protocol
        (x,) = ctx.saved_tensors
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            grad_w = torch.mm(grad_out.t().contiguous(), x)  # (out, B) x (B, n) -> (out, n)
        return grad_w, None, None


def densify(batch: dict[str, torch.Tensor], n_items: int) -> torch.Tensor:
    """Dense ``(B, n_items)`` rows from a :func:`sparse_rows_batches` batch (on its device)."""
    return SparseRows.from_batch(batch, n_items).dense()


def csr_to_dense(matrix: sp.csr_matrix, device: torch.device, binary: bool = True) -> torch.Tensor:
    """Dense ``(B, n_items)`` rows from ``(B, n_items + 1)`` CSR rows (padding column dropped)."""
    return SparseRows.from_csr(matrix, device, binary).dense()


def pad_scores(scores: torch.Tensor) -> torch.Tensor:
    """``(B, n_items)`` -> ``(B, n_items + 1)`` with the padding column 0 first."""
    return F.pad(scores, (1, 0))


def training_users(dataset: Dataset) -> np.ndarray:
    """Internal ids of users with at least one training interaction."""
    mat = dataset.histories().matrix
    return np.flatnonzero(np.diff(mat.indptr) > 0).astype(np.int64)


def binary_matrix(dataset: Dataset) -> sp.csr_matrix:
    """Binary ``(n_users + 1, n_items + 1)`` interaction matrix (repeats count once)."""
    return dataset.matrix(binary=True).tocsr()


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Negative multinomial log-likelihood averaged over users (Liang et al. 2018, Eq. 2).

    ``-mean_u sum_i x_ui log softmax(f(z_u))_i`` (the multinomial coefficient is constant).

    Args:
        logits: ``(B, n_items)`` unnormalised decoder outputs.
        x: ``(B, n_items)`` interaction counts / weights.
    """
    return -(F.log_softmax(logits, dim=-1) * x).sum(-1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per user ``(B,)`` (Kingma & Welling 2014, App. B):
    ``0.5 * sum_d (exp(logvar) + mu^2 - 1 - logvar)``."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(-1)


def anneal_beta(step: int, total_anneal_steps: int, anneal_cap: float) -> float:
    """KL weight after ``step`` updates: linear from 0, capped (Liang et al. 2018, Sec. 2.2.2).

    ``beta = min(anneal_cap, step / total_anneal_steps)``; ``total_anneal_steps = 0`` means
    the cap from the first step.
    """
    if total_anneal_steps <= 0:
        return float(anneal_cap)
    return float(min(anneal_cap, step / total_anneal_steps))


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    return F.normalize(x, p=2.0, dim=-1)
