"""Shared neural building blocks: transformer layers and training losses.

Models import from here so that SASRec, BERT4Rec, HSTU, TIGER, ... share one tested
implementation of attention masks, position embeddings and the sampled/full losses.
"""

from genrec.nn.losses import (
    bce_one_negative,
    full_softmax_ce,
    gbce,
    gbce_beta,
    sampled_softmax,
)
from genrec.nn.transformer import (
    FeedForward,
    MultiHeadSelfAttention,
    PositionEmbedding,
    TransformerBlock,
    TransformerEncoder,
    attention_mask,
)

__all__ = [
    "FeedForward",
    "MultiHeadSelfAttention",
    "PositionEmbedding",
    "TransformerBlock",
    "TransformerEncoder",
    "attention_mask",
    "bce_one_negative",
    "full_softmax_ce",
    "gbce",
    "gbce_beta",
    "sampled_softmax",
]
