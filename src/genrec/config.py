"""Config dataclasses <-> dict/YAML, strict: unknown keys and bad values raise.

Every model has one frozen dataclass deriving from :class:`ModelConfig`. A field's
``metadata["help"]`` is its one-line description (shown by ``genrec train --help-config``).
Range checks live in ``validate()``; it runs at construction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
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
        if not 0 <= self.seed <= INT_MAX:  # torch.manual_seed takes no negative seed
            raise ConfigError(f"{type(self).__name__}.seed must be >= 0, got {self.seed!r}")
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
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError(
                f"a {cls.__name__} is built from a mapping of key: value, got {type(data).__name__}"
            )
        data = dict(data or {})
        bad_keys = [k for k in data if not isinstance(k, str)]
        if bad_keys:
            raise ConfigError(f"config keys must be strings, got {bad_keys[0]!r}")
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
        """Build from a YAML file; every error names the file."""
        data = load_yaml(path)
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self: C, **overrides: Any) -> C:
        """A copy with ``overrides`` applied (validated, unknown keys raise; old key names
        are mapped to the current ones, with a warning)."""
        return type(self).from_dict(type(self).merged(self.to_dict(), overrides))

    @classmethod
    def merged(cls, *layers: Mapping[str, Any] | None) -> dict[str, Any]:
        """Config layers (e.g. a preset, then ``--set`` overrides) merged into one mapping,
        later layers winning. Old key names (``RENAMED``) in any layer are mapped to the
        current ones first, with a :class:`~genrec.errors.DeprecatedKeyWarning`, so an old
        key given as an override replaces the current key of an earlier layer."""
        out: dict[str, Any] = {}
        renamed = getattr(cls, "RENAMED", {})
        for layer in layers:
            for key, value in (layer or {}).items():
                if key in renamed:
                    warnings.warn(
                        f"{cls.__name__}: config key {key!r} is deprecated, use {renamed[key]!r}",
                        DeprecatedKeyWarning,
                        stacklevel=caller_stacklevel(),
                    )
                    key = renamed[key]
                out[key] = value
        return out

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
    """Read a YAML mapping of string keys.

    Raises:
        ConfigError: naming the file, when it is missing, a folder, unreadable, not UTF-8
            text, not valid YAML, or not a mapping.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
            "save it as UTF-8 YAML"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise ConfigError(f"config file {path} is binary, not YAML text")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"config file {path} is not valid YAML: {detail}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} is nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of key: value, got {type(data).__name__}"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"config file {path}: keys must be names, got {bad[0]!r}")
    return data


def check_config_file(
    cls: type[ModelConfig],
    data: Mapping[str, Any],
    path: str | Path,
    others: Mapping[str, type[ModelConfig]] | None = None,
) -> None:
    """Validate what a config file holds for ``cls``; an error names the file.

    Args:
        cls: the config class the file is meant for.
        data: the file's mapping (see :func:`load_yaml`).
        path: the file, for the message.
        others: registered config classes by model name; when the file's keys fit one of
            them and not ``cls``, the message says which model it looks written for.

    Raises:
        ConfigError: ``config file PATH: <problem>``.
    """
    try:
        cls.from_dict(data)
    except ConfigError as exc:
        hint = ""
        names = set(cls.field_names())
        if others and any(k not in names for k in data):
            fits = sorted(
                name
                for name, other in others.items()
                if other is not cls and all(k in other.field_names() for k in data)
            )
            if fits:
                shown = ", ".join(fits[:3]) + (", ..." if len(fits) > 3 else "")
                hint = f" (the file looks written for another model: {shown})"
        raise ConfigError(f"config file {path}: {exc}{hint}") from None


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
    config_class: type[ModelConfig] | None = None,
    others: Mapping[str, type[ModelConfig]] | None = None,
) -> ModelConfigSource:
    """The one rule every command that builds a model follows (``train``, ``benchmark``,
    ``tune``): start from ``config_path`` (``--config``) when given, else from the shipped
    preset ``<configs>/<dataset>/<model>.yaml`` when there is one and ``use_preset`` is true
    (``--no-preset`` turns it off), else from the model's defaults; then apply ``overrides``
    (``--set``, merged so that an old key name given there replaces the current one). With
    ``config_class``, the file is checked first and an error names the file
    (:func:`check_config_file`, with ``others`` to say which model a file looks written for);
    the returned ``data`` is validated later, by the model's
    config class.
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
    if config_class is None:
        data.update(overrides or {})
    else:
        if source is not None:
            check_config_file(config_class, data, source, others)
        data = config_class.merged(data, dict(overrides or {}))
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
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (and "nan", "inf") as a string
            with contextlib.suppress(ValueError):
                value = float(value) if any(c in value for c in ".eEnN") else int(value)
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
        return _coerce_int(value, where)
    if tp is float:
        return _coerce_float(value, where)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


#: the range of an integer config value (what numpy and torch accept as an int64)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def _coerce_int(value: Any, where: str) -> int:
    """An ``int`` field: a whole number (``3`` or ``3.0``), finite and within int64."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite integer, got {value!r}")
        if not float(value).is_integer():
            raise ConfigError(f"{where} must be an integer, got {value!r}")
    out = int(value)
    if not INT_MIN <= out <= INT_MAX:
        raise ConfigError(f"{where} must be an integer within the 64-bit range, got {value!r}")
    return out


def _coerce_float(value: Any, where: str) -> float:
    """A ``float`` field: a finite number (YAML strings such as ``"1e-3"`` are parsed)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    elif isinstance(value, (int, float, np.integer, np.floating)):
        try:
            out = float(value)
        except OverflowError:  # an int beyond the float range
            raise ConfigError(f"{where} must be a finite number, got {value!r}") from None
    else:
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(out):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return out
