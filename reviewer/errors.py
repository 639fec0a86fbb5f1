"""Errors the library raises, and the exit code each maps to.

    ReviewerError               3  unexpected failure inside reviewer's domain
    ├── UsageError              2  bad flags, missing input, missing credentials
    │   └── ConfigError         2  a configuration file names an unknown key or a wrong type
    └── ServiceError            3  the model or an API failed and no result could be produced

Exit code 1 (a finding at or above --fail-on) is a result, not an error: the CLI
computes it from the findings. Only `reviewer.cli` turns these into exit codes.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_SERVICE = 3


class ReviewerError(Exception):
    """Base of every error reviewer raises on purpose; `str()` is the one line shown."""

    exit_code = EXIT_SERVICE


class UsageError(ReviewerError):
    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration file is wrong; the message names the file and the key."""


class ServiceError(ReviewerError):
    exit_code = EXIT_SERVICE
