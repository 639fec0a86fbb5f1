"""Anchoring and fingerprints: where a finding lands and how it is recognised later."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewer import diff, findings
from reviewer.models import Finding

DIFFS = Path(__file__).parent / "data" / "diffs"


def _multi() -> diff.Diff:
    return diff.parse((DIFFS / "multi_hunk.diff").read_text())


def _raw(**kw: object) -> dict:
    return {"file": "multi.py", "severity": "warning", "issue": "off by one in the loop bound", "category": "bug", **kw}


def test_commentable_line_is_kept_on_its_line() -> None:
    f = findings.anchor(_raw(line=3), _multi(), "per_file").finding
    assert (f.line, f.end_line, f.side) == (3, None, "RIGHT")


def test_left_side_uses_old_numbers() -> None:
    f = findings.anchor(_raw(line=30, side="LEFT"), _multi(), "per_file").finding
    assert (f.line, f.side) == (30, "LEFT")
    g = findings.anchor(_raw(line=34, side="LEFT"), _multi(), "per_file").finding
    assert g.line is None  # old file has no line 34 in any hunk


def test_line_outside_the_diff_becomes_file_level_and_names_the_line() -> None:
    f = findings.anchor(_raw(line=15), _multi(), "per_file").finding
    assert f.line is None
    assert "line 15" in f.issue and "outside the diff" in f.issue


def test_range_across_hunks_is_clipped_to_the_hunk_of_its_last_line() -> None:
    f = findings.anchor(_raw(line=4, end_line=29), _multi(), "per_file").finding
    assert (f.line, f.end_line) == (27, 29)


def test_range_ending_outside_is_clipped_to_its_first_hunk() -> None:
    f = findings.anchor(_raw(line=2, end_line=12), _multi(), "per_file").finding
    assert (f.line, f.end_line) == (2, 6)


def test_reversed_range_is_put_in_order() -> None:
    f = findings.anchor(_raw(line=31, end_line=28), _multi(), "per_file").finding
    assert (f.line, f.end_line) == (28, 31)


def test_replacement_for_clipped_lines_becomes_prose() -> None:
    f = findings.anchor(_raw(line=2, end_line=12, replacement="new code"), _multi(), "per_file").finding
    assert f.replacement is None
    assert "new code" in f.suggestion


def test_finding_on_a_file_outside_the_diff_is_rejected_with_a_note() -> None:
    result = findings.anchor(_raw(file="../../etc/passwd", line=1), _multi(), "per_file")
    assert result.finding is None
    assert "../../etc/passwd" in result.note


def test_path_prefixes_are_normalised() -> None:
    assert findings.anchor(_raw(file="./multi.py", line=3), _multi(), "per_file").finding.file == "multi.py"
    assert findings.anchor(_raw(file="b/multi.py", line=3), _multi(), "per_file").finding.file == "multi.py"


def test_identity_tells_same_problem_from_same_line() -> None:
    """README, A finding's identity: moved and reworded is the same problem; another problem on the line is not."""
    from reviewer import identity

    before = diff.parse(
        "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,3 @@\n x = 1\n+total = sum(items) / len(items)\n y = 2\n"
    )
    after = diff.parse(
        "--- a/m.py\n+++ b/m.py\n@@ -10,2 +10,5 @@\n x = 1\n+# note\n+\n+total  =  sum(items) / len(items)\n y = 2\n"
    )
    a = findings.anchor({"file": "m.py", "severity": "warning", "category": "edge-case", "issue": "divides by zero when items is empty", "line": 2}, before, "per_file").finding
    # The code moved from line 2 to 13: relocation finds it by its hash.
    wanted = identity.code_hash(findings.code_at(before.files[0], 2, None, "RIGHT"))
    now = identity.relocate(2, None, wanted, lambda n: after.files[0].line_text(n, "RIGHT"), limit=50)
    assert now == (13, None)
    reworded = findings.anchor({"file": "m.py", "severity": "critical", "category": "edge-case", "issue": "items may be empty: this divides by zero", "line": 12}, after, "cross_file").finding
    other = findings.anchor({"file": "m.py", "severity": "warning", "category": "edge-case", "issue": "sum() of floats loses precision; use math.fsum", "line": 13}, after, "per_file").finding
    assert identity.match([reworded, other], [a], {0: 13}) == {0: 0}
    assert other.fingerprint != a.fingerprint
    # Cited by the model: the same problem whatever the wording.
    cited = findings.anchor({"file": "m.py", "severity": "warning", "category": "edge-case", "issue": "ZeroDivisionError on []", "line": 13, "repeats": "P1"}, after, "per_file").finding
    assert cited.repeats == "P1" and identity.match([cited], [a], {0: 13}, citations={0: 0}) == {0: 0}
    # The fingerprint is stable for the same finding.
    again = findings.anchor({"file": "m.py", "severity": "warning", "category": "edge-case", "issue": "divides by zero when items is empty", "line": 2}, before, "per_file").finding
    assert again.fingerprint == a.fingerprint


def test_apply_groups_merges_duplicates_and_keeps_unmentioned_findings() -> None:
    fs = [Finding("a.py", "info", f"issue {i}", fingerprint=f"{i:016x}") for i in range(4)]
    merged, notes = findings.apply_groups(fs, [
        {"ids": ["F1", "F3"], "severity": "critical", "confidence": 0.9, "issue": "merged"},
        {"ids": ["F2", "F1", "F99"], "severity": "warning", "confidence": 0.4, "issue": None},
    ])
    assert [(f.issue, f.severity, f.confidence) for f in merged] == [
        ("merged", "critical", 0.9), ("issue 1", "warning", 0.4), ("issue 3", "info", None)]
    assert "did not rate 1" in notes[0]


def test_finalize_orders_by_severity_and_keeps_both_of_equal_fingerprints() -> None:
    fs = [Finding("b.py", "info", "x", fingerprint="0" * 16), Finding("a.py", "critical", "y", fingerprint="0" * 16)]
    out = findings.finalize(fs)
    assert [f.severity for f in out] == ["critical", "info"]
    assert out[0].fingerprint != out[1].fingerprint


@pytest.mark.parametrize("a, b, same", [
    ("median() raises IndexError for an empty list", "IndexError when median() gets an empty list", True),
    ("broad except hides errors", "race between the check and the write", False),
    ("deliver() can raise requests.Timeout, which is not a WebhookFailed",
     "a requests.Timeout raised by deliver() is not caught (only WebhookFailed is)", True),
    ("`os` is imported but never used", "`sys` is imported but never used", False),
    ("`os` is imported but never used", "the import of `os` is unused", True),
])
def test_similar_issue_texts_are_the_readme_examples(a: str, b: str, same: bool) -> None:
    from reviewer import identity

    assert identity.similar(a, b) is same


def test_a_finding_on_a_file_whose_name_holds_a_backslash_is_placed() -> None:
    d = diff.parse("--- a/back\\slash.py\n+++ b/back\\slash.py\n@@ -1 +1,2 @@\n x = 1\n+y = 2\n")
    placed = findings.anchor({"file": "back\\slash.py", "line": 2, "severity": "info", "issue": "y"}, d, "per_file")
    assert placed.finding is not None and placed.finding.file == "back\\slash.py" and placed.finding.line == 2
