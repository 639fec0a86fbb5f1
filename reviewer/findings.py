"""Model answers -> anchored `Finding`s: anchor, fingerprint, merge aggregate verdicts.

The tool, not the model, decides where a finding sits: a line must be
commentable on its side (GitHub's rules, see `reviewer.diff`), a range must lie
in one hunk. What cannot be anchored becomes a file-level finding that names
the model's line; nothing the model reported is dropped, except findings on
files that are not part of the diff, which are rejected with a note.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import identity
from .diff import shown_path
from .models import SEVERITY_RANK, Diff, FileDiff, Finding, Rejected, Side


@dataclass(frozen=True)
class Anchored:
    finding: Finding | None
    note: str | None = None
    rejected: str | None = None
    """The normalised path of a finding rejected because it is on no reviewed file."""


def normalize_path(path: str) -> str:
    path = path.strip().replace("\\", "/")
    for prefix in ("./", "a/", "b/"):
        if path.startswith(prefix):
            path = path[len(prefix):]
    return path


def code_at(file: FileDiff, line: int, end: int | None, side: Side) -> str:
    texts = []
    for n in range(line, (end or line) + 1):
        text = file.line_text(n, side)
        if text is not None:
            texts.append(" ".join(text.split()))
    return "\n".join(texts)


def fingerprint(file: str, category: str, side: Side, code: str, issue: str) -> str:
    """A finding's fresh identity; the rule lives in `reviewer.identity`."""
    return identity.fingerprint(file, category, side, code, issue)


def _span(raw: Mapping[str, Any]) -> tuple[Any, Any]:
    """The model's (line, end_line), put in order; a one-line range is a line."""
    line, end = raw.get("line"), raw.get("end_line")
    if line is None and end is not None:
        line, end = end, None
    if line is not None and end is not None and end < line:
        line, end = end, line
    return line, (None if end == line else end)


def _where(line: int, end: int | None) -> str:
    return f"line {line}" if end is None else f"lines {line}-{end}"


def _build(raw: Mapping[str, Any], path: str, side: Side, line: int | None, end: int | None,
           exact: bool, issue: str, code: str, pass_: str) -> Finding:
    """The anchored finding: the model's verdict on the tool's lines, fingerprinted by their code."""
    replacement = raw.get("replacement")
    suggestion = raw.get("suggestion")
    if replacement is not None and (not exact or side == "LEFT" or line is None):
        # The replacement was written for other lines: a suggestion block would
        # replace the wrong code, so it becomes prose.
        suggestion = ((suggestion or "") + "\n\nProposed code:\n" + replacement).strip()
        replacement = None
    category = str(raw.get("category") or "other")
    return Finding(
        file=path,
        severity=raw.get("severity", "info"),
        issue=issue,
        line=line,
        end_line=end,
        side=side,
        category=category,
        suggestion=suggestion,
        replacement=replacement,
        confidence=raw.get("confidence"),
        pass_=pass_,  # type: ignore[arg-type]
        fingerprint=fingerprint(path, category, side, code, issue),
        repeats=raw.get("repeats") if isinstance(raw.get("repeats"), str) else None,
    )


def anchor(raw: Mapping[str, Any], diff: Diff, pass_: str) -> Anchored:
    """Place one model finding on the diff; see the module docstring for the rules."""
    reported = str(raw.get("file", ""))
    # The name as given first: a real file may be called `a\\b.py` or `b/x.py`.
    file = diff.get(reported.strip()) or next((f for f in diff.files if shown_path(f.path) == reported.strip()), None)
    path = file.path if file is not None else normalize_path(reported)
    issue = str(raw.get("issue", "")).strip()
    file = file or diff.get(path)
    if file is None:
        return Anchored(None, f"rejected a finding on '{path[:200]}', which is not a reviewed file of this diff: {issue[:200]}",
                        rejected=path)
    side: Side = "LEFT" if raw.get("side") == "LEFT" else "RIGHT"
    line, end = _span(raw)
    exact = True
    if line is not None:
        placed = _place(file, line, end, side)
        if placed is None:
            issue = f"{issue} (reported at {_where(line, end)}{' of the old file' if side == 'LEFT' else ''}, outside the diff)"
            exact = False
            line = end = None
        else:
            exact = placed == (line, end)
            line, end = placed
    code = code_at(file, line, end, side) if line is not None else ""
    return Anchored(_build(raw, file.path, side, line, end, exact, issue, code, pass_))


