"""The audit commands as library functions: plan, run, collect, cancel, status, list.

`run` first finishes an unfinished run found in the state (a CI job that hit
its time limit leaves one for the next night), then plans the tree as it is:
unless that run already covered exactly this tree, a new run is recorded,
cost-gated, canaried, submitted and, with `wait`, collected until it completes
or the timeout. Each step is resumable: whatever kills the process, the next
`run` or `collect` continues from the state.

`--timeout` is one deadline for the whole command, from its start: finishing
an unfinished run, planning, the canary, submitting, polling and reading
results all stop by then (issue 11: the canary ignored it). Reached while
batches are processing, the outcome is `pending` (the next run collects them);
reached before any batch existed, it is `timeout`: the state keeps every answer
received and the next run continues from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import pricing
from ..client import require_credentials
from ..config import Config
from ..deadline import Deadline, DeadlineReached
from ..errors import UsageError
from ..pricing import usd
from . import Progress, collect, submit
from . import plan as plan_mod
from . import report as report_mod
from .state import RUN_STATUSES, Batch, Run, Store, now, open_readonly, pack, translated


@dataclass(frozen=True)
class Settings:
    repo_dir: Path
    state_path: Path
    config: Config
    model: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    chunk_tokens: int | None = None
    canary: int = 3
    max_cost: float | None = None
    retry_failed: bool = False
    """Send again the parts whose unchanged content failed before (quarantined, rejected)."""
    max_attempts: int = 3
    wait: bool = False
    timeout: float | None = None
    poll_seconds: float = 10.0
    max_poll_seconds: float = 120.0
    limits: submit.Limits = field(default_factory=submit.Limits)
    output_dir: Path | None = None
    formats: tuple[str, ...] = ("json", "markdown", "sarif")
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_backoff: float = 1.0


@dataclass(frozen=True)
class Outcome:
    """How a command ended; `cli` turns `status` into the exit code."""

    status: str
    """completed | canceled | pending | refused | canary_failed | timeout (the deadline passed before any batch)"""
    message: str
    run: Run | None = None
    report: report_mod.AuditReport | None = None
    written: tuple[Path, ...] = ()
    estimate: plan_mod.Estimate | None = None
    webhook_error: str | None = None


def plan(s: Settings, progress: Progress | None = None) -> tuple[plan_mod.Plan, Run | None]:
    """The plan of the tree as it is, against the state's known answers; sends nothing, needs no key.

    Also returns the unfinished run in the state, if any.
    """
    with translated(s.state_path):
        store = open_readonly(s.state_path)
        if store is None:
            return _build_plan(s, None, progress), None
        with store:
            return _build_plan(s, store, progress), store.active_run()


def _build_plan(s: Settings, store: Store | None, progress: Progress | None) -> plan_mod.Plan:
    """The plan against what the state remembers: answers, failures, re-chunked parts."""
    return plan_mod.build(s.repo_dir, s.config, model=s.model, known=store.result_keys() if store else (),
                          failed=store.failures() if store else None, splits=store.splits() if store else None,
                          retry_failed=s.retry_failed, include=s.include, exclude=s.exclude,
                          chunk_tokens=s.chunk_tokens, canary=s.canary, max_batch_requests=s.limits.max_requests,
                          max_batch_bytes=s.limits.max_bytes, progress=progress)


def over_budget(estimate: plan_mod.Estimate, max_cost: float | None) -> str | None:
    """Why `estimate` may not be spent under `max_cost`, or None."""
    return pricing.over_budget(estimate.cost_usd, max_cost, bool(estimate.requests))


def _deadline(s: Settings) -> Deadline:
    return Deadline(s.timeout if s.wait else None)


def run(s: Settings, progress: Progress) -> Outcome:
    deadline = _deadline(s)
    with translated(s.state_path), _writer(s, progress, "reviewer audit run") as store:
        try:
            return _run(store, s, progress, deadline)
        finally:
            store.checkpoint()


def _writer(s: Settings, progress: Progress, command: str) -> Store:
    """The state for a command that writes it: locked, waiting (with a line) for a foreign SQLite lock."""
    return Store(s.state_path, lock=True, log=progress.log, command=command)


def _run(store: Store, s: Settings, progress: Progress, deadline: Deadline) -> Outcome:
    finished: Outcome | None = None
    active = store.active_run()
    if active is not None:
        progress.log(f"run {active.id} (started {active.created_at}) is unfinished: finishing it first")
        require_credentials()
        finished = _drive(store, active, s, progress, deadline)
        if finished.status in ("pending", "canary_failed", "timeout"):
            return finished
    p = _build_plan(s, store, progress)
    if deadline.expired() and p.requests:
        return Outcome("timeout", f"--timeout {s.timeout:g}s reached while planning; nothing was sent or recorded",
                       estimate=p.estimate)
    if (finished is not None and finished.run is not None and finished.run.status == "completed"
            and finished.run.tree_key == p.tree_key and not p.retried):
        return finished  # the run just finished audited this very tree
    refusal = over_budget(p.estimate, s.max_cost)
    if refusal:
        refused = _record(store, p, s, status="refused", reason=refusal)
        return Outcome("refused", refusal, refused, estimate=p.estimate)
    if p.requests:
        require_credentials()
    new = _record(store, p, s)
    progress.log(f"run {new.id}: {len(p.files)} file(s), {len(p.chunks)} part(s), {len(p.requests)} request(s) "
                 f"to send, {p.carried} carried over, {p.deduplicated} duplicate(s), {len(p.left_out)} left out "
                 f"(failed before, unchanged); estimated {usd(p.estimate.cost_usd)}")
    return _drive(store, new, s, progress, deadline, estimate=p.estimate)


def _record(store: Store, p: plan_mod.Plan, s: Settings, status: str = "active", reason: str | None = None) -> Run:
    """Record the plan as a run: every file, every part, every request with its text (one transaction)."""
    context = p.context or plan_mod.Context.build(s.config, s.model)
    read = plan_mod.ChunkReader(s.repo_dir, context)

    def requests() -> Any:
        if status != "active":
            return
        for i, r in enumerate(p.requests):
            c = r.chunk
            text = read(c)
            yield {
                "base_id": r.custom_id, "custom_id": r.custom_id, "key": c.key, "path": c.path,
                "start_line": c.start, "end_line": c.end, "total_lines": c.total, "tokens": c.tokens,
                "canary": int(i < s.canary), "state": "planned", "text": pack(text),
                "context": pack(c.context) if c.context else None,
            }

    fields = {
        "status": status, "reason": reason, "repo_dir": str(s.repo_dir), "commit_sha": p.commit,
        "tree_key": p.tree_key, "model": p.model, "prompt_version": p.prompt_version,
        "context_digest": context.digest, "system_json": list(context.prefix.blocks),
        "max_tokens": context.max_tokens, "canary": min(s.canary, len(p.requests)),
        "canary_passed": int(not min(s.canary, len(p.requests))),
        "max_attempts": s.max_attempts, "max_findings": s.config.max_findings_per_file,
        "files": len(p.files), "skipped": len(p.skipped), "chunks": len(p.chunks), "carried": p.carried,
        "deduplicated": p.deduplicated, "estimate_usd": p.estimate.cost_usd,
    }
    if status != "active":
        fields["finished_at"] = now()
    files = [(f, None) for f in p.files] + [(x.path, x.reason) for x in p.skipped]
    chunks = [(c.path, c.start, c.end, c.key) for c in p.chunks] if status == "active" else []
    return store.run(store.insert_run(fields, files, chunks, requests()))


def _drive(store: Store, run: Run, s: Settings, progress: Progress, deadline: Deadline | None = None,
           estimate: plan_mod.Estimate | None = None, sleep: Callable[[float], None] = time.sleep,
           finish: Callable[[Store, Run], Outcome] | None = None) -> Outcome:
    """Canary (unless passed), then submit and collect until `run` completes, or once
    without `wait`, or until the deadline; then `finish` (the audit's reports by default)."""
    deadline = deadline or _deadline(s)
    sdk = submit.client(s.config)
    try:
        if run.status == "active" and not run.canary_passed:
            # Also after a crash in the middle of the canary: no batch before it has passed.
            reason = submit.canary(store, run, sdk, progress, deadline)
            if reason is not None:
                return Outcome("canary_failed", reason, store.run(run.id), estimate=estimate)
        delay = s.poll_seconds
        while True:
            run = store.run(run.id)
            moved = _step(store, run, sdk, s, progress, deadline)
            run = store.run(run.id)
            if collect.complete(store, run):
                return finish(store, run) if finish is not None else _finish(store, run, s, progress)
            if not s.wait:
                return _pending(store, run, "not waiting (--wait not given)")
            delay = s.poll_seconds if moved else min(delay * 1.5, max(s.max_poll_seconds, s.poll_seconds))
            left = deadline.left()
            if left is not None and delay > left:
                return _pending(store, run, f"--timeout {s.timeout:g}s reached")
            _waiting(store, run, progress)
            sleep(delay)
    except DeadlineReached as exc:
        run = store.run(run.id)
        if store.batches(run.id, ("in_progress", "canceling", "ended", "creating")):
            return _pending(store, run, str(exc))
        counts = store.state_counts(run.id)
        done = sum(n for k, n in counts.items() if k not in ("planned", "submitting", "submitted"))
        return Outcome("timeout", f"run {run.id}: {exc} after {deadline.elapsed():.0f} s; {done} of "
                                  f"{sum(counts.values())} request(s) final, no batch created yet; the state is "
                                  "saved and the next `run` or `collect` continues it", run, estimate=estimate)
    finally:
        progress.stop()


drive = _drive
"""The canary, submit and collect loop, for another state's runs (`reviewer.eval.batch`)."""


def _waiting(store: Store, run: Run, progress: Progress) -> None:
    """The heartbeat's counts while the batches process: requests final, requests in open batches."""
    counts = store.state_counts(run.id)
    progress.start("waiting for the batches", sum(counts.values()))
    progress.advance(sum(n for k, n in counts.items() if k not in ("planned", "submitting", "submitted")))
    progress.in_flight(counts.get("submitted", 0))


def _step(store: Store, run: Run, sdk: Any, s: Settings, progress: Progress, deadline: Deadline) -> int:
    moved = 0
    if run.status == "canceling":
        # Parts re-chunked after the cancel came in as planned: they are never sent.
        with store.transaction():
            submit.cancel_planned(store, run)
        submit.reconcile(store, run, sdk, s.limits, progress, deadline=deadline)
    else:
        moved += submit.submit(store, run, sdk, s.limits, progress, deadline=deadline)
    moved += collect.poll(store, run, sdk, progress, deadline)
    run = store.run(run.id)
    if run.status == "canceling":
        with store.transaction():
            submit.cancel_planned(store, run)
    elif store.requests(run.id, ("planned",), limit=1, with_text=False):
        moved += submit.submit(store, run, sdk, s.limits, progress, deadline=deadline)  # retries and re-chunked parts
    return moved


def _pending(store: Store, run: Run, why: str) -> Outcome:
    counts = store.state_counts(run.id)
    done = sum(n for k, n in counts.items() if k not in ("planned", "submitting", "submitted"))
    batches = [b.api_id for b in store.batches(run.id, ("in_progress", "canceling", "creating")) if b.api_id]
    where = f"; batch(es) {', '.join(batches)} still processing" if batches else ""
    return Outcome("pending", f"run {run.id}: {done} of {sum(counts.values())} request(s) final{where} ({why}); "
                              "`reviewer audit collect` or the next `run` continues it", run)


def _finish(store: Store, run: Run, s: Settings, progress: Progress) -> Outcome:
    report = report_mod.build(store, run)
    run = collect.finish(store, run, report.summary())
    return _publish(replace(report, run=run), s, progress)


def _publish(report: report_mod.AuditReport, s: Settings, progress: Progress) -> Outcome:
    out_dir = s.output_dir or s.repo_dir / ".reviewer" / "audit"
    written = report_mod.write(report, out_dir, s.formats)
    webhook_error = None
    if s.webhook_url:
        try:
            tries = report_mod.deliver(s.webhook_url, s.webhook_secret or "", report, backoff=s.webhook_backoff)
            progress.log(f"webhook delivered to {s.webhook_url} (attempt {tries})")
        except report_mod.WebhookFailed as exc:
            webhook_error = str(exc)
            progress.log(f"error: {exc}")
    status = "canceled" if report.run.status == "canceled" else "completed"
    summary = report.summary()
    c = summary["findings"]
    left = f"; {len(report.left_out)} part(s) left out (failed before, unchanged; --retry-failed sends them)" \
        if report.left_out else ""
    message = (f"run {report.run.id} {report.run.status}: {c['total']} finding(s) ({c['critical']} critical, "
               f"{c['warning']} warning, {c['info']} info) in {summary['files_audited']} file(s); "
               f"{len(report.problems)} part(s) not audited{left}; cost {usd(report.cost_usd)}")
    return Outcome(status, message, report.run, report, written, webhook_error=webhook_error)


def collect_run(s: Settings, progress: Progress) -> Outcome:
    """Continue the unfinished run; with none, write the latest run's reports again."""
    with translated(s.state_path), _writer(s, progress, "reviewer audit collect") as store:
        try:
            active = store.active_run()
            if active is not None:
                require_credentials()
                return _drive(store, active, s, progress, _deadline(s))
            latest = store.latest_run(("completed", "canceled"))
            if latest is None:
                raise UsageError(f"{s.state_path}: no audit run to collect; start one with `reviewer audit run`")
            return _publish(report_mod.build(store, latest), s, progress)
        finally:
            store.checkpoint()


def cancel(s: Settings, progress: Progress) -> Outcome:
    with translated(s.state_path), _writer(s, progress, "reviewer audit cancel") as store:
        try:
            active = store.active_run()
            if active is None:
                raise UsageError(f"{s.state_path}: no unfinished audit run to cancel")
            require_credentials()
            sdk = submit.client(s.config)
            submit.cancel(store, active, sdk, s.limits, progress)
            return _drive(store, store.run(active.id), s, progress)
        finally:
            store.checkpoint()


# ---------------------------------------------------------------------- status and list


@dataclass(frozen=True)
class RunLine:
    run: Run
    requests: dict[str, int]
    findings: int | None
    cost_usd: float | None
    batches: tuple[Batch, ...] = ()
    notes: tuple[str, ...] = ()


def _line(store: Store, r: Run, detail: bool = False) -> RunLine:
    if r.summary is not None:
        req = r.summary["requests"]
        line = RunLine(r, {k: req.get(k, 0) for k in ("planned", "succeeded", "quarantined", "failed", "canceled",
                                                       "rechunked", "retries", "open")},
                       r.summary["findings"]["total"], r.summary.get("cost_usd"))
    else:
        counts = store.state_counts(r.id)
        planned = store.db.execute("SELECT COUNT(*) FROM requests WHERE run_id = ? AND parent_id IS NULL",
                                   (r.id,)).fetchone()[0]
        _, cost = store.usage(r.id)
        line = RunLine(r, {"planned": planned, **{k: counts.get(k, 0) for k in
                                                  ("succeeded", "quarantined", "failed", "canceled")},
                           "rechunked": counts.get("split", 0), "retries": store.retries(r.id),
                           "open": sum(counts.get(k, 0) for k in ("planned", "submitting", "submitted"))},
                       None, cost)
    if detail:
        line = RunLine(line.run, line.requests, line.findings, line.cost_usd,
                       tuple(store.batches(r.id)), tuple(store.notes(r.id)))
    return line


def list_runs(state_path: Path, statuses: tuple[str, ...] = RUN_STATUSES, limit: int | None = None) -> list[RunLine]:
    with translated(state_path):
        store = open_readonly(state_path)
        if store is None:
            return []
        with store:
            return [_line(store, r) for r in store.runs(statuses or RUN_STATUSES, limit)]


def status(state_path: Path, run_id: int | None = None) -> RunLine | None:
    """The given run, else the unfinished one, else the latest; None when the state has no run."""
    with translated(state_path):
        store = open_readonly(state_path)
        if store is None:
            return None
        with store:
            r = store.run(run_id) if run_id else (store.active_run() or store.latest_run())
            return _line(store, r, detail=True) if r else None



