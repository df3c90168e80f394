"""Tests for genrec.data.loaders: every file layout on tiny files, errors, downloads offline,
and the real copies in ../shared/data when present."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genrec.data.loaders import dataset_info, list_datasets, load_dataset
from genrec.data.loaders.amazon import load_amazon_reviews, load_p5
from genrec.data.loaders.download import RemoteFile, download_file, extract_zip
from genrec.data.loaders.files import load_csv, load_parquet
from genrec.data.loaders.movielens import load_movielens, split_title_year
from genrec.errors import (
    ConfigError,
    DatasetUnavailableError,
    DataValidationError,
    UnknownNameError,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the real cache or a user's GENREC_DATA_DIR."""
    monkeypatch.setenv("GENREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GENREC_DATA_DIR", raising=False)


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent")
    return path


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _write_gz(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


# ---------------------------------------------------------------------- movielens-small
def test_movielens_small_embedded_counts():
    ds = load_dataset("movielens-small")
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (100_004, 671, 9_066)
    assert ds.name == "movielens-small" and ds.has_timestamps
    assert {"rating", "timestamp"} <= set(ds.interactions.columns)
    assert ds.interactions["rating"].between(0.5, 5).all()
    items = ds.items.set_index("item_id")
    assert len(items) == 9_066
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert "Animation" in items.loc[1, "genres"] and isinstance(items.loc[1, "genres"], list)
    assert str(items["year"].dtype) == "Int64"
    assert ds.item_genres() is not None


def test_default_name_is_movielens_small():
    assert load_dataset().name == "movielens-small"


# ---------------------------------------------------------------------- GroupLens layouts
def _ml100k(folder: Path) -> Path:
    _write(folder / "u.data", "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t2\t4\t881250951\n")
    flags_toy = ["0"] * 19
    flags_toy[3] = flags_toy[4] = flags_toy[5] = "1"
    flags_unknown = ["1"] + ["0"] * 18
    _write(
        folder / "u.item",
        "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(flags_toy) + "\n"
        "2|Caf\xe9 Society (1995)|01-Jan-1995||http://y|" + "|".join(flags_unknown) + "\n",
        encoding="latin-1",
    )
    _write(folder / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    return folder


def test_movielens_100k_layout(tmp_path):
    _ml100k(tmp_path / "ml-100k")
    # data_dir may be the parent holding ml-100k/
    ds = load_dataset("movielens-100k", data_dir=tmp_path)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    items = ds.items.set_index("item_id")
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[2, "title"] == "Café Society"  # latin-1 decoded
    assert items.loc[2, "genres"] == []  # 'unknown' flag only
    assert ds.users.set_index("user_id").loc[2, "occupation"] == "other"
    assert ds.interactions["rating"].tolist() == [5.0, 3.0, 4.0]


def test_movielens_1m_dat_layout_latin1(tmp_path):
    folder = tmp_path / "ml-1m"
    _write(
        folder / "ratings.dat", "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n"
    )
    _write(
        folder / "movies.dat",
        "10::GoldenEye (1995)::Action|Adventure|Thriller\n20::Ma vie en rose (1997)::Comedy\n"
        "30::Misérables, Les (1995)::Drama\n",
        encoding="latin-1",
    )
    _write(folder / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_dataset("ml-1m", data_dir=folder)
    assert ds.name == "movielens-1m"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    items = ds.items.set_index("item_id")
    assert items.loc[10, "genres"] == ["Action", "Adventure", "Thriller"]
    assert items.loc[20, "year"] == 1997
    assert 30 not in items.index  # items without interactions are dropped
    assert ds.users.set_index("user_id").loc[2, "age"] == 56


def test_movielens_10m_zip_folder_name(tmp_path):
    folder = tmp_path / "ml-10M100K"
    _write(folder / "ratings.dat", "1::122::5::838985046\n1::185::4.5::838983525\n")
    _write(folder / "movies.dat", "122::Boomerang (1992)::Comedy|Romance\n")
    ds = load_movielens("10m", data_dir=tmp_path)
    assert ds.n_interactions == 2 and ds.interactions["rating"].tolist()[0] == 4.5
    assert ds.items.set_index("item_id").loc[122, "title"] == "Boomerang"


def test_movielens_latest_csv_layout(tmp_path):
    folder = tmp_path / "ml-latest-small"
    _write(
        folder / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n"
        "2,1,3.5,964982224\n",
    )
    _write(
        folder / "movies.csv",
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
        '3,"American President, The (1995) ",(no genres listed)\n'
        "4,Babylon 5,Sci-Fi\n",
    )
    ds = load_dataset("movielens-latest-small", data_dir=folder)
    items = ds.items.set_index("item_id")
    assert items.loc[3, "title"] == "American President, The"
    assert items.loc[3, "year"] == 1995 and items.loc[3, "genres"] == []
    assert ds.n_users == 2 and ds.n_items == 2


def test_split_title_year_edge_cases():
    titles, years = split_title_year(
        pd.Series(["Toy Story (1995)", "Babylon 5", "Fawlty Towers (1975-1979)", None])
    )
    assert list(titles) == ["Toy Story", "Babylon 5", "Fawlty Towers", ""]
    assert years[0] == 1995 and pd.isna(years[1]) and years[2] == 1975 and pd.isna(years[3])


# ---------------------------------------------------------------------- P5 layout
def _p5(folder: Path, *, gz: bool = False) -> Path:
    seq = "1 3 1 2\n2 2 3\n3 1 2 3 4\n"
    if gz:
        _write_gz(folder / "sequential_data.txt.gz", seq)
    else:
        _write(folder / "sequential_data.txt", seq)
    items = [
        {
            "item_id": 1,
            "asin": "B001",
            "title": "Nail Polish",
            "categories": [["Beauty", "Makeup", "Nails"]],
        },
        {
            "item_id": 2,
            "asin": "B002",
            "title": "title_2",
            "categories": [["Beauty", "Skin Care"], ["Beauty", "Makeup"]],
        },
        {"item_id": 3, "asin": "B003", "title": "Shampoo", "categories": [["Beauty", "Hair"]]},
        {"item_id": 4, "asin": "B004", "title": "Comb", "categories": []},
    ]
    _write_gz(folder / "items.jsonl.gz", "\n".join(json.dumps(r) for r in items) + "\n")
    maps = {
        "id2user": {"1": "AU1", "2": "AU2", "3": "AU3"},
        "id2item": {"1": "B001", "2": "B002", "3": "B003", "4": "B004"},
    }
    _write_gz(folder / "datamaps.json.gz", json.dumps(maps))
    return folder


def test_p5_sequences_items_and_datamaps(tmp_path):
    folder = _p5(tmp_path / "amazon-beauty")
    ds = load_dataset("amazon-beauty", data_dir=folder)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 4, 9)
    # order preserved: timestamp is the position in the sequence
    seqs = ds.sequences()
    u1 = ds.user_map.to_internal([1])[0]
    assert list(ds.item_map.to_external(seqs[u1])) == [3, 1, 2]
    assert ds.interactions.query("user_id == 3")["timestamp"].tolist() == [0, 1, 2, 3]
    items = ds.items.set_index("item_id")
    assert items.loc[2, "genres"] == ["Beauty", "Skin Care", "Makeup"]
    assert pd.isna(items.loc[2, "title"])  # placeholder title_<id> dropped
    assert items.loc[1, "asin"] == "B001"
    assert ds.item_titles()[ds.item_map.to_internal([1])[0]] == "Nail Polish"
    assert ds.users.set_index("user_id").loc[2, "raw_user_id"] == "AU2"


def test_p5_gz_sequences_yelp_names_and_parent_dir(tmp_path):
    folder = tmp_path / "yelp"
    _write_gz(folder / "sequential_data.txt.gz", "1 1 2\n2 2 1\n")
    rows = [
        {
            "item_id": 1,
            "business_id": "bz1",
            "name": "The Great Greek",
            "categories": ["Greek", "Restaurants"],
        },
        {"item_id": 2, "business_id": "bz2", "name": "Sal's Pizza", "categories": ["Pizza"]},
    ]
    _write_gz(folder / "items.jsonl.gz", "\n".join(json.dumps(r) for r in rows))
    ds = load_dataset("yelp", data_dir=tmp_path)  # the parent holding yelp/
    items = ds.items.set_index("item_id")
    assert items.loc[1, "title"] == "The Great Greek"
    assert items.loc[1, "genres"] == ["Greek", "Restaurants"]
    assert ds.n_interactions == 4


def test_p5_without_side_files(tmp_path):
    _write(tmp_path / "sequential_data.txt", "u1 a b\nu2 b\n")
    ds = load_p5(tmp_path, name="custom-p5")
    assert ds.items is None and ds.n_items == 2 and ds.name == "custom-p5"


def test_corrupt_gz_raises_data_validation_error(tmp_path):
    folder = _p5(tmp_path / "amazon-toys")
    data = (folder / "items.jsonl.gz").read_bytes()
    (folder / "items.jsonl.gz").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DataValidationError, match=r"items\.jsonl\.gz.*corrupt or truncated"):
        load_dataset("amazon-toys", data_dir=folder)


def test_garbage_gz_raises_data_validation_error(tmp_path):
    (tmp_path / "sequential_data.txt.gz").write_bytes(b"this is not gzip")
    with pytest.raises(DataValidationError, match="corrupt or truncated"):
        load_p5(tmp_path)


def test_bad_json_line_names_file_and_line(tmp_path):
    folder = _p5(tmp_path / "p")
    _write_gz(folder / "items.jsonl.gz", '{"item_id": 1}\n{not json\n')
    with pytest.raises(DataValidationError, match="line 2"):
        load_p5(folder)


# ---------------------------------------------------------------------- Amazon reviews
_META_2014 = (
    "{'asin': '0001713353', 'title': \"King's Cove\", 'price': 7.89, "
    "'categories': [['Beauty', 'Hair Care'], ['Beauty', 'Tools']], 'brand': 'Acme', "
    "'description': 'A comb.'}\n"
    "{'asin': 'B00XYZ', 'categories': [['Beauty']], 'salesRank': {'Beauty': 5}}\n"
    "{'asin': 'B00UNUSED', 'title': 'never rated', 'categories': [['Beauty']]}\n"
)


def test_amazon_2014_ratings_and_python_literal_meta(tmp_path):
    ratings = _write(
        tmp_path / "ratings_Beauty.csv",
        "A1,0001713353,5.0,1366761600\nA2,0001713353,3.0,1366761601\nA1,B00XYZ,4.0,1366761500\n",
    )
    meta = _write_gz(tmp_path / "meta_Beauty.json.gz", _META_2014)
    ds = load_amazon_reviews(ratings, meta, version=2014)
    assert ds.name == "amazon-2014:Beauty"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    assert "0001713353" in ds.item_map  # leading zeros kept: ids are strings
    items = ds.items.set_index("item_id")
    assert items.loc["0001713353", "title"] == "King's Cove"
    assert items.loc["0001713353", "genres"] == ["Beauty", "Hair Care", "Tools"]
    assert items.loc["0001713353", "price"] == pytest.approx(7.89)
    assert items.loc["0001713353", "text"] == "A comb."
    assert pd.isna(items.loc["B00XYZ", "title"])
    # the named pattern finds the same files in data_dir
    ds2 = load_dataset("amazon-2014:beauty", data_dir=tmp_path)
    assert ds2.name == "amazon-2014:Beauty" and ds2.n_interactions == 3


def test_amazon_2018_column_order_header_and_json_meta(tmp_path):
    _write(
        tmp_path / "All_Beauty.csv",
        "item,user,rating,timestamp\nI1,U1,5,1500000000\nI2,U1,4,1500000001\n",
    )
    meta = [
        {
            "asin": "I1",
            "title": "Soap",
            "category": ["All Beauty", "Soap"],
            "price": "$4.99",
            "description": ["Gentle", "soap"],
        },
        {"asin": "I2", "title": "Gel", "category": [], "price": "$1.00 - $2.00"},
    ]
    _write_gz(tmp_path / "meta_All_Beauty.json.gz", "\n".join(json.dumps(m) for m in meta))
    ds = load_dataset("amazon-2018:All_Beauty", data_dir=tmp_path)
    assert ds.n_users == 1 and ds.n_items == 2
    assert list(ds.user_map.external_ids) == ["U1"]
    items = ds.items.set_index("item_id")
    assert items.loc["I1", "price"] == pytest.approx(4.99) and np.isnan(items.loc["I2", "price"])
    assert items.loc["I1", "text"] == "Gentle soap"


def test_amazon_reviews_json_lines(tmp_path):
    rows = [
        {"reviewerID": "R1", "asin": "A", "overall": 5.0, "unixReviewTime": 10},
        {"reviewerID": "R1", "asin": "B", "overall": 2.0, "unixReviewTime": 5},
    ]
    path = _write_gz(tmp_path / "reviews_Beauty_5.json.gz", "\n".join(map(json.dumps, rows)))
    ds = load_amazon_reviews(path, version=2014)
    seq = ds.sequences()[1]
    assert list(ds.item_map.to_external(seq)) == ["B", "A"]


def test_amazon_wrong_version_layout_is_reported(tmp_path):
    path = _write(tmp_path / "ratings_Beauty.csv", "A1,I1,five,1366761600\n")
    with pytest.raises(DataValidationError, match="version=2014"):
        load_amazon_reviews(path, version=2014)
    with pytest.raises(ConfigError):
        load_amazon_reviews(path, version=2016)


# ---------------------------------------------------------------------- generic files
def test_csv_with_column_mapping_and_item_table(tmp_path):
    inter = _write(
        tmp_path / "log.tsv",
        "visitor\tproduct\twhen\tstars\textra\n"
        "u1\t007\t2024-01-02 10:00:00\t5\tx\nu1\t008\t2024-01-01 09:00:00\t3\ty\n"
        "u2\t007\t2024-01-03 00:00:00\t4\tz\n",
    )
    items = _write(tmp_path / "products.tsv", "sku\tname\ttags\n007\tBond\tspy|film\n")
    ds = load_csv(
        inter,
        columns={
            "visitor": "user_id",
            "product": "item_id",
            "when": "timestamp",
            "stars": "rating",
        },
        sep="\t",
        items_path=items,
        item_columns={"sku": "item_id", "name": "title", "tags": "genres"},
    )
    assert ds.name == "log" and ds.n_interactions == 3
    assert set(ds.item_map.external_ids) == {"007", "008"}  # leading zeros preserved
    seq = ds.sequences()[ds.user_map.to_internal(["u1"])[0]]
    assert list(ds.item_map.to_external(seq)) == ["008", "007"]  # sorted by parsed dates
    assert ds.items.set_index("item_id").loc["007", "genres"] == ["spy", "film"]
    assert "extra" not in ds.interactions.columns


def test_csv_autodetects_common_names_and_path_as_name(tmp_path):
    path = _write(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,2,4,10\n1,3,5,11\n")
    ds = load_dataset(str(path))
    assert ds.n_interactions == 2 and ds.item_map.external_ids.dtype.kind == "i"
    ds2 = load_dataset("csv", data_dir=path, columns={"userId": "user_id", "movieId": "item_id"})
    assert "rating" in ds2.interactions.columns  # canonical names are kept unmapped


def test_csv_missing_mapped_column_lists_available(tmp_path):
    path = _write(tmp_path / "r.csv", "uid,iid\n1,2\n")
    with pytest.raises(DataValidationError, match=r"'user'.*available columns: \['uid', 'iid'\]"):
        load_csv(path, columns={"user": "user_id", "iid": "item_id"})
    with pytest.raises(DataValidationError, match=r"no column for \['user_id'\].*'who'"):
        load_csv(_write(tmp_path / "s.csv", "who,iid\n1,2\n"))
    with pytest.raises(ConfigError, match="colums"):
        load_dataset("csv", data_dir=path, colums={"uid": "user_id"})


def test_parquet_with_mapping(tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame(
        {
            "u": [1, 1, 2],
            "i": ["a", "b", "a"],
            "t": pd.to_datetime(["2024-01-01"] * 3).tz_localize("Europe/Berlin"),
            "w": [1.0, 2.0, 1.0],
        }
    )
    path = tmp_path / "inter.parquet"
    df.to_parquet(path)
    items = tmp_path / "items.parquet"
    pd.DataFrame({"i": ["a", "b"], "t": ["A", "B"]}).to_parquet(items)
    ds = load_parquet(
        path,
        columns={"u": "user_id", "i": "item_id", "t": "timestamp", "w": "weight"},
        items_path=items,
        item_columns={"i": "item_id", "t": "title"},
    )
    assert ds.n_interactions == 3 and ds.weights.sum() == pytest.approx(4.0)
    assert ds.timestamps[0] == 1704063600  # 2024-01-01 00:00 Berlin = 23:00 UTC the day before
    assert ds.items.set_index("item_id").loc["b", "title"] == "B"
    with pytest.raises(DataValidationError, match="available columns"):
        load_parquet(path, columns={"user": "user_id", "i": "item_id"})
    ds2 = load_dataset(path, columns={"u": "user_id", "i": "item_id"})
    assert ds2.n_users == 2


# ---------------------------------------------------------------------- names and errors
def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'movielens-100k'") as err:
        load_dataset("movielens-100")
    assert "amazon-beauty" in str(err.value)  # lists the names
    with pytest.raises(UnknownNameError, match="Did you mean 'amazon-beauty'"):
        dataset_info("amazon-beuty")


def test_missing_files_message_names_file_and_data_dir(tmp_path):
    with pytest.raises(DatasetUnavailableError, match=r"'u\.data'.*data_dir") as err:
        load_dataset("movielens-100k", data_dir=tmp_path)
    assert "download=True" in str(err.value) and "--data-dir" in str(err.value)
    with pytest.raises(DatasetUnavailableError, match=r"'ratings\.dat'.*data_dir"):
        load_dataset("movielens-1m")  # nothing cached, no download
    with pytest.raises(DatasetUnavailableError, match=r"sequential_data\.txt.*data_dir"):
        load_dataset("amazon-sports", data_dir=tmp_path)
    with pytest.raises(DatasetUnavailableError, match="no automatic download"):
        load_dataset("amazon-sports", download=True)


def test_unknown_amazon_category_suggests(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="Did you mean 'Beauty'"):
        load_dataset("amazon-2014:Beuty", data_dir=tmp_path)


def test_genrec_data_dir_environment(tmp_path, monkeypatch):
    _p5(tmp_path / "amazon-beauty")
    monkeypatch.setenv("GENREC_DATA_DIR", str(tmp_path))
    assert load_dataset("amazon-beauty").n_interactions == 9
    assert next(d for d in list_datasets() if d["name"] == "amazon-beauty")["available"]


def test_list_datasets_and_info():
    rows = {d["name"]: d for d in list_datasets()}
    for name in (
        "movielens-small",
        "movielens-100k",
        "movielens-1m",
        "movielens-20m",
        "amazon-beauty",
        "yelp",
        "amazon-2014:<Category>",
        "csv",
    ):
        assert name in rows
        assert {"name", "description", "source", "available"} <= set(rows[name])
    assert rows["movielens-small"]["available"] is True
    assert rows["movielens-1m"]["available"] is False
    info = dataset_info("ml-100k")
    assert info["name"] == "movielens-100k" and info["url"].endswith("ml-100k.zip")
    assert info["stats"] == {"n_users": 943, "n_items": 1682, "n_interactions": 100_000}
    assert dataset_info("amazon-2018:All_Beauty")["downloadable"]


def test_load_dataset_applies_preprocessing(tmp_path):
    _ml100k(tmp_path)
    ds = load_dataset("movielens-100k", data_dir=tmp_path, rating_threshold=4)
    assert ds.n_interactions == 2 and (ds.interactions["rating"] >= 4).all()


# ---------------------------------------------------------------------- downloads (no network)
def test_offline_download_raises_dataset_unavailable(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("movielens-1m", download=True)
    msg = str(err.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
    assert "ml-1m.zip" in msg and "offline" in msg and "--data-dir" in msg


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def _zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_download_extracts_into_cache_and_verifies_md5(tmp_path, monkeypatch):
    payload = _zip_bytes(
        {
            "ml-100k/u.data": "1\t1\t5\t10\n2\t1\t4\t11\n",
            "ml-100k/u.item": "1|Toy Story (1995)|01-Jan-1995||u|" + "|".join(["0"] * 19) + "\n",
        }
    )
    md5 = hashlib.md5(payload).hexdigest()
    url = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    served = {url: payload, url + ".md5": f"MD5 (ml-100k.zip) = {md5}\n".encode()}
    calls = []

    def fake_urlopen(req, timeout=None):
        asked = req.full_url if hasattr(req, "full_url") else req
        calls.append((asked, timeout))
        return _FakeResponse(served[asked])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    ds = load_dataset("movielens-100k", download=True)
    assert ds.n_interactions == 2 and all(t is not None for _, t in calls)
    assert any(u.endswith(".md5") for u, _ in calls)  # the published checksum was checked
    cache = tmp_path / "cache" / "movielens-100k"
    assert (cache / "ml-100k.zip").is_file()
    mask = os.umask(0)
    os.umask(mask)
    assert (cache / "ml-100k.zip").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    assert (cache / "extracted" / "ml-100k" / "u.data").is_file()
    recorded = (cache / "ml-100k.zip.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(payload).hexdigest()
    # second load: no network needed, available offline
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network used"))
    assert load_dataset("movielens-100k").n_interactions == 2
    assert dataset_info("movielens-100k")["available"]


def test_download_checksum_mismatch(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout=None: _FakeResponse(b"x"))
    remote = RemoteFile("https://example.org/f.bin", md5="0" * 32)
    with pytest.raises(DataValidationError, match="checksum mismatch"):
        download_file(remote, tmp_path, dataset="demo")
    assert not (tmp_path / "f.bin").exists()  # nothing half-written is left
    assert not list(tmp_path.glob("*.part"))
    # a published .md5 file ("<hex>  <name>") is fetched and checked as well
    answers = {"https://example.org/h.bin.md5": b"0" * 32 + b"  h.bin\n"}
    monkeypatch.setattr(
        urllib.request,
        "urlopen",
        lambda req, timeout=None: _FakeResponse(answers.get(req.full_url, b"x")),
    )
    remote = RemoteFile("https://example.org/h.bin", md5_url="https://example.org/h.bin.md5")
    with pytest.raises(DataValidationError, match="MD5"):
        download_file(remote, tmp_path, dataset="demo")
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout=None: _FakeResponse(b"x"))
    # without a known checksum the first download records one and later ones must match it
    download_file(RemoteFile("https://example.org/g.bin"), tmp_path, dataset="demo")
    (tmp_path / "g.bin").unlink()
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout=None: _FakeResponse(b"y"))
    with pytest.raises(DataValidationError, match="recorded at first download"):
        download_file(RemoteFile("https://example.org/g.bin"), tmp_path, dataset="demo")


def test_extract_zip_is_atomic_and_rejects_bad_archives(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataValidationError, match="not a valid zip"):
        extract_zip(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.zip"]  # temp folder cleaned up
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip_bytes({"../escape.txt": "x"}))
    with pytest.raises(DataValidationError, match="unsafe"):
        extract_zip(evil, tmp_path / "out")


# ---------------------------------------------------------------------- real data (optional)
@pytest.mark.shared_data
def test_shared_amazon_beauty():
    ds = load_dataset("amazon-beauty", data_dir=_shared("amazon-beauty"))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (22_363, 12_101, 198_502)
    lens = np.diff(ds.histories().seq_indptr)[1:]
    assert lens.min() == 5 and lens.max() == 204
    titles = ds.item_titles()
    assert titles[ds.item_map.to_internal([1])[0]].startswith("OPI Nail Lacquer")
    assert (titles[1:] != "").sum() == 12_094  # 7 placeholders are missing titles
    assert ds.users is not None and len(ds.users) == 22_363


@pytest.mark.shared_data
def test_shared_movielens_100k():
    ds = load_dataset("movielens-100k", data_dir=_shared("movielens-100k"))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1_682, 100_000)
    assert ds.timestamps.min() == 874724710 and ds.timestamps.max() == 893286638
    assert ds.items.set_index("item_id").loc[1, "title"] == "Toy Story"
    assert len(ds.users) == 943


@pytest.mark.shared_data
def test_shared_p5_folder_found_from_parent():
    _shared("amazon-toys")
    ds = load_dataset("amazon-toys", data_dir=SHARED)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (19_412, 11_924, 167_597)


@pytest.mark.shared_data
def test_shared_movielens_1m_without_ratings_is_reported():
    folder = _shared("movielens-1m")
    with pytest.raises(DatasetUnavailableError, match=r"'ratings\.dat'.*movielens-1m"):
        load_dataset("movielens-1m", data_dir=folder)
