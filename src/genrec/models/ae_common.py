"""Shared pieces of the catalogue-row models (Mult-VAE/DAE, RecVAE, CVAE, DiffRec family,
IRGAN): batches of users' interaction rows kept sparse until the training step, the
multinomial log-likelihood, the Gaussian KL and the KL-annealing schedule.

Memory: a training batch travels as the COO triplets of its CSR rows (``rows``, ``cols``,
``vals``) and is only made dense ``(B, n_items)`` inside ``training_step`` on the training
device, so the trainer (which lists an epoch's batches up front) never holds a dense
users x items matrix. Scoring densifies one evaluation batch at a time the same way.
"""

from __future__ import annotations

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


def densify(batch: dict[str, torch.Tensor], n_items: int) -> torch.Tensor:
    """Dense ``(B, n_items)`` rows from a :func:`sparse_rows_batches` batch (on its device)."""
    B = batch["users"].shape[0]
    x = torch.zeros(B, n_items, device=batch["vals"].device)  # (B, n_items)
    x[batch["rows"], batch["cols"]] = batch["vals"]
    return x


def csr_to_dense(matrix: sp.csr_matrix, device: torch.device, binary: bool = True) -> torch.Tensor:
    """Dense ``(B, n_items)`` rows from ``(B, n_items + 1)`` CSR rows (padding column dropped)."""
    matrix = matrix.tocsr()
    B, n = matrix.shape[0], matrix.shape[1] - 1
    rows = np.repeat(np.arange(B), np.diff(matrix.indptr))
    x = torch.zeros(B, n, device=device)  # (B, n_items)
    vals = np.ones(matrix.nnz, np.float32) if binary else matrix.data.astype(np.float32)
    x[torch.from_numpy(rows).to(device), torch.from_numpy(matrix.indices.astype(np.int64) - 1)] = (
        torch.from_numpy(vals).to(device)
    )
    return x


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
