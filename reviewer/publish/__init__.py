"""Publishers: turn a ReviewResult (or a Plan) into text, JSON, Markdown or SARIF.

Model text is untrusted: `safe` escapes HTML and defuses @mentions wherever it
is rendered as Markdown, so a finding can neither ping people nor break a page.
"""

from __future__ import annotations

import html
import re

from ..diff import shown_path
from ..models import SEVERITIES, Finding

_MENTION = re.compile(r"@(?=[A-Za-z0-9])")


def safe(text: str) -> str:
    """Model text made inert for Markdown: HTML escaped, `@name` no longer a mention."""
    return _MENTION.sub("@\u200b", html.escape(text, quote=False))


def counts(findings: tuple[Finding, ...] | list[Finding]) -> dict[str, int]:
    out: dict[str, int] = {s: 0 for s in SEVERITIES}
    for f in findings:
        out[f.severity] += 1
    return out


def location(f: Finding) -> str:
    if f.line is None:
        return shown_path(f.file)
    side = " (old)" if f.side == "LEFT" else ""
    return f"{shown_path(f.file)}:{f.line}" + (f"-{f.end_line}" if f.end_line else "") + side
