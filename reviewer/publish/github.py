"""Post a review on a GitHub pull request, and read back what earlier runs posted.

Contract with GitHub (shared/specs/github.md):
- one review per run (`POST .../pulls/{n}/reviews`, event COMMENT, commit_id =
  the head SHA reviewed) carrying every inline comment;
- every finding we post carries a compact hidden marker (its fingerprint, place,
  verdict, the start of its issue and a hash of its code), so a later run knows
  what was said and where; only markers in comments authored by our own
  identity are trusted, and they must validate against the finding schema;
- every finding the model returned is accounted for on the pull request itself
  (`Ledger`): inline, listed in the review body, in follow-up comments when the
  body is full, or counted in the summary comment (repeats, merged, over the
  limits, rejected) -- never only in the step summary; a finding the verifier
  refuted is listed, collapsed, under "Checked and not posted" with the reason,
  and carries a `checked` marker, not a finding marker, so a later run does not
  read it back as posted;
- a 422 never loses a finding: offending comments move to the review body;
- POSTs are not retried blindly: after a 5xx or a timeout we look for the
  review we may already have created (by its run id) before posting again.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .. import findings as findings_mod
from .. import identity, schemas
from ..config import Config
from ..diff import shown_path
from ..errors import ServiceError
from ..models import SEVERITY_RANK, CitedCode, Diff, Finding, PriorFinding, Refutation, ReviewResult
from ..pricing import usd
from ..redact import redact
from ..source import PullRequest, graphql_read, transient_wait
from . import counts, location, safe
from .markdown import fence

MAX_BODY = 65_536
_BODY_BUDGET = 60_000  # under GitHub's limit, with room for the header and markers
_MAX_ISSUE = 4_000
_MARKER = re.compile(r"<!-- reviewer:(\w+) (.*?) -->", re.S)


def marker(kind: str, data: dict[str, Any]) -> str:
    """A hidden HTML comment carrying `data`.

    `<` and `>` are JSON-escaped so no text can close the comment, and `@` so
    nothing inside it can read as a mention.
    """
    return f"<!-- reviewer:{kind} {_payload(data)} -->"


def _payload(data: Any) -> str:
    return (json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("@", "\\u0040"))


def read_markers(body: str | None) -> list[tuple[str, Any]]:
    out = []
    for kind, payload in _MARKER.findall(body or ""):
        try:
            out.append((kind, json.loads(payload)))
        except ValueError:
            continue
    return out


_MARKED_ISSUE = 300
"""Characters of the issue a marker keeps: enough to match a restatement, not the whole text twice."""


_CONTEXT = 3
"""Lines either side of a finding whose code a marker hashes as its context."""


def finding_marker(f: Finding, code: str = "", context: str = "") -> str:
    """The compact marker of a posted finding: what a re-review needs, not the whole finding.

    `code` is the code at the anchor, `context` the code `_CONTEXT` lines
    around it; both are kept as short hashes (`identity.code_hash`).
    """
    data = _finding_data(f, identity.code_hash(code), identity.code_hash(context))
    if f.confidence is not None:
        data["confidence"] = f.confidence
    return marker("f", data)


def _finding_data(f: Finding, code: str, context: str) -> dict[str, Any]:
    """What a marker keeps of a finding to know it again: identity, place, the start of its issue, code hashes."""
    data: dict[str, Any] = {
        "fp": f.fingerprint, "file": f.file, "side": f.side, "severity": f.severity,
        "category": f.category, "issue": _clip(f.issue, _MARKED_ISSUE), "pass": f.pass_,
    }
    if f.line is not None:
        data.update(line=f.line, code=code, ctx=context)
    if f.end_line is not None:
        data["end_line"] = f.end_line
    return data


MAX_REMEMBERED_CHARS = 20_000
"""Characters of the summary marker that remember refutations (about 25 of them); the rest are forgotten."""
MAX_REMEMBERED_READ = 200
"""Refutations read back from one summary marker at most, whatever it holds."""
_REMEMBERED_REASON = 300
_SHA = re.compile(r"[0-9a-f]{7,40}")
MAX_REMEMBERED_EVIDENCE = 5
"""Cited lines a remembered refutation watches at most (the first ones the verifier gave)."""
_EVIDENCE_PATH = 300
"""Characters of a cited path a record keeps; a longer one is not watched (nor written)."""
_EVIDENCE_SPAN = 50
"""Lines one cited quote may span in a record."""
_HASH = re.compile(r"[0-9a-f]{12}")


def refutation_record(r: Refutation) -> dict[str, Any]:
    """A remembered refutation as the summary marker keeps it: the finding's marker data, when and why,
    and the code its evidence cited (`ev`: [path, line, last line, hash] each)."""
    f = r.finding
    data = _finding_data(f.with_(file=redact(f.file), issue=redact(f.issue)), r.code, r.context)
    data.update(sha=r.sha, why=redact(_clip(r.reason, _REMEMBERED_REASON)))
    if r.evidence:
        data["ev"] = [[c.file, c.line, c.end_line or c.line, c.code] for c in r.evidence]
    return data


def cited(evidence: Iterable[Any]) -> tuple[CitedCode, ...]:
    """What a refutation's evidence (`models.Evidence`, quotes that matched at head) leaves to watch.

    Only quotes whose code was hashed, once each, at most MAX_REMEMBERED_EVIDENCE; a path that
    redaction would change, or too long for a record, is left out (it could not be read back).
    """
    out: dict[tuple[str, int], CitedCode] = {}
    for e in evidence:
        end = e.end_line or e.line
        if (not e.code or redact(e.file) != e.file or len(e.file) > _EVIDENCE_PATH
                or end - e.line > _EVIDENCE_SPAN or (e.file, e.line) in out):
            continue
        out[(e.file, e.line)] = CitedCode(e.file, e.line, e.end_line, e.code)
        if len(out) == MAX_REMEMBERED_EVIDENCE:
            break
    return tuple(out.values())


def _cited_from_record(data: Any) -> tuple[CitedCode, ...] | None:
    """The `ev` list of one of our records; None when it is not one we write."""
    if not isinstance(data, list) or len(data) > MAX_REMEMBERED_EVIDENCE:
        return None
    out = []
    for item in data:
        if not (isinstance(item, list) and len(item) == 4):
            return None
        path, line, end, code = item
        if not (isinstance(path, str) and 0 < len(path) <= _EVIDENCE_PATH and "\0" not in path
                and all(type(n) is int for n in (line, end)) and 1 <= line <= end <= line + _EVIDENCE_SPAN
                and isinstance(code, str) and _HASH.fullmatch(code)):
            return None
        out.append(CitedCode(path, line, end if end > line else None, code))
    return tuple(out)


def _refutation_from_record(data: Any) -> Refutation | None:
    """A remembered refutation of our summary marker; None when the record is not one we write."""
    if not isinstance(data, dict):
        return None
    data = dict(data)
    sha, why = data.pop("sha", None), data.pop("why", None)
    if not (isinstance(sha, str) and _SHA.fullmatch(sha) and isinstance(why, str) and len(why) <= 2 * _REMEMBERED_REASON):
        return None
    if "confidence" in data or len(str(data.get("issue", ""))) > _MARKED_ISSUE:
        return None
    evidence = _cited_from_record(data.pop("ev", []))
    if evidence is None:
        return None
    parsed = _finding_from_marker("f", data)
    if parsed is None:
        return None
    return Refutation(parsed[0], sha, why, parsed[1], parsed[2], evidence=evidence)


def _finding_from_marker(kind: str, data: Any) -> tuple[Finding, str, str] | None:
    """(finding, code hash, context hash) of one of our markers; None when it is not valid.

    `f` is the compact marker; `finding` the full JSON older versions wrote.
    """
    if not isinstance(data, dict):
        return None
    code = context = ""
    if kind == "f":
        data = dict(data)
        code, context = data.pop("code", ""), data.pop("ctx", "")
        if "fp" not in data or not all(isinstance(h, str) and re.fullmatch(r"[0-9a-f]{0,12}", h) for h in (code, context)):
            return None
        data["fingerprint"] = data.pop("fp")
    elif kind != "finding" or "fingerprint" not in data:
        return None
    if schemas.first_error(schemas.load("finding"), data) is not None:
        return None
    return Finding.from_dict(data), code, context


# --- reading what earlier runs posted ----------------------------------------------


@dataclass(frozen=True)
class Posted:
    """A finding an earlier run posted, and what people did with it since."""

    finding: Finding
    comment_id: int | None = None
    """Top-level inline comment; None when the finding was listed in a review body or a follow-up."""
    code: str = ""
    """Hash of the code the finding pointed at when posted (`identity.code_hash`); "" when unknown."""
    context: str = ""
    """Hash of the code around it when posted; "" when unknown."""
    thread_id: str | None = None
    resolved: bool = False
    resolved_by_tool: bool = False
    human_replied: bool = False
    outdated: bool = False

    @property
    def dismissed(self) -> bool:
        """A person answered the thread or resolved it: never raise it again."""
        return self.human_replied or (self.resolved and not self.resolved_by_tool)


@dataclass
class PriorState:
    login: str
    last_sha: str | None = None
    posted: list[Posted] = field(default_factory=list)
    summary: Any = None
    incomplete: bool = False
    """The last run's summary says it was cut short: its head is not taken as reviewed."""
    notes: list[str] = field(default_factory=list)
    now: dict[int, tuple[int | None, int | None] | None] = field(default_factory=dict)
    """Index in `posted` -> (line, end_line) of its code at the head under review, None when the code is gone;
    absent when the line stands as recorded (see `relocate`)."""
    refuted: list[Refutation] = field(default_factory=list)
    """Findings the verifier refuted in earlier reviews, from our summary's marker; relocated to the head
    under review by `relocate` (`changed` set when their code changed since)."""

    @property
    def open_index(self) -> tuple[int, ...]:
        """Indexes in `posted` of the findings still open: the ones a re-review shows the model."""
        return tuple(j for j, p in enumerate(self.posted) if not p.resolved and not p.dismissed)

    @property
    def open(self) -> tuple[Posted, ...]:
        return tuple(p for p in self.posted if not p.resolved and not p.dismissed)

    @property
    def open_findings(self) -> tuple[Finding, ...]:
        return tuple(p.finding for p in self.open)


