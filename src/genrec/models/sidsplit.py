"""SID-split: semantic-ID generation split into a timeline model and an item decoder.

After the split in MARIUS (Lepage et al., 2025, "COSETTE + MARIUS"): one model follows the
user's *timeline* of items, a second, small one *decodes the next item's semantic ID* from
the timeline's state. TIGER (:mod:`genrec.models.tiger`) does both in one encoder-decoder:
its encoder reads the flattened code tokens of the last items, and every training target is
a separate encoder pass. Here:

* **timeline**: a causal transformer over *items* (SASRec's blocks,
  :class:`~genrec.nn.transformer.TransformerEncoder`), where an item's input is the sum of its
  ``L`` code-token embeddings: no item-id embedding, so the model stays a semantic-ID model
  and new items with codes are readable without new weights. One pass over a sequence gives
  the state after every position, so each sequence trains all its next-item targets at once
  (as SASRec does), not one per pass (as TIGER does);
* **item decoder**: TIGER's decoder blocks (:class:`~genrec.models.tiger.SemanticIDDecoder`),
  cross-attending to that one state, generate the ``L`` codes level by level. Its output
  layer is tied to the same code-token table.

Recommendation is TIGER's: the shared beam search with the semantic-ID trie as a constraint
(every decoded tuple is a real item; seen items and allow-lists enforced inside the search),
so the ranking is delivered by generation, never by an id scorer. Everything that rests on
the codes is inherited from :class:`~genrec.models.tiger.TIGER`: the fit-time codebook
(``codebook``, ``codebook_path``, ``item_vectors_path``), cold items (``cold_slots``,
:meth:`add_items`), exact scoring for the beam-vs-exact gap, diagnostics and the artifact.

Not from the MARIUS paper, documented: the timeline blocks are SASRec's (pre-LN, GELU, learned
right-aligned positions), there is no user token (``n_user_buckets`` must be 0), and the loss
is the decoder's cross-entropy per level, averaged over levels and positions. This is a
genrec design after the paper's idea, not a reproduction of its numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from genrec.config import field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.data.sequences import causal_batches, last_items, training_rows, trim_left_padding
from genrec.errors import ConfigError
from genrec.models.tiger import TIGER, DecoderBlock, SemanticIDDecoder, TIGERConfig
from genrec.nn.transformer import PositionEmbedding, TransformerEncoder, attention_mask
from genrec.registry import register_model
from genrec.training.neural import bucket_batches_field


@dataclass(frozen=True)
class SIDSplitConfig(TIGERConfig):
    """Config of :class:`SIDSplit`: TIGER's codebook, decoder and decoding fields, with the
    encoder fields describing the timeline."""

    embedding_dim: int = field(64, "size of code-token embeddings, timeline and decoder")
    n_encoder_layers: int = field(2, "causal self-attention blocks of the timeline over items")
    n_decoder_layers: int = field(1, "decoder blocks that generate the code tuple")
    n_heads: int = field(2, "attention heads (timeline and decoder)")
    head_dim: int = field(32, "size of each decoder attention head")
    ffn_dim: int = field(256, "feed-forward hidden size (timeline and decoder)")
    dropout: float = field(0.2, "dropout on embeddings, attention and sub-layer outputs")
    max_seq_len: int = field(50, "keep only the most recent max_seq_len items (left truncation)")
    n_user_buckets: int = field(0, "not used: the timeline has no user token (must be 0)")
    adam_beta2: float = field(0.98, "AdamW second-moment decay (0.98 as SASRec)")
    bucket_batches: int = bucket_batches_field()

    def validate(self) -> None:
        super().validate()
        if self.n_user_buckets:
            raise ConfigError(
                f"SIDSplitConfig.n_user_buckets must be 0 (the timeline has no user token), "
                f"got {self.n_user_buckets}"
            )
        if self.embedding_dim % self.n_heads:
            raise ConfigError(
                f"SIDSplitConfig.embedding_dim ({self.embedding_dim}) must be divisible by "
                f"n_heads ({self.n_heads}) for the timeline's attention"
            )


class SIDSplitNetwork(SemanticIDDecoder, nn.Module):
    """The pure SID-split network: a causal timeline over items and a code decoder.

    Args:
        codebook_sizes: ``V_l`` codes per level (``L`` levels).
        config: architecture fields of :class:`SIDSplitConfig`.
    """

    def __init__(self, codebook_sizes: Sequence[int], config: SIDSplitConfig):
        super().__init__()
        d = config.embedding_dim
        L = self._code_table(codebook_sizes, d)
        self.pos_emb = PositionEmbedding(config.max_seq_len, d)
        self.timeline = TransformerEncoder(
            config.n_encoder_layers, d, config.n_heads, config.ffn_dim, config.dropout
        )
        self.dec_pos = nn.Parameter(torch.zeros(L, d))
        self.bos = nn.Parameter(torch.zeros(d))
        # one memory key: attention dropout would drop the whole state, so none there
        self.decoder = nn.ModuleList(
            DecoderBlock(config, cross_dropout=False) for _ in range(config.n_decoder_layers)
        )
        self.dec_norm = nn.RMSNorm(d, eps=1e-6)
        self.drop = nn.Dropout(config.dropout)
        # unit-variance code tokens (tied output, T5 rescale), as TIGER; an item's input is the
        # sum of L of them, scaled back to unit variance
        nn.init.normal_(self.token_emb.weight, std=1.0)
        nn.init.normal_(self.bos, std=1.0)
        nn.init.normal_(self.dec_pos, std=0.02)
        with torch.no_grad():
            self.token_emb.weight[0].zero_()
        self.item_scale = L**-0.5

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Timeline states ``(B, T, D)`` of left-padded items given as code tokens
        ``(B, T, L)`` (0 = padding); position ``t`` sees items ``<= t`` only."""
        real = (tokens > 0).any(-1)  # (B, T)
        x = self.token_emb(tokens).sum(2) * self.item_scale  # (B, T, D)
        x = self.drop(self.pos_emb(x)) * real[..., None]  # padding inputs are zero
        return self.timeline(x, attention_mask(real, causal=True))  # (B, T, D)

    def state_memory(self, states: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """The decoder memory of user states ``(N, D)``: one key per row."""
        real = torch.ones(states.shape[0], 1, dtype=torch.bool, device=states.device)
        return self.memory(states[:, None], real)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training loss: the decoder's mean cross-entropy over levels and positions.

        Args:
            tokens: ``(B, T, L)`` code tokens of the input items (0 = padding).
            targets: ``(B, T, L)`` codes of the next item per position (-1 = no loss).

        Returns:
            The scalar loss.
        """
        h = self.encode(tokens)  # (B, T, D)
        valid = targets[..., 0] >= 0  # (B, T)
        y = targets[valid]  # (N, L)
        out = self.decode(y, self.state_memory(h[valid]))  # (N, L, D)
        return self.level_loss(out, y)


@register_model("sidsplit")
class SIDSplit(TIGER):
    """SID-split: a causal timeline over items and a small semantic-ID decoder (see the
    module docstring); decoding, codebook, cold items and artifacts as :class:`TIGER`.

    Training examples are every user's last ``max_seq_len + 1`` training items, with a loss
    at every non-padding position (teacher forcing of the next item's codes under the causal
    mask), as SASRec's.
    """

    summary = "Semantic IDs decoded from a causal timeline over items (after MARIUS)."

    config_class = SIDSplitConfig
    config: SIDSplitConfig

    def _build_network(self) -> SIDSplitNetwork:
        assert self.codebook_sizes_ is not None
        return SIDSplitNetwork(self.codebook_sizes_, self.config)

    def _item_tokens(self, items: torch.Tensor) -> torch.Tensor:
        """Code tokens ``(B, T, L)`` of item ids ``(B, T)`` (0 = padding -> all 0)."""
        assert self._codes_dev is not None and self.network_ is not None
        return self.network_.code_tokens(self._codes_dev[items])

    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterator[dict[str, torch.Tensor]]:
        hist = dataset.histories()
        cfg = self.config
        seqs = last_items(hist, training_rows(hist, min_len=2), cfg.max_seq_len + 1)
        for _, inputs, targets in causal_batches(
            seqs, cfg.batch_size, cfg.bucket_batches, generator
        ):
            yield {"inputs": inputs, "targets": targets}

    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self._codes_dev is not None
        targets = self._codes_dev[batch["targets"]]  # (B, T, L); padding item 0 -> -1
        return net(self._item_tokens(batch["inputs"]), targets)

    def _encode_batch(self, batch: HistoryBatch) -> list[tuple[torch.Tensor, ...]]:
        """The decoder memory of each user's state after their last item."""
        assert self.network_ is not None
        items = trim_left_padding(torch.from_numpy(batch.padded_sequences(self.config.max_seq_len)))
        h = self.network_.encode(self._item_tokens(items.to(self.device_)))  # (B, T, D)
        return self.network_.state_memory(h[:, -1])  # right-aligned: the last position