def _place(file: FileDiff, line: int, end: int | None, side: Side) -> tuple[int, int | None] | None:
    """The commentable (line, end) nearest to the model's, inside one hunk, or None.

    GitHub answers 422 when start_line and line sit in different hunks, so a
    range is clipped to the hunk holding its last line (or else its first).
    """
    last = end if end is not None else line
    hunk_last = file.hunk_of(last, side)
    hunk_first = file.hunk_of(line, side)
    if hunk_last is not None:
        start = max(line, min(hunk_last.lines(side)))
        return (start, None) if start == last else (start, last)
    if hunk_first is not None:
        stop = max(n for n in hunk_first.lines(side) if n <= last)
        return (line, None) if stop == line else (line, stop)
    return None


REJECTED_NOT_IN_DIFF = "not a reviewed file of this diff"


def anchor_all(answers: Iterable[Mapping[str, Any]], diff: Diff, pass_: str) -> tuple[list[Finding], list[Rejected]]:
    """Anchor every answer; rejections are counted per path, however many there are."""
    findings: list[Finding] = []
    rejected: Counter[str] = Counter()
    for raw in answers:
        result = anchor(raw, diff, pass_)
        if result.finding is not None:
            findings.append(result.finding)
        elif result.rejected is not None:
            rejected[result.rejected] += 1
    return findings, [Rejected(path, n, REJECTED_NOT_IN_DIFF) for path, n in rejected.items()]


def apply_groups(findings: Sequence[Finding], groups: Iterable[Mapping[str, Any]]) -> tuple[list[Finding], list[str]]:
    """Merge the aggregate pass's verdicts: one finding per group, every input kept.

    A group's first valid id stands for it and takes the group's severity,
    confidence and merged wording. Ids the model left out keep their own
    verdict; ids it repeated count once.
    """
    used: set[int] = set()
    merged: list[Finding] = []
    for group in groups:
        members = []
        for ident in group.get("ids", []):
            index = _index(ident, len(findings))
            if index is not None and index not in used:
                used.add(index)
                members.append(index)
        if not members:
            continue
        lead = findings[members[0]]
        merged.append(
            lead.with_(
                severity=group["severity"],
                confidence=group["confidence"],
                issue=(group.get("issue") or lead.issue) if len(members) > 1 else lead.issue,
                # A group restating a prior finding is a repeat, whichever member said so.
                repeats=next((findings[i].repeats for i in members if findings[i].repeats), None),
            )
        )
    notes = []
    missing = [i for i in range(len(findings)) if i not in used]
    if missing:
        notes.append(f"the aggregate pass did not rate {len(missing)} finding(s); they keep their own severity")
        merged.extend(findings[i] for i in missing)
    return merged, notes


def _index(ident: Any, count: int) -> int | None:
    match = re.fullmatch(r"\s*F?(\d+)\s*", str(ident))
    if not match:
        return None
    index = int(match.group(1)) - 1
    return index if 0 <= index < count else None


def finalize(findings: Iterable[Finding]) -> list[Finding]:
    """Sort by severity, file and line; make equal fingerprints of distinct findings unique."""
    ordered = sorted(
        findings,
        key=lambda f: (-SEVERITY_RANK[f.severity], f.file, f.line or 0, f.issue),
    )
    seen: dict[str, int] = {}
    result = []
    for f in ordered:
        count = seen.get(f.fingerprint, 0)
        seen[f.fingerprint] = count + 1
        if count:
            # Two findings on the same code and category that the aggregate pass
            # kept apart: both are real, so both need an identity.
            f = f.with_(fingerprint=hashlib.sha256(f"{f.fingerprint}#{count}".encode()).hexdigest()[:16])
        result.append(f)
    return result


