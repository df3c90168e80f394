"""Amazon and Yelp: the P5 sequential layout and the McAuley Amazon review dumps.

**P5 layout** (``amazon-beauty``, ``amazon-sports``, ``amazon-toys``, ``yelp``), as
distributed with P5 / S3-Rec / TIGER-era code:

* ``sequential_data.txt`` (or ``.txt.gz``): one line per user, ``user_id item_id item_id ...``
  in chronological order, no timestamps. The timestamp of an interaction becomes its position
  in the user's sequence (0, 1, 2, ...), which preserves the order;
* ``items.jsonl.gz`` (optional): one JSON object per item with ``item_id`` and any of
  ``title`` / ``name`` (Yelp), ``categories`` (Amazon: list of category paths, flattened into
  ``genres``), ``asin`` / ``business_id`` and other fields (kept as they are);
* ``datamaps.json.gz`` (optional): the P5 id maps; ``id2user`` becomes a user table with the raw
  ``raw_user_id`` (reviewerID / Yelp user id).

**Amazon reviews 2014 / 2018** per-category files (``amazon-2014:<Category>``,
``amazon-2018:<Category>``): the ratings-only CSV (no header; 2014 ``user,item,rating,time``,
2018 ``item,user,rating,time``) or a reviews JSON-lines file (``reviewerID``, ``asin``,
``overall``, ``unixReviewTime``), plus ``meta_<Category>.json(.gz)`` (strict JSON in 2018,
Python-literal dicts in 2014, read with :func:`ast.literal_eval`; nothing is ever ``eval``-ed or
unpickled).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.data.dataset import Dataset
from genrec.data.loaders.download import RemoteFile, resolve_source
from genrec.data.loaders.files import (
    coerce_ids,
    find_file,
    iter_lines,
    iter_records,
    parse_record,
    read_text,
    split_genres,
)
from genrec.errors import ConfigError, DatasetUnavailableError, DataValidationError, suggest

PathLike = str | os.PathLike[str]

P5_HINT = (
    "The P5-format files (sequential_data.txt, datamaps.json, items) come with the P5 / "
    "S3-Rec data releases (e.g. github.com/jeykigung/P5, RUCAIBox/CIKM2020-S3Rec)."
)

P5_DATASETS: dict[str, dict[str, Any]] = {
    "amazon-beauty": {
        "description": "Amazon 2014 Beauty, 5-core, P5 sequential layout (titles, categories)",
        "folders": ("beauty", "Beauty"),
        "stats": {"n_users": 22_363, "n_items": 12_101, "n_interactions": 198_502},
    },
    "amazon-sports": {
        "description": "Amazon 2014 Sports_and_Outdoors, 5-core, P5 sequential layout",
        "folders": ("sports", "Sports", "Sports_and_Outdoors"),
        "stats": {"n_users": 35_598, "n_items": 18_357, "n_interactions": 296_337},
    },
    "amazon-toys": {
        "description": "Amazon 2014 Toys_and_Games, 5-core, P5 sequential layout",
        "folders": ("toys", "Toys", "Toys_and_Games"),
        "stats": {"n_users": 19_412, "n_items": 11_924, "n_interactions": 167_597},
    },
    "yelp": {
        "description": "Yelp (2019 reviews) as used by P5: business names and categories",
        "folders": ("Yelp",),
        "stats": {"n_users": 30_431, "n_items": 20_033, "n_interactions": 316_354},
    },
}

P5_SEQUENCE_FILES = ("sequential_data.txt", "sequential_data.txt.gz", "sequential.txt")
P5_ITEM_FILES = ("items.jsonl.gz", "items.jsonl", "items.json.gz")
P5_DATAMAP_FILES = ("datamaps.json.gz", "datamaps.json")

AMAZON_2014_CATEGORIES = (
    "Amazon_Instant_Video",
    "Apps_for_Android",
    "Automotive",
    "Baby",
    "Beauty",
    "Books",
    "CDs_and_Vinyl",
    "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry",
    "Digital_Music",
    "Electronics",
    "Grocery_and_Gourmet_Food",
    "Health_and_Personal_Care",
    "Home_and_Kitchen",
    "Kindle_Store",
    "Movies_and_TV",
    "Musical_Instruments",
    "Office_Products",
    "Patio_Lawn_and_Garden",
    "Pet_Supplies",
    "Sports_and_Outdoors",
    "Tools_and_Home_Improvement",
    "Toys_and_Games",
    "Video_Games",
)
AMAZON_2018_CATEGORIES = (
    "AMAZON_FASHION",
    "All_Beauty",
    "Appliances",
    "Arts_Crafts_and_Sewing",
    "Automotive",
    "Books",
    "CDs_and_Vinyl",
    "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry",
    "Digital_Music",
    "Electronics",
    "Gift_Cards",
    "Grocery_and_Gourmet_Food",
    "Home_and_Kitchen",
    "Industrial_and_Scientific",
    "Kindle_Store",
    "Luxury_Beauty",
    "Magazine_Subscriptions",
    "Movies_and_TV",
    "Musical_Instruments",
    "Office_Products",
    "Patio_Lawn_and_Garden",
    "Pet_Supplies",
    "Prime_Pantry",
    "Software",
    "Sports_and_Outdoors",
    "Tools_and_Home_Improvement",
    "Toys_and_Games",
    "Video_Games",
)
AMAZON_URLS = {
    2014: (
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/ratings_{cat}.csv",
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_{cat}.json.gz",
    ),
    2018: (
        "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2/categoryFilesSmall/{cat}.csv",
        "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2/metaFiles2/meta_{cat}.json.gz",
    ),
}
_RATING_COLUMNS = {
    2014: ["user", "item", "rating", "timestamp"],
    2018: ["item", "user", "rating", "timestamp"],
}
_ASIN_RE = re.compile(r"""["']asin["']\s*:\s*["']([^"']+)["']""")


# ---------------------------------------------------------------------- P5 layout
def load_p5(
    data_dir: PathLike | None = None,
    name: str = "p5",
    download: bool = False,
) -> Dataset:
    """Load a dataset in the P5 layout (see the module docstring).

    Args:
        data_dir: folder with ``sequential_data.txt`` (or a parent holding ``<name>/``);
            ``None`` looks in ``$GENREC_DATA_DIR/<name>`` and the cache.
        name: dataset name (``amazon-beauty``, ``yelp``...).
        download: accepted for symmetry; P5 files have no automatic download.

    Returns:
        The dataset; ``timestamp`` is the position in each user's sequence.

    Raises:
        DatasetUnavailableError: ``sequential_data.txt`` not found.
        DataValidationError: a file is corrupt or malformed.
    """
    spec = P5_DATASETS.get(name, {})
    folder = resolve_source(
        name,
        data_dir=data_dir,
        download=download,
        key_files=P5_SEQUENCE_FILES,
        folders=spec.get("folders", ()),
        manual_hint=P5_HINT,
    )
    seq_path = find_file(folder, P5_SEQUENCE_FILES, depth=0)
    assert seq_path is not None  # resolve_source found it
    inter = read_p5_sequences(seq_path)
    items = None
    item_path = find_file(folder, P5_ITEM_FILES, depth=0)
    if item_path is not None:
        items = read_p5_items(item_path)
        items[C.ITEM] = _align_ids(items[C.ITEM], inter[C.ITEM], item_path, "item")
    users = None
    map_path = find_file(folder, P5_DATAMAP_FILES, depth=0)
    if map_path is not None:
        maps = _read_json(map_path)
        id2user = maps.get("id2user") or {}
        if id2user:
            users = pd.DataFrame(
                {C.USER: list(id2user.keys()), "raw_user_id": list(id2user.values())}
            )
            users[C.USER] = _align_ids(users[C.USER], inter[C.USER], map_path, "user")
        id2item = maps.get("id2item") or {}
        if id2item:
            raw = pd.DataFrame(
                {C.ITEM: list(id2item.keys()), "raw_item_id": list(id2item.values())}
            )
            raw[C.ITEM] = _align_ids(raw[C.ITEM], inter[C.ITEM], map_path, "item")
            if items is None:
                items = raw
            elif not {"asin", "business_id"} & set(items.columns):
                items = items.merge(raw, on=C.ITEM, how="left")
    # the P5 files carry order only: the positions are not times (time-aware models skip them)
    return Dataset(inter, items, users, name=name, has_timestamps=False)


def read_p5_sequences(path: PathLike) -> pd.DataFrame:
    """Interactions from a P5 ``sequential_data.txt``: ``user_id``, ``item_id``, ``timestamp``.

    ``timestamp`` is the 0-based position in the user's sequence (a user listed on several
    lines continues counting). Integer ids stay integers.

    Raises:
        DataValidationError: empty or corrupt file.
    """
    path = Path(path)
    text = read_text(path)
    heads: list[str] = []
    lens: list[int] = []
    items: list[str] = []
    for line in text.splitlines():
        toks = line.split()
        if len(toks) < 2:
            continue
        heads.append(toks[0])
        lens.append(len(toks) - 1)
        items.extend(toks[1:])
    if not items:
        raise DataValidationError(
            f"{path} holds no sequences (expected lines 'user_id item_id item_id ...')"
        )
    users = coerce_ids(np.repeat(np.asarray(heads, dtype=object), lens))
    df = pd.DataFrame({C.USER: users, C.ITEM: coerce_ids(np.asarray(items, dtype=object))})
    df[C.TIMESTAMP] = df.groupby(C.USER, sort=False).cumcount().to_numpy(dtype=np.int64)
    return df


def read_p5_items(path: PathLike) -> pd.DataFrame:
    """Item table from a P5 ``items.jsonl.gz``.

    ``title`` falls back to ``name`` (Yelp); placeholder titles ``title_<item_id>`` become
    missing; ``categories`` (paths or a flat list) are flattened into ``genres``; other fields
    (``asin``, ``business_id``, ...) are kept.

    Raises:
        DataValidationError: corrupt archive, bad JSON line or a record without ``item_id``.
    """
    path = Path(path)
    rows = []
    for n, rec in enumerate(iter_records(path), 1):
        if "item_id" not in rec:
            raise DataValidationError(f"{path}: record {n} has no 'item_id': {str(rec)[:80]}")
        rows.append(rec)
    if not rows:
        raise DataValidationError(f"{path} holds no items")
    frame = pd.DataFrame(rows)
    out = pd.DataFrame({C.ITEM: frame["item_id"].to_numpy(dtype=object)})
    title = frame["title"] if "title" in frame.columns else None
    if "name" in frame.columns:
        title = frame["name"] if title is None else title.fillna(frame["name"])
    if title is not None:
        ids = out[C.ITEM].astype(str)
        placeholder = title.astype(object).eq("title_" + ids)
        out[C.TITLE] = title.astype(object).where(~placeholder, None).to_numpy(dtype=object)
    cat_col = next((c for c in ("categories", "category") if c in frame.columns), None)
    if cat_col is not None:
        out[C.GENRES] = [split_genres(v) for v in frame[cat_col].tolist()]
    for col in frame.columns:
        if col not in ("item_id", "title", "name") and col not in out.columns:
            out[col] = frame[col].to_numpy(dtype=object)
    return out


def _align_ids(ids: pd.Series, reference: pd.Series, path: Path, what: str) -> np.ndarray:
    """Give side-table ids the type of the interaction ids (int vs str)."""
    values = coerce_ids(ids)
    ref_int = pd.api.types.is_integer_dtype(np.asarray(reference).dtype)
    if ref_int and values.dtype.kind not in "iu":
        raise DataValidationError(
            f"{path}: {what} ids {list(values[:3])} are not integers like the sequence ids"
        )
    if not ref_int and values.dtype.kind in "iu":
        values = values.astype(str).astype(object)
    return values


def _read_json(path: Path) -> dict[str, Any]:
    text = read_text(path, encoding="utf-8")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataValidationError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DataValidationError(f"{path}: expected a JSON object")
    return data


# ---------------------------------------------------------------------- Amazon reviews
def load_amazon_reviews(
    ratings_path: PathLike,
    meta_path: PathLike | None = None,
    version: int = 2014,
    name: str | None = None,
) -> Dataset:
    """Load one category of the Amazon review data (McAuley et al., 2014 or 2018 release).

    Args:
        ratings_path: the ratings-only CSV (``ratings_<Cat>.csv`` in 2014: user, item,
            rating, time; ``<Cat>.csv`` in 2018: item, user, rating, time; no header), or a
            reviews JSON-lines file (``reviews_<Cat>_5.json.gz``, ``<Cat>_5.json.gz``).
        meta_path: optional ``meta_<Cat>.json(.gz)`` with ``asin``, ``title``,
            ``categories`` (2014) / ``category`` (2018), ``brand``, ``price``,
            ``description``. Only items that occur in the ratings are kept.
        version: 2014 or 2018 (decides the CSV column order).
        name: dataset name (defaults to ``amazon-<version>:<file stem>``).

    Returns:
        Interactions with string ids (reviewer ids, ASINs), ``rating`` and unix ``timestamp``;
        an item table with ``title``, ``genres`` (flattened categories), ``brand``, ``price``
        and ``text`` (the description) when metadata is given.

    Raises:
        ConfigError: unknown version.
        DatasetUnavailableError: a file does not exist.
        DataValidationError: malformed or corrupt files.
    """
    if version not in _RATING_COLUMNS:
        raise ConfigError(f"version must be 2014 or 2018, got {version!r}")
    ratings_path = Path(ratings_path)
    if not ratings_path.is_file():
        raise DatasetUnavailableError(f"ratings file not found: {str(ratings_path)!r}")
    base = ratings_path.name.split(".")[0]
    if name is None:
        cat = re.sub(r"^(ratings_|reviews_)", "", base)
        cat = re.sub(r"_5$", "", cat)
        name = f"amazon-{version}:{cat}"
    if ".json" in ratings_path.name:
        inter = _read_reviews_json(ratings_path)
    else:
        inter = _read_ratings_csv(ratings_path, version)
    items = None
    if meta_path is not None:
        meta_path = Path(meta_path)
        if not meta_path.is_file():
            raise DatasetUnavailableError(f"metadata file not found: {str(meta_path)!r}")
        items = read_amazon_meta(meta_path, keep=set(inter[C.ITEM].tolist()))
    return Dataset(inter, items, name=name)


def _read_ratings_csv(path: Path, version: int) -> pd.DataFrame:
    names = _RATING_COLUMNS[version]
    try:
        raw = pd.read_csv(
            path, header=None, names=names, dtype={"user": str, "item": str}, low_memory=False
        )
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataValidationError(f"{path} is corrupt or truncated ({exc})") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path} is empty") from exc
    except pd.errors.ParserError as exc:
        raise DataValidationError(f"{path} could not be parsed: {exc}") from exc
    rating = pd.to_numeric(raw["rating"], errors="coerce")
    ts = pd.to_numeric(raw["timestamp"], errors="coerce")
    if len(raw) and np.isnan(rating.iloc[0]) and np.isnan(ts.iloc[0]):  # a header row
        raw, rating, ts = raw.iloc[1:], rating.iloc[1:], ts.iloc[1:]
    bad = rating.isna() | ts.isna() | raw["user"].isna() | raw["item"].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"{path}: row {row + 1} is not '{','.join(names)}' with numeric rating and time: "
            f"{raw.iloc[row].tolist()} (is version={version} right?)"
        )
    if len(raw) == 0:
        raise DataValidationError(f"{path} holds no ratings")
    return pd.DataFrame(
        {
            C.USER: raw["user"].to_numpy(dtype=object),
            C.ITEM: raw["item"].to_numpy(dtype=object),
            C.RATING: rating.to_numpy(dtype=np.float64),
            C.TIMESTAMP: ts.to_numpy(dtype=np.int64),
        }
    )


