"""Artifact directories, written atomically and loaded without pickle.

Layout of ``<artifact>/``::

    config.json          {"format_version", "genrec_version", "model", "config",
                          "n_users", "n_items", "training"}
    ids.json             {"users": [...external ids...], "items": [...]}
    items.json           {"titles": [...]} (optional, for display)
    weights.safetensors  model arrays ("model.*") and training histories ("history.*")

The directory is first written under a temporary name beside the target and then renamed
into place, so a crash never leaves a half-written artifact under the final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from genrec._version import __version__
from genrec.data.dataset import IdMap, UserHistories
from genrec.errors import (
    ArtifactError,
    ConfigError,
    GenrecError,
    GenrecTypeError,
    UnknownNameError,
)
from genrec.paths import atomic_dir, follow_umask, prepare_output_dir, to_jsonable
from genrec.registry import get_model

FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "ids.json", "weights.safetensors")


def save_model(model: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Save a fitted :class:`~genrec.core.recommender.Recommender` as an artifact directory (see
    module docs). This module does not import the contract (it sits beside it and
    ``Recommender.save`` calls it); models are created by name from the registry.

    ``path`` must be new, an empty folder, or (with ``overwrite=True``) an artifact genrec
    wrote earlier, which is then replaced atomically; anything else is refused with
    :class:`~genrec.paths.OutputPathError` and left untouched."""
    from safetensors.numpy import save_file

    path = prepare_output_dir(path, "artifact", overwrite=overwrite)
    hist = model.train_histories_
    assert hist is not None and model.user_map is not None and model.item_map is not None
    arrays: dict[str, np.ndarray] = {}
    for key, value in model._state_dict().items():
        arrays[f"model.{key}"] = np.ascontiguousarray(value)
    arrays["history.indptr"] = hist.matrix.indptr.astype(np.int64)
    arrays["history.indices"] = hist.matrix.indices.astype(np.int64)
    arrays["history.data"] = hist.matrix.data.astype(np.float32)
    arrays["history.seq_indptr"] = hist.seq_indptr
    arrays["history.seq_items"] = hist.seq_items
    if hist.seq_times is not None:
        arrays["history.seq_times"] = hist.seq_times
    arrays["popularity"] = np.asarray(model.item_popularity_, dtype=np.int64)
    config = {
        "format_version": FORMAT_VERSION,
        "genrec_version": __version__,
        "model": model.name,
        "config": model.config.to_dict(),
        "n_users": model.user_map.size,
        "n_items": model.item_map.size,
        "training": model.training_info_,
    }
    with atomic_dir(path, kind="artifact") as tmp:
        save_file(arrays, str(tmp / "weights.safetensors"))
        follow_umask(tmp / "weights.safetensors")  # safetensors creates it 0600
        ids = {"users": model.user_map.to_list(), "items": model.item_map.to_list()}
        (tmp / "ids.json").write_text(json.dumps(to_jsonable(ids)))
        if model.item_titles_ is not None:
            (tmp / "items.json").write_text(json.dumps({"titles": list(model.item_titles_[1:])}))
        model._save_artifacts(tmp)  # composite models (the cascade) add nested artifacts
        # what genrec wrote here: an overwrite never deletes anything else (genrec.paths)
        config["files"] = sorted([*(e.name for e in tmp.iterdir()), "config.json"])
        (tmp / "config.json").write_text(json.dumps(to_jsonable(config), indent=2))
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"artifact is incomplete: {path.name} is missing in {path.parent}"
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError: ValueError
        raise ArtifactError(f"artifact file {path} is corrupt (not valid JSON): {exc}") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact file {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ArtifactError(
            f"artifact file {path} is corrupt: expected a JSON object, got {type(data).__name__}"
        )
    return data


def _count(meta: dict[str, Any], key: str, path: Path) -> int:
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArtifactError(
            f"artifact config.json at {path}: {key!r} must be a non-negative integer, got {value!r}"
        )
    return value


def _id_list(ids: dict[str, Any], key: str, path: Path) -> list[Any]:
    if key not in ids:
        raise ArtifactError(f"artifact ids.json at {path} lacks the {key!r} list")
    values = ids[key]
    if not isinstance(values, list):
        raise ArtifactError(
            f"artifact ids.json at {path}: {key!r} must be a list of ids, "
            f"got {type(values).__name__}"
        )
    bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, (int, str))), None)
    if bad is not None:
        raise ArtifactError(
            f"artifact ids.json at {path}: {key!r} must hold integer or string ids, got {bad!r}"
        )
    return values


