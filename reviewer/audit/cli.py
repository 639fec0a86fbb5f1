"""`reviewer audit ...`: read the options, call `runner`, print, return the exit code.

Exit codes: 0 done (or still processing: a later `run`/`collect` continues);
1 over --max-cost, or the canary failed; 2 usage or configuration, or a state that
cannot be used (read-only filesystem, full disk, locked by another process,
damaged: `errors.StateError` says which in one line);
3 an API failed, the webhook could not be delivered (the reports are written),
or --timeout passed before any batch existed (the state is saved; the next run continues).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import config as config_mod
from .. import progress as progress_mod
from ..errors import EXIT_FINDINGS, EXIT_OK, EXIT_SERVICE, UsageError
from ..pricing import usd
from ..publish import actions
from ..redact import redact, redact_document
from . import Progress, runner, submit
from . import plan as plan_mod
from . import report as report_mod
from .state import RUN_STATUSES

REPORT_FORMATS = tuple(report_mod.FORMATS)


def _progress() -> Progress:
    return progress_mod.for_stderr("reviewer audit")


# ---------------------------------------------------------------------- options


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (`config.finite_number`).

    click's FloatRange lets NaN through, since every comparison with it is
    false: `--max-cost nan` turned the cost gate off (issue 11, item 8).
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            config_mod.finite_number(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return super().convert(value, param, ctx)


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
                      help="State file [default: REPO_DIR/.reviewer/audit.db].")(fn)
    fn = click.option("--repo-dir", default=".", show_default=True,
                      type=click.Path(file_okay=False, exists=True, path_type=Path),
                      help="The git repository to audit.")(fn)
    return fn


def _planning(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--config", "config_path", metavar="PATH", help="Configuration file (default: .reviewer.toml or [tool.reviewer] in pyproject.toml)."),
        click.option("--model", help="Model for the audit [default: [models] audit, else model]."),
        click.option("--include", multiple=True, metavar="GLOB", help="Audit only files matching a glob (repeatable)."),
        click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching a glob, besides the configured ignores (repeatable)."),
        click.option("--chunk-tokens", type=click.IntRange(500), help="Token budget of one request's part of a file [default: per_file_token_budget]."),
        click.option("--canary", type=click.IntRange(0, 100), default=3, show_default=True,
                     help="Requests sent synchronously and checked before any batch; 0 skips the canary."),
        click.option("--max-cost", type=FiniteFloatRange(0), metavar="USD", help="Refuse (exit 1) when the estimate is above this."),
        click.option("--retry-failed", is_flag=True,
                     help="Send again the parts left out because their unchanged content failed before "
                          "(an invalid answer, a request the API rejected)."),
    ]):
        fn = decorator(fn)
    return fn


def _waiting(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--wait", is_flag=True, help="Poll until the run completes (or --timeout)."),
        click.option("--timeout", type=FiniteFloatRange(0), metavar="SECONDS",
                     help="Deadline of the whole command (canary, submitting, waiting, collecting); implies --wait."),
        click.option("--poll-seconds", type=FiniteFloatRange(0.01), default=10.0, show_default=True,
                     envvar="REVIEWER_AUDIT_POLL_SECONDS", help="First polling interval; it grows by half each idle poll up to 120 s."),
        click.option("--settle-seconds", type=FiniteFloatRange(0), default=15.0, show_default=True,
                     envvar="REVIEWER_AUDIT_SETTLE_SECONDS", hidden=True,
                     help="How long an interrupted batch creation may take to appear in the API's list."),
        click.option("--max-batch-requests", type=click.IntRange(1, plan_mod.MAX_BATCH_REQUESTS),
                     default=plan_mod.MAX_BATCH_REQUESTS, show_default=True, help="Requests per batch."),
        click.option("--max-batch-bytes", type=click.IntRange(1024, plan_mod.MAX_BATCH_BYTES),
                     default=plan_mod.DEFAULT_BATCH_BYTES, show_default=True,
                     help="JSON bytes per batch (the API allows 256 MB; a batch is held in memory to send it)."),
    ]):
        fn = decorator(fn)
    return fn


def _reporting(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Where the reports go [default: REPO_DIR/.reviewer/audit]."),
        click.option("--format", "formats", multiple=True, type=click.Choice(REPORT_FORMATS),
                     help="Reports to write: audit.json, audit.md, audit.sarif [default: all three]."),
        click.option("--webhook-url", envvar="REVIEWER_WEBHOOK_URL", metavar="URL",
                     help="POST a signed summary here when a run completes (secret: REVIEWER_WEBHOOK_SECRET)."),
        click.option("--webhook-backoff", type=FiniteFloatRange(0), default=1.0, hidden=True,
                     envvar="REVIEWER_AUDIT_WEBHOOK_BACKOFF"),
    ]):
        fn = decorator(fn)
    return fn


def _state_path(repo_dir: Path, state_path: Path | None) -> Path:
    return state_path or repo_dir / plan_mod.OWN_DIR / "audit.db"


def _settings(repo_dir: Path, state_path: Path | None, config_path: str | None = None, **kw: Any) -> runner.Settings:
    cfg = config_mod.load(Path(config_path) if config_path else None, repo_dir)
    webhook_url = kw.pop("webhook_url", None)
    secret = None
    if webhook_url:
        report_mod.check_webhook_url(webhook_url)
        secret = os.environ.get("REVIEWER_WEBHOOK_SECRET")
        if not secret:
            raise UsageError("--webhook-url needs the signing secret in REVIEWER_WEBHOOK_SECRET")
    limits = submit.Limits(
        max_requests=kw.pop("max_batch_requests", plan_mod.MAX_BATCH_REQUESTS),
        max_bytes=kw.pop("max_batch_bytes", plan_mod.DEFAULT_BATCH_BYTES),
        settle_seconds=kw.pop("settle_seconds", 15.0),
    )
    timeout = kw.pop("timeout", None)
    wait = kw.pop("wait", False) or timeout is not None
    formats = tuple(dict.fromkeys(kw.pop("formats", ()) or REPORT_FORMATS))
    for key in ("include", "exclude"):
        if key in kw:
            kw[key] = tuple(kw[key])
    return runner.Settings(
        repo_dir=repo_dir, state_path=_state_path(repo_dir, state_path), config=cfg,
        limits=limits, wait=wait, timeout=timeout, formats=formats, webhook_url=webhook_url,
        webhook_secret=secret, **kw,
    )


# ---------------------------------------------------------------------- commands


@click.group()
def audit() -> None:
    """Nightly whole-repository audit through the Message Batches API (half price, resumable)."""


@audit.command("plan")
@_common
@_planning
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plan_command(repo_dir: Path, state_path: Path | None, fmt: str, **kw: Any) -> int:
    """Print what a run would send and cost; sends nothing, needs no key."""
    s = _settings(repo_dir, state_path, **kw)
    p, active = runner.plan(s, _progress())
    click.echo(render_plan_json(p) if fmt == "json" else render_plan_text(p, active))
    refusal = runner.over_budget(p.estimate, s.max_cost)
    if refusal:
        click.echo(f"reviewer: {refusal}", err=True)
        return EXIT_FINDINGS
    return EXIT_OK


@audit.command("run")
@_common
@_planning
@_waiting
@_reporting
@click.option("--max-attempts", type=click.IntRange(1, 9), default=3, show_default=True,
              help="Submissions of one request before it is failed (errored or expired results are retried).")
@click.option("--dry-run", is_flag=True, help="Only print the plan (as `audit plan`).")
def run_command(repo_dir: Path, state_path: Path | None, dry_run: bool, **kw: Any) -> int:
    """Audit the repository: plan, cost gate, canary, batches, results, reports."""
    s = _settings(repo_dir, state_path, **kw)
    progress = _progress()
    if dry_run:
        p, active = runner.plan(s, progress)
        click.echo(render_plan_text(p, active))
        refusal = runner.over_budget(p.estimate, s.max_cost)
        if refusal:
            click.echo(f"reviewer: {refusal}", err=True)
            return EXIT_FINDINGS
        return EXIT_OK
    return _finish(runner.run(s, progress))


@audit.command("collect")
@_common
@click.option("--config", "config_path", metavar="PATH", help="Configuration file.")
@_waiting
@_reporting
def collect_command(repo_dir: Path, state_path: Path | None, **kw: Any) -> int:
    """Continue the unfinished run (submit, poll, collect); with none, write the latest reports again."""
    return _finish(runner.collect_run(_settings(repo_dir, state_path, **kw), _progress()))


@audit.command("cancel")
@_common
@click.option("--config", "config_path", metavar="PATH", help="Configuration file.")
@_waiting
@_reporting
def cancel_command(repo_dir: Path, state_path: Path | None, **kw: Any) -> int:
    """Cancel the unfinished run: nothing more is sent, open batches are canceled.

    With no unfinished run there is nothing to do, and that is not an error (exit
    0): a cleanup step may run `cancel` after a run that already ended.
    """
    path = _state_path(repo_dir, state_path)
    if not _has_unfinished_run(path):
        click.echo(f"nothing to cancel: no unfinished audit run in {path}")
        return EXIT_OK
    try:
        return _finish(runner.cancel(_settings(repo_dir, state_path, **kw), _progress()))
    except UsageError:
        if _has_unfinished_run(path):
            raise
        # It ended between the check and the cancel (another process finished it).
        click.echo(f"nothing to cancel: no unfinished audit run in {path}")
        return EXIT_OK


def _has_unfinished_run(path: Path) -> bool:
    line = runner.status(path)
    return line is not None and line.run.status in ("active", "canceling")


@audit.command("status")
@_common
@click.option("--run", "run_id", type=click.IntRange(1), help="A run id [default: the unfinished run, else the latest].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status_command(repo_dir: Path, state_path: Path | None, run_id: int | None, fmt: str) -> int:
    """Show a run: request states, batches, cost so far. Reads the state only; needs no key."""
    path = _state_path(repo_dir, state_path)
    line = runner.status(path, run_id)
    if line is None and run_id is not None:
        raise UsageError(f"{path}: no audit run {run_id} (no state yet)")
    if line is None:
        click.echo(f"no audit run recorded in {path}")
        return EXIT_OK
    click.echo(redact_document(json.dumps(_line_dict(line, detail=True), indent=2) if fmt == "json" else render_status(line)))
    return EXIT_OK


@audit.command("list")
@_common
@click.option("--status", "statuses", multiple=True, type=click.Choice(RUN_STATUSES), help="Only runs in this status (repeatable).")
@click.option("--limit", type=click.IntRange(1), help="At most this many runs.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_command(repo_dir: Path, state_path: Path | None, statuses: tuple[str, ...], limit: int | None, fmt: str) -> int:
    """Past and current runs, newest first, with counts and cost. Needs no key."""
    path = _state_path(repo_dir, state_path)
    lines = runner.list_runs(path, tuple(statuses) or RUN_STATUSES, limit)
    if fmt == "json":
        click.echo(redact_document(json.dumps([_line_dict(x) for x in lines], indent=2)))
    elif not lines:
        click.echo(f"no audit run recorded in {path}" + (f" with status {', '.join(statuses)}" if statuses else ""))
    else:
        click.echo(render_list(lines))
    return EXIT_OK


def _finish(outcome: runner.Outcome) -> int:
    outcome = dataclasses.replace(outcome, message=redact(outcome.message),
                                  webhook_error=redact(outcome.webhook_error) if outcome.webhook_error else None)
    if outcome.status == "refused":
        est = outcome.estimate
        if est is not None:
            click.echo(f"estimate: {est.requests} request(s), {_tokens(est)}; {usd(est.cost_usd)}")
        click.echo(f"reviewer: refused: {outcome.message}", err=True)
        return EXIT_FINDINGS
    if outcome.status == "canary_failed":
        click.echo(f"reviewer: stopped before any batch: {outcome.message}", err=True)
        return EXIT_FINDINGS
    if outcome.status == "timeout":
        # The deadline passed before any batch existed: nothing is processing for the next run to collect.
        click.echo(f"reviewer: stopped: {outcome.message}", err=True)
        return EXIT_SERVICE
    click.echo(outcome.message)
    for path in outcome.written:
        click.echo(f"report   {path}")
    if outcome.report is not None:
        # In Actions the run page shows the Markdown report; the full one is the artifact.
        md = next((str(p) for p in outcome.written if p.suffix == ".md"), None)
        actions.write_step_summary(report_mod.render_markdown(outcome.report), md)
        actions.write_outputs({
            "findings": len(outcome.report.findings),
            "critical": sum(1 for f in outcome.report.findings if f.severity == "critical"),
            "report": md or "",
        })
    if outcome.webhook_error:
        click.echo(f"reviewer: error: {outcome.webhook_error}", err=True)
        return EXIT_SERVICE
    return EXIT_OK


# ---------------------------------------------------------------------- rendering




def _tokens(est: plan_mod.Estimate) -> str:
    u = est.usage
    return (f"input {u.input_tokens:,}, cache write {u.cache_creation_input_tokens:,}, "
            f"cache read {u.cache_read_input_tokens:,}, output {u.output_tokens:,} tokens")


def render_plan_text(p: plan_mod.Plan, active: Any = None) -> str:
    est = p.estimate
    per_file = collections.Counter(c.path for c in p.chunks)
    split = sum(1 for n in per_file.values() if n > 1)
    commit = f" at {p.commit[:12]}" if p.commit else ""
    out = [
        f"reviewer audit plan of {p.repo_dir}{commit} (model {p.model}, prompt version {p.prompt_version})",
        f"files     {len(p.files)} audited, {len(p.skipped)} skipped",
        f"parts     {len(p.chunks)} ({split} file(s) split into parts)",
        f"requests  {len(p.requests)} to send ({est.canary} canary, {est.requests - est.canary} in "
        f"{est.batches} batch(es)); {p.carried} part(s) carried over, {p.deduplicated} duplicate(s) fanned out",
        f"tokens    {_tokens(est)} (estimated)",
        f"cost      {usd(est.cost_usd, approx=True)} (batch price -50%, canary at the standard price, "
        f"prefix {'cached' if est.prefix_cached else 'too short to cache'})",
    ]
    if p.left_out:
        quarantined = sum(1 for x in p.left_out if x.failure.state == "quarantined")
        out.append(f"left out  {len(p.left_out)} part(s) that failed before, unchanged since ({quarantined} "
                   f"quarantined, {len(p.left_out) - quarantined} failed); --retry-failed sends them again")
    if p.retried:
        out.append(f"retrying  {p.retried} request(s) for parts that failed before (--retry-failed)")
    out += [f"note      {n}" for n in p.notes]
    if active is not None:
        out.append(f"note      run {active.id} is unfinished; `reviewer audit run` finishes it first")
    if p.skipped:
        out += ["", "skipped:"] + _listed([f"  {x.path}: {x.reason}" for x in p.skipped[:LISTED + 1]], len(p.skipped))
    if p.left_out:
        out += ["", "left out:"] + _listed([f"  {x.path}:{x.start}-{x.end}  {redact(x.why)}"
                                           for x in p.left_out[:LISTED + 1]], len(p.left_out))
    if p.requests:
        lines = []
        for r in p.requests[:LISTED + 1]:
            c = r.chunk
            copies = f" (+{len(r.fanout)} identical: {', '.join(r.fanout[:3])}{', ...' if len(r.fanout) > 3 else ''})" if r.fanout else ""
            lines.append(f"  {c.path}:{c.start}-{c.end}  ~{c.tokens:,} tokens  {r.custom_id}{copies}")
        out += ["", "to send:"] + _listed(lines, len(p.requests))
    return "\n".join(out)


# A terminal's worth of a long list; `--format json` has all of it.
LISTED = 200


def _listed(lines: list[str], total: int) -> list[str]:
    if total <= LISTED:
        return lines
    return lines[:LISTED] + [f"  ... and {total - LISTED:,} more (`--format json` lists them all)"]


def render_plan_json(p: plan_mod.Plan) -> str:
    est = p.estimate
    return json.dumps({
        "repo_dir": str(p.repo_dir), "commit": p.commit, "model": p.model, "prompt_version": p.prompt_version,
        "files": list(p.files),
        "files_skipped": [{"file": x.path, "reason": x.reason} for x in p.skipped],
        "chunks": len(p.chunks),
        "requests": [{"custom_id": r.custom_id, "file": r.chunk.path, "start_line": r.chunk.start,
                      "end_line": r.chunk.end, "tokens": r.chunk.tokens, "fanout": list(r.fanout)}
                     for r in p.requests],
        "carried_over": p.carried, "deduplicated": p.deduplicated,
        "left_out": [{"file": x.path, "start_line": x.start, "end_line": x.end, "state": x.failure.state,
                      "reason": redact(x.failure.reason), "run": x.failure.run_id, "failed_at": x.failure.failed_at,
                      "custom_id": x.failure.custom_id} for x in p.left_out],
        "retried": p.retried,
        "estimate": {"requests": est.requests, "canary": est.canary, "batches": est.batches,
                     "usage": est.usage.to_dict(), "cost_usd": est.cost_usd, "prefix_cached": est.prefix_cached},
        "notes": list(p.notes),
    }, indent=2)


def _line_dict(line: runner.RunLine, detail: bool = False) -> dict[str, Any]:
    r = line.run
    out: dict[str, Any] = {
        "id": r.id, "status": r.status, "created_at": r.created_at, "finished_at": r.finished_at,
        "commit": r.commit_sha, "model": r.model, "files": r.files, "skipped": r.skipped, "chunks": r.chunks,
        "carried_over": r.carried, "deduplicated": r.deduplicated, "requests": line.requests,
        "findings": line.findings, "cost_usd": line.cost_usd, "estimated_cost_usd": r.estimate_usd,
        "reason": r.reason,
    }
    if detail:
        out["batches"] = [{"id": b.api_id, "state": b.state, "requests": b.request_count, "bytes": b.bytes,
                           "adopted": b.adopted, "counts": b.counts} for b in line.batches]
        out["notes"] = list(line.notes)
    return out


def render_list(lines: list[runner.RunLine]) -> str:
    header = (f"{'run':>4}  {'started (UTC)':<19}  {'status':<9}  {'files':>6}  {'requests':>8}  {'ok':>6}  "
              f"{'quarant.':>8}  {'failed':>6}  {'canceled':>8}  {'open':>5}  {'findings':>8}  {'cost':>10}")
    out = [header]
    for x in lines:
        r, q = x.run, x.requests
        findings = "-" if x.findings is None else str(x.findings)
        out.append(f"{r.id:>4}  {r.created_at[:19].replace('T', ' '):<19}  {r.status:<9}  {r.files:>6}  "
                   f"{q['planned']:>8}  {q['succeeded']:>6}  {q['quarantined']:>8}  {q['failed']:>6}  "
                   f"{q['canceled']:>8}  {q['open']:>5}  {findings:>8}  {usd(x.cost_usd):>10}")
    return "\n".join(out)


def render_status(line: runner.RunLine) -> str:
    r, q = line.run, line.requests
    out = [
        f"run {r.id}: {r.status}" + (f" ({r.reason})" if r.reason else ""),
        f"started   {r.created_at}" + (f", finished {r.finished_at}" if r.finished_at else ""),
        f"commit    {r.commit_sha or '-'}   model {r.model}   prompt version {r.prompt_version}",
        f"files     {r.files} audited, {r.skipped} skipped; {r.chunks} part(s), {r.carried} carried over, "
        f"{r.deduplicated} duplicate(s) fanned out",
        f"requests  {q['planned']} planned: {q['succeeded']} succeeded, {q['quarantined']} quarantined, "
        f"{q['failed']} failed, {q['canceled']} canceled, {q['rechunked']} re-chunked, {q['open']} open; "
        f"{q['retries']} retries",
        "canary    " + (f"{r.canary} request(s), {'passed' if r.canary_passed else 'not passed yet'}"
                           if r.canary else "none (nothing to send)" if not q["planned"] else "skipped (--canary 0)"),
        f"cost      {usd(line.cost_usd)} spent (estimated {usd(r.estimate_usd)})"
        + ("" if line.findings is None else f"; {line.findings} finding(s)"),
    ]
    for b in line.batches:
        counts = ""
        if b.counts:
            counts = " " + ", ".join(f"{k} {v}" for k, v in b.counts.items() if v)
        out.append(f"batch     {b.api_id or '(intent, not created)'}  {b.state}  {b.request_count} request(s)"
                   f"{' adopted' if b.adopted else ''}{counts}")
    out += [f"note      {n}" for n in line.notes[:20]]
    if len(line.notes) > 20:
        out.append(f"note      ... and {len(line.notes) - 20} more (`--format json` lists them all)")
    return "\n".join(out)
