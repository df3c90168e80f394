"""The one console genrec reports progress on (stderr): the trainer's epoch lines, the CLI's
status, and long steps such as evaluation.

On a terminal a long step shows a transient progress bar; in logs, pipes, CI and notebooks
(no terminal) it prints timestamped lines instead, since a bar would print nothing: a start
line, progress with an ETA about every 10%, and an end line with the time taken.

:func:`progress` is for work that can be counted (users, batches). :class:`LongStep` is for a
step that cannot (fitting EASE, one tuning trial): a start line, a line every
``$GENREC_PROGRESS_SECONDS`` (20) with the time elapsed (and an ETA when it is told the
amount of work), or a live status line on a terminal, and an end line with the time.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@functools.lru_cache(maxsize=1)
def progress_console() -> Console:
    """The stderr console shared by the trainer's progress bar and the CLI's status line
    (one console, so rich nests the two live displays instead of garbling them)."""
    from rich.console import Console

    return Console(stderr=True)


def log_line(msg: str) -> None:
    """Print ``msg`` as one timestamped, unstyled line on :func:`progress_console`."""
    progress_console().print(
        f"[{time.strftime('%H:%M:%S')}] {msg}", markup=False, highlight=False, soft_wrap=True
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@contextlib.contextmanager
def progress(
    total: int, description: str, *, enabled: bool = True, unit: str = "users"
) -> Iterator[Callable[[int], None]]:
    """Report a long step: yields ``advance(n)`` to call as work gets done.

    On a terminal: a transient rich bar. Elsewhere: timestamped lines (start; about every
    10% with the rate and an ETA; the end with the time taken). ``enabled=False`` prints
    nothing.
    """
    if not enabled or total <= 0:
        yield lambda n: None
        return
    console = progress_console()
    if console.is_terminal:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)
        return
    start = time.perf_counter()
    state = {"done": 0, "next": max(total // 10, 1)}
    log_line(f"{description}: started ({total:,} {unit})")

    def advance(n: int) -> None:
        state["done"] += n
        if state["done"] >= state["next"] and state["done"] < total:
            elapsed = time.perf_counter() - start
            rate = state["done"] / max(elapsed, 1e-9)
            eta = (total - state["done"]) / max(rate, 1e-9)
            log_line(
                f"{description}: {state['done']:,}/{total:,} {unit} "
                f"({100 * state['done'] / total:.0f}%), {rate:,.0f} {unit}/s, "
                f"ETA {_duration(eta)}"
            )
            state["next"] = state["done"] + max(total // 10, 1)

    yield advance
    log_line(f"{description}: done in {_duration(time.perf_counter() - start)}")


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
