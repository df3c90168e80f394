"""The one console genrec reports progress on (stderr): the trainer's epoch lines, the CLI's
status, and long steps such as evaluation.

On a terminal a long step shows a transient progress bar; in logs, pipes, CI and notebooks
(no terminal) it prints timestamped lines instead, since a bar would print nothing: a start
line, progress with an ETA about every 10%, and an end line with the time taken.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

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
