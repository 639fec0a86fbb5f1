"""Where the library says how far it has got; the CLI picks how it is shown.

The library never prints. Long phases (per-file review, planning an audit,
collecting results) report through a `Progress`; this base says nothing.
On a terminal the CLI shows `Bars` (rich, on stderr); elsewhere, such as CI
logs and pipes, `Lines`: one line per phase and per message.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .redact import redact


class Progress:
    """Silent: for library callers and tests."""

    def start(self, label: str, total: int | None = None) -> None:
        """A phase begins; `total` items when known."""

    def advance(self, n: int = 1) -> None:
        """`n` more items of the current phase are done."""

    def stop(self) -> None:
        """The current phase is over."""

    def log(self, message: str) -> None:
        """One line worth telling the user."""


class Lines(Progress):
    """Plain lines on stderr: a phase's count when it ends, and every message."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._label = ""
        self._total: int | None = None
        self._done = 0

    def start(self, label: str, total: int | None = None) -> None:
        self._label, self._total, self._done = label, total, 0

    def advance(self, n: int = 1) -> None:
        self._done += n

    def stop(self) -> None:
        if self._label and self._total:
            click.echo(f"{self._prefix}: {self._label}: {self._done}/{self._total}", err=True)
        self._label = ""

    def log(self, message: str) -> None:
        click.echo(f"{self._prefix}: {redact(message)}", err=True)


class Bars(Progress):
    """A transient progress bar per phase and dimmed message lines, on stderr."""

    def __init__(self, prefix: str) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichBars, TextColumn, TimeElapsedColumn

        self._prefix = prefix
        self._escape = escape
        self._console = Console(stderr=True)
        self._bars = RichBars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=self._console, transient=True)
        self._task: Any = None

    def start(self, label: str, total: int | None = None) -> None:
        self._bars.start()
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


def for_stderr(prefix: str, quiet_off_terminal: bool = False) -> Progress:
    """Bars on a terminal; elsewhere plain lines, or nothing when `quiet_off_terminal`."""
    if sys.stderr.isatty():
        return Bars(prefix)
    return Progress() if quiet_off_terminal else Lines(prefix)
