"""Generic tabular loaders (CSV, Parquet) and the file helpers every loader shares.

:func:`load_csv` and :func:`load_parquet` map source column names onto the canonical ones in
:mod:`genrec.columns` (``user_id``, ``item_id``, ``timestamp``, ``weight``, ``rating``; item
tables ``item_id``, ``title``, ``genres``, ``year``, ``text``)::

    ds = load_csv("ratings.csv", columns={"userId": "user_id", "movieId": "item_id",
                                          "rating": "rating", "timestamp": "timestamp"})
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.data.dataset import Dataset
from genrec.errors import (
    DatasetUnavailableError,
    DataValidationError,
    GenrecTypeError,
    MissingExtraError,
)

PathLike = str | Path

INTERACTION_COLUMNS = (C.USER, C.ITEM, C.TIMESTAMP, C.WEIGHT, C.RATING)

# Source names recognised when no explicit mapping is given (lower-cased comparison).
_ALIASES: dict[str, tuple[str, ...]] = {
    C.USER: ("user_id", "userid", "user", "uid", "reviewerid", "customer_id", "visitorid"),
    C.ITEM: ("item_id", "itemid", "item", "iid", "movieid", "asin", "product_id", "business_id"),
    C.TIMESTAMP: ("timestamp", "time", "ts", "unixreviewtime", "datetime", "date"),
    C.WEIGHT: ("weight", "count", "play_count", "plays"),
    C.RATING: ("rating", "overall", "score", "stars"),
}

_INT_RE = re.compile(r"^-?(?:0|[1-9]\d*)$")


# ---------------------------------------------------------------------- shared file helpers
def find_file(root: PathLike, names: Sequence[str], *, depth: int = 2) -> Path | None:
    """First existing file among ``names`` in ``root`` or its subfolders (breadth first).

    Args:
        root: folder to search.
        names: candidate file names, in order of preference.
        depth: how many folder levels below ``root`` to look into (0 = only ``root``).

    Returns:
        The path, or ``None`` when no candidate exists.
    """
    root = Path(root)
    level = [root]
    for _ in range(depth + 1):
        for folder in level:
            for name in names:
                p = folder / name
                if p.is_file():
                    return p
        nxt: list[Path] = []
        for folder in level:
            try:
                nxt.extend(sorted(p for p in folder.iterdir() if p.is_dir()))
            except OSError:
                continue
        level = nxt
        if not level:
            break
    return None


def require_file(root: PathLike, names: Sequence[str], *, dataset: str, hint: str = "") -> Path:
    """Like :func:`find_file` but raise :class:`DatasetUnavailableError` naming the file.

    Args:
        root: folder to search.
        names: candidate file names (the first is named in the error).
        dataset: dataset name for the message.
        hint: extra sentence appended to the message.
    """
    path = find_file(root, names)
    if path is None:
        alts = " or ".join(repr(n) for n in names)
        raise DatasetUnavailableError(
            f"{dataset}: required file {alts} not found in data_dir={str(root)!r} "
            f"(or its subfolders).{(' ' + hint) if hint else ''}"
        )
    return path


def read_text(path: PathLike, *, encoding: str | None = None) -> str:
    """Whole file as text; ``.gz`` is decompressed; corrupt archives raise DataValidationError.

    Args:
        path: the file.
        encoding: text encoding; ``None`` tries UTF-8 and falls back to latin-1 (the
            encoding of the older GroupLens files).
    """
    raw = read_bytes(path)
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise DataValidationError(
                f"{path} is not {encoding} text (byte {exc.start}: {exc.reason})"
            ) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_bytes(path: PathLike) -> bytes:
    """Raw (decompressed for ``.gz``) bytes; corrupt archives raise DataValidationError."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataValidationError(
            f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
            "delete it and fetch it again"
        ) from exc
    except FileNotFoundError as exc:
        raise DatasetUnavailableError(f"file not found: {path}") from exc


def iter_records(path: PathLike) -> Iterator[dict[str, Any]]:
    """Dicts from a JSON-lines file, one per non-empty line (``.gz`` allowed).

    Lines that are not strict JSON are parsed as Python literals with
    :func:`ast.literal_eval` (the Amazon 2014 metadata is written that way); nothing is ever
    ``eval``-ed or unpickled.

    Raises:
        DataValidationError: on a corrupt archive or a line that is neither, naming the line.
    """
    for lineno, line in enumerate(iter_lines(path), 1):
        line = line.strip()
        if not line:
            continue
        yield parse_record(line, path=path, lineno=lineno)


