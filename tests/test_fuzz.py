"""Property-based fuzzing of the input boundary (``hypothesis``, dev extra).

Mutated CSV, P5 and Parquet files and random config mappings must give either a valid result
(a :class:`~genrec.Dataset`, a config) or a genrec error (a :class:`GenrecError` subclass):
never any other exception (a ``KeyError``, an ``IndexError``, a pandas or pyarrow error from
inside).

The default run keeps a few hundred examples in all (``--hypothesis-profile`` is not needed);
the ``slow``-marked variants run the ``genrec-slow`` profile (``pytest -m slow``)::

    pytest -m slow tests/test_fuzz.py
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import math
import tempfile
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import genrec  # noqa: E402
from genrec.data.loaders.amazon import load_p5  # noqa: E402
from genrec.data.loaders.files import load_csv, load_parquet  # noqa: E402
from genrec.errors import GenrecError  # noqa: E402

# profiles: a short default run; `genrec-slow` for the slow-marked variants
settings.register_profile(
    "genrec-fast",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "genrec-slow",
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FAST = settings.get_profile("genrec-fast")
SLOW = settings.get_profile("genrec-slow")


def _accept(fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``'s result, or ``None`` when it raised a genrec error; anything else fails."""
    try:
        return fn(*args, **kwargs)
    except GenrecError:
        return None


def _check_dataset(ds: genrec.Dataset | None) -> None:
    """A dataset that loaded is usable: ids map both ways, the split runs or says why."""
    if ds is None:
        return
    assert ds.n_interactions > 0 and ds.n_users > 0 and ds.n_items > 0
    assert (ds.user_idx >= 1).all() and (ds.item_idx >= 1).all()
    assert np.isfinite(ds.weights).all()
    back = ds.user_map.to_internal(ds.user_map.external_ids)
    assert (back == np.arange(1, ds.n_users + 1)).all()
    for method in ("loo", "ratio"):
        _accept(genrec.split_dataset, ds, method)


# ---------------------------------------------------------------------- file mutations
_IDS = st.one_of(
    st.integers(-5, 40),
    st.text(alphabet="abcé👤 ,;\"'\n\t0123", min_size=0, max_size=4),
    st.sampled_from(["", "nan", "NaN", "None", "1.5", "1e3", "inf", "-0", "007", " 1"]),
)
_TIMES = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "2020-01-01", "yesterday", "1e308", "NaT", "12:00"]),
)


@st.composite
def _table(draw: Any) -> list[list[Any]]:
    n = draw(st.integers(1, 12))
    return [[draw(_IDS), draw(_IDS), draw(_TIMES)] for _ in range(n)]


