"""TIGER: generative retrieval with semantic IDs (Rajput et al., NeurIPS 2023,
"Recommender Systems with Generative Retrieval").

Every item is a tuple of ``L`` semantic-ID tokens (an :class:`~genrec.tokenizers.ItemCodebook`,
e.g. RQ-VAE codes plus a collision level, paper Sec. 3.1). A T5-style encoder-decoder
(Sec. 3.2) reads the codes of the user's last ``max_seq_len`` items, flattened, after a hashed
user token (``n_user_buckets`` buckets, "Hashing Trick", Sec. 4.1), and decodes the next
item's ``L`` codes. Training is teacher forcing with cross-entropy on the shared trainer;
recommendation is the shared beam search (:mod:`genrec.decoding`) with an incremental decoder
KV cache and the semantic-ID trie as a constraint, so every decoded tuple is a real item.

Architecture (paper Sec. 4.1: 4 encoder + 4 decoder layers, d_model 128, 6 heads of
dimension 64, FFN 1024, ReLU, dropout 0.1): pre-norm blocks with RMSNorm, bias-free
projections and a ReLU feed-forward as in T5 (Raffel et al., JMLR 2020). Differences from T5,
documented: positions are *learned absolute* embeddings (encoder: one per token slot,
right-aligned like :class:`~genrec.nn.transformer.PositionEmbedding`; decoder: one per level)
instead of T5's relative position bias, and attention uses the usual ``1 / sqrt(d_head)``
scaling. Token ``c`` of level ``l`` has id ``1 + offset[l] + c`` (0 = padding) in one
embedding table shared by the encoder input, the decoder input and (tied, scaled by
``d_model ** -0.5`` as in T5) the output layer; the output at level ``l`` is a softmax over
that level's ``V_l`` codes only (the trie would mask the other levels anyway).

The codebook comes from ``codebook_path`` (a saved ItemCodebook folder, checked against the
catalogue) or is built at fit time: ``codebook="random"`` assigns random codes (the paper's
random-ID ablation and a test fixture; ``n_levels - 1`` random levels of ``codebook_size``
codes plus a collision level); any other name is a :func:`genrec.tokenizers.get_tokenizer`
tokenizer (``rqvae`` is the paper's, ``rkmeans``, ``hkmeans``) fitted with its default config,
``n_levels - 1`` semantic levels and ``codebook_size`` codes on ``item_vectors_path`` (.npy) or,
by default, the sentence embeddings of the item text (:func:`genrec.text.embed_items`, extra
``text``); without collisions a constant collision level keeps the depth at ``n_levels``. For
a tuned tokenizer, fit it yourself, ``codebook.save(dir)`` and pass ``codebook_path=dir``.
The codes are saved inside the artifact, so a loaded model needs no codebook folder.

Cold start (paper Sec. 4.3): :meth:`TIGER.add_items` gives items new code tuples (from the
tokenizer's ``encode`` on their content) and rebuilds the trie; the network is unchanged, so
items never seen in training become decodable. The items must already be in the model's item
id map: internal ids index the training histories, popularity, the exact-scoring output and
the artifact's ``ids.json``, all fixed at ``fit``. Brand-new external ids come with continuous
training instead: ``genrec update`` (:func:`genrec.update.update_model`) grows the item map,
codes the new items with the fitted tokenizer (:meth:`TIGER.grown_codebook`; the artifact
stores it) and warm-starts a new model. Without an update, build the dataset with the future
items in its item map (a :class:`~genrec.data.dataset.Dataset` may list items without
interactions), then re-code them with :meth:`TIGER.add_items` once their content is known.

Users are hashed into ``n_user_buckets`` tokens by internal id; ad-hoc histories
(``recommend_for_history``) use the bucket of id 0, and an empty ad-hoc history falls back to
popularity like the scoring models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch, UserHistories
from genrec.data.sequences import length_bucketed_batches, minibatches, trim_left_padding
from genrec.decoding import SemanticIDTrie, Static, TrieConstraint, beam_search
from genrec.errors import ConfigError, DataValidationError
from genrec.evaluation.diagnostics import generation_diagnostics
from genrec.models.base import AllowedItems, GenerativeRecommender
from genrec.registry import register_model
from genrec.text import check_item_vectors, embed_items, load_item_vectors
from genrec.tokenizers import (
    ItemCodebook,
    SemanticIDTokenizer,
    codebook_health,
    fit_tokenizer,
    get_tokenizer,
    random_codebook,
)
from genrec.training.neural import (
    NeuralConfig,
    NeuralTrainingMixin,
    resolve_device,
    training_device,
)

_HASH = 2_654_435_761  # Knuth's multiplicative hash for user ids -> buckets


@dataclass(frozen=True)
class TIGERConfig(NeuralConfig):
    """Config of :class:`TIGER` (defaults: the paper's Sec. 4.1 setting)."""

    # old config keys that still load, with a DeprecationWarning (docs/models.md)
    RENAMED = {"d_model": "embedding_dim", "max_items": "max_seq_len"}
    # default search space of `genrec tune` (docs/tuning.md); a class attribute, no field
    SEARCH_SPACE = {
        "lr": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.3},
        "weight_decay": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "warmup_steps": {"type": "int", "low": 0, "high": 2000, "step": 100},
    }

    embedding_dim: int = field(128, "hidden size of encoder and decoder (T5's d_model)")
    n_encoder_layers: int = field(4, "encoder blocks")
    n_decoder_layers: int = field(4, "decoder blocks")
    n_heads: int = field(6, "attention heads")
    head_dim: int = field(64, "size of each attention head (T5's d_kv)")
    ffn_dim: int = field(1024, "feed-forward hidden size")
    dropout: float = field(0.1, "dropout on embeddings, attention and sub-layer outputs")
    max_seq_len: int = field(20, "the user's last max_seq_len items form the encoder input")
    n_user_buckets: int = field(2000, "hashed user-id tokens (0 = no user token)")
    num_beams: int = field(20, "beams of the constrained beam search (>= k requested)")
    codebook_path: str | None = field(None, "saved ItemCodebook folder (else built at fit)")
    codebook: str = field(
        "random", "without codebook_path: 'random', or a genrec.tokenizers name fitted at fit"
    )
    item_vectors_path: str | None = field(
        None, "item vectors (.npy) for the fit-time tokenizer (default: embedded item text)"
    )
    missing_text: str = field(
        "fallback",
        "items without metadata text when embedding for the fit-time tokenizer: 'fallback' "
        "embeds 'item <id>' with a warning, 'raise' stops fit with the items named",
    )
    n_levels: int = field(4, "code tokens per item, collision level included")
    codebook_size: int = field(256, "largest number of codes in any level")
    diagnostic_users: int = field(
        64, "users sampled by diagnostics() (exact scoring: n_items sequences each; 0 = off)"
    )
    rkmeans_balanced: bool = field(
        True, "codebook='rkmeans': equal-size clusters per level (plain k-means collapses)"
    )
    score_chunk_size: int = field(65536, "decoder sequences per chunk of exact scoring")
    bucket_batches: int = field(
        0,
        "batch training sequences of similar history length, sorting chunks of this many "
        "batches (0 = random batches); less padding, so faster epochs, e.g. 50 on a CPU",
    )
    cold_slots: float = field(
        0.0,
        "the paper's epsilon (Sec. 4.3): up to this share of each top-k list goes to cold "
        "items (no training interactions) whose code prefix matches a generated item's",
    )
    cold_prefix_levels: int = field(
        0, "code levels a cold item must share with a generated item (0 = all but the last)"
    )

    def validate(self) -> None:
        super().validate()
        self.positive(
            "embedding_dim", "n_encoder_layers", "n_decoder_layers", "n_heads", "head_dim",
            "ffn_dim", "max_seq_len", "num_beams", "n_levels", "codebook_size",
            "score_chunk_size",
        )  # fmt: skip
        self.positive("n_user_buckets", allow_zero=True)
        self.positive("diagnostic_users", "bucket_batches", "cold_prefix_levels", allow_zero=True)
        if not 0.0 <= self.cold_slots <= 1.0:
            raise ConfigError(f"TIGERConfig.cold_slots must be in [0, 1], got {self.cold_slots!r}")
        if self.cold_prefix_levels > self.n_levels:
            raise ConfigError(
                f"TIGERConfig.cold_prefix_levels ({self.cold_prefix_levels}) exceeds n_levels "
                f"({self.n_levels})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"TIGERConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.missing_text not in ("fallback", "raise"):
            raise ConfigError(
                f"TIGERConfig.missing_text must be 'fallback' or 'raise', got {self.missing_text!r}"
            )
        if self.codebook != "random" and not self.codebook_path:
            from genrec.tokenizers import list_tokenizers

            if self.codebook not in list_tokenizers():
                raise ConfigError(
                    f"TIGERConfig.codebook={self.codebook!r} is no tokenizer; use 'random' or "
                    f"one of {list_tokenizers()}"
                )
        k = int(self.val_metric.split("@")[1])
        if self.num_beams < k:
            raise ConfigError(
                f"TIGERConfig.num_beams ({self.num_beams}) must be >= the k of val_metric "
                f"{self.val_metric!r}: beam search returns at most num_beams items"
            )


def _for_catalogue(cb: ItemCodebook, ids: list[Any], source: str) -> ItemCodebook:
    """``cb`` after checking that it codes exactly the catalogue ``ids`` (``source`` names it
    in the error)."""
    cb.check_catalogue(ids)
    if cb.n_items != len(ids):
        raise DataValidationError(f"{source} codes {cb.n_items} items, the dataset has {len(ids)}")
    return cb


# --------------------------------------------------------------------------- network
class Attention(nn.Module):
    """Multi-head attention with ``n_heads * head_dim`` inner size (T5 style, no biases).

    Self-attention uses one fused ``qkv`` projection, cross-attention ``q`` plus a fused
    ``kv`` projection of the encoder output. Cross-attention of ``N = B * G`` query rows
    against ``B`` memories: the ``G`` rows of a user (beams, or catalogue items when scoring)
    share one memory, so queries are folded into the sequence axis instead of copying the
    memory ``G`` times.
    """

    def __init__(self, dim: int, n_heads: int, head_dim: int, dropout: float, cross: bool):
        super().__init__()
        inner = n_heads * head_dim
        self.n_heads, self.head_dim, self.dropout, self.inner = n_heads, head_dim, dropout, inner
        if cross:
            self.q = nn.Linear(dim, inner, bias=False)
            self.kv = nn.Linear(dim, 2 * inner, bias=False)
        else:
            self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.o = nn.Linear(inner, dim, bias=False)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, T, H * dh)`` -> ``(N, H, T, dh)``."""
        N, T, _ = x.shape
        return x.view(N, T, self.n_heads, self.head_dim).transpose(1, 2)

    def merge(self, y: torch.Tensor) -> torch.Tensor:
        """``(N, H, T, dh)`` -> ``(N, T, dim)`` through the output projection."""
        N, H, T, dh = y.shape
        return self.o(y.transpose(1, 2).reshape(N, T, H * dh))

    def _p(self) -> float:
        return self.dropout if self.training else 0.0

    def self_attn(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x`` ``(N, T, D)``; ``mask`` ``(N|1, 1, T, T)`` bool; ``cache`` ``(k, v)`` each
        ``(N, H, t, dh)`` of earlier positions (then ``x`` holds only new positions)."""
        q, k, v = (self.split(z) for z in self.qkv(x).split(self.inner, dim=-1))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)  # (N, H, t + T, dh)
            v = torch.cat([cache[1], v], dim=2)
        if q.shape[2] == 1 and mask is None and not self._p():
            # one new query over a handful of cached keys: plain matmuls beat the fused
            # kernel's set-up cost at this size (incremental decoding)
            w = torch.softmax((q @ k.transpose(-1, -2)) * self.head_dim**-0.5, dim=-1)
            return self.merge(w @ v), (k, v)  # (N, 1, D)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self._p())
        return self.merge(y), (k, v)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``(B, H, S, dh)`` of the encoder output ``(B, S, D)``."""
        k, v = self.kv(memory).split(self.inner, dim=-1)
        return self.split(k), self.split(v)

    def cross_attn(
        self, x: torch.Tensor, mem_k: torch.Tensor, mem_v: torch.Tensor, mem_mask: torch.Tensor
    ) -> torch.Tensor:
        """``x`` ``(B * G, T, D)`` against ``mem_k/v`` ``(B, H, S, dh)``, ``mem_mask`` ``(B, S)``
        bool (True = real)."""
        N, T, _ = x.shape
        B = mem_k.shape[0]
        G = N // B
        q = self.split(self.q(x))  # (B*G, H, T, dh)
        q = q.view(B, G, self.n_heads, T, self.head_dim).transpose(1, 2)  # (B, H, G, T, dh)
        q = q.reshape(B, self.n_heads, G * T, self.head_dim)  # (B, H, G*T, dh)
        y = F.scaled_dot_product_attention(
            q, mem_k, mem_v, attn_mask=mem_mask[:, None, None, :], dropout_p=self._p()
        )  # (B, H, G*T, dh)
        y = y.view(B, self.n_heads, G, T, self.head_dim).transpose(1, 2)  # (B, G, H, T, dh)
        return self.merge(y.reshape(N, self.n_heads, T, self.head_dim))  # (B*G, T, D)


class FeedForward(nn.Module):
    """T5's ``W_o ReLU(W_i x)`` (no biases)."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.wi = nn.Linear(dim, hidden, bias=False)
        self.wo = nn.Linear(hidden, dim, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(self.drop(F.relu(self.wi(x), inplace=True)))  # (N, T, D)


class EncoderBlock(nn.Module):
    """Pre-RMSNorm self-attention + feed-forward, each with dropout and a residual."""

    def __init__(self, cfg: TIGERConfig):
        super().__init__()
        d = cfg.embedding_dim
        self.attn = Attention(d, cfg.n_heads, cfg.head_dim, cfg.dropout, cross=False)
        self.ffn = FeedForward(d, cfg.ffn_dim, cfg.dropout)
        self.norm1, self.norm2 = nn.RMSNorm(d, eps=1e-6), nn.RMSNorm(d, eps=1e-6)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn.self_attn(self.norm1(x), mask)[0])  # (B, S, D)
        return x + self.drop(self.ffn(self.norm2(x)))


