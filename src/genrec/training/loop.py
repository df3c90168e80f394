"""One small shared minibatch loop for the networks that are not recommenders.

The estimators' networks train through :class:`~genrec.training.trainer.Trainer` (validation,
early stopping, checkpoints, DDP). A few helper networks need none of that: the RQ-VAE of
the semantic-ID tokenizer, the interest-category GRU and the novel-cluster GRU. They all run
the same loop, written once here: shuffle the rows each epoch, cut them into batches, take
one optimizer step per batch (optionally clipping the gradient norm), and record the
weighted mean loss of every epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["minibatch_epochs"]

#: one batch's loss and its weight in the epoch mean (e.g. positions), or ``None`` to skip it
StepResult = tuple[torch.Tensor, float] | None


def minibatch_epochs(
    optimizer: torch.optim.Optimizer,
    *,
    n_rows: int,
    batch_size: int,
    epochs: int,
    permutation: Callable[[int], Any],
    step: Callable[[Any], StepResult],
    clip_params: Iterable[nn.Parameter] | None = None,
    clip_norm: float | None = None,
    after_step: Callable[[], None] | None = None,
    on_epoch_end: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train for ``epochs`` epochs of shuffled minibatches; returns each epoch's mean loss.

    Args:
        optimizer: steps the parameters the losses depend on.
        n_rows: rows in the training data (indexed ``0 .. n_rows - 1``).
        batch_size: rows per batch (the last batch of an epoch may be smaller).
        epochs: passes over the rows.
        permutation: ``permutation(n_rows)`` gives the epoch's row order (a numpy array or
            a tensor); the caller's random generator keeps runs reproducible.
        step: ``step(rows)`` computes the loss of one batch (``rows``: a slice of the
            permutation) and returns ``(loss, weight)``, or ``None`` when the batch has
            nothing to learn from (no step is taken).
        clip_params: the parameters whose gradient norm is clipped to ``clip_norm``.
        clip_norm: the norm to clip to (``None``: no clipping).
        after_step: called after every optimizer step (e.g. codebook bookkeeping).
        on_epoch_end: ``on_epoch_end(epoch, mean_loss)`` after every epoch.

    Returns:
        Per epoch, the loss averaged over the batches with their weights (0 for an epoch
        without a step).
    """
    if batch_size <= 0 or epochs < 0 or n_rows < 0:
        raise ValueError(
            f"batch_size must be positive and epochs, n_rows non-negative; got {batch_size}, "
            f"{epochs}, {n_rows}"
        )
    clip = list(clip_params) if clip_params is not None and clip_norm is not None else None
    losses: list[float] = []
    for epoch in range(epochs):
        order = permutation(n_rows)
        total, weight = 0.0, 0.0
        for start in range(0, n_rows, batch_size):
            result = step(order[start : start + batch_size])
            if result is None:
                continue
            loss, w = result
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(clip, clip_norm)  # type: ignore[arg-type]
            optimizer.step()
            if after_step is not None:
                after_step()
            total += float(loss.detach()) * float(w)
            weight += float(w)
        mean = total / weight if weight > 0 else 0.0
        losses.append(mean)
        if on_epoch_end is not None:
            on_epoch_end(epoch, mean)
    return losses
