"""Item text and item vectors for semantic-ID tokenizers.

``item_texts`` renders metadata with a documented template, ``embed_items`` embeds it with
the offline all-MiniLM-L6-v2 (extra ``text``) behind a disk cache, ``load_item_vectors`` reads
user-supplied vectors and ``collaborative_vectors`` takes a fitted model's item embeddings.
All vector functions return ``(n_items + 1, d)`` float32 with row 0 zeros.
"""

from genrec.text.embed import (
    DEFAULT_MODEL,
    TextEmbedder,
    check_item_vectors,
    collaborative_vectors,
    embed_items,
    embed_texts,
    free_cores,
    idle_cores,
    load_item_vectors,
    text_cache_root,
    texts_hash,
    torch_threads,
)
from genrec.text.items import ItemTexts, clean_text, format_item_text, item_texts

__all__ = [
    "DEFAULT_MODEL",
    "ItemTexts",
    "TextEmbedder",
    "check_item_vectors",
    "clean_text",
    "collaborative_vectors",
    "embed_items",
    "embed_texts",
    "format_item_text",
    "free_cores",
    "idle_cores",
    "item_texts",
    "load_item_vectors",
    "text_cache_root",
    "texts_hash",
    "torch_threads",
]
