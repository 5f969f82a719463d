"""Progress display on stderr: a spinner for long steps, a bar for loops.

Both helpers draw with ``rich.progress`` on stderr and leave nothing behind when they
end (transient). They stay silent when the ``farmland`` group was given ``-q`` (it
stores ``ctx.obj["quiet"]``), when stderr is not a terminal (rich draws nothing
then), and inside another display of this module (rich allows one live display at a
time; the outer one keeps showing). Output printed meanwhile (tables on a terminal
stdout, log lines on stderr) appears above the spinner; a piped or redirected stdout
is left alone.

>>> with step("分类 / Classify"):            # doctest: +SKIP
...     classify_run(inputs)
>>> for path in track(files, "reading"):     # doctest: +SKIP
...     read(path)
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

#: a step shows its spinner only once it has run this long (seconds)
SPINNER_DELAY_S = 1.0

_active = threading.Lock()  # held while a display of this module is live


def is_quiet(quiet: bool | None = None) -> bool:
    """``quiet`` when given, else ``ctx.obj["quiet"]`` of the running click command."""
    if quiet is not None:
        return bool(quiet)
    import click

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return bool(obj.get("quiet")) if isinstance(obj, dict) else False


def _progress(*, bar: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if bar:
        columns += [BarColumn(), MofNCompleteColumn()]
    # stdout goes through the display only when it shares the terminal; piped or
    # redirected results must stay on stdout
    return Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True),
                    transient=True, redirect_stdout=_isatty(sys.stdout))


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextmanager
def step(description: str, *, quiet: bool | None = None,
         delay: float = SPINNER_DELAY_S) -> Iterator[None]:
    """Show a spinner, ``description`` and the elapsed time on stderr while the block
    runs, from ``delay`` seconds on (short steps show nothing).

    Parameters
    ----------
    description
        What is running, e.g. ``"3  Sampling plan / 加密采样布点"``.
    quiet
        Draw nothing; ``None`` reads ``-q`` of the running ``farmland`` command.
    delay
        Seconds before the spinner appears.
    """
    if is_quiet(quiet) or not _active.acquire(blocking=False):
        yield
        return
    progress = _progress(bar=False)
    progress.add_task(description, total=None)
    state = {"shown": False, "done": False}
    guard = threading.Lock()

    def show() -> None:
        with guard:
            if not state["done"]:
                _start(progress)
                state["shown"] = True

    timer = threading.Timer(delay, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with guard:
            state["done"] = True
            if state["shown"]:
                _stop(progress)
        _active.release()


def track(iterable: Iterable[T], description: str, *, total: int | None = None,
          quiet: bool | None = None) -> Iterator[T]:
    """Yield the items of ``iterable`` with a progress bar (count, elapsed time) on stderr.

    Parameters
    ----------
    iterable
        The loop's items.
    description
        What the loop does.
    total
        Number of items when ``iterable`` has no ``len()`` (else the bar only pulses).
    quiet
        Draw nothing; ``None`` reads ``-q`` of the running ``farmland`` command.
    """
    if is_quiet(quiet) or not _active.acquire(blocking=False):
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    progress = _progress(bar=True)
    task = progress.add_task(description, total=total)
    _start(progress)
    try:
        for item in iterable:
            yield item
            progress.advance(task)
    finally:
        _stop(progress)
        _active.release()


# -- log lines above the display ---------------------------------------------------------
def _start(progress) -> None:
    """Start the display; root log handlers writing to stderr follow rich's redirect so
    that log lines print above the spinner instead of through it."""
    original = sys.stderr
    progress.start()
    if sys.stderr is not original:  # rich redirected stderr (a terminal)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is original:
                handler.setStream(sys.stderr)


def _stop(progress) -> None:
    """Stop the display and point log handlers back at the real stderr."""
    from rich.file_proxy import FileProxy

    progress.stop()
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if isinstance(handler, logging.StreamHandler) and isinstance(stream, FileProxy):
            handler.setStream(stream.rich_proxied_file)