def own_login(gh: Any, config: Config) -> str:
    """The login our comments carry: the token's user, or the Actions bot.

    An Actions GITHUB_TOKEN cannot read GET /user (403), so the configured bot
    login stands in for it.
    """
    from github import GithubException

    try:
        return gh.get_user().login
    except GithubException as exc:
        if exc.status in (401,):
            raise ServiceError("GitHub rejected the token (401 Bad credentials)") from None
        return config.bot_login


_THREADS = """query($owner:String!,$name:String!,$number:Int!,$cursor:String){
 repository(owner:$owner,name:$name){ pullRequest(number:$number){
  reviewThreads(first:100,after:$cursor){ pageInfo{hasNextPage endCursor}
   nodes{ id isResolved isOutdated path line
    comments(first:100){ nodes{ databaseId author{login} } } } } } } }"""


def _threads(gh: Any, pr: PullRequest) -> dict[int, dict[str, Any]]:
    """Thread state keyed by the REST id of each thread's first comment."""
    owner, name = pr.repo.split("/", 1)
    out: dict[int, dict[str, Any]] = {}
    cursor = None
    for _ in range(50):
        data = graphql_read(gh, _THREADS, {"owner": owner, "name": name, "number": pr.number, "cursor": cursor})
        threads = data["data"]["repository"]["pullRequest"]["reviewThreads"]
        for node in threads["nodes"]:
            comments = node["comments"]["nodes"]
            if comments and comments[0].get("databaseId") is not None:
                out[int(comments[0]["databaseId"])] = node
        if not threads["pageInfo"]["hasNextPage"]:
            break
        cursor = threads["pageInfo"]["endCursor"]
    return out


