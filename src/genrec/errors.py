"""Exception types. Every error genrec raises on bad input names the offending value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GenrecError(Exception):
    """Base class of all genrec errors."""


class DataValidationError(GenrecError, ValueError):
    """Input data is malformed: missing columns, NaN ids, empty tables, too-short histories."""


class ConfigError(GenrecError, ValueError):
    """A configuration key is unknown or a value is out of range."""


class UnknownNameError(GenrecError, KeyError):
    """An unknown model, dataset or metric name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


class UnknownIdError(GenrecError, KeyError):
    """A user or item id that the model or dataset does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ArtifactError(GenrecError, OSError):
    """A saved artifact directory is missing, partial or corrupt."""


class NotFittedError(GenrecError, RuntimeError):
    """A method that needs a fitted model was called before ``fit``."""


class DatasetUnavailableError(GenrecError, FileNotFoundError):
    """Dataset files are not present locally and could not be downloaded."""


class MissingExtraError(GenrecError, ImportError):
    """An optional dependency is not installed."""


class InsufficientMemoryError(GenrecError, MemoryError):
    """A computation would need more memory than is available; raised before allocating,
    with the amount needed and the amount available in the message."""


class GenrecTypeError(GenrecError, TypeError):
    """A public function got an argument of the wrong type (the message names the argument,
    the expected type and what it got)."""


class ResourceLimitError(GenrecError, MemoryError):
    """A request would allocate more memory than genrec allows (k, batch or history sizes);
    the message names the size and how to stay within the limit."""


def expect_type(
    value: object, expected: type | tuple[type, ...], what: str, hint: str = ""
) -> None:
    """Raise :class:`GenrecTypeError` unless ``value`` is an instance of ``expected``.

    Args:
        value: the argument.
        expected: the accepted type(s).
        what: how to name the argument, e.g. ``"split_dataset() dataset"``.
        hint: an extra sentence, e.g. how to build the expected type.
    """
    if isinstance(value, expected):
        return
    types_ = expected if isinstance(expected, tuple) else (expected,)
    names = " or ".join(_type_name(t) for t in types_)
    raise GenrecTypeError(
        f"{what} must be a {names}, got {type(value).__name__}{(': ' + hint) if hint else ''}"
    )


def _type_name(tp: type) -> str:
    module = tp.__module__
    if module == "builtins":
        return tp.__name__
    if module.startswith("genrec"):
        return f"genrec.{tp.__name__}" if tp.__name__ in ("Dataset", "Split") else tp.__name__
    return f"{module.split('.')[0]}.{tp.__name__}"


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return a ``" Did you mean 'x'?"`` hint for ``name`` among ``choices`` (or ``""``)."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def require_extra(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"this feature needs the optional package {module!r}: pip install 'genrec[{extra}]'"
        ) from exc


class GenrecWarning(UserWarning):
    """Base class of genrec's warnings (the CLI prints them as one ``genrec: warning:`` line)."""


class DuplicateIdWarning(GenrecWarning):
    """An item or user side table lists an id more than once (the first row is kept)."""


class DeprecatedKeyWarning(FutureWarning):
    """A config uses an old key name that still loads (e.g. TIGER's ``max_items``, now
    ``max_seq_len``); shown by default, unlike :class:`DeprecationWarning`."""


class DuplicateInteractionWarning(GenrecWarning):
    """Interactions repeat exactly (same user, item and timestamp); the first of each is kept
    (``Dataset(..., duplicates="error")`` refuses them instead)."""


class KClampedWarning(GenrecWarning):
    """``k`` was larger than the catalogue and was lowered to the number of items."""


class MissingTextWarning(GenrecWarning):
    """Some items have no metadata text and are embedded as ``"item <id>"``."""


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside genrec.

    Call it in the function that calls :func:`warnings.warn`: a warning raised deep inside
    the library (say, while ``TIGER.fit`` loads item text) then names the user's own line,
    not a genrec file. Where every frame is genrec's (the CLI), it names the outermost one.
    """
    import os
    import sys

    package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
    frame = sys._getframe(1)  # the function that warns: stacklevel 1
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package
    ):
        frame = frame.f_back
        level += 1
    return level
