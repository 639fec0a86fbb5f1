"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning.

Rules are the finding categories; `partialFingerprints` carries our fingerprint,
which does not change when code moves, so code scanning tracks one alert across
runs.
"""

from __future__ import annotations

import json
from typing import Iterable

from .. import __version__
from ..models import Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"critical": "error", "warning": "warning", "info": "note"}


def _rule(category: str) -> dict[str, object]:
    text = f"reviewer: {category.replace('-', ' ')}"
    return {
        "id": category,
        "name": category.title().replace("-", ""),
        "shortDescription": {"text": text},
        "fullDescription": {"text": f"Problems of the category '{category}' found by reviewer's model review."},
        "help": {"text": "Read the finding's message; it explains the problem and, where possible, a fix."},
    }


def _result(f: Finding) -> dict[str, object]:
    physical: dict[str, object] = {"artifactLocation": {"uri": f.file, "uriBaseId": "%SRCROOT%"}}
    if f.line is not None and f.side == "RIGHT":
        region: dict[str, int] = {"startLine": f.line}
        if f.end_line:
            region["endLine"] = f.end_line
        physical["region"] = region
    text = f.issue + (f"\n\nFix: {f.suggestion}" if f.suggestion else "")
    result: dict[str, object] = {
        "ruleId": f.category,
        "level": LEVEL[f.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {"reviewerFingerprint/v1": f.fingerprint},
        "properties": {"severity": f.severity, "pass": f.pass_},
    }
    if f.confidence is not None:
        result["properties"]["confidence"] = f.confidence  # type: ignore[index]
    return result


def document(findings: Iterable[Finding], *, automation_id: str | None = None) -> dict[str, object]:
    findings = list(findings)
    categories = sorted({f.category for f in findings})
    run: dict[str, object] = {
        "tool": {"driver": {"name": "reviewer", "version": __version__,
                            "rules": [_rule(c) for c in categories]}},
        "results": [_result(f) for f in findings],
        "columnKind": "unicodeCodePoints",
    }
    if automation_id:
        run["automationDetails"] = {"id": automation_id}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(findings: Iterable[Finding], **kwargs: str) -> str:
    return json.dumps(document(findings, **kwargs), indent=2, ensure_ascii=False) + "\n"
