"""Item metadata -> one text per item, the input of the sentence embedder.

The template follows TIGER (Rajput et al., NeurIPS 2023, Sec. 4.1), which embeds "title,
price, brand and categories" of each Amazon product with a sentence encoder. Each present
field becomes one short clause, in a fixed order, and absent fields are left out::

    {title}. Brand: {brand}. Categories: {c1}, {c2}, ... Price: {price}. Year: {year}. {text}

HTML entities (``&amp;``, ``&#39;``, also double-escaped ``&amp;amp;``) are unescaped and
whitespace is collapsed. Categories come from the dataset's ``genres`` column (a list, nested
lists or a ``"|"`` string; Amazon ``categories`` are flattened into it by the loaders),
de-duplicated in order. An item with none of these fields gets ``"item <external id>"``
(counted in :attr:`ItemTexts.n_missing`), or :func:`item_texts` raises with
``on_missing="raise"``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.data.dataset import Dataset
from genrec.errors import DataValidationError

#: Fields read from the item table, in template order. ``genres`` also accepts
#: ``categories``; ``text`` also accepts ``description``.
TEMPLATE_FIELDS = ("title", "brand", "categories", "price", "year", "text")

_WS = re.compile(r"\s+")


def clean_text(value: Any) -> str:
    """Unescape HTML entities (twice, for double-escaped dumps) and collapse whitespace.

    Missing values (``None``, NaN) become ``""``.
    """
    if _is_missing(value):
        return ""
    text = html.unescape(html.unescape(str(value)))
    return _WS.sub(" ", text).strip()


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return value is pd.NA or value is pd.NaT


def _flatten(value: Any) -> list[str]:
    """Category lists: a list, nested lists (Amazon paths), or a ``"|"``-separated string."""
    if _is_missing(value):
        return []
    if isinstance(value, str):
        return [clean_text(v) for v in value.split("|")]
    if isinstance(value, (list, tuple, np.ndarray)):
        out: list[str] = []
        for v in value:
            out.extend(_flatten(v))
        return out
    return [clean_text(value)]


def _format_price(value: Any) -> str:
    if _is_missing(value):
        return ""
    try:
        price = float(str(value).replace("$", "").replace(",", "").strip())
    except ValueError:
        return clean_text(value)  # ranges such as "$5.00 - $9.00" stay as written
    return f"${price:.2f}" if math.isfinite(price) else ""


def _format_year(value: Any) -> str:
    if _is_missing(value):
        return ""
    try:
        year = float(value)
    except (TypeError, ValueError):
        return clean_text(value)
    return str(int(year)) if math.isfinite(year) else ""


def format_item_text(record: Mapping[str, Any]) -> str:
    """Render one item's metadata with the documented template (module docstring).

    Args:
        record: a mapping with any of ``title`` (or ``name``), ``brand``, ``genres`` /
            ``categories``, ``price``, ``year``, ``text`` / ``description``.

    Returns:
        The text, ``""`` when no field is present.
    """
    title = clean_text(record.get(C.TITLE, record.get("name")))
    brand = clean_text(record.get("brand"))
    cats_raw = record.get(C.GENRES)
    if _is_missing(cats_raw) or (isinstance(cats_raw, (list, tuple)) and not cats_raw):
        cats_raw = record.get("categories")
    cats = list(dict.fromkeys(c for c in _flatten(cats_raw) if c and c != "(no genres listed)"))
    price = _format_price(record.get("price"))
    year = _format_year(record.get(C.YEAR))
    body = clean_text(record.get(C.TEXT, record.get("description")))
    parts = []
    if title:
        parts.append(title.rstrip(".") + ".")
    if brand:
        parts.append(f"Brand: {brand}.")
    if cats:
        parts.append(f"Categories: {', '.join(cats)}.")
    if price:
        parts.append(f"Price: {price}.")
    if year:
        parts.append(f"Year: {year}.")
    if body:
        parts.append(body)
    return " ".join(parts)


@dataclass
class ItemTexts:
    """Texts of a catalogue in internal-id order.

    Attributes:
        texts: ``n_items`` strings; ``texts[i - 1]`` belongs to internal id ``i``.
        missing: internal ids whose metadata was empty (they got the fallback text).
    """

    texts: list[str]
    missing: np.ndarray

    @property
    def n_missing(self) -> int:
        """Number of items that fell back to ``"item <id>"``."""
        return len(self.missing)

    def __len__(self) -> int:
        return len(self.texts)


def item_texts(
    dataset: Dataset, *, on_missing: Literal["fallback", "raise"] = "fallback"
) -> ItemTexts:
    """Build every item's text from ``dataset.items`` (see the module docstring).

    Args:
        dataset: the catalogue; items absent from ``dataset.items`` count as missing.
        on_missing: ``"fallback"`` writes ``"item <external id>"`` for items without any
            metadata and counts them; ``"raise"`` raises instead.

    Returns:
        :class:`ItemTexts` with ``dataset.n_items`` texts in internal-id order.

    Raises:
        DataValidationError: ``on_missing="raise"`` and some items have no text.
        ValueError: an unknown ``on_missing``.
    """
    if on_missing not in ("fallback", "raise"):
        raise ValueError(f"on_missing must be 'fallback' or 'raise', got {on_missing!r}")
    n = dataset.n_items
    texts = [""] * n
    table = dataset.items
    if table is not None and len(table):
        idx = dataset.item_map.to_internal(table[C.ITEM].to_numpy(), missing="zero")
        for row, internal in zip(table.to_dict("records"), idx):
            if internal > 0:
                texts[internal - 1] = format_item_text(row)
    missing = np.array([i + 1 for i, t in enumerate(texts) if not t], dtype=np.int64)
    if len(missing):
        external = dataset.item_map.to_external(missing)
        if on_missing == "raise":
            shown = ", ".join(repr(_plain(v)) for v in external[:5])
            raise DataValidationError(
                f"{len(missing)} of {n} items have no title, brand, categories or text "
                f"(e.g. item ids {shown}); pass on_missing='fallback' to use 'item <id>'"
            )
        for internal, ext in zip(missing, external):
            texts[internal - 1] = f"item {_plain(ext)}"
    return ItemTexts(texts, missing)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def texts_from_records(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Template texts of ad-hoc item records (e.g. new, cold-start items)."""
    return [format_item_text(r) for r in records]
