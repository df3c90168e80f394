"""The output of every semantic-ID tokenizer: :class:`ItemCodebook`.

A codebook assigns each catalogue item (internal ids ``1..n_items``) a tuple of ``L`` code
tokens; level ``l`` takes values ``0..codebook_sizes[l] - 1``. Row 0 of :attr:`codes` is the
padding item and holds ``-1``. After collision handling (TIGER) every item's tuple is
unique. The artifact is a folder with ``codebook.json`` (sizes, item ids, metadata) and
``codes.safetensors``; no pickle.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrec.errors import ArtifactError, DataValidationError
from genrec.paths import atomic_dir, follow_umask, prepare_output_dir, to_jsonable

FORMAT_VERSION = 1


def check_unique_ids(item_ids: Sequence[Any]) -> None:
    """Raise :class:`DataValidationError` naming the ids that ``item_ids`` repeats."""
    if len(set(item_ids)) != len(item_ids):
        dups = [i for i, n in Counter(item_ids).items() if n > 1]
        raise DataValidationError(
            f"duplicate item ids in the codebook ({len(dups)} ids more than once, e.g. "
            f"{[*dups[:3]]}): each item needs exactly one code tuple"
        )


class ItemCodebook:
    """Semantic IDs of a catalogue.

    Args:
        codes: ``(n_items + 1, L)`` int64; row 0 (padding) is ``-1``.
        codebook_sizes: ``L`` sizes; ``codes[:, l] < codebook_sizes[l]``.
        item_ids: external item ids in internal-id order (length ``n_items``), used to
            check that a codebook belongs to a dataset's catalogue.
        meta: free-form provenance (tokenizer name, config, statistics).
    """

    def __init__(
        self,
        codes: np.ndarray,
        codebook_sizes: Sequence[int],
        item_ids: Sequence[Any] | None = None,
        meta: dict[str, Any] | None = None,
    ):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[0] < 2:
            raise DataValidationError(f"codes must be (n_items + 1, L), got shape {codes.shape}")
        sizes = [int(s) for s in codebook_sizes]
        if len(sizes) != codes.shape[1]:
            raise DataValidationError(
                f"{len(sizes)} codebook sizes for codes with {codes.shape[1]} levels"
            )
        body = codes[1:]
        if (body < 0).any() or any((body[:, lvl] >= s).any() for lvl, s in enumerate(sizes)):
            raise DataValidationError("codes out of range of their codebook sizes")
        if item_ids is not None and len(item_ids) != codes.shape[0] - 1:
            raise DataValidationError(
                f"{len(item_ids)} item ids for {codes.shape[0] - 1} coded items"
            )
        if item_ids is not None:
            check_unique_ids(item_ids)
        codes = codes.copy()
        codes[0] = -1
        self.codes = codes
        self.codebook_sizes = sizes
        self.item_ids = None if item_ids is None else list(item_ids)
        self.meta = dict(meta or {})

    @property
    def n_items(self) -> int:
        return self.codes.shape[0] - 1

    @property
    def n_levels(self) -> int:
        return self.codes.shape[1]

    def is_unique(self) -> bool:
        """Whether every item has its own code tuple."""
        return len(np.unique(self.codes[1:], axis=0)) == self.n_items

    def stats(self) -> dict[str, Any]:
        """Per-level utilisation and entropy (bits), collision rate and the largest collision
        group of the full tuples; ``collision_rate_before`` (before de-duplication) when the
        tokenizer recorded it in :attr:`meta`."""
        body = self.codes[1:]
        levels = []
        for lvl, size in enumerate(self.codebook_sizes):
            counts = np.bincount(body[:, lvl], minlength=size)
            p = counts[counts > 0] / counts.sum()
            levels.append(
                {
                    "size": size,
                    "used": int((counts > 0).sum()),
                    "utilisation": float((counts > 0).mean()),
                    "entropy_bits": float(-(p * np.log2(p)).sum()),
                    "max_entropy_bits": float(np.log2(size)),
                }
            )
        _, inverse, group = np.unique(body, axis=0, return_inverse=True, return_counts=True)
        collided = group[inverse.reshape(-1)] > 1
        out = {
            "n_items": self.n_items,
            "n_levels": self.n_levels,
            "levels": levels,
            "collision_rate": float(collided.mean()),
            "max_collision_group": int(group.max()),
            "unique": bool(group.max() == 1),
        }
        # Tokenizers record the rate before their de-duplication level (TIGER) in meta.
        for key in ("collision_rate_before", "max_collision_group_before"):
            if key in self.meta:
                out[key] = self.meta[key]
        return out

    def check_catalogue(self, item_ids: Sequence[Any]) -> None:
        """Raise unless this codebook was built for exactly these external item ids."""
        if self.item_ids is None:
            return
        if len(item_ids) != len(self.item_ids) or any(
            str(a) != str(b) for a, b in zip(item_ids, self.item_ids)
        ):
            raise DataValidationError(
                "this codebook was built for another catalogue (item ids differ); "
                "fit the tokenizer on this dataset's items"
            )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``codebook.json`` + ``codes.safetensors`` atomically.

        ``path`` must be new, an empty folder, or (with ``overwrite=True``) a codebook genrec
        saved earlier; anything else raises :class:`~genrec.paths.OutputPathError`."""
        from safetensors.numpy import save_file

        path = prepare_output_dir(path, "codebook", overwrite=overwrite)
        meta = {
            "format_version": FORMAT_VERSION,
            "codebook_sizes": self.codebook_sizes,
            "item_ids": self.item_ids,
            "meta": self.meta,
        }
        with atomic_dir(path, kind="codebook") as tmp:
            save_file({"codes": np.ascontiguousarray(self.codes)}, str(tmp / "codes.safetensors"))
            follow_umask(tmp / "codes.safetensors")
            (tmp / "codebook.json").write_text(json.dumps(to_jsonable(meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ItemCodebook:
        """Load a folder written by :meth:`save`."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        try:
            meta = json.loads((path / "codebook.json").read_text())
            codes = load_file(str(path / "codes.safetensors"))["codes"]
        except FileNotFoundError as exc:
            raise ArtifactError(f"codebook at {path} is incomplete: {exc.filename}") from None
        except (json.JSONDecodeError, SafetensorError, KeyError, OSError) as exc:
            raise ArtifactError(f"codebook at {path} is corrupt: {exc}") from exc
        return cls(codes, meta["codebook_sizes"], meta.get("item_ids"), meta.get("meta"))
