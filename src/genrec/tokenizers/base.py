"""Base class, config and registry of semantic-ID tokenizers.

A tokenizer maps item vectors ``(n_items + 1, d)`` (row 0 = padding, aligned with internal
item ids; from :mod:`genrec.text` or a trained model) to an :class:`ItemCodebook` of ``L``
code levels, the staged pipeline of TIGER (Rajput et al., NeurIPS 2023) and GRID
(snap-research): vectors -> tokenizer -> codes -> generator.

Subclasses implement ``_fit(x) -> codes`` and ``_encode(x) -> codes`` on the item rows
(without the padding row). :meth:`SemanticIDTokenizer.fit` validates input, de-duplicates
colliding tuples (:mod:`genrec.tokenizers.collisions`) and records provenance and statistics
in the codebook's ``meta``. :meth:`SemanticIDTokenizer.encode` gives new (cold-start) items
the semantic levels a fitted item with the same vector gets (without the catalogue-specific
de-duplication level).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from genrec.config import ModelConfig, field
from genrec.errors import DataValidationError, NotFittedError
from genrec.registry import Registry
from genrec.text.embed import torch_threads
from genrec.tokenizers.codebook import ItemCodebook, check_unique_ids
from genrec.tokenizers.collisions import collision_groups, deduplicate


@dataclass(frozen=True)
class TokenizerConfig(ModelConfig):
    """Fields shared by every tokenizer."""

    n_levels: int = field(3, "code levels L (before the de-duplication level)")
    codebook_size: int = field(256, "codes per level K")
    dedup: bool = field(True, "append a TIGER level that makes colliding code tuples unique")
    num_threads: int = field(0, "torch threads (0 = the idle cores, one per core)")

    def validate(self) -> None:
        self.positive("n_levels", "codebook_size")
        self.positive("num_threads", allow_zero=True)


T = TypeVar("T", bound="SemanticIDTokenizer")
#: the tokenizer registry (the same pattern as models and datasets: :class:`Registry`)
TOKENIZERS: Registry[type[SemanticIDTokenizer]] = Registry("tokenizer")


def register_tokenizer(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make a tokenizer available to :func:`get_tokenizer` as ``name``."""
    return TOKENIZERS.decorator(name)


def get_tokenizer(name: str) -> type[SemanticIDTokenizer]:
    """The tokenizer class registered as ``name`` (``rkmeans``, ``hkmeans``, ``rqvae``, ...)."""
    return TOKENIZERS.get(name)


def list_tokenizers() -> list[str]:
    """Names of the registered tokenizers."""
    return TOKENIZERS.names()