def at_or_above(findings: Iterable[Finding], threshold: str) -> bool:
    if threshold == "never":
        return False
    return any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[threshold] for f in findings)


def cap(findings: Sequence[Finding], limit: int, scope: str) -> tuple[list[Finding], str | None]:
    """`cap_counted` without the per-file counts."""
    kept, note, _ = cap_counted(findings, limit, scope)
    return kept, note


def cap_counted(findings: Sequence[Finding], limit: int, scope: str) -> tuple[list[Finding], str | None, Counter[str]]:
    """At most `limit` findings, most severe first; the excess is counted per file, not kept.

    A flood (say, code that tells the model to report a thousand problems)
    must not become a thousand comments or an unbounded aggregate call.
    Returns the kept findings, a note, and how many were dropped per file.
    """
    if len(findings) <= limit:
        return list(findings), None, Counter()
    ranked = sorted(range(len(findings)), key=lambda i: (-SEVERITY_RANK[findings[i].severity], i))
    keep = sorted(ranked[:limit])
    dropped = [findings[i] for i in ranked[limit:]]
    by_severity = {s: sum(1 for f in dropped if f.severity == s) for s in ("critical", "warning", "info")}
    summary = ", ".join(f"{n} {s}" for s, n in by_severity.items() if n)
    note = f"{scope}: {len(dropped)} more finding(s) over the limit of {limit} were counted, not kept ({summary})"
    return [findings[i] for i in keep], note, Counter(f.file for f in dropped)


def redacted(f: Finding) -> Finding:
    """The finding with secrets removed from every text the model wrote."""
    from .redact import redact

    return f.with_(
        issue=redact(f.issue),
        suggestion=redact(f.suggestion) if f.suggestion else f.suggestion,
        replacement=redact(f.replacement) if f.replacement else f.replacement,
    )


def code_in(lines: Mapping[int, str], line: int, end: int | None) -> str:
    """The text of lines `line`..`end` with whitespace collapsed: what a fingerprint hashes."""
    return "\n".join(" ".join(lines[n].split()) for n in range(line, (end or line) + 1) if n in lines)


def anchor_in_range(raw: Mapping[str, Any], path: str, lines: Mapping[int, str], first: int,
                    last: int) -> tuple[Anchored, str]:
    """Place a finding of a whole-file audit on lines `first`..`last` of `path`, the part the model saw.

    The rules of `anchor`, with a line range instead of a diff: a finding on
    another file is rejected with a note; a line outside the range becomes a
    file-level finding naming it; a range is clipped to the part; every finding
    is on the RIGHT side (there is no old file). Returns the anchored finding
    and the normalised code it points at, which a copy of the same lines in
    another file fingerprints identically.
    """
    reported = str(raw.get("file", "")).strip().replace("\\", "/")
    reported = reported[2:] if reported.startswith("./") else reported
    issue = str(raw.get("issue", "")).strip()
    # A real folder may be called a/ or b/: compare as given first, then as a diff would name it.
    if reported != path and normalize_path(reported) != normalize_path(path):
        return Anchored(None, f"rejected a finding on '{reported[:200]}' from the audit of '{path}', "
                              f"which is the only file the model was shown: {issue[:200]}"), ""
    line, end = _span(raw)
    exact = raw.get("side", "RIGHT") == "RIGHT"
    if line is not None:
        if first <= line <= last:
            clipped = min(end, last) if end is not None else None
            exact = exact and clipped == end
            end = None if clipped == line else clipped
        else:
            issue = f"{issue} (reported at {_where(line, end)}, outside lines {first}-{last} that were audited)"
            exact = False
            line = end = None
    code = code_in(lines, line, end) if line is not None else ""
    # An audit reads one file at a time: its findings are the per-file kind.
    return Anchored(_build(raw, path, "RIGHT", line, end, exact, issue, code, "per_file")), code
