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
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from genrec._version import __version__
from genrec.data.dataset import IdMap, UserHistories
from genrec.errors import ArtifactError, GenrecError
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
        (tmp / "config.json").write_text(json.dumps(to_jsonable(config), indent=2))
        ids = {"users": model.user_map.to_list(), "items": model.item_map.to_list()}
        (tmp / "ids.json").write_text(json.dumps(to_jsonable(ids)))
        if model.item_titles_ is not None:
            (tmp / "items.json").write_text(json.dumps({"titles": list(model.item_titles_[1:])}))
        model._save_artifacts(tmp)  # composite models (the cascade) add nested artifacts
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"artifact is incomplete: {path.name} is missing in {path.parent}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"artifact file {path} is corrupt (not valid JSON): {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"artifact file {path} is corrupt: expected a JSON object")
    return data


def load_model(path: str | Path) -> Any:
    """Load an artifact directory as the :class:`~genrec.core.recommender.Recommender` it holds;
    identical recommendations to the saved model."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

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
    if meta["format_version"] > FORMAT_VERSION:
        raise ArtifactError(
            f"artifact format {meta['format_version']} is newer than this genrec supports "
            f"({FORMAT_VERSION}); upgrade genrec"
        )
    cls = get_model(meta["model"])
    model = cls(cls.config_class.from_dict(meta["config"]))
    ids = _read_json(path / "ids.json")
    try:
        model.user_map = IdMap(ids["users"])
        model.item_map = IdMap(ids["items"])
    except (KeyError, GenrecError) as exc:
        raise ArtifactError(f"artifact ids.json at {path} is corrupt: {exc}") from exc
    if model.user_map.size != meta["n_users"] or model.item_map.size != meta["n_items"]:
        raise ArtifactError(f"artifact at {path}: ids.json does not match config.json sizes")
    try:
        arrays = load_file(str(path / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"artifact weights at {path} are corrupt: {exc}") from exc
    try:
        n_rows, n_cols = model.user_map.size + 1, model.item_map.size + 1
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
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"artifact weights at {path} are corrupt or partial: {exc}") from exc
    titles = [""]
    if (path / "items.json").is_file():
        titles += list(_read_json(path / "items.json").get("titles", []))
    if len(titles) == model.item_map.size + 1:
        model.item_titles_ = np.array(titles, dtype=object)
    model.training_info_ = meta.get("training")
    state = {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
    try:
        model._load_state_dict(state)
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"artifact weights at {path} do not fit {cls.__name__}: {exc}") from exc
    try:
        model._load_artifacts(path)  # nested artifacts written by ``_save_artifacts``
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"artifact at {path} is corrupt or partial: {exc}") from exc
    return model


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