def read_prior(gh: Any, pr: PullRequest, config: Config) -> PriorState:
    """What earlier runs of reviewer posted on this PR, from our own comments only."""
    from github import GithubException

    login = own_login(gh, config)
    state = PriorState(login=login)
    repo = gh.get_repo(pr.repo)
    pull = repo.get_pull(pr.number)
    last_review_sha: str | None = None
    try:
        for comment in pull.get_issue_comments():
            if comment.user.login != login:
                continue
            for kind, data in read_markers(comment.body):
                if kind == "summary" and isinstance(data, dict):
                    state.summary = comment
                    state.last_sha = data.get("sha") if isinstance(data.get("sha"), str) else None
                    state.incomplete = data.get("incomplete") is True
                    records = data.get("refuted")
                    state.refuted = [r for record in (records if isinstance(records, list) else [])[:MAX_REMEMBERED_READ]
                                     if (r := _refutation_from_record(record)) is not None]
                elif parsed := _finding_from_marker(kind, data):
                    # Listed in a follow-up comment: a review body was full.
                    state.posted.append(Posted(parsed[0], code=parsed[1], context=parsed[2]))
        for review in pull.get_reviews():
            if review.user is None or review.user.login != login:
                continue
            for kind, data in read_markers(review.body):
                if kind == "review" and isinstance(data, dict) and isinstance(data.get("sha"), str):
                    last_review_sha = data["sha"]
                elif parsed := _finding_from_marker(kind, data):
                    state.posted.append(Posted(parsed[0], code=parsed[1], context=parsed[2]))
        comments = list(pull.get_review_comments())
    except GithubException as exc:
        raise ServiceError(f"GitHub answered {exc.status} while reading earlier comments") from None
    # A run cut short (deadline) reviewed only part of its head: the next one reviews every file.
    state.last_sha = None if state.incomplete else (state.last_sha or last_review_sha)

    replies: dict[int, list[Any]] = {}
    for c in comments:
        if c.in_reply_to_id:
            replies.setdefault(c.in_reply_to_id, []).append(c)
    threads: dict[int, dict[str, Any]] = {}
    try:
        threads = _threads(gh, pr)
    except (GithubException, KeyError, TypeError) as exc:
        state.notes.append(f"could not read review threads through GraphQL ({getattr(exc, 'status', exc)}); resolution state unknown")
    for c in comments:
        if c.in_reply_to_id or c.user is None or c.user.login != login:
            continue
        found = [parsed for kind, data in read_markers(c.body) if (parsed := _finding_from_marker(kind, data))]
        if not found:
            continue
        answers = replies.get(c.id, [])
        thread = threads.get(c.id, {})
        state.posted.append(Posted(
            finding=found[0][0],
            code=found[0][1],
            context=found[0][2],
            comment_id=c.id,
            thread_id=thread.get("id"),
            resolved=bool(thread.get("isResolved")),
            resolved_by_tool=any(r.user and r.user.login == login and any(k == "resolved" for k, _ in read_markers(r.body)) for r in answers),
            human_replied=any(r.user is None or r.user.login != login for r in answers),
            outdated=bool(thread.get("isOutdated")),
        ))
    return state


def changed_since(gh: Any, pr: PullRequest, last_sha: str | None) -> frozenset[str] | None:
    """Files changed between the last reviewed head and this one; None = unknown, read all."""
    from github import GithubException

    if not last_sha or last_sha == pr.head_sha:
        return None if not last_sha else frozenset()
    try:
        comparison = gh.get_repo(pr.repo).compare(last_sha, pr.head_sha)
        files = list(comparison.files)
    except GithubException:
        return None  # e.g. the old head vanished in a force-push: review everything
    if len(files) >= 300:
        return None  # the compare API lists at most 300 files
    return frozenset(f.filename for f in files) | frozenset(f.previous_filename for f in files if f.previous_filename)


# --- relocating and matching what was posted -------------------------------------------

_UNKNOWN = object()


def relocate(prior: PriorState, diff: Diff, changed: frozenset[str] | None,
             head_text: Callable[[str], str | None] | None = None) -> None:
    """Find where each posted finding's code is at the head under review (`PriorState.now`).

    A file not changed since the last review keeps its lines. Otherwise the
    line holding the same code nearest to the old one wins; None means the
    code is gone. A finding without a code hash (file-level, or posted by an
    older version) keeps its recorded line.

    Refutations are relocated too, with the code their evidence cited:
    `head_text(path)` is a file's text at the head under review (None when it
    cannot be read there); without it, a cited file that may have changed
    counts as changed.
    """
    prior.now = {}
    for j, p in enumerate(prior.posted):
        f = p.finding
        if f.line is None or not p.code or (changed is not None and f.file not in changed):
            continue
        current = diff.get(f.file)
        if current is None:
            continue
        found = identity.relocate(f.line, f.end_line, p.code, functools.partial(current.line_text, side=f.side),
                                  identity.RELOCATE_LIMIT)
        if found is None and f.side == "RIGHT" and current.head_text is None:
            continue  # only the hunks are known: no proof the code is gone
        prior.now[j] = found
    read = functools.lru_cache(maxsize=None)(head_text) if head_text is not None else None
    prior.refuted = [_grounds_relocated(_relocated(r, diff, changed), changed, read) for r in prior.refuted]


def _grounds_relocated(r: Refutation, changed: frozenset[str] | None,
                       head_text: Callable[[str], str | None] | None) -> Refutation:
    """`r` with the code its evidence cited where it is now, or marked `changed` when a cited line cannot be
    found by its hash (the refutation rested on code that is no longer there: "the only caller" gained another).

    A file not changed since the last review is not read. Without `head_text`, a cited file that may have
    changed is taken as changed: nothing proves the refutation still holds.
    """
    if r.changed or not r.evidence:
        return r
    moved = []
    for c in r.evidence:
        if changed is not None and c.file not in changed:
            moved.append(c)
            continue
        text = head_text(c.file) if head_text is not None else None
        if text is None:
            return replace(r, changed=True)
        found = identity.relocate(c.line, c.end_line, c.code, functools.partial(_line_of, text.splitlines()),
                                  identity.RELOCATE_LIMIT)
        if found is None or found[0] is None:
            return replace(r, changed=True)
        moved.append(replace(c, line=found[0], end_line=found[1]))
    return replace(r, evidence=tuple(moved))


