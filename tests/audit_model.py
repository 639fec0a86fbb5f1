"""A scripted model and batch outcomes for audit tests, driven by markers in the audited code.

It reads only what the API would see (the request body): the `File:` header
and the numbered lines of the audit prompt. Markers in a line of code:

    # BUG        a warning on that line          # CRIT      a critical on that line
    # INVALID    the answer breaks the schema    # OTHER     a finding on another file
    # FLAKY      first submission errored        # SLOW      first submission expired
    # BROKEN     every submission errored        # HUGE      "prompt is too long" while the part has > 4 lines
"""

from __future__ import annotations

import re
from typing import Any

from tests.emulators.anthropic import Fault

LINE = re.compile(r"^\s*(\d+) \| (.*)$", re.M)
RETRY = re.compile(r"-r\d$")


def user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def path_of(body: dict[str, Any]) -> str:
    match = re.search(r"^File: (.+)$", user_text(body), re.M)
    return match.group(1) if match else ""


def numbered(body: dict[str, Any]) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in LINE.finditer(user_text(body))]


def audit_model(body: dict[str, Any]) -> Any:
    path = path_of(body)
    lines = numbered(body)
    if any("# INVALID" in text for _, text in lines):
        return {"findings": [{"file": path, "severity": "fatal", "issue": "not a severity"}]}
    findings = []
    for n, text in lines:
        if "# BUG" in text or "# CRIT" in text:
            findings.append({
                "file": path, "line": n, "end_line": None, "side": "RIGHT",
                "severity": "critical" if "# CRIT" in text else "warning", "category": "bug",
                "issue": f"{text.split('#')[0].strip()[:40]} divides by zero when the input is empty.",
                "suggestion": "Check for an empty input first.", "replacement": None, "confidence": 0.9,
            })
        if "# OTHER" in text:
            findings.append({"file": "somewhere/else.py", "line": 1, "severity": "info", "issue": "elsewhere"})
    return {"findings": findings}


def batch_outcome(custom_id: str, params: dict[str, Any]) -> Any:
    lines = numbered(params)
    text = "\n".join(t for _, t in lines)
    first = RETRY.search(custom_id) is None
    if "# HUGE" in text and len(lines) > 4:
        return Fault(400, "invalid_request_error", "prompt is too long: 1234567 tokens > 1000000 maximum")
    if "# BROKEN" in text:
        return "errored"
    if "# FLAKY" in text and first:
        return "errored"
    if "# SLOW" in text and first:
        return "expired"
    return None
