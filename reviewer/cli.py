"""Command line: parse flags, call the library, print the chosen format, exit.

Exit codes (also in the README and reviewer/errors.py):
  0  done (also a review cut by --timeout that produced something: marked incomplete)
  1  a finding at or above --fail-on; the estimate is above --max-cost
  2  usage or configuration error
  3  the model or API failed and no result could be produced, or --timeout passed
     before anything was produced (or an internal error)
  130, 143  SIGINT, SIGTERM: what was done is written, marked incomplete
Only this module prints errors or decides exit codes.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from . import __version__, engine, lazy, pull_request, schemas
from . import config as config_mod
from . import progress as progress_mod
from . import source as source_mod
from .audit import cli as audit_cli
from .client import require_credentials
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_SERVICE, EXIT_USAGE, ReviewerError, UsageError, exit_for_signal
from .eval import cli as eval_cli
from .findings import at_or_above
from .models import Diff, Plan, ReviewResult
from .progress import Progress
from .publish import actions, markdown, sarif, text
from .publish import json as json_pub
from .redact import redact, redact_document

FORMATS = ("text", "json", "markdown", "sarif")


# A review stopped by one of these writes what it has done, then exits 128 + the signal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _progress() -> Progress:
    # Off a terminal (CI logs), plain lines and a heartbeat: a long review must not look hung.
    return progress_mod.for_stderr("reviewer")


# One click type for every number flag: refuses nan and inf (issue 11, item 8).
FiniteFloatRange = audit_cli.FiniteFloatRange


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reviewer")
@click.option("--debug", is_flag=True, envvar="REVIEWER_DEBUG", help="Show tracebacks of internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Code review with Claude: three independent passes over a diff."""
    ctx.obj = {"debug": debug}


def _load_config(config_path: str | None, repo_dir: Path, **overrides: Any) -> config_mod.Config:
    cfg = config_mod.load(Path(config_path) if config_path else None, repo_dir)
    if overrides.get("model"):
        # --model names one model for every pass, whatever the file says per pass.
        cfg = cfg.with_overrides(models={})
    return cfg.with_overrides(**overrides)


