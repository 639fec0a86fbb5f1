"""Where the library says how far it has got; the CLI picks how it is shown.

The library never prints. Long phases (per-file review, planning an audit,
collecting results) report through a `Progress`; this base says nothing.
On a terminal the CLI shows `Bars` (rich, on stderr); elsewhere, such as CI
logs and pipes, `Lines`: one line per phase and per message, and while a
phase runs a heartbeat line every `REVIEWER_PROGRESS_SECONDS` (default 15):
items done, in flight, time elapsed. Without it, a two-minute review and a
hung one looked the same in an Actions log (issue 11).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import click

from .config import finite_number
from .errors import UsageError
from .redact import redact

HEARTBEAT_SECONDS = 15.0


def heartbeat_seconds() -> float:
    """REVIEWER_PROGRESS_SECONDS, else 15; UsageError unless it is a finite number above 0."""
    text = os.environ.get("REVIEWER_PROGRESS_SECONDS", "").strip()
    if not text:
        return HEARTBEAT_SECONDS
    try:
        value = finite_number(text)
    except ValueError as exc:
        raise UsageError(f"REVIEWER_PROGRESS_SECONDS={text[:40]!r}: {exc} of seconds") from None
    if value <= 0:
        raise UsageError(f"REVIEWER_PROGRESS_SECONDS={text[:40]!r}: expected more than 0 seconds")
    return value


class Progress:
    """Silent: for library callers and tests."""

    def start(self, label: str, total: int | None = None) -> None:
        """A phase begins; `total` items when known."""

    def advance(self, n: int = 1) -> None:
        """`n` more items of the current phase are done."""

    def stop(self) -> None:
        """The current phase is over."""

    def in_flight(self, n: int) -> None:
        """`n` items of the current phase are under way now (requests sent, not answered)."""

    def log(self, message: str) -> None:
        """One line worth telling the user."""


class Lines(Progress):
    """Plain lines on stderr: a phase's count when it ends, every message, and a heartbeat.

    The heartbeat is a daemon thread that lives while a phase runs (from
    `start` to `stop`) and prints every `every` seconds.
    """

    def __init__(self, prefix: str, every: float | None = None) -> None:
        self._prefix = prefix
        self._label = ""
        self._total: int | None = None
        self._done = 0
        self._busy = 0
        self._every = heartbeat_seconds() if every is None else every
        self._began = time.monotonic()
        self._quiet: threading.Event | None = None

    def start(self, label: str, total: int | None = None) -> None:
        if label == self._label and self._quiet is not None:
            # The same phase again (an audit's wait, poll after poll): new counts, the heartbeat goes on.
            self._total, self._done = total, 0
            return
        self._end_heartbeat()
        self._label, self._total, self._done = label, total, 0
        self._quiet = threading.Event()
        threading.Thread(target=self._beat, args=(self._quiet,), name="reviewer-progress", daemon=True).start()

    def advance(self, n: int = 1) -> None:
        self._done += n

    def in_flight(self, n: int) -> None:
        self._busy = n

    def stop(self) -> None:
        self._end_heartbeat()
        if self._label and self._total:
            click.echo(f"{self._prefix}: {self._label}: {self._done}/{self._total}", err=True)
        self._label = ""

    def heartbeat(self) -> str:
        """The line the heartbeat prints: the phase, items done, in flight, seconds since the first phase."""
        total = f"/{self._total}" if self._total else ""
        return (f"{self._prefix}: {self._label}: {self._done}{total} done, {self._busy} in flight, "
                f"{time.monotonic() - self._began:.0f} s elapsed")

    def _beat(self, quiet: threading.Event) -> None:
        while not quiet.wait(self._every):
            click.echo(self.heartbeat(), err=True)

    def _end_heartbeat(self) -> None:
        if self._quiet is not None:
            self._quiet.set()
            self._quiet = None

    def log(self, message: str) -> None:
        click.echo(f"{self._prefix}: {redact(message)}", err=True)


class Bars(Progress):
    """A transient progress bar per phase and dimmed message lines, on stderr."""

    def __init__(self, prefix: str) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBars

        self._prefix = prefix
        self._escape = escape
        self._console = Console(stderr=True)
        self._bars = RichBars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=self._console, transient=True)
        self._task: Any = None
        self._label = ""

    def start(self, label: str, total: int | None = None) -> None:
        if self._task is not None and self._label == label:
            self._bars.update(self._task, total=total, completed=0)
            return
        self._bars.start()
        self._label = label
        self._task = self._bars.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, n)

    def stop(self) -> None:
        if self._task is not None:
            self._bars.remove_task(self._task)
            self._task = None
        self._bars.stop()

    def log(self, message: str) -> None:
        self._console.print(f"[dim]{self._prefix}:[/dim] {self._escape(redact(message))}", highlight=False)


def for_stderr(prefix: str) -> Progress:
    """Bars on a terminal; elsewhere plain lines with a heartbeat."""
    if sys.stderr.isatty():
        return Bars(prefix)
    return Lines(prefix)
