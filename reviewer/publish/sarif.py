"""`--format sarif` and `audit.sarif`: SARIF 2.1.0 that GitHub code scanning accepts and can tell apart.

What GitHub documents, and what this module does about it. Sources, read on 2026-12-03:
[S] https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning
    (source: github/docs content/code-security/code-scanning/integrating-with-code-scanning/
    sarif-support-for-code-scanning.md and data/reusables/code-scanning/sarif-limits.md)
[L] https://docs.github.com/en/code-security/code-scanning/troubleshooting-sarif-uploads/results-exceed-limit
[Z] https://docs.github.com/en/code-security/code-scanning/troubleshooting-sarif-uploads/file-too-large
[F] https://github.com/github/codeql-action/blob/main/src/fingerprints.ts (linked from [S] as the upload-sarif script)

- Limits [S, L]. A file over any maximum is rejected whole: runs per file 20, results per run
  25,000, rules per run 25,000, tool extensions per run 100, locations per result 1,000, thread
  flow locations per result 10,000, tags per rule 20. Display limits: "only the top 5,000
  results will be included, prioritized by severity", 100 locations per result, 10 tags per
  rule. The gzip-compressed file may be at most 10 MB [S, Z]. Rule `name` is limited to 255
  characters, `shortDescription.text` and `fullDescription.text` to 1,024 [S].
  We write one run, one location per result, at most 10 tags per rule, and at most
  `Limits.max_results` results (default 5,000, never above 25,000): GitHub stores only 5,000
  anyway, and choosing them here means the most severe are kept (then the most confident,
  then by file and line) and the count of those left out is exact. The file is kept under
  `Limits.max_gzip_bytes` compressed by leaving out the least severe results as well.
- What is shown [S]: `shortDescription`/`fullDescription` at the top of an alert,
  `message.text` as its title (first sentence when space is short), `help.markdown` (else
  `help.text`) next to it; `properties.tags` filter alerts; `properties.precision` orders them
  (very-high, high, medium, low); "the rest of the supported fields are ignored", so
  `run.properties` and `invocations[].toolExecutionNotifications`, where we say what was left
  out, are for people and tools reading the file, not shown by GitHub.
- `properties.security-severity` [S] is read from the rule (`reportingDescriptor`) only, for
  rules tagged `security`: over 9.0 is critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
  One score per rule, so security findings get one rule per severity (`security/critical`
  9.5, `security/warning` 7.0, `security/info` 4.0); a security finding whose severity changes
  between runs becomes a new alert.
- Fingerprints [S]: "code scanning only uses the `primaryLocationLineHash`" of
  `partialFingerprints`, so our own key alone keeps nothing across runs. upload-sarif fills
  a missing `primaryLocationLineHash` with a hash of the text at `startLine` [F], which would
  merge every file-level finding of one rule in a file (all on line 1) and split an alert
  whose line is edited; it keeps a value that is present, logging a warning
  ("found existing inconsistent fingerprint value") [F]. We set it to `<our fingerprint>:1`,
  which stays the same when code moves or is reworded (README: A finding's identity).
- Verification (README: Verification): a finding the independent verifier checked carries
  `properties.verification` (verdict, reason, the quoted evidence, as in `--format json`), and
  its message ends with "Verified: ..." or "Not verified: ...", since GitHub shows the message
  and not the properties. Refuted findings are not results: they were not posted.
- Locations [S]: `artifactLocation.uri` relative to the repository root; `region.startLine`
  is required. A file-level finding is put on line 1; a finding on removed lines (side LEFT)
  also on line 1, since code scanning shows only the new file; the message says so. Lines
  past the end of a file of known length are moved to its last line, and the message says so.
  A path that is empty, absolute (`/x`, `\\x`), has a drive letter or a scheme (`C:`, `https:`;
  any first segment `name:`), or has an empty, `.` or `..` segment (split on `/` and `\\`) is
  never written: that finding is left out of the SARIF and counted (it stays in the JSON
  report). Other paths are percent-encoded (RFC 3986, UTF-8, only unreserved characters and
  `/` left as they are).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from .. import __version__
from ..models import SEVERITY_RANK, Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"critical": "error", "warning": "warning", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "warning": "7.0", "info": "4.0"}
GITHUB_MAX_RESULTS = 25_000
"""Results per run above which GitHub rejects the file [S]."""
GITHUB_STORED_RESULTS = 5_000
"""Results per run GitHub keeps and shows [S]."""
FULL_REPORT = "the JSON report (`--format json`)"


@dataclass(frozen=True)
class Limits:
    """How much one SARIF file may hold; the defaults are GitHub's, with a margin on size."""

    max_results: int = GITHUB_STORED_RESULTS
    """Clamped to GITHUB_MAX_RESULTS."""
    max_gzip_bytes: int = 9_500_000
    """GitHub rejects more than 10 MB gzip-compressed [S]."""


