"""Progress of long steps, in a terminal and in logs alike.

A step that may take long (fitting EASE on 9k items, embedding a catalogue, a tuning trial)
prints, on the console the trainer writes its epoch lines to
(:func:`~genrec.training.trainer.progress_console`):

- a timestamped line when it starts;
- while it runs, in logs, pipes and notebooks, a timestamped line every ``every`` seconds
  with the time elapsed and, when the amount of work is known (``total``), how much is done
  and an ETA; on a terminal a live status line shows the same instead;
- a timestamped line when it ends, with the time it took (or that it failed).

``every`` defaults to ``$GENREC_PROGRESS_SECONDS`` or 20 seconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from genrec.training.trainer import log_line, progress_console

T = TypeVar("T")

#: environment variable: seconds between two progress lines in logs (default 20)
EVERY_ENV = "GENREC_PROGRESS_SECONDS"
DEFAULT_EVERY = 20.0


def default_every() -> float:
    """Seconds between progress lines: ``$GENREC_PROGRESS_SECONDS`` or 20."""
    try:
        value = float(os.environ.get(EVERY_ENV, DEFAULT_EVERY))
    except ValueError:
        return DEFAULT_EVERY
    return value if value > 0 else DEFAULT_EVERY


def format_seconds(seconds: float) -> str:
    """``4.2 s``, ``58 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class LongStep(AbstractContextManager["LongStep"]):
    """Context manager around a step that may take long (see the module docstring).

    Args:
        what: what the step does, e.g. ``"fitting ease on movielens-small"``.
        total: the amount of work when known (batches, trials); :meth:`advance` counts it and
            the progress lines then carry an ETA.
        unit: the unit of ``total`` (``"batches"``).
        every: seconds between progress lines in logs (default :func:`default_every`).
        say: where the lines go (default :func:`~genrec.training.trainer.log_line`, which
            timestamps them).
        live: show a live status line between the start and end lines on a terminal
            (default: when the console is a terminal and ``say`` is the default).
        quiet_start: skip the start line (e.g. when the caller has just said it).
    """

    def __init__(
        self,
        what: str,
        *,
        total: int | None = None,
        unit: str = "",
        every: float | None = None,
        say: Callable[[str], None] | None = None,
        live: bool | None = None,
        quiet_start: bool = False,
    ):
        self.what = what
        self.total = int(total) if total is not None else None
        self.unit = unit
        self.every = float(every) if every is not None else default_every()
        self.say = say or log_line
        console = progress_console()
        self.live = (console.is_terminal and say is None) if live is None else bool(live)
        self.quiet_start = quiet_start
        self.done = 0
        self.started = 0.0
        self.seconds: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: Any = None

    # ------------------------------------------------------------------ progress
    def advance(self, n: int = 1) -> None:
        """``n`` more units of ``total`` done."""
        self.done += n

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self) -> float | None:
        """Seconds left, from the pace so far (``None`` without ``total`` or progress)."""
        if not self.total or self.done <= 0:
            return None
        left = max(self.total - self.done, 0)
        return self.elapsed() / self.done * left

    def describe(self) -> str:
        """``<what>: 40 s elapsed, 12/30 batches, ETA 1 min 00 s``."""
        text = f"{self.what}: {format_seconds(self.elapsed())} elapsed"
        if self.total:
            text += f", {self.done}/{self.total}{' ' + self.unit if self.unit else ''}"
            eta = self.eta()
            if eta is not None:
                text += f", ETA {format_seconds(eta)}"
        return text

    # ------------------------------------------------------------------ context
    def __enter__(self) -> LongStep:
        self.started = time.perf_counter()
        if not self.quiet_start:
            self.say(f"{self.what}: started")
        if self.live:
            self._status = progress_console().status(self.what)
            self._status.__enter__()
        self._thread = threading.Thread(target=self._beat, name="genrec-progress", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        interval = 1.0 if self.live else self.every
        while not self._stop.wait(interval):
            if self.live:
                self._status.update(self.describe())
            else:
                self.say(self.describe())

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._status is not None:
            self._status.__exit__(None, None, None)
        self.seconds = self.elapsed()
        if exc_type is None:
            self.say(f"{self.what}: done in {format_seconds(self.seconds)}")
        elif not issubclass(exc_type, (KeyboardInterrupt, GeneratorExit)):
            took = format_seconds(self.seconds)
            self.say(f"{self.what}: stopped after {took} ({exc_type.__name__})")


def long_step(what: str, enabled: bool = True, **kwargs: Any) -> AbstractContextManager[Any]:
    """:class:`LongStep` when ``enabled``, else a context that prints nothing."""
    return LongStep(what, **kwargs) if enabled else nullcontext()


def track(
    items: Iterable[T], what: str, *, total: int, unit: str = "", enabled: bool = True
) -> Iterator[T]:
    """Iterate ``items`` inside a :class:`LongStep` that counts one unit per item."""
    if not enabled:
        yield from items
        return
    with LongStep(what, total=total, unit=unit) as step:
        for item in items:
            yield item
            step.advance()
