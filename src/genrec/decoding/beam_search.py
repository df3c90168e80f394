"""Model-agnostic, fully batched beam search over fixed-length token tuples.

Generative retrieval decodes an item as a tuple of ``L`` semantic-ID tokens (TIGER, Rajput
et al., NeurIPS 2023, Sec. 3.2: "we use beam search to generate the Semantic ID of the next
item"). Every sequence has the same length, so there is no end-of-sequence bookkeeping: after
``max_len`` steps the ``num_beams`` surviving tuples, sorted by cumulative log-probability,
are the result.

The model is reached only through ``step_fn(tokens, state) -> (log_probs, state)``:
``tokens`` ``(B * beams, t)`` are the prefixes (row ``b * beams + k``), ``log_probs``
``(B * beams, V_t)`` the next-token log-probabilities, ``state`` anything the model needs
(encoder output, KV cache). Step 0 runs on ``B`` rows only (``tokens`` ``(B, 0)``, the
initial ``state`` has one row per input): all beams would still be identical there. After
beams are selected, :func:`reorder_state` (or the ``reorder_fn`` given) gathers the state rows
of the surviving beams, which also expands the ``B`` rows to ``B * beams`` after step 0.
Tensors that are the same for every beam of a user (encoder memory) can be wrapped in
:class:`Static` so they are kept once per user and never reordered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genrec.decoding.processors import LogitsProcessor

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


@dataclass
class Static:
    """A state entry shared by all beams of a user: :func:`reorder_state` leaves it alone."""

    value: Any


@dataclass
class BeamSearchOutput:
    """Result of :func:`beam_search`.

    Attributes:
        tokens: ``(B, beams, max_len)`` int64 decoded tuples, best first.
        scores: ``(B, beams)`` float cumulative log-probabilities (``-inf`` for beams that
            found no valid continuation, e.g. fewer valid tuples than beams).
    """

    tokens: torch.Tensor
    scores: torch.Tensor


# --------------------------------------------------------------------------- pure helpers
def flatten_beams(x: torch.Tensor) -> torch.Tensor:
    """``(B, K, ...)`` -> ``(B * K, ...)``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def unflatten_beams(x: torch.Tensor, num_beams: int) -> torch.Tensor:
    """``(B * K, ...)`` -> ``(B, K, ...)``."""
    return x.reshape(x.shape[0] // num_beams, num_beams, *x.shape[1:])


def expand_to_beams(x: torch.Tensor, num_beams: int) -> torch.Tensor:
    """Repeat each row ``num_beams`` times: ``(B, ...)`` -> ``(B * K, ...)`` (row-major)."""
    return x.repeat_interleave(num_beams, dim=0)


def gather_beams(x: torch.Tensor, beam_idx: torch.Tensor) -> torch.Tensor:
    """Pick beams per row: ``x`` ``(B, K, ...)``, ``beam_idx`` ``(B, K')`` -> ``(B, K', ...)``."""
    idx = beam_idx.reshape(*beam_idx.shape, *([1] * (x.dim() - 2)))
    return torch.gather(x, 1, idx.expand(*beam_idx.shape, *x.shape[2:]))


def flat_beam_indices(beam_idx: torch.Tensor, prev_beams: int | None = None) -> torch.Tensor:
    """Row indices into ``(B * prev_beams, ...)`` of the beams ``beam_idx`` ``(B, K)``
    (``prev_beams`` defaults to ``K``) -> ``(B * K,)``."""
    B, K = beam_idx.shape
    base = torch.arange(B, device=beam_idx.device)[:, None] * (prev_beams or K)  # (B, 1)
    return (base + beam_idx).reshape(-1)


def reorder_state(state: Any, indices: torch.Tensor) -> Any:
    """Gather rows ``indices`` (dim 0) of every tensor in a nested dict/list/tuple state;
    :class:`Static` entries and non-tensors are returned unchanged."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, indices)
    if isinstance(state, Static) or state is None:
        return state
    if isinstance(state, dict):
        return {k: reorder_state(v, indices) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(reorder_state(v, indices) for v in state)
    return state


# --------------------------------------------------------------------------- search
@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    state: Any,
    *,
    batch_size: int,
    num_beams: int,
    max_len: int,
    vocab_sizes: Sequence[int],
    processors: Sequence[LogitsProcessor] = (),
    reorder_fn: Callable[[Any, torch.Tensor], Any] = reorder_state,
    device: torch.device | str | None = None,
) -> BeamSearchOutput:
    """Beam search for ``batch_size`` inputs at once, ``num_beams`` beams each.

    Args:
        step_fn: ``(tokens (B*K, t), state) -> (log_probs (B*K, V_t), state)``; at step 0
            ``tokens`` is ``(B, 0)`` and ``log_probs`` ``(B, V_0)``.
        state: the initial model state, one row per input (``B`` rows; expanded to
            ``B * K`` by ``reorder_fn`` after step 0).
        batch_size: ``B``.
        num_beams: ``K`` beams kept per input, and returned.
        max_len: tokens per decoded tuple (``L``).
        vocab_sizes: ``V_t`` per step (checked against ``step_fn``'s output).
        processors: applied in order to the log-probabilities of each step (e.g.
            :class:`~genrec.decoding.processors.TrieConstraint`).
        reorder_fn: gathers state rows of the surviving beams (default :func:`reorder_state`).
        device: where the tokens live (default: CPU).

    Returns:
        :class:`BeamSearchOutput` with ``(B, K, max_len)`` tokens and ``(B, K)`` scores, best
        first. Beams with ``-inf`` score are dead (fewer valid tuples than beams).
    """
    if num_beams < 1 or max_len < 1 or batch_size < 1:
        raise ValueError(
            f"need num_beams, max_len, batch_size >= 1, got {num_beams}, {max_len}, {batch_size}"
        )
    if len(vocab_sizes) < max_len:
        raise ValueError(f"{len(vocab_sizes)} vocab sizes for max_len {max_len}")
    B, K = batch_size, num_beams
    device = torch.device(device) if device is not None else torch.device("cpu")
    # step 0 runs once per input (all beams would be equal); the state is then expanded
    tokens = torch.zeros(B, 0, dtype=torch.long, device=device)  # (B, 0)
    scores = torch.zeros(B, 1, device=device)  # (B, beams so far)
    for t in range(max_len):
        log_probs, state = step_fn(tokens, state)  # (B*k, V_t), k = 1 at step 0
        V, k = int(vocab_sizes[t]), scores.shape[1]
        if tuple(log_probs.shape) != (B * k, V):
            raise ValueError(
                f"step_fn returned shape {tuple(log_probs.shape)} at step {t}, "
                f"expected {(B * k, V)}"
            )
        log_probs = log_probs.float()
        for proc in processors:
            log_probs = proc(tokens, log_probs)
        cand = scores.reshape(B * k, 1) + log_probs  # (B*k, V)
        top_scores, top_idx = cand.reshape(B, k * V).topk(min(K, k * V), dim=1)  # (B, K)
        if top_scores.shape[1] < K:  # tiny vocab at step 0: pad with dead beams
            pad = K - top_scores.shape[1]
            top_scores = torch.cat([top_scores, top_scores.new_full((B, pad), -torch.inf)], 1)
            top_idx = torch.cat([top_idx, top_idx[:, :1].expand(B, pad)], 1)
        beam_idx, token = top_idx // V, top_idx % V  # (B, K), (B, K)
        flat = flat_beam_indices(beam_idx, k)  # (B*K,) rows of the surviving beams
        tokens = torch.cat([tokens.index_select(0, flat), token.reshape(-1, 1)], dim=1)
        scores = top_scores
        if t + 1 < max_len:
            state = reorder_fn(state, flat)
    return BeamSearchOutput(tokens.reshape(B, K, max_len), scores)
