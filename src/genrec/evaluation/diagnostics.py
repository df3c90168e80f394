"""Diagnostics of generative models: how well does decoding do what the model knows?

:func:`generation_diagnostics` works on any model with two declared capabilities
(:class:`BeamDecoder`): beam-search decoding with and without the item constraint, and exact
scoring of every item. TIGER (:meth:`genrec.models.tiger.TIGER.diagnostics`) reports it next
to its code-table statistics; the numbers go into ``results.json``
(``models.<name>.diagnostics``).
"""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from genrec.core.recommender import Recommender
from genrec.core.topk import csr_to_bool, topk_with_ties
from genrec.data.dataset import HistoryBatch, UserHistories
from genrec.data.splitting import Holdout, Split
from genrec.errors import ConfigError
from genrec.evaluation.metrics import hits_from_targets, recall_at_k


@runtime_checkable
class BeamDecoder(Protocol):
    """A generative model whose decoding can be compared with exact scoring."""

    def decode(
        self,
        batch: HistoryBatch,
        num_beams: int | None = None,
        item_mask: torch.Tensor | None = None,
        constrained: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """codes ``(B, K, L)``, scores ``(B, K)`` best first, item ids ``(B, K)`` (0 = the
        tuple is no item, or the beam is dead)."""
        ...

    def score_all_items(self, batch: HistoryBatch) -> torch.Tensor:
        """Exact log-likelihood ``(B, n_items + 1)`` of every item."""
        ...


def _users_and_history(
    model: Recommender, split: Split | Holdout | None
) -> tuple[UserHistories, np.ndarray, Any]:
    holdout = split.test if isinstance(split, Split) else split
    if holdout is None:
        hist = model.train_histories_
        assert hist is not None
        return hist, np.flatnonzero(np.diff(hist.seq_indptr) > 0), None
    if not isinstance(holdout, Holdout):
        raise ConfigError(f"diagnostics expect a Split or Holdout, got {type(split).__name__}")
    if holdout.history.item_map != model.item_map:
        raise ConfigError("the model was fitted on a different item catalogue than this split")
    if holdout.history.user_map != model.user_map:
        raise ConfigError("the model was fitted on different users than this split")
    return holdout.history.histories(), holdout.users, holdout.targets


def generation_diagnostics(
    model: Recommender,
    split: Split | Holdout | None = None,
    *,
    sample_users: int = 64,
    seed: int = 0,
    k: int = 10,
    batch_size: int = 16,
) -> dict[str, float | int]:
    """Decoding health of a fitted generative model on a seeded sample of users (with their
    holdout history, seen items excluded, as in evaluation).

    * ``invalid_code_rate``: share of the decoded tuples that map to no item with the
      constraint (0 by construction: a check), and ``invalid_code_rate_unconstrained``:
      the same decoding freely (TIGER Sec. 4.4);
    * ``beam_exact_overlap@k``: mean share of the beam search's top-``k`` that is also in the
      exact top-``k`` (every item scored by :meth:`BeamDecoder.score_all_items`);
      ``beam_recall@k``, ``exact_recall@k`` and their difference
      ``beam_exact_recall_gap@k`` on the holdout targets (not for ``split=None``);
    * ``diagnostic_users`` and ``diagnostics_seconds``.

    Args:
        model: a fitted model with the :class:`BeamDecoder` capabilities.
        split: a :class:`Split` (its test holdout), a :class:`Holdout`, or ``None``
            (training users with their training history; no recall then).
        sample_users: users to sample; exact scoring costs ``n_items`` decoder sequences
            per user. 0 returns ``{}``.
        seed: seed of the user sample.
        k: cut-off of the overlap and recall.
        batch_size: users decoded and exactly scored at once.

    Raises:
        ConfigError: the model cannot decode and score exactly, or the split does not fit.
    """
    if not isinstance(model, BeamDecoder):
        raise ConfigError(
            f"{type(model).__name__} has no beam decoding with exact scoring "
            "(decode() and score_all_items())"
        )
    start = time.perf_counter()
    hist, users, targets = _users_and_history(model, split)
    n = min(int(sample_users), len(users))
    if n == 0:
        return {}
    rows = np.sort(np.random.default_rng(seed).choice(len(users), n, replace=False))
    n_cols = model.n_items + 1
    bad = alive_n = bad_free = alive_free = 0
    kk = min(int(k), model.n_items)
    overlap: list[float] = []
    beam_top, exact_top = [], []
    for s in range(0, n, batch_size):
        r = rows[s : s + batch_size]
        batch = hist.batch(users[r])
        allowed = ~csr_to_bool(batch.matrix, n_cols)  # (B, n_items + 1) seen excluded
        allowed[:, 0] = False
        _, scores, items = model.decode(batch, item_mask=allowed)
        kk = min(kk, items.shape[1])  # at most the beams
        alive = torch.isfinite(scores)
        bad += int(((items == 0) & alive).sum())
        alive_n += int(alive.sum())
        _, scores_f, items_f = model.decode(batch, constrained=False)
        alive_f = torch.isfinite(scores_f)
        bad_free += int(((items_f == 0) & alive_f).sum())
        alive_free += int(alive_f.sum())
        exact = model.score_all_items(batch).masked_fill(~allowed, float("-inf"))
        ex_idx, ex_val = topk_with_ties(exact, kk)
        ex_idx[torch.isneginf(ex_val)] = 0
        beam = items[:, :kk].clone()
        beam[~alive[:, :kk]] = 0
        for b_row, e_row in zip(beam.tolist(), ex_idx.tolist()):
            e = {i for i in e_row if i > 0}
            overlap.append(len({i for i in b_row if i > 0} & e) / max(len(e), 1))
        beam_top.append(beam.numpy())
        exact_top.append(ex_idx.numpy())
    out: dict[str, float | int] = {
        "invalid_code_rate": bad / max(alive_n, 1),
        "invalid_code_rate_unconstrained": bad_free / max(alive_free, 1),
        f"beam_exact_overlap@{k}": float(np.mean(overlap)),
    }
    if targets is not None:
        tg = targets[rows]
        n_t = np.diff(tg.indptr)
        rec = {}
        for name, ranked in (("beam", beam_top), ("exact", exact_top)):
            hits = hits_from_targets(np.concatenate(ranked), tg.indptr, tg.indices)
            rec[name] = float(recall_at_k(hits, np.maximum(n_t, 1), kk).mean())
            out[f"{name}_recall@{k}"] = rec[name]
        out[f"beam_exact_recall_gap@{k}"] = rec["exact"] - rec["beam"]
    out["diagnostic_users"] = int(n)
    out["diagnostics_seconds"] = round(time.perf_counter() - start, 3)
    return out