def load_model(path: str | Path) -> Any:
    """Load an artifact directory as the :class:`~genrec.core.recommender.Recommender` it
    holds; identical recommendations to the saved model.

    Raises:
        GenrecTypeError: ``path`` is not a str or path.
        ArtifactError: the folder is missing, incomplete or corrupt, or its weights do not
            match the model named in its ``config.json`` ("artifact X does not match model
            Y: ..."), naming the artifact and the problem.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not isinstance(path, (str, os.PathLike)):
        raise GenrecTypeError(f"load() path must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"no artifact directory at {path}")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ArtifactError(f"artifact at {path} is incomplete: missing {', '.join(missing)}")
    meta = _read_json(path / "config.json")
    for key in ("format_version", "model", "config", "n_users", "n_items"):
        if key not in meta:
            raise ArtifactError(f"artifact config.json at {path} lacks the {key!r} field")
    version = meta["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtifactError(
            f"artifact config.json at {path}: format_version must be a positive integer, "
            f"got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"artifact at {path} has format {version}, newer than this genrec supports "
            f"({FORMAT_VERSION}); upgrade genrec"
        )
    name = meta["model"]
    if not isinstance(name, str):
        raise ArtifactError(
            f"artifact config.json at {path}: 'model' must be a model name, got {name!r}"
        )
    n_users, n_items = _count(meta, "n_users", path), _count(meta, "n_items", path)

    def mismatch(detail: object) -> ArtifactError:
        return ArtifactError(f"artifact {path} does not match model {name!r}: {detail}")

    try:
        cls = get_model(name)
    except UnknownNameError as exc:
        raise mismatch(exc) from None
    if not isinstance(meta["config"], dict):
        raise mismatch(
            f"its config must be a mapping of key: value, got {type(meta['config']).__name__}"
        )
    try:
        # an artifact genrec wrote with older key names loads silently (they are genrec's own)
        model = cls(cls.config_class.from_dict(cls.config_class.current_keys(meta["config"])))
    except ConfigError as exc:
        raise mismatch(f"its config is invalid: {exc}") from None
    ids = _read_json(path / "ids.json")
    try:
        model.user_map = IdMap(_id_list(ids, "users", path))
        model.item_map = IdMap(_id_list(ids, "items", path))
    except GenrecError as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"artifact ids.json at {path} is corrupt: {exc}") from exc
    if model.user_map.size != n_users or model.item_map.size != n_items:
        raise ArtifactError(
            f"artifact at {path}: ids.json does not match config.json sizes "
            f"({model.user_map.size} users, {model.item_map.size} items in ids.json; "
            f"{n_users} and {n_items} in config.json)"
        )
    try:
        arrays = load_file(str(path / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"artifact weights at {path} are corrupt: {exc}") from exc
    _check_histories(arrays, n_users, n_items, mismatch)
    try:
        n_rows, n_cols = n_users + 1, n_items + 1
        matrix = sp.csr_matrix(
            (arrays["history.data"], arrays["history.indices"], arrays["history.indptr"]),
            shape=(n_rows, n_cols),
        )
        model.train_histories_ = UserHistories(
            matrix,
            arrays["history.seq_indptr"],
            arrays["history.seq_items"],
            arrays.get("history.seq_times"),
        )
        model.item_popularity_ = arrays["popularity"]
    except (KeyError, ValueError, TypeError, IndexError, GenrecError) as exc:
        raise ArtifactError(f"artifact weights at {path} are corrupt or partial: {exc}") from exc
    titles = [""]
    if (path / "items.json").is_file():
        stored = _read_json(path / "items.json").get("titles", [])
        if not isinstance(stored, list):
            raise ArtifactError(
                f"artifact items.json at {path}: 'titles' must be a list, "
                f"got {type(stored).__name__}"
            )
        titles += [t if isinstance(t, str) else str(t) for t in stored]
    if len(titles) == model.item_map.size + 1:
        model.item_titles_ = np.array(titles, dtype=object)
    model.training_info_ = meta.get("training")
    state = {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
    try:
        model._load_state_dict(state)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        # RuntimeError: torch's load_state_dict on missing keys or other shapes
        detail = " ".join(str(exc).split())[:500]
        raise mismatch(
            f"weights.safetensors does not fit {cls.__name__} ({type(exc).__name__}: {detail})"
        ) from exc
    try:
        model._load_artifacts(path)  # nested artifacts written by ``_save_artifacts``
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ArtifactError(f"artifact at {path} is corrupt or partial: {exc}") from exc
    _probe(model, mismatch)
    return model


def _check_histories(
    arrays: dict[str, np.ndarray], n_users: int, n_items: int, mismatch: Any
) -> None:
    """The training histories and popularity must be sized for ``ids.json``'s users and items
    (weights copied from an artifact of another dataset are not)."""
    need = ("history.indptr", "history.indices", "history.seq_indptr", "popularity")
    if any(key not in arrays for key in need):
        return  # reported as "corrupt or partial" by the caller
    indptr, seq_indptr = arrays["history.indptr"], arrays["history.seq_indptr"]
    pop, indices = arrays["popularity"], arrays["history.indices"]
    found_users = {len(indptr) - 2, len(seq_indptr) - 2}
    found_items = {len(pop) - 1}
    if len(indices) and int(indices.max()) > n_items:
        found_items.add(int(indices.max()))
    if found_users != {n_users} or found_items != {n_items}:
        raise mismatch(
            f"weights.safetensors holds the histories of {max(found_users)} users and "
            f"{max(found_items)} items, ids.json lists {n_users} users and {n_items} items "
            "(weights from another dataset?); the sizes must match"
        )


def _probe(model: Any, mismatch: Any) -> None:
    """Score one history with the loaded weights: a weight matrix sized for another catalogue
    (which a plain array assignment accepts) fails here, at load time, not at the first
    request. Only models that score every item (``score(batch)``, the scoring strategy) are
    probed; this module does not import the contract, so it asks for the method."""
    if not callable(getattr(model, "score", None)) or model.item_map is None:
        return
    hist = model.train_histories_
    if hist is not None and hist.n_rows > 1:
        batch = hist.batch(np.array([1], dtype=np.int64))
    else:
        batch = UserHistories.from_sequences([[]], model.n_items).batch(np.array([0]))
    try:
        model.score(batch)
    except (RuntimeError, ValueError, IndexError) as exc:
        detail = " ".join(str(exc).split())[:500]
        raise mismatch(
            f"its weights do not fit the catalogue of {model.n_items} items ({detail})"
        ) from exc


def load(path: str | Path) -> Any:
    """Public alias: ``genrec.load(path)``, a fitted
    :class:`~genrec.core.recommender.Recommender`."""
    return load_model(path)


def artifact_size(path: str | Path) -> int:
    """Bytes on disk of an artifact directory (every file in it, nested artifacts included)."""
    root = Path(path)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def format_bytes(n: int) -> str:
    """``912 B``, ``14.2 kB``, ``317.4 MB``, ``1.2 GB`` (powers of 1000, like ``ls -h --si``)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
