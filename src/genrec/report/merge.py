"""Reading ``results.json`` files (:func:`load_results`) and merging several runs on the same
data and protocol into one results dictionary (:func:`merge_results`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genrec.errors import ConfigError
from genrec.report.common import get_path, short_text

_SAME_KEYS: tuple[tuple[str, ...], ...] = (
    ("dataset", "name"),
    ("manifest", "data_hash"),
    ("split",),
    ("protocol", "ranking"),
    ("protocol", "ks"),
    ("protocol", "exclude_seen"),
    ("protocol", "test_history"),
)


def merge_results(
    results: Sequence[dict[str, Any]], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Merge the model entries of several ``results.json`` dictionaries into one.

    All inputs must share the dataset (name and data hash), the split and the evaluation
    protocol; otherwise the numbers are not comparable and a :class:`ConfigError` names the
    first mismatch. A model name found in more than one input gets the input's name as a
    suffix (``sasrec (sasrec-ce-20)``). The first input provides everything but the models;
    ``merged_from`` records each input's command, seeds, packages and hardware.
    Significance marks are kept only for models of the input that holds the reference model
    (the first input's): the others were tested against a different run.

    Args:
        results: parsed ``results.json`` dictionaries (not modified).
        names: a label per input, e.g. the file names (default ``run1``, ``run2``, ...).

    Returns:
        One results dictionary (schema version 1). A single input is returned as a copy.
    """
    if not results:
        raise ConfigError("merge_results needs at least one results dictionary")
    labels = list(names) if names is not None else [f"run{i + 1}" for i in range(len(results))]
    if len(labels) != len(results):
        raise ConfigError(f"got {len(results)} results but {len(labels)} names")
    for label, res in zip(labels, results):
        if not isinstance(res, dict) or not isinstance(res.get("models"), dict):
            raise ConfigError(f"{label}: not a genrec results.json (no 'models' object)")
        if not res["models"]:
            raise ConfigError(f"{label}: has no models")
    if len(results) == 1:
        return copy.deepcopy(results[0])
    first = results[0]
    for label, res in zip(labels[1:], results[1:]):
        for path in _SAME_KEYS:
            a, b = get_path(first, path), get_path(res, path)
            if a != b:
                what = ".".join(path)
                raise ConfigError(
                    f"cannot merge {labels[0]} and {label}: different {what} "
                    f"({short_text(a)} vs {short_text(b)}); only runs on the same dataset, "
                    "split and "
                    "protocol are comparable"
                )
    counts: dict[str, int] = {}
    for res in results:
        for name in res["models"]:
            counts[name] = counts.get(name, 0) + 1
    out = copy.deepcopy(first)
    out["models"] = {}
    out["command"] = None
    configs: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    merged_from = []
    seeds: set[int] = set()
    reference = first["reference_model"]
    new_reference = reference
    for i, (label, res) in enumerate(zip(labels, results)):
        renamed: dict[str, str] = {}
        for name, entry in res["models"].items():
            new = name if counts[name] == 1 else f"{name} ({label})"
            n = 2
            while new in out["models"]:
                new = f"{name} ({label} {n})"
                n += 1
            entry = copy.deepcopy(entry)
            if i > 0:
                entry.pop("significance", None)  # tested against another run's reference
            out["models"][new] = entry
            configs[new] = res.get("manifest", {}).get("configs", {}).get(name, entry["config"])
            sources[new] = entry.get("config_source")
            renamed[new] = name
            if i == 0 and name == reference:
                new_reference = new
        man = res.get("manifest", {})
        seeds.update(int(s) for s in man.get("seeds", []))
        merged_from.append({
            "source": label,
            "models": renamed,
            "command": res.get("command"),
            "created_at": res.get("created_at"),
            "reference_model": res.get("reference_model"),
            "seeds": man.get("seeds"),
            "packages": man.get("packages"),
            "hardware": man.get("hardware"),
        })  # fmt: skip
    out["reference_model"] = new_reference
    out["merged_from"] = merged_from
    out["manifest"]["seeds"] = sorted(seeds)
    out["manifest"]["models"] = list(out["models"])
    out["manifest"]["configs"] = configs
    out["manifest"]["config_sources"] = sources
    if not any("segments" in m for m in out["models"].values()):
        out.pop("segments", None)
    elif "segments" not in out:  # the first input predates segments: take a later one's
        for res in results:
            if "segments" in res:
                out["segments"] = copy.deepcopy(res["segments"])
                break
    if not any("popularity_profile" in m for m in out["models"].values()):
        out.pop("popularity_profile", None)
    elif "popularity_profile" not in out:
        for res in results:
            if "popularity_profile" in res:
                out["popularity_profile"] = copy.deepcopy(res["popularity_profile"])
                break
    return out


def load_results(paths: Sequence[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Read ``results.json`` files; returns the dictionaries and a unique label per file
    (its stem, or its folder's name for files called ``results.json``)."""
    loaded, labels = [], []
    for p in map(Path, paths):
        if not p.is_file():
            raise ConfigError(f"results file {str(p)!r} not found")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or "models" not in data or "dataset" not in data:
            raise ConfigError(f"{p} is not a genrec results.json (no 'models'/'dataset')")
        label = p.parent.name if p.stem == "results" and p.parent.name else p.stem
        base, n = label, 2
        while label in labels:
            label = f"{base}-{n}"
            n += 1
        loaded.append(data)
        labels.append(label)
    return loaded, labels