@cli.command()
@click.option("--diff", "diff_path", metavar="PATH", help="Unified diff file, or - for stdin.")
@click.option("--base", help="Review `git diff BASE...HEAD` of the repository at --repo-dir.")
@click.option("--head", default="HEAD", show_default=True, help="Head ref for --base.")
@click.option("--pr", "pr_number", type=click.IntRange(1), help="Review a GitHub pull request (GITHUB_TOKEN, GITHUB_API_URL).")
@click.option("--repo", "repo_name", metavar="OWNER/NAME", help="Repository of --pr [default: GITHUB_REPOSITORY].")
@click.option("--post", is_flag=True, help="Post the review on the pull request (one review per run).")
@click.option("--repo-dir", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Local git repository (for --base, configuration and file context).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here instead of stdout.")
@click.option("--model", help="Model for every pass (overrides the configuration).")
@click.option("--max-concurrency", type=click.IntRange(1, 256), help="Per-file calls in flight at once [default: 8].")
@click.option("--dry-run", is_flag=True, help="Send nothing; print the plan, the calls and the estimated cost.")
@click.option("--fail-on", type=click.Choice(["critical", "warning", "info", "never"]),
              help="Exit 1 when a finding is at or above this severity [default: never].")
@click.option("--config", "config_path", metavar="PATH", help="Configuration file (default: .reviewer.toml or [tool.reviewer] in pyproject.toml).")
@click.option("--timeout", type=FiniteFloatRange(0, min_open=True), metavar="SECONDS",
              help="Deadline of the whole review; then what is done is reported, marked incomplete [default: 600].")
@click.option("--max-cost", type=FiniteFloatRange(0), metavar="USD",
              help="Send nothing (exit 1) when the estimated cost is above this; with --post, say so on the pull request.")
@click.option("--force", is_flag=True, help="With --pr: review the head again even when a run already reviewed it.")
def review(diff_path: str | None, base: str | None, head: str, pr_number: int | None, repo_name: str | None,
           post: bool, repo_dir: Path, fmt: str, output: Path | None, model: str | None,
           max_concurrency: int | None, dry_run: bool, fail_on: str | None, config_path: str | None,
           timeout: float | None, max_cost: float | None, force: bool) -> int:
    """Review a diff with three passes: per file, cross-file, aggregate."""
    chosen = [name for name, value in (("--diff", diff_path), ("--base", base), ("--pr", pr_number)) if value]
    if len(chosen) > 1:
        raise UsageError(f"give only one of --diff, --base and --pr (got {' and '.join(chosen)})")
    from_event = not chosen and actions.in_actions() and bool(os.environ.get("GITHUB_EVENT_PATH"))
    if not chosen and not from_event:
        raise UsageError("nothing to review: give --diff PATH (or - for stdin), --base REF for a git repository, or --pr N")
    if post and not (pr_number or from_event):
        raise UsageError("--post needs a pull request: --pr N, or a pull_request event in GitHub Actions")
    if force and not (pr_number or from_event):
        raise UsageError("--force needs a pull request (--pr N): it reviews a head that was already reviewed")
    cfg = _load_config(config_path, repo_dir, model=model, max_concurrency=max_concurrency, fail_on=fail_on,
                       timeout=timeout, max_cost=max_cost)
    if not dry_run:
        # The SDK's import (a second or more) overlaps reading the diff or the pull request.
        lazy.warm("anthropic")
    if pr_number or from_event:
        return _review_pull_request(cfg, pr_number, repo_name, post, from_event, fmt, output, dry_run, force, repo_dir)
    src = source_mod.from_path(diff_path) if diff_path else source_mod.from_git(repo_dir, base or "", head)
    try:
        parsed = _parse(src, cfg)
        plan = engine.plan(parsed, cfg, view=src.view) if dry_run or cfg.max_cost is not None else None
        refusal = engine.over_budget(plan, cfg.max_cost) if plan is not None else None
        if dry_run or refusal:
            assert plan is not None
            _emit_plan(plan, fmt, output)
            return _refused(refusal) if refusal else EXIT_OK
        if parsed.files:
            require_credentials()
        result = engine.review(parsed, cfg, progress=_progress(), stop_signals=STOP_SIGNALS, view=src.view)
    finally:
        if src.view is not None:
            src.view.close()
    _emit_result(result, fmt, output)
    return _exit_code(result, result.findings, cfg)


def _refused(reason: str) -> int:
    click.echo(f"reviewer: refused: {reason}; nothing was sent", err=True)
    return EXIT_FINDINGS


def _exit_code(result: ReviewResult, findings: Any, cfg: config_mod.Config) -> int:
    """0/1 by --fail-on; 128 + the signal when one stopped the review (its output is written)."""
    if result.incomplete is not None:
        click.echo(f"reviewer: incomplete: {result.incomplete.message}", err=True)
        if result.incomplete.signal is not None:
            return exit_for_signal(result.incomplete.signal)
    return EXIT_FINDINGS if at_or_above(list(findings), cfg.fail_on) else EXIT_OK


def _parse(src: source_mod.Source, cfg: config_mod.Config) -> Diff:
    return pull_request.parse(src, cfg)


def _emit_plan(plan: Plan, fmt: str, output: Path | None) -> None:
    renderer = {"json": json_pub.render_plan, "markdown": markdown.render_plan}.get(fmt, text.render_plan)
    _emit(renderer(plan), output)


def _render(result: ReviewResult, fmt: str) -> str:
    return {
        "text": text.render,
        "json": json_pub.render,
        "markdown": markdown.render,
        "sarif": lambda r: sarif.render(r.findings),
    }[fmt](result)


def _emit_result(result: ReviewResult, fmt: str, output: Path | None) -> None:
    _emit(_render(result, fmt), output)
    if actions.in_actions():
        report = output or actions.default_report_path()
        if report is not None and output is None:
            _emit(markdown.render(result), report)
        actions.write_step_summary(markdown.render(result), str(report) if report else None)
        actions.write_outputs({
            "findings": len(result.findings),
            "critical": sum(1 for f in result.findings if f.severity == "critical"),
            "report": str(report or ""),
        })


def _review_pull_request(cfg: config_mod.Config, number: int | None, repo_name: str | None, post: bool,
                         from_event: bool, fmt: str, output: Path | None, dry_run: bool, force: bool,
                         repo_dir: Path | None = None) -> int:
    if from_event:
        repo_name, number = source_mod.pull_request_from_event(repository=repo_name)
    if repo_name and repo_name.count("/") != 1:
        raise UsageError(f"--repo must be OWNER/NAME, not '{repo_name}'")
    repo_name = repo_name or os.environ.get("GITHUB_REPOSITORY")
    if not repo_name or "/" not in repo_name:
        raise UsageError("--pr needs the repository: pass --repo OWNER/NAME or set GITHUB_REPOSITORY")
    assert number is not None
    done = pull_request.run(cfg, repo_name, number, post=post, dry_run=dry_run, skip_drafts=from_event,
                            progress=_progress(), require_credentials=require_credentials, force=force,
                            stop_signals=STOP_SIGNALS, repo_dir=repo_dir)
    if done.skipped:
        click.echo(actions.notice(done.skipped) if "draft" in done.skipped else f"reviewer: {done.skipped}", err=True)
        return EXIT_OK
    if done.plan is not None:
        _emit_plan(done.plan, fmt, output)
        refusal = done.refused or engine.over_budget(done.plan, cfg.max_cost)
        if done.refusal_posted:
            click.echo("reviewer: posted a note on the pull request instead of the review", err=True)
        return _refused(refusal) if refusal else EXIT_OK
    assert done.result is not None and done.outcome is not None
    if done.posting is not None:
        p = done.posting
        click.echo(
            f"reviewer: posted {p.inline} inline comment(s), {p.in_body} in the review body, "
            + (f"{p.in_followups} in {p.followups} follow-up comment(s), " if p.followups else "")
            + f"{len(done.outcome.still_open)} still open, {p.resolved} resolved, "
            f"{done.outcome.suppressed} repeat(s) of earlier findings",
            err=True,
        )
    _emit_result(done.result, fmt, output)
    still = [p.finding for p in done.outcome.still_open]
    return _exit_code(done.result, list(done.result.findings) + still, cfg)


@cli.command()
@click.argument("name", type=click.Choice(list(schemas.NAMES)))
def schema(name: str) -> int:
    """Print one of reviewer's JSON Schemas."""
    import json

    click.echo(json.dumps(schemas.load(name), indent=2))
    return EXIT_OK


cli.add_command(audit_cli.audit)
cli.add_command(eval_cli.eval_group)


def _emit(content: str, output: Path | None) -> None:
    content = redact_document(content)
    if output is None:
        click.echo(content, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the command and maps every outcome to an exit code."""
    debug = bool(os.environ.get("REVIEWER_DEBUG")) or "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="reviewer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("reviewer: interrupted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except ReviewerError as exc:
        click.echo(f"reviewer: error: {redact(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("reviewer: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a message
        if debug:
            traceback.print_exc()
        click.echo(f"reviewer: internal error: {type(exc).__name__}: {redact(str(exc))} (rerun with --debug for the traceback)", err=True)
        return EXIT_SERVICE
    return code if isinstance(code, int) else EXIT_OK


def run() -> None:  # pragma: no cover - the console script; tests call main()
    """The `reviewer` command: `main`, then exit without tearing the interpreter down.

    Freeing every module of a process that imported the SDK takes about half a
    second after the work is done, on every pull request. Everything reviewer
    writes is closed by then (reports, the audit state's transactions are
    committed, git processes end with their pipes), so the streams are flushed
    and the process exits at once.
    """
    code = main()
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
