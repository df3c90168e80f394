"""Building a generator's code table: fit a tokenizer into an ``L``-deep
:class:`~genrec.tokenizers.ItemCodebook` (:func:`fit_codebook`), TIGER's random-ID control
(:func:`random_codebook`), and the health statistics of a code table that may hold uncoded
items (:func:`codebook_health`).

``L`` counts TIGER's collision level (Rajput et al. 2023, Sec. 3.1): a tokenizer fits
``L - 1`` semantic levels, and colliding tuples are numbered in a last level
(:func:`genrec.tokenizers.collisions.deduplicate`); without collisions a constant last level
keeps the depth at ``L``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from genrec.errors import ConfigError
from genrec.tokenizers.base import SemanticIDTokenizer, get_tokenizer
from genrec.tokenizers.codebook import ItemCodebook
from genrec.tokenizers.collisions import collision_groups, deduplicate


def codebook_health(codes: np.ndarray, sizes: Sequence[int]) -> dict[str, float | int]:
    """Health of a code table ``(n_items + 1, L)`` (row 0 padding, ``-1`` = uncoded item, the
    last level the collision level), flat for ``results.json``.

    Returns:
        ``n_coded_items``; ``codebook_utilisation_l{l}`` and ``code_entropy_bits_l{l}`` per
        level (from :meth:`ItemCodebook.stats`); ``items_per_prefix_l{l}`` (mean items per
        distinct semantic prefix of length ``l``); ``collision_rate_before_dedup`` (share of
        items whose semantic tuple is shared), ``max_items_per_semantic_id``,
        ``dedup_level_size`` and ``dedup_items`` (items with a non-zero collision code).
    """
    body = np.asarray(codes)[1:]
    body = body[(body >= 0).all(1)]  # coded items
    out: dict[str, float | int] = {"n_coded_items": int(len(body))}
    if len(body) == 0:  # nothing coded: no statistics to give
        return out
    table = np.concatenate([np.full((1, body.shape[1]), -1), body])
    for lvl, level in enumerate(ItemCodebook(table, sizes).stats()["levels"]):
        out[f"codebook_utilisation_l{lvl + 1}"] = level["utilisation"]
        out[f"code_entropy_bits_l{lvl + 1}"] = level["entropy_bits"] + 0.0  # no -0.0
    L = body.shape[1]
    sem = body[:, : L - 1] if L > 1 else body
    for depth in range(1, sem.shape[1] + 1):
        n_prefixes = len(np.unique(sem[:, :depth], axis=0))
        out[f"items_per_prefix_l{depth}"] = len(body) / max(n_prefixes, 1)
    group, group_sizes = collision_groups(sem)
    out["collision_rate_before_dedup"] = float((group_sizes[group] > 1).mean()) if L > 1 else 0.0
    out["max_items_per_semantic_id"] = int(group_sizes.max())
    out["dedup_level_size"] = int(sizes[-1]) if L > 1 else 0
    out["dedup_items"] = int((body[:, -1] > 0).sum()) if L > 1 else 0
    return out


def fit_codebook(
    name: str,
    vectors: np.ndarray,
    item_ids: Sequence[Any] | None,
    *,
    n_levels: int,
    codebook_size: int,
    seed: int = 0,
    collaborative: np.ndarray | None = None,
    cooccurrence: np.ndarray | None = None,
    **options: Any,
) -> ItemCodebook:
    """Fit the ``name`` tokenizer (:func:`genrec.tokenizers.get_tokenizer`) the way TIGER does
    at fit time and return an ``n_levels``-deep :class:`ItemCodebook` (for
    ``codebook_path``).

    ``n_levels`` counts the collision level: the tokenizer fits ``n_levels - 1`` semantic
    levels of ``codebook_size`` codes; when no item tuples collide, a constant collision level
    keeps the depth at ``n_levels``. ``options`` go to the tokenizer's config (e.g.
    ``balanced=True`` for ``rkmeans``, ``epochs=...`` for ``rqvae``). ``name="random"`` gives
    :func:`random_codebook`, exactly what ``TIGER(codebook="random")`` builds (the vectors
    only count the items).

    Args:
        name: tokenizer name (``rqvae``, ``rkmeans``, ``hkmeans``, ``random``, ...).
        vectors: ``(n_items + 1, d)`` item vectors, row 0 the padding row.
        item_ids: external item ids in internal order (recorded, checked at load).
        n_levels: code tokens per item, collision level included.
        codebook_size: codes per semantic level.
        seed: tokenizer seed.
        collaborative: ``(n_items + 1, d_cf)`` collaborative item vectors (e.g. the
            :meth:`~genrec.core.recommender.Recommender.item_embeddings` of ALS or SASRec fitted on
            the training split) for tokenizers that align with them: ``rqvae`` with
            ``cf_weight > 0`` (LETTER's collaborative regulariser) or with ``cooc_weight > 0``
            and ``cooc_target="collaborative"`` (the co-occurrence alignment's targets).
        cooccurrence: ``(P, 2)`` internal ids of items consumed one after the other in the
            training histories (:func:`genrec.tokenizers.quality.transitions`), for ``rqvae``
            with ``cooc_weight > 0`` (the co-occurrence alignment).

    Raises:
        ConfigError: ``collaborative`` or ``cooccurrence`` for a tokenizer that does not use
            it.
    """
    if name == "random":  # TIGER's own random-ID control, not the registry's hashing one
        given = {"collaborative": collaborative, "cooccurrence": cooccurrence}
        extra = [key for key, value in given.items() if value is not None]
        if options or extra:
            got = sorted(options) + extra
            raise ConfigError(f"the random codebook takes no options, got {got}")
        n = len(vectors) - 1
        return random_codebook(n, n_levels, codebook_size, seed, item_ids)
    return fit_tokenizer(
        name, vectors, item_ids, n_levels=n_levels, codebook_size=codebook_size, seed=seed,
        collaborative=collaborative, cooccurrence=cooccurrence, **options,
    )[1]  # fmt: skip


def fit_tokenizer(
    name: str,
    vectors: np.ndarray,
    item_ids: Sequence[Any] | None,
    *,
    n_levels: int,
    codebook_size: int,
    seed: int = 0,
    collaborative: np.ndarray | None = None,
    cooccurrence: np.ndarray | None = None,
    **options: Any,
) -> tuple[SemanticIDTokenizer, ItemCodebook]:
    """:func:`fit_codebook` for a registered tokenizer, returning the fitted tokenizer too:
    its :meth:`~genrec.tokenizers.base.SemanticIDTokenizer.encode` codes new items later
    (continuous training) without refitting. Arguments as :func:`fit_codebook`'s."""
    tokenizer = get_tokenizer(name)(
        n_levels=max(n_levels - 1, 1), codebook_size=codebook_size, seed=seed, **options
    )
    cfg = tokenizer.config
    cooc = getattr(cfg, "cooc_weight", 0) > 0
    inputs: dict[str, Any] = {}
    if collaborative is not None:
        if not (
            getattr(cfg, "cf_weight", 0) > 0
            or (cooc and getattr(cfg, "cooc_target", None) == "collaborative")
        ):
            raise ConfigError(
                f"collaborative vectors were given but the {name} tokenizer does not use them "
                "(only rqvae with cf_weight > 0, or cooc_weight > 0 and "
                "cooc_target='collaborative', does)"
            )
        inputs["collaborative"] = collaborative
    if cooccurrence is not None:
        if not cooc:
            raise ConfigError(
                f"co-occurring item pairs were given but the {name} tokenizer does not use "
                "them (only rqvae with cooc_weight > 0 does)"
            )
        inputs["cooccurrence"] = cooccurrence
    cb = tokenizer.fit(vectors, item_ids, **inputs)
    if cb.n_levels == n_levels - 1:  # no collisions: a constant collision level
        codes = np.concatenate([cb.codes, np.zeros((len(cb.codes), 1), np.int64)], 1)
        cb = ItemCodebook(codes, [*cb.codebook_sizes, 1], cb.item_ids, cb.meta)
    return tokenizer, cb


def random_codebook(
    n_items: int, n_levels: int, codebook_size: int, seed: int, item_ids: Sequence[Any] | None
) -> ItemCodebook:
    """A random :class:`ItemCodebook`: ``n_levels - 1`` uniform levels of ``codebook_size``
    codes and a collision level numbering items that share a tuple (TIGER Sec. 3.1, its
    random-ID ablation). ``n_levels == 1``: a random permutation (unique codes need
    ``codebook_size >= n_items``)."""
    rng = np.random.default_rng(seed)
    if n_levels == 1:
        if codebook_size < n_items:
            raise ConfigError(
                f"one level of {codebook_size} codes cannot give {n_items} items unique IDs"
            )
        body = rng.permutation(codebook_size)[:n_items, None]
        sizes = [codebook_size]
    else:
        sem = rng.integers(0, codebook_size, size=(n_items, n_levels - 1))  # (n, L - 1)
        body, extra = deduplicate(sem)  # numbers items within each group of equal tuples
        if not extra:  # every tuple unique: a constant collision level
            body = np.concatenate([sem, np.zeros((n_items, 1), np.int64)], axis=1)
        sizes = [codebook_size] * (n_levels - 1) + [max(extra, 1)]
    codes = np.concatenate([np.full((1, n_levels), -1), body]).astype(np.int64)
    return ItemCodebook(codes, sizes, item_ids, meta={"tokenizer": "random", "seed": seed})
