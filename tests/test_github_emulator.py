"""Tests of the GitHub emulator, driven with the real PyGithub client.

The emulator starts once per module and is reset before each test.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import (
    BadCredentialsException,
    RateLimitExceededException,
    UnknownObjectException,
)

from tests.emulators.github import ACTIONS_BOT_ID, ACTIONS_BOT_LOGIN, GitHubEmulator, PullFile, parse_patch

REPO = "octo/widgets"
NUMBER = 7
HEAD = "a" * 40
BASE = "b" * 40
PAT = "pat-token"
ACTIONS = "actions-token"
ACTIONS_NO_WRITE = "actions-no-contents-write"
READONLY = "fork-token"

# hunk 0: LEFT 1-4 / RIGHT 1-5; hunk 1: LEFT 20-22 / RIGHT 21-24
PATCH = "\n".join([
    "@@ -1,4 +1,5 @@",
    " line1",
    "-old2",
    "+new2",
    "+new3",
    " line4",
    " line5",
    "@@ -20,3 +21,4 @@",
    " ctx20",
    "+added22",
    " ctx21",
    " ctx22",
])

THREADS_QUERY = """
query($owner:String!,$name:String!,$number:Int!,$cursor:String){
 repository(owner:$owner,name:$name){ pullRequest(number:$number){
  reviewThreads(first:100,after:$cursor){ pageInfo{hasNextPage endCursor}
   nodes{ id isResolved isOutdated path line startLine diffSide subjectType
    comments(first:100){ nodes{ id databaseId body author{login} } } } } } } }
