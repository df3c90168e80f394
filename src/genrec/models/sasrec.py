"""SASRec: Self-Attentive Sequential Recommendation (Kang & McAuley, ICDM 2018).

A causal transformer over the user's item sequence; the hidden state at position ``t``
predicts item ``t + 1``. Item embeddings are shared between input and output (paper Sec.
III-E, "Shared Item Embedding"): the score of item ``i`` after position ``t`` is
``r_{i,t} = F_t . M_i`` (Eq. 7). Positions are learned embeddings (Eq. 2); inputs are
scaled by ``sqrt(d)`` as in the reference code.

Losses (``loss``):

* ``"bce"``: binary cross-entropy with ``n_negatives`` uniformly sampled negatives per
  position (Eq. 8 uses one: ``loss="bce", n_negatives=1`` is the original SASRec);
* ``"gbce"``: gSASRec's calibrated BCE (Petrov & Macdonald, RecSys 2023), use e.g.
  ``n_negatives=256, gbce_t=0.75``;
* ``"sampled_softmax"``: softmax over the positive and sampled negatives; ``negatives``
  chooses them: ``n_negatives`` uniform ones per position (``"uniform"``), the other target
  items of the batch (``"in_batch"``, Yi et al. RecSys 2019), or both (``"mixed"``, Yang et
  al. WWW 2020). In-batch negatives are drawn in proportion to item popularity, so their
  logits get the logQ correction ``s - log(N p_i)`` (``N`` trained positions in the batch,
  ``p_i`` the item's share of training targets; ``logq_correction``), and uniform ones
  ``s - log(K / |I|)``. This is the path for large catalogues (above about 50k items),
  where the full softmax of ``"ce"`` costs ``O(N |I| d)`` per batch;
* ``"ce"`` (default): full softmax cross-entropy over the catalogue, "SASRec+" of
  Klenitskiy & Vasilev (RecSys 2023, "Turning Dross Into Gold Loss"), which made SASRec beat
  BERT4Rec; computed in chunks of positions to bound memory.

Negatives are drawn uniformly from all items, on the training device, from a seed stored in
each batch (drawn from the epoch's generator), so a resumed run samples exactly the same
negatives. A sampled negative may equal the positive (no rejection sampling, for speed);
such accidental hits are masked out of every sampled loss. The sigmoid losses (``bce``,
``gbce``) add a learnable scalar ``logit_bias`` to every score, started at the prior log-odds
``log(beta / K)`` of ``K`` negatives: without it gSASRec (``K = 256``) collapsed to a
constant prediction (see :class:`SASRecNetwork`).

Histories longer than ``max_seq_len`` are truncated from the LEFT: only the most recent
``max_seq_len`` items are fed to the network, in training (``max_seq_len + 1`` items give
``max_seq_len`` input/target pairs) and at inference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch, UserHistories
from genrec.data.sequences import (
    causal_batches,
    last_items,
    length_order,
    training_rows,
    trim_left_padding,
)
from genrec.errors import ConfigError
from genrec.models.neural import NeuralConfig, NeuralRecommender
from genrec.nn.losses import full_softmax_ce, gbce, gbce_beta, sampled_softmax
from genrec.nn.transformer import PositionEmbedding, TransformerEncoder, attention_mask
from genrec.registry import register_model
from genrec.training.neural import bucket_batches_field, ce_chunk_size_field

SASRecLoss = Literal["bce", "gbce", "sampled_softmax", "ce"]
SampledNegatives = Literal["uniform", "in_batch", "mixed"]


@dataclass(frozen=True)
class SASRecConfig(NeuralConfig):
    """Config of :class:`SASRec`."""

    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "embedding_dim": {"type": "categorical", "choices": [32, 64, 128]},
        "n_blocks": {"type": "int", "low": 1, "high": 3},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    }

    adam_beta2: float = field(
        0.98, "AdamW second-moment decay (0.98: the SASRec paper and RecTools; faster per epoch)"
    )
    embedding_dim: int = field(64, "item/position embedding and hidden size d")
    n_blocks: int = field(2, "number of self-attention blocks")
    n_heads: int = field(1, "attention heads per block (the paper uses 1)")
    ffn_multiplier: int = field(1, "feed-forward hidden size = ffn_multiplier * d (paper: 1)")
    dropout: float = field(0.2, "dropout on embeddings, attention and feed-forward outputs")
    max_seq_len: int = field(50, "keep only the most recent max_seq_len items (left truncation)")
    norm_first: bool = field(True, "pre-LayerNorm blocks (False: post-LN; see sasrec_block)")
    sasrec_block: bool = field(
        False,
        "the original SASRec block (Kang & McAuley's code, RecTools): residuals from the "
        "LayerNorm'd input, keys/values from the raw input; overrides norm_first",
    )
    ffn_activation: Literal["gelu", "relu"] = field(
        "gelu", "feed-forward activation ('relu': the SASRec paper, Eq. 4)"
    )
    init: Literal["normal", "xavier"] = field(
        "normal",
        "'normal': item embeddings N(0, 1/d); 'xavier': Xavier-normal for every weight "
        "matrix, embeddings included (SASRec's PyTorch code, RecTools)",
    )
    scale_inputs: bool = field(
        True, "multiply the input item embeddings by sqrt(d) (SASRec's code; RecTools does not)"
    )
    loss: SASRecLoss = field("ce", "'ce' (full softmax), 'bce', 'gbce' or 'sampled_softmax'")
    n_negatives: int = field(1, "uniform negatives per position for bce/gbce/sampled_softmax")
    negatives: SampledNegatives = field(
        "uniform",
        "loss='sampled_softmax': 'uniform' (n_negatives per position), 'in_batch' (the "
        "batch's other targets, logQ-corrected) or 'mixed' (both); in_batch/mixed are the "
        "large-catalogue path",
    )
    logq_correction: bool = field(
        True, "loss='sampled_softmax' with in_batch/mixed: subtract log(expected count)"
    )
    gbce_t: float = field(0.75, "gSASRec calibration t in [0, 1] (loss='gbce'; 0 = BCE)")
    ce_chunk_size: int = ce_chunk_size_field("; loss='ce'")
    bucket_batches: int = bucket_batches_field()

    def validate(self) -> None:
        super().validate()
        self.positive(
            "embedding_dim", "n_blocks", "n_heads", "ffn_multiplier", "max_seq_len",
            "n_negatives", "ce_chunk_size",
        )  # fmt: skip
        self.positive("bucket_batches", allow_zero=True)
        if self.embedding_dim % self.n_heads:
            raise ConfigError(
                f"SASRecConfig.embedding_dim ({self.embedding_dim}) must be divisible by "
                f"n_heads ({self.n_heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"SASRecConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.gbce_t <= 1.0:
            raise ConfigError(f"SASRecConfig.gbce_t must be in [0, 1], got {self.gbce_t!r}")
        if self.negatives != "uniform" and self.loss != "sampled_softmax":
            raise ConfigError(
                f"SASRecConfig.negatives={self.negatives!r} needs loss='sampled_softmax' "
                f"(got loss={self.loss!r})"
            )


class SASRecNetwork(nn.Module):
    """The pure SASRec network (no data handling).

    Args:
        n_items: catalogue size; embedding row 0 is padding.
        config: architecture and loss fields of :class:`SASRecConfig`.
    """

    def __init__(self, n_items: int, config: SASRecConfig):
        super().__init__()
        d = config.embedding_dim
        self.n_items = n_items
        self.loss = config.loss
        self.gbce_t = config.gbce_t
        self.ce_chunk_size = config.ce_chunk_size
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = PositionEmbedding(config.max_seq_len, d)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(
            config.n_blocks, d, config.n_heads, config.ffn_multiplier * d, config.dropout,
            config.norm_first, sasrec=config.sasrec_block, activation=config.ffn_activation,
        )  # fmt: skip
        self.input_scale = math.sqrt(d) if config.scale_inputs else 1.0
        if config.init == "xavier":  # every matrix, embeddings included (RecTools)
            for p in self.parameters():
                if p.dim() > 1:
                    nn.init.xavier_normal_(p)
        else:
            nn.init.normal_(self.item_emb.weight, std=d**-0.5)  # unit variance after * sqrt(d)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        # Sigmoid losses with K negatives want every score near the prior log-odds
        # log(beta / K) (-6.9 for K = 256, t = 0.75 on 12k items). Without an output bias the
        # only way there is a component shared by all (tied) item embeddings, which then
        # dominates the inputs too and collapses the network to a constant prediction; a
        # learnable scalar bias started at that optimum absorbs the shift instead.
        self.logit_bias: nn.Parameter | None = None
        if config.loss in ("bce", "gbce"):
            t = config.gbce_t if config.loss == "gbce" else 0.0
            beta = gbce_beta(config.n_negatives, n_items, t)
            self.logit_bias = nn.Parameter(torch.tensor(math.log(beta / config.n_negatives)))

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(B, L, D)`` of left-padded item ids ``seq`` ``(B, L)``; position
        ``t`` only sees items ``<= t`` (causal mask, paper Sec. III-B "Causality")."""
        real = seq > 0  # (B, L)
        x = self.item_emb(seq) * self.input_scale  # (B, L, D)
        x = self.drop(self.pos_emb(x)) * real[..., None]  # padding inputs are zero
        return self.encoder(x, attention_mask(real, causal=True))  # (B, L, D)

    def forward(
        self,
        seq: torch.Tensor,
        targets: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
        shared_negatives: torch.Tensor | None = None,
        log_q: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states, or the training loss when ``targets`` are given.

        Args:
            seq: ``(B, L)`` input item ids (0 = padding).
            targets: ``(B, L)`` next item per position (0 = no loss there).
            negatives: ``(N, K)`` sampled item ids for the ``N = (targets > 0).sum()`` trained
                positions in row-major order (sampled losses only).
            shared_negatives: ``(U,)`` item ids that are negatives of every position
                (``sampled_softmax`` only: in-batch negatives); a position's own target
                among them is masked.
            log_q: ``(n_items + 1,)`` log expected count of each item among the shared
                negatives (logQ correction of the positives and the shared columns); the
                uniform columns then get ``log(K / n_items)``. ``None``: no correction.

        Returns:
            ``(B, L, D)`` hidden states without targets, else the scalar loss.
        """
        h = self.encode(seq)  # (B, L, D)
        if targets is None:
            return h
        valid = targets > 0  # (B, L)
        hv, y = h[valid], targets[valid]  # (N, D), (N,)
        E = self.item_emb.weight  # (n_items + 1, D)
        if self.loss == "ce":
            return full_softmax_ce(hv, E[1:], y - 1, chunk_size=self.ce_chunk_size)
        if negatives is None and shared_negatives is None:
            raise ValueError(f"loss {self.loss!r} needs sampled negatives")
        pos = (hv * E[y]).sum(-1)  # (N,)
        if shared_negatives is not None:
            if self.loss != "sampled_softmax":
                raise ValueError("shared (in-batch) negatives need loss='sampled_softmax'")
            return self._shared_softmax(hv, y, pos, negatives, shared_negatives, log_q)
        assert negatives is not None
        neg = torch.einsum("nd,nkd->nk", hv, E[negatives])  # (N, K)
        if self.logit_bias is not None:
            pos, neg = pos + self.logit_bias, neg + self.logit_bias
        hit = negatives == y[:, None]  # (N, K) accidental hits
        if self.loss == "sampled_softmax":
            return sampled_softmax(pos, neg, neg_mask=hit)
        t = self.gbce_t if self.loss == "gbce" else 0.0  # gBCE with t = 0 is BCE
        return gbce(pos, neg, self.n_items, t, neg_mask=hit)

    def _shared_softmax(
        self,
        hv: torch.Tensor,
        y: torch.Tensor,
        pos: torch.Tensor,
        negatives: torch.Tensor | None,
        shared: torch.Tensor,
        log_q: torch.Tensor | None,
    ) -> torch.Tensor:
        """Sampled softmax over the positive, the shared (in-batch) negatives ``(U,)`` and
        the optional per-position uniform ones ``(N, K)``, logQ-corrected when ``log_q``."""
        E = self.item_emb.weight
        neg = hv @ E[shared].T  # (N, U): one matmul, not an (N, U, D) gather
        hit = shared[None, :] == y[:, None]  # (N, U) the position's own target
        q_pos = q_neg = None
        if log_q is not None:
            q_pos, q_neg = log_q[y], log_q[shared]  # (N,), (U,): one row for every position
        if negatives is not None:
            uni = torch.einsum("nd,nkd->nk", hv, E[negatives])  # (N, K)
            neg = torch.cat([neg, uni], dim=1)
            hit = torch.cat([hit, negatives == y[:, None]], dim=1)
            if q_neg is not None:
                q_uni = q_neg.new_full(
                    (negatives.shape[1],), math.log(negatives.shape[1] / self.n_items)
                )
                q_neg = torch.cat([q_neg, q_uni])  # (U + K,)
        if q_neg is not None:
            q_neg = q_neg[None, :]  # broadcast over the N positions
        return sampled_softmax(pos, neg, log_q_pos=q_pos, log_q_neg=q_neg, neg_mask=hit)

    def score_last(self, seq: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, n_items + 1)`` of every item after the last position (Eq. 7)."""
        h = self.encode(seq)[:, -1]  # (B, D)
        scores = h @ self.item_emb.weight.T  # (B, n_items + 1)
        if self.logit_bias is not None:  # rank-neutral; keeps sigmoid(score) calibrated
            scores = scores + self.logit_bias
        return scores


@register_model("sasrec")
class SASRec(NeuralRecommender):
    """SASRec (Kang & McAuley 2018) with a choice of losses; see the module docstring.

    Training examples are every user's last ``max_seq_len + 1`` training items, with a loss
    at every non-padding position (teacher forcing under the causal mask). Recommendations
    score the hidden state of the last position against all item embeddings.
    """

    summary = (
        "Causal self-attention transformer over the user's item sequence (Kang & McAuley 2018)."
    )

    config_class = SASRecConfig
    config: SASRecConfig

    def _build_network(self) -> SASRecNetwork:
        return SASRecNetwork(self.n_items, self.config)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        hist = dataset.histories()
        rows = training_rows(hist, min_len=2)
        cfg = self.config
        seqs = last_items(hist, rows, cfg.max_seq_len + 1)  # (R, L + 1)
        if cfg.loss == "sampled_softmax" and cfg.negatives != "uniform":
            # each item's share of the training targets: the in-batch sampling distribution
            counts = np.bincount(seqs[:, 1:].ravel(), minlength=self.n_items + 1)[1:]
            p = counts / max(counts.sum(), 1)
            log_p = np.log(np.maximum(p, 1e-12))
            self._target_log_p = torch.from_numpy(np.concatenate([[0.0], log_p])).float()
        # positions are right-aligned (PositionEmbedding), so dropping all-padding columns
        # changes no item's position: the same network function, less compute
        for _, inputs, targets in causal_batches(
            seqs, cfg.batch_size, cfg.bucket_batches, generator
        ):
            # one seed per batch: negatives are drawn on the device in training_step
            seed = torch.randint(0, 2**62, (1,), generator=generator)
            yield {"inputs": inputs, "targets": targets, "neg_seed": seed}

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.config
        if cfg.loss == "ce":
            return net(batch["inputs"], batch["targets"])
        targets = batch["targets"]
        n = int((targets > 0).sum())
        device = targets.device
        negatives = None
        if cfg.negatives != "in_batch":
            gen = torch.Generator(device=device).manual_seed(int(batch["neg_seed"]))
            negatives = torch.randint(
                1, self.n_items + 1, (n, cfg.n_negatives), generator=gen, device=device
            )  # (N, K) uniform over real items
        if cfg.negatives == "uniform":
            return net(batch["inputs"], targets, negatives)
        shared = torch.unique(targets[targets > 0])  # (U,) the batch's target items
        log_q = None
        if cfg.logq_correction:  # log of each item's expected count among N in-batch draws
            log_q = self._target_log_p.to(device) + math.log(max(n, 1))
        return net(batch["inputs"], targets, negatives, shared_negatives=shared, log_q=log_q)

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if self.config.loss in ("bce", "gbce") and "logit_bias" not in state:
            state = {**state, "logit_bias": np.zeros((), np.float32)}  # saved before the bias
        super()._load_state_dict(state)

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray:
        """Users by history length, so that each scoring batch is trimmed to little padding
        (evaluating Amazon Beauty's test users: mean 7 items of 50)."""
        return length_order(hist.seq_indptr, rows, self.config.max_seq_len)

    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        seq = torch.from_numpy(batch.padded_sequences(self.config.max_seq_len))
        seq = trim_left_padding(seq).to(self.device_)  # right-aligned positions: same scores
        return self.network_.score_last(seq)  # (B, n_items + 1)
