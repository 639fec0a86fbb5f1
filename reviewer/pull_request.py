"""A pull-request review, end to end: read the PR and what earlier runs posted,
review, decide what is new, post.

The CLI calls `run` and prints what it returns; nothing here prints or exits.
Order of the flow (and of the requests it makes):

1. the pull request and its files (`source.from_pull_request`), files at head
   read lazily for the per-file pass;
2. what earlier runs posted (`publish.github.read_prior`) and which files
   changed since the last reviewed head (`changed_since`);
3. posted findings relocated to the head under review, shown to the model with
   ids it cites when it restates one (README: A finding's identity); the
   verifier's earlier refutations relocated too, with the code their evidence
   cited (read at head through the repository view), so a restatement of one
   whose code, and the code it rests on, has not changed stays refuted without
   a verifier call (README: Verification);
4. the three passes (`engine.review`), only on changed files for a re-review;
5. `decide`: new findings, repeats of posted ones, still open, resolved;
6. `post` (with `--post`): one review, follow-ups when its body is full,
   replies on fixed threads, the summary comment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import diff as diff_mod
from . import engine, source
from .config import Config
from .errors import UsageError
from .models import Diff, Plan, PriorFinding, ReviewResult, Skipped
from .passes import verify
from .progress import Progress
from .publish import github as github_pub
from .repo_view import RepoView


@dataclass(frozen=True)
class PullRequestRun:
    """What a pull-request review did; exactly one of `plan`, `result` or `skipped` is set."""

    pr: source.PullRequest
    plan: Plan | None = None
    result: ReviewResult | None = None
    outcome: github_pub.Outcome | None = None
    posting: github_pub.Posting | None = None
    skipped: str | None = None
    """Why nothing was reviewed (a draft, a head already reviewed)."""
    refused: str | None = None
    """Why nothing was sent though there was work (the estimate in `plan` is above `max_cost`)."""
    refusal_posted: bool = False
    """The refusal was said on the pull request (with `post`)."""


def parse(src: source.Source, config: Config, extra_skips: tuple[Skipped, ...] = ()) -> Diff:
    """The diff of a source under the configuration's filters; the source is closed afterwards."""
    try:
        parsed = diff_mod.parse(
            diff_mod.decode(src.data), ignore=config.ignore_globs, max_file_bytes=config.max_file_bytes,
            read_head=src.read_head,
        )
    finally:
        src.close()
    return Diff(parsed.files, parsed.skipped + extra_skips) if extra_skips else parsed


def run(config: Config, repo_name: str, number: int, *, post: bool = False, dry_run: bool = False,
        skip_drafts: bool = False, progress: Progress | None = None,
        require_credentials: Callable[[], None] | None = None, force: bool = False,
        stop_signals: Sequence[int] = (), repo_dir: Path | None = None) -> PullRequestRun:
    """Review pull request `number` of `repo_name` (see the module docstring).

    `force` reviews every file again even when this head was already reviewed
    (a run that failed or was cut short). Over `config.max_cost` nothing is
    sent: the result has `plan` and `refused`, and with `post` a short note
    on the pull request says why. A review stopped by one of `stop_signals`
    is returned unposted (the job is going away; the next run reviews again).
    The repository tools read the head commit from the clone at `repo_dir`
    when it has that commit (`source.head_view`); otherwise they are off and
    the result says why.

    Raises UsageError for a missing or invisible pull request and ServiceError
    when GitHub or the model fails with nothing to show.
    """
    if repo_name.count("/") != 1:
        raise UsageError(f"--repo must be OWNER/NAME, not '{repo_name}'")
    gh = source.github_client()
    src, pr, no_patch = source.from_pull_request(gh, repo_name, number)
    if pr.draft and skip_drafts:
        src.close()
        return PullRequestRun(pr, skipped=f"{repo_name}#{number} is a draft: not reviewed")
    prior = github_pub.read_prior(gh, pr, config)
    # --force: every file again, as for a first review; what was posted is still shown and matched.
    changed = None if force else github_pub.changed_since(gh, pr, prior.last_sha)
    if changed is not None and src.read_head is not None:
        # Fetch only the files the per-file pass will read again.
        read_all = src.read_head
        src.read_head = lambda paths: read_all([p for p in paths if p in changed])
    parsed = parse(src, config, tuple(Skipped(path, reason) for path, reason in no_patch))
    view, why_no_view = source.head_view(repo_dir, pr.head_sha) if config.tools else (None, None)
    try:
        # A refutation may rest on code in a file the diff does not show: read it at head through the view.
        github_pub.relocate(prior, parsed, changed,
                            None if view is None else functools.partial(verify.head_text, view))
        shown = github_pub.shown_to_model(prior, pr.head_sha)
        earlier = engine.Prior(shown, pr.head_sha, tuple(prior.refuted))
        return _review(gh, pr, config, parsed, prior, changed, shown, earlier, view, why_no_view, post=post,
                       dry_run=dry_run, progress=progress, require_credentials=require_credentials,
                       stop_signals=stop_signals)
    finally:
        if view is not None:
            view.close()


def _review(gh: Any, pr: source.PullRequest, config: Config, parsed: Diff, prior: github_pub.PriorState,
            changed: frozenset[str] | None, shown: Sequence[PriorFinding], earlier: engine.Prior,
            view: RepoView | None, why_no_view: str | None, *, post: bool, dry_run: bool,
            progress: Progress | None, require_credentials: Callable[[], None] | None,
            stop_signals: Sequence[int]) -> PullRequestRun:
    repo_name, number = pr.repo, pr.number
    if dry_run:
        return PullRequestRun(pr, plan=engine.plan(parsed, config, earlier, changed, view, why_no_view))
    if changed is not None and not changed and prior.last_sha == pr.head_sha:
        return PullRequestRun(pr, skipped=f"{repo_name}#{number} at {pr.head_sha[:7]} was already reviewed; "
                                          "nothing to do (--force reviews it again)")
    if config.max_cost is not None:
        estimate = engine.plan(parsed, config, earlier, changed, view, why_no_view)
        refusal = engine.over_budget(estimate, config.max_cost)
        if refusal:
            if post:
                github_pub.post_refusal(gh, pr, config, refusal)
            return PullRequestRun(pr, plan=estimate, refused=refusal, refusal_posted=post)
    if parsed.files and require_credentials is not None:
        require_credentials()
    result = engine.review(parsed, config, prior=earlier, only=changed, progress=progress, stop_signals=stop_signals,
                           view=view, why_no_view=why_no_view)
    result = replace(result, notes=result.notes + tuple(prior.notes))
    outcome = github_pub.decide(prior, result, parsed, changed, shown)
    posting = None
    if post and result.incomplete is not None and result.incomplete.signal is not None:
        result = replace(result, notes=result.notes + ("not posted: the review was interrupted",))
    elif post:
        posting = github_pub.post(gh, pr, result, outcome, prior, config, parsed)
        if posting.left_out:
            result = replace(result, notes=result.notes + tuple(posting.left_out))
    return PullRequestRun(pr, result=result, outcome=outcome, posting=posting)
