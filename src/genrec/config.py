"""Config dataclasses <-> dict/YAML, strict: unknown keys and bad values raise.

Every model has one frozen dataclass deriving from :class:`ModelConfig`. A field's
``metadata["help"]`` is its one-line description (shown by ``genrec train --help-config``).
Range checks live in ``validate()``; it runs at construction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from genrec.errors import ConfigError, DeprecatedKeyWarning, caller_stacklevel, suggest

C = TypeVar("C", bound="ModelConfig")


def field(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with a one-line ``help`` text."""
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of all model configs. ``seed`` is shared by every model.

    A subclass may map old key names to new ones in a class attribute
    ``RENAMED = {"old": "new"}``: the old keys still load, with a
    :class:`~genrec.errors.DeprecatedKeyWarning`.
    """

    seed: int = field(0, "random seed for everything the model samples")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(type(self), f, value))
        self.validate()

    def validate(self) -> None:
        """Check value ranges; raise :class:`ConfigError` naming the bad value."""

    # ------------------------------------------------------------------ helpers
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None) -> C:
        """Build from a mapping; unknown keys raise :class:`ConfigError`."""
        data = dict(data or {})
        for old, new in getattr(cls, "RENAMED", {}).items():
            if old in data:
                if new in data:
                    raise ConfigError(
                        f"{cls.__name__}: both {old!r} (the old name) and {new!r} are given; "
                        f"keep {new!r}"
                    )
                warnings.warn(
                    f"{cls.__name__}: config key {old!r} is deprecated, use {new!r}",
                    DeprecatedKeyWarning,
                    stacklevel=caller_stacklevel(),
                )
                data[new] = data.pop(old)
        names = cls.field_names()
        unknown = [k for k in data if k not in names]
        if unknown:
            key = unknown[0]
            raise ConfigError(
                f"unknown config key {key!r} for {cls.__name__}.{suggest(key, names)} "
                f"Valid keys: {', '.join(names)}"
            )
        return cls(**data)

    @classmethod
    def current_keys(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` with old key names (``RENAMED``) mapped to the current ones, silently: for
        configs recorded by earlier runs (results files, reproduction references)."""
        renamed = getattr(cls, "RENAMED", {})
        return {renamed.get(k, k): v for k, v in data.items()}

    @classmethod
    def from_yaml(cls: type[C], path: str | Path) -> C:
        return cls.from_dict(load_yaml(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self: C, **overrides: Any) -> C:
        """A copy with ``overrides`` applied (validated, unknown keys raise)."""
        merged = self.to_dict()
        merged.update(overrides)
        return type(self).from_dict(merged)

    def positive(self, *names: str, allow_zero: bool = False) -> None:
        """Raise unless each named field is > 0 (or >= 0 with ``allow_zero``)."""
        for name in names:
            value = getattr(self, name)
            if value < 0 or (value == 0 and not allow_zero):
                bound = ">= 0" if allow_zero else "> 0"
                raise ConfigError(f"{type(self).__name__}.{name} must be {bound}, got {value!r}")


def find_configs_dir(explicit: str | None = None) -> Path | None:
    """Where shipped presets live: ``explicit``, ``$GENREC_CONFIGS``, ``./configs`` or the
    ``configs/`` folder of a source checkout."""
    candidates = [explicit, os.environ.get("GENREC_CONFIGS"), "configs"]
    candidates.append(str(Path(__file__).resolve().parents[2] / "configs"))
    for cand in candidates:
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; raise :class:`ConfigError` on a missing file or non-mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of key: value, got {type(data).__name__}"
        )
    return data


@dataclasses.dataclass(frozen=True)
class ModelConfigSource:
    """Where a model's config came from (:func:`model_config_data`).

    Attributes:
        data: the overrides to build the config from (file or preset, then ``--set``).
        source: the YAML file read (a ``--config`` file or the shipped preset), or ``None``.
        preset: ``source`` is the shipped preset ``<configs>/<dataset>/<model>.yaml``.
        use_preset: whether presets were allowed (``False`` with ``--no-preset``).
    """

    data: dict[str, Any]
    source: str | None
    preset: bool
    use_preset: bool = True

    def describe(self, model: str) -> str:
        """One line for the terminal: which file (if any) gave the config of ``model``."""
        if self.source is None:
            why = "no shipped preset for this dataset" if self.use_preset else "--no-preset"
            return f"{model}: default config ({why})"
        where = _short_path(self.source)
        if self.preset:
            return f"{model}: shipped preset {where} (--no-preset for the defaults)"
        return f"{model}: config file {where}"


def _short_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def preset_path(model: str, dataset: str, configs_dir: str | None = None) -> Path | None:
    """The shipped preset ``<configs>/<dataset>/<model>.yaml`` (:func:`find_configs_dir`), or
    ``None`` when there is none."""
    cdir = find_configs_dir(configs_dir)
    path = cdir / dataset / f"{model}.yaml" if cdir is not None else None
    return path if path is not None and path.is_file() else None


def model_config_data(
    model: str,
    dataset: str,
    *,
    config_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    configs_dir: str | None = None,
    use_preset: bool = True,
) -> ModelConfigSource:
    """The one rule every command that builds a model follows (``train``, ``benchmark``,
    ``tune``): start from ``config_path`` (``--config``) when given, else from the shipped
    preset ``<configs>/<dataset>/<model>.yaml`` when there is one and ``use_preset`` is true
    (``--no-preset`` turns it off), else from the model's defaults; then apply ``overrides``
    (``--set``). Only the returned ``data`` is validated later, by the model's config class.
    """
    source: str | None = None
    preset = False
    data: dict[str, Any] = {}
    if config_path is not None:
        source = str(config_path)
        data = load_yaml(config_path)
    elif use_preset:
        path = preset_path(model, dataset, configs_dir)
        if path is not None:
            source, preset = str(path), True
            data = load_yaml(path)
    data.update(overrides or {})
    return ModelConfigSource(data=data, source=source, preset=preset, use_preset=use_preset)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """Parse CLI ``key=value`` strings; values are read as YAML scalars (``1e-3``, ``true``)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} must look like key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {pair!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            with contextlib.suppress(ValueError):
                value = float(value) if any(c in value for c in ".eE") else int(value)
        out[key] = value
    return out


def _coerce(cls: type, f: dataclasses.Field, value: Any) -> Any:
    """Coerce ``value`` to the field's annotated type, raising a clear error if impossible."""
    hints = typing.get_type_hints(cls)
    tp = hints.get(f.name, Any)
    where = f"{cls.__name__}.{f.name}"
    return _coerce_to(tp, value, where)


def _coerce_to(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce_to(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {list(choices)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce_to(inner, v, where) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if tp is int:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or float(value) != int(value)
        ):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value