class DecoderBlock(nn.Module):
    """Pre-RMSNorm causal self-attention (with KV cache), cross-attention, feed-forward."""

    def __init__(self, cfg: TIGERConfig, cross_dropout: bool = True):
        """``cross_dropout=False``: no dropout on the cross-attention weights, for a memory of
        one key (SID-split's user state), whose only weight dropout would zero."""
        super().__init__()
        d = cfg.embedding_dim
        self.self_attn = Attention(d, cfg.n_heads, cfg.head_dim, cfg.dropout, cross=False)
        p_cross = cfg.dropout if cross_dropout else 0.0
        self.cross = Attention(d, cfg.n_heads, cfg.head_dim, p_cross, cross=True)
        self.ffn = FeedForward(d, cfg.ffn_dim, cfg.dropout)
        self.norm1, self.norm2, self.norm3 = (nn.RMSNorm(d, eps=1e-6) for _ in range(3))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        mem: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None = None,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x`` ``(N, T, D)``; ``mem`` = (keys, values, mask) of this block's cross-attention;
        returns the output and the updated self-attention cache."""
        h, cache = self.self_attn.self_attn(self.norm1(x), mask, cache)
        x = x + self.drop(h)  # (N, T, D)
        x = x + self.drop(self.cross.cross_attn(self.norm2(x), *mem))
        return x + self.drop(self.ffn(self.norm3(x))), cache


class SemanticIDDecoder:
    """The code decoder shared by the semantic-ID networks (a mixin of ``nn.Module``s).

    Given a per-row memory (encoder outputs, or one user state), it decodes an item's ``L``
    code tokens auto-regressively: teacher forcing (:meth:`decode`, :meth:`log_likelihood`)
    and one incremental step for the beam search (:meth:`step`). The host network defines
    ``sizes``, ``n_levels``, ``offsets``, ``d_model``, ``token_emb`` (one table for all
    levels' tokens, 0 = padding), ``dec_pos``, ``bos``, ``decoder`` (:class:`DecoderBlock`
    list), ``dec_norm`` and ``drop``.
    """

    sizes: list[int]
    n_levels: int
    offsets: list[int]
    d_model: int
    token_emb: nn.Embedding
    dec_pos: nn.Parameter
    bos: nn.Parameter
    decoder: nn.ModuleList
    dec_norm: nn.Module
    drop: nn.Module

    def _code_table(self, codebook_sizes: Sequence[int], d: int) -> int:
        """Set ``sizes``, ``n_levels``, ``offsets`` and ``d_model`` and create the code-token
        table (token ``c`` of level ``l`` is ``1 + offset[l] + c``; 0 = padding); returns
        ``L``. The host's first parameter, so that TIGER's initialisation order is kept."""
        self.sizes = [int(s) for s in codebook_sizes]
        self.n_levels = len(self.sizes)
        self.offsets = [1 + int(o) for o in np.cumsum([0, *self.sizes[:-1]])]  # token id base
        self.d_model = d
        self.token_emb = nn.Embedding(1 + sum(self.sizes), d, padding_idx=0)
        return self.n_levels

    def memory(self, enc: torch.Tensor, real: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Per decoder block: cross-attention keys, values ``(B, H, S, dh)`` and mask."""
        return [(*blk.cross.memory_kv(enc), real) for blk in self.decoder]

    # -------------------------------------------------------------- decoder
    def code_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """Token ids ``(..., L')`` of codes ``(..., L')`` of levels ``0..L'-1``; -1 -> 0."""
        off = torch.tensor(self.offsets[: codes.shape[-1]], device=codes.device)
        return torch.where(codes >= 0, codes + off, torch.zeros_like(codes))

    def level_logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Logits ``(N, V_level)`` of hidden states ``(N, D)`` (tied output, T5 rescale)."""
        lo = self.offsets[level]
        E = self.token_emb.weight[lo : lo + self.sizes[level]]  # (V_l, D)
        return (h * self.d_model**-0.5) @ E.T

    def _decoder_inputs(self, codes: torch.Tensor, start: int) -> torch.Tensor:
        """Decoder inputs at positions ``start..start + T - 1``: BOS at position 0, then the
        embedding of the previous level's code. ``codes`` ``(N, start + T - 1)`` prefix."""
        N = codes.shape[0]
        T = codes.shape[1] + 1 - start
        parts = []
        if start == 0:
            parts.append(self.bos.expand(N, 1, self.d_model))
        prev = codes[:, max(start - 1, 0) :]  # (N, T or T - 1)
        if prev.shape[1]:
            parts.append(self.token_emb(self.code_tokens_at(prev, max(start - 1, 0))))
        x = torch.cat(parts, dim=1)  # (N, T, D)
        return self.drop(x + self.dec_pos[start : start + T])

    def code_tokens_at(self, codes: torch.Tensor, first_level: int) -> torch.Tensor:
        """Like :meth:`code_tokens` for codes of levels ``first_level..``."""
        n = codes.shape[-1]
        off = torch.tensor(self.offsets[first_level : first_level + n], device=codes.device)
        return torch.where(codes >= 0, codes + off, torch.zeros_like(codes))

    def decode(self, codes: torch.Tensor, mem: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
        """Teacher forcing: hidden states ``(N, L, D)`` predicting each level of ``codes``
        ``(N, L)``; ``N = B * G`` rows share memory ``b = row // G``."""
        x = self._decoder_inputs(codes[:, :-1], 0)  # (N, L, D)
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()[None, None]
        for blk, m in zip(self.decoder, mem):
            x, _ = blk(x, m, causal)
        return self.dec_norm(x)

    def log_likelihood(
        self, codes: torch.Tensor, mem: list[tuple[torch.Tensor, ...]]
    ) -> torch.Tensor:
        """``log p(codes)`` ``(N,)`` of full tuples ``(N, L)`` (sum over levels)."""
        h = self.decode(codes, mem)  # (N, L, D)
        total = torch.zeros(codes.shape[0], device=codes.device)
        for lvl in range(self.n_levels):
            lp = F.log_softmax(self.level_logits(h[:, lvl], lvl).float(), -1)  # (N, V_l)
            total = total + lp.gather(1, codes[:, lvl : lvl + 1]).squeeze(1)
        return total

    def step(
        self,
        prefix: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]] | None,
        mem: list[tuple[torch.Tensor, ...]],
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """One incremental decoding step: log-probs ``(N, V_t)`` of level ``t`` given the
        prefix ``(N, t)``; ``cache`` holds the self-attention keys/values of positions
        ``< t`` (``None`` at ``t = 0``)."""
        t = prefix.shape[1]
        x = self._decoder_inputs(prefix, t)  # (N, 1, D) only the new position
        new_cache = []
        for i, (blk, m) in enumerate(zip(self.decoder, mem)):
            x, kv = blk(x, m, None, None if cache is None else cache[i])
            new_cache.append(kv)
        h = self.dec_norm(x)[:, 0]  # (N, D)
        return F.log_softmax(self.level_logits(h, t).float(), -1), new_cache

    def level_loss(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the ``L`` levels of decoder states ``h`` ``(N, L, D)``
        against codes ``targets`` ``(N, L)``."""
        loss = h.new_zeros(())
        for lvl in range(self.n_levels):
            loss = loss + F.cross_entropy(
                self.level_logits(h[:, lvl], lvl).float(), targets[:, lvl]
            )
        return loss / self.n_levels


class TIGERNetwork(SemanticIDDecoder, nn.Module):
    """The pure TIGER encoder-decoder (no data handling, no decoding loop).

    Args:
        codebook_sizes: ``V_l`` codes per level (``L`` levels).
        config: architecture fields of :class:`TIGERConfig`.
    """

    def __init__(self, codebook_sizes: Sequence[int], config: TIGERConfig):
        super().__init__()
        d = config.embedding_dim
        L = self._code_table(codebook_sizes, d)
        self.user_emb = nn.Embedding(max(config.n_user_buckets, 1), d)
        self.use_user = config.n_user_buckets > 0
        self.enc_pos = nn.Parameter(torch.zeros(1 + config.max_seq_len * L, d))
        self.dec_pos = nn.Parameter(torch.zeros(L, d))
        self.bos = nn.Parameter(torch.zeros(d))
        self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_encoder_layers))
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.n_decoder_layers))
        self.enc_norm = nn.RMSNorm(d, eps=1e-6)
        self.dec_norm = nn.RMSNorm(d, eps=1e-6)
        self.drop = nn.Dropout(config.dropout)
        for p in (self.token_emb.weight, self.user_emb.weight, self.bos):
            nn.init.normal_(p, std=1.0)  # T5: unit-variance embeddings, tied output rescaled
        for p in (self.enc_pos, self.dec_pos):
            nn.init.normal_(p, std=0.02)
        with torch.no_grad():
            self.token_emb.weight[0].zero_()

    # -------------------------------------------------------------- encoder
    def encode(
        self, users: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output ``(B, 1 + S, D)`` and key mask ``(B, 1 + S)`` for user buckets
        ``(B,)`` and left-padded flattened code tokens ``(B, S)`` (0 = padding)."""
        B, S = tokens.shape
        P = self.enc_pos.shape[0]  # 1 + max_seq_len * n_levels
        if S > P - 1:
            raise ValueError(
                f"{S} code tokens per row, more than the encoder's {P - 1} positions "
                "(max_seq_len x n_levels)"
            )
        user = self.user_emb(users)[:, None]  # (B, 1, D)
        # the user token at position 0, the items right-aligned at the end: a batch trimmed
        # of its all-padding columns (S < max_seq_len * L) encodes exactly like a padded one
        pos = torch.cat([self.enc_pos[:1], self.enc_pos[P - S :]])
        x = torch.cat([user, self.token_emb(tokens)], dim=1) + pos  # (B, 1 + S, D)
        real = torch.cat(
            [torch.full((B, 1), self.use_user, device=tokens.device), tokens > 0], dim=1
        )  # (B, 1 + S)
        real[:, -1] |= ~real.any(1)  # an empty input still has one key (no NaN softmax)
        x = self.drop(x)
        mask = real[:, None, None, :]  # (B, 1, 1, 1 + S)
        for block in self.encoder:
            x = block(x, mask)
        return self.enc_norm(x), real

    def forward(
        self, users: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Training loss: mean cross-entropy over the ``L`` levels of ``targets`` ``(B, L)``
        (teacher forcing, paper Sec. 3.2)."""
        enc, real = self.encode(users, tokens)
        h = self.decode(targets, self.memory(enc, real))  # (B, L, D)
        return self.level_loss(h, targets)


# --------------------------------------------------------------------------- estimator
@register_model("tiger")
class TIGER(NeuralTrainingMixin, GenerativeRecommender):
    """TIGER (Rajput et al. 2023); see the module docstring.

    A :class:`GenerativeRecommender` trained by the shared trainer (the
    :class:`~genrec.training.neural.NeuralTrainingMixin`: checkpoints, early stopping on the
    real evaluator): :meth:`rank` ranks with constrained beam search (:meth:`_generate`).
    Seen items and candidate allow-lists are enforced *inside* the beam search (branches
    holding no allowed item are masked), so ``num_beams >= k`` returns ``k`` items whenever
    ``k`` items qualify. The exact log-likelihood of every item (teacher forcing over the
    catalogue) is an explicit capability, :meth:`score_all_items`, for diagnostics and the
    beam-vs-exact gap; it is never used to rank.

    Training examples: for every user and every position ``t >= 1`` of the training
    sequence, the previous ``max_seq_len`` items predict item ``t`` (all prefixes, as in the
    paper's sequence construction).
    """

    summary = "Generative retrieval that decodes the next item's semantic ID (Rajput et al. 2023)."

    config_class = TIGERConfig
    config: TIGERConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.codes_: np.ndarray | None = None  # (n_items + 1, L); row 0 and uncoded: -1
        self.codebook_sizes_: list[int] | None = None
        self.trie_: SemanticIDTrie | None = None
        self._codes_dev: torch.Tensor | None = None
        self._cold_index: tuple[int, dict[tuple[int, ...], list[int]]] | None = None
        #: the fitted tokenizer (``None`` for random codes or ``codebook_path``): codes new items
        self.tokenizer_: SemanticIDTokenizer | None = None
        self._preset: tuple[ItemCodebook, SemanticIDTokenizer | None] | None = None

    # -------------------------------------------------------------- codebook
    def preset_codebook(
        self, codebook: ItemCodebook, tokenizer: SemanticIDTokenizer | None = None
    ) -> None:
        """Make the next :meth:`fit` use ``codebook`` (checked against the catalogue) instead
        of building one, and keep ``tokenizer`` as the fitted tokenizer that codes new items
        later. Continuous training (:mod:`genrec.update`) grows an old model's codebook with
        :meth:`grown_codebook` and presets it on the new model.

        Raises:
            ConfigError: ``tokenizer`` is not fitted.
        """
        if tokenizer is not None and tokenizer.dim_ is None:
            raise ConfigError(f"the preset {tokenizer.name} tokenizer is not fitted")
        self._preset = (codebook, tokenizer)

    def _no_tokenizer_reason(self) -> str:
        cfg = self.config
        if cfg.codebook_path:
            return f"its codes came from codebook_path {cfg.codebook_path!r}"
        if cfg.codebook == "hkmeans":
            return "the hkmeans tokenizer is not stored in artifacts"
        return (
            f"this artifact was saved before genrec stored the fitted {cfg.codebook} "
            "tokenizer (2026-12-08)"
        )

    def _make_codebook(self, dataset: Dataset):
        """The training codebook: ``codebook_path``, the local random helper, or a tokenizer
        from :func:`genrec.tokenizers.get_tokenizer` fitted on item vectors."""
        cfg = self.config
        ids = dataset.item_map.to_list()
        self.tokenizer_ = None
        if self._preset is not None:
            cb, self.tokenizer_ = self._preset
            self._preset = None
            return _for_catalogue(cb, ids, "the preset codebook")
        if cfg.codebook_path:
            cb = ItemCodebook.load(cfg.codebook_path)
            return _for_catalogue(cb, ids, f"codebook at {cfg.codebook_path}")
        if cfg.codebook == "random":  # no vectors needed
            return random_codebook(len(ids), cfg.n_levels, cfg.codebook_size, cfg.seed, ids)
        vectors = self._item_vectors(dataset)  # TIGER Sec. 4.1: embedded item metadata
        options = {"balanced": cfg.rkmeans_balanced} if cfg.codebook == "rkmeans" else {}
        self.tokenizer_, cb = fit_tokenizer(
            cfg.codebook, vectors, ids, n_levels=cfg.n_levels,
            codebook_size=cfg.codebook_size, seed=cfg.seed, **options,
        )  # fmt: skip
        return cb

    def _item_vectors(self, dataset: Dataset) -> np.ndarray:
        """``(n_items + 1, d)`` vectors the fit-time tokenizer reads: ``item_vectors_path``
        or the embedded item text (TIGER Sec. 4.1)."""
        cfg = self.config
        if cfg.item_vectors_path:
            return load_item_vectors(cfg.item_vectors_path, dataset)
        return embed_items(
            dataset,
            on_missing=cfg.missing_text,  # type: ignore[arg-type]  # validated
            progress=cfg.progress,
        )

    def grown_codebook(self, dataset: Dataset, vectors: np.ndarray | None = None) -> ItemCodebook:
        """The codebook of ``dataset``'s catalogue, which extends this model's item map (its
        items keep their internal ids, new ones follow): the fitted items keep their codes,
        and the new items get the semantic levels the fitted tokenizer's ``encode`` gives
        their vectors (random ones for ``codebook="random"``), without refitting it, plus the
        smallest free collision code. The collision level grows when a prefix needs it.

        Args:
            dataset: the grown catalogue (e.g. :func:`genrec.update.merged_dataset`).
            vectors: ``(n_items + 1, d)`` item vectors of ``dataset``'s catalogue for the
                tokenizer (default: ``item_vectors_path``, else the embedded item text).

        Raises:
            ConfigError: the model has no tokenizer to code new items with (a codebook from
                ``codebook_path``, or a tokenizer that cannot be stored, such as ``hkmeans``,
                in a loaded artifact).
            DataValidationError: ``dataset`` does not extend the item map, or a prefix's
                collision codes run out (more than ``codebook_size``).
        """
        self._check_fitted()
        assert self.codes_ is not None and self.codebook_sizes_ is not None
        old_ids = self.item_map.to_list()  # type: ignore[union-attr]
        ids = dataset.item_map.to_list()
        if ids[: len(old_ids)] != old_ids:
            raise DataValidationError(
                "the dataset's item map does not extend the model's (old items must keep "
                "their internal ids; genrec.update.merged_dataset builds one that does)"
            )
        new = np.arange(len(old_ids) + 1, len(ids) + 1)
        L = self.codes_.shape[1]
        if len(new) == 0 or L == 1:  # nothing to code, or a collision level alone
            sem = np.empty((len(new), L - 1), dtype=np.int64)
        elif self.tokenizer_ is not None:
            x = (
                self._item_vectors(dataset)
                if vectors is None
                else check_item_vectors(vectors, len(ids), what="vectors")
            )
            sem = self.tokenizer_.encode(x[new])
        elif self.config.codebook == "random" and not self.config.codebook_path:
            rng = np.random.default_rng([self.config.seed, len(old_ids)])
            sem = np.stack([rng.integers(0, s, len(new)) for s in self.codebook_sizes_[:-1]], 1)
        else:
            raise ConfigError(
                f"{self.name} has no fitted tokenizer to code new items with: "
                f"{self._no_tokenizer_reason()}; give them codes with add_items, or refit"
            )
        table = np.full((len(ids) + 1, L), -1, dtype=np.int64)
        table[: len(self.codes_)] = self.codes_
        sizes = list(self.codebook_sizes_)
        taken: dict[tuple[int, ...], set[int]] = {}  # prefix -> its collision codes in use
        for row in self.codes_[1:].tolist():
            taken.setdefault(tuple(row[:-1]), set()).add(row[-1])
        for item, prefix in zip(new.tolist(), np.asarray(sem, dtype=np.int64)):
            used = taken.setdefault(tuple(prefix.tolist()), set())
            free = next(c for c in range(len(used) + 1) if c not in used)
            used.add(free)
            if free >= self.config.codebook_size:
                raise DataValidationError(
                    f"item {ids[item - 1]!r}: all {self.config.codebook_size} collision codes of "
                    f"{prefix.tolist()} are taken"
                )
            table[item] = [*prefix.tolist(), free]
            sizes[-1] = max(sizes[-1], free + 1)
        meta = {
            "grown_from": len(old_ids),
            "new_items": len(new),
            "tokenizer": self.config.codebook,
        }
        return ItemCodebook(table, sizes, ids, meta)

    def _set_codebook(self, codes: np.ndarray, sizes: Sequence[int]) -> None:
        cfg = self.config
        codes = np.asarray(codes, dtype=np.int64)
        sizes = [int(s) for s in sizes]
        if codes.shape[1] != cfg.n_levels:
            raise ConfigError(
                f"the codebook has {codes.shape[1]} levels but TIGERConfig.n_levels is "
                f"{cfg.n_levels}; set n_levels={codes.shape[1]} or use a matching codebook"
            )
        if max(sizes) > cfg.codebook_size:
            raise ConfigError(
                f"the codebook's level sizes {sizes} exceed TIGERConfig.codebook_size "
                f"{cfg.codebook_size}"
            )
        if codes.shape[0] != self.n_items + 1:
            raise DataValidationError(
                f"codes cover {codes.shape[0] - 1} items, the model has {self.n_items}"
            )
        self.codes_ = codes.copy()
        self.codebook_sizes_ = sizes
        try:
            self.trie_ = SemanticIDTrie(codes, sizes).to(self.device_)
        except ValueError as exc:  # e.g. a saved codebook whose tuples repeat
            raise DataValidationError(f"unusable codebook: {exc}") from exc
        self._codes_dev = torch.from_numpy(self.codes_).to(self.device_)
        self._cold_index = None

    # -------------------------------------------------------------- training
    def _fit(self, dataset: Dataset, valid: Any) -> None:
        self.device_ = training_device(self.config)
        cb = self._make_codebook(dataset)
        self._set_codebook(cb.codes, cb.codebook_sizes)
        super()._fit(dataset, valid)

    def _build_network(self) -> TIGERNetwork:
        assert self.codebook_sizes_ is not None
        return TIGERNetwork(self.codebook_sizes_, self.config)

    def _user_buckets(self, user_ids: np.ndarray | torch.Tensor) -> torch.Tensor:
        u = torch.as_tensor(np.asarray(user_ids, dtype=np.int64))
        n = max(self.config.n_user_buckets, 1)
        return (u * _HASH) % (2**32) % n

    def _encoder_tokens(self, items: torch.Tensor) -> torch.Tensor:
        """Flattened code tokens ``(B, M * L)`` of item ids ``(B, M)`` (0 = padding; ``M`` is
        at most ``max_seq_len``, less for a batch trimmed of all-padding columns)."""
        assert self._codes_dev is not None and self.network_ is not None
        codes = self._codes_dev[items]  # (B, M, L); padding item -> -1
        tokens = self.network_.code_tokens(codes)  # (B, M, L)
        return tokens.reshape(items.shape[0], -1)

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        hist = dataset.histories()
        M = self.config.max_seq_len
        lens = np.diff(hist.seq_indptr)  # (n_users + 1,)
        users = np.repeat(np.arange(len(lens)), np.maximum(lens - 1, 0))  # one per target
        starts = hist.seq_indptr[users]
        # position t >= 1 within each user's sequence
        first = np.r_[0, np.cumsum(np.maximum(lens - 1, 0))[:-1]]
        t = np.arange(len(users)) - np.repeat(first, np.maximum(lens - 1, 0)) + 1
        target_idx = starts + t  # (P,) global index of the target item
        ctx = target_idx[:, None] + np.arange(-M, 0)[None, :]  # (P, M)
        ok = ctx >= starts[:, None]
        context = np.where(ok, hist.seq_items[np.maximum(ctx, 0)], 0)  # (P, M) left-padded
        targets = hist.seq_items[target_idx]  # (P,)
        ctx_t, tgt_t = torch.from_numpy(context), torch.from_numpy(targets)
        usr_t = self._user_buckets(users)
        size, chunk = self.config.batch_size, self.config.bucket_batches
        if chunk:
            batches = length_bucketed_batches(ok.sum(1), size, chunk, generator)
        else:
            batches = list(minibatches(len(users), size, generator))
        for idx in batches:
            idx_t = torch.from_numpy(idx)
            items = trim_left_padding(ctx_t[idx_t])  # (B, M' <= M): no all-padding columns
            yield {"users": usr_t[idx_t], "items": items, "targets": tgt_t[idx_t]}

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self._codes_dev is not None
        tokens = self._encoder_tokens(batch["items"])  # (B, M * L)
        targets = self._codes_dev[batch["targets"]]  # (B, L)
        return net(batch["users"], tokens, targets)

    # -------------------------------------------------------------- decoding
    def _encode_batch(self, batch: HistoryBatch) -> list[tuple[torch.Tensor, ...]]:
        assert self.network_ is not None
        items = trim_left_padding(torch.from_numpy(batch.padded_sequences(self.config.max_seq_len)))
        items = items.to(self.device_)
        users = self._user_buckets(batch.user_ids).to(self.device_)
        enc, real = self.network_.encode(users, self._encoder_tokens(items))
        return self.network_.memory(enc, real)

    @torch.no_grad()
    def decode(
        self,
        batch: HistoryBatch,
        num_beams: int | None = None,
        item_mask: torch.Tensor | AllowedItems | None = None,
        constrained: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Beam search for a batch of histories.

        Args:
            batch: the users' histories.
            num_beams: beams (default ``config.num_beams``).
            item_mask: the items each user may get, enforced in the search: a
                ``(B, n_items + 1)`` bool allow-list, or :class:`AllowedItems`, whose seen
                items alone are enforced as a deny-list without a catalogue-sized table.
            constrained: use the trie; ``False`` decodes freely (invalid tuples possible).

        Returns:
            codes ``(B, K, L)``, scores ``(B, K)`` (log-probabilities, best first) and item ids
            ``(B, K)`` (0 where the tuple is no item or the beam is dead).
        """
        self._check_fitted()
        assert self.network_ is not None and self.trie_ is not None
        net, K = self.network_, num_beams or self.config.num_beams
        was_training = net.training
        net.eval()
        try:
            mem = self._encode_batch(batch)
            B = len(batch)
            procs = []
            if constrained:
                procs.append(self._trie_constraint(item_mask, B))

            def step(tokens: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, Any]:
                lp, cache = net.step(tokens, state["cache"], state["mem"].value)
                return lp, {"cache": cache, "mem": state["mem"]}

            out = beam_search(
                step, {"cache": None, "mem": Static(mem)}, batch_size=B, num_beams=K,
                max_len=net.n_levels, vocab_sizes=net.sizes, processors=procs,
                device=self.device_,
            )  # fmt: skip
        finally:
            net.train(was_training)
        items = self.trie_.lookup(out.tokens.reshape(B * K, -1)).reshape(B, K)
        items = torch.where(torch.isfinite(out.scores), items, torch.zeros_like(items))
        return out.tokens.cpu(), out.scores.cpu(), items.cpu()

    def _trie_constraint(
        self, item_mask: torch.Tensor | AllowedItems | None, n_rows: int
    ) -> TrieConstraint:
        """The trie constraint of one batch: seen items as a deny-list when that is all there
        is (cost: the histories, not the catalogue), else the dense allow-list."""
        assert self.trie_ is not None
        if isinstance(item_mask, AllowedItems):
            if item_mask.catalogue_free:
                rows, items = item_mask.denied_pairs()
                pairs = (torch.from_numpy(rows), torch.from_numpy(items))
                return TrieConstraint(self.trie_, denied=pairs, n_rows=n_rows)
            item_mask = item_mask.dense()
        mask = None if item_mask is None else item_mask.to(self.device_)
        return TrieConstraint(self.trie_, mask)

    def _generate(
        self, batch: HistoryBatch, k: int, allowed: AllowedItems
    ) -> tuple[np.ndarray, np.ndarray]:
        """The constrained beam search's best items (``allowed`` enforced inside it), with cold
        items admitted by code prefix when ``cold_slots > 0`` (paper Sec. 4.3). Up to
        ``k + 1`` items when the beams allow: :meth:`rank` breaks a tie at the cut-off
        pessimistically, then keeps ``k``."""
        self._check_beams(k)
        width = min(k + 1, self.config.num_beams)
        out_i = np.zeros((len(batch), width), dtype=np.int64)
        out_s = np.full((len(batch), width), -np.inf, dtype=np.float32)
        _, scores, items = self.decode(batch, item_mask=allowed)
        kk = min(width, items.shape[1])
        out_i[:, :kk], out_s[:, :kk] = items[:, :kk].numpy(), scores[:, :kk].numpy()
        out_s[out_i == 0] = -np.inf
        if int(self.config.cold_slots * k) > 0:
            self._add_cold_items(items.numpy(), scores.numpy(), allowed, out_i, out_s, budget_k=k)
        return out_i, out_s

    def max_list_length(self) -> int:
        """The beam search returns at most ``num_beams`` items."""
        return min(self.config.num_beams, self.n_items)

    def _check_beams(self, k: int) -> None:
        need = min(int(k), self.n_items)
        if self.config.num_beams < need:
            raise ConfigError(
                f"{self.name}'s beam search returns at most num_beams="
                f"{self.config.num_beams} items but k={k} were requested; set num_beams >= k"
            )

    def _row_order(self, hist: UserHistories, rows: np.ndarray) -> np.ndarray:
        """Users by history length (stable): a batch is encoded only as wide as its longest
        history (:func:`trim_left_padding`), so sorted batches pad little: evaluating Amazon
        Beauty's test users (mean 7.2 items) with the paper-size model is 1.5x faster than in
        user order, with the same lists (docs/models.md)."""
        lengths = np.diff(hist.seq_indptr)[np.asarray(rows, dtype=np.int64)]
        return np.argsort(np.minimum(lengths, self.config.max_seq_len), kind="stable")

    def cold_items(self) -> np.ndarray:
        """Internal ids of the coded items without training interactions (the cold items
        that :attr:`TIGERConfig.cold_slots` admits by prefix; items given codes by
        :meth:`add_items` after ``fit`` included)."""
        self._check_fitted()
        assert self.codes_ is not None and self.item_popularity_ is not None
        coded = (self.codes_ >= 0).all(1)
        coded[0] = False
        return np.flatnonzero(coded & (np.asarray(self.item_popularity_) == 0))

    def _prefix_levels(self) -> int:
        assert self.codes_ is not None
        L = self.codes_.shape[1]
        return self.config.cold_prefix_levels or max(L - 1, 1)

    def _cold_prefix_index(self) -> dict[tuple[int, ...], list[int]]:
        """Cold items by their first :meth:`_prefix_levels` codes (built once per code table
        and prefix length)."""
        n = self._prefix_levels()
        if self._cold_index is None or self._cold_index[0] != n:
            assert self.codes_ is not None
            index: dict[tuple[int, ...], list[int]] = {}
            for item in self.cold_items().tolist():
                index.setdefault(tuple(self.codes_[item, :n].tolist()), []).append(item)
            self._cold_index = (n, index)
        return self._cold_index[1]

    def _add_cold_items(
        self,
        beam_items: np.ndarray,
        beam_scores: np.ndarray,
        allowed: AllowedItems,
        out_i: np.ndarray,
        out_s: np.ndarray,
        budget_k: int | None = None,
    ) -> None:
        """TIGER Sec. 4.3's epsilon, in place on the top-k ``out_i`` / ``out_s``: walking each
        user's beams best first, every generated item is followed by the allowed cold items
        that share its code prefix and were not generated themselves (with its score, in
        item-id order), until ``int(cold_slots * k)`` such cold items are in; the rest of the
        list is the remaining beams, in their order."""
        index = self._cold_prefix_index()
        if not index:
            return
        assert self.codes_ is not None
        k, n = out_i.shape[1], self._prefix_levels()
        budget = int(self.config.cold_slots * (k if budget_k is None else budget_k))
        for b in range(len(out_i)):
            row_i: list[int] = []
            row_s: list[float] = []
            taken = set(beam_items[b].tolist())  # generated items keep their beam rank
            added = 0
            for item, score in zip(beam_items[b].tolist(), beam_scores[b].tolist()):
                if len(row_i) >= k:
                    break
                if item == 0 or not np.isfinite(score):
                    continue
                row_i.append(item)
                row_s.append(score)
                for cold in index.get(tuple(self.codes_[item, :n].tolist()), ()):
                    if added >= budget or len(row_i) >= k:
                        break
                    if (
                        cold in taken
                        or not allowed.contains(np.array([[cold]]), np.array([b]))[0, 0]
                    ):
                        continue
                    row_i.append(cold)
                    row_s.append(score)
                    taken.add(cold)
                    added += 1
            if added:
                m = len(row_i)
                out_i[b, :m], out_s[b, :m] = row_i, row_s
                out_i[b, m:], out_s[b, m:] = 0, -np.inf

    # -------------------------------------------------------------- exact scoring
    @torch.no_grad()
    def score_all_items(self, batch: HistoryBatch) -> torch.Tensor:
        """Exact ``log p(item)`` ``(B, n_items + 1)`` float32 (CPU) of every item's full code
        tuple, by batched teacher forcing over the catalogue in chunks (``-inf`` for uncoded
        items and the padding column). A capability for diagnostics (the beam-vs-exact gap,
        :mod:`genrec.evaluation.diagnostics`) and exact ranking experiments; :meth:`rank`
        always generates."""
        self._check_fitted()
        assert self.network_ is not None and self._codes_dev is not None
        net = self.network_
        was_training = net.training
        net.eval()
        try:
            out = self._exact_scores(batch)
        finally:
            net.train(was_training)
        out[:, 0] = float("-inf")
        return out.float().cpu()

    def _exact_scores(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None and self._codes_dev is not None
        mem = self._encode_batch(batch)
        B, n = len(batch), self.n_items
        coded = (self._codes_dev >= 0).all(1)  # (n_items + 1,)
        codes = self._codes_dev.clamp(min=0)  # (n_items + 1, L)
        out = torch.full((B, n + 1), float("-inf"), device=self.device_)
        chunk = max(1, self.config.score_chunk_size // max(B, 1))
        for s in range(1, n + 1, chunk):
            c = codes[s : s + chunk]  # (C, L)
            C = c.shape[0]
            rows = c.repeat(B, 1)  # (B*C, L): user b's rows are b*C .. b*C + C - 1
            ll = self.network_.log_likelihood(rows, mem).view(B, C)
            out[:, s : s + C] = ll
        out[:, ~coded] = float("-inf")
        return out

    def invalid_code_rate(
        self, users: Sequence[Any] | np.ndarray, *, history: Dataset | None = None
    ) -> float:
        """Fraction of decoded tuples that are no item when decoding WITHOUT the trie
        (``num_beams`` beams per user; TIGER Sec. 4.4 reports this for unconstrained
        decoding)."""
        self._check_fitted()
        internal = self.user_map.to_internal(  # type: ignore[union-attr]
            np.asarray(users, dtype=object), what="user"
        )
        hist = self._histories_for(history)
        bad = total = 0
        for s in range(0, len(internal), 256):
            rows = internal[s : s + 256]
            _, scores, items = self.decode(hist.batch(rows), constrained=False)
            alive = torch.isfinite(scores)
            bad += int(((items == 0) & alive).sum())
            total += int(alive.sum())
        return bad / max(total, 1)

    # -------------------------------------------------------------- diagnostics
    def codebook_diagnostics(self) -> dict[str, float | int]:
        """Health of the fitted code table (flat, for ``results.json``).

        The last level is TIGER's disambiguation (collision) level (``n_levels`` counts it);
        the levels before it are the semantic levels.

        Returns:
            ``codebook_utilisation_l{l}`` (share of level ``l``'s codes used by some item) and
            ``code_entropy_bits_l{l}`` for every level ``l = 1..L``;
            ``collision_rate_before_dedup`` (share of items whose semantic tuple is shared);
            ``dedup_level_size`` (codes of the disambiguation level = largest collision group)
            and ``dedup_items`` (items that needed a non-zero disambiguation code);
            ``items_per_prefix_l{l}`` (mean items per distinct semantic prefix of length
            ``l = 1..L-1``) and ``max_items_per_semantic_id``.
        """
        self._check_fitted()
        assert self.codes_ is not None and self.codebook_sizes_ is not None
        return codebook_health(self.codes_, self.codebook_sizes_)

    def diagnostics(
        self,
        split: Any = None,
        *,
        sample_users: int | None = None,
        seed: int = 0,
        k: int = 10,
        batch_size: int = 16,
    ) -> dict[str, float | int]:
        """Decoding and tokenizer health of a fitted TIGER (TIGER paper Sec. 4.4-4.5): the
        code-table statistics of :meth:`codebook_diagnostics` plus
        :func:`genrec.evaluation.diagnostics.generation_diagnostics` (invalid-code rates with
        and without the trie, the beam search's overlap with the exact top-``k`` and the
        recall gap) on ``sample_users`` users (default ``config.diagnostic_users``)."""
        self._check_fitted()
        out = self.codebook_diagnostics()
        n = self.config.diagnostic_users if sample_users is None else sample_users
        out.update(
            generation_diagnostics(
                self, split, sample_users=n, seed=seed, k=k, batch_size=batch_size
            )
        )
        return out

    # -------------------------------------------------------------- cold start
    def add_items(self, item_ids: Sequence[Any], codes: np.ndarray) -> None:
        """Give items (external ids already in the item map) new code tuples and add them to
        the trie, without retraining (TIGER's cold-start setting, Sec. 4.3).

        Args:
            item_ids: external item ids known to the model's item map. The id map cannot grow
                after ``fit`` (see the module docstring).
            codes: ``(n, L)`` full code tuples, or ``(n, L - 1)`` semantic levels as a
                tokenizer's ``encode`` returns them: the collision level is then the smallest
                code that keeps the tuple unique.

        Raises:
            UnknownIdError: an item id is not in the item map.
            DataValidationError: a tuple is out of range or taken by another item, or the
                collision level is full.
        """
        self._check_fitted()
        assert self.trie_ is not None and self.codes_ is not None
        internal = self.item_map.to_internal(  # type: ignore[union-attr]
            np.asarray(item_ids, dtype=object), what="item"
        )
        L = self.codes_.shape[1]
        codes = np.asarray(codes, dtype=np.int64).reshape(len(internal), -1)
        if codes.shape[1] == L - 1 and L > 1:
            codes = self._with_collision_level(internal, codes)
        try:
            self.trie_.add_items(internal, codes)
        except ValueError as exc:
            raise DataValidationError(f"cannot add items: {exc}") from exc
        self.codes_[internal] = codes
        self._codes_dev = torch.from_numpy(self.codes_).to(self.device_)
        self._cold_index = None

    def _with_collision_level(self, internal: np.ndarray, sem: np.ndarray) -> np.ndarray:
        assert self.codes_ is not None and self.codebook_sizes_ is not None
        table = self.codes_.copy()
        table[internal] = -1  # the items being re-coded free their old tuples
        size = self.codebook_sizes_[-1]
        out = np.empty((len(sem), sem.shape[1] + 1), dtype=np.int64)
        for r, (item, prefix) in enumerate(zip(internal, sem)):
            used = set(table[(table[:, :-1] == prefix).all(1), -1].tolist())
            free = next((c for c in range(size) if c not in used), None)
            if free is None:
                raise DataValidationError(
                    f"item {item}: all {size} collision codes of {prefix.tolist()} are taken"
                )
            out[r] = [*prefix.tolist(), free]
            table[item] = out[r]
        return out

    # -------------------------------------------------------------- persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        state = super()._state_dict()
        assert self.codes_ is not None and self.codebook_sizes_ is not None
        state["codebook.codes"] = self.codes_
        state["codebook.sizes"] = np.asarray(self.codebook_sizes_, dtype=np.int64)
        if self.tokenizer_ is not None:
            try:
                arrays = self.tokenizer_.state_arrays()
            except NotImplementedError:  # hkmeans: the artifact cannot code new items
                arrays = {}
            if arrays:  # with its name and config (JSON bytes), rebuilt from those at load
                spec = {"name": self.tokenizer_.name, "config": self.tokenizer_.config.to_dict()}
                arrays["spec"] = np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8)
            state.update({f"tokenizer.{k}": v for k, v in arrays.items()})
        return state

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        state = dict(state)
        codes, sizes = state.pop("codebook.codes"), state.pop("codebook.sizes")
        tok = {
            k[len("tokenizer.") :]: state.pop(k) for k in list(state) if k.startswith("tokenizer.")
        }
        self.device_ = resolve_device(self.config.device)
        self._set_codebook(codes, sizes.tolist())
        self.tokenizer_ = None
        if tok:  # saved since 2026-12-08: the fitted tokenizer, to code new items
            try:
                spec = json.loads(np.asarray(tok.pop("spec"), dtype=np.uint8).tobytes())
                cls = get_tokenizer(spec["name"])
                config = cls.config_class.from_dict(spec["config"])
            except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
                msg = f"unreadable tokenizer spec in the artifact: {exc}"
                raise DataValidationError(msg) from exc
            self.tokenizer_ = cls.from_state_arrays(tok, config)
        super()._load_state_dict(state)
