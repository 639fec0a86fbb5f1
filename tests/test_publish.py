"""Publishers: SARIF validity, Markdown safety, text for a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from reviewer.models import Failed, Finding, ReviewResult, Skipped
from reviewer.publish import markdown, safe, sarif, text

DATA = Path(__file__).parent / "data"

FINDINGS = (
    Finding("src/a.py", "critical", "crash on <empty> input, cc @octocat", line=3, end_line=5, category="bug",
            confidence=0.9, fingerprint="0123456789abcdef", replacement="x = ```y```"),
    Finding("src/b.py", "info", "stale comment", category="stale-comment", fingerprint="fedcba9876543210"),
    Finding("src/c.py", "warning", "old code", line=7, side="LEFT", category="dead-code", pass_="cross_file",
            fingerprint="00000000000000aa"),
)
RESULT = ReviewResult(FINDINGS, ("src/a.py", "src/b.py"), (Skipped("x.lock", "ignored by *.lock"),),
                      (Failed("src/d.py", "API error 500"),), ())


def test_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    doc = sarif.document(FINDINGS)
    jsonschema.Draft7Validator(schema).validate(doc)
    results = doc["runs"][0]["results"]
    assert [r["partialFingerprints"]["reviewerFingerprint/v1"] for r in results] == [f.fingerprint for f in FINDINGS]
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "endLine": 5}
    # Old-file lines do not exist at head: shown on line 1, the message says where (tests/test_sarif.py).
    assert results[2]["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert {r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]} == {"bug", "stale-comment", "dead-code"}


def test_markdown_escapes_html_and_defuses_mentions() -> None:
    out = markdown.render(RESULT)
    assert "<empty>" not in out and "&lt;empty&gt;" in out
    assert "@octocat" not in out and "@\u200boctocat" in out
    assert "````\nx = ```y```\n````" in out  # fence longer than any backtick run inside
    assert "src/d.py" in out and "x.lock" in out


def test_safe_leaves_plain_text_alone() -> None:
    assert safe("use a dict, not a list") == "use a dict, not a list"


def test_text_report_lists_every_finding_skip_and_failure() -> None:
    out = text.render(RESULT)
    assert "CRITICAL src/a.py:3-5" in out
    assert "src/c.py:7 (old)" in out
    assert "skipped  x.lock: ignored by *.lock" in out
    assert "FAILED   src/d.py: API error 500" in out
