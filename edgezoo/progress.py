"""Progress bars and status lines on stderr (rich), quiet when EDGEZOO_QUIET is set.

Every text printed here is literal: paths, names and converters' messages may hold what rich
would read as markup ("[bold]", "[/x]"), which must neither vanish nor raise."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)


def quiet() -> bool:
    return bool(os.environ.get("EDGEZOO_QUIET"))


@contextlib.contextmanager
def bar(description: str, total: int):
    """Yields ``advance(n, note)``, which any thread may call; a no-op when quiet."""
    if quiet():
        yield lambda n=1, note="": None
        return
    if not console.is_terminal:  # a log file or CI: a line at each tenth instead of a redrawn bar
        done = 0
        lock = threading.Lock()  # advanced from several threads (export's formats)
        print(f"{description}: 0/{total}", file=sys.stderr, flush=True)

        def advance_plain(n: int = 1, note: str = "") -> None:
            nonlocal done
            with lock:
                before, done = done, done + n
                if done * 10 // max(total, 1) != before * 10 // max(total, 1) or done == total:
                    print(f"{description}: {done}/{total} {note}", file=sys.stderr, flush=True)

        yield advance_plain
        return
    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}", markup=False),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as p:
        task = p.add_task(description, total=total, note="")

        def advance(n: int = 1, note: str = "") -> None:
            p.update(task, advance=n, note=note)

        yield advance


@contextlib.contextmanager
def step(description: str):
    """A spinner for one step that takes seconds (a conversion, a calibration)."""
    if quiet() or not console.is_terminal:
        if not quiet():
            print(f"  {description} ...", file=sys.stderr, flush=True)
        yield
        return
    with console.status(Text(description)):
        yield


def info(message: str) -> None:
    if not quiet():
        console.print(Text(message), highlight=False)


def warn(message: str) -> None:
    console.print(Text.assemble(("warning:", "yellow"), " ", message), highlight=False)


def status(label: str, style: str, message: str) -> None:
    """A line with a styled label ("ok", "FAILED") before literal text."""
    console.print(Text.assemble((label, style), " ", message), highlight=False)