def iter_lines(path: PathLike, *, encoding: str = "utf-8") -> Iterator[str]:
    """Stream the lines of a text file (``.gz`` decompressed on the fly).

    Raises:
        DatasetUnavailableError: the file does not exist.
        DataValidationError: the archive is corrupt or truncated, naming the file.
    """
    path = Path(path)
    try:
        fh = (
            gzip.open(path, "rt", encoding=encoding)  # noqa: SIM115 - closed below
            if path.suffix == ".gz"
            else open(path, encoding=encoding)  # noqa: SIM115
        )
    except FileNotFoundError as exc:
        raise DatasetUnavailableError(f"file not found: {path}") from exc
    with fh:
        try:
            yield from fh
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataValidationError(
                f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
                "delete it and fetch it again"
            ) from exc
        except UnicodeDecodeError as exc:
            raise DataValidationError(f"{path} is not {encoding} text: {exc}") from exc


def parse_record(line: str, *, path: PathLike = "?", lineno: int = 0) -> dict[str, Any]:
    """One JSON (or Python-literal) object; DataValidationError names file and line."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        try:
            rec = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise DataValidationError(
                f"{path}, line {lineno}: not a JSON or Python-literal object: {line[:80]!r}"
            ) from exc
    if not isinstance(rec, dict):
        raise DataValidationError(
            f"{path}, line {lineno}: expected an object, got {type(rec).__name__}"
        )
    return rec


def coerce_ids(values: pd.Series | np.ndarray | Sequence[Any]) -> np.ndarray:
    """Integer ids when every value is a plain integer string, else strings (object array).

    Ids with leading zeros (ISBN-style ASINs such as ``"0001713353"``) stay strings, so
    nothing is silently renumbered.
    """
    s = pd.Series(values)
    if s.dtype == object and s.map(lambda v: isinstance(v, (bytes, bytearray))).any():
        try:  # Parquet binary columns: ids must be numbers or text
            s = s.map(lambda v: v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else v)
        except UnicodeDecodeError as exc:
            raise DataValidationError(
                f"an id column holds binary values that are not UTF-8 text ({exc.reason}); "
                "ids must be numbers or text"
            ) from None
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(s.dtype):
        # whole numbers become ints only where the cast is exact (|v| < 2**53): 1e300 or inf
        # must not wrap around to some other, possibly shared, integer id
        exact = s.notna() & np.isfinite(s) & (s == np.floor(s)) & (s.abs() < 2**53)
        if exact.all():
            return s.to_numpy(dtype=np.int64)
        return s.to_numpy()
    strs = s.astype(str).str.strip()
    if len(strs) and strs.str.fullmatch(_INT_RE.pattern).all():
        try:
            return strs.astype(np.int64).to_numpy()
        except (OverflowError, ValueError):
            pass
    return strs.to_numpy(dtype=object)


def split_genres(value: Any) -> list[str]:
    """Genres as a clean list from ``"A|B"``, a list, or nested category paths (flattened,
    first occurrence kept, ``"(no genres listed)"`` dropped)."""
    out: list[str] = []

    def add(v: Any) -> None:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return
        if isinstance(v, str):
            for g in v.split("|"):
                g = g.strip()
                if g and g != "(no genres listed)" and g not in out:
                    out.append(g)
        elif isinstance(v, (list, tuple, np.ndarray)):
            for x in v:
                add(x)
        else:
            add(str(v))

    add(value)
    return out


# ---------------------------------------------------------------------- column mapping
def _resolve_mapping(
    available: Sequence[str],
    columns: Mapping[str, str] | None,
    *,
    what: str,
    path: PathLike,
    required: Sequence[str],
    aliases: Mapping[str, Sequence[str]] | None,
) -> dict[str, str]:
    """source -> canonical mapping, validated against the file's columns."""
    available = [str(c) for c in available]
    if columns is not None and not isinstance(columns, Mapping):
        raise GenrecTypeError(
            f"columns must be a mapping {{source name: canonical name}}, got "
            f"{type(columns).__name__}, e.g. columns={{'userId': 'user_id', 'movieId': 'item_id'}}"
        )
    if columns is not None:
        missing = [src for src in columns if src not in available]
        if missing:
            raise DataValidationError(
                f"{what} file {str(path)!r} has no column(s) {missing} (from the columns= "
                f"mapping); available columns: {available}"
            )
        mapping = {str(k): str(v) for k, v in columns.items()}
        # canonical columns already present and not mapped are kept as they are
        for col in available:
            if col in (aliases or {}) and col not in mapping and col not in mapping.values():
                mapping[col] = col
    else:
        mapping = {}
        lower = {c.lower(): c for c in available}
        for target, names in (aliases or {}).items():
            for n in names:
                if n in lower and lower[n] not in mapping:
                    mapping[lower[n]] = target
                    break
    targets = set(mapping.values())
    lacking = [r for r in required if r not in targets]
    if lacking:
        raise DataValidationError(
            f"{what} file {str(path)!r}: no column for {lacking}; available columns: "
            f"{available}. Pass columns={{'<source name>': '<canonical name>', ...}}, e.g. "
            f"columns={{{available[0]!r}: {lacking[0]!r}}}"
            if available
            else f"{what} file {str(path)!r} has no columns"
        )
    return mapping


