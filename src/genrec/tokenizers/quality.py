"""A cheap proxy of how useful a code table is to a next-item generator.

A semantic-ID generator decodes the next item's codes level by level; its first step is
easier when the next item's level-1 code is predictable from the history. Before spending a
TIGER run on a code table, :func:`transition_stats` measures on the *training* sequences how
often consecutive items share their code prefix (the proxy of docs/models.md, LETTER
section), against the rate expected by chance from the code frequencies (so a table that
puts every item under one code does not win by construction), and how many bits a bigram
model of level-1 codes, fitted on the training transitions, needs for the held-out next
item's level-1 code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genrec.data.dataset import UserHistories
from genrec.errors import DataValidationError


def transitions(histories: UserHistories, window: int = 1) -> np.ndarray:
    """Item pairs ``(P, 2)`` (internal ids) ``(x_t, x_{t+w})`` for ``w = 1..window`` within
    every user's chronological history; pairs of the same item are left out. ``window=1``
    gives the consecutive pairs (the proxy's transitions and a co-occurrence signal for the
    tokenizers, :class:`~genrec.tokenizers.RQVAETokenizer`'s ``cooccurrence``)."""
    if window < 1:
        raise DataValidationError(f"window must be >= 1, got {window}")
    items = np.asarray(histories.seq_items, dtype=np.int64)
    indptr = np.asarray(histories.seq_indptr, dtype=np.int64)
    user = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))  # (n,) row of each position
    out = []
    for w in range(1, window + 1):
        if len(items) <= w:
            break
        keep = user[:-w] == user[w:]
        out.append(np.stack([items[:-w], items[w:]], 1)[keep])
    if not out:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(out)
    return pairs[pairs[:, 0] != pairs[:, 1]]


def _prefix_ids(codes: np.ndarray, depth: int) -> np.ndarray:
    """One integer per row for its first ``depth`` codes."""
    _, inv = np.unique(codes[:, :depth], axis=0, return_inverse=True)
    return inv.reshape(-1)


def transition_stats(
    codes: np.ndarray,
    histories: UserHistories,
    *,
    held_out: np.ndarray | None = None,
    depths: tuple[int, ...] = (1, 2),
    smoothing: float = 0.5,
) -> dict[str, Any]:
    """Prefix sharing of consecutive training items, and a bigram proxy of level 1.

    Args:
        codes: ``(n_items + 1, L)`` code table (row 0 padding; rows with a negative code are
            uncoded and their transitions are skipped).
        histories: the *training* histories (e.g. ``leave_one_out(ds).train.histories()``).
        held_out: optional ``(Q, 2)`` pairs (last training item, held-out next item), e.g.
            the validation targets, for the bigram cross-entropy.
        depths: prefix lengths to report.
        smoothing: add-``smoothing`` (Lidstone) count of the bigram model.

    Returns:
        ``n_transitions``; per depth ``d``: ``next_shares_l1..d`` (share of consecutive,
        distinct training items with the same first ``d`` codes), ``chance_l1..d`` (the share
        expected if the next items were shuffled among the transitions: ``sum_c p(c) q(c)``
        with ``p``, ``q`` the prefix frequencies of the first and second items) and
        ``lift_l1..d`` (their ratio); with ``held_out``: ``heldout_l1_bigram_bits`` (mean
        ``-log2 P(c1(next) | c1(last))`` of the bigram model fitted on the training
        transitions), ``heldout_l1_unigram_bits`` (the same without the condition) and
        ``heldout_l1_bits_saved`` (their difference: what the last item's level-1 code
        tells about the next one's).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] < 2:
        raise DataValidationError(f"codes must be (n_items + 1, L), got shape {codes.shape}")
    pairs = transitions(histories)
    coded = (codes >= 0).all(1)
    pairs = pairs[coded[pairs[:, 0]] & coded[pairs[:, 1]]]
    out: dict[str, Any] = {"n_transitions": int(len(pairs))}
    if len(pairs) == 0:
        return out
    for depth in depths:
        if depth > codes.shape[1]:
            continue
        pid = _prefix_ids(codes, depth)  # (n_items + 1,)
        a, b = pid[pairs[:, 0]], pid[pairs[:, 1]]
        share = float((a == b).mean())
        n_ids = int(pid.max()) + 1
        p = np.bincount(a, minlength=n_ids) / len(a)
        q = np.bincount(b, minlength=n_ids) / len(b)
        chance = float((p * q).sum())
        tag = "l1" if depth == 1 else f"l1_{depth}"
        out[f"next_shares_{tag}"] = share
        out[f"chance_{tag}"] = chance
        out[f"lift_{tag}"] = share / chance if chance > 0 else float("nan")
    if held_out is not None and len(held_out):
        held = np.asarray(held_out, dtype=np.int64)
        held = held[coded[held[:, 0]] & coded[held[:, 1]]]
        c1 = codes[:, 0].astype(np.int64)
        k = int(c1[coded].max()) + 1
        counts = np.zeros((k, k))
        np.add.at(counts, (c1[pairs[:, 0]], c1[pairs[:, 1]]), 1.0)
        cond = (counts + smoothing) / (counts.sum(1, keepdims=True) + smoothing * k)  # (k, k)
        marg = counts.sum(0) + smoothing
        marg = marg / marg.sum()  # (k,)
        bigram = -np.log2(cond[c1[held[:, 0]], c1[held[:, 1]]]).mean()
        unigram = -np.log2(marg[c1[held[:, 1]]]).mean()
        out["n_held_out"] = int(len(held))
        out["heldout_l1_bigram_bits"] = float(bigram)
        out["heldout_l1_unigram_bits"] = float(unigram)
        out["heldout_l1_bits_saved"] = float(unigram - bigram)
    return out