GITHUB = Limits()


@dataclass(frozen=True)
class _Rule:
    name: str
    short: str
    full: str
    help: str
    tags: tuple[str, ...]
    precision: str


# Precision is our judgment of how often a model review's finding of the kind is real (not
# measured): "medium" where the finding names a concrete failure, "low" where it is taste.
RULES: Mapping[str, _Rule] = {
    "bug": _Rule(
        "LogicError", "Logic error",
        "The code computes a wrong result, crashes, or does something other than what its name, comments or "
        "callers expect.",
        "Work out the input the message names, check what the code does with it, and fix the logic; a test that "
        "fails before the fix keeps it fixed.",
        ("correctness", "reliability"), "medium"),
    "type-error": _Rule(
        "TypeError", "Type error",
        "A value of the wrong type, or possibly None, reaches code that cannot handle it.",
        "Convert or check the value where it enters, or change the signature so the type checker sees the "
        "mismatch.",
        ("correctness", "types"), "medium"),
    "error-handling": _Rule(
        "ErrorHandling", "Error handling",
        "An error is swallowed, caught too broadly, reported wrongly, or not handled where it can happen.",
        "Catch only the errors you can handle, let the others propagate, and keep the cause when you re-raise.",
        ("reliability", "error-handling"), "medium"),
    "dead-code": _Rule(
        "DeadCode", "Dead code",
        "Code that can never run, or whose result is never used.",
        "Delete it, or, if it should run, fix the condition or the caller that makes it unreachable.",
        ("maintainability", "useless-code"), "medium"),
    "edge-case": _Rule(
        "EdgeCase", "Unhandled edge case",
        "An input at a boundary (empty, zero, negative, None, very large, duplicated) is not handled.",
        "Decide what the code should do for that input, handle it explicitly, and test it.",
        ("correctness", "reliability"), "medium"),
    "stale-comment": _Rule(
        "StaleComment", "Stale comment",
        "A comment or docstring no longer says what the code does.",
        "Update the comment to the code's behaviour, or delete it if the code says the same.",
        ("maintainability", "documentation"), "medium"),
    "naming": _Rule(
        "MisleadingName", "Misleading name",
        "A name says something other than what the thing it names is or does.",
        "Rename it after what it is or does, everywhere it is used.",
        ("maintainability", "readability"), "low"),
    "data-flow": _Rule(
        "DataFlow", "Data flow",
        "A value reaches a place where it is wrong: unvalidated, stale, lost, overwritten or used before it is set.",
        "Follow the value from where it is set to where it is used, and fix the step where it goes wrong.",
        ("correctness",), "medium"),
    "api-contract": _Rule(
        "ApiContract", "API contract",
        "A function, endpoint or interface is called or changed in a way that breaks what its callers rely on.",
        "Keep the contract (or change every caller with it), and say in the signature or docstring what it is.",
        ("correctness", "api"), "medium"),
    "imports": _Rule(
        "Imports", "Imports",
        "An import is missing, unused, circular, or brings in the wrong module.",
        "Import what the code uses, from where it is defined, and remove the rest.",
        ("maintainability", "imports"), "medium"),
    "architecture": _Rule(
        "Architecture", "Architecture",
        "The change works against the structure of the code base: a layer reaches past another, a responsibility "
        "is duplicated, or modules are coupled that were apart.",
        "Move the code to the module that owns the concern, or say in the change why the structure should change.",
        ("maintainability", "architecture"), "low"),
    "shared-state": _Rule(
        "SharedState", "Shared state",
        "Mutable state is shared between calls, threads or requests: races, data leaking between users, results "
        "that depend on call order.",
        "Make the state local or immutable, or guard every access to it.",
        ("reliability", "concurrency"), "medium"),
    "security": _Rule(
        "Security", "Security weakness",
        "A weakness an attacker could use: injection, missing authorisation, unsafe deserialisation, path "
        "traversal, secrets in code, weak cryptography.",
        "Treat the input the message names as hostile: validate or escape it where it enters, check permissions "
        "where the action happens, and add a test with the hostile input.",
        ("security",), "medium"),
    "performance": _Rule(
        "Performance", "Performance",
        "Work that grows faster than it needs to: repeated queries or calls in a loop, quadratic scans, needless "
        "copies.",
        "Measure first; then batch, cache or index the repeated work.",
        ("performance",), "low"),
    "other": _Rule(
        "Other", "Other problem",
        "A problem that fits none of reviewer's other categories.",
        "Read the message: it says what is wrong and why it matters.",
        ("maintainability",), "low"),
}
_MORE = ("This alert comes from reviewer's review of the code by Claude. Treat it as a careful reviewer's "
         "comment, not as proof: the message says what is wrong and why it matters, and a fix when there is one.")


