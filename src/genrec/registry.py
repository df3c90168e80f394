"""Registries: one pattern for models, tokenizers and datasets.

A :class:`Registry` maps names to objects (model classes, tokenizer classes, dataset specs).
Entries are added with a decorator (``@register_model("ease")``), directly
(:meth:`Registry.add`), or lazily as a ``"module:attribute"`` string that is imported on first
use (:meth:`Registry.add_lazy`), so that listing names imports nothing heavy. Lookups of an
unknown name raise :class:`~genrec.errors.UnknownNameError` with a "Did you mean" hint.

This module imports no model: the built-in models are declared (lazily) by
:mod:`genrec.models` when that package is imported, and importing ``genrec`` imports it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from genrec.errors import GenrecTypeError, UnknownNameError, suggest

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """Names -> objects, with lazy entries, aliases and clear errors.

    Args:
        kind: what the entries are, for messages (``"model"``, ``"tokenizer"``, ...).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name``; re-registering another object under a taken name is an
        error (the same object again is a no-op)."""
        if name in self._items and self._items[name] is not obj:
            raise ValueError(
                f"{self.kind} name {name!r} is already registered by {self._items[name]}"
            )
        if name in self._lazy and self._lazy[name] != lazy_entry(obj):
            raise ValueError(
                f"{self.kind} name {name!r} is taken by the built-in {self._lazy[name]}; "
                "register yours under another name"
            )
        self._items[name] = obj
        self._lazy.pop(name, None)
        return obj

    def add_lazy(self, name: str, target: str) -> None:
        """Declare ``name`` as ``"package.module:attribute"``, imported on first :meth:`get`.
        The module normally registers itself on import (a decorator); otherwise the
        attribute is registered."""
        if name not in self._items:
            self._lazy[name] = target

    def alias(self, alias: str, name: str) -> None:
        """Make ``alias`` resolve to ``name``."""
        self._aliases[alias] = name

    def decorator(self, name: str) -> Callable[[C], C]:
        """Class decorator registering the class as ``name`` (and setting ``cls.name``)."""

        def deco(cls: C) -> C:
            cls.name = name  # type: ignore[attr-defined]
            self.add(name, cls)  # type: ignore[arg-type]
            return cls

        return deco

    def resolve(self, name: str) -> str:
        """The registered name ``name`` stands for (aliases followed)."""
        return self._aliases.get(name, name)

    def get(self, name: str) -> T:
        """The object registered as ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered (the message suggests the closest
                name and lists the others).
        """
        if not isinstance(name, str):
            raise GenrecTypeError(
                f"{self.kind} name must be a str, got {type(name).__name__} ({name!r})"
            )
        key = self.resolve(name)
        if key in self._items:
            return self._items[key]
        if key in self._lazy:
            module, _, attr = self._lazy[key].partition(":")
            obj = getattr(importlib.import_module(module), attr)
            if key not in self._items:  # a module without a decorator
                self.add(key, obj)
            return self._items[key]
        names = self.names()
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{suggest(name, [*names, *self._aliases])} "
            f"Available: {', '.join(names)}"
        )

    def names(self) -> list[str]:
        """All registered names (lazy ones included), sorted."""
        return sorted({*self._items, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) in {*self._items, *self._lazy}

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def items(self) -> list[tuple[str, T]]:
        """``(name, object)`` pairs, importing lazy entries."""
        return [(n, self.get(n)) for n in self.names()]


#: the model registry (classes of :class:`~genrec.core.recommender.Recommender`);
#: :mod:`genrec.models` declares the built-in models in it
MODELS: Registry[Any] = Registry("model")


def register_model(name: str) -> Callable[[C], C]:
    """Class decorator registering a :class:`~genrec.core.recommender.Recommender` under ``name``:
    the CLI, configs, benchmark, server and contract tests then find it with no other edit."""
    return MODELS.decorator(name)


def get_model(name: str) -> Any:
    """Return the model class (a :class:`~genrec.core.recommender.Recommender` subclass)
    registered as ``name``.

    Raises:
        UnknownNameError: with the closest registered name as a suggestion.
    """
    return MODELS.get(name)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return MODELS.names()


def lazy_entry(obj: Any) -> str:
    """``"module:qualname"`` of a class or function (for :meth:`Registry.add_lazy`)."""
    return f"{obj.__module__}:{obj.__qualname__}"


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :class:`~genrec.X` -> genrec.X
_MODULE_DOCS = r"(?:see\s+)?(?:the\s+)?module(?:'s)?\s+(?:docstring|docs?)"
_SEE = (  # a parenthesis of its own, or a clause that may end one
    re.compile(rf"\s*\(\s*{_MODULE_DOCS}[^)]*\)", re.I),
    re.compile(rf"\s*[;,]\s*{_MODULE_DOCS}[^.;)]*", re.I),
)


def model_summary(cls: Any) -> str:
    """One plain sentence describing a model class, for ``genrec models``: its ``summary``
    attribute, else the first sentence of its docstring without reST markup (roles,
    double backquotes) or pointers to other documentation ("see the module docstring")."""
    own = getattr(cls, "summary", "") or ""
    if own.strip():
        return own.strip()
    doc = (cls.__doc__ or "").strip()
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], paragraph).replace("``", "")
    for pattern in _SEE:
        text = pattern.sub("", text)
    # the first sentence: up to a full stop followed by a space and a capital letter,
    # not the one of "et al." or "e.g."
    match = re.search(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.(?=\s+[A-Z(])", text)
    if match:
        text = text[: match.start()]
    text = text.strip().rstrip(".;:,")
    if not text:
        return f"{getattr(cls, '__name__', 'model')} (no description)."
    return text[0].upper() + text[1:] + "."
