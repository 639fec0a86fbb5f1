"""Offline GitHub emulator (REST + GraphQL) for the ``reviewer`` test suite.

A pure standard-library HTTP server (``http.server.ThreadingHTTPServer``,
HTTP/1.1 with keep-alive, daemon threads) bound to ``127.0.0.1`` on a free
port.  It speaks enough of the GitHub REST and GraphQL APIs for PyGithub
2.10 to review a pull request, and it enforces the rules written down in
``/work/shared/specs/github.md`` (anchoring, 422 texts, pagination, identity,
rate limits).  All state lives in one object guarded by one lock.

Every absolute URL in a response (``url``, ``issue_url``, ``comments_url``,
``review_comments_url``, ``contents_url``, the ``link`` pagination header,
...) is built from the request's ``Host`` header, so PyGithub's same-host
assertion holds.  ``html_url``/``blob_url``/``raw_url`` point at a fake
``https://github.com``.  Every response carries ``x-ratelimit-limit``,
``-remaining``, ``-used``, ``-reset`` and ``-resource``.

Endpoints (``{o}/{r}`` = owner/repo, ``{n}`` = pull number)
------------------------------------------------------------
REST::

    GET    /user                                   PAT -> user; Actions/readonly -> 403
    GET    /rate_limit
    GET    /repos/{o}/{r}
    GET    /repos/{o}/{r}/pulls/{n}                (Accept: application/vnd.github.diff -> unified
                                                   diff text, 406 too_large over 300 files/20000 lines)
    GET    /repos/{o}/{r}/pulls/{n}/files          paginated (per_page default 30, max 100), <= 3000 files
    GET    /repos/{o}/{r}/commits/{sha}            unknown sha -> 422 "No commit found for SHA: ..."
    GET    /repos/{o}/{r}/compare/{base}...{head}  status/ahead_by/behind_by/files (<= 300)
    GET    /repos/{o}/{r}/contents/{path}?ref=     base64; > 1 MB -> encoding "none", content "";
                                                   Accept ...raw -> bytes; directory -> array
    GET    /repos/{o}/{r}/pulls/{n}/reviews        chronological; PENDING only for its author
    POST   /repos/{o}/{r}/pulls/{n}/reviews        validate all, store nothing on failure; 200
    GET    /repos/{o}/{r}/pulls/{n}/reviews/{id}
    POST   /repos/{o}/{r}/pulls/{n}/reviews/{id}/events   submit a PENDING review
    DELETE /repos/{o}/{r}/pulls/{n}/reviews/{id}          delete a PENDING review
    GET    /repos/{o}/{r}/pulls/{n}/comments       paginated, ascending id (sort/direction/since)
    POST   /repos/{o}/{r}/pulls/{n}/comments       line/range, subject_type "file", in_reply_to; 201
    POST   /repos/{o}/{r}/pulls/{n}/comments/{id}/replies  top-level only (else 404); 201
    GET    /repos/{o}/{r}/pulls/comments/{id}
    PATCH  /repos/{o}/{r}/pulls/comments/{id}      {body}; 200
    DELETE /repos/{o}/{r}/pulls/comments/{id}      204
    GET    /repos/{o}/{r}/issues/{n}
    GET    /repos/{o}/{r}/issues/{n}/comments      paginated, ascending id, since
    POST   /repos/{o}/{r}/issues/{n}/comments      {body}; 201
    GET    /repos/{o}/{r}/issues/comments/{id}
    PATCH  /repos/{o}/{r}/issues/comments/{id}     {body}; 200
    DELETE /repos/{o}/{r}/issues/comments/{id}     204

GraphQL (``POST /graphql``; not a parser: the operation is recognised by its
field name, arguments come from ``variables`` or simple literals)::

    repository(owner,name){pullRequest(number){reviewThreads(first,after){...}}}
        first/last 1..100 enforced for reviewThreads and comments
    resolveReviewThread / unresolveReviewThread
        raw ``mutation($id:ID!){resolveReviewThread(input:{threadId:$id}){...}}`` or PyGithub's
        ``graphql_named_mutation`` form (``$input: ResolveReviewThreadInput!``);
        no contents:write -> HTTP 200 + FORBIDDEN; unknown id -> NOT_FOUND
    viewer { login }
    repository(owner,name){ alias: object(expression: "REF:PATH") { ... on Blob { text isBinary isTruncated } } }
        any number of aliases; text cut at ``gh.blob_text_limit`` bytes (isTruncated)

Public API
----------
::

    gh = GitHubEmulator(); gh.start(); ...; gh.stop()     # or: with GitHubEmulator() as gh:
    gh.base_url                       # "http://127.0.0.1:PORT"; GraphQL at base_url + "/graphql"
    gh.graphql_url
    gh.reset()                        # forget everything (tokens, repos, faults, log)
    gh.add_token(token, kind="pat"|"actions"|"readonly", login=None, can_resolve_threads=True)
    gh.add_pull(repo, number, head_sha, base_sha, files=[PullFile(...)], draft=False, fork=False,
                title=..., user_login="alice", ...) -> dict (REST pull shape)
    gh.set_head(repo, number, head_sha, files=None, compare_files=None)   # a new push
    gh.set_compare(repo, base, head, files, status="ahead", ahead_by=1, behind_by=0)
    gh.set_content(repo, ref, path, content)               # file content at a ref (sha or branch)
    gh.add_repo(repo, default_branch="main", private=False) # add_pull creates repos implicitly
    gh.add_commit(repo, sha)
    gh.event_payload(repo, number, action="opened", before=None) -> dict   # webhook payload
    gh.reviews(repo, number) / gh.review_comments(repo, number) / gh.issue_comments(repo, number)
    gh.threads(repo, number) -> [{id, isResolved, isOutdated, path, line, startLine, diffSide,
                                  startDiffSide, subjectType, resolvedBy, comments: [REST dicts]}]
    gh.thread_id_for(comment_id) -> str
    gh.add_user_comment(repo, number, body, login="alice", path=None, line=None, side="RIGHT",
                        start_line=None, start_side=None, kind="review"|"issue",
                        subject_type="line", in_reply_to=None) -> dict
    gh.reply_as_human(comment_id, body, login="alice") -> dict
    gh.resolve_thread_as_human(thread_id, login="alice"); gh.unresolve_thread(thread_id)
    gh.set_thread_outdated(thread_id, outdated=True)
    gh.edit_comment_as_human(comment_id, body)             # review or issue comment
    gh.requests -> list[Recorded]     # Recorded(method, path, query, headers, body, status, raw, token)
    gh.clear_requests()
    gh.enqueue_fault(method, path_regex, status, body=None, headers=None, count=1,
                     after_effect=False, delay=0.0)
    gh.set_rate_limit(kind="primary"|"secondary", status=403, count=1, retry_after=0, resource=None)
    gh.write_rate_limit_per_minute = None      # e.g. 80; excess writes -> secondary-limit 403
    gh.write_rate_limit_retry_after = 60       # retry-after sent with that 403 (None: no header)
    gh.server_errors -> list[str]     # tracebacks of emulator bugs (answered 500)

Module helpers: ``PullFile``, ``Recorded``, ``parse_patch(patch) -> PatchIndex``.

Modelling notes / deviations (see also the spec's "unverified" marks)
-------------------------------------------------------------------
* Missing ``body`` with ``COMMENT``/``REQUEST_CHANGES`` -> 422 simple envelope, text
  ``Body can't be blank`` (real text unknown).
* Body > 65,536 chars -> 422 ``Validation Failed`` with an ``unprocessable`` error object
  (``resource`` = ``PullRequestReview``/``PullRequestReviewComment``/``IssueComment``).
* ``commit_id`` that is not a current/previous head of the PR -> 422 ``Commit could not be
  resolved`` (unverified).  Comments anchored on an older head are validated against that
  head's files.
* ``POST .../comments`` validation errors use ``Validation Failed`` with objects
  (``pull_request_review_thread.line must be part of the diff`` etc.).
* A standalone review comment or a reply also creates a ``COMMENTED`` review with an empty
  body (as GitHub does), so it shows up in ``GET .../reviews``.
* ``in_reply_to`` on ``POST .../comments`` pointing at a reply joins that reply's thread.
* Outdating: after ``set_head`` a thread becomes outdated (``line`` null) when its path is
  gone or its line is no longer an anchor of the new patch; use ``set_thread_outdated`` for
  exact control.  GitHub re-anchors moved lines; the emulator does not.
* Missing/unknown token -> 401 everywhere (GitHub would allow anonymous GETs on public repos).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import sys
import threading
import time
import traceback
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Optional

__all__ = [
    "GitHubEmulator",
    "PullFile",
    "Recorded",
    "PatchIndex",
    "Anchor",
    "parse_patch",
    "ACTIONS_BOT_LOGIN",
    "ACTIONS_BOT_ID",
]

ACTIONS_BOT_LOGIN = "github-actions[bot]"
ACTIONS_BOT_ID = 41898282
ACTIONS_GRAPHQL_LOGIN = "github-actions"

MAX_BODY = 65536
MAX_PR_FILES = 3000
MAX_COMPARE_FILES = 300
MAX_DIFF_FILES = 300
MAX_DIFF_LINES = 20000
MAX_CONTENT_BYTES = 1024 * 1024

DOC_ROOT = "https://docs.github.com/rest"
DOC_CREATE_REVIEW = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
DOC_SUBMIT_REVIEW = "https://docs.github.com/rest/pulls/reviews#submit-a-review-for-a-pull-request"
DOC_CREATE_COMMENT = "https://docs.github.com/rest/pulls/comments#create-a-review-comment-for-a-pull-request"
DOC_REPLY = "https://docs.github.com/rest/pulls/comments#create-a-reply-for-a-review-comment"
DOC_EDIT_COMMENT = "https://docs.github.com/rest/pulls/comments#update-a-review-comment-for-a-pull-request"
DOC_ISSUE_COMMENT = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
DOC_EDIT_ISSUE_COMMENT = "https://docs.github.com/rest/issues/comments#update-an-issue-comment"
DOC_GET_USER = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
DOC_GET_PULL = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
DOC_PRIMARY = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
DOC_SECONDARY = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)

SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)
NOT_ACCESSIBLE = "Resource not accessible by integration"

_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> Optional[datetime]:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _fake_sha(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------------------
# Patch anchoring
# --------------------------------------------------------------------------------------

_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Anchor:
    """A commentable line of a patch: ``side`` LEFT (old file) or RIGHT (new file)."""

    side: str
    line: int
    hunk: int  # index of the hunk (0-based)
    row: int  # index in the patch's lines; equals the legacy ``position``


@dataclass
class PatchIndex:
    """Anchors parsed from a file's ``patch`` (spec §8 item 4)."""

    lines: list[str]
    anchors: dict[tuple[str, int], Anchor]
    hunk_starts: list[int]  # row of each ``@@`` header

    def anchor(self, side: str, line: int) -> Optional[Anchor]:
        return self.anchors.get((side, line))

    def at_position(self, position: int) -> Optional[Anchor]:
        """Resolve a legacy ``position`` (1 = line after the first ``@@``)."""
        if position < 1 or position >= len(self.lines):
            return None
        text = self.lines[position]
        if text.startswith("@@") or text.startswith("\\"):
            return None
        for anchor in self.anchors.values():
            if anchor.row == position:
                if text.startswith("-") and anchor.side == "LEFT":
                    return anchor
                if not text.startswith("-") and anchor.side == "RIGHT":
                    return anchor
        return None

    def diff_hunk(self, anchor: Anchor) -> str:
        """The hunk header through the anchored line, as GitHub's ``diff_hunk``."""
        start = self.hunk_starts[anchor.hunk]
        return "\n".join(self.lines[start : anchor.row + 1])