def _line_of(lines: Sequence[str], n: int) -> str | None:
    return lines[n - 1] if 1 <= n <= len(lines) else None


def _relocated(r: Refutation, diff: Diff, changed: frozenset[str] | None) -> Refutation:
    """`r` where its code is at the head under review, or marked `changed` when that code, or the code
    around it, is not the code that was refuted (then a restatement is verified again)."""
    f = r.finding
    if changed is not None and f.file not in changed:
        return r  # the file is as the last review saw it
    current = diff.get(f.file)
    if current is None or f.line is None or not r.code:
        return replace(r, changed=True)
    found = identity.relocate(f.line, f.end_line, r.code, functools.partial(current.line_text, side=f.side),
                              identity.RELOCATE_LIMIT)
    if found is None or found[0] is None or identity.code_hash(_window(diff, f, found[0], found[1])) != r.context:
        return replace(r, changed=True)
    return replace(r, finding=f.with_(line=found[0], end_line=found[1]))


def remember(prior: PriorState, result: ReviewResult, diff: Diff, head_sha: str) -> tuple[list[dict[str, Any]], int]:
    """The refutations the summary marker keeps for the next review, and how many did not fit.

    This review's refutations first (asked now, at `head_sha`, or restating an
    earlier one), then the earlier ones whose code has not changed, restated or
    not; at most MAX_REMEMBERED_CHARS of them. A refutation whose code changed,
    or the code its evidence cited, is forgotten: a restatement of it is
    verified again.
    """
    standing = {(r.finding.file, r.finding.fingerprint): r for r in prior.refuted if not r.changed}
    out: list[Refutation] = []
    for f in result.refuted:
        v = f.verification
        earlier = standing.pop((f.file, f.fingerprint), None)
        if v is not None and v.refuted_on and earlier is not None:
            out.append(earlier)
        elif v is not None and not v.refuted_on:
            code, context = _code_of(f, diff)
            out.append(Refutation(f, head_sha, v.reason, identity.code_hash(code), identity.code_hash(context),
                                  evidence=cited(v.evidence)))
    out.extend(standing.values())
    records: list[dict[str, Any]] = []
    size = 0
    for r in out:
        record = refutation_record(r)
        size += len(_payload(record)) + 1  # as written in the marker, escapes included
        if size > MAX_REMEMBERED_CHARS:
            break
        records.append(record)
    return records, len(out) - len(records)


def shown_to_model(prior: PriorState, head_sha: str) -> tuple[PriorFinding, ...]:
    """The open posted findings as the re-review's prompts show them: ids, current lines, or where they were."""
    out = []
    for k, j in enumerate(prior.open_index, 1):
        p = prior.posted[j]
        f = p.finding
        was = None
        if j in prior.now:
            place = prior.now[j]
            if place is None:
                was = f"{'line ' + str(f.line) if f.end_line is None else f'lines {f.line}-{f.end_line}'} at {(prior.last_sha or 'the last review')[:12]} (its code has changed since)"
                f = f.with_(line=None, end_line=None)
            else:
                f = f.with_(line=place[0], end_line=place[1])
        out.append(PriorFinding(f"P{k}", f, was, head_sha))
    return tuple(out)


# --- deciding what to say ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    new: tuple[Finding, ...]
    still_open: tuple[Posted, ...]
    resolved: tuple[Posted, ...]
    repeats: tuple[tuple[Finding, Posted], ...] = ()
    """Findings of this run that restate one posted earlier, and the one each restates: counted, not posted."""

    @property
    def suppressed(self) -> int:
        return len(self.repeats)


def _window(diff: Diff, f: Finding, line: int, end: int | None) -> str:
    file = diff.get(f.file)
    if file is None:
        return ""
    return findings_mod.code_at(file, max(1, line - _CONTEXT), (end or line) + _CONTEXT, f.side)


def _lines_changed(j: int, p: Posted, prior: PriorState, diff: Diff, changed: frozenset[str] | None) -> bool:
    """Whether the code at or around a posted finding changed since it was posted."""
    f = p.finding
    if changed is not None and f.file not in changed:
        return False
    if p.outdated:
        return True
    current = diff.get(f.file)
    if current is None or f.line is None:
        return True
    if j in prior.now:
        place = prior.now[j]
        if place is None:
            return True  # its code is gone
        # The line itself is still there: changed when the lines around it changed (a guard added above...).
        line = place[0] if place[0] is not None else f.line
        return bool(p.context) and identity.code_hash(_window(diff, f, line, place[1])) != p.context
    return f.line not in current.commentable(f.side)


def decide(prior: PriorState, result: ReviewResult, diff: Diff, changed: frozenset[str] | None,
           shown: Sequence[PriorFinding] = ()) -> Outcome:
    """New findings, repeats of posted ones, those still open, and those fixed since the last review.

    A finding that is the same problem as one posted earlier (README: A
    finding's identity) is never posted again: it is counted as a repeat,
    naming what it repeats. A prior finding is resolved only when no finding
    restates it, its code or the code around it changed, and no person took
    over its thread. `shown` are the prior findings with the ids the model saw.
    """
    earlier = [p.finding for p in prior.posted]
    lines = {j: (place[0] if place is not None else earlier[j].line) for j, place in prior.now.items()}
    ids = {p.id: prior.open_index[k] for k, p in enumerate(shown) if k < len(prior.open_index)}
    citations = {i: ids[f.repeats] for i, f in enumerate(result.findings) if f.repeats in ids}
    pairs = identity.match(result.findings, earlier, lines, citations)
    new = tuple(f for i, f in enumerate(result.findings) if i not in pairs)
    repeats = tuple((result.findings[i], prior.posted[j]) for i, j in sorted(pairs.items()))
    reported = set(pairs.values())
    still_open, resolved = [], []
    for j, p in enumerate(prior.posted):
        if p.resolved or p.dismissed:
            continue
        if j not in reported and _lines_changed(j, p, prior, diff, changed):
            resolved.append(p)
        else:
            still_open.append(p)
    return Outcome(new, tuple(still_open), tuple(resolved), repeats)


