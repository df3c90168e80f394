"""Semantic-ID tokenizers: item vectors -> :class:`ItemCodebook`."""

from genrec.tokenizers.codebook import ItemCodebook

__all__ = ["ItemCodebook"]