def parse_patch(patch: Optional[str]) -> PatchIndex:
    """Parse a GitHub ``patch`` into anchors.

    `` `` advances both sides (valid RIGHT new-line and LEFT old-line), ``+`` the new
    side only (RIGHT), ``-`` the old side only (LEFT); ``\\ No newline at end of file``
    is skipped; nothing outside hunks is an anchor.
    """
    index = PatchIndex(lines=[], anchors={}, hunk_starts=[])
    if not patch:
        return index
    lines = patch.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index.lines = lines
    old = new = 0
    hunk = -1
    for row, text in enumerate(lines):
        m = _HUNK_RE.match(text)
        if m:
            hunk += 1
            index.hunk_starts.append(row)
            old = int(m.group(1))
            new = int(m.group(3))
            continue
        if hunk < 0 or text.startswith("\\"):
            continue
        if text.startswith("+"):
            index.anchors[("RIGHT", new)] = Anchor("RIGHT", new, hunk, row)
            new += 1
        elif text.startswith("-"):
            index.anchors[("LEFT", old)] = Anchor("LEFT", old, hunk, row)
            old += 1
        else:  # context (`` `` or an empty line whose space was stripped)
            index.anchors[("RIGHT", new)] = Anchor("RIGHT", new, hunk, row)
            index.anchors[("LEFT", old)] = Anchor("LEFT", old, hunk, row)
            old += 1
            new += 1
    return index


# --------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------


@dataclass
class PullFile:
    """One file of a pull request (an entry of ``GET .../pulls/{n}/files``).

    ``content`` is the file at the head commit (served by ``contents``), ``base_content``
    the file at the base commit.  ``additions``/``deletions`` default to counts from
    ``patch`` when both are left at 0.  ``patch=None`` models binary/huge diffs.
    """

    filename: str
    status: str = "modified"
    patch: Optional[str] = None
    previous_filename: Optional[str] = None
    content: Optional[bytes] = None
    additions: int = 0
    deletions: int = 0
    base_content: Optional[bytes] = None

    def counts(self) -> tuple[int, int]:
        if (self.additions or self.deletions) or not self.patch:
            return self.additions, self.deletions
        adds = dels = 0
        for text in self.patch.split("\n"):
            if text.startswith("+"):
                adds += 1
            elif text.startswith("-"):
                dels += 1
        return adds, dels


