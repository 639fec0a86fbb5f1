"""Post a review on a GitHub pull request, and read back what earlier runs posted.

Contract with GitHub (shared/specs/github.md):
- one review per run (`POST .../pulls/{n}/reviews`, event COMMENT, commit_id =
  the head SHA reviewed) carrying every inline comment;
- every finding we post carries a hidden marker with its JSON, so a later run
  knows what was said; only markers in comments authored by our own identity
  are trusted, and their JSON must validate against the finding schema;
- a 422 never loses a finding: offending comments move to the review body;
- POSTs are not retried blindly: after a 5xx or a timeout we look for the
  review we may already have created (by its run id) before posting again.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .. import findings as findings_mod
from .. import schemas
from ..config import Config
from ..errors import ServiceError
from ..models import SEVERITY_RANK, Diff, Finding, ReviewResult
from ..pricing import usd
from ..redact import redact
from ..source import PullRequest, graphql_read, transient_wait
from . import counts, location, safe
from .markdown import fence, finding_block

MAX_BODY = 65_536
_BODY_BUDGET = 60_000  # under GitHub's limit, with room for the header and markers
_MAX_ISSUE = 4_000
_MARKER = re.compile(r"<!-- reviewer:(\w+) (.*?) -->", re.S)


def marker(kind: str, data: dict[str, Any]) -> str:
    """A hidden HTML comment carrying `data`.

    `<` and `>` are JSON-escaped so no text can close the comment, and `@` so
    nothing inside it can read as a mention.
    """
    payload = (json.dumps(data, ensure_ascii=True, sort_keys=True)
               .replace("<", "\\u003c").replace(">", "\\u003e").replace("@", "\\u0040"))
    return f"<!-- reviewer:{kind} {payload} -->"


def read_markers(body: str | None) -> list[tuple[str, Any]]:
    out = []
    for kind, payload in _MARKER.findall(body or ""):
        try:
            out.append((kind, json.loads(payload)))
        except ValueError:
            continue
    return out


def _finding_from_marker(data: Any) -> Finding | None:
    if not isinstance(data, dict) or schemas.first_error(schemas.load("finding"), data) is not None:
        return None
    if "fingerprint" not in data:
        return None
    return Finding.from_dict(data)


# --- reading what earlier runs posted ----------------------------------------------


@dataclass(frozen=True)
class Posted:
    """A finding an earlier run posted, and what people did with it since."""

    finding: Finding
    comment_id: int | None = None
    """Top-level inline comment; None when the finding was listed in a review body."""
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
    notes: list[str] = field(default_factory=list)

    @property
    def open_findings(self) -> tuple[Finding, ...]:
        return tuple(p.finding for p in self.posted if not p.resolved and not p.dismissed)

    @property
    def fingerprints(self) -> set[str]:
        return {p.finding.fingerprint for p in self.posted}


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
        for review in pull.get_reviews():
            if review.user is None or review.user.login != login:
                continue
            for kind, data in read_markers(review.body):
                if kind == "review" and isinstance(data, dict) and isinstance(data.get("sha"), str):
                    last_review_sha = data["sha"]
                elif kind == "finding" and (finding := _finding_from_marker(data)):
                    state.posted.append(Posted(finding))
        comments = list(pull.get_review_comments())
    except GithubException as exc:
        raise ServiceError(f"GitHub answered {exc.status} while reading earlier comments") from None
    state.last_sha = state.last_sha or last_review_sha

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
        found = [f for kind, data in read_markers(c.body) if kind == "finding" and (f := _finding_from_marker(data))]
        if not found:
            continue
        answers = replies.get(c.id, [])
        thread = threads.get(c.id, {})
        state.posted.append(Posted(
            finding=found[0],
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


# --- deciding what to say ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    new: tuple[Finding, ...]
    still_open: tuple[Posted, ...]
    resolved: tuple[Posted, ...]
    suppressed: int


def _lines_changed(p: Posted, diff: Diff, changed: frozenset[str] | None) -> bool:
    f = p.finding
    if changed is not None and f.file not in changed:
        return False
    if p.outdated:
        return True
    current = diff.get(f.file)
    if current is None or f.line is None:
        return True
    if f.line not in current.commentable(f.side):
        return True
    code = findings_mod.code_at(current, f.line, f.end_line, f.side)
    return findings_mod.fingerprint(f.file, f.category, f.side, code, f.issue) != f.fingerprint


def decide(prior: PriorState, result: ReviewResult, diff: Diff, changed: frozenset[str] | None) -> Outcome:
    """New findings, those still open, and those fixed since the last review.

    A finding already posted is never posted again, whatever its wording or line
    now. A prior finding is resolved only when it is no longer reported, its
    lines changed, and no person took over its thread.
    """
    known = prior.fingerprints
    new = tuple(f for f in result.findings if f.fingerprint not in known)
    reported = {f.fingerprint for f in result.findings}
    still_open, resolved = [], []
    for p in prior.posted:
        if p.resolved or p.dismissed:
            continue
        if p.finding.fingerprint not in reported and _lines_changed(p, diff, changed):
            resolved.append(p)
        else:
            still_open.append(p)
    return Outcome(new, tuple(still_open), tuple(resolved), len(result.findings) - len(new))


# --- composing the review ------------------------------------------------------------


def _clip(text: str, limit: int = _MAX_ISSUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def comment_body(f: Finding) -> str:
    conf = "" if f.confidence is None else f" · confidence {f.confidence:.2f}"
    parts = [f"**{f.severity}** · {f.category}{conf}", "", safe(_clip(f.issue))]
    if f.suggestion:
        parts += ["", "Fix: " + safe(_clip(f.suggestion))]
    if f.replacement is not None and f.side == "RIGHT":
        parts += ["", fence(f.replacement, "suggestion")]
    parts += ["", marker("finding", f.to_dict())]
    return redact("\n".join(parts))


def inline_comment(f: Finding) -> dict[str, Any]:
    assert f.line is not None
    comment: dict[str, Any] = {"path": f.file, "body": comment_body(f), "side": f.side}
    if f.end_line is not None:
        comment.update(start_line=f.line, start_side=f.side, line=f.end_line)
    else:
        comment["line"] = f.line
    return comment


def _listed(f: Finding) -> str:
    return "- " + finding_block(f.with_(issue=_clip(f.issue), suggestion=_clip(f.suggestion) if f.suggestion else None)).replace("\n", "\n  ") + "\n  " + marker("finding", f.to_dict())


@dataclass
class Composed:
    inline: list[Finding]
    unanchored: list[Finding]
    verify: list[Finding]
    over_cap: list[Finding]

    def body(self, pr: PullRequest, run_id: str, result: ReviewResult, outcome: Outcome) -> str:
        c = counts(list(outcome.new))
        head = [
            f"### reviewer: {len(outcome.new)} new finding(s) on {pr.head_sha[:7]}",
            "",
            f"{c['critical']} critical · {c['warning']} warning · {c['info']} info"
            + (f" · {outcome.suppressed} already reported" if outcome.suppressed else "")
            + (f" · {len(result.failed)} file(s) failed" if result.failed else ""),
        ]
        sections: list[tuple[str, list[Finding], bool]] = [
            ("Findings outside the diff", self.unanchored, False),
            ("More findings (over the inline comment limit)", self.over_cap, False),
            ("For a human to verify (low confidence)", self.verify, True),
        ]
        out = "\n".join(head) + "\n"
        budget = _BODY_BUDGET - len(out)
        left_out = 0
        for title, items, collapsed in sections:
            if not items:
                continue
            block = [f"\n<details><summary>{title} ({len(items)})</summary>\n" if collapsed else f"\n**{title}** ({len(items)})\n"]
            for f in items:
                entry = _listed(f) + "\n"
                if len(entry) + sum(map(len, block)) > budget:
                    left_out += 1
                    continue
                block.append(entry)
            if collapsed:
                block.append("\n</details>\n")
            text = "".join(block)
            budget -= len(text)
            out += text
        if left_out:
            out += f"\n{left_out} more finding(s) did not fit in this review; they are in the run's report.\n"
        return redact(out) + "\n" + marker("review", {"sha": pr.head_sha, "run": run_id})


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
    resolved: int = 0
    notes: list[str] = field(default_factory=list)


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
    """Post the review, resolve fixed threads and update the summary comment."""
    from github import GithubException

    posting = Posting()
    run_id = uuid.uuid4().hex[:12]
    repo = gh.get_repo(pr.repo)
    pull = repo.get_pull(pr.number)
    composed = compose(outcome.new, config)
    if outcome.new:
        commit = repo.get_commit(pr.head_sha)
        attempts: list[list[Finding]] = []
        for attempt in (composed.inline, _conservative(composed.inline, diff), _added_only(composed.inline, diff), []):
            if not attempts or attempt != attempts[-1]:  # the same comments would be refused again
                attempts.append(attempt)
        for inline in attempts:
            moved = [f for f in composed.inline if f not in inline]
            draft = Composed(inline, composed.unanchored + moved, composed.verify, composed.over_cap)
            try:
                review = _create_review(pull, commit, draft.body(pr, run_id, result, outcome),
                                        [inline_comment(f) for f in inline], prior.login, run_id)
            except GithubException as exc:
                if exc.status != 422 or not inline:
                    raise ServiceError(f"GitHub refused the review ({exc.status}): {_errors_text(exc)}") from None
                posting.notes.append(f"GitHub refused {len(inline)} inline comment(s) ({_errors_text(exc)}); retried with fewer")
                continue
            posting.review_url = getattr(review, "html_url", None)
            posting.inline = len(inline)
            posting.in_body = len(outcome.new) - len(inline)
            break
    posting.resolved = _resolve(gh, pull, outcome.resolved, pr, config, posting)
    _summary(pull, prior, pr, result, outcome, run_id, posting)
    return posting


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


def summary_text(pr: PullRequest, result: ReviewResult, outcome: Outcome, posting: Posting, run_id: str) -> str:
    open_now = list(outcome.new) + [p.finding for p in outcome.still_open]
    c = counts(open_now)
    u = result.usage
    cost = usd(result.cost_usd)
    lines = [
        "## reviewer summary",
        "",
        f"Reviewed {pr.head_sha[:7]}: **{len(outcome.new)} new**, {len(outcome.still_open)} still open, "
        f"{len(outcome.resolved)} resolved.",
        "",
        "| critical | warning | info | files reviewed | skipped | failed |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {c['critical']} | {c['warning']} | {c['info']} | {len(result.reviewed)} | {len(result.skipped)} | {len(result.failed)} |",
        "",
    ]
    if posting.review_url:
        lines.append(f"Review: {posting.review_url}")
    if result.failed:
        lines += ["", "Failed files:"] + [f"- `{safe(f.path)}`: {safe(f.error)}" for f in result.failed]
    if result.skipped:
        lines += ["", "<details><summary>Skipped files</summary>", ""]
        lines += [f"- `{safe(s.path)}`: {safe(s.reason)}" for s in result.skipped[:200]]
        lines += ["", "</details>"]
    notes = list(result.notes) + posting.notes
    if notes:
        lines += ["", "Notes:"] + [f"- {safe(_clip(n, 500))}" for n in notes[:50]]
    lines += ["", f"<sub>{u.total_input:,} input tokens ({u.cache_read_input_tokens:,} from cache) · {u.output_tokens:,} output · {cost}</sub>"]
    text = "\n".join(lines)
    if len(text) > _BODY_BUDGET:
        text = text[:_BODY_BUDGET] + "\n…"
    return redact(text) + "\n" + marker("summary", {"sha": pr.head_sha, "run": run_id})


def _summary(pull: Any, prior: PriorState, pr: PullRequest, result: ReviewResult, outcome: Outcome,
             run_id: str, posting: Posting) -> None:
    from github import GithubException

    body = summary_text(pr, result, outcome, posting, run_id)
    try:
        if prior.summary is not None:
            prior.summary.edit(body)
        else:
            pull.create_issue_comment(body)
    except GithubException as exc:
        posting.notes.append(f"could not update the summary comment: {exc.status}")