def _finish_interactions(
    df: pd.DataFrame, *, copy: bool = True, ids_done: bool = False
) -> pd.DataFrame:
    if copy:
        df = df.copy()
    for col in (C.USER, C.ITEM):
        if not ids_done and col in df.columns and df[col].notna().all():
            df[col] = coerce_ids(df[col])
    if C.TIMESTAMP in df.columns:
        ts = df[C.TIMESTAMP]
        if isinstance(ts.dtype, pd.DatetimeTZDtype):  # the Dataset wants naive UTC
            df[C.TIMESTAMP] = ts.dt.tz_convert("UTC").dt.tz_localize(None)
            return df
        if not pd.api.types.is_numeric_dtype(ts) and not pd.api.types.is_datetime64_any_dtype(ts):
            num = pd.to_numeric(ts, errors="coerce")
            if num.notna().all():
                df[C.TIMESTAMP] = num
            else:
                try:
                    parsed = pd.to_datetime(ts, utc=True, format="mixed")
                    df[C.TIMESTAMP] = parsed.dt.tz_localize(None)
                except (ValueError, TypeError) as exc:
                    raise DataValidationError(
                        f"column 'timestamp' is neither unix time nor a date: "
                        f"{ts.iloc[0]!r} ({exc})"
                    ) from exc
    return df


def _finish_items(items: pd.DataFrame) -> pd.DataFrame:
    items = items.copy()
    if items[C.ITEM].notna().all():
        items[C.ITEM] = coerce_ids(items[C.ITEM])
    if C.GENRES in items.columns:
        items[C.GENRES] = [split_genres(g) for g in items[C.GENRES].tolist()]
    if C.YEAR in items.columns:
        items[C.YEAR] = pd.to_numeric(items[C.YEAR], errors="coerce").astype("Int64")
    return items


_ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    C.ITEM: _ALIASES[C.ITEM],
    C.TITLE: ("title", "name"),
    C.GENRES: ("genres", "genre", "categories", "category"),
    C.YEAR: ("year",),
    C.TEXT: ("text", "description"),
}


def _item_mapping(
    available: Sequence[str], item_columns: Mapping[str, str] | None, path: PathLike
) -> dict[str, str]:
    mapping = _resolve_mapping(
        available,
        item_columns,
        what="item",
        path=path,
        required=[C.ITEM],
        aliases=_ITEM_ALIASES,
    )
    if item_columns is None:  # keep the other columns of the item table as they are
        for col in available:
            if col not in mapping and col not in mapping.values():
                mapping[col] = col
    return mapping


