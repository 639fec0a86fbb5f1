"""Keep secrets out of everything reviewer writes.

Code under review can ask the model to print the environment; the model never
sees it, but a finding could still quote a token that sits in the diff, and
error texts can echo headers. Every text that leaves reviewer (findings, notes,
errors, reports, comments) passes through `redact`.
"""

from __future__ import annotations

import functools
import os
import re

REDACTED = "[redacted]"

# Names of environment variables whose values are secrets.
_SECRET_NAME = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH_TOKEN)$", re.I)
# Well-known token shapes, redacted even when they are not in our environment.
_TOKEN_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|AKIA[0-9A-Z]{16}"
)


@functools.lru_cache(maxsize=1)
def _secret_values(snapshot: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    values = {v for k, v in snapshot if _SECRET_NAME.search(k) and len(v) >= 8}
    return tuple(sorted(values, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every secret of the environment and every token-shaped string replaced."""
    if not text:
        return text
    for value in _secret_values(tuple(sorted(os.environ.items()))):
        if value in text:
            text = text.replace(value, REDACTED)
    return _TOKEN_SHAPES.sub(REDACTED, text)