class SemanticIDTokenizer:
    """Estimator facade: ``fit(vectors) -> ItemCodebook``, ``encode(new_vectors) -> codes``.

    Args:
        config: the tokenizer's config (its ``config_class``); ``None`` = defaults.
        **overrides: config fields to override, e.g. ``codebook_size=64``.
    """

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[TokenizerConfig]] = TokenizerConfig

    def __init__(self, config: TokenizerConfig | None = None, **overrides: Any):
        config = config if config is not None else self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config.replace(**overrides) if overrides else config
        self.dim_: int | None = None
        self.codebook_: ItemCodebook | None = None

    # ------------------------------------------------------------------ public API
    def fit(
        self, vectors: np.ndarray, item_ids: Sequence[Any] | None = None, **kwargs: Any
    ) -> ItemCodebook:
        """Learn the codes of a catalogue.

        Args:
            vectors: ``(n_items + 1, d)`` item vectors; row 0 (padding) is ignored.
            item_ids: external item ids in internal-id order (length ``n_items``), stored in
                the codebook to check it against a dataset later.
            **kwargs: tokenizer-specific inputs (e.g. ``collaborative`` for RQ-VAE).

        Returns:
            The :class:`ItemCodebook` (also kept as ``codebook_``).

        Raises:
            DataValidationError: vectors are not a finite 2-D float array with at least two
                items, or ``item_ids`` has the wrong length or repeats an id.
        """
        x = self._check(vectors, what="vectors", padded=True)  # (n_items, d)
        if item_ids is not None and len(item_ids) != len(x):
            raise DataValidationError(
                f"{len(item_ids)} item ids for {len(x)} item vectors (vectors have a padding row 0)"
            )
        if item_ids is not None:
            check_unique_ids(item_ids)  # before training, not after
        self.dim_ = x.shape[1]
        start = time.perf_counter()
        with torch_threads(self.config.num_threads or None):
            codes = np.asarray(self._fit(x, **kwargs), dtype=np.int64)  # (n_items, L)
        sizes = list(self.level_sizes())
        group, group_sizes = collision_groups(codes)
        meta: dict[str, Any] = {
            "tokenizer": self.name,
            "config": self.config.to_dict(),
            "dim": self.dim_,
            "n_semantic_levels": codes.shape[1],
            "collision_rate_before": float((group_sizes[group] > 1).mean()),
            "max_collision_group_before": int(group_sizes.max()),
            "dedup_level": False,
        }
        if self.config.dedup:
            deduped, extra = deduplicate(codes)
            if extra:
                codes = deduped
                sizes.append(extra)
                meta["dedup_level"] = True
        meta["fit_seconds"] = round(time.perf_counter() - start, 3)
        meta.update(self._fit_meta())
        full = np.full((len(codes) + 1, codes.shape[1]), -1, dtype=np.int64)
        full[1:] = codes
        self.codebook_ = ItemCodebook(full, sizes, item_ids, meta)
        return self.codebook_

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """Semantic codes of new items (no padding row), the levels a fitted item gets.

        Args:
            vectors: ``(n, d)`` item vectors with the fitted ``d``.

        Returns:
            ``(n, n_levels)`` int64 (without the de-duplication level, which only exists
            relative to a catalogue).

        Raises:
            NotFittedError: before :meth:`fit`.
            DataValidationError: wrong shape or dtype.
        """
        if self.dim_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        x = self._check(vectors, what="new vectors", padded=False)
        if x.shape[1] != self.dim_:
            raise DataValidationError(
                f"new vectors have dimension {x.shape[1]}, the tokenizer was fitted on {self.dim_}"
            )
        with torch_threads(self.config.num_threads or None):
            return np.asarray(self._encode(x), dtype=np.int64)

    def level_sizes(self) -> list[int]:
        """Codebook size of each semantic level."""
        return [self.config.codebook_size] * self.config.n_levels

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (stored in safetensors artifacts, no pickle), from
        which :meth:`from_state_arrays` rebuilds a tokenizer whose :meth:`encode` gives the
        same codes: what a semantic-ID model keeps to code new items later.

        Raises:
            NotFittedError: before :meth:`fit`.
            NotImplementedError: the tokenizer cannot be stored this way (``hkmeans``).
        """
        if self.dim_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        return {"dim": np.asarray([self.dim_], dtype=np.int64), **self._state_arrays()}

    @classmethod
    def from_state_arrays(
        cls: type[T], arrays: dict[str, np.ndarray], config: TokenizerConfig | None = None
    ) -> T:
        """A fitted tokenizer from :meth:`state_arrays` and the config it was fitted with.

        Raises:
            DataValidationError: the arrays are not this tokenizer's state.
        """
        return cls(config).load_state_arrays(arrays)

    def load_state_arrays(self: T, arrays: dict[str, np.ndarray]) -> T:
        """Load :meth:`state_arrays` into this (unfitted) tokenizer; returns it.

        Raises:
            DataValidationError: the arrays are not this tokenizer's state.
        """
        arrays = dict(arrays)
        if "dim" not in arrays:
            raise DataValidationError(f"no 'dim' in the saved {self.name} tokenizer state")
        try:
            dim = np.asarray(arrays.pop("dim")).reshape(-1)
            if dim.size != 1:
                raise ValueError(f"'dim' must hold one number, got shape {dim.shape}")
            self.dim_ = int(dim[0])
            self._load_state_arrays(arrays)
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            self.dim_ = None
            raise DataValidationError(f"unusable {self.name} tokenizer state: {exc}") from exc
        return self

    # ------------------------------------------------------------------ subclass hooks
    def _fit(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _encode(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _fit_meta(self) -> dict[str, Any]:
        """Extra provenance for the codebook (e.g. training losses)."""
        return {}

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """The subclass's fitted state for :meth:`state_arrays` (stateless: nothing)."""
        raise NotImplementedError(f"the {self.name} tokenizer cannot be saved as arrays yet")

    def _load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`_state_arrays`."""
        raise NotImplementedError(f"the {self.name} tokenizer cannot be loaded from arrays yet")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check(vectors: Any, *, what: str, padded: bool) -> np.ndarray:
        if hasattr(vectors, "detach"):  # a torch tensor
            vectors = vectors.detach().cpu().numpy()
        arr = np.asarray(vectors)
        if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
            raise DataValidationError(f"{what} must be a numeric array, got dtype {arr.dtype}")
        if arr.ndim != 2:
            shape_hint = "(n_items + 1, d)" if padded else "(n, d)"
            raise DataValidationError(f"{what} must be 2-D {shape_hint}, got shape {arr.shape}")
        body = arr[1:] if padded else arr
        if padded and len(body) < 2:
            raise DataValidationError(
                f"{what} need row 0 (padding) and at least 2 items, got shape {arr.shape}"
            )
        if len(body) == 0 or arr.shape[1] == 0:
            raise DataValidationError(f"{what} are empty: shape {arr.shape}")
        body = body.astype(np.float32)
        if not np.isfinite(body).all():
            raise DataValidationError(f"{what} contain NaN or infinite values")
        return body