# ---------------------------------------------------------------------- public loaders
def load_csv(
    path: PathLike,
    columns: Mapping[str, str] | None = None,
    sep: str = ",",
    items_path: PathLike | None = None,
    item_columns: Mapping[str, str] | None = None,
    name: str | None = None,
    *,
    header: bool = True,
    names: Sequence[str] | None = None,
    items_sep: str | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """Load interactions (and optionally an item table) from delimited text files.

    Args:
        path: interactions file (``.gz``/``.zip`` compressed files are fine).
        columns: mapping from source column names to canonical names, e.g.
            ``{"userId": "user_id", "movieId": "item_id"}``. ``None`` recognises common
            names (``user_id``/``userId``/``user``, ``item_id``/``movieId``/``asin``,
            ``timestamp``, ``rating``, ``weight`` ...). Unmapped columns are dropped.
        sep: field separator (``"\\t"`` for TSV).
        items_path: optional item table file (same separator unless ``items_sep``).
        item_columns: mapping for the item table (needs a column mapped to ``item_id``);
            ``None`` recognises common names and keeps every other column as it is.
        name: dataset name (defaults to the file stem).
        header: whether the file has a header row; without one pass ``names``.
        names: column names for a header-less file.
        items_sep: separator of the item file (defaults to ``sep``).
        encoding: text encoding.

    Returns:
        A :class:`~genrec.data.dataset.Dataset`.

    Raises:
        DatasetUnavailableError: when a file does not exist.
        DataValidationError: when mapped columns are missing (the message lists the available
            ones) or the data is malformed.
    """
    path = Path(path)
    opts = {"sep": sep, "encoding": encoding}
    available = _peek_columns(path, header=header, names=names, **opts)
    mapping = _resolve_mapping(
        available,
        columns,
        what="interactions",
        path=path,
        required=[C.USER, C.ITEM],
        aliases=_ALIASES,
    )
    mapping = {s: d for s, d in mapping.items() if d in INTERACTION_COLUMNS}
    frame = _read_delimited(
        path,
        header=header,
        names=names,
        usecols=list(mapping),
        ids=[s for s, d in mapping.items() if d in (C.USER, C.ITEM)],
        **opts,
    )
    items = None
    if items_path is not None:
        ipath = Path(items_path)
        iopts = {"sep": items_sep or sep, "encoding": encoding}
        imap = _item_mapping(
            _peek_columns(ipath, header=True, names=None, **iopts), item_columns, ipath
        )
        iframe = _read_delimited(
            ipath,
            header=True,
            names=None,
            usecols=list(imap),
            ids=[s for s, d in imap.items() if d == C.ITEM],
            **iopts,
        )
        items = _finish_items(iframe[list(imap)].rename(columns=imap))
    return _dataset_from_frame(frame, mapping, path, items, name or _stem(path))


def load_parquet(
    path: PathLike,
    columns: Mapping[str, str] | None = None,
    items_path: PathLike | None = None,
    item_columns: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Dataset:
    """Load interactions (and optionally an item table) from Parquet files.

    Args:
        path: interactions file (or a folder of Parquet parts).
        columns: mapping from source column names to canonical names (see :func:`load_csv`).
        items_path: optional item table Parquet file.
        item_columns: mapping for the item table.
        name: dataset name (defaults to the file stem).

    Returns:
        A :class:`~genrec.data.dataset.Dataset`.

    Raises:
        MissingExtraError: when pyarrow is not installed.
        DatasetUnavailableError: when a file does not exist.
        DataValidationError: on missing mapped columns or malformed data.
    """
    path = Path(path)
    dataset = _open_parquet(path)
    mapping = _resolve_mapping(
        list(dataset.schema.names),
        columns,
        what="interactions",
        path=path,
        required=[C.USER, C.ITEM],
        aliases=_ALIASES,
    )
    mapping = {s: d for s, d in mapping.items() if d in INTERACTION_COLUMNS}
    items = None
    if items_path is not None:
        ipath = Path(items_path)
        iframe = _read_parquet(ipath)
        imap = _item_mapping([str(c) for c in iframe.columns], item_columns, ipath)
        items = _finish_items(iframe[list(imap)].rename(columns=imap))
    arrays = _scan_parquet(dataset, path, list(mapping), ids=[
        s for s, d in mapping.items() if d in (C.USER, C.ITEM)
    ])  # fmt: skip
    df = pd.DataFrame({dst: arrays.pop(src) for src, dst in mapping.items()}, copy=False)
    if len(df) == 0:
        raise DataValidationError(f"interactions file {str(path)!r} has no rows")
    df = _finish_interactions(df, copy=False, ids_done=True)
    return Dataset(df, items, name=name or _stem(path))


def _dataset_from_frame(
    frame: pd.DataFrame,
    mapping: Mapping[str, str],
    path: Path,
    items: pd.DataFrame | None,
    name: str,
) -> Dataset:
    df = pd.DataFrame({dst: frame[src].to_numpy() for src, dst in mapping.items()})
    if len(df) == 0:
        raise DataValidationError(f"interactions file {str(path)!r} has no rows")
    df = _finish_interactions(df)
    return Dataset(df, items, name=name)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".zip", ".bz2", ".xz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return Path(name).stem or name


def _csv_errors(path: Path, exc: Exception) -> DataValidationError:
    if isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)):
        return DataValidationError(
            f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
            "delete it and fetch it again"
        )
    if isinstance(exc, pd.errors.EmptyDataError):
        return DataValidationError(f"{path} is empty")
    if isinstance(exc, UnicodeDecodeError):
        return DataValidationError(
            f"{path} is not {exc.encoding} text (byte {exc.start}: {exc.reason}); re-save it as "
            "UTF-8 or pass encoding= (e.g. 'latin-1') to load_csv"
        )
    return DataValidationError(f"{path} could not be parsed: {' '.join(str(exc).split())}")


