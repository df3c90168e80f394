"""Model registry: ``@register_model("ease")`` makes a model visible to the CLI, configs,
benchmark and contract tests with no other edit."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from genrec.errors import UnknownNameError, suggest

if TYPE_CHECKING:
    from genrec.models.base import Recommender

_MODELS: dict[str, type[Recommender]] = {}
T = TypeVar("T", bound="type[Recommender]")


def register_model(name: str):
    """Class decorator registering a :class:`~genrec.models.base.Recommender` under ``name``."""

    def deco(cls: T) -> T:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_MODELS[name]}")
        cls.name = name
        _MODELS[name] = cls
        return cls

    return deco


def _ensure_loaded() -> None:
    import genrec.models  # noqa: F401  (importing registers the built-in models)


def get_model(name: str) -> type[Recommender]:
    """Return the model class registered as ``name``.

    Raises:
        UnknownNameError: with the closest registered name as a suggestion.
    """
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}.{suggest(name, _MODELS)} "
            f"Available: {', '.join(sorted(_MODELS))}"
        ) from None


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_loaded()
    return sorted(_MODELS)
