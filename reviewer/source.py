"""Where a diff comes from: a file, stdin, a local git repository, or a GitHub pull request.

A source yields the diff bytes and, when it can, a reader for files at head so
the per-file pass gets surrounding context, not only the hunks.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import repo_view
from .config import finite_number
from .errors import ReviewerError, ServiceError, UsageError
from .repo_view import PathRefused, RepoView


@dataclass
class Source:
    label: str
    data: bytes
    read_head: Callable[[Sequence[str]], Mapping[str, bytes | None]] | None = None
    view: RepoView | None = None
    """The repository at the head commit, for the review's tools; None when there is none (a diff file)."""
    close: Callable[[], None] = lambda: None


def from_path(path: str) -> Source:
    """`-` reads stdin; anything else is a file holding a unified diff."""
    if path == "-":
        return Source("stdin", sys.stdin.buffer.read())
    try:
        return Source(path, Path(path).read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a diff file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def git(repo_dir: Path, *args: str) -> bytes:
    """The output of `git -C repo_dir ARGS`; a UsageError naming the folder when git fails."""
    done = repo_view.run(repo_dir, *args)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{repo_dir}: git {args[0]} failed: {message[0] if message else 'exit ' + str(done.returncode)}")
    return done.stdout


# actions/checkout fetches one commit unless told otherwise, so `--base HEAD~1`
# or `--base main` in CI names history the clone does not have.
_SHALLOW_HINT = ("the clone is shallow, so the history needed is missing: fetch it with `git fetch --unshallow` "
                 "(or `fetch-depth: 0` on actions/checkout)")


def _is_shallow(repo_dir: Path) -> bool:
    try:
        return git(repo_dir, "rev-parse", "--is-shallow-repository").strip() == b"true"
    except UsageError:
        return False


def _commit(repo_dir: Path, ref: str) -> str:
    try:
        return git(repo_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except UsageError:
        hint = f": {_SHALLOW_HINT}" if _is_shallow(repo_dir) else ""
        raise UsageError(f"'{ref}' is not a commit in {repo_dir}{hint}") from None


# What the review reads of one file at head, for context and its real size.
# NOTE: `diff.parse` takes a file's size from what it is handed, so a file cut
# here is seen as this long: over any `max_file_bytes` below it, and skipped.
HEAD_READ_MAX_BYTES = 64 * 1024 * 1024


def _head_reader(view: RepoView) -> Callable[[Sequence[str]], dict[str, bytes | None]]:
    """Files at head from git objects (`repo_view`): None for a path refused or not a file there."""
    def read_head(paths: Sequence[str]) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for path in paths:
            try:
                out[path] = view.read(path, HEAD_READ_MAX_BYTES).data
            except PathRefused:
                out[path] = None  # gone at head, a submodule, or a name the view refuses
        return out
    return read_head


def from_git(repo_dir: Path, base: str, head: str = "HEAD") -> Source:
    """The changes of `head` since it forked from `base` (`git diff BASE...HEAD`)."""
    if not repo_dir.is_dir():
        raise UsageError(f"{repo_dir}: no such directory")
    git(repo_dir, "rev-parse", "--git-dir")
    head_sha = _commit(repo_dir, head)
    _commit(repo_dir, base)
    # Fixed prefixes, no colour, no external diff driver and rename detection, so
    # the user's git config cannot change what we parse. core.quotePath=true:
    # every name that is not plain ASCII is C-quoted with octal bytes, which
    # `diff.parse` undoes exactly; unquoted, a name that is not UTF-8 would
    # reach us as undecodable bytes (issue 11, item 10).
    try:
        data = git(
            repo_dir, "-c", "core.quotePath=true", "diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M",
            "--src-prefix=a/", "--dst-prefix=b/", f"{base}...{head}",
        )
    except UsageError as exc:
        # `BASE...HEAD` needs their merge base, which a shallow clone may not have.
        if _is_shallow(repo_dir):
            raise UsageError(f"{exc}; {_SHALLOW_HINT}") from None
        raise
    view = RepoView(repo_dir, head_sha)
    return Source(f"{base}...{head}", data, read_head=_head_reader(view), close=view.close, view=view)


# --- pull requests on GitHub -------------------------------------------------

GITHUB_API = "https://api.github.com"


@dataclass(frozen=True)
class PullRequest:
    """The pull request being reviewed, as read when the run started."""

    repo: str
    number: int
    head_sha: str
    base_sha: str
    draft: bool
    fork: bool


def env_seconds(name: str, default: float, *, positive: bool = False) -> float:
    """The number of seconds in the environment variable `name`, else `default`.

    UsageError naming the variable when it is not a finite number of at least 0
    (above 0 when `positive`): `time.sleep(nan)` raises and a NaN timeout never
    expires.
    """
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = finite_number(text)
    except ValueError as exc:
        raise UsageError(f"{name}={text[:40]!r}: {exc} of seconds") from None
    if value < 0 or (positive and value == 0):
        raise UsageError(f"{name}={text[:40]!r}: expected {'more than' if positive else 'at least'} 0 seconds")
    return value


def head_view(repo_dir: Path | None, head_sha: str) -> tuple[RepoView | None, str | None]:
    """The local clone at a pull request's head commit, for the review's tools, or (None, why not).

    In GitHub Actions the workflow checks out the base commit (for the
    configuration) and fetches the head commit's objects without checking
    them out (README: The Action); elsewhere `--repo-dir` names a clone.
    """
    if repo_dir is None:
        return None, "repository tools are off: no local clone was given (--repo-dir)"
    try:
        return RepoView(repo_dir, head_sha), None
    except UsageError:
        return None, (f"repository tools are off: {repo_dir} has no commit {head_sha[:12]} (the pull request's head); "
                      f"fetch it first, e.g. git fetch origin {head_sha}")


def github_client(token: str | None = None, base_url: str | None = None) -> Any:
    """A PyGithub client for GITHUB_API_URL with GITHUB_TOKEN.

    Requests are made one at a time. Writes (POST, PATCH) are a second apart,
    as GitHub asks of mutative requests, and never retried by the transport:
    GitHub may have stored a review whose answer was a 5xx, and PyGithub's
    default retry would post it again (`publish.github` checks and retries
    those itself). Reads are not spaced: GitHub asks for serial requests, not
    slow ones, and a review reads a dozen objects before its first model call.
    GraphQL queries travel as POSTs but only read: `graphql_read` sends them
    through a twin client without the write spacing.
    """
    import logging

    from github import Auth, Github, GithubRetry
    from urllib3.util.retry import Retry

    # PyGithub logs every retried request at INFO through a handler bound to the
    # stderr of import time; keep warnings only, through logging's last resort.
    github_logger = logging.getLogger("github")
    github_logger.setLevel(logging.WARNING)
    for handler in list(github_logger.handlers):
        github_logger.removeHandler(handler)

    token = token or os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise UsageError("GITHUB_TOKEN is not set: reading a pull request needs a token")
    retry = GithubRetry(
        total=6,
        secondary_rate_wait=env_seconds("REVIEWER_GITHUB_SECONDARY_WAIT", 60),
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS.union({"GET"}) - {"POST", "PATCH"},
        # Reads are not spaced, so a 5xx is retried after 0.5, 1, 2, 4 s rather than at once.
        backoff_factor=env_seconds("REVIEWER_GITHUB_BACKOFF", 0.5),
    )
    settings: dict[str, Any] = dict(
        auth=Auth.Token(token),
        base_url=(base_url or os.environ.get("GITHUB_API_URL") or GITHUB_API).rstrip("/"),
        retry=retry,
        # PyGithub asserts an int here; a fraction of a second is rounded up.
        timeout=math.ceil(env_seconds("REVIEWER_GITHUB_TIMEOUT", 30, positive=True)),
        seconds_between_requests=env_seconds("REVIEWER_GITHUB_THROTTLE", 0),
        seconds_between_writes=env_seconds("REVIEWER_GITHUB_WRITE_THROTTLE", 1.0),
        # An object is fetched when one of its fields is first read, not each time
        # it is looked up: the repository and pull request are read once per run.
        lazy=True,
        # GitHub's most per page (its default is 30): a 417-file pull request is
        # listed in 5 requests instead of 14, and so are long comment threads.
        per_page=100,
    )
    class Client(Github):
        """PyGithub's client, with a twin for GraphQL queries: reads sent as POSTs, not spaced as writes."""

        queries: Github

    gh = Client(**settings)
    gh.queries = Github(**{**settings, "seconds_between_writes": 0.0})
    return gh


def pull_request_from_event(event_path: str | None = None, repository: str | None = None) -> tuple[str, int]:
    """(owner/name, number) of the pull request in the Actions event payload."""
    event_path = event_path or os.environ.get("GITHUB_EVENT_PATH")
    if not event_path:
        raise UsageError("no pull request: pass --pr N (and --repo OWNER/NAME), or run inside a pull_request workflow")
    try:
        payload = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except RecursionError:
        # GitHub's payloads nest a few levels; json.loads recurses once per level.
        raise UsageError(f"{event_path}: cannot read the event payload: JSON nested too deeply "
                         "to be a GitHub event") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{event_path}: cannot read the event payload: {exc}") from None
    pr = payload.get("pull_request") if isinstance(payload, dict) else None
    if not isinstance(pr, dict) or not isinstance(pr.get("number"), int):
        name = os.environ.get("GITHUB_EVENT_NAME", "this event")
        raise UsageError(f"the event payload ({name}) is not a pull request; run on pull_request or pass --pr N")
    repo = repository or os.environ.get("GITHUB_REPOSITORY") or (pr.get("base", {}).get("repo", {}) or {}).get("full_name")
    if not repo:
        raise UsageError("GITHUB_REPOSITORY is not set and the payload names no repository")
    return repo, pr["number"]


_C_QUOTE = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
            '"': '\\"', "\\": "\\\\"}


def _git_name(name: str) -> str:
    """`name` as `git diff` writes it: C-quoted when it holds a quote, a backslash or a control character.

    A file name from the API goes into a diff header we write ourselves; written
    raw, a newline in it would end the header line (`diff.unquote` reads it back).
    """
    if not any(ch in _C_QUOTE or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return name
    return '"' + "".join(_C_QUOTE.get(ch) or (f"\\{ord(ch):03o}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
                         for ch in name) + '"'


def _file_header(f: Any) -> str:
    old = f.previous_filename or f.filename
    lines = [f"diff --git {_git_name('a/' + old)} {_git_name('b/' + f.filename)}"]
    if f.status == "renamed" and f.previous_filename:
        lines += [f"rename from {_git_name(old)}", f"rename to {_git_name(f.filename)}"]
    source = "/dev/null" if f.status == "added" else _git_name(f"a/{old}")
    target = "/dev/null" if f.status == "removed" else _git_name(f"b/{f.filename}")
    lines += [f"--- {source}", f"+++ {target}"]
    return "\n".join(lines) + "\n"


def from_pull_request(gh: Any, repo_name: str, number: int) -> tuple[Source, PullRequest, list[tuple[str, str]]]:
    """The PR's diff rebuilt from `pulls/{n}/files` (every page), and files without a patch.

    GitHub omits `patch` for binary files and very large diffs; those are returned
    as (path, reason) so the review lists them as skipped.
    """
    from github import GithubException, UnknownObjectException

    try:
        repo = gh.get_repo(repo_name)
        pr = repo.get_pull(number)
        files = list(pr.get_files())
    except UnknownObjectException:
        raise UsageError(f"pull request {repo_name}#{number} not found (or the token cannot see it)") from None
    except GithubException as exc:
        raise _github_error(exc, f"reading {repo_name}#{number}") from None
    head_repo = pr.head.repo
    info = PullRequest(
        repo=repo_name, number=number, head_sha=pr.head.sha, base_sha=pr.base.sha, draft=bool(pr.draft),
        fork=head_repo is None or head_repo.full_name != repo_name,
    )
    chunks: list[str] = []
    no_patch: list[tuple[str, str]] = []
    unlisted = (pr.changed_files or 0) - len(files)
    if unlisted > 0:
        # pulls/{n}/files stops at 3,000 files: say so rather than review part of the PR as if it were all.
        no_patch.append((f"({unlisted:,} more files)",
                         f"GitHub lists at most {len(files):,} files of a pull request; these were not reviewed"))
    for f in files:
        if f.status == "removed":
            no_patch.append((f.filename, "deleted"))
        elif f.patch is None:
            no_patch.append((f.filename, "binary or too large: GitHub sent no patch"))
        else:
            patch = f.patch if f.patch.endswith("\n") else f.patch + "\n"
            chunks.append(_file_header(f) + patch)

    def read_head(paths: Sequence[str]) -> dict[str, bytes | None]:
        return read_at_commit(gh, repo, info.head_sha, paths)

    return Source(f"{repo_name}#{number}", "".join(chunks).encode("utf-8"), read_head=read_head), info, no_patch


def transient_wait(exc: Exception) -> float | None:
    """Seconds to wait before trying a GitHub request again, or None if its failure is final."""
    import requests
    from github import GithubException

    pause = env_seconds("REVIEWER_GITHUB_RETRY_WAIT", 2)
    if isinstance(exc, requests.exceptions.RequestException):
        return pause
    if isinstance(exc, GithubException):
        if exc.status >= 500:
            return pause
        if exc.status in (403, 429):
            retry_after = (exc.headers or {}).get("retry-after")
            if retry_after is not None or "rate limit" in str(exc.data).lower():
                try:
                    wait = finite_number(retry_after or 60)
                except ValueError:
                    wait = 60.0  # an HTTP date, or not a number at all
                return min(max(wait, 0.0), 120.0)
    return None


def graphql_read(gh: Any, query: str, variables: dict[str, Any], attempts: int = 3,
                 sleep: Callable[[float], None] = time.sleep) -> Any:
    """The answer to a GraphQL query, which only reads.

    GraphQL goes over POST, which the client never retries (a retried write
    could be stored twice); a query is safe to send again, so it is, here.
    """
    for attempt in range(1, attempts + 1):
        try:
            queries = getattr(gh, "queries", gh)  # see github_client
            return queries.requester.graphql_query(query, variables)[1]
        except Exception as exc:  # noqa: BLE001 - classified by transient_wait
            wait = transient_wait(exc)
            if wait is None or attempt == attempts:
                raise
            sleep(wait * attempt)


# Files per GraphQL query: a query answers with every file's text at once, so
# this bounds one response (at most 25 x max_file_bytes).
_BLOBS_PER_QUERY = 25
_BLOBS_QUERY = """query($owner: String!, $name: String!, %s) {
  repository(owner: $owner, name: $name) {
%s
  }
}"""


def read_at_commit(gh: Any, repo: Any, sha: str, paths: Sequence[str]) -> dict[str, bytes | None]:
    """The files `paths` at commit `sha`: one GraphQL query per 25 files.

    A request costs the same whether it reads one file or 25, and an Actions
    token has 1,000 requests an hour per repository; the REST contents API
    (one request per file) is used only for what GraphQL cannot give: text
    it truncated, or every file when the query fails.
    """
    import requests
    from github import GithubException

    out: dict[str, bytes | None] = {}
    owner, name = repo.full_name.split("/", 1)
    for start in range(0, len(paths), _BLOBS_PER_QUERY):
        chunk = paths[start:start + _BLOBS_PER_QUERY]
        params = ", ".join(f"$e{i}: String!" for i in range(len(chunk)))
        fields = "\n".join(f"    f{i}: object(expression: $e{i}) {{ ... on Blob {{ text isBinary isTruncated }} }}"
                           for i in range(len(chunk)))
        variables: dict[str, Any] = {"owner": owner, "name": name}
        variables |= {f"e{i}": f"{sha}:{path}" for i, path in enumerate(chunk)}
        try:
            data = graphql_read(gh, _BLOBS_QUERY % (params, fields), variables)
            found = (data.get("data") or {}).get("repository") or {}
        except (GithubException, requests.exceptions.RequestException):
            found = {}
        for i, path in enumerate(chunk):
            blob = found.get(f"f{i}") if found else None
            if found and blob is None:
                out[path] = None  # not a file at this commit (a submodule, or gone)
            elif blob is not None and blob.get("isBinary"):
                out[path] = None
            elif blob is not None and not blob.get("isTruncated") and isinstance(blob.get("text"), str):
                out[path] = blob["text"].encode("utf-8")
            else:
                out[path] = _read_contents(repo, sha, path)
    return out


def _read_contents(repo: Any, sha: str, path: str) -> bytes | None:
    from github import GithubException

    try:
        content = repo.get_contents(path, ref=sha)
    except GithubException:
        return None
    if isinstance(content, list) or content.encoding != "base64":
        return None  # a directory, or over 1 MB (no inline content)
    return content.decoded_content


def _github_error(exc: Any, doing: str) -> ReviewerError:
    from github import BadCredentialsException

    message = exc.data.get("message") if isinstance(getattr(exc, "data", None), dict) else str(exc)
    if isinstance(exc, BadCredentialsException):
        return ServiceError(f"GitHub rejected the token while {doing}: {message}")
    return ServiceError(f"GitHub answered {exc.status} while {doing}: {message}")
