"""Semantic-ID tokenizers: item vectors -> :class:`ItemCodebook`.

``get_tokenizer(name)(config).fit(vectors)`` with ``name`` in ``rkmeans`` (residual k-means),
``hkmeans`` (hierarchical balanced k-means), ``rqvae`` (TIGER's RQ-VAE, LETTER optional) and
``random`` (control). Colliding code tuples get a TIGER de-duplication level by default.
"""

from genrec.tokenizers.base import (
    SemanticIDTokenizer,
    TokenizerConfig,
    get_tokenizer,
    list_tokenizers,
    register_tokenizer,
)
from genrec.tokenizers.build import (
    codebook_health,
    fit_codebook,
    fit_tokenizer,
    random_codebook,
)
from genrec.tokenizers.codebook import ItemCodebook
from genrec.tokenizers.collisions import collision_rate, deduplicate
from genrec.tokenizers.hkmeans import HKMeansConfig, HKMeansTokenizer
from genrec.tokenizers.random import RandomConfig, RandomTokenizer
from genrec.tokenizers.rkmeans import RKMeansConfig, RKMeansTokenizer, kmeans
from genrec.tokenizers.rqvae import RQVAEConfig, RQVAENetwork, RQVAETokenizer

__all__ = [
    "HKMeansConfig",
    "HKMeansTokenizer",
    "ItemCodebook",
    "RKMeansConfig",
    "RKMeansTokenizer",
    "RQVAEConfig",
    "RQVAENetwork",
    "RQVAETokenizer",
    "RandomConfig",
    "RandomTokenizer",
    "SemanticIDTokenizer",
    "TokenizerConfig",
    "codebook_health",
    "collision_rate",
    "deduplicate",
    "fit_codebook",
    "fit_tokenizer",
    "get_tokenizer",
    "kmeans",
    "list_tokenizers",
    "random_codebook",
    "register_tokenizer",
]
