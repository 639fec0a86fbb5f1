"""Pass 3, verification: an independent call per finding, which confirms it with quoted code or refutes it.

After the aggregate pass has grouped and rated the findings, each one at or
above `verify_min_severity` goes to a verifier: a new conversation (not the
call that produced it), with the same system prompt and the same read-only
tools, answering `schemas/verdict.schema.json`.

Independence: the verifier is given the finding's file, lines, category and
issue text only, never its severity, confidence, pass or suggestion: a model
rating its own findings is close to random (issue 12), so nothing of the first
rating may anchor the second.

Trust: a verdict is believed only as far as its evidence holds. Every quote is
looked up at the head commit through the `RepoView` (whitespace-normalised; a
multi-line quote starts at its line). Then:

- confirmed, every quote found: the finding is kept, and its severity and
  confidence become the verifier's;
- confirmed without evidence, or with a quote that is not at its file and line:
  *unverified*. The finding is kept with the aggregate pass's rating and marked
  unverified with the reason (we do not invent a lowered confidence: the mark
  says what happened, and a reader or `--fail-on` still sees the rating the
  review gave);
- refuted: not posted; listed as "checked and not posted" with the reason. A
  refutation may cite code too, and a refutation whose quotes do not match is
  not believed either: the finding is kept, unverified, since a made-up
  refutation would otherwise hide a real problem;
- no verdict (the call failed, or the run was stopped first): unverified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .. import prompts
from ..errors import ReviewerError
from ..findings import normalize_path
from ..identity import code_hash
from ..models import SEVERITY_RANK, Evidence, Finding, Verification
from ..redact import redact
from ..repo_view import PathRefused, RepoView, shown

MAX_FILE_BYTES = 2 * 1024 * 1024
"""Bytes of a cited file read to check a quote; a line past them cannot be checked."""
MAX_QUOTE_CHARS = 500
"""Characters of a quote kept in the result (it was checked whole)."""
_MARGIN = re.compile(r"^\s*\d+\s*\|\s?")


def wanted(f: Finding, floor: str) -> bool:
    """Whether `f` goes to the verifier under `verify_min_severity` `floor`."""
    return SEVERITY_RANK[f.severity] >= SEVERITY_RANK[floor]


def subject(f: Finding) -> str:
    """How a verifier call is named in the usage records."""
    if f.line is None:
        return f"verify {f.file}"
    return f"verify {f.file}:{f.line}" + (f"-{f.end_line}" if f.end_line else "")


def _lines(f: Finding) -> str:
    if f.line is None:
        return "none given (the finding is about the file as a whole; find the code it describes)"
    span = str(f.line) if f.end_line is None else f"{f.line}-{f.end_line}"
    if f.side == "LEFT":
        return f"{span} of the file before the change (code the change removed or replaced)"
    return f"{span} at the head commit"


def user_message(f: Finding, rounds: int) -> str:
    """The verifier's task: the finding's file, lines, category and issue text, nothing else."""
    issue = redact(f.issue)
    return prompts.render("verify", rounds=rounds, file=f.file, lines=_lines(f), category=f.category,
                          issue=issue, boundary=prompts.boundary(f.file, issue))


def _norm(text: str) -> str:
    return " ".join(text.split())


def check_quote(view: RepoView, e: Evidence) -> str | None:
    """None when `e.quote` is at `e.file`, line `e.line`, of the head commit; else why it is not.

    Whitespace is normalised on both sides; a quote may be part of a line; a
    quote of k lines must lie within lines `e.line` .. `e.line + k - 1` (so it
    starts at its line). A quote with the read_file margin ("  12 | ") left in
    is tried without it too.
    """
    return _checked(view, e)[0]


def _checked(view: RepoView, e: Evidence) -> tuple[str | None, Evidence]:
    """(`check_quote`'s answer, `e` with the hash and the last line of the code it cites when the quote matched)."""
    where = f"{shown(e.file)} line {e.line}"
    try:
        blob = view.read(e.file, MAX_FILE_BYTES)
    except PathRefused as exc:
        return f"{where}: {exc.reason}", e
    except ReviewerError as exc:
        return f"{where}: could not be read ({exc})", e
    if blob.is_link:
        return f"{where}: the file is a symbolic link, which is not followed", e
    if blob.binary:
        return f"{where}: the file is binary", e
    quoted = ev_lines(e.quote)
    if not quoted:
        return f"{where}: the quote is empty", e
    lines = blob.text.splitlines()
    window = lines[e.line - 1: e.line - 1 + len(quoted)]
    if len(window) < len(quoted):
        if blob.truncated:
            return f"{where}: past the first {MAX_FILE_BYTES:,} bytes of the file, which are all that is read", e
        return f"{where}: the file has {len(lines)} line(s)", e
    text = "\n".join(_norm(line) for line in window)
    for candidate in (quoted, [_norm(_MARGIN.sub("", q)) for q in quoted]):
        if all(candidate) and "\n".join(candidate) in text:
            end = e.line + len(window) - 1
            return None, replace(e, code=code_hash("\n".join(window)), end_line=end if end > e.line else None)
    return f"{where}: the quoted code is not there", e


def head_text(view: RepoView, path: str) -> str | None:
    """The text of `path` at the view's commit as a quote is checked against it; None when it cannot be
    read there (refused, gone, a link, binary)."""
    try:
        blob = view.read(path, MAX_FILE_BYTES)
    except ReviewerError:
        return None
    return None if blob.is_link or blob.binary else blob.text


def ev_lines(quote: str) -> list[str]:
    """The quote's lines, whitespace-normalised, without blank lines at either end."""
    lines = [_norm(q) for q in quote.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def judge(f: Finding, answer: Mapping[str, Any], view: RepoView) -> Finding:
    """`f` with the verifier's `answer` applied, as the module docstring says; reads `view`."""
    evidence = tuple(Evidence(normalize_path(str(e["file"])), int(e["line"]), str(e["quote"]))
                     for e in answer.get("evidence", ()))
    checked = [_checked(view, e) for e in evidence]
    problems = [p for p, _ in checked if p is not None]
    # The hash of what each quote cites goes with it: a remembered refutation watches that code (README: Verification).
    kept = tuple(replace(e, quote=redact(_clip(e.quote))) for _, e in checked)
    reason = redact(str(answer.get("reason", "")).strip())
    mismatch = "" if not problems else problems[0] + (f" (and {len(problems) - 1} more quote(s))" if len(problems) > 1 else "")
    if answer["verdict"] == "refuted":
        if problems:
            return f.with_(verification=Verification(
                "unverified", redact(f"the verifier refuted it, but its evidence does not match the code: {mismatch}"), kept))
        return f.with_(verification=Verification("refuted", reason or "refuted by the verifier", kept))
    if not evidence:
        return f.with_(verification=Verification("unverified", "the verifier confirmed it without quoting the code", kept))
    if problems:
        return f.with_(verification=Verification(
            "unverified", redact(f"the verifier's quote does not match the code: {mismatch}"), kept))
    return f.with_(severity=answer["severity"], confidence=answer["confidence"],
                   verification=Verification("confirmed", reason or "confirmed by the verifier", kept))


def unchecked(f: Finding, why: str) -> Finding:
    """`f` sent to the verifier without a verdict coming back: kept with its rating, marked unverified."""
    return f.with_(verification=Verification("unverified", redact(why)))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_QUOTE_CHARS else text[:MAX_QUOTE_CHARS - 1] + "…"