def _check_text_file(path: Path) -> None:
    """Refuse a folder or a binary file where delimited text is expected (a NUL byte in the
    first 8 KiB; UTF-16 text counts as binary here, it needs encoding=)."""
    if path.is_dir():
        raise DataValidationError(f"{path} is a folder; give the path of a CSV/TSV file")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                head = fh.read(8192)
        else:
            with open(path, "rb") as fh:
                head = fh.read(8192)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _csv_errors(path, exc) from exc
    except OSError as exc:
        raise DataValidationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if b"\x00" in head:
        raise DataValidationError(f"{path} is a binary file, not delimited text (CSV/TSV in UTF-8)")


_CSV_FAILURES = (
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
    pd.errors.EmptyDataError,
    pd.errors.ParserError,
    UnicodeDecodeError,
)


def _peek_columns(
    path: Path, *, sep: str, header: bool, names: Sequence[str] | None, encoding: str
) -> list[str]:
    if not path.exists():
        raise DatasetUnavailableError(f"file not found: {str(path)!r}")
    _check_text_file(path)
    if not header:
        if names is None:
            raise DataValidationError(
                f"{path}: header=False needs names=[...] for the columns (then map them "
                "with columns={...} if they are not canonical)"
            )
        return [str(n) for n in names]
    try:
        head = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding)
    except _CSV_FAILURES as exc:
        raise _csv_errors(path, exc) from exc
    return [str(c) for c in head.columns]


def _read_delimited(
    path: Path,
    *,
    sep: str,
    header: bool,
    names: Sequence[str] | None,
    encoding: str,
    usecols: Sequence[str],
    ids: Sequence[str],
) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            names=list(names) if names is not None else None,
            usecols=list(usecols),
            dtype={c: str for c in ids},
            encoding=encoding,
            low_memory=False,
        )
    except _CSV_FAILURES as exc:
        raise _csv_errors(path, exc) from exc


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DatasetUnavailableError(f"file not found: {str(path)!r}")
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            "reading Parquet needs the optional package 'pyarrow': pip install 'genrec[parquet]'"
        ) from exc
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataValidationError(f"{path} is not a readable Parquet file: {exc}") from exc


# ---------------------------------------------------------------------- Parquet, by batches
# Rows per record batch read at a time: the raw data in memory at once is one batch (plus
# the output arrays, allocated once at their final size from the row count in the metadata).
PARQUET_BATCH_ROWS = 1 << 20


def _pyarrow_dataset() -> Any:
    try:
        import pyarrow.dataset as pads
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            "reading Parquet needs the optional package 'pyarrow': pip install 'genrec[parquet]'"
        ) from exc
    return pads


def _open_parquet(path: Path) -> Any:
    """A pyarrow dataset over a Parquet file or a folder of parts (hive partitions become
    columns, as with ``pandas.read_parquet``); nothing is read but the metadata."""
    if not path.exists():
        raise DatasetUnavailableError(f"file not found: {str(path)!r}")
    pads = _pyarrow_dataset()
    try:
        return pads.dataset(str(path), format="parquet", partitioning="hive")
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataValidationError(f"{path} is not a readable Parquet file: {exc}") from exc