# --- composing the review ------------------------------------------------------------


def _clip(text: str, limit: int = _MAX_ISSUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_of(f: Finding, diff: Diff | None) -> tuple[str, str]:
    """(anchor code, code around it) of a finding, for its marker."""
    file = diff.get(f.file) if diff is not None else None
    if file is None or f.line is None:
        return "", ""
    return findings_mod.code_at(file, f.line, f.end_line, f.side), _window(diff, f, f.line, f.end_line) if diff else ""


def _checked(f: Finding) -> str:
    """The verifier's mark in a finding's first line: " · verified", " · unverified", or ""."""
    v = f.verification
    return "" if v is None or v.verdict == "refuted" else f" · {'verified' if v.verdict == 'confirmed' else 'unverified'}"


def _unverified_why(f: Finding, limit: int) -> str:
    v = f.verification
    return "" if v is None or v.verdict != "unverified" else "Not verified: " + safe(_clip(v.reason, limit))


def comment_body(f: Finding, diff: Diff | None = None) -> str:
    conf = "" if f.confidence is None else f" · confidence {f.confidence:.2f}"
    parts = [f"**{f.severity}** · {f.category}{conf}{_checked(f)}", "", safe(_clip(f.issue))]
    if why := _unverified_why(f, 600):
        parts += ["", why]
    if f.suggestion:
        parts += ["", "Fix: " + safe(_clip(f.suggestion))]
    if f.replacement is not None and f.side == "RIGHT":
        parts += ["", fence(f.replacement, "suggestion")]
    parts += ["", finding_marker(f, *_code_of(f, diff))]
    return redact("\n".join(parts))


def inline_comment(f: Finding, diff: Diff | None = None) -> dict[str, Any]:
    assert f.line is not None
    comment: dict[str, Any] = {"path": f.file, "body": comment_body(f, diff), "side": f.side}
    if f.end_line is not None:
        comment.update(start_line=f.line, start_side=f.side, line=f.end_line)
    else:
        comment["line"] = f.line
    return comment


_LISTED_ISSUE = 1_500
_LISTED_CODE = 800


def listed(f: Finding, diff: Diff | None = None) -> str:
    """One finding as a compact list entry of a review body or follow-up comment, marker included."""
    conf = "" if f.confidence is None else f" · confidence {f.confidence:.2f}"
    out = f"- **{f.severity}** · `{safe(location(f))}` · {f.category}{conf}{_checked(f)}: {safe(_clip(f.issue, _LISTED_ISSUE))}"
    if why := _unverified_why(f, 300):
        out += "\n  " + why
    if f.suggestion:
        out += "\n  Fix: " + safe(_clip(f.suggestion, _LISTED_ISSUE))
    if f.replacement and len(f.replacement) <= _LISTED_CODE:
        out += "\n  " + fence(f.replacement).replace("\n", "\n  ")
    elif f.replacement:
        out += "\n  (proposed code: in the run's report)"
    return out + "\n  " + finding_marker(f, *_code_of(f, diff)) + "\n"


def listed_refuted(f: Finding) -> str:
    """A finding the verifier refuted, as a list entry: what was claimed, and why it does not hold.

    Its marker is `checked`, not `f`: it was not posted, so a later run must not
    take it for a posted finding (`read_prior` reads only `f` markers).
    """
    reason = f.verification.reason if f.verification is not None else ""
    out = (f"- `{safe(location(f))}` · {f.category}: {safe(_clip(f.issue, _LISTED_ISSUE))}\n"
           f"  Refuted: {safe(_clip(reason, _LISTED_ISSUE))}")
    data: dict[str, Any] = {"fp": f.fingerprint, "file": f.file}
    if f.line is not None:
        data["line"] = f.line
    return out + "\n  " + marker("checked", data) + "\n"


CHECKED_TITLE = "Checked and not posted (refuted by the verifier)"

_SECTIONS = (
    ("unanchored", "Findings outside the diff", False),
    ("over_cap", "More findings (over the inline comment limit)", False),
    ("verify", "For a human to verify (low confidence)", True),
    ("refuted", CHECKED_TITLE, True),
)


@dataclass
class Composed:
    inline: list[Finding]
    unanchored: list[Finding]
    verify: list[Finding]
    over_cap: list[Finding]
    refuted: list[Finding] = field(default_factory=list)
    """Findings the verifier refuted: listed with the reason, collapsed, never inline."""

    def listings(self, pr: PullRequest, run_id: str, result: ReviewResult, outcome: Outcome,
                 diff: Diff | None = None) -> tuple[str, list[str], dict[str, int]]:
        """The review body and the follow-up comments for what does not fit in it.

        Returns (body, follow-ups, counts): counts of findings listed in the
        body, in follow-ups, and how many of those are low confidence and how
        many were refuted by the verifier (both listed, so also in the first two).
        """
        c = counts(list(outcome.new))
        head = (
            f"### reviewer: {len(outcome.new)} new finding(s) on {pr.head_sha[:7]}\n\n"
            f"{c['critical']} critical · {c['warning']} warning · {c['info']} info"
            + (f" · {outcome.suppressed} repeat(s) of earlier findings, not posted again" if outcome.suppressed else "")
            + (f" · {len(self.refuted)} checked by the verifier and not posted" if self.refuted else "")
            + (f" · {len(result.failed)} file(s) failed" if result.failed else "")
            + "\n"
            + (f"\n**Incomplete:** {safe(result.incomplete.message)}\n" if result.incomplete else "")
        )
        pages: list[list[str]] = [[head]]
        sizes = [len(head)]
        where = {"body": 0, "followups": 0, "low_confidence": 0, "refuted": 0}
        for key, title, collapsed in _SECTIONS:
            items: list[Finding] = getattr(self, key)
            if not items:
                continue
            opened = -1
            show = listed_refuted if key == "refuted" else (lambda f: listed(f, diff))
            for f in items:
                entry = show(f)
                if opened != len(pages) - 1:
                    # A section starts (again) on this page.
                    heading = (f"\n<details><summary>{title} ({len(items)})</summary>\n\n" if collapsed
                               else f"\n**{title}** ({len(items)})\n\n")
                    entry = heading + entry
                closing = "\n</details>\n" if collapsed else ""
                if sizes[-1] + len(entry) + len(closing) > _BODY_BUDGET and sizes[-1] > len(head):
                    if collapsed and opened == len(pages) - 1:
                        pages[-1].append(closing)
                    followup_head = (f"### reviewer: findings continued on {pr.head_sha[:7]}\n\n"
                                     "The review body was full; these findings belong to the same review.\n")
                    pages.append([followup_head])
                    sizes.append(len(followup_head))
                    heading = (f"\n<details><summary>{title} ({len(items)}, continued)</summary>\n\n" if collapsed
                               else f"\n**{title}** ({len(items)}, continued)\n\n")
                    entry = heading + show(f)
                opened = len(pages) - 1
                pages[-1].append(entry)
                sizes[-1] += len(entry)
                where["body" if len(pages) == 1 else "followups"] += 1
                where["low_confidence"] += key == "verify"
                where["refuted"] += key == "refuted"
            if collapsed:
                pages[-1].append("\n</details>\n")
                sizes[-1] += len("\n</details>\n")
        texts = [redact("".join(page)) for page in pages]
        total = len(texts) - 1
        if total:
            texts[0] += f"\n{where['followups']} more finding(s) did not fit in this review body: they are listed in {total} follow-up comment(s) below.\n"
        body = texts[0] + "\n" + marker("review", {"sha": pr.head_sha, "run": run_id})
        followups = [t + f"\n<sub>part {k} of {total}</sub>\n" + marker("followup", {"sha": pr.head_sha, "run": run_id, "part": k})
                     for k, t in enumerate(texts[1:], 1)]
        return body, followups, where

    def body(self, pr: PullRequest, run_id: str, result: ReviewResult, outcome: Outcome) -> str:
        return self.listings(pr, run_id, result, outcome)[0]


def compose(new: Sequence[Finding], config: Config) -> Composed:
    """Split new findings into inline comments, body lists and the human-verify section."""
    def rank(f: Finding) -> tuple[int, float]:
        return (-SEVERITY_RANK[f.severity], -(f.confidence if f.confidence is not None else 1.0))

    anchored = sorted((f for f in new if f.line is not None), key=rank)
    confident = [f for f in anchored if f.confidence is None or f.confidence >= config.confidence_threshold]
    return Composed(
        inline=confident[: config.max_inline_comments],
        unanchored=[f for f in new if f.line is None],
        verify=[f for f in anchored if f not in confident],
        over_cap=confident[config.max_inline_comments:],
    )


# --- posting -------------------------------------------------------------------------


@dataclass
class Posting:
    review_url: str | None = None
    inline: int = 0
    in_body: int = 0
    in_followups: int = 0
    followups: int = 0
    low_confidence: int = 0
    refuted: int = 0
    """Listed findings (body and follow-ups) that the verifier refuted: "Checked and not posted"."""
    resolved: int = 0
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    """Lines the summary comment had no room for; the caller adds them to the run's report."""


def _find_review(pull: Any, login: str, run_id: str) -> Any:
    for review in pull.get_reviews():
        if review.user and review.user.login == login and any(
            kind == "review" and isinstance(d, dict) and d.get("run") == run_id for kind, d in read_markers(review.body)
        ):
            return review
    return None


def _create_review(pull: Any, commit: Any, body: str, comments: list[dict[str, Any]], login: str, run_id: str,
                   sleep: Any = time.sleep) -> Any:
    """POST the review at most once in effect, even when GitHub fails after storing it."""
    last: Exception | None = None
    for attempt in range(4):
        if attempt:
            existing = _find_review(pull, login, run_id)
            if existing is not None:
                return existing
        try:
            return pull.create_review(commit=commit, body=body, event="COMMENT", comments=comments)
        except Exception as exc:  # noqa: BLE001 - classified just below
            wait = transient_wait(exc)
            if wait is None:
                raise
            last = exc
            sleep(wait * (attempt + 1))
    raise ServiceError(f"GitHub did not accept the review after 4 attempts: {last}")


def _errors_text(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        return " ".join(str(e) for e in data.get("errors", [])) or str(data.get("message", ""))
    return str(exc)


def post(gh: Any, pr: PullRequest, result: ReviewResult, outcome: Outcome, prior: PriorState, config: Config,
         diff: Diff) -> Posting:
    """Post the review (and follow-ups when its body is full), resolve fixed threads, update the summary."""
    from github import GithubException

    posting = Posting()
    run_id = uuid.uuid4().hex[:12]
    repo = gh.get_repo(pr.repo)
    pull = repo.get_pull(pr.number)
    composed = compose(outcome.new, config)
    composed.refuted = list(result.refuted)
    followups: list[str] = []
    if outcome.new or composed.refuted:
        commit = repo.get_commit(pr.head_sha)
        attempts: list[list[Finding]] = []
        for attempt in (composed.inline, _conservative(composed.inline, diff), _added_only(composed.inline, diff), []):
            if not attempts or attempt != attempts[-1]:  # the same comments would be refused again
                attempts.append(attempt)
        for inline in attempts:
            # By identity, not equality: a retry may have moved a finding to one line.
            kept = {f.fingerprint for f in inline}
            moved = [f for f in composed.inline if f.fingerprint not in kept]
            draft = Composed(inline, composed.unanchored + moved, composed.verify, composed.over_cap, composed.refuted)
            body, followups, where = draft.listings(pr, run_id, result, outcome, diff)
            try:
                review = _create_review(pull, commit, body, [inline_comment(f, diff) for f in inline], prior.login, run_id)
            except GithubException as exc:
                if exc.status != 422 or not inline:
                    raise ServiceError(f"GitHub refused the review ({exc.status}): {_errors_text(exc)}") from None
                posting.notes.append(f"GitHub refused {len(inline)} inline comment(s) ({_errors_text(exc)}); retried with fewer")
                continue
            posting.review_url = getattr(review, "html_url", None)
            posting.inline = len(inline)
            posting.in_body = where["body"]
            posting.in_followups = where["followups"]
            posting.low_confidence = where["low_confidence"]
            posting.refuted = where["refuted"]
            break
    for part, text in enumerate(followups, 1):
        _create_comment_once(pull, text, prior.login, run_id, part)
        posting.followups += 1
    posting.resolved = _resolve(gh, pull, outcome.resolved, pr, config, posting)
    memory, forgotten = remember(prior, result, diff, pr.head_sha)
    if forgotten:
        posting.notes.append(f"{forgotten} refutation(s) of the verifier did not fit in the summary's memory: "
                             "restated by a later review, they are verified again")
    _summary(pull, prior, pr, result, outcome, run_id, posting, memory)
    return posting


def _create_comment_once(pull: Any, body: str, login: str, run_id: str, part: int, sleep: Any = time.sleep) -> Any:
    """POST a follow-up comment at most once in effect, like `_create_review`."""
    from github import GithubException

    last: Exception | None = None
    for attempt in range(4):
        if attempt:
            for comment in pull.get_issue_comments():
                if comment.user and comment.user.login == login and any(
                        kind == "followup" and isinstance(d, dict) and d.get("run") == run_id and d.get("part") == part
                        for kind, d in read_markers(comment.body)):
                    return comment
        try:
            return pull.create_issue_comment(body)
        except Exception as exc:  # noqa: BLE001 - classified just below
            wait = transient_wait(exc)
            if wait is None:
                if isinstance(exc, GithubException):
                    raise ServiceError(f"GitHub refused a follow-up comment ({exc.status}): {_errors_text(exc)}") from None
                raise
            last = exc
            sleep(wait * (attempt + 1))
    raise ServiceError(f"GitHub did not accept a follow-up comment after 4 attempts: {last}")


def _added_only(inline: Sequence[Finding], diff: Diff) -> list[Finding]:
    """Third try: single lines the change added, the anchors GitHub resolves most surely."""
    out = []
    for f in _conservative(inline, diff):
        file = diff.get(f.file)
        hunk = file.hunk_of(f.line, "RIGHT") if file is not None and f.line is not None and f.side == "RIGHT" else None
        if hunk is not None and f.line in hunk.added:
            out.append(f)
    return out


def _conservative(inline: Sequence[Finding], diff: Diff) -> list[Finding]:
    """Second try after a 422: single lines only, and only lines our diff knows."""
    out = []
    for f in inline:
        file = diff.get(f.file)
        line = f.end_line or f.line
        if file is not None and line is not None and line in file.commentable(f.side):
            out.append(f.with_(line=line, end_line=None))
    return out


def _resolve(gh: Any, pull: Any, fixed: Iterable[Posted], pr: PullRequest, config: Config, posting: Posting) -> int:
    from github import GithubException

    done = 0
    can_resolve = config.resolve_threads
    for p in fixed:
        if p.comment_id is None:
            done += 1  # listed in a review body: nothing to reply to
            continue
        body = f"Resolved: this no longer applies at {pr.head_sha[:7]}.\n\n" + marker("resolved", {"sha": pr.head_sha, "fingerprint": p.finding.fingerprint})
        try:
            pull.create_review_comment_reply(p.comment_id, body)
        except GithubException as exc:
            posting.notes.append(f"could not reply on the thread of {location(p.finding)}: {exc.status}")
            continue
        done += 1
        if can_resolve and p.thread_id:
            try:
                gh.requester.graphql_named_mutation("resolveReviewThread", {"threadId": p.thread_id}, "thread { id isResolved }")
            except GithubException as exc:
                can_resolve = False
                posting.notes.append(
                    f"could not resolve review threads ({_errors_text(exc) or exc.status}); "
                    "the workflow needs `contents: write` for that"
                )
    return done


@dataclass(frozen=True)
class Ledger:
    """Where every finding the model returned went, as the summary comment shows it.

    The conservation law: returned = inline + body + follow-ups + repeats +
    merged + over the limits + rejected (low-confidence findings, and the ones
    the verifier refuted, are listed in the body or a follow-up, and counted
    there; `low_confidence` and `refuted` say how many of those they are).
    """

    returned: int
    inline: int
    body: int
    followups: int
    low_confidence: int
    repeats: int
    merged: int
    over_limit: int
    rejected: int
    refuted: int = 0
    confirmed: int = 0
    unverified: int = 0
    refuted_earlier: int = 0
    """Of `refuted`: restatements of a refutation of an earlier review, kept refuted without asking again."""

    @classmethod
    def of(cls, result: ReviewResult, outcome: Outcome, posting: Posting) -> Ledger:
        t = result.tally
        return cls(t.returned, posting.inline, posting.in_body, posting.in_followups, posting.low_confidence,
                   outcome.suppressed, t.merged, t.over_limit_total, t.rejected_total, posting.refuted,
                   t.confirmed, t.unverified, t.refuted_earlier)

    @property
    def accounted(self) -> int:
        return self.inline + self.body + self.followups + self.repeats + self.merged + self.over_limit + self.rejected

    def table(self) -> list[str]:
        return [
            f"Where the {self.returned} finding(s) the model returned went:",
            "",
            "| inline | review body | follow-up comments | repeats of earlier findings | merged duplicates | over the limits | not in the diff |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {self.inline} | {self.body} | {self.followups} | {self.repeats} | {self.merged} | {self.over_limit} | {self.rejected} |",
            "",
            *([f"{self.low_confidence} of the listed findings are low confidence, in the \"For a human to verify\" sections."]
              if self.low_confidence else []),
            *([f"{self.refuted} of the listed findings were refuted by the verifier, in the \"Checked and not posted\" sections."]
              if self.refuted else []),
            *([f"Verification: {self.confirmed} confirmed with quoted code, {self.refuted} refuted"
               + (f" ({self.refuted_earlier} of them restating a refutation of an earlier review whose code has "
                  "not changed, not checked again)" if self.refuted_earlier else "")
               + f", {self.unverified} unverified (kept with the aggregate pass's rating)."]
              if self.confirmed or self.refuted or self.unverified else []),
        ]


_LIST_LINE = 300


def _bounded(title: str, lines: Sequence[str], budget: int, where: str) -> tuple[list[str], list[str]]:
    """A titled list within `budget` characters: (the lines shown, the entries left out).

    What is left out is counted in the list itself, with where the full list is.
    """
    if not lines:
        return [], []
    shown = ["", title]
    size = len(title) + 1
    for k, line in enumerate(lines):
        entry = "- " + _clip(line, _LIST_LINE)
        if size + len(entry) + 1 > budget:
            rest = list(lines[k:])
            shown.append(f"- … and {len(rest)} more, {where}")
            return shown, rest
        shown.append(entry)
        size += len(entry) + 1
    return shown, []


def summary_text(pr: PullRequest, result: ReviewResult, outcome: Outcome, posting: Posting, run_id: str,
                 memory: Sequence[dict[str, Any]] = ()) -> str:
    """The sticky summary comment: counts, the ledger, and every list with its cuts counted.

    Lists that do not fit say how many entries they left out; those entries go
    to `posting.left_out`, which the caller adds to the run's report. `memory`
    (`remember`) goes into the hidden marker, for the next review.
    """
    open_now = list(outcome.new) + [p.finding for p in outcome.still_open]
    c = counts(open_now)
    u = result.usage
    cost = usd(result.cost_usd)
    ledger = Ledger.of(result, outcome, posting)
    lines = [
        "## reviewer summary",
        "",
        f"Reviewed {pr.head_sha[:7]}: **{len(outcome.new)} new**, {len(outcome.still_open)} still open, "
        f"{len(outcome.resolved)} resolved.",
        *(["", f"**Incomplete:** {safe(result.incomplete.message)}. The next run reviews every file again."]
          if result.incomplete else []),
        "",
        "| critical | warning | info | files reviewed | skipped | failed |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {c['critical']} | {c['warning']} | {c['info']} | {len(result.reviewed)} | {len(result.skipped)} | {len(result.failed)} |",
        "",
        *ledger.table(),
    ]
    if posting.review_url:
        lines.append(f"Review: {posting.review_url}" + (f" (and {posting.followups} follow-up comment(s))" if posting.followups else ""))
    report = "in the run's report (the Actions step summary, or --output)"
    t = result.tally
    if t.over_limit:
        top = ", ".join(f"`{safe(path)}` ({n})" for path, n in t.over_limit[:10])
        more = f", and {len(t.over_limit) - 10} more file(s)" if len(t.over_limit) > 10 else ""
        lines += ["", f"**{ledger.over_limit} finding(s) over the limits were counted, not kept.** Files carrying most: {top}{more}."]
    budget = _BODY_BUDGET - sum(len(x) + 1 for x in lines) - 2_000 - MAX_REMEMBERED_CHARS * bool(memory)
    sections: list[tuple[str, list[str], str]] = [
        ("Failed files:", [f"`{safe(shown_path(f.path))}`: {safe(f.error)}" for f in result.failed], report),
        ("Repeats of earlier findings (not posted again):",
         [f"`{safe(location(new))}` repeats `{safe(location(old.finding))}`: {safe(_clip(old.finding.issue, 120))}"
          for new, old in outcome.repeats], report),
        ("Findings not in the diff (rejected):",
         [f"{r.count} on `{safe(shown_path(r.path))}`: {safe(r.reason)}" for r in t.rejected], "listed in the run's JSON report (`stats.tally`)"),
        ("Skipped files:", [f"`{safe(shown_path(s.path))}`: {safe(s.reason)}" for s in result.skipped], report),
        ("Notes:", [safe(n) for n in list(result.notes) + posting.notes], report),
    ]
    for k, (title, items, where) in enumerate(sections):
        share = budget // (len(sections) - k)
        shown, rest = _bounded(title, items, share, where)
        lines += shown
        budget -= sum(len(x) + 1 for x in shown)
        if rest and title.startswith(("Repeats", "Failed")):
            posting.left_out += [f"{title[:-1].lower()}: {x}" for x in rest]
    lines += ["", f"<sub>{u.total_input:,} input tokens ({u.cache_read_input_tokens:,} from cache) · {u.output_tokens:,} output · {cost}</sub>"]
    text = "\n".join(lines)
    data: dict[str, Any] = {"sha": pr.head_sha, "run": run_id, "ledger": asdict(ledger)}
    if result.incomplete:
        data["incomplete"] = True
    if memory:
        data["refuted"] = list(memory)
    return redact(text) + "\n" + marker("summary", data)


def post_refusal(gh: Any, pr: PullRequest, config: Config, reason: str) -> None:
    """Say on the pull request that its review was not sent, and why (`max_cost`).

    One comment of ours carries it (marker `budget`), edited by later runs
    rather than posted again; it is not a summary, so the head is not taken
    as reviewed and raising the ceiling reviews it.
    """
    from github import GithubException

    login = own_login(gh, config)
    pull = gh.get_repo(pr.repo).get_pull(pr.number)
    body = redact(
        f"## reviewer: not reviewed\n\n{pr.head_sha[:7]} was not reviewed: {reason}. "
        "Nothing was sent to the model. A maintainer can raise `max_cost` in the configuration "
        "(or `--max-cost`) to review it.\n") + marker("budget", {"sha": pr.head_sha})
    try:
        for comment in pull.get_issue_comments():
            if comment.user and comment.user.login == login and any(k == "budget" for k, _ in read_markers(comment.body)):
                comment.edit(body)
                return
        pull.create_issue_comment(body)
    except GithubException as exc:
        raise ServiceError(f"GitHub refused the note on the pull request ({exc.status})") from None


def _summary(pull: Any, prior: PriorState, pr: PullRequest, result: ReviewResult, outcome: Outcome,
             run_id: str, posting: Posting, memory: Sequence[dict[str, Any]] = ()) -> None:
    from github import GithubException

    body = summary_text(pr, result, outcome, posting, run_id, memory)
    try:
        if prior.summary is not None:
            prior.summary.edit(body)
        else:
            pull.create_issue_comment(body)
    except GithubException as exc:
        posting.notes.append(f"could not update the summary comment: {exc.status}")