def _rule_id(f: Finding) -> str:
    return f"security/{f.severity}" if f.category == "security" else f.category


def _rule(rule_id: str) -> dict[str, object]:
    category, _, severity = rule_id.partition("/")
    r = RULES.get(category) or _Rule(
        category.title().replace("-", "")[:255], category[:100], f"Problems of the category '{category}'.",
        "Read the message: it says what is wrong and why it matters.", ("maintainability",), "low")
    properties: dict[str, object] = {"tags": list(r.tags)[:10], "precision": r.precision}
    name, short = r.name, r.short
    if severity:
        properties["security-severity"] = SECURITY_SEVERITY[severity]
        name, short = f"{name}{severity.title()}", f"{short} ({severity})"
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short[:1024]},
        "fullDescription": {"text": r.full[:1024]},
        "help": {"text": f"{r.full}\n\n{r.help}\n\n{_MORE}",
                 "markdown": f"**{r.short}.** {r.full}\n\n**How to fix.** {r.help}\n\n_{_MORE}_"},
        "properties": properties,
    }


_SCHEME_OR_DRIVE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def repository_uri(path: str) -> str | None:
    """`path` as a URI reference relative to the repository root, or None if it is not such a path.

    None for an empty or absolute path, a drive letter or scheme, an empty, `.` or `..`
    segment (`/` and `\\` both separate), or a NUL; otherwise percent-encoded (RFC 3986).
    """
    if not path or "\x00" in path or path[0] in "/\\" or _SCHEME_OR_DRIVE.match(path):
        return None
    if any(part in ("", ".", "..") for part in re.split(r"[/\\]", path)):
        return None
    # surrogateescape: a name that is not UTF-8 keeps its own bytes.
    return quote(path, safe="/", encoding="utf-8", errors="surrogateescape")


def _fingerprint(f: Finding) -> str:
    if f.fingerprint:
        return f.fingerprint
    key = "\0".join((f.file, f.side, f.category, f.issue))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _rank(f: Finding) -> tuple[int, float, str, int, str]:
    """Sort key: most severe, then most confident (unknown last), then file and line."""
    confidence = f.confidence if f.confidence is not None else -1.0
    return (-SEVERITY_RANK.get(f.severity, 0), -confidence, f.file, f.line or 0, _fingerprint(f))


def _region(f: Finding, lines: int | None) -> tuple[dict[str, int], str | None]:
    """The region to show `f` at, and a note for the message when it is not where `f` points."""
    if f.line is None:
        return {"startLine": 1}, "File-level finding, shown on line 1."
    end = f.end_line if f.end_line and f.end_line > f.line else None
    where = f"{f.line}-{end}" if end else str(f.line)
    if f.side == "LEFT":
        return {"startLine": 1}, (f"On line {where} of the old file, removed by this change; code scanning "
                                  "shows only the new file, so it is shown on line 1.")
    start, note = max(f.line, 1), None
    if lines is not None and (end or start) > max(lines, 1):
        last = max(lines, 1)
        note = f"Reported at line {where}, past the end of the file ({lines} lines); shown on line {min(start, last)}."
        start, end = min(start, last), min(end, last) if end else None
    region = {"startLine": start}
    if end and end > start:
        region["endLine"] = end
    return region, note


def _result(f: Finding, uri: str, lines: int | None) -> dict[str, object]:
    region, note = _region(f, lines)
    text = (f.issue or "(no description)") + (f"\n\nFix: {f.suggestion}" if f.suggestion else "")
    if note:
        text += f"\n\n({note})"
    v = f.verification
    if v is not None and v.verdict != "refuted":
        # Code scanning shows the message, not the properties: the mark goes in both.
        text += f"\n\n{'Verified' if v.verdict == 'confirmed' else 'Not verified'}: {v.reason}"
    fingerprint = _fingerprint(f)
    properties: dict[str, object] = {"severity": f.severity, "category": f.category, "pass": f.pass_}
    if f.confidence is not None:
        properties["confidence"] = f.confidence
    if v is not None:
        properties["verification"] = v.to_dict()
    if f.side == "LEFT" and f.line is not None:
        properties["oldLine"] = f.line
    return {
        "ruleId": _rule_id(f),
        "level": LEVEL.get(f.severity, "warning"),
        "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                            "region": region}}],
        "partialFingerprints": {"primaryLocationLineHash": f"{fingerprint}:1", "reviewerFingerprint/v1": fingerprint},
        "properties": properties,
    }