class _Column:
    """One output column filled batch by batch.

    Fixed-width numbers and times go straight into a preallocated array of the final length
    (an integer column with nulls turns float64 with NaN, as pandas reads it). Strings are
    dictionary-encoded per batch: only each batch's distinct values and int32 codes are
    kept, and the column becomes references to one object per distinct value (ids given in
    ``ids`` are also normalised on those distinct values, see :func:`coerce_ids`). Anything
    else is collected as pandas pieces and concatenated (the in-memory path).
    """

    def __init__(self, name: str, n_rows: int, arrow_type: Any, is_id: bool):
        import pyarrow as pa

        self.name, self.n, self.is_id = name, n_rows, is_id
        self.pos = 0
        t = arrow_type
        if pa.types.is_dictionary(t):
            t = t.value_type
        self.kind = "pieces"
        self.values: np.ndarray | None = None
        if pa.types.is_integer(t) and not pa.types.is_dictionary(arrow_type):
            self.kind, self.values = "fixed", np.empty(n_rows, dtype=np.int64)
        elif pa.types.is_floating(t) and not pa.types.is_dictionary(arrow_type):
            self.kind, self.values = "fixed", np.empty(n_rows, dtype=np.float64)
        elif pa.types.is_timestamp(t) and not pa.types.is_dictionary(arrow_type):
            self.kind = "fixed"
            self.values = np.empty(n_rows, dtype=f"datetime64[{t.unit}]")
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            self.kind = "strings"
        self.uniques: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.pieces: list[pd.Series] = []

    def add(self, arr: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        n = len(arr)
        if self.kind == "fixed":
            assert self.values is not None
            if arr.null_count and self.values.dtype.kind == "i":  # like pandas: float + NaN
                self.values = self.values.astype(np.float64)
            self.values[self.pos : self.pos + n] = arr.to_numpy(zero_copy_only=False)
        elif self.kind == "strings":
            enc = pc.dictionary_encode(arr) if not pa.types.is_dictionary(arr.type) else arr
            self.uniques.append(enc.dictionary.to_numpy(zero_copy_only=False))
            self.codes.append(
                enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
            )
        else:
            self.pieces.append(arr.to_pandas())
        self.pos += n

    def finish(self) -> np.ndarray | pd.Series:
        if self.kind == "fixed":
            assert self.values is not None
            values = self.values
            self.values = None
            if self.is_id and values.dtype.kind == "f" and not np.isnan(values).any():
                return coerce_ids(values)
            return values
        if self.kind == "strings":
            return self._finish_strings()
        if not self.pieces:
            return pd.Series([], dtype=object)
        series = pd.concat(self.pieces, ignore_index=True)
        self.pieces = []
        if self.is_id and series.notna().all():
            return coerce_ids(series)
        return series

    def _finish_strings(self) -> np.ndarray:
        # one global code per distinct string over all batches
        all_uniques = np.concatenate(self.uniques) if self.uniques else np.zeros(0, dtype=object)
        codes, distinct = pd.factorize(all_uniques)
        offsets = np.cumsum([0] + [len(u) for u in self.uniques])
        has_null = any((c < 0).any() for c in self.codes)
        table = np.asarray(distinct, dtype=object)
        if self.is_id and not has_null:
            table = np.asarray(coerce_ids(table))  # normalise the distinct values once
        if has_null:
            table = np.append(table, None)  # code -1 -> None (the Dataset names the gap)
        out = np.empty(self.pos, dtype=table.dtype)
        start = 0
        for b, local in enumerate(self.codes):
            glob = codes[offsets[b] : offsets[b + 1]].astype(np.int64)
            glob = np.append(glob, len(table) - 1) if has_null else glob
            out[start : start + len(local)] = table[glob[local]]
            start += len(local)
        self.uniques, self.codes = [], []
        return out


def _scan_parquet(
    dataset: Any, path: Path, columns: Sequence[str], ids: Sequence[str]
) -> dict[str, np.ndarray | pd.Series]:
    """Read ``columns`` of a pyarrow dataset batch by batch into one array per column."""
    import pyarrow as pa

    try:
        n_rows = dataset.count_rows()
        schema = dataset.schema
        cols = {
            c: _Column(c, n_rows, schema.field(c).type, c in ids) for c in columns
        }  # fmt: skip
        for batch in dataset.to_batches(
            columns=list(columns),
            batch_size=PARQUET_BATCH_ROWS,
            batch_readahead=0,
            fragment_readahead=0,
            use_threads=False,  # keeps the row order of the file
        ):
            for c in columns:
                cols[c].add(batch.column(c))
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataValidationError(f"{path} is not a readable Parquet file: {exc}") from exc
    return {c: col.finish() for c, col in cols.items()}


def read_table_bytes(data: bytes, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` over in-memory bytes (used by the ``::``-separated GroupLens files)."""
    return pd.read_csv(io.BytesIO(data), **kwargs)