def _read_reviews_json(path: Path) -> pd.DataFrame:
    users, items, ratings, times = [], [], [], []
    for n, rec in enumerate(iter_records(path), 1):
        try:
            users.append(str(rec["reviewerID"]))
            items.append(str(rec["asin"]))
            ratings.append(float(rec["overall"]))
            times.append(int(rec["unixReviewTime"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataValidationError(
                f"{path}: review {n} lacks reviewerID/asin/overall/unixReviewTime ({exc!r})"
            ) from exc
    if not users:
        raise DataValidationError(f"{path} holds no reviews")
    return pd.DataFrame(
        {
            C.USER: np.asarray(users, dtype=object),
            C.ITEM: np.asarray(items, dtype=object),
            C.RATING: np.asarray(ratings, dtype=np.float64),
            C.TIMESTAMP: np.asarray(times, dtype=np.int64),
        }
    )


def read_amazon_meta(path: PathLike, keep: Iterable[str] | None = None) -> pd.DataFrame:
    """Item table from an Amazon ``meta_<Category>.json(.gz)`` (2014 or 2018).

    Args:
        path: the metadata file; each line a JSON object or a Python-literal dict.
        keep: only these ASINs (lines of other items are skipped before full parsing).

    Returns:
        ``item_id`` (ASIN), ``title``, ``genres`` (flattened category paths), ``brand``,
        ``price`` (float, missing when absent or a range) and ``text`` (description).
    """
    path = Path(path)
    wanted = set(keep) if keep is not None else None
    rows = []
    for lineno, line in enumerate(iter_lines(path), 1):
        line = line.strip()
        if not line:
            continue
        if wanted is not None:
            m = _ASIN_RE.search(line)
            if m is not None and m.group(1) not in wanted:
                continue
        rec = parse_record(line, path=path, lineno=lineno)
        asin = rec.get("asin")
        if asin is None or (wanted is not None and str(asin) not in wanted):
            continue
        cats = rec.get("categories", rec.get("category"))
        desc = rec.get("description")
        if isinstance(desc, (list, tuple)):
            desc = " ".join(str(d) for d in desc if d)
        rows.append(
            {
                C.ITEM: str(asin),
                C.TITLE: rec.get("title") or None,
                C.GENRES: split_genres(cats),
                "brand": rec.get("brand") or None,
                "price": _price(rec.get("price")),
                C.TEXT: desc or None,
            }
        )
    cols = [C.ITEM, C.TITLE, C.GENRES, "brand", "price", C.TEXT]
    out = pd.DataFrame(rows, columns=cols)
    out[C.ITEM] = out[C.ITEM].astype(object)
    return out


def _price(value: Any) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*\$?\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*", str(value))
    return float(m.group(1).replace(",", "")) if m else float("nan")


def amazon_files(category: str, version: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Candidate (ratings, metadata) file names of one category."""
    if version == 2014:
        ratings = (
            f"ratings_{category}.csv",
            f"ratings_{category}.csv.gz",
            f"reviews_{category}_5.json.gz",
            f"reviews_{category}_5.json",
            f"reviews_{category}.json.gz",
            f"reviews_{category}.json",
        )
    else:
        ratings = (
            f"{category}.csv",
            f"{category}.csv.gz",
            f"{category}_5.json.gz",
            f"{category}_5.json",
            f"{category}.json.gz",
            f"{category}.json",
        )
    return ratings, (f"meta_{category}.json.gz", f"meta_{category}.json")


def canonical_category(category: str, version: int) -> str:
    """Known category spelled as published (case-insensitive match), else unchanged."""
    known = AMAZON_2014_CATEGORIES if version == 2014 else AMAZON_2018_CATEGORIES
    lower = {c.lower(): c for c in known}
    return lower.get(category.lower(), category)


def load_amazon_category(
    category: str,
    version: int = 2014,
    data_dir: PathLike | None = None,
    download: bool = False,
) -> Dataset:
    """Load ``amazon-<version>:<category>`` from ``data_dir`` (or the cache / a download).

    Args:
        category: e.g. ``"Beauty"`` (2014) or ``"All_Beauty"`` (2018).
        version: 2014 or 2018.
        data_dir: folder with the ratings file and optionally ``meta_<Category>.json.gz``.
        download: fetch the ratings CSV and metadata from the public mirrors when missing.

    Raises:
        DatasetUnavailableError: files missing (with a "did you mean" for unknown
            categories) or offline.
    """
    if version not in AMAZON_URLS:
        raise ConfigError(f"version must be 2014 or 2018, got {version!r}")
    category = canonical_category(category, version)
    name = f"amazon-{version}:{category}"
    known = AMAZON_2014_CATEGORIES if version == 2014 else AMAZON_2018_CATEGORIES
    ratings_names, meta_names = amazon_files(category, version)
    r_url, m_url = (u.format(cat=category) for u in AMAZON_URLS[version])
    hint = ""
    if category not in known:
        hint = (
            f"{category!r} is not a published {version} category.{suggest(category, known)} "
            f"Known: {', '.join(known)}"
        )
    folder = resolve_source(
        name,
        data_dir=data_dir,
        download=download and category in known,
        key_files=ratings_names,
        remotes=[RemoteFile(r_url), RemoteFile(m_url)] if category in known else [],
        manual_hint=hint,
        folders=(category, f"amazon-{version}-{category}"),
    )
    ratings_path = find_file(folder, ratings_names, depth=0)
    assert ratings_path is not None
    meta_path = find_file(folder, meta_names, depth=0)
    return load_amazon_reviews(ratings_path, meta_path, version=version, name=name)