@st.composite
def _mutated_bytes(draw: Any, base: bytes) -> bytes:
    """``base`` with a few random edits: byte flips, cuts, insertions, NULs, repeats."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "nul", "repeat", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "nul":
            data[pos:pos] = b"\x00"
        elif kind == "repeat":
            data += data[pos:]
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


def _csv_bytes(rows: list[list[Any]], header: list[str], sep: str) -> bytes:
    frame = pd.DataFrame(rows, columns=header)
    return frame.to_csv(index=False, sep=sep).encode("utf-8")


def _fuzz_csv(data: Any) -> None:
    rows = data.draw(_table())
    header = data.draw(
        st.sampled_from(
            [
                ["user_id", "item_id", "timestamp"],
                ["userId", "movieId", "rating"],
                ["user_id", "item_id", "weight"],
                ["a", "item_id", "timestamp"],
                ["user_id", "user_id", "item_id"],
            ]
        )
    )
    sep = data.draw(st.sampled_from([",", "\t", ";"]))
    raw = data.draw(_mutated_bytes(_csv_bytes(rows, header, sep)))
    suffix = data.draw(st.sampled_from([".csv", ".csv.gz"]))
    if suffix == ".csv.gz":
        raw = (
            data.draw(_mutated_bytes(gzip.compress(raw)))
            if data.draw(st.booleans())
            else (gzip.compress(raw))
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(raw)
        _check_dataset(_accept(load_csv, path, sep=sep))
        _check_dataset(_accept(genrec.load_dataset, str(path), sep=sep))


@FAST
@given(st.data())
def test_fuzz_csv(data):
    _fuzz_csv(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_fuzz_csv_slow(data):
    _fuzz_csv(data)


# ---------------------------------------------------------------------- P5 layout
def _p5_files(data: Any) -> dict[str, bytes]:
    n_users = data.draw(st.integers(1, 6))
    lines = []
    for u in range(1, n_users + 1):
        seq = data.draw(st.lists(st.integers(1, 15), min_size=0, max_size=8))
        lines.append(" ".join(str(x) for x in [u, *seq]))
    seq_bytes = data.draw(_mutated_bytes(("\n".join(lines) + "\n").encode()))
    files = {"sequential_data.txt": seq_bytes}
    if data.draw(st.booleans()):
        maps = {
            "id2user": {str(u): f"U{u}" for u in range(1, n_users + 1)},
            "id2item": {str(i): f"I{i}" for i in range(1, 16)},
        }
        raw = json.dumps(maps).encode()
        raw = gzip.compress(data.draw(_mutated_bytes(raw)))
        files["datamaps.json.gz"] = (
            data.draw(_mutated_bytes(raw)) if data.draw(st.booleans()) else raw
        )
    if data.draw(st.booleans()):
        items = [{"item_id": i, "title": f"title {i}"} for i in range(1, 16)]
        raw = "\n".join(json.dumps(x) for x in items).encode()
        files["items.jsonl"] = data.draw(_mutated_bytes(raw))
    return files


def _fuzz_p5(data: Any) -> None:
    files = _p5_files(data)
    with tempfile.TemporaryDirectory() as tmp:
        for name, raw in files.items():
            (Path(tmp) / name).write_bytes(raw)
        _check_dataset(_accept(load_p5, tmp, name="amazon-beauty"))


@FAST
@given(st.data())
def test_fuzz_p5(data):
    _fuzz_p5(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_fuzz_p5_slow(data):
    _fuzz_p5(data)


# ---------------------------------------------------------------------- Parquet
_COLUMN = st.one_of(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=8),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=8),
    st.lists(st.text(max_size=5), min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=1, max_size=8),
    st.lists(st.datetimes(), min_size=1, max_size=8),
    st.lists(st.binary(max_size=4), min_size=1, max_size=8),
)


def _fuzz_parquet(data: Any) -> None:
    pytest.importorskip("pyarrow")
    names = data.draw(
        st.lists(
            st.sampled_from(["user_id", "item_id", "timestamp", "rating", "weight", "x"]),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    columns = [data.draw(_COLUMN) for _ in names]
    n = min(len(c) for c in columns)
    frame = pd.DataFrame({name: col[:n] for name, col in zip(names, columns)})
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf)
    except Exception:  # a column pyarrow cannot store: not an input genrec can be given
        return
    raw = buf.getvalue()
    if data.draw(st.booleans()):
        raw = data.draw(_mutated_bytes(raw))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        path.write_bytes(raw)
        _check_dataset(_accept(load_parquet, path))


@FAST
@given(st.data())
def test_fuzz_parquet(data):
    _fuzz_parquet(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_fuzz_parquet_slow(data):
    _fuzz_parquet(data)


# ---------------------------------------------------------------------- configs
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["nan", "inf", "-1", "1e-3", "0", "1", "ce", "bce", "random", "auto"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=5,
)


def _fuzz_config(data: Any) -> None:
    name = data.draw(st.sampled_from(genrec.list_models()))
    cls = genrec.get_model(name).config_class
    fields = [f.name for f in dataclasses.fields(cls)]
    keys = st.one_of(st.sampled_from(fields), st.text(max_size=8))
    mapping = data.draw(st.dictionaries(keys, _VALUES, max_size=4))
    config = _accept(cls.from_dict, mapping)
    if config is None:
        return
    # a config that was accepted is finite, typed and round-trips
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if hints[f.name] in (int, float):
            assert not isinstance(value, bool) and math.isfinite(value), (f.name, value)
    assert cls.from_dict(config.to_dict()) == config


@FAST
@given(st.data())
def test_fuzz_config(data):
    _fuzz_config(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_fuzz_config_slow(data):
    _fuzz_config(data)


@FAST
@given(st.binary(max_size=200))
def test_fuzz_config_yaml_file(raw):
    """Whatever bytes a --config file holds: a mapping, or a ConfigError naming the file."""
    from genrec.config import load_yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_bytes(raw)
        try:
            data = load_yaml(path)
        except GenrecError as exc:
            assert str(path) in str(exc)
        else:
            assert isinstance(data, dict) and all(isinstance(k, str) for k in data)


# ---------------------------------------------------------------------- what the fuzzers found
# Each of these raised something other than a GenrecError (or gave a silently wrong dataset)
# before it was fixed; they stay as plain regression tests.
def test_found_p5_datamaps_not_utf8(tmp_path):
    (tmp_path / "sequential_data.txt").write_text("1 1 2 3\n")
    (tmp_path / "datamaps.json.gz").write_bytes(gzip.compress(b'\x80{"id2user": {}}'))
    with pytest.raises(genrec.errors.DataValidationError, match=r"datamaps\.json\.gz.*utf-8"):
        load_p5(tmp_path, name="amazon-beauty")  # was: UnicodeDecodeError


def test_found_parquet_binary_ids(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    pd.DataFrame({"user_id": [0], "item_id": [b"\x80"]}).to_parquet(path)
    with pytest.raises(genrec.errors.DataValidationError, match="binary values"):
        load_parquet(path)  # was: UnicodeDecodeError from pandas' astype(str)
    pd.DataFrame({"user_id": [0, 0], "item_id": [b"ab", b"cd"]}).to_parquet(path)
    assert load_parquet(path).item_map.to_list() == ["ab", "cd"]  # UTF-8 bytes are text


def test_found_weight_beyond_float32():
    frame = pd.DataFrame({"user_id": [1], "item_id": [2], "weight": [3.4028235677973366e38]})
    with pytest.raises(genrec.errors.DataValidationError, match="float32 range"):
        genrec.Dataset(frame)  # was: accepted, with an infinite float32 weight


def test_found_huge_float_ids_do_not_wrap_around():
    from genrec.data.loaders.files import coerce_ids

    # was: cast to int64, 1e300 and 2e300 both became -2**63 (two users merged into one)
    ids = coerce_ids(pd.Series([1e300, 2e300, 1.0]))
    assert len(set(ids.tolist())) == 3
    assert coerce_ids(pd.Series([3.0, 1.0])).dtype == np.int64  # exact whole numbers: ints
    with pytest.raises(genrec.errors.DataValidationError, match="non-finite id inf"):
        genrec.Dataset(pd.DataFrame({"user_id": [1.0], "item_id": [math.inf]}))


def test_found_datetimes_beyond_2262(tmp_path):
    """Parquet keeps microseconds; the old cast to nanoseconds overflowed past 2262."""
    import datetime as dt

    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    when = [dt.datetime(2263, 1, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 500000)]
    pd.DataFrame({"user_id": [0, 0], "item_id": [1, 2], "timestamp": when}).to_parquet(path)
    ds = load_parquet(path)  # was: pandas OutOfBoundsDatetime
    assert sorted(ds.timestamps.tolist()) == [-1, 9246182400]  # floored to seconds
