"""Errors the library raises, and the exit code each maps to.

    ReviewerError               3  unexpected failure inside reviewer's domain
    ├── UsageError              2  bad flags, missing input, missing credentials
    │   ├── ConfigError         2  a configuration file names an unknown key or a wrong type
    │   └── StateError          2  the audit state cannot be used as it is: on a read-only
    │                              filesystem, on a full disk, locked by another process, damaged
    └── ServiceError            3  the model or an API failed and no result could be produced

Exit code 1 (a finding at or above --fail-on, or an estimate above --max-cost)
is a result, not an error: the CLI computes it. Only `reviewer.cli` turns these
into exit codes.

Stopped runs (issue 11). A review cut by its `--timeout` deadline that produced
something exits 0 or 1 as usual, every output marked incomplete; one that
produced nothing raises ServiceError (3). A review stopped by SIGINT or SIGTERM
writes what it has, marked incomplete, and exits 128 + the signal (130, 143),
the shell's convention, so a CI runner sees the job was interrupted. An audit
whose `--timeout` passed before its batches existed (planning, canary,
submitting) saves its state and exits 3; one whose batches are still
processing exits 0 (the next run collects them).
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_SERVICE = 3
EXIT_SIGINT = 128 + signal.SIGINT    # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


def exit_for_signal(signum: int) -> int:
    """128 + the signal number: what a shell reports for a process the signal ended."""
    return 128 + int(signum)


class ReviewerError(Exception):
    """Base of every error reviewer raises on purpose; `str()` is the one line shown."""

    exit_code = EXIT_SERVICE


class UsageError(ReviewerError):
    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration file is wrong; the message names the file and the key."""


class StateError(UsageError):
    """The audit state cannot be read or written; the message names the cause and the path.

    `cause` is one of: read-only, full, locked, damaged. Only `damaged` ever
    advises moving the file aside: the others hold a valid state.
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class ServiceError(ReviewerError):
    exit_code = EXIT_SERVICE