@dataclass
class Recorded:
    """One request seen by the emulator.

    ``headers`` has lower-case keys; ``query`` keeps the last value of each parameter;
    ``body`` is the parsed JSON (or the text when not JSON, ``None`` when empty);
    ``raw`` the bytes; ``status`` the status answered; ``token`` the bearer token seen.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int
    raw: bytes = b""
    token: Optional[str] = None
    at: float = 0.0
    """``time.monotonic()`` when the request was answered (benchmarks time the client by it)."""


# --------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------


@dataclass
class _Token:
    token: str
    kind: str
    login: str
    can_resolve_threads: bool

    @property
    def is_integration(self) -> bool:
        return self.kind in ("actions", "readonly")


@dataclass
class _Pull:
    repo: str
    number: int
    id: int
    title: str
    body: str
    user_login: str
    head_sha: str
    base_sha: str
    head_ref: str
    base_ref: str
    files: list[PullFile]
    draft: bool
    fork: bool
    state: str
    head_repo_deleted: bool
    created_at: str
    files_by_sha: dict[str, list[PullFile]] = field(default_factory=dict)
    heads: list[str] = field(default_factory=list)


@dataclass
class _Repo:
    full_name: str
    id: int
    default_branch: str = "main"
    private: bool = False
    pulls: dict[int, _Pull] = field(default_factory=dict)
    contents: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (sha, path) -> bytes
    refs: dict[str, str] = field(default_factory=dict)  # branch -> sha
    commits: set[str] = field(default_factory=set)
    compares: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


@dataclass
class _Review:
    id: int
    repo: str
    number: int
    user_login: str
    body: str
    state: str
    commit_id: str
    submitted_at: Optional[str]


@dataclass
class _ReviewComment:
    id: int
    repo: str
    number: int
    review_id: int
    thread_id: str
    user_login: str
    body: str
    path: str
    commit_id: str
    original_commit_id: str
    diff_hunk: str
    original_line: Optional[int]
    original_start_line: Optional[int]
    original_position: Optional[int]
    in_reply_to_id: Optional[int]
    created_at: str
    updated_at: str


@dataclass
class _Thread:
    id: str
    repo: str
    number: int
    path: str
    subject_type: str  # "line" | "file"
    line: Optional[int]
    start_line: Optional[int]
    side: Optional[str]
    start_side: Optional[str]
    original_line: Optional[int]
    original_start_line: Optional[int]
    position: Optional[int]
    commit_id: str
    comment_ids: list[int] = field(default_factory=list)
    is_resolved: bool = False
    is_outdated: bool = False
    resolved_by: Optional[str] = None


@dataclass
class _IssueComment:
    id: int
    repo: str
    number: int
    user_login: str
    body: str
    created_at: str
    updated_at: str


@dataclass
class _Fault:
    method: str
    path_regex: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    count: int
    after_effect: bool
    delay: float


@dataclass
class _RateLimitSwitch:
    kind: str
    status: int
    count: int
    retry_after: Optional[int]
    resource: Optional[str]


@dataclass
class _Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    root: str
    token: Optional[_Token] = None
    doc_url: str = DOC_ROOT
    _json: Any = None
    _json_parsed: bool = False

    def json(self) -> Any:
        """Parsed JSON body; raises ``_HttpError(400)`` when it is not JSON."""
        if not self._json_parsed:
            self._json_parsed = True
            if not self.raw.strip():
                self._json = None
            else:
                try:
                    self._json = json.loads(self.raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    raise _HttpError(400, {"message": "Problems parsing JSON", "documentation_url": self.doc_url,
                                           "status": "400"})
        return self._json

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise _HttpError(400, {"message": "Problems parsing JSON", "documentation_url": self.doc_url,
                                   "status": "400"})
        return data


@dataclass
class _Resp:
    status: int
    payload: Any = None  # dict/list -> JSON; bytes/str -> raw; None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _HttpError(Exception):
    def __init__(self, status: int, payload: Any, headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(status)
        self.resp = _Resp(status, payload, dict(headers or {}))


def _envelope(status: int, message: str, doc_url: str = DOC_ROOT, errors: Optional[list[Any]] = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    body["documentation_url"] = doc_url
    body["status"] = str(status)
    return body


def _not_found(doc_url: str = DOC_ROOT) -> _HttpError:
    return _HttpError(404, _envelope(404, "Not Found", doc_url))


def _unprocessable(text: str, doc_url: str) -> _HttpError:
    """The §1 "Unprocessable Entity" envelope with string errors."""
    return _HttpError(422, _envelope(422, "Unprocessable Entity", doc_url, [text]))


def _validation_failed(errors: list[dict[str, Any]], doc_url: str) -> _HttpError:
    return _HttpError(422, _envelope(422, "Validation Failed", doc_url, errors))


def _body_too_long(resource: str, doc_url: str) -> _HttpError:
    return _validation_failed(
        [{"resource": resource, "code": "unprocessable", "field": "data",
          "message": f"Body is too long (maximum is {MAX_BODY} characters)"}],
        doc_url,
    )


def _invalid_request(detail: str, doc_url: str) -> _HttpError:
    return _HttpError(422, _envelope(422, f"Invalid request.\n\n{detail}", doc_url))


# Validation outcome codes of a single review comment -> §1 texts.
_REVIEW_TEXTS = {
    "path": "Path could not be resolved",
    "line": "Line could not be resolved",
    "precede": "Pull request review thread start line must precede the end line.",
    "same_hunk": (
        "Pull request review thread line must be part of the diff, Pull request review thread start line "
        "must be part of the same hunk as the line., and Pull request review thread diff hunk can't be blank"
    ),
    "position": "Pull request review thread position is invalid and Pull request review thread diff hunk can't be blank",
}

# Same outcomes for POST .../pulls/{n}/comments ("Validation Failed" objects; unverified except "line").
_COMMENT_ERRORS = {
    "path": ("pull_request_review_thread.path", "pull_request_review_thread.path is invalid"),
    "line": ("pull_request_review_thread.line", "pull_request_review_thread.line must be part of the diff"),
    "precede": ("pull_request_review_thread.start_line",
                "pull_request_review_thread.start_line must precede the end line."),
    "same_hunk": ("pull_request_review_thread.start_line",
                  "pull_request_review_thread.start_line must be part of the same hunk as the line."),
    "position": ("pull_request_review_thread.position", "pull_request_review_thread.position is invalid"),
}


@dataclass
class _Placement:
    """Where a validated comment lands."""

    path: str
    subject_type: str
    line: Optional[int]
    side: Optional[str]
    start_line: Optional[int]
    start_side: Optional[str]
    position: Optional[int]
    diff_hunk: str


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    emulator: "GitHubEmulator"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "GitHubEmulator/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        emulator: GitHubEmulator = self.server.emulator  # type: ignore[attr-defined]
        status, headers, body, delay = emulator._handle(self.command, self.path, dict(self.headers.items()), raw)
        if delay > 0:
            time.sleep(delay)
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout test)
            self.close_connection = True

    do_GET = _serve
    do_POST = _serve
    do_PATCH = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_HEAD = _serve


_R = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_Route = tuple[str, re.Pattern[str], str, str]


def _routes() -> list[_Route]:
    table = [
        ("GET", r"/user", "get_user", DOC_GET_USER),
        ("GET", r"/rate_limit", "get_rate_limit", "https://docs.github.com/rest/rate-limit/rate-limit"),
        ("POST", r"/graphql", "graphql", "https://docs.github.com/graphql"),
        ("GET", _R, "get_repo", "https://docs.github.com/rest/repos/repos#get-a-repository"),
        ("GET", _R + r"/pulls/(?P<number>\d+)", "get_pull", DOC_GET_PULL),
        ("GET", _R + r"/pulls/(?P<number>\d+)/files", "list_files",
         "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files"),
        ("GET", _R + r"/commits/(?P<sha>[^/]+)", "get_commit",
         "https://docs.github.com/rest/commits/commits#get-a-commit"),
        ("GET", _R + r"/compare/(?P<basehead>.+)", "compare",
         "https://docs.github.com/rest/commits/commits#compare-two-commits"),
        ("GET", _R + r"/contents(?:/(?P<path>.*))?", "get_contents",
         "https://docs.github.com/rest/repos/contents#get-repository-content"),
        ("GET", _R + r"/pulls/(?P<number>\d+)/reviews", "list_reviews",
         "https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request"),
        ("POST", _R + r"/pulls/(?P<number>\d+)/reviews", "create_review", DOC_CREATE_REVIEW),
        ("GET", _R + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)", "get_review",
         "https://docs.github.com/rest/pulls/reviews#get-a-review-for-a-pull-request"),
        ("POST", _R + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)/events", "submit_review",
         DOC_SUBMIT_REVIEW),
        ("DELETE", _R + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)", "delete_review",
         "https://docs.github.com/rest/pulls/reviews#delete-a-pending-review-for-a-pull-request"),
        ("GET", _R + r"/pulls/(?P<number>\d+)/comments", "list_review_comments",
         "https://docs.github.com/rest/pulls/comments#list-review-comments-on-a-pull-request"),
        ("POST", _R + r"/pulls/(?P<number>\d+)/comments", "create_review_comment", DOC_CREATE_COMMENT),
        ("POST", _R + r"/pulls/(?P<number>\d+)/comments/(?P<comment_id>\d+)/replies", "reply", DOC_REPLY),
        ("GET", _R + r"/pulls/comments/(?P<comment_id>\d+)", "get_review_comment",
         "https://docs.github.com/rest/pulls/comments#get-a-review-comment-for-a-pull-request"),
        ("PATCH", _R + r"/pulls/comments/(?P<comment_id>\d+)", "edit_review_comment", DOC_EDIT_COMMENT),
        ("DELETE", _R + r"/pulls/comments/(?P<comment_id>\d+)", "delete_review_comment",
         "https://docs.github.com/rest/pulls/comments#delete-a-review-comment-for-a-pull-request"),
        ("GET", _R + r"/issues/(?P<number>\d+)", "get_issue",
         "https://docs.github.com/rest/issues/issues#get-an-issue"),
        ("GET", _R + r"/issues/(?P<number>\d+)/comments", "list_issue_comments",
         "https://docs.github.com/rest/issues/comments#list-issue-comments"),
        ("POST", _R + r"/issues/(?P<number>\d+)/comments", "create_issue_comment", DOC_ISSUE_COMMENT),
        ("GET", _R + r"/issues/comments/(?P<comment_id>\d+)", "get_issue_comment",
         "https://docs.github.com/rest/issues/comments#get-an-issue-comment"),
        ("PATCH", _R + r"/issues/comments/(?P<comment_id>\d+)", "edit_issue_comment", DOC_EDIT_ISSUE_COMMENT),
        ("DELETE", _R + r"/issues/comments/(?P<comment_id>\d+)", "delete_issue_comment",
         "https://docs.github.com/rest/issues/comments#delete-an-issue-comment"),
    ]
    return [(method, re.compile(pattern), name, doc) for method, pattern, name, doc in table]


_ROUTES = _routes()


# --------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------


class GitHubEmulator:
    """In-process fake of the GitHub REST and GraphQL APIs, for PyGithub (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.write_rate_limit_per_minute: Optional[int] = None
        self.write_rate_limit_retry_after: Optional[int] = 60
        self._init_state()

    # ---------------------------------------------------------------- lifecycle

    def _init_state(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._repos: dict[str, _Repo] = {}
        self._reviews: dict[int, _Review] = {}
        self._comments: dict[int, _ReviewComment] = {}
        self._threads: dict[str, _Thread] = {}
        self._issue_comments: dict[int, _IssueComment] = {}
        self._faults: list[_Fault] = []
        self._rate_switches: list[_RateLimitSwitch] = []
        self._writes: deque[float] = deque()
        self._used: dict[tuple[str, str], int] = {}
        self._window_start = int(time.time())
        self._requests: list[Recorded] = []
        self._next_id = 1000
        self._next_thread = 1
        self._next_request = 1
        self.server_errors: list[str] = []
        self.write_rate_limit_per_minute = None
        self.write_rate_limit_retry_after = 60
        self.blob_text_limit = 512 * 1024

    def start(self) -> "GitHubEmulator":
        """Start serving on 127.0.0.1 and a free port (idempotent)."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="github-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()  # returns within serve_forever's poll interval
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "GitHubEmulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every token, repository, comment, fault, switch and recorded request."""
        with self._lock:
            self._init_state()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("GitHubEmulator is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """PyGithub ``base_url`` (no path prefix)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        return self.base_url + "/graphql"

    # ---------------------------------------------------------------- configuration

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _ensure_user(self, login: str, type_: str = "User", user_id: Optional[int] = None) -> dict[str, Any]:
        user = self._users.get(login)
        if user is None:
            uid = user_id if user_id is not None else 5_000_000 + len(self._users) * 7 + 1
            node_prefix = "MDM6Qm90" if type_ == "Bot" else "U_kgDO"
            user = {"login": login, "id": uid,
                    "node_id": node_prefix + base64.b64encode(str(uid).encode()).decode().rstrip("="),
                    "type": type_}
            self._users[login] = user
        return user

    def add_token(self, token: str, kind: str = "pat", login: Optional[str] = None,
                  can_resolve_threads: bool = True) -> None:
        """Register a token.

        ``pat``: a user token (``GET /user`` -> its login, default ``octo-bot``).
        ``actions``: the Actions ``GITHUB_TOKEN`` (author ``github-actions[bot]``, ``GET /user`` 403;
        ``can_resolve_threads`` models ``contents: write``).  ``readonly``: like ``actions`` but
        every write is refused with 403 (fork PR).
        """
        if kind not in ("pat", "actions", "readonly"):
            raise ValueError(f"unknown token kind {kind!r}")
        with self._lock:
            if kind == "pat":
                name = login or "octo-bot"
                self._ensure_user(name, "User")
            else:
                name = login or ACTIONS_BOT_LOGIN
                self._ensure_user(name, "Bot", ACTIONS_BOT_ID if name == ACTIONS_BOT_LOGIN else None)
            self._tokens[token] = _Token(token, kind, name,
                                         can_resolve_threads and kind != "readonly")

    def _repo_obj(self, full_name: str, create: bool = True) -> _Repo:
        repo = self._repos.get(full_name)
        if repo is None:
            if not create:
                raise KeyError(full_name)
            if full_name.count("/") != 1:
                raise ValueError(f"repository must be 'owner/name', got {full_name!r}")
            repo = _Repo(full_name=full_name, id=100_000 + len(self._repos) + 1)
            self._repos[full_name] = repo
            self._ensure_user(repo.owner)
        return repo

    def add_repo(self, repo: str, default_branch: str = "main", private: bool = False) -> None:
        """Create a repository explicitly (``add_pull`` creates it implicitly)."""
        with self._lock:
            r = self._repo_obj(repo)
            r.default_branch = default_branch
            r.private = private

    def add_pull(self, repo: str, number: int, head_sha: str, base_sha: str,
                 files: Iterable[PullFile] = (), draft: bool = False, fork: bool = False,
                 title: str = "Emulated pull request", user_login: str = "alice", body: str = "",
                 head_ref: str = "feature", base_ref: str = "main", state: str = "open",
                 head_repo_deleted: bool = False) -> dict[str, Any]:
        """Create (or replace) pull request ``number`` in ``repo``; returns its REST shape."""
        with self._lock:
            r = self._repo_obj(repo)
            self._ensure_user(user_login)
            pull = _Pull(repo=repo, number=number, id=self._new_id(), title=title, body=body,
                         user_login=user_login, head_sha=head_sha, base_sha=base_sha, head_ref=head_ref,
                         base_ref=base_ref, files=list(files), draft=draft, fork=fork, state=state,
                         head_repo_deleted=head_repo_deleted, created_at=_now_iso())
            pull.files_by_sha[head_sha] = pull.files
            pull.heads.append(head_sha)
            r.pulls[number] = pull
            r.commits.update({head_sha, base_sha})
            r.refs.setdefault(base_ref, base_sha)
            if not fork:
                r.refs[head_ref] = head_sha
            self._store_file_contents(r, pull.files, head_sha, base_sha)
            r.compares.setdefault((base_sha, head_sha), {"files": None, "status": "ahead", "ahead_by": 1,
                                                         "behind_by": 0})
            return self._pull_json(self.base_url if self._server else "http://127.0.0.1", r, pull)

    def _store_file_contents(self, r: _Repo, files: list[PullFile], head_sha: str,
                             base_sha: Optional[str]) -> None:
        for f in files:
            if f.content is not None and f.status != "removed":
                r.contents[(head_sha, f.filename)] = f.content
            if base_sha is not None and f.base_content is not None:
                r.contents[(base_sha, f.previous_filename or f.filename)] = f.base_content

    def set_head(self, repo: str, number: int, head_sha: str, files: Optional[Iterable[PullFile]] = None,
                 compare_files: Optional[Iterable[PullFile]] = None, compare_status: str = "ahead") -> None:
        """A new push: move the head to ``head_sha`` and (optionally) replace the files.

        The previous head's files stay available for reviews anchored on the old commit.
        ``compare_files`` registers ``compare(old_head...head_sha)`` (see ``set_compare``).
        Threads whose line no longer anchors in the new patch become outdated.
        """
        with self._lock:
            r = self._repo_obj(repo, create=False)
            pull = r.pulls[number]
            old_head = pull.head_sha
            if files is not None:
                pull.files = list(files)
            pull.head_sha = head_sha
            pull.files_by_sha[head_sha] = pull.files
            if head_sha not in pull.heads:
                pull.heads.append(head_sha)
            r.commits.add(head_sha)
            if not pull.fork:
                r.refs[pull.head_ref] = head_sha
            self._store_file_contents(r, pull.files, head_sha, None)
            # unchanged files keep their content at the new head
            for f in pull.files:
                if f.content is None and (old_head, f.filename) in r.contents:
                    r.contents.setdefault((head_sha, f.filename), r.contents[(old_head, f.filename)])
            r.compares.setdefault((pull.base_sha, head_sha), {"files": None, "status": "ahead", "ahead_by": 1,
                                                              "behind_by": 0})
            if compare_files is not None:
                r.compares[(old_head, head_sha)] = {"files": list(compare_files), "status": compare_status,
                                                    "ahead_by": 1 if compare_status != "identical" else 0,
                                                    "behind_by": 1 if compare_status == "diverged" else 0}
            indexes = {f.filename: parse_patch(f.patch) for f in pull.files}
            for th in self._threads.values():
                if th.repo != repo or th.number != number or th.is_outdated:
                    continue
                if th.path not in indexes:
                    th.is_outdated = True
                elif th.subject_type == "line":
                    idx = indexes[th.path]
                    if th.line is None or th.side is None or idx.anchor(th.side, th.line) is None:
                        th.is_outdated = True
                if th.is_outdated:
                    continue
                th.commit_id = head_sha

    def set_compare(self, repo: str, base: str, head: str, files: Iterable[PullFile], status: str = "ahead",
                    ahead_by: int = 1, behind_by: int = 0) -> None:
        """Define ``GET compare/{base}...{head}`` explicitly."""
        with self._lock:
            r = self._repo_obj(repo)
            r.commits.update({base, head})
            r.compares[(base, head)] = {"files": list(files), "status": status, "ahead_by": ahead_by,
                                        "behind_by": behind_by}

    def set_content(self, repo: str, ref: str, path: str, content: bytes) -> None:
        """Store a file at ``ref`` (a commit sha or a branch known to the repository)."""
        with self._lock:
            r = self._repo_obj(repo)
            sha = r.refs.get(ref, ref)
            r.commits.add(sha)
            r.contents[(sha, path)] = content

    def add_commit(self, repo: str, sha: str) -> None:
        with self._lock:
            self._repo_obj(repo).commits.add(sha)

    def event_payload(self, repo: str, number: int, action: str = "opened",
                      before: Optional[str] = None) -> dict[str, Any]:
        """A ``pull_request`` webhook payload for the PR (URLs point at this emulator)."""
        with self._lock:
            r = self._repo_obj(repo, create=False)
            pull = r.pulls[number]
            root = self.base_url
            payload: dict[str, Any] = {
                "action": action,
                "number": number,
                "pull_request": self._pull_json(root, r, pull),
                "repository": self._repo_json(root, r),
                "sender": self._user_json(root, pull.user_login),
            }
            if action == "synchronize":
                payload["before"] = before or _fake_sha("before", pull.head_sha)
                payload["after"] = pull.head_sha
            return payload

    # ---------------------------------------------------------------- faults / limits

    def enqueue_fault(self, method: str, path_regex: str, status: int, body: Any = None,
                      headers: Optional[dict[str, str]] = None, count: int = 1, after_effect: bool = False,
                      delay: float = 0.0) -> None:
        """Answer the next ``count`` matching requests with ``status``.

        ``method`` may be ``"*"``; ``path_regex`` is searched in the path (no query).
        ``after_effect=True`` performs the request first (e.g. stores the review) and then
        answers the fault.  ``delay`` sleeps before answering (client timeouts).
        """
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, body,
                                       dict(headers or {}), count, after_effect, delay))

    def set_rate_limit(self, kind: str = "primary", status: int = 403, count: int = 1,
                       retry_after: Optional[int] = 0, resource: Optional[str] = None) -> None:
        """The next ``count`` requests get a rate-limit answer (spec §5).

        ``primary``: ``API rate limit exceeded for ...``, ``x-ratelimit-remaining: 0``,
        ``x-ratelimit-reset`` = now + ``retry_after``; no ``retry-after`` header; GraphQL gets
        HTTP 200 + ``RATE_LIMITED``.  ``secondary``: ``You have exceeded a secondary rate
        limit...`` with ``retry-after: retry_after`` (omitted when ``None``).
        ``resource``: ``"core"``/``"graphql"`` to limit the switch to REST or GraphQL.
        """
        if kind not in ("primary", "secondary"):
            raise ValueError(kind)
        with self._lock:
            self._rate_switches.append(_RateLimitSwitch(kind, status, count, retry_after, resource))

    # ---------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reviews(self, repo: str, number: int) -> list[dict[str, Any]]:
        """All stored reviews of the PR (including PENDING ones), chronological."""
        with self._lock:
            r = self._repo_obj(repo, create=False)
            return [self._review_json(self.base_url, r, rv) for rv in self._reviews_of(repo, number)]

    def review_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """All stored review comments of the PR (REST shape), ascending id."""
        with self._lock:
            r = self._repo_obj(repo, create=False)
            return [self._comment_json(self.base_url, r, c) for c in self._comments_of(repo, number)]

    def commented_pulls(self) -> set[tuple[str, int]]:
        """(repo, number) of every pull request that has an issue comment."""
        with self._lock:
            return {(c.repo, c.number) for c in self._issue_comments.values()}

    def issue_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo_obj(repo, create=False)
            return [self._issue_comment_json(self.base_url, r, c)
                    for c in sorted(self._issue_comments.values(), key=lambda c: c.id)
                    if c.repo == repo and c.number == number]

    def threads(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo_obj(repo, create=False)
            out = []
            for th in self._threads.values():
                if th.repo != repo or th.number != number:
                    continue
                out.append({
                    "id": th.id,
                    "isResolved": th.is_resolved,
                    "isOutdated": th.is_outdated,
                    "path": th.path,
                    "line": None if th.is_outdated else th.line,
                    "startLine": None if th.is_outdated else th.start_line,
                    "originalLine": th.original_line,
                    "diffSide": th.side or "RIGHT",
                    "startDiffSide": th.start_side,
                    "subjectType": th.subject_type.upper(),
                    "resolvedBy": th.resolved_by,
                    "comments": [self._comment_json(self.base_url, r, self._comments[cid])
                                 for cid in th.comment_ids],
                })
            return out

    def thread_id_for(self, comment_id: int) -> str:
        with self._lock:
            return self._comments[comment_id].thread_id

    # ---------------------------------------------------------------- human actions

    def add_user_comment(self, repo: str, number: int, body: str, login: str = "alice",
                         path: Optional[str] = None, line: Optional[int] = None, side: str = "RIGHT",
                         start_line: Optional[int] = None, start_side: Optional[str] = None,
                         kind: str = "review", subject_type: str = "line",
                         in_reply_to: Optional[int] = None) -> dict[str, Any]:
        """A comment by a human (no validation).

        ``kind="issue"``: a PR conversation comment.  ``kind="review"``: a review comment
        starting a thread on ``path``/``line`` (or ``subject_type="file"``), or replying to
        ``in_reply_to``.  Returns the REST shape.
        """
        with self._lock:
            r = self._repo_obj(repo, create=False)
            pull = r.pulls[number]
            self._ensure_user(login)
            if kind == "issue":
                ic = self._add_issue_comment(repo, number, login, body)
                return self._issue_comment_json(self.base_url, r, ic)
            if in_reply_to is not None:
                c = self._add_reply(self._comments[in_reply_to], login, body)
                return self._comment_json(self.base_url, r, c)
            if path is None:
                raise ValueError("path is required for a review comment")
            idx = parse_patch(next((f.patch for f in pull.files if f.filename == path), None))
            hunk = ""
            position = None
            if subject_type == "line" and line is not None:
                anchor = idx.anchor(side, line)
                if anchor is not None:
                    hunk = idx.diff_hunk(anchor)
                    position = anchor.row
            placement = _Placement(path=path, subject_type=subject_type,
                                   line=line if subject_type == "line" else None,
                                   side=side if subject_type == "line" else None,
                                   start_line=start_line,
                                   start_side=(start_side or side) if start_line is not None else None,
                                   position=position, diff_hunk=hunk)
            review = self._add_review(repo, number, login, "", "COMMENTED", pull.head_sha)
            c = self._add_top_comment(repo, number, review.id, login, body, placement, pull.head_sha)
            return self._comment_json(self.base_url, r, c)

    def reply_as_human(self, comment_id: int, body: str, login: str = "alice") -> dict[str, Any]:
        """A human reply in the thread of ``comment_id``."""
        with self._lock:
            target = self._comments[comment_id]
            self._ensure_user(login)
            c = self._add_reply(target, login, body)
            return self._comment_json(self.base_url, self._repos[target.repo], c)

    def resolve_thread_as_human(self, thread_id: str, login: str = "alice") -> None:
        with self._lock:
            th = self._threads[thread_id]
            th.is_resolved = True
            th.resolved_by = login

    def unresolve_thread(self, thread_id: str) -> None:
        with self._lock:
            th = self._threads[thread_id]
            th.is_resolved = False
            th.resolved_by = None

    def set_thread_outdated(self, thread_id: str, outdated: bool = True) -> None:
        with self._lock:
            self._threads[thread_id].is_outdated = outdated

    def edit_comment_as_human(self, comment_id: int, body: str) -> None:
        """Edit a review or issue comment out of band (e.g. a human edits the bot's text)."""
        with self._lock:
            target: Any = self._comments.get(comment_id) or self._issue_comments[comment_id]
            target.body = body
            target.updated_at = _now_iso()

    # ---------------------------------------------------------------- state helpers

    def _reviews_of(self, repo: str, number: int) -> list[_Review]:
        return sorted((rv for rv in self._reviews.values() if rv.repo == repo and rv.number == number),
                      key=lambda rv: rv.id)

    def _comments_of(self, repo: str, number: int) -> list[_ReviewComment]:
        return sorted((c for c in self._comments.values() if c.repo == repo and c.number == number),
                      key=lambda c: c.id)

    def _visible(self, c: _ReviewComment, viewer: Optional[str]) -> bool:
        rv = self._reviews.get(c.review_id)
        return rv is None or rv.state != "PENDING" or rv.user_login == viewer

    def _add_review(self, repo: str, number: int, login: str, body: str, state: str,
                    commit_id: str) -> _Review:
        rv = _Review(id=self._new_id(), repo=repo, number=number, user_login=login, body=body, state=state,
                     commit_id=commit_id, submitted_at=None if state == "PENDING" else _now_iso())
        self._reviews[rv.id] = rv
        return rv

    def _add_top_comment(self, repo: str, number: int, review_id: int, login: str, body: str,
                         p: _Placement, commit_id: str) -> _ReviewComment:
        tid = f"PRRT_kwDOEmu{self._next_thread:06d}"
        self._next_thread += 1
        now = _now_iso()
        c = _ReviewComment(id=self._new_id(), repo=repo, number=number, review_id=review_id, thread_id=tid,
                           user_login=login, body=body, path=p.path, commit_id=commit_id,
                           original_commit_id=commit_id, diff_hunk=p.diff_hunk, original_line=p.line,
                           original_start_line=p.start_line, original_position=p.position,
                           in_reply_to_id=None, created_at=now, updated_at=now)
        th = _Thread(id=tid, repo=repo, number=number, path=p.path, subject_type=p.subject_type, line=p.line,
                     start_line=p.start_line, side=p.side, start_side=p.start_side, original_line=p.line,
                     original_start_line=p.start_line, position=p.position, commit_id=commit_id,
                     comment_ids=[c.id])
        pull = self._repos[repo].pulls[number]
        if commit_id != pull.head_sha:
            # anchored on an older head: current only if the line still anchors now
            idx = parse_patch(next((f.patch for f in pull.files if f.filename == p.path), None))
            present = any(f.filename == p.path for f in pull.files)
            if not present or (p.subject_type == "line" and (p.side is None or p.line is None
                                                             or idx.anchor(p.side, p.line) is None)):
                th.is_outdated = True
        self._comments[c.id] = c
        self._threads[tid] = th
        return c

    def _add_reply(self, target: _ReviewComment, login: str, body: str,
                   review_id: Optional[int] = None) -> _ReviewComment:
        th = self._threads[target.thread_id]
        root = self._comments[th.comment_ids[0]]
        if review_id is None:
            pull = self._repos[target.repo].pulls[target.number]
            review_id = self._add_review(target.repo, target.number, login, "", "COMMENTED", pull.head_sha).id
        now = _now_iso()
        c = _ReviewComment(id=self._new_id(), repo=root.repo, number=root.number, review_id=review_id,
                           thread_id=th.id, user_login=login, body=body, path=root.path,
                           commit_id=root.commit_id, original_commit_id=root.original_commit_id,
                           diff_hunk=root.diff_hunk, original_line=root.original_line,
                           original_start_line=root.original_start_line,
                           original_position=root.original_position, in_reply_to_id=root.id,
                           created_at=now, updated_at=now)
        self._comments[c.id] = c
        th.comment_ids.append(c.id)
        return c

    def _add_issue_comment(self, repo: str, number: int, login: str, body: str) -> _IssueComment:
        now = _now_iso()
        ic = _IssueComment(id=self._new_id(), repo=repo, number=number, user_login=login, body=body,
                           created_at=now, updated_at=now)
        self._issue_comments[ic.id] = ic
        return ic

    # ---------------------------------------------------------------- JSON shapes

    def _user_json(self, root: str, login: str) -> dict[str, Any]:
        u = self._ensure_user(login)
        quoted = urllib.parse.quote(login)
        return {
            "login": u["login"], "id": u["id"], "node_id": u["node_id"],
            "avatar_url": f"https://avatars.githubusercontent.com/u/{u['id']}?v=4", "gravatar_id": "",
            "url": f"{root}/users/{quoted}", "html_url": f"https://github.com/{quoted}",
            "type": u["type"], "site_admin": False,
        }

    def _repo_json(self, root: str, r: _Repo, full_name: Optional[str] = None, fork: bool = False) -> dict[str, Any]:
        name = full_name or r.full_name
        owner = name.split("/", 1)[0]
        api = f"{root}/repos/{name}"
        return {
            "id": r.id if name == r.full_name else r.id + 500_000,
            "node_id": "R_kgDO" + base64.b64encode(name.encode()).decode().rstrip("="),
            "name": name.split("/", 1)[1], "full_name": name, "private": r.private,
            "owner": self._user_json(root, owner), "html_url": f"https://github.com/{name}",
            "description": None, "fork": fork, "url": api,
            "pulls_url": api + "/pulls{/number}", "issues_url": api + "/issues{/number}",
            "contents_url": api + "/contents/{+path}", "compare_url": api + "/compare/{base}...{head}",
            "default_branch": r.default_branch, "visibility": "private" if r.private else "public",
            "archived": False, "disabled": False,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    def _pull_json(self, root: str, r: _Repo, pull: _Pull) -> dict[str, Any]:
        api = f"{root}/repos/{r.full_name}"
        html = f"https://github.com/{r.full_name}/pull/{pull.number}"
        head_owner = pull.user_login if pull.fork else r.owner
        head_full = f"{head_owner}/{r.name}"
        head_repo = None if pull.head_repo_deleted else self._repo_json(root, r, head_full, fork=pull.fork)
        adds = sum(f.counts()[0] for f in pull.files)
        dels = sum(f.counts()[1] for f in pull.files)
        n_comments = sum(1 for c in self._issue_comments.values() if c.repo == r.full_name and c.number == pull.number)
        n_review_comments = sum(1 for c in self._comments.values()
                                if c.repo == r.full_name and c.number == pull.number)
        return {
            "url": f"{api}/pulls/{pull.number}", "id": pull.id,
            "node_id": f"PR_kwDOEmu{pull.id}", "html_url": html,
            "diff_url": html + ".diff", "patch_url": html + ".patch",
            "issue_url": f"{api}/issues/{pull.number}", "number": pull.number, "state": pull.state,
            "locked": False, "title": pull.title, "user": self._user_json(root, pull.user_login),
            "body": pull.body, "created_at": pull.created_at, "updated_at": pull.created_at,
            "closed_at": None, "merged_at": None, "merge_commit_sha": None,
            "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [], "labels": [],
            "milestone": None,
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "head": {"label": f"{head_owner}:{pull.head_ref}", "ref": pull.head_ref, "sha": pull.head_sha,
                     "user": self._user_json(root, head_owner), "repo": head_repo},
            "base": {"label": f"{r.owner}:{pull.base_ref}", "ref": pull.base_ref, "sha": pull.base_sha,
                     "user": self._user_json(root, r.owner), "repo": self._repo_json(root, r)},
            "_links": {
                "self": {"href": f"{api}/pulls/{pull.number}"}, "html": {"href": html},
                "issue": {"href": f"{api}/issues/{pull.number}"},
                "comments": {"href": f"{api}/issues/{pull.number}/comments"},
                "review_comments": {"href": f"{api}/pulls/{pull.number}/comments"},
                "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/pulls/{pull.number}/commits"},
                "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
            },
            "author_association": "CONTRIBUTOR", "auto_merge": None, "active_lock_reason": None,
            "draft": pull.draft, "merged": False, "mergeable": True, "rebaseable": True,
            "mergeable_state": "clean", "merged_by": None, "comments": n_comments,
            "review_comments": n_review_comments, "maintainer_can_modify": False, "commits": len(pull.heads),
            "additions": adds, "deletions": dels, "changed_files": len(pull.files),
        }

    def _file_json(self, root: str, r: _Repo, f: PullFile, ref: str) -> dict[str, Any]:
        adds, dels = f.counts()
        quoted = urllib.parse.quote(f.filename)
        if f.content is not None:
            sha = _blob_sha(f.content)
        else:
            sha = _fake_sha(f.filename, f.patch or "", ref)
        entry: dict[str, Any] = {
            "sha": sha, "filename": f.filename, "status": f.status, "additions": adds, "deletions": dels,
            "changes": adds + dels,
            "blob_url": f"https://github.com/{r.full_name}/blob/{ref}/{quoted}",
            "raw_url": f"https://github.com/{r.full_name}/raw/{ref}/{quoted}",
            "contents_url": f"{root}/repos/{r.full_name}/contents/{quoted}?ref={ref}",
        }
        if f.patch is not None:
            entry["patch"] = f.patch
        if f.previous_filename is not None:
            entry["previous_filename"] = f.previous_filename
        return entry

    def _review_json(self, root: str, r: _Repo, rv: _Review) -> dict[str, Any]:
        html = f"https://github.com/{r.full_name}/pull/{rv.number}#pullrequestreview-{rv.id}"
        pr_url = f"{root}/repos/{r.full_name}/pulls/{rv.number}"
        out: dict[str, Any] = {
            "id": rv.id, "node_id": f"PRR_kwDOEmu{rv.id}", "user": self._user_json(root, rv.user_login),
            "body": rv.body, "state": rv.state, "html_url": html, "pull_request_url": pr_url,
            "author_association": "CONTRIBUTOR",
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "commit_id": rv.commit_id,
        }
        if rv.submitted_at is not None:
            out["submitted_at"] = rv.submitted_at
        return out

    def _comment_json(self, root: str, r: _Repo, c: _ReviewComment) -> dict[str, Any]:
        th = self._threads[c.thread_id]
        url = f"{root}/repos/{r.full_name}/pulls/comments/{c.id}"
        html = f"https://github.com/{r.full_name}/pull/{c.number}#discussion_r{c.id}"
        pr_url = f"{root}/repos/{r.full_name}/pulls/{c.number}"
        current = not th.is_outdated
        is_line = th.subject_type == "line"
        return {
            "url": url, "pull_request_review_id": c.review_id, "id": c.id, "node_id": f"PRRC_kwDOEmu{c.id}",
            "diff_hunk": c.diff_hunk, "path": c.path,
            "position": th.position if (current and is_line) else None,
            "original_position": c.original_position,
            "commit_id": th.commit_id if current else c.commit_id, "original_commit_id": c.original_commit_id,
            "in_reply_to_id": c.in_reply_to_id, "user": self._user_json(root, c.user_login), "body": c.body,
            "created_at": c.created_at, "updated_at": c.updated_at, "html_url": html,
            "pull_request_url": pr_url, "author_association": "CONTRIBUTOR",
            "_links": {"self": {"href": url}, "html": {"href": html}, "pull_request": {"href": pr_url}},
            "start_line": th.start_line if current else None,
            "original_start_line": c.original_start_line,
            "start_side": th.start_side if th.start_line is not None else None,
            "line": th.line if current else None,
            "original_line": c.original_line,
            "side": th.side if is_line else "RIGHT",
            "subject_type": th.subject_type,
        }

    def _issue_comment_json(self, root: str, r: _Repo, c: _IssueComment) -> dict[str, Any]:
        api = f"{root}/repos/{r.full_name}"
        return {
            "url": f"{api}/issues/comments/{c.id}",
            "html_url": f"https://github.com/{r.full_name}/pull/{c.number}#issuecomment-{c.id}",
            "issue_url": f"{api}/issues/{c.number}", "id": c.id, "node_id": f"IC_kwDOEmu{c.id}",
            "user": self._user_json(root, c.user_login), "created_at": c.created_at,
            "updated_at": c.updated_at, "author_association": "CONTRIBUTOR", "body": c.body,
        }

    # ---------------------------------------------------------------- request entry point

    def _handle(self, method: str, target: str, headers: dict[str, str],
                raw: bytes) -> tuple[int, dict[str, str], bytes, float]:
        """Called by the HTTP handler thread; returns (status, headers, body, delay)."""
        split = urllib.parse.urlsplit(target)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        lower = {k.lower(): v for k, v in headers.items()}
        root = f"http://{lower.get('host') or '127.0.0.1'}"
        req = _Req(method=method.upper(), path=split.path, query=query, headers=lower, raw=raw, root=root)
        with self._lock:
            self._next_request += 1
            request_id = f"EMU{self._next_request:08X}"
            try:
                resp = self._dispatch(req, request_id)
            except _HttpError as exc:
                resp = exc.resp
            except Exception:  # an emulator bug: make it visible
                tb = traceback.format_exc()
                self.server_errors.append(tb)
                print(tb, file=sys.stderr)
                resp = _Resp(500, _envelope(500, "emulator error: " + tb.strip().splitlines()[-1]))
            status = resp.status
            out_headers = self._rate_headers(req, resp)
            out_headers["x-github-request-id"] = request_id
            payload = resp.payload
            if isinstance(payload, (dict, list)):
                body = json.dumps(payload).encode()
                out_headers.setdefault("content-type", "application/json; charset=utf-8")
            elif isinstance(payload, str):
                body = payload.encode()
                out_headers.setdefault("content-type", "text/plain; charset=utf-8")
            elif isinstance(payload, bytes):
                body = payload
                out_headers.setdefault("content-type", "application/octet-stream")
            else:
                body = b""
            try:
                parsed: Any = json.loads(raw.decode()) if raw.strip() else None
            except (ValueError, UnicodeDecodeError):
                parsed = raw.decode("utf-8", "replace")
            self._requests.append(Recorded(method=req.method, path=split.path, query=query, headers=lower,
                                           body=parsed, status=status, raw=raw,
                                           token=self._token_string(lower), at=time.monotonic()))
            return status, out_headers, body, resp.delay

    @staticmethod
    def _token_string(headers: dict[str, str]) -> Optional[str]:
        auth = headers.get("authorization", "")
        parts = auth.split(None, 1)
        if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
            return parts[1].strip()
        return None

    def _resource(self, req: _Req) -> str:
        return "graphql" if req.path == "/graphql" else "core"

    def _limit_for(self, tok: Optional[_Token]) -> int:
        if tok is None:
            return 60
        return 1000 if tok.is_integration else 5000

    def _rate_headers(self, req: _Req, resp: _Resp) -> dict[str, str]:
        resource = self._resource(req)
        tok = req.token
        key = (tok.token if tok else "", resource)
        limit = self._limit_for(tok)
        used = self._used.get(key, 0)
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - used)),
            "x-ratelimit-used": str(used),
            "x-ratelimit-reset": str(self._window_start + 3600),
            "x-ratelimit-resource": resource,
        }
        for k, v in resp.headers.items():
            headers[k.lower()] = v
        return headers

    def _dispatch(self, req: _Req, request_id: str) -> _Resp:
        route: Optional[_Route] = None
        match: Optional[re.Match[str]] = None
        for candidate in _ROUTES:
            m = candidate[1].fullmatch(req.path)
            if m and candidate[0] == req.method:
                route, match = candidate, m
                break
        if route is not None:
            req.doc_url = route[3]

        # authentication
        token_string = self._token_string(req.headers)
        tok = self._tokens.get(token_string or "")
        if tok is None:
            raise _HttpError(401, _envelope(401, "Bad credentials", DOC_ROOT))
        req.token = tok
        resource = self._resource(req)
        key = (tok.token, resource)
        self._used[key] = self._used.get(key, 0) + 1

        # rate limits
        limited = self._rate_limited(req, tok, resource, request_id)
        if limited is not None:
            return limited

        # faults
        fault = None
        for f in self._faults:
            if f.count > 0 and f.method in ("*", req.method) and f.path_regex.search(req.path):
                fault = f
                break
        if fault is not None:
            fault.count -= 1
            self._faults = [f for f in self._faults if f.count > 0]
            if fault.after_effect:
                try:
                    self._route(req, route, match)
                except _HttpError:
                    pass
            return self._fault_response(fault)

        return self._route(req, route, match)

    def _fault_response(self, fault: _Fault) -> _Resp:
        body = fault.body
        if body is None:
            try:
                phrase = HTTPStatus(fault.status).phrase
            except ValueError:
                phrase = "Error"
            body = _envelope(fault.status, phrase)
        return _Resp(fault.status, body, dict(fault.headers), fault.delay)

    def _rate_limited(self, req: _Req, tok: _Token, resource: str, request_id: str) -> Optional[_Resp]:
        is_mutation = resource == "graphql" and b"mutation" in req.raw
        is_write = (req.method in _WRITE_METHODS and resource == "core") or is_mutation
        switch = None
        for s in self._rate_switches:
            if s.count > 0 and (s.resource is None or s.resource == resource):
                switch = s
                break
        if switch is not None:
            switch.count -= 1
            self._rate_switches = [s for s in self._rate_switches if s.count > 0]
            if switch.kind == "primary":
                who = ("installation ID 1" if tok.is_integration
                       else f"user ID {self._ensure_user(tok.login)['id']}")
                message = f"API rate limit exceeded for {who}."
                reset = str(int(time.time()) + int(switch.retry_after or 0))
                headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset,
                           "x-ratelimit-used": str(self._limit_for(tok))}
                if resource == "graphql":
                    return _Resp(200, {"errors": [{"type": "RATE_LIMITED", "message": message}]}, headers)
                return _Resp(switch.status, _envelope(switch.status, message, DOC_PRIMARY), headers)
            return self._secondary(switch.status, switch.retry_after, request_id)
        if is_write:
            now = time.monotonic()
            while self._writes and now - self._writes[0] > 60:
                self._writes.popleft()
            limit = self.write_rate_limit_per_minute
            if limit is not None and len(self._writes) >= limit:
                return self._secondary(403, self.write_rate_limit_retry_after, request_id)
            self._writes.append(now)
        return None

    @staticmethod
    def _secondary(status: int, retry_after: Optional[int], request_id: str) -> _Resp:
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        return _Resp(status, _envelope(status, SECONDARY_MESSAGE.format(rid=request_id), DOC_SECONDARY), headers)

    def _route(self, req: _Req, route: Optional[_Route], match: Optional[re.Match[str]]) -> _Resp:
        if route is None or match is None:
            raise _not_found()
        tok = req.token
        assert tok is not None
        if tok.kind == "readonly" and req.method in _WRITE_METHODS and req.path != "/graphql":
            raise _HttpError(403, _envelope(403, NOT_ACCESSIBLE, req.doc_url))
        handler: Callable[[_Req, dict[str, str]], _Resp] = getattr(self, "_h_" + route[2])
        return handler(req, match.groupdict())

    # ---------------------------------------------------------------- lookups

    def _lookup_repo(self, args: dict[str, str]) -> _Repo:
        full = f"{args['owner']}/{args['repo']}"
        r = self._repos.get(full)
        if r is None:
            # GitHub is case-insensitive on owner/name
            r = next((x for x in self._repos.values() if x.full_name.lower() == full.lower()), None)
        if r is None:
            raise _not_found()
        return r

    def _lookup_pull(self, args: dict[str, str]) -> tuple[_Repo, _Pull]:
        r = self._lookup_repo(args)
        pull = r.pulls.get(int(args["number"]))
        if pull is None:
            raise _not_found()
        return r, pull

    def _lookup_comment(self, r: _Repo, comment_id: str, number: Optional[int] = None) -> _ReviewComment:
        c = self._comments.get(int(comment_id))
        if c is None or c.repo != r.full_name or (number is not None and c.number != number):
            raise _not_found()
        return c

    def _resolve_ref(self, r: _Repo, ref: str) -> Optional[str]:
        if ref in r.refs:
            return r.refs[ref]
        if ref in r.commits:
            return ref
        matches = [sha for sha in r.commits if len(ref) >= 7 and sha.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    # ---------------------------------------------------------------- pagination

    def _paginate(self, req: _Req, items: list[Any], cap: Optional[int] = None) -> tuple[list[Any], dict[str, str]]:
        if cap is not None:
            items = items[:cap]
        try:
            per_page = int(req.query.get("per_page", "30"))
        except ValueError:
            per_page = 30
        per_page = 30 if per_page < 1 else min(per_page, 100)
        try:
            page = max(1, int(req.query.get("page", "1")))
        except ValueError:
            page = 1
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        if last == 1 and page == 1:
            return chunk, {}

        def link(p: int) -> str:
            params = dict(req.query)
            params["page"] = str(p)
            return f"<{req.root}{req.path}?{urllib.parse.urlencode(params)}>"

        rels = []
        if page > 1:
            rels.append(f'{link(min(page - 1, last))}; rel="prev"')
        if page < last:
            rels.append(f'{link(page + 1)}; rel="next"')
            rels.append(f'{link(last)}; rel="last"')
        if page > 1:
            rels.append(f'{link(1)}; rel="first"')
        return chunk, {"link": ", ".join(rels)}

    # ---------------------------------------------------------------- REST handlers

    def _h_get_user(self, req: _Req, args: dict[str, str]) -> _Resp:
        tok = req.token
        assert tok is not None
        if tok.is_integration:
            raise _HttpError(403, _envelope(403, NOT_ACCESSIBLE, DOC_GET_USER))
        user = self._user_json(req.root, tok.login)
        user.update({"name": tok.login, "public_repos": 0, "followers": 0, "following": 0})
        return _Resp(200, user)

    def _h_get_rate_limit(self, req: _Req, args: dict[str, str]) -> _Resp:
        tok = req.token
        out = {}
        for resource in ("core", "graphql"):
            limit = self._limit_for(tok)
            used = self._used.get((tok.token if tok else "", resource), 0)
            out[resource] = {"limit": limit, "used": used, "remaining": max(0, limit - used),
                             "reset": self._window_start + 3600}
        return _Resp(200, {"resources": out, "rate": out["core"]})

    def _h_get_repo(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        return _Resp(200, self._repo_json(req.root, r))

    def _h_get_pull(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        accept = req.headers.get("accept", "")
        if "vnd.github" in accept and ".diff" in accept:
            return self._diff(req, r, pull)
        return _Resp(200, self._pull_json(req.root, r, pull))

    def _diff(self, req: _Req, r: _Repo, pull: _Pull) -> _Resp:
        tail = " Consider using 'List pull requests files' API or locally cloning the repository instead."
        errors = [{"resource": "PullRequest", "field": "diff", "code": "too_large"}]
        if len(pull.files) > MAX_DIFF_FILES:
            msg = f"Sorry, the diff exceeded the maximum number of files ({MAX_DIFF_FILES})." + tail
            raise _HttpError(406, _envelope(406, msg, DOC_GET_PULL, errors))
        chunks: list[str] = []
        for f in pull.files:
            old = f.previous_filename or f.filename
            new = f.filename
            chunks.append(f"diff --git a/{old} b/{new}")
            if f.status == "added":
                chunks.append("new file mode 100644")
            elif f.status == "removed":
                chunks.append("deleted file mode 100644")
            elif f.status == "renamed":
                chunks.append("similarity index 90%" if f.patch else "similarity index 100%")
                chunks.append(f"rename from {old}")
                chunks.append(f"rename to {new}")
            if f.patch is None:
                if f.status != "renamed":
                    chunks.append(f"Binary files a/{old} and b/{new} differ")
                continue
            before = _fake_sha("old", old)[:7] if f.status != "added" else "0000000"
            after = _fake_sha("new", new, pull.head_sha)[:7] if f.status != "removed" else "0000000"
            mode = "" if f.status in ("added", "removed") else " 100644"
            chunks.append(f"index {before}..{after}{mode}")
            chunks.append("--- /dev/null" if f.status == "added" else f"--- a/{old}")
            chunks.append("+++ /dev/null" if f.status == "removed" else f"+++ b/{new}")
            chunks.append(f.patch.rstrip("\n"))
        text = "\n".join(chunks) + "\n"
        if text.count("\n") > MAX_DIFF_LINES:
            msg = f"Sorry, the diff exceeded the maximum number of lines ({MAX_DIFF_LINES})." + tail
            raise _HttpError(406, _envelope(406, msg, DOC_GET_PULL, errors))
        return _Resp(200, text, {"content-type": "application/vnd.github.diff; charset=utf-8"})

    def _h_list_files(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        items, headers = self._paginate(req, pull.files, MAX_PR_FILES)
        return _Resp(200, [self._file_json(req.root, r, f, pull.head_sha) for f in items], headers)

    def _commit_json(self, root: str, r: _Repo, sha: str) -> dict[str, Any]:
        api = f"{root}/repos/{r.full_name}"
        person = {"name": "Emulated", "email": "emulated@example.com", "date": _now_iso()}
        return {
            "sha": sha, "node_id": f"C_kwDOEmu{sha[:12]}", "url": f"{api}/commits/{sha}",
            "html_url": f"https://github.com/{r.full_name}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {"url": f"{api}/git/commits/{sha}", "author": person, "committer": person,
                       "message": f"Commit {sha[:7]}",
                       "tree": {"sha": _fake_sha("tree", sha), "url": f"{api}/git/trees/{_fake_sha('tree', sha)}"},
                       "comment_count": 0},
            "author": None, "committer": None, "parents": [],
            "stats": {"total": 0, "additions": 0, "deletions": 0}, "files": [],
        }

    def _h_get_commit(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        sha = self._resolve_ref(r, urllib.parse.unquote(args["sha"]))
        if sha is None:
            raise _HttpError(422, _envelope(422, f"No commit found for SHA: {args['sha']}",
                                            "https://docs.github.com/rest/commits/commits#get-a-commit"))
        return _Resp(200, self._commit_json(req.root, r, sha))

    def _h_compare(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        basehead = urllib.parse.unquote(args["basehead"])
        if "..." not in basehead:
            raise _not_found(req.doc_url)
        base_ref, head_ref = basehead.split("...", 1)
        base, head = self._resolve_ref(r, base_ref), self._resolve_ref(r, head_ref)
        if base is None or head is None:
            raise _not_found(req.doc_url)
        spec = r.compares.get((base, head))
        if base == head:
            spec = {"files": [], "status": "identical", "ahead_by": 0, "behind_by": 0}
        if spec is None:
            raise _not_found(req.doc_url)
        files = spec["files"]
        if files is None:  # base...head of a PR: the PR's files
            pull = next((p for p in r.pulls.values() if p.base_sha == base and head in p.files_by_sha), None)
            files = pull.files_by_sha[head] if pull else []
        api = f"{req.root}/repos/{r.full_name}"
        page = int(req.query.get("page", "1") or 1)
        body = {
            "url": f"{api}/compare/{base_ref}...{head_ref}",
            "html_url": f"https://github.com/{r.full_name}/compare/{base_ref}...{head_ref}",
            "permalink_url": f"https://github.com/{r.full_name}/compare/{base[:7]}...{head[:7]}",
            "diff_url": f"https://github.com/{r.full_name}/compare/{base_ref}...{head_ref}.diff",
            "patch_url": f"https://github.com/{r.full_name}/compare/{base_ref}...{head_ref}.patch",
            "base_commit": self._commit_json(req.root, r, base),
            "merge_base_commit": self._commit_json(req.root, r, base),
            "status": spec["status"], "ahead_by": spec["ahead_by"], "behind_by": spec["behind_by"],
            "total_commits": spec["ahead_by"], "commits": [],
            "files": [self._file_json(req.root, r, f, head) for f in files[:MAX_COMPARE_FILES]] if page == 1 else [],
        }
        return _Resp(200, body)

    def _h_get_contents(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        path = urllib.parse.unquote(args.get("path") or "").strip("/")
        ref = req.query.get("ref") or r.default_branch
        sha = self._resolve_ref(r, ref)
        if sha is None:
            raise _HttpError(404, _envelope(404, f"No commit found for the ref {ref}", req.doc_url))
        api = f"{req.root}/repos/{r.full_name}"
        data = r.contents.get((sha, path))

        def entry(p: str, blob: Optional[bytes]) -> dict[str, Any]:
            q = urllib.parse.quote(p)
            kind = "file" if blob is not None else "dir"
            blob_sha = _blob_sha(blob) if blob is not None else _fake_sha("tree", sha, p)
            return {
                "type": kind, "size": len(blob) if blob is not None else 0, "name": p.rsplit("/", 1)[-1],
                "path": p, "sha": blob_sha, "url": f"{api}/contents/{q}?ref={ref}",
                "git_url": f"{api}/git/blobs/{blob_sha}",
                "html_url": f"https://github.com/{r.full_name}/blob/{ref}/{q}",
                "download_url": f"https://raw.githubusercontent.com/{r.full_name}/{ref}/{q}" if blob is not None else None,
                "_links": {"self": f"{api}/contents/{q}?ref={ref}", "git": f"{api}/git/blobs/{blob_sha}",
                           "html": f"https://github.com/{r.full_name}/blob/{ref}/{q}"},
            }

        if data is None:
            prefix = path + "/" if path else ""
            children: dict[str, Optional[bytes]] = {}
            for (s, p), blob in r.contents.items():
                if s == sha and p.startswith(prefix):
                    rest = p[len(prefix):]
                    head, _, tail = rest.partition("/")
                    children[prefix + head] = None if tail else blob
            if not children:
                raise _not_found(req.doc_url)
            return _Resp(200, [entry(p, children[p]) for p in sorted(children)])
        accept = req.headers.get("accept", "")
        if "vnd.github.raw" in accept:
            return _Resp(200, data, {"content-type": "application/vnd.github.raw; charset=utf-8"})
        out = entry(path, data)
        if len(data) > MAX_CONTENT_BYTES:
            out.update({"encoding": "none", "content": ""})
        else:
            b64 = base64.b64encode(data).decode()
            out.update({"encoding": "base64",
                        "content": "\n".join(b64[i : i + 60] for i in range(0, len(b64), 60)) + ("\n" if b64 else "")})
        return _Resp(200, out)

    # -- reviews

    def _h_list_reviews(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        viewer = req.token.login if req.token else None
        items = [rv for rv in self._reviews_of(r.full_name, pull.number)
                 if rv.state != "PENDING" or rv.user_login == viewer]
        page, headers = self._paginate(req, items)
        return _Resp(200, [self._review_json(req.root, r, rv) for rv in page], headers)

    def _lookup_review(self, req: _Req, args: dict[str, str]) -> tuple[_Repo, _Pull, _Review]:
        r, pull = self._lookup_pull(args)
        rv = self._reviews.get(int(args["review_id"]))
        viewer = req.token.login if req.token else None
        if rv is None or rv.repo != r.full_name or rv.number != pull.number or (
                rv.state == "PENDING" and rv.user_login != viewer):
            raise _not_found(req.doc_url)
        return r, pull, rv

    def _h_get_review(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, _pull, rv = self._lookup_review(req, args)
        return _Resp(200, self._review_json(req.root, r, rv))

    def _check_event(self, req: _Req, pull: _Pull, event: Optional[str], body: Any, doc: str) -> None:
        tok = req.token
        assert tok is not None
        if event is not None and event not in ("APPROVE", "REQUEST_CHANGES", "COMMENT"):
            raise _invalid_request(
                f'For \'properties/event\', "{event}" is not one of ["APPROVE", "REQUEST_CHANGES", "COMMENT"].', doc)
        if body is not None and not isinstance(body, str):
            raise _invalid_request(f"For 'properties/body', {json.dumps(body)} is not a string.", doc)
        if event == "APPROVE" and tok.is_integration:
            raise _unprocessable("GitHub Actions is not permitted to approve pull requests.", doc)
        if event == "APPROVE" and tok.login == pull.user_login:
            raise _unprocessable("Can not approve your own pull request", doc)
        if event == "REQUEST_CHANGES" and tok.login == pull.user_login:
            raise _unprocessable("Can not request changes on your own pull request", doc)
        if event in ("COMMENT", "REQUEST_CHANGES") and not body:
            raise _unprocessable("Body can't be blank", doc)
        if isinstance(body, str) and len(body) > MAX_BODY:
            raise _body_too_long("PullRequestReview", doc)

    def _validate_placement(self, files: list[PullFile], c: dict[str, Any],
                            file_level: bool = False) -> tuple[Optional[str], Optional[_Placement]]:
        """Validate one comment; returns (error code, placement)."""
        path = c.get("path")
        pf = next((f for f in files if f.filename == path), None)
        if pf is None:
            return "path", None
        if file_level:
            return None, _Placement(path=pf.filename, subject_type="file", line=None, side=None,
                                    start_line=None, start_side=None, position=None, diff_hunk="")
        idx = parse_patch(pf.patch)
        line = c.get("line")
        side = c.get("side") or "RIGHT"
        if line is None and c.get("position") is not None:
            position = c.get("position")
            anchor = idx.at_position(position) if isinstance(position, int) else None
            if anchor is None:
                return "position", None
            return None, _Placement(path=pf.filename, subject_type="line", line=anchor.line, side=anchor.side,
                                    start_line=None, start_side=None, position=anchor.row,
                                    diff_hunk=idx.diff_hunk(anchor))
        if not isinstance(line, int) or side not in ("LEFT", "RIGHT"):
            return "line", None
        end = idx.anchor(side, line)
        if end is None:
            return "line", None
        start_line = c.get("start_line")
        start_side = None
        if start_line is not None:
            start_side = c.get("start_side") or side
            if not isinstance(start_line, int) or start_side not in ("LEFT", "RIGHT"):
                return "same_hunk", None
            if start_side == side and start_line >= line:
                return "precede", None
            start = idx.anchor(start_side, start_line)
            if start is None or start.hunk != end.hunk:
                return "same_hunk", None
            if start.row >= end.row:
                return "precede", None
            diff_hunk = idx.diff_hunk(end)
        else:
            diff_hunk = idx.diff_hunk(end)
        return None, _Placement(path=pf.filename, subject_type="line", line=line, side=side,
                                start_line=start_line, start_side=start_side, position=end.row,
                                diff_hunk=diff_hunk)

    def _h_create_review(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        doc = DOC_CREATE_REVIEW
        tok = req.token
        assert tok is not None
        data = req.json_object()
        event = data.get("event")
        body = data.get("body")
        comments = data.get("comments", [])
        if comments is None:
            comments = []
        if not isinstance(comments, list) or not all(isinstance(c, dict) for c in comments):
            raise _invalid_request("For 'properties/comments', the value is not an array of objects.", doc)
        for c in comments:
            for key in ("path", "body"):
                if key not in c:
                    raise _invalid_request(f'"{key}" wasn\'t supplied.', doc)
        self._check_event(req, pull, event, body, doc)
        for c in comments:
            if isinstance(c.get("body"), str) and len(c["body"]) > MAX_BODY:
                raise _body_too_long("PullRequestReviewComment", doc)
        if any(rv.state == "PENDING" and rv.user_login == tok.login
               for rv in self._reviews_of(r.full_name, pull.number)):
            raise _unprocessable("User can only have one pending review per pull request", doc)
        commit_id = data.get("commit_id") or pull.head_sha
        if commit_id not in pull.files_by_sha:
            raise _unprocessable("Commit could not be resolved", doc)
        files = pull.files_by_sha[commit_id]
        placements: list[_Placement] = []
        for c in comments:
            code, placement = self._validate_placement(files, c)
            if code is not None:
                raise _unprocessable(_REVIEW_TEXTS[code], doc)
            assert placement is not None
            placements.append(placement)
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                 "COMMENT": "COMMENTED", None: "PENDING"}[event]
        rv = self._add_review(r.full_name, pull.number, tok.login, body or "", state, commit_id)
        for c, placement in zip(comments, placements):
            self._add_top_comment(r.full_name, pull.number, rv.id, tok.login, c["body"], placement, commit_id)
        return _Resp(200, self._review_json(req.root, r, rv))

    def _h_submit_review(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull, rv = self._lookup_review(req, args)
        data = req.json_object()
        event = data.get("event")
        body = data.get("body", rv.body or None)
        if event is None:
            raise _invalid_request('"event" wasn\'t supplied.', DOC_SUBMIT_REVIEW)
        if rv.state != "PENDING":
            raise _unprocessable("Can not submit a non-pending review", DOC_SUBMIT_REVIEW)
        self._check_event(req, pull, event, body, DOC_SUBMIT_REVIEW)
        rv.state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}[event]
        rv.body = body or ""
        rv.submitted_at = _now_iso()
        return _Resp(200, self._review_json(req.root, r, rv))

    def _h_delete_review(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, _pull, rv = self._lookup_review(req, args)
        if rv.state != "PENDING":
            raise _unprocessable("Can not delete a non-pending pull request review", req.doc_url)
        out = self._review_json(req.root, r, rv)
        for c in [c for c in self._comments.values() if c.review_id == rv.id]:
            self._delete_review_comment(c)
        del self._reviews[rv.id]
        return _Resp(200, out)

    # -- review comments

    def _h_list_review_comments(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        viewer = req.token.login if req.token else None
        items = [c for c in self._comments_of(r.full_name, pull.number) if self._visible(c, viewer)]
        items = self._sort_since(req, items)
        page, headers = self._paginate(req, items)
        return _Resp(200, [self._comment_json(req.root, r, c) for c in page], headers)

    def _sort_since(self, req: _Req, items: list[Any]) -> list[Any]:
        since = req.query.get("since")
        if since:
            when = _parse_iso(since)
            if when is not None:
                items = [c for c in items if (_parse_iso(c.updated_at) or when) >= when]
        sort = req.query.get("sort")
        if sort in ("created", "updated"):
            reverse = req.query.get("direction", "desc") == "desc"
            attr = "created_at" if sort == "created" else "updated_at"
            items = sorted(items, key=lambda c: (getattr(c, attr), c.id), reverse=reverse)
        return items

    def _h_create_review_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        doc = DOC_CREATE_COMMENT
        tok = req.token
        assert tok is not None
        data = req.json_object()
        body = data.get("body")
        if not isinstance(body, str):
            raise _invalid_request('"body" wasn\'t supplied.', doc)
        if len(body) > MAX_BODY:
            raise _body_too_long("PullRequestReviewComment", doc)
        in_reply_to = data.get("in_reply_to")
        if in_reply_to is not None:
            if not isinstance(in_reply_to, int):
                raise _invalid_request(f"For 'properties/in_reply_to', {json.dumps(in_reply_to)} is not an integer.", doc)
            target = self._lookup_comment(r, str(in_reply_to), pull.number)
            if not self._visible(target, tok.login):
                raise _not_found(doc)
            c = self._add_reply(target, tok.login, body)
            return _Resp(201, self._comment_json(req.root, r, c))
        for key in ("commit_id", "path"):
            if not data.get(key):
                raise _invalid_request(f'"{key}" wasn\'t supplied.', doc)
        commit_id = data["commit_id"]
        if commit_id not in pull.files_by_sha:
            raise _validation_failed([{"resource": "PullRequestReviewComment", "code": "custom",
                                       "field": "commit_id", "message": "commit_id is not part of the pull request"}],
                                     doc)
        subject_type = data.get("subject_type") or "line"
        if subject_type not in ("line", "file"):
            raise _invalid_request(f'For \'properties/subject_type\', "{subject_type}" is not one of ["line", "file"].',
                                   doc)
        if subject_type == "line" and data.get("line") is None and data.get("position") is None:
            raise _invalid_request('"line" wasn\'t supplied.', doc)
        code, placement = self._validate_placement(pull.files_by_sha[commit_id], data, subject_type == "file")
        if code is not None:
            fld, msg = _COMMENT_ERRORS[code]
            raise _validation_failed([{"resource": "PullRequestReviewComment", "code": "custom", "field": fld,
                                       "message": msg}], doc)
        assert placement is not None
        rv = self._add_review(r.full_name, pull.number, tok.login, "", "COMMENTED", commit_id)
        c = self._add_top_comment(r.full_name, pull.number, rv.id, tok.login, body, placement, commit_id)
        return _Resp(201, self._comment_json(req.root, r, c))

    def _h_reply(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        tok = req.token
        assert tok is not None
        target = self._lookup_comment(r, args["comment_id"], pull.number)
        if target.in_reply_to_id is not None or not self._visible(target, tok.login):
            raise _not_found(DOC_REPLY)  # replies to replies are not supported
        body = req.json_object().get("body")
        if not isinstance(body, str) or not body:
            raise _invalid_request('"body" wasn\'t supplied.', DOC_REPLY)
        if len(body) > MAX_BODY:
            raise _body_too_long("PullRequestReviewComment", DOC_REPLY)
        c = self._add_reply(target, tok.login, body)
        return _Resp(201, self._comment_json(req.root, r, c))

    def _h_get_review_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        c = self._lookup_comment(r, args["comment_id"])
        if not self._visible(c, req.token.login if req.token else None):
            raise _not_found(req.doc_url)
        return _Resp(200, self._comment_json(req.root, r, c))

    def _h_edit_review_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        c = self._lookup_comment(r, args["comment_id"])
        body = req.json_object().get("body")
        if not isinstance(body, str):
            raise _invalid_request('"body" wasn\'t supplied.', DOC_EDIT_COMMENT)
        if len(body) > MAX_BODY:
            raise _body_too_long("PullRequestReviewComment", DOC_EDIT_COMMENT)
        c.body = body
        c.updated_at = _now_iso()
        return _Resp(200, self._comment_json(req.root, r, c))

    def _delete_review_comment(self, c: _ReviewComment) -> None:
        th = self._threads.get(c.thread_id)
        del self._comments[c.id]
        if th is not None:
            th.comment_ids = [i for i in th.comment_ids if i != c.id]
            if not th.comment_ids:
                del self._threads[th.id]

    def _h_delete_review_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        c = self._lookup_comment(r, args["comment_id"])
        self._delete_review_comment(c)
        return _Resp(204)

    # -- issues

    def _h_get_issue(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        api = f"{req.root}/repos/{r.full_name}"
        html = f"https://github.com/{r.full_name}/pull/{pull.number}"
        n_comments = sum(1 for c in self._issue_comments.values() if c.repo == r.full_name and c.number == pull.number)
        return _Resp(200, {
            "url": f"{api}/issues/{pull.number}", "repository_url": api,
            "comments_url": f"{api}/issues/{pull.number}/comments", "html_url": html,
            "id": pull.id + 1, "node_id": f"I_kwDOEmu{pull.id}", "number": pull.number, "title": pull.title,
            "user": self._user_json(req.root, pull.user_login), "labels": [], "state": pull.state,
            "locked": False, "assignee": None, "assignees": [], "milestone": None, "comments": n_comments,
            "created_at": pull.created_at, "updated_at": pull.created_at, "closed_at": None,
            "author_association": "CONTRIBUTOR", "body": pull.body, "draft": pull.draft,
            "pull_request": {"url": f"{api}/pulls/{pull.number}", "html_url": html, "diff_url": html + ".diff",
                             "patch_url": html + ".patch", "merged_at": None},
        })

    def _h_list_issue_comments(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        items = sorted((c for c in self._issue_comments.values() if c.repo == r.full_name and c.number == pull.number),
                       key=lambda c: c.id)
        items = self._sort_since(req, items)
        page, headers = self._paginate(req, items)
        return _Resp(200, [self._issue_comment_json(req.root, r, c) for c in page], headers)

    def _h_create_issue_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r, pull = self._lookup_pull(args)
        tok = req.token
        assert tok is not None
        body = req.json_object().get("body")
        if not isinstance(body, str):
            raise _invalid_request('"body" wasn\'t supplied.', DOC_ISSUE_COMMENT)
        if len(body) > MAX_BODY:
            raise _body_too_long("IssueComment", DOC_ISSUE_COMMENT)
        c = self._add_issue_comment(r.full_name, pull.number, tok.login, body)
        return _Resp(201, self._issue_comment_json(req.root, r, c))

    def _lookup_issue_comment(self, r: _Repo, comment_id: str) -> _IssueComment:
        c = self._issue_comments.get(int(comment_id))
        if c is None or c.repo != r.full_name:
            raise _not_found()
        return c

    def _h_get_issue_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        return _Resp(200, self._issue_comment_json(req.root, r, self._lookup_issue_comment(r, args["comment_id"])))

    def _h_edit_issue_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        c = self._lookup_issue_comment(r, args["comment_id"])
        body = req.json_object().get("body")
        if not isinstance(body, str):
            raise _invalid_request('"body" wasn\'t supplied.', DOC_EDIT_ISSUE_COMMENT)
        if len(body) > MAX_BODY:
            raise _body_too_long("IssueComment", DOC_EDIT_ISSUE_COMMENT)
        c.body = body
        c.updated_at = _now_iso()
        return _Resp(200, self._issue_comment_json(req.root, r, c))

    def _h_delete_issue_comment(self, req: _Req, args: dict[str, str]) -> _Resp:
        r = self._lookup_repo(args)
        c = self._lookup_issue_comment(r, args["comment_id"])
        del self._issue_comments[c.id]
        return _Resp(204)

    # ---------------------------------------------------------------- GraphQL

    @staticmethod
    def _gql_value(text: str, name: str, variables: dict[str, Any]) -> tuple[bool, Any]:
        """Find ``name: <$var|"literal"|number>`` in ``text``; returns (found, value)."""
        m = re.search(rf'(?<![\w$]){name}\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|-?\d+)', text)
        if not m:
            return False, None
        token = m.group(1)
        if token.startswith("$"):
            return True, variables.get(token[1:])
        if token.startswith('"'):
            return True, json.loads(token)
        return True, int(token)

    @staticmethod
    def _gql_args(query: str, fieldname: str) -> Optional[str]:
        m = re.search(rf"\b{fieldname}\s*\(([^)]*)\)", query)
        return m.group(1) if m else None

    def _gql_login(self, login: str) -> str:
        user = self._users.get(login)
        if user and user["type"] == "Bot" and login.endswith("[bot]"):
            return login[: -len("[bot]")]
        return login

    def _h_graphql(self, req: _Req, args: dict[str, str]) -> _Resp:
        data = req.json_object()
        query = data.get("query")
        variables = data.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            raise _HttpError(400, _envelope(400, "Problems parsing JSON", "https://docs.github.com/graphql"))
        m = re.search(r"\b(unresolveReviewThread|resolveReviewThread)\s*\(", query)
        if m:
            return self._gql_resolve(req, query, variables, m.group(1), m.start(1))
        if re.search(r"\breviewThreads\b", query):
            return self._gql_review_threads(req, query, variables)
        if re.search(r"\bobject\s*\(\s*expression\b", query):
            return self._gql_objects(req, query, variables)
        if re.search(r"\bviewer\b", query):
            assert req.token is not None
            return _Resp(200, {"data": {"viewer": {"login": self._gql_login(req.token.login)}}})
        return _Resp(200, {"errors": [{"message": "GitHubEmulator: unsupported GraphQL operation"}]})

    @staticmethod
    def _gql_location(query: str, offset: int) -> dict[str, int]:
        line = query.count("\n", 0, offset) + 1
        column = offset - (query.rfind("\n", 0, offset) + 1) + 1
        return {"line": line, "column": column}

    def _gql_resolve(self, req: _Req, query: str, variables: dict[str, Any], name: str, offset: int) -> _Resp:
        tok = req.token
        assert tok is not None
        loc = [self._gql_location(query, offset)]
        input_value = variables.get("input") if isinstance(variables.get("input"), dict) else None
        thread_id: Any = None
        client_mutation_id = None
        if input_value is not None:
            thread_id = input_value.get("threadId")
            client_mutation_id = input_value.get("clientMutationId")
        else:
            _found, thread_id = self._gql_value(query, "threadId", variables)
        th = self._threads.get(thread_id) if isinstance(thread_id, str) else None
        if th is not None:
            rv_visible = any(self._visible(self._comments[cid], tok.login) for cid in th.comment_ids)
            if not rv_visible:
                th = None
        if th is None:
            return _Resp(200, {"data": {name: None}, "errors": [{
                "type": "NOT_FOUND", "path": [name], "locations": loc,
                "message": f"Could not resolve to a node with the global id of '{thread_id}'"}]})
        if not tok.can_resolve_threads:
            return _Resp(200, {"data": {name: None}, "errors": [{
                "type": "FORBIDDEN", "path": [name], "extensions": {"saml_failure": False},
                "locations": loc, "message": NOT_ACCESSIBLE}]})
        th.is_resolved = name == "resolveReviewThread"
        th.resolved_by = tok.login if th.is_resolved else None
        node = self._gql_thread(th, tok, 100)
        return _Resp(200, {"data": {name: {"clientMutationId": client_mutation_id, "thread": node}}})

    def _gql_first(self, query: str, fieldname: str, variables: dict[str, Any]) -> tuple[Optional[int], Optional[dict[str, Any]]]:
        """``first``/``last`` of a connection; returns (count, error)."""
        args = self._gql_args(query, fieldname) or ""
        found_first, first = self._gql_value(args, "first", variables)
        found_last, last = self._gql_value(args, "last", variables)
        value = first if found_first and first is not None else (last if found_last else None)
        which = "first" if found_first and first is not None else "last"
        if value is None:
            return None, {"type": "MISSING_PAGINATION_BOUNDARIES", "path": [fieldname],
                          "message": f"You must provide a `first` or `last` value to properly paginate the "
                                     f"`{fieldname}` connection."}
        if not isinstance(value, int) or value < 1 or value > 100:
            if isinstance(value, int) and value > 100:
                msg = (f"Requesting {value} records on the `{fieldname}` connection exceeds the `{which}` limit "
                       f"of 100 records.")
            else:
                msg = f"`{which}` on the `{fieldname}` connection must be between 1 and 100."
            return None, {"type": "EXCESSIVE_PAGINATION" if isinstance(value, int) and value > 100
                          else "ARGUMENT_LIMIT", "path": [fieldname], "message": msg}
        return value, None

    def _gql_repository(self, query: str, variables: dict[str, Any]) -> "_Repo | _Resp":
        """The repository named by ``repository(owner, name)``, or the NOT_FOUND answer."""
        repo_args = self._gql_args(query, "repository") or ""
        _f, owner = self._gql_value(repo_args, "owner", variables)
        _f, name = self._gql_value(repo_args, "name", variables)
        full = f"{owner}/{name}"
        r = self._repos.get(full) or next((x for x in self._repos.values() if x.full_name.lower() == full.lower()),
                                          None)
        if r is None:
            return _Resp(200, {"data": {"repository": None}, "errors": [{
                "type": "NOT_FOUND", "path": ["repository"],
                "message": f"Could not resolve to a Repository with the name '{full}'."}]})
        return r

    def _gql_objects(self, req: _Req, query: str, variables: dict[str, Any]) -> _Resp:
        """``repository(owner, name) { alias: object(expression: "REF:PATH") { ... on Blob {...} } }``.

        A Blob answers ``text`` (null when binary: a NUL byte in its first
        8,000 bytes, git's test), ``isBinary``, ``isTruncated`` (text cut at
        ``blob_text_limit`` bytes: GitHub does not document its limit),
        ``byteSize`` and ``oid``; a path that is not a file at the commit is
        null, an unknown ref too.
        """
        r = self._gql_repository(query, variables)
        if isinstance(r, _Resp):
            return r
        out: dict[str, Any] = {}
        for m in re.finditer(r"(?:(\w+)\s*:\s*)?\bobject\s*\(([^)]*)\)", query):
            alias = m.group(1) or "object"
            _f, expression = self._gql_value(m.group(2), "expression", variables)
            blob = None
            if isinstance(expression, str) and ":" in expression:
                ref, path = expression.split(":", 1)
                sha = self._resolve_ref(r, ref)
                blob = r.contents.get((sha, path)) if sha is not None else None
            if blob is None:
                out[alias] = None
                continue
            binary = b"\0" in blob[:8000]
            truncated = not binary and len(blob) > self.blob_text_limit
            text = None if binary else blob[: self.blob_text_limit].decode("utf-8", "replace")
            out[alias] = {"__typename": "Blob", "text": text, "isBinary": binary, "isTruncated": truncated,
                          "byteSize": len(blob), "oid": _blob_sha(blob)}
        return _Resp(200, {"data": {"repository": out}})

    def _gql_review_threads(self, req: _Req, query: str, variables: dict[str, Any]) -> _Resp:
        tok = req.token
        assert tok is not None
        pr_args = self._gql_args(query, "pullRequest") or ""
        _f, number = self._gql_value(pr_args, "number", variables)
        threads_first, err = self._gql_first(query, "reviewThreads", variables)
        errors = [err] if err else []
        comments_first = 100
        if re.search(r"\bcomments\s*\(", query):
            cf, err2 = self._gql_first(query, "comments", variables)
            if err2:
                errors.append(err2)
            comments_first = cf or 100
        if errors:
            return _Resp(200, {"errors": errors})
        r = self._gql_repository(query, variables)
        if isinstance(r, _Resp):
            return r
        pull = r.pulls.get(number) if isinstance(number, int) else None
        if pull is None:
            return _Resp(200, {"data": {"repository": {"pullRequest": None}}, "errors": [{
                "type": "NOT_FOUND", "path": ["repository", "pullRequest"],
                "message": f"Could not resolve to a PullRequest with the number of {number}."}]})
        threads = [th for th in self._threads.values()
                   if th.repo == r.full_name and th.number == pull.number
                   and any(self._visible(self._comments[cid], tok.login) for cid in th.comment_ids)]
        args = self._gql_args(query, "reviewThreads") or ""
        _f, after = self._gql_value(args, "after", variables)
        start = 0
        if isinstance(after, str):
            try:
                start = int(base64.b64decode(after).decode().split(":")[-1]) + 1
            except (ValueError, UnicodeDecodeError):
                return _Resp(200, {"data": None, "errors": [{"type": "INVALID_CURSOR_ARGUMENTS", "path": ["reviewThreads"],
                                                           "message": f"`{after}` does not appear to be a valid cursor."}]})
        assert threads_first is not None
        chunk = threads[start : start + threads_first]

        def cursor(i: int) -> str:
            return base64.b64encode(f"cursor:v2:{i}".encode()).decode()

        page_info = {
            "hasNextPage": start + len(chunk) < len(threads),
            "hasPreviousPage": start > 0,
            "startCursor": cursor(start) if chunk else None,
            "endCursor": cursor(start + len(chunk) - 1) if chunk else None,
        }
        nodes = [self._gql_thread(th, tok, comments_first) for th in chunk]
        connection = {"totalCount": len(threads), "pageInfo": page_info, "nodes": nodes,
                      "edges": [{"cursor": cursor(start + i), "node": n} for i, n in enumerate(nodes)]}
        return _Resp(200, {"data": {"repository": {"pullRequest": {"number": pull.number,
                                                                     "reviewThreads": connection}}}})

    def _gql_thread(self, th: _Thread, tok: _Token, comments_first: int) -> dict[str, Any]:
        r = self._repos[th.repo]
        visible = [self._comments[cid] for cid in th.comment_ids if self._visible(self._comments[cid], tok.login)]
        shown = visible[:comments_first]
        nodes = []
        for c in shown:
            rv = self._reviews.get(c.review_id)
            nodes.append({
                "id": f"PRRC_kwDOEmu{c.id}", "databaseId": c.id, "fullDatabaseId": str(c.id), "body": c.body,
                "author": {"login": self._gql_login(c.user_login)}, "createdAt": c.created_at,
                "updatedAt": c.updated_at, "path": c.path, "outdated": th.is_outdated,
                "url": f"https://github.com/{r.full_name}/pull/{c.number}#discussion_r{c.id}",
                "replyTo": {"databaseId": c.in_reply_to_id} if c.in_reply_to_id else None,
                "pullRequestReview": {"databaseId": c.review_id, "state": rv.state if rv else "COMMENTED"},
            })
        current = not th.is_outdated
        return {
            "id": th.id, "isResolved": th.is_resolved, "isOutdated": th.is_outdated, "isCollapsed": th.is_resolved,
            "path": th.path, "line": th.line if current else None,
            "startLine": th.start_line if current else None, "originalLine": th.original_line,
            "originalStartLine": th.original_start_line, "diffSide": th.side or "RIGHT",
            "startDiffSide": th.start_side, "subjectType": th.subject_type.upper(),
            "viewerCanResolve": tok.can_resolve_threads and not th.is_resolved,
            "viewerCanUnresolve": tok.can_resolve_threads and th.is_resolved,
            "viewerCanReply": tok.kind != "readonly",
            "resolvedBy": {"login": self._gql_login(th.resolved_by)} if th.resolved_by else None,
            "comments": {"totalCount": len(visible),
                         "pageInfo": {"hasNextPage": len(visible) > len(shown), "hasPreviousPage": False,
                                      "startCursor": None, "endCursor": None},
                         "nodes": nodes},
        }