def _left_out_text(total: int, counts: Mapping[str, int], limits: Limits, full_report: str) -> str:
    reasons = {
        "overResultLimit": f"beyond the {min(limits.max_results, GITHUB_MAX_RESULTS):,} results kept per run "
                           "(code scanning stores 5,000): the least severe, then the least confident",
        "overSizeLimit": "the least severe of the rest, to keep the file under GitHub's 10 MB compressed",
        "unsafePath": "whose path is not a relative path inside the repository",
    }
    parts = [f"{counts[k]:,} {reasons[k]}" for k in reasons if counts.get(k)]
    left = sum(counts.values())
    return (f"{left:,} of {total:,} findings are not in this file: {'; '.join(parts)}. "
            f"Every finding is in {full_report}.")


def _dumps(doc: Mapping[str, object]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _gzip_size(text: str) -> int:
    return len(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0))


def document(findings: Iterable[Finding], *, automation_id: str | None = None,
             line_counts: Mapping[str, int] | None = None, full_report: str = FULL_REPORT,
             limits: Limits = GITHUB) -> dict[str, object]:
    """One SARIF 2.1.0 log within `limits`, stating in `run.properties` what it left out and why.

    `line_counts` (path -> number of lines at the analysed commit), where known, bounds line
    numbers. `full_report` names where every finding is, for the note on what was left out.
    Results keep the order of `findings`; which ones are kept follows `_rank`.
    """
    findings = list(findings)
    counts = {"overResultLimit": 0, "overSizeLimit": 0, "unsafePath": 0}
    placed: list[tuple[int, Finding, str]] = []
    for i, f in enumerate(findings):
        uri = repository_uri(f.file)
        if uri is None:
            counts["unsafePath"] += 1
        else:
            placed.append((i, f, uri))
    placed.sort(key=lambda p: _rank(p[1]))
    cap = max(0, min(limits.max_results, GITHUB_MAX_RESULTS))
    counts["overResultLimit"] = max(0, len(placed) - cap)
    ranked = [(i, _result(f, uri, (line_counts or {}).get(f.file))) for i, f, uri in placed[:cap]]

    keep = len(ranked)
    while True:
        doc = _assemble(findings, ranked[:keep], counts | {"overSizeLimit": len(ranked) - keep},
                        automation_id, full_report, limits)
        size = _gzip_size(_dumps(doc))
        if size <= limits.max_gzip_bytes or keep == 0:
            return doc
        # Shrink in proportion, with a margin, rather than one result at a time.
        keep = min(keep - 1, int(keep * limits.max_gzip_bytes / size * 0.95))


def _assemble(findings: Sequence[Finding], ranked: Sequence[tuple[int, dict[str, object]]], counts: Mapping[str, int],
              automation_id: str | None, full_report: str, limits: Limits) -> dict[str, object]:
    results = [r for _, r in sorted(ranked, key=lambda p: p[0])]
    rule_ids = sorted({str(r["ruleId"]) for r in results})
    left = sum(counts.values())
    run: dict[str, object] = {
        "tool": {"driver": {"name": "reviewer", "version": __version__, "rules": [_rule(r) for r in rule_ids]}},
        "invocations": [{"executionSuccessful": True}],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {"findings": len(findings), "results": len(results),
                       "leftOut": {"total": left, **counts}, "fullReport": full_report},
    }
    if left:
        run["invocations"] = [{"executionSuccessful": True, "toolExecutionNotifications": [{
            "level": "warning", "descriptor": {"id": "results-left-out"},
            "message": {"text": _left_out_text(len(findings), counts, limits, full_report)}}]}]
    if automation_id:
        run["automationDetails"] = {"id": automation_id}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(findings: Iterable[Finding], *, automation_id: str | None = None,
           line_counts: Mapping[str, int] | None = None, full_report: str = FULL_REPORT,
           limits: Limits = GITHUB) -> str:
    return _dumps(document(findings, automation_id=automation_id, line_counts=line_counts,
                           full_report=full_report, limits=limits))
