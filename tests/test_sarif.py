"""SARIF that GitHub code scanning accepts and can tell apart (issue 11, items 12-14).

GitHub's limits and the fields it reads are listed, with their sources, at the top of
`reviewer/publish/sarif.py`. Findings are built directly: no model is needed to render them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest

from reviewer import schemas
from reviewer.models import Finding
from reviewer.publish import sarif
from tests.security_table import case

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
CATEGORIES = schemas.load("finding")["properties"]["category"]["enum"]

# jsonschema checks "uri" and "uri-reference" only when rfc3987 or rfc3986-validator is
# installed, and neither is a dependency here: without them the two formats pass anything.
# So they are checked against RFC 3986's grammar (appendix A), written out below.
_UNRESERVED, _SUB_DELIMS, _PCT = r"A-Za-z0-9\-._~", r"!$&'()*+,;=", r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_NC = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}@]|{_PCT})"  # a pchar but ":"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_AUTHORITY = rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?(?:\[[0-9A-Fa-f:.]+\]|{_REG_NAME})(?::[0-9]*)?"
_ABEMPTY = rf"(?:/{_PCHAR}*)*"
_ABSOLUTE = rf"/(?:{_PCHAR}+{_ABEMPTY})?"
_TAIL = rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
URI = re.compile(rf"[A-Za-z][A-Za-z0-9+\-.]*:(?://{_AUTHORITY}{_ABEMPTY}|{_ABSOLUTE}|{_PCHAR}+{_ABEMPTY}|){_TAIL}")
RELATIVE_REF = re.compile(rf"(?://{_AUTHORITY}{_ABEMPTY}|{_ABSOLUTE}|{_NC}+{_ABEMPTY}|){_TAIL}")

FORMATS = copy.deepcopy(jsonschema.Draft7Validator.FORMAT_CHECKER)  # the schema declares draft-07
FORMATS.checks("uri")(lambda v: not isinstance(v, str) or bool(URI.fullmatch(v)))
FORMATS.checks("uri-reference")(
    lambda v: not isinstance(v, str) or bool(URI.fullmatch(v) or RELATIVE_REF.fullmatch(v)))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=FORMATS)


def validate(doc: dict) -> None:
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def results(doc: dict) -> list[dict]:
    return doc["runs"][0]["results"]


def where(result: dict) -> dict:
    return result["locations"][0]["physicalLocation"]


def rules(doc: dict) -> dict[str, dict]:
    return {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}


def finding(file: str = "src/a.py", severity: str = "warning", **kw) -> Finding:
    kw.setdefault("issue", f"problem in {file}")
    kw.setdefault("fingerprint", hashlib.sha256(f"{file}|{severity}|{kw['issue']}".encode()).hexdigest()[:16])
    return Finding(file, severity, **kw)  # type: ignore[arg-type]


def test_the_format_checks_are_on_and_strict() -> None:
    # Without this, a validator that silently skips "uri-reference" would pass any uri.
    for bad in ("my file.py", "caf\u00e9.py", "100%.md", "a#b#c", "x y"):
        assert not FORMATS.conforms(bad, "uri-reference"), bad
    for good in ("src/a.py", "docs/my%20file%20%231%20100%25.md", "caf%C3%A9.py",
                 "https://json.schemastore.org/x.json"):
        assert FORMATS.conforms(good, "uri-reference"), good
    assert not FORMATS.conforms("src/a.py", "uri")


@case("SARIF", "the nightly audit of a 10,000-file repository finds 30,000 problems; GitHub rejects a run of more "
      "than 25,000 results and keeps only 5,000",
      "audit.sarif validates (formats checked) and holds 5,000 results: every critical one, then the most "
      "confident warnings; `run.properties` and a tool notification say 25,000 were left out and that all "
      "are in audit.json")
def test_audit_sarif_of_30000_findings_keeps_the_most_severe_within_githubs_limits() -> None:
    severities = ["critical"] * 3_000 + ["warning"] * 9_000 + ["info"] * 18_000
    findings = [Finding(f"pkg{i % 100}/mod{i % 10_000}.py", sev,  # type: ignore[arg-type]
                        f"problem number {i}", line=i % 400 + 1,
                        category=CATEGORIES[i % len(CATEGORIES)], confidence=(i * 7919 % 1000) / 1000,
                        fingerprint=f"{i:016x}")
                for i, sev in enumerate(severities)]
    start = time.monotonic()
    # As reviewer/audit/report.py's render_sarif calls it.
    doc = json.loads(sarif.render(findings, automation_id="reviewer-audit/7", full_report="audit.json"))
    rendered = time.monotonic() - start
    validate(doc)
    assert time.monotonic() - start < 20, "render and validate stay fast"
    assert rendered < 10

    kept = results(doc)
    assert len(kept) <= sarif.GITHUB_MAX_RESULTS and len(kept) == sarif.GITHUB_STORED_RESULTS == 5_000
    warnings = sorted((f for f in findings if f.severity == "warning"),
                      key=lambda f: (-(f.confidence or 0), f.file, f.line, f.fingerprint))
    expected = {f.fingerprint for f in findings if f.severity == "critical"} | {f.fingerprint for f in warnings[:2_000]}
    assert {r["partialFingerprints"]["reviewerFingerprint/v1"] for r in kept} == expected
    run = doc["runs"][0]
    assert run["automationDetails"]["id"] == "reviewer-audit/7"
    assert run["properties"]["leftOut"] == {"total": 25_000, "overResultLimit": 25_000, "overSizeLimit": 0,
                                            "unsafePath": 0}
    assert run["properties"]["fullReport"] == "audit.json" and run["properties"]["findings"] == 30_000
    note = run["invocations"][0]["toolExecutionNotifications"][0]
    assert note["level"] == "warning"
    assert "25,000 of 30,000 findings are not in this file" in note["message"]["text"]
    assert "audit.json" in note["message"]["text"]
    assert len(doc["runs"]) == 1
    assert all(len(r["locations"]) == 1 for r in kept)
    assert all(len(r["properties"]["tags"]) <= 10 for r in run["tool"]["driver"]["rules"])


def test_more_results_than_github_accepts_are_never_written_whatever_the_limit_asked() -> None:
    findings = [finding(f"f{i}.py", "info", issue=f"p{i}", line=1) for i in range(26_000)]
    doc = sarif.document(findings, limits=sarif.Limits(max_results=100_000))
    assert len(results(doc)) == 25_000
    assert doc["runs"][0]["properties"]["leftOut"]["overResultLimit"] == 1_000


def test_a_file_over_the_size_limit_leaves_out_the_least_severe_and_says_so() -> None:
    # Text that gzip cannot shrink much, so the size limit bites before the results limit.
    def noise(i: int) -> str:
        return "".join(hashlib.sha256(f"{i}/{k}".encode()).hexdigest() for k in range(50))
    findings = [finding(f"f{i}.py", "critical" if i < 5 else "info", issue=noise(i), line=1) for i in range(60)]
    limits = sarif.Limits(max_gzip_bytes=40_000)
    text = sarif.render(findings, limits=limits)
    doc = json.loads(text)
    validate(doc)
    assert sarif._gzip_size(text) <= 40_000
    left = doc["runs"][0]["properties"]["leftOut"]
    assert 0 < left["overSizeLimit"] < 60 and left["total"] == left["overSizeLimit"]
    assert len(results(doc)) == 60 - left["overSizeLimit"]
    assert sum(r["level"] == "error" for r in results(doc)) == 5  # every critical one kept
    assert "10 MB" in doc["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]


def test_file_level_and_removed_line_findings_get_line_1_and_say_where_they_were() -> None:
    doc = sarif.document([
        finding("src/a.py", issue="module has no tests"),
        finding("src/b.py", issue="the removed check was the only guard", line=7, end_line=9, side="LEFT"),
        finding("src/c.py", issue="off by one", line=4, end_line=6),
    ])
    validate(doc)
    a, b, c = results(doc)
    assert where(a)["region"] == {"startLine": 1}
    assert a["message"]["text"] == "module has no tests\n\n(File-level finding, shown on line 1.)"
    assert where(b)["region"] == {"startLine": 1}
    assert "On line 7-9 of the old file, removed by this change" in b["message"]["text"]
    assert b["properties"]["oldLine"] == 7
    assert where(c)["region"] == {"startLine": 4, "endLine": 6} and c["message"]["text"] == "off by one"
    assert all(where(r)["region"]["startLine"] >= 1 for r in (a, b, c))


def test_lines_past_the_end_of_a_file_of_known_length_are_moved_to_its_last_line() -> None:
    doc = sarif.document([finding("a.py", line=40, end_line=45), finding("b.py", line=3, end_line=90),
                          finding("c.py", line=2)], line_counts={"a.py": 12, "b.py": 10, "c.py": 2})
    a, b, c = (where(r)["region"] for r in results(doc))
    assert a == {"startLine": 12} and b == {"startLine": 3, "endLine": 10} and c == {"startLine": 2}
    assert "past the end of the file (12 lines); shown on line 12" in results(doc)[0]["message"]["text"]


@case("SARIF", "file names with a space, `#`, `%`, `?`, non-ASCII letters, a backslash and a newline",
      "each `artifactLocation.uri` is percent-encoded (RFC 3986, UTF-8, `/` kept) and validates as a "
      "uri-reference; decoding it gives the file name back")
def test_paths_with_spaces_unicode_hash_and_percent_are_percent_encoded() -> None:
    names = ["docs/my file #1 (100%).md", "src/caf\u00e9/\u65e5\u672c.py", "a?b.py", "we\\ird.py", "new\nline.py",
             "src/a:b.py", "~tilde/x.py"]
    doc = sarif.document([finding(n, line=1) for n in names])
    validate(doc)
    uris = [where(r)["artifactLocation"]["uri"] for r in results(doc)]
    assert uris[:3] == ["docs/my%20file%20%231%20%28100%25%29.md", "src/caf%C3%A9/%E6%97%A5%E6%9C%AC.py", "a%3Fb.py"]
    assert [unquote(u) for u in uris] == names


@case("SARIF", "findings on `../x`, `/etc/passwd`, `C:\\Windows\\win.ini`, `https://evil.example/x`, `a/../../b`, "
      "`\\\\server\\share` and `./a`",
      "none is written as a uri: each finding is left out of the SARIF, counted in `run.properties` and the "
      "tool notification (without the path), and kept in the JSON report")
def test_traversal_absolute_drive_and_scheme_paths_never_become_a_uri() -> None:
    hostile = ["../x", "/etc/passwd", "C:\\Windows\\win.ini", "c:", "https://evil.example/x", "file:///etc/passwd",
               "a/../../b", "src\\..\\..\\b", "\\\\server\\share", "./a", "a//b", "", "nul\x00.py"]
    doc = sarif.document([finding(p, "critical", issue=f"bad {i}") for i, p in enumerate(hostile)]
                         + [finding("ok.py", "info")])
    validate(doc)
    assert [where(r)["artifactLocation"]["uri"] for r in results(doc)] == ["ok.py"]
    text = json.dumps(doc)
    for needle in ("passwd", "win.ini", "evil", "server", "..", "nul\\u0000"):
        assert needle not in text, needle
    assert doc["runs"][0]["properties"]["leftOut"]["unsafePath"] == len(hostile)
    note = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    assert f"{len(hostile)} whose path is not a relative path inside the repository" in note


def test_each_category_has_its_own_rule_with_help_tags_and_precision() -> None:
    findings = [finding(f"{c}.py", sev, category=c, line=1)
                for c in CATEGORIES for sev in ("critical", "warning", "info")]
    doc = sarif.document(findings)
    validate(doc)
    by_id = rules(doc)
    assert set(by_id) == {c for c in CATEGORIES if c != "security"} | {"security/critical", "security/warning",
                                                                         "security/info"}
    texts = set()
    for rule_id, r in by_id.items():
        assert r["help"]["text"] and r["help"]["markdown"], rule_id
        assert 1 <= len(r["properties"]["tags"]) <= 10
        assert r["properties"]["precision"] in ("very-high", "high", "medium", "low")
        assert len(r["name"]) <= 255 and len(r["shortDescription"]["text"]) <= 1024
        assert len(r["fullDescription"]["text"]) <= 1024
        is_security = rule_id.startswith("security/")
        assert ("security" in r["properties"]["tags"]) == is_security
        assert ("security-severity" in r["properties"]) == is_security
        texts.add(r["fullDescription"]["text"])
    assert len(texts) == len(CATEGORIES)  # one description per category, not one text for all
    assert set(sarif.RULES) == set(CATEGORIES)
    # GitHub: over 9.0 is critical, 7.0 to 8.9 high, 4.0 to 6.9 medium.
    score = {s: float(by_id[f"security/{s}"]["properties"]["security-severity"])
             for s in ("critical", "warning", "info")}
    assert score["critical"] > 9.0 and 7.0 <= score["warning"] < 9.0 and 4.0 <= score["info"] < 7.0
    assert {r["ruleId"] for r in results(doc) if r["properties"]["category"] == "security"} == {
        "security/critical", "security/warning", "security/info"}


def test_alerts_are_tracked_by_a_primary_location_line_hash_from_the_findings_identity() -> None:
    # Code scanning matches alerts on primaryLocationLineHash only; upload-sarif would hash line 1
    # for every file-level finding of a file and merge them into one alert.
    doc = sarif.document([finding("a.py", issue="no tests", fingerprint="00000000000000aa"),
                          finding("a.py", issue="no docs", fingerprint="00000000000000bb"),
                          finding("a.py", issue="moved", line=90, fingerprint="00000000000000cc")])
    hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results(doc)]
    assert hashes == ["00000000000000aa:1", "00000000000000bb:1", "00000000000000cc:1"]
    moved = sarif.document([finding("a.py", issue="moved", line=3, fingerprint="00000000000000cc")])
    assert results(moved)[0]["partialFingerprints"]["primaryLocationLineHash"] == hashes[2]


def test_nothing_left_out_says_so() -> None:
    doc = sarif.document([finding("a.py", line=2)])
    validate(doc)
    run = doc["runs"][0]
    assert run["properties"]["leftOut"]["total"] == 0
    assert run["invocations"] == [{"executionSuccessful": True}]


@pytest.mark.parametrize("path", ["a.py", "src/deep/er/x.ts", "x-y_z.~1"])
def test_plain_paths_are_written_as_they_are(path: str) -> None:
    assert sarif.repository_uri(path) == path


def test_a_reviews_sarif_carries_each_findings_verification(anthropic_emu, repo: Path, capsys) -> None:
    from reviewer.cli import main
    from tests.model_script import ScriptedModel

    median = {"file": "util.py", "line": 7, "side": "RIGHT", "severity": "warning", "category": "edge-case",
              "confidence": 0.9, "issue": "median() raises IndexError for an empty list"}
    mean = {**median, "line": 2, "issue": "mean() divides by zero for an empty list"}
    report = {**median, "line": 6, "issue": "sorted() copies the whole list on every call"}
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [median, mean, report]}},
        verify={"median()": {"verdict": "confirmed", "reason": "an empty list reaches xs[0]", "severity": "critical",
                             "confidence": 0.95, "evidence": [{"file": "util.py", "line": 7,
                                                               "quote": "return xs[len(xs) // 2]"}]},
                "mean()": {"verdict": "confirmed", "reason": "looks wrong", "severity": "critical",
                           "confidence": 0.9, "evidence": []},
                "sorted()": {"verdict": "refuted", "reason": "the copy is intended", "severity": "info",
                             "confidence": 0.1, "evidence": []}})
    code = main(["review", "--base", "HEAD~1", "--repo-dir", str(repo), "--format", "sarif"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    validate(doc)
    by_line = {where(r)["region"]["startLine"]: r for r in results(doc)}
    assert sorted(by_line) == [2, 7]  # the refuted finding was not posted, so it is no alert either
    confirmed = by_line[7]
    assert confirmed["properties"]["verification"] == {
        "verdict": "confirmed", "reason": "an empty list reaches xs[0]",
        "evidence": [{"file": "util.py", "line": 7, "quote": "return xs[len(xs) // 2]"}]}
    assert confirmed["message"]["text"].endswith("Verified: an empty list reaches xs[0]")
    unverified = by_line[2]
    assert unverified["properties"]["verification"]["verdict"] == "unverified"
    assert unverified["message"]["text"].endswith(
        "Not verified: the verifier confirmed it without quoting the code")