"""


@pytest.fixture(scope="module")
def gh() -> Iterator[GitHubEmulator]:
    with GitHubEmulator() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(gh: GitHubEmulator) -> None:
    gh.reset()
    gh.add_token(PAT, kind="pat", login="octo-bot")
    gh.add_token(ACTIONS, kind="actions")
    gh.add_token(ACTIONS_NO_WRITE, kind="actions", can_resolve_threads=False)
    gh.add_token(READONLY, kind="readonly")
    gh.add_pull(REPO, number=NUMBER, head_sha=HEAD, base_sha=BASE, files=[
        PullFile("src/app.py", patch=PATCH, content=b"line1\nnew2\nnew3\nline4\nline5\n"),
        PullFile("logo.png", status="added", patch=None, content=b"\x89PNG"),
    ])


def client(gh: GitHubEmulator, token: str = PAT, retry: Any = None, per_page: int = 30) -> Github:
    return Github(auth=Auth.Token(token), base_url=gh.base_url, seconds_between_requests=0,
                  seconds_between_writes=0, retry=retry, per_page=per_page)


def pull(g: Github):  # type: ignore[no-untyped-def]
    repo = g.get_repo(REPO)
    return repo, repo.get_pull(NUMBER)


def review_error(exc: pytest.ExceptionInfo[GithubException]) -> str:
    data = exc.value.data
    assert exc.value.status == 422
    assert data["message"] == "Unprocessable Entity"
    assert data["status"] == "422"
    assert data["documentation_url"].endswith("#create-a-review-for-a-pull-request")
    return data["errors"][0]


# ------------------------------------------------------------------------- basics


def test_patch_anchors() -> None:
    idx = parse_patch(PATCH + "\n\\ No newline at end of file")
    assert idx.anchor("RIGHT", 3) is not None and idx.anchor("LEFT", 2) is not None
    assert idx.anchor("RIGHT", 10) is None and idx.anchor("LEFT", 5) is None
    assert idx.anchor("RIGHT", 22).hunk == 1  # type: ignore[union-attr]
    assert idx.at_position(2).side == "LEFT"  # type: ignore[union-attr]
    assert idx.at_position(7) is None  # the second @@ line


def test_identity_and_auth(gh: GitHubEmulator) -> None:
    assert client(gh).get_user().login == "octo-bot"
    with pytest.raises(GithubException) as exc:
        client(gh, ACTIONS).get_user().login
    assert exc.value.status == 403 and exc.value.data["message"] == "Resource not accessible by integration"
    with pytest.raises(BadCredentialsException):
        client(gh, "nope").get_repo(REPO)
    with pytest.raises(UnknownObjectException):
        client(gh).get_repo(REPO).get_pull(99)
    rec = gh.requests[-1]
    assert rec.status == 404 and rec.path == f"/repos/{REPO}/pulls/99"
    for name in ("limit", "remaining", "used", "reset", "resource"):
        assert f"x-ratelimit-{name}" in client(gh).requester.requestJsonAndCheck("GET", f"/repos/{REPO}")[0]


def test_pull_urls_follow_host(gh: GitHubEmulator) -> None:
    _repo, pr = pull(client(gh))
    assert pr.url == f"{gh.base_url}/repos/{REPO}/pulls/{NUMBER}"
    assert pr.issue_url.startswith(gh.base_url)
    assert pr.head.sha == HEAD and pr.base.sha == BASE and pr.draft is False


def test_paginated_files(gh: GitHubEmulator) -> None:
    files = [PullFile(f"f{i:03}.py", patch="@@ -1 +1 @@\n-a\n+b") for i in range(250)]
    gh.add_pull(REPO, number=8, head_sha="c" * 40, base_sha=BASE, files=files)
    g = client(gh, per_page=100)
    names = [f.filename for f in g.get_repo(REPO).get_pull(8).get_files()]
    assert names == [f.filename for f in files]
    pages = [r for r in gh.requests if r.path.endswith("/pulls/8/files")]
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3"]
    assert all(r.query["per_page"] == "100" for r in pages)
    headers, data = g.requester.requestJsonAndCheck("GET", f"/repos/{REPO}/pulls/8/files", parameters={"page": 2})
    assert len(data) == 30  # default per_page
    link = headers["link"]
    assert f'<{gh.base_url}/repos/{REPO}/pulls/8/files?page=3>; rel="next"' in link
    assert 'page=9>; rel="last"' in link and 'rel="prev"' in link and 'rel="first"' in link
    headers, data = g.requester.requestJsonAndCheck("GET", f"/repos/{REPO}/pulls/8/files",
                                                    parameters={"per_page": 500})
    assert len(data) == 100 and "per_page=500" in headers["link"]
    headers, _ = g.requester.requestJsonAndCheck("GET", f"/repos/{REPO}/pulls/{NUMBER}/files")
    assert "link" not in headers


def test_diff_media_type_and_too_large(gh: GitHubEmulator) -> None:
    g = client(gh)
    _h, data = g.requester.requestJsonAndCheck("GET", f"/repos/{REPO}/pulls/{NUMBER}",
                                               headers={"Accept": "application/vnd.github.diff"})
    text = data["data"]
    assert text.startswith("diff --git a/src/app.py b/src/app.py\n")
    assert "+++ b/src/app.py\n@@ -1,4 +1,5 @@" in text and "Binary files a/logo.png and b/logo.png differ" in text
    gh.add_pull(REPO, number=9, head_sha="d" * 40, base_sha=BASE,
                files=[PullFile(f"f{i}.py", patch="@@ -1 +1 @@\n-a\n+b") for i in range(301)])
    with pytest.raises(GithubException) as exc:
        g.requester.requestJsonAndCheck("GET", f"/repos/{REPO}/pulls/9",
                                        headers={"Accept": "application/vnd.github.diff"})
    assert exc.value.status == 406
    assert exc.value.data["errors"] == [{"resource": "PullRequest", "field": "diff", "code": "too_large"}]
    assert "maximum number of files (300)" in exc.value.data["message"]


def test_contents_commit_and_compare(gh: GitHubEmulator) -> None:
    repo = client(gh).get_repo(REPO)
    content = repo.get_contents("src/app.py", ref=HEAD)
    assert content.encoding == "base64" and content.decoded_content.startswith(b"line1\nnew2")  # type: ignore[union-attr]
    gh.set_content(REPO, HEAD, "big.bin", b"x" * (1024 * 1024 + 1))
    big = repo.get_contents("big.bin", ref=HEAD)
    assert big.raw_data["encoding"] == "none" and big.raw_data["content"] == ""  # type: ignore[union-attr]
    with pytest.raises(UnknownObjectException):
        repo.get_contents("missing.txt", ref=HEAD)
    assert repo.get_commit(HEAD).sha == HEAD
    cmp = repo.compare(BASE, HEAD)
    assert cmp.status == "ahead" and [f.filename for f in cmp.files] == ["src/app.py", "logo.png"]
    new_head = "e" * 40
    gh.set_head(REPO, NUMBER, new_head, files=[PullFile("src/app.py", patch=PATCH)],
                compare_files=[PullFile("src/app.py", patch="@@ -5 +5 @@\n-line5\n+line5!")])
    cmp = repo.compare(HEAD, new_head)
    assert cmp.ahead_by == 1 and [f.patch for f in cmp.files] == ["@@ -5 +5 @@\n-line5\n+line5!"]
    assert repo.get_pull(NUMBER).head.sha == new_head


# ------------------------------------------------------------------------- reviews


def test_create_review_stores_valid_comments(gh: GitHubEmulator) -> None:
    repo, pr = pull(client(gh))
    review = pr.create_review(commit=repo.get_commit(HEAD), body="Summary", event="COMMENT", comments=[
        {"path": "src/app.py", "body": "right", "line": 3, "side": "RIGHT"},
        {"path": "src/app.py", "body": "left", "line": 2, "side": "LEFT"},
        {"path": "src/app.py", "body": "range", "start_line": 21, "start_side": "RIGHT", "line": 24,
         "side": "RIGHT"},
    ])
    assert review.state == "COMMENTED" and review.body == "Summary" and review.commit_id == HEAD
    post = gh.requests[-1]
    assert post.method == "POST" and post.status == 200 and post.body["commit_id"] == HEAD
    stored = gh.review_comments(REPO, NUMBER)
    assert [c["body"] for c in stored] == ["right", "left", "range"]
    right, left, rng = stored
    assert right["line"] == 3 and right["side"] == "RIGHT" and right["diff_hunk"].endswith("+new3")
    assert right["diff_hunk"].startswith("@@ -1,4 +1,5 @@")
    assert left["side"] == "LEFT" and left["diff_hunk"].endswith("-old2")
    assert rng["start_line"] == 21 and rng["line"] == 24 and rng["diff_hunk"].startswith("@@ -20,3 +21,4 @@")
    for c in stored:
        assert c["pull_request_review_id"] == review.id and c["in_reply_to_id"] is None
        assert c["subject_type"] == "line" and c["commit_id"] == HEAD and c["original_commit_id"] == HEAD
        assert c["original_line"] == c["line"] and c["user"]["login"] == "octo-bot"
        assert c["url"] == f"{gh.base_url}/repos/{REPO}/pulls/comments/{c['id']}"
    assert [c.body for c in pr.get_review_comments()] == ["right", "left", "range"]
    assert [r.state for r in pr.get_reviews()] == ["COMMENTED"]
    assert len(gh.threads(REPO, NUMBER)) == 3


@pytest.mark.parametrize("comment, text", [
    ({"line": 10}, "Line could not be resolved"),
    ({"start_line": 2, "line": 22}, "Pull request review thread line must be part of the diff, Pull request review "
                                    "thread start line must be part of the same hunk as the line., and Pull request "
                                    "review thread diff hunk can't be blank"),
    ({"start_line": 4, "line": 3}, "Pull request review thread start line must precede the end line."),
    ({"path": "docs/elsewhere.md", "line": 1}, "Path could not be resolved"),
    ({"path": "logo.png", "line": 1}, "Line could not be resolved"),
])
def test_create_review_rejects_whole_review(gh: GitHubEmulator, comment: dict[str, Any], text: str) -> None:
    repo, pr = pull(client(gh))
    bad = {"path": "src/app.py", "body": "bad", "side": "RIGHT", **comment}
    with pytest.raises(GithubException) as exc:
        pr.create_review(commit=repo.get_commit(HEAD), body="b", event="COMMENT", comments=[
            {"path": "src/app.py", "body": "fine", "line": 3}, bad])
    assert review_error(exc) == text
    assert gh.reviews(REPO, NUMBER) == [] and gh.review_comments(REPO, NUMBER) == []


def test_review_event_rules(gh: GitHubEmulator) -> None:
    repo, pr = pull(client(gh, ACTIONS))
    with pytest.raises(GithubException) as exc:
        pr.create_review(commit=repo.get_commit(HEAD), body="ok", event="APPROVE")
    assert review_error(exc) == "GitHub Actions is not permitted to approve pull requests."
    with pytest.raises(GithubException) as exc:
        pr.create_review(event="COMMENT", comments=[{"path": "src/app.py", "body": "x", "line": 3}])
    assert exc.value.status == 422
    with pytest.raises(GithubException) as exc:
        pr.create_review(body="x" * 65537, event="COMMENT")
    assert exc.value.status == 422 and "Body is too long" in exc.value.data["errors"][0]["message"]
    pending = pr.create_review(comments=[{"path": "src/app.py", "body": "draft", "line": 3}])
    assert pending.state == "PENDING"
    assert gh.requests[-1].body == {"comments": [{"path": "src/app.py", "body": "draft", "line": 3}]}
    assert "submitted_at" not in gh.reviews(REPO, NUMBER)[0]
    with pytest.raises(GithubException) as exc:
        pr.create_review(body="again", event="COMMENT")
    assert review_error(exc) == "User can only have one pending review per pull request"
    # PENDING is visible only to its author
    assert [r.state for r in pr.get_reviews()] == ["PENDING"]
    assert list(pull(client(gh))[1].get_reviews()) == []
    assert pull(client(gh))[1].get_review_comments().totalCount == 0


def test_actions_token_authorship(gh: GitHubEmulator) -> None:
    repo, pr = pull(client(gh, ACTIONS))
    pr.create_review(commit=repo.get_commit(HEAD), body="bot", event="COMMENT",
                     comments=[{"path": "src/app.py", "body": "x", "line": 3}])
    user = gh.review_comments(REPO, NUMBER)[0]["user"]
    assert (user["login"], user["type"], user["id"]) == (ACTIONS_BOT_LOGIN, "Bot", ACTIONS_BOT_ID)
    _h, data = client(gh, ACTIONS).requester.graphql_query(
        THREADS_QUERY, {"owner": "octo", "name": "widgets", "number": NUMBER})
    node = data["data"]["repository"]["pullRequest"]["reviewThreads"]["nodes"][0]
    assert node["comments"]["nodes"][0]["author"]["login"] == "github-actions"


def test_readonly_token_cannot_write(gh: GitHubEmulator) -> None:
    repo, pr = pull(client(gh, READONLY))
    assert pr.number == NUMBER  # reads work
    with pytest.raises(GithubException) as exc:
        pr.create_review(commit=repo.get_commit(HEAD), body="x", event="COMMENT")
    assert exc.value.status == 403 and exc.value.data["message"] == "Resource not accessible by integration"
    with pytest.raises(GithubException) as exc:
        pr.create_issue_comment("hello")
    assert exc.value.status == 403
    assert gh.reviews(REPO, NUMBER) == [] and gh.issue_comments(REPO, NUMBER) == []


# ------------------------------------------------------------------------- comments


def test_replies_edits_and_file_comments(gh: GitHubEmulator) -> None:
    repo, pr = pull(client(gh))
    top = pr.create_review_comment("top", repo.get_commit(HEAD), "src/app.py", line=3, side="RIGHT")
    assert gh.requests[-1].status == 201 and top.line == 3
    reply = pr.create_review_comment_reply(top.id, "reply")
    assert reply.in_reply_to_id == top.id and gh.requests[-1].status == 201
    with pytest.raises(UnknownObjectException):
        pr.create_review_comment_reply(reply.id, "reply to reply")
    via_in_reply_to = pr.create_review_comment("again", HEAD, "ignored.txt", in_reply_to=top.id)
    assert via_in_reply_to.in_reply_to_id == top.id and via_in_reply_to.path == "src/app.py"
    human = gh.reply_as_human(top.id, "thanks!")
    assert human["user"]["login"] == "alice" and human["in_reply_to_id"] == top.id
    file_level = pr.create_review_comment("whole file", HEAD, "logo.png", subject_type="file")
    assert file_level.subject_type == "file" and file_level.line is None
    with pytest.raises(GithubException) as exc:
        pr.create_review_comment("off", HEAD, "src/app.py", line=10)
    assert exc.value.data["message"] == "Validation Failed"
    assert exc.value.data["errors"][0]["field"] == "pull_request_review_thread.line"

    top.edit("top (edited)")
    assert gh.requests[-1].method == "PATCH" and gh.requests[-1].status == 200
    bodies = [c.body for c in pr.get_review_comments()]
    assert bodies == ["top (edited)", "reply", "again", "thanks!", "whole file"]
    threads = gh.threads(REPO, NUMBER)
    assert len(threads) == 2 and [c["body"] for c in threads[0]["comments"]][-1] == "thanks!"
    assert threads[0]["id"].startswith("PRRT_") and threads[1]["subjectType"] == "FILE"


def test_issue_comments(gh: GitHubEmulator) -> None:
    _repo, pr = pull(client(gh))
    comment = pr.create_issue_comment("summary v1")
    assert gh.requests[-1].status == 201 and comment.user.login == "octo-bot"
    comment.edit("summary v2")
    gh.add_user_comment(REPO, NUMBER, "human says hi", kind="issue")
    assert [c.body for c in pr.get_issue_comments()] == ["summary v2", "human says hi"]
    assert gh.issue_comments(REPO, NUMBER)[0]["issue_url"] == f"{gh.base_url}/repos/{REPO}/issues/{NUMBER}"
    with pytest.raises(GithubException) as exc:
        pr.create_issue_comment("x" * 65537)
    assert exc.value.data["errors"][0]["message"] == "Body is too long (maximum is 65536 characters)"


# ------------------------------------------------------------------------- GraphQL


def _seed_threads(gh: GitHubEmulator) -> list[dict[str, Any]]:
    a = gh.add_user_comment(REPO, NUMBER, "first", login="octo-bot", path="src/app.py", line=3)
    gh.add_user_comment(REPO, NUMBER, "second", login="octo-bot", path="src/app.py", line=22)
    gh.reply_as_human(a["id"], "human reply")
    return gh.threads(REPO, NUMBER)


def test_graphql_review_threads(gh: GitHubEmulator) -> None:
    threads = _seed_threads(gh)
    g = client(gh)
    variables = {"owner": "octo", "name": "widgets", "number": NUMBER}
    _h, data = g.requester.graphql_query(THREADS_QUERY, variables)
    conn = data["data"]["repository"]["pullRequest"]["reviewThreads"]
    assert conn["pageInfo"]["hasNextPage"] is False and len(conn["nodes"]) == 2
    node = conn["nodes"][0]
    assert node["id"] == threads[0]["id"] and node["line"] == 3 and node["diffSide"] == "RIGHT"
    assert node["subjectType"] == "LINE" and node["isResolved"] is False and node["isOutdated"] is False
    assert [(c["body"], c["author"]["login"]) for c in node["comments"]["nodes"]] == [
        ("first", "octo-bot"), ("human reply", "alice")]
    assert node["comments"]["nodes"][0]["databaseId"] == threads[0]["comments"][0]["id"]
    # pagination with a literal first
    paged = THREADS_QUERY.replace("reviewThreads(first:100", "reviewThreads(first: 1")
    _h, data = g.requester.graphql_query(paged, variables)
    conn = data["data"]["repository"]["pullRequest"]["reviewThreads"]
    assert conn["pageInfo"]["hasNextPage"] is True and len(conn["nodes"]) == 1
    _h, data = g.requester.graphql_query(paged, {**variables, "cursor": conn["pageInfo"]["endCursor"]})
    conn = data["data"]["repository"]["pullRequest"]["reviewThreads"]
    assert [n["id"] for n in conn["nodes"]] == [threads[1]["id"]] and conn["pageInfo"]["hasNextPage"] is False
    with pytest.raises(GithubException) as exc:
        g.requester.graphql_query(THREADS_QUERY.replace("first:100,after", "first:101,after"), variables)
    assert "exceeds the `first` limit of 100" in exc.value.data["errors"][0]["message"]
    assert gh.requests[-1].status == 200 and gh.requests[-1].path == "/graphql"


def test_graphql_resolve(gh: GitHubEmulator) -> None:
    threads = _seed_threads(gh)
    g = client(gh, ACTIONS)
    _h, payload = g.requester.graphql_named_mutation("resolveReviewThread", {"threadId": threads[0]["id"]},
                                                     "thread { id isResolved }")
    assert payload["thread"] == {**payload["thread"], "id": threads[0]["id"], "isResolved": True}
    raw = "mutation($id:ID!){ resolveReviewThread(input:{threadId:$id}){ thread{ id isResolved } } }"
    _h, data = g.requester.graphql_query(raw, {"id": threads[1]["id"]})
    assert data["data"]["resolveReviewThread"]["thread"]["isResolved"] is True
    assert [t["isResolved"] for t in gh.threads(REPO, NUMBER)] == [True, True]
    with pytest.raises(UnknownObjectException):
        g.requester.graphql_named_mutation("resolveReviewThread", {"threadId": "PRRT_nope"}, "thread { id }")
    gh.unresolve_thread(threads[0]["id"])
    with pytest.raises(GithubException) as exc:
        client(gh, ACTIONS_NO_WRITE).requester.graphql_named_mutation(
            "resolveReviewThread", {"threadId": threads[0]["id"]}, "thread { id isResolved }")
    assert exc.value.status == 400
    assert gh.requests[-1].status == 200
    assert exc.value.data["data"] == {"resolveReviewThread": None}
    error = exc.value.data["errors"][0]
    assert error["type"] == "FORBIDDEN" and error["message"] == "Resource not accessible by integration"
    assert gh.threads(REPO, NUMBER)[0]["isResolved"] is False
    gh.resolve_thread_as_human(threads[0]["id"])
    assert gh.threads(REPO, NUMBER)[0]["resolvedBy"] == "alice"


def test_new_push_outdates_threads(gh: GitHubEmulator) -> None:
    threads = _seed_threads(gh)
    gh.set_head(REPO, NUMBER, "f" * 40, files=[PullFile("src/app.py", patch="@@ -20,3 +21,4 @@\n ctx20\n+added22\n ctx21\n ctx22")])
    after = {t["id"]: t for t in gh.threads(REPO, NUMBER)}
    assert after[threads[0]["id"]]["isOutdated"] is True and after[threads[0]["id"]]["line"] is None
    assert after[threads[1]["id"]]["isOutdated"] is False
    assert gh.review_comments(REPO, NUMBER)[0]["line"] is None
    assert gh.review_comments(REPO, NUMBER)[0]["original_line"] == 3


# ------------------------------------------------------------------------- rate limits & faults


def test_secondary_rate_limit_retried(gh: GitHubEmulator) -> None:
    gh.set_rate_limit(kind="secondary", status=403, count=1, retry_after=0)
    g = client(gh, retry=GithubRetry(total=3))
    assert g.get_repo(REPO).full_name == REPO
    statuses = [r.status for r in gh.requests if r.path == f"/repos/{REPO}"]
    assert statuses == [403, 200]
    gh.set_rate_limit(kind="secondary", status=429, count=1, retry_after=0)
    assert g.get_repo(REPO).full_name == REPO
    with pytest.raises(RateLimitExceededException) as exc:
        gh.set_rate_limit(kind="secondary", status=403, count=1, retry_after=0)
        client(gh).get_repo(REPO)
    assert exc.value.data["message"].startswith("You have exceeded a secondary rate limit")
    assert exc.value.headers["retry-after"] == "0"


def test_primary_rate_limit(gh: GitHubEmulator) -> None:
    gh.set_rate_limit(kind="primary", status=403, count=1)
    with pytest.raises(RateLimitExceededException) as exc:
        client(gh, ACTIONS).get_repo(REPO)
    assert exc.value.data["message"] == "API rate limit exceeded for installation ID 1."
    assert exc.value.headers["x-ratelimit-remaining"] == "0"


def test_write_rate_limit(gh: GitHubEmulator) -> None:
    gh.write_rate_limit_per_minute = 2
    gh.write_rate_limit_retry_after = None
    _repo, pr = pull(client(gh))
    pr.create_issue_comment("1")
    pr.create_issue_comment("2")
    with pytest.raises(RateLimitExceededException):
        pr.create_issue_comment("3")
    assert len(gh.issue_comments(REPO, NUMBER)) == 2


def test_fault_after_effect(gh: GitHubEmulator) -> None:
    gh.enqueue_fault("POST", r"/pulls/\d+/reviews$", 502, after_effect=True)
    repo, pr = pull(client(gh))
    with pytest.raises(GithubException) as exc:
        pr.create_review(commit=repo.get_commit(HEAD), body="once", event="COMMENT")
    assert exc.value.status == 502
    assert [r["body"] for r in gh.reviews(REPO, NUMBER)] == ["once"]
    # GithubRetry retries POSTs on 5xx: the review is stored twice
    gh.enqueue_fault("POST", r"/pulls/\d+/reviews$", 502, after_effect=True)
    _repo, pr = pull(client(gh, retry=GithubRetry(total=2)))
    pr.create_review(body="twice", event="COMMENT")
    assert [r["body"] for r in gh.reviews(REPO, NUMBER)] == ["once", "twice", "twice"]
    # a plain fault has no effect
    _repo, pr = pull(client(gh))
    gh.enqueue_fault("*", r"/issues/\d+/comments$", 500, body={"message": "boom"})
    with pytest.raises(GithubException) as exc:
        pr.create_issue_comment("lost")
    assert exc.value.status == 500 and exc.value.data == {"message": "boom"}
    assert gh.issue_comments(REPO, NUMBER) == []


def test_event_payload(gh: GitHubEmulator) -> None:
    payload = gh.event_payload(REPO, NUMBER, action="synchronize", before=BASE)
    assert payload["pull_request"]["head"]["sha"] == HEAD and payload["after"] == HEAD
    assert payload["repository"]["full_name"] == REPO
    json.dumps(payload)


def test_concurrent_clients(gh: GitHubEmulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def post(i: int) -> int:
        return pull(client(gh))[1].create_issue_comment(f"c{i}").id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(post, range(16)))
    assert len(set(ids)) == 16
    assert sorted(c["body"] for c in gh.issue_comments(REPO, NUMBER)) == sorted(f"c{i}" for i in range(16))
    assert gh.server_errors == []
