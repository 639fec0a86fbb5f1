"""The three review passes. Each module builds the user message of its calls and
turns answers into findings; `reviewer.engine` runs them in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .. import prompts
from ..models import Finding, PriorFinding


def render_prior(prior: Sequence[PriorFinding]) -> str:
    """The "prior findings" block for a re-review, or "" when there are none.

    Each row carries its id, for `repeats`, and says which commit its line
    refers to: the head under review, or where it was before its code changed.
    """
    if not prior:
        return ""
    rows = []
    for p in prior:
        row: dict[str, object] = {"id": p.id, **_brief(p.finding)}
        if p.was:
            row["was"] = p.was
        rows.append(json.dumps(row, ensure_ascii=False))
    lines = "\n".join(rows)
    head = prior[0].at
    commit = f"the head commit under review ({head[:12]})" if head else "the code under review"
    return prompts.render("prior", findings=lines, boundary=prompts.boundary(lines), commit=commit)


def _brief(f: Finding) -> dict[str, object]:
    return {
        k: v
        for k, v in {
            "file": f.file, "line": f.line, "end_line": f.end_line, "side": f.side,
            "severity": f.severity, "category": f.category, "issue": f.issue,
        }.items()
        if v is not None
    }


def render_findings(findings: Sequence[Finding], ids: bool = False) -> str:
    rows = []
    for i, f in enumerate(findings, 1):
        row = _brief(f)
        if ids:
            row = {"id": f"F{i}", **row, "pass": f.pass_}
            if f.confidence is not None:
                row["confidence"] = f.confidence
        rows.append(json.dumps(row, ensure_ascii=False))
    return "\n".join(rows) if rows else "(none)"
