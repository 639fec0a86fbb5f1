"""The review: per-file calls in parallel, then cross-file, then aggregate.

`plan()` computes what `review()` would send, without sending anything, for
`--dry-run` and budgets. Both share the same task list and cache policy, so the
estimate describes the real run.

Prompt cache policy: every call starts with the same system prefix (rubric and
repository guidelines) marked `cache_control`. A cache entry becomes readable
only once the response of the request writing it *begins* (anthropic.md §3a),
so per-file calls launched together would all pay the write. When there are
two or more per-file calls (and `config.prewarm`, "cache lead call", is on),
the first one is sent alone and streamed; the others are launched when its
`message_start` arrives, and read what it wrote. No extra request is billed:
a `max_tokens: 0` pre-warm cannot carry `output_config.format` (400), and one
without it would render another prompt than the format-carrying calls, which
would then miss ("changing output_config.format invalidates any prompt
cache", §2). The cross-file call uses the same schema and reads the prefix
too; the aggregate call uses another schema, which the cache cannot share, so
it is sent without a breakpoint instead of paying a write nobody reads.

Pass 3 verifies (`reviewer.passes.verify`): after the aggregate pass, each
finding at or above `verify_min_severity` goes to an independent verifier call
with the same prefix and tools (under a tool budget of their own,
`max_verify_tool_calls`), concurrently under `max_concurrency`. Their
schema differs from the per-file one, so they cannot read the per-file cache
entry; the first verifier call leads (as above) and the others read what it
wrote. Verification needs the tools: without a repository it is skipped and
the review says so once.

A review always ends: at `config.timeout` seconds (the whole-run deadline), or
at one of `stop_signals`, every call in flight is cancelled and what is done
is kept: per-file answers already received become findings, files without an
answer are failed with the reason, passes not run are said, and the result
carries `incomplete` (issue 11).
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import findings as findings_mod
from . import identity, pricing, prompts, schemas
from .client import CallFailed, ModelClient, Prefix, Stopped, ToolBudget, ToolUse
from .config import Config
from .deadline import Deadline
from .errors import ServiceError
from .models import (
    Diff,
    Failed,
    Finding,
    Incomplete,
    Plan,
    PlannedCall,
    PriorFinding,
    Refutation,
    Rejected,
    ReviewResult,
    Tally,
    Usage,
    Verification,
)
from .passes import aggregate, cross_file, per_file, verify
from .progress import Progress
from .redact import redact
from .repo_view import RepoView
from .tools import DEFINITIONS, ToolBox

# Output is unknown before the call; this is a typical answer with a few findings.
ESTIMATED_OUTPUT_TOKENS = 800
ESTIMATED_FINDINGS_PER_FILE = 2
ESTIMATED_TOKENS_PER_FINDING = 90


@dataclass(frozen=True)
class Prior:
    """Findings of an earlier review, injected as "may already be addressed".

    Each carries an id (`P1`, ...) the model cites in `repeats` when it restates
    one; their lines refer to `head`, the commit under review (the caller
    relocates them, see `reviewer.identity`).
    """

    findings: tuple[PriorFinding, ...] = ()
    head: str | None = None
    refuted: tuple[Refutation, ...] = ()
    """Findings the verifier refuted in earlier reviews, relocated to `head`: a finding of this review that
    is the same problem, its code unchanged (not `changed`), is kept refuted and not sent again."""

    def for_file(self, path: str) -> tuple[PriorFinding, ...]:
        return tuple(p for p in self.findings if p.finding.file == path)


@dataclass
class _Setup:
    tasks: list[per_file.FileTask]
    prefix: Prefix
    cache_ok: bool
    lead: bool
    """The first per-file call goes alone; the others start once its response began."""
    notes: list[str] = field(default_factory=list)
    tools: ToolUse | None = None
    verify_tools: ToolUse | None = None
    """The verifier's tools: the same ones, under a budget of their own (`max_verify_tool_calls`), so per-file
    calls that spent `max_tool_calls` do not leave pass 3 unable to read the code it must quote."""
    tools_note: str = ""
    """Appended to the per-file and cross-file user messages when the tools are on."""
    view: RepoView | None = None
    """The repository at the head commit, when the tools are on: where the verifier's quotes are checked."""
    verify_off: str | None = None
    """Why findings are not verified, said once when there are findings to verify; None: nothing to say."""


def _setup(diff: Diff, config: Config, prior: Prior, only: frozenset[str] | None = None) -> _Setup:
    files = [f for f in diff.files if only is None or f.path in only]
    tasks = [t for f in files for t in per_file.tasks(f, config, prior.for_file(f.path))]
    prefix = Prefix.build(config.guidelines)
    cache_ok = prefix.tokens >= config.cache_min_tokens
    lead = config.prewarm and cache_ok and len(tasks) >= 2
    notes = [t.note for t in tasks if t.note]
    return _Setup(tasks, prefix, cache_ok, lead, notes)


ESTIMATED_TOOL_ROUNDS = 2
"""Tool turns a per-file or cross-file call is assumed to take in an estimate."""
ESTIMATED_TOOL_RESULT_TOKENS = 1_500
"""Tokens of tool results a tool turn is assumed to add to its conversation."""


ESTIMATED_VERIFIED_SHARE = 0.5
"""Share of the expected findings an estimate assumes are at or above `verify_min_severity`."""
ESTIMATED_VERIFY_OUTPUT_TOKENS = 300


def verify_for(config: Config, view: RepoView | None) -> tuple[bool, str | None]:
    """(whether pass 3 verifies findings, why not when a user would want to know).

    `tools = false` asks for today's review, which verifies nothing and needs no
    note; `verify = false`, or no repository to check quotes against, is said.
    """
    if not config.tools:
        return False, None
    if not config.verify:
        return False, "findings were not checked by an independent verifier (verify = false)"
    if view is None:
        return False, ("findings were not checked by an independent verifier: it reads the code through the "
                       "repository tools, and there is no repository at the head commit")
    return True, None


def tools_for(config: Config, view: RepoView | None, why_no_view: str | None = None) -> str | None:
    """Why the repository tools are off for this review, or None when they are on."""
    if not config.tools:
        return "repository tools are off (tools = false)"
    if view is None:
        return why_no_view or "repository tools are off: there is no repository at the head commit (a diff file)"
    return None


def plan(diff: Diff, config: Config, prior: Prior = Prior(), only: frozenset[str] | None = None,
         view: RepoView | None = None, why_no_view: str | None = None) -> Plan:
    """What `review` would send and roughly what it would cost; makes no request."""
    s = _setup(diff, config, prior, only)
    off = tools_for(config, view, why_no_view)
    rounds = 0 if off else min(ESTIMATED_TOOL_ROUNDS, config.max_tool_rounds)
    # The schemas as written, not as transformed for the model (`schemas.for_model`): about the
    # same size, and a dry run then never imports the SDK, which takes a second or more.
    schema_tokens = pricing.estimate_tokens(json.dumps(schemas.findings_answer_schema()))
    agg_schema_tokens = pricing.estimate_tokens(json.dumps(schemas.aggregate_answer_schema()))
    p = s.prefix.tokens
    calls: list[PlannedCall] = []
    usage = Usage()
    cost: float | None = 0.0
    written: set[tuple[str, str]] = set()
    notes = list(s.notes)

    def add(pass_name: str, subject: str, model: str, user_tokens: int, out: int, cached: bool, extra: int,
            tool_rounds: int = 0, schema: str = "findings") -> None:
        nonlocal usage, cost
        if cached and s.cache_ok:
            # A cache entry is per model and per answer schema (output_config.format heads the prefix).
            read = (model, schema) in written
            written.add((model, schema))
            u = Usage(user_tokens + extra, out, 0 if read else p, p if read else 0)
        else:
            u = Usage(user_tokens + extra + p, out)
        if tool_rounds:
            # Each tool turn sends the conversation again: the prefix and the turns so far
            # are read from the cache (automatic caching), the turn's results are written.
            results = ESTIMATED_TOOL_RESULT_TOKENS
            reads = sum(p + user_tokens + extra + (r - 1) * results for r in range(1, tool_rounds + 1))
            u = u + Usage(0, tool_rounds * 150, tool_rounds * results, reads)
            out += tool_rounds * 150
        calls.append(PlannedCall(pass_name, subject, model, u.total_input, out, p if cached else 0))  # type: ignore[arg-type]
        usage = usage + u
        c = pricing.cost(model, u)
        if c is None:
            note = pricing.unknown_price_note(model)
            if note not in notes:
                notes.append(note)
            cost = None
        elif cost is not None:
            cost += c

    if not s.tasks:
        return Plan((), diff.skipped, (), Usage(), 0.0, tuple(notes))
    per_file_model = config.model_for("per_file")
    # No pre-warm call: the first per-file call writes the prefix, the others read it.
    if off and config.tools:
        notes.append(off)
    elif not off:
        notes.append(f"the estimate assumes {rounds} tool turn(s) per per-file and cross-file call, each adding "
                     f"~{ESTIMATED_TOOL_RESULT_TOKENS:,} tokens of results (up to {config.max_tool_rounds} are allowed)")
    for t in s.tasks:
        add("per_file", t.subject, per_file_model, pricing.estimate_tokens(t.user), ESTIMATED_OUTPUT_TOKENS, True,
            schema_tokens, rounds)
    guessed = len(diff.files) * ESTIMATED_FINDINGS_PER_FILE
    cross_user, _ = cross_file.user_message(diff, [], config, prior.findings)
    add("cross_file", "cross_file", config.model_for("cross_file"),
        pricing.estimate_tokens(cross_user) + guessed * ESTIMATED_TOKENS_PER_FINDING,
        ESTIMATED_OUTPUT_TOKENS, True, schema_tokens, rounds)
    agg_user = aggregate.user_message([], prior.findings)
    add("aggregate", "aggregate", config.model_for("aggregate"),
        pricing.estimate_tokens(agg_user) + guessed * ESTIMATED_TOKENS_PER_FINDING,
        guessed * 40, False, agg_schema_tokens)
    verifying, why_not = verify_for(config, view)
    if verifying and not off:
        # What the aggregate pass will leave at or above the floor is unknown: assume a share.
        n = max(1, round(guessed * ESTIMATED_VERIFIED_SHARE))
        sample = Finding(file=s.tasks[0].file.path, severity="warning", issue="x" * 4 * ESTIMATED_TOKENS_PER_FINDING,
                         line=1, category="bug")
        verify_user = pricing.estimate_tokens(verify.user_message(sample, config.max_tool_rounds))
        verify_schema_tokens = pricing.estimate_tokens(json.dumps(schemas.verify_answer_schema()))
        # The verifier's tool budget is its own (max_verify_tool_calls): a turn is assumed to make one
        # call, and once the budget is spent a call answers without reading.
        left = config.max_verify_tool_calls if config.max_verify_tool_result_tokens > 0 else 0
        for k in range(1, n + 1):
            turns = min(rounds, left)
            left -= turns
            add("verify", f"verify (finding {k} of ~{n}, estimated)", config.model_for("verify"), verify_user,
                ESTIMATED_VERIFY_OUTPUT_TOKENS, True, verify_schema_tokens, turns, schema="verify")
        notes.append(f"the estimate assumes {ESTIMATED_VERIFIED_SHARE:.0%} of ~{guessed} expected findings "
                     f"({ESTIMATED_FINDINGS_PER_FILE} per file) reach verify_min_severity ({config.verify_min_severity}) "
                     f"and go to the verifier, each call taking {rounds} tool turn(s) while its own budget lasts "
                     f"(max_verify_tool_calls = {config.max_verify_tool_calls})")
    elif why_not and guessed:
        notes.append(why_not)
    return Plan(tuple(dict.fromkeys(t.file.path for t in s.tasks)), diff.skipped, tuple(calls), usage,
                None if cost is None else round(cost, 6), tuple(notes))


def over_budget(plan: Plan, max_cost: float | None) -> str | None:
    """Why `plan` may not be sent under `max_cost` USD (`--max-cost`, `max_cost`), or None.

    The same rule as the audit's gate: an estimate above the ceiling, or one
    that cannot be made (a model without a known price), is refused.
    """
    return pricing.over_budget(plan.cost_usd, max_cost, bool(plan.calls))


def review(diff: Diff, config: Config, *, prior: Prior = Prior(), only: frozenset[str] | None = None,
           progress: Progress | None = None, stop_signals: Sequence[int] = (),
           view: RepoView | None = None, why_no_view: str | None = None) -> ReviewResult:
    """Run the three passes over `diff`.

    `only` limits the per-file pass to those paths (a re-review reads only files
    changed since the last one); cross-file and aggregate always cover the
    whole diff. `prior` findings are shown to every pass that concerns them.

    A failed per-file call marks its file failed and the review goes on; a failed
    cross-file or aggregate call is noted and its pass skipped. Raises
    ServiceError when a failure would hit every call (bad key, unknown model) or
    when no call at all produced a result.

    At `config.timeout` seconds, or when one of `stop_signals` arrives (the
    handlers are installed for the run, in the main thread only, and the
    previous ones restored), the calls in flight are cancelled and the result
    holds what was done, with `incomplete` set. Raises ServiceError when the
    deadline passed before anything was produced; a signal never raises.

    With `view` (the repository at the head commit) and `config.tools`, the
    per-file and cross-file calls may read it through `reviewer.tools`;
    without it the result says once why the tools are off (`why_no_view`).
    """
    return asyncio.run(_review(diff, config, prior, only, progress or Progress(), tuple(stop_signals), view,
                               why_no_view))


async def _review(diff: Diff, config: Config, prior: Prior, only: frozenset[str] | None,
                  progress: Progress, stop_signals: tuple[int, ...], view: RepoView | None,
                  why_no_view: str | None) -> ReviewResult:
    s = _setup(diff, config, prior, only)
    off = tools_for(config, view, why_no_view)
    if off and config.tools:
        s.notes.append(off)  # wanted but impossible: say so once (tools = false needs no note)
    elif not off and view is not None:
        box = ToolBox(view)
        s.tools = ToolUse(DEFINITIONS, box.run, config.max_tool_rounds,
                          ToolBudget(config.max_tool_calls, config.max_tool_result_tokens))
        s.verify_tools = ToolUse(DEFINITIONS, box.run, config.max_tool_rounds,
                                 ToolBudget(config.max_verify_tool_calls, config.max_verify_tool_result_tokens))
        s.tools_note = prompts.render("tools", rounds=config.max_tool_rounds)
    verifying, s.verify_off = verify_for(config, view if s.tools is not None else None)
    if verifying:
        s.view = view
    if not s.tasks and (only is None or not diff.files):
        return ReviewResult((), (), diff.skipped, (), (), tuple(s.notes))
    deadline = Deadline(config.timeout)
    client = ModelClient(config, deadline, on_in_flight=progress.in_flight)
    loop = asyncio.get_running_loop()
    timer = None if deadline.seconds is None else loop.call_later(deadline.seconds, client.stop, "deadline")
    previous: dict[int, Any] = {}
    if stop_signals and threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, _frame: Any) -> None:
            loop.call_soon_threadsafe(client.stop, signal.Signals(signum).name)
        for sig in stop_signals:
            previous[sig] = signal.signal(sig, on_signal)
    try:
        return await _run(diff, config, prior, progress, s, client, deadline)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if timer is not None:
            timer.cancel()
        progress.stop()
        await client.close()


def _incomplete(client: ModelClient, deadline: Deadline, reviewed: int, total: int, not_run: list[str],
                unfinished: str = "") -> Incomplete:
    why = client.stopped or "stopped"
    if why == "deadline":
        head, signum = f"deadline reached after {deadline.elapsed():.0f} s", None
    else:
        head, signum = f"interrupted by {why} after {deadline.elapsed():.0f} s", int(getattr(signal.Signals, why, 0)) or None
    names = ", ".join(not_run[:-1]) + " and " + not_run[-1] if len(not_run) > 1 else "".join(not_run)
    tail = f"; {names} not run" if not_run else ""
    return Incomplete(f"{head}: {reviewed} of {total} files reviewed{tail}{'; ' + unfinished if unfinished else ''}",
                      signum)


async def _run(diff: Diff, config: Config, prior: Prior, progress: Progress, s: _Setup, client: ModelClient,
               deadline: Deadline) -> ReviewResult:
    answer_schema = schemas.findings_answer_schema()
    notes = list(s.notes)
    progress.start("per-file review", len(s.tasks))
    # The cache lead: the first task's call runs alone until its response begins (it
    # has then written the prefix), so every other per-file call reads the cache.
    began = asyncio.Event() if s.lead else None

    async def one(task: per_file.FileTask, lead: bool) -> dict[str, Any]:
        if began is not None and not lead:
            await began.wait()
        try:
            return await client.ask(
                pass_name="per_file", subject=task.subject, model=config.model_for("per_file"),
                prefix=s.prefix, user=task.user + s.tools_note, schema=answer_schema, began=began if lead else None,
                tools=s.tools,
            )
        finally:
            progress.advance()

    outcomes = await _gather([one(t, i == 0) for i, t in enumerate(s.tasks)])
    progress.stop()

    found: list[Finding] = []
    failed: dict[str, str] = {}
    ledger = _Ledger()
    cut = False
    for task, outcome in zip(s.tasks, outcomes, strict=True):
        if isinstance(outcome, Stopped):
            cut = True
            what = "the deadline was reached" if str(outcome) == "deadline" else f"interrupted by {outcome}"
            failed.setdefault(task.file.path, f"not reviewed: {what} before its answer")
            continue
        if isinstance(outcome, CallFailed):
            where = "" if task.parts == 1 else f"part {task.part}/{task.parts}: "
            failed.setdefault(task.file.path, where + str(outcome))
            continue
        found.extend(ledger.take(outcome["findings"], diff, "per_file", config.max_findings_per_file, task.subject))
    all_files = list(dict.fromkeys(t.file.path for t in s.tasks))
    not_run: list[str] = []

    cross_ok = False
    if client.stopped is None:
        cross_user, cross_note = cross_file.user_message(diff, found, config, prior.findings)
        if cross_note:
            notes.append(cross_note)
        progress.start("cross-file pass", 1)
        try:
            answer = await client.ask(
                pass_name="cross_file", subject="cross_file", model=config.model_for("cross_file"),
                prefix=s.prefix, user=cross_user + s.tools_note, schema=answer_schema, tools=s.tools,
            )
            found.extend(ledger.take(answer["findings"], diff, "cross_file", config.max_findings_per_file, "cross-file pass"))
            cross_ok = True
        except Stopped:
            cut = True
        except CallFailed as exc:
            notes.append(f"cross-file pass failed, its scope was not reviewed: {exc}")
        progress.advance()
        progress.stop()
    if not cross_ok and client.stopped is not None:
        not_run.append("cross-file")

    if s.tasks and len(failed) == len(all_files) and not cross_ok:
        if client.stopped == "deadline":
            raise ServiceError(_incomplete(client, deadline, 0, len(all_files), not_run + ["aggregate"]).message
                               + "; nothing was produced")
        if client.stopped is None:
            first = next(iter(failed.values()))
            raise ServiceError(f"every model call failed, no review was produced (first error: {first})")

    found, flood, dropped = findings_mod.cap_counted(found, config.max_findings_per_review, "this review")
    ledger.over_limit.update(dropped)
    if flood:
        ledger.notes.append(flood)
    if found and client.stopped is not None:
        not_run.append("aggregate")
    elif found:
        progress.start("aggregate pass", 1)
        try:
            groups = await client.ask(
                pass_name="aggregate", subject="aggregate", model=config.model_for("aggregate"),
                prefix=s.prefix.uncached(), user=aggregate.user_message(found, prior.findings),
                schema=schemas.aggregate_answer_schema(),
            )
            before = len(found)
            found, group_notes = findings_mod.apply_groups(found, groups["groups"])
            ledger.merged += before - len(found)
            notes.extend(group_notes)
        except Stopped:
            cut = True
            not_run.append("aggregate")
        except CallFailed as exc:
            notes.append(f"aggregate pass failed, findings are neither deduplicated nor re-rated: {exc}")
        progress.advance()
        progress.stop()

    found, refuted, unfinished = await _verify(found, config, progress, s, client, not_run, notes, prior.refuted,
                                               prior.findings)
    cut = cut or bool(unfinished)
    ledger.refuted_earlier = sum(1 for f in refuted if f.verification is not None and f.verification.refuted_on)
    ledger.confirmed = sum(1 for f in found if f.verification is not None and f.verification.verdict == "confirmed")
    ledger.unverified = sum(1 for f in found if f.verification is not None and f.verification.verdict == "unverified")
    ledger.refuted = len(refuted)

    incomplete = None
    if cut or not_run:
        reviewed_n = sum(1 for p in all_files if p not in failed)
        incomplete = _incomplete(client, deadline, reviewed_n, len(all_files), not_run, unfinished)
        if "aggregate" in not_run and found:
            notes.append("aggregate pass not run: findings are neither deduplicated nor re-rated")

    tally = ledger.tally()
    notes.extend(ledger.notes)
    notes.extend(client.notes)
    return ReviewResult(
        findings=tuple(findings_mod.finalize(findings_mod.redacted(f) for f in found)),
        reviewed=tuple(p for p in dict.fromkeys(t.file.path for t in s.tasks) if p not in failed),
        skipped=diff.skipped,
        failed=tuple(Failed(path, redact(error)) for path, error in failed.items()),
        calls=tuple(client.calls),
        notes=tuple(redact(n) for n in notes),
        tally=tally,
        incomplete=incomplete,
        refuted=tuple(findings_mod.finalize(findings_mod.redacted(f) for f in refuted)),
    )


def remembered(f: Finding, refutations: Sequence[Refutation]) -> Refutation | None:
    """The earlier refutation `f` restates (README: A finding's identity), when its code has not changed since."""
    for r in refutations:
        if not r.changed and identity.same_problem(f, r.finding, r.finding.line):
            return r
    return None


def _not_repeats(found: list[Finding], targets: list[int], posted: Sequence[PriorFinding],
                 notes: list[str]) -> list[int]:
    """The targets that do not restate a finding posted by an earlier review of the pull request.

    A restatement is not posted again (`publish.github.decide`, by the same
    identity rule), so checking it again would be paid for nothing: it is left
    unchecked (no verification), like a finding under `verify_min_severity`.
    """
    if not posted:
        return targets
    earlier = [p.finding for p in posted]
    ids = {p.id: j for j, p in enumerate(posted)}
    subset = [found[i] for i in targets]
    citations = {k: ids[f.repeats] for k, f in enumerate(subset) if f.repeats in ids}
    pairs = identity.match(subset, earlier, {j: f.line for j, f in enumerate(earlier)}, citations)
    if pairs:
        notes.append(f"{len(pairs)} finding(s) restate one posted by an earlier review: not posted again, "
                     "so not sent to the verifier")
    return [i for k, i in enumerate(targets) if k not in pairs]


def _still_refuted(found: list[Finding], targets: list[int], refutations: Sequence[Refutation],
                   notes: list[str]) -> list[int]:
    """Keep refuted, in `found`, the targets that restate a remembered refutation; the others, to be verified."""
    ask = []
    for i in targets:
        r = remembered(found[i], refutations)
        if r is None:
            ask.append(i)
            continue
        # The earlier fingerprint, like a repeat of a posted finding: the identity survives rewording.
        found[i] = found[i].with_(fingerprint=r.finding.fingerprint, verification=Verification(
            "refuted", f"refuted on {r.sha[:7]}: {r.reason}", refuted_on=r.sha))
    if len(ask) < len(targets):
        notes.append(f"{len(targets) - len(ask)} finding(s) restate one the verifier refuted in an earlier review, "
                     "whose code has not changed since: kept refuted with the earlier reason, not checked again")
    return ask


async def _verify(found: list[Finding], config: Config, progress: Progress, s: _Setup, client: ModelClient,
                  not_run: list[str], notes: list[str], refutations: Sequence[Refutation] = (),
                  posted: Sequence[PriorFinding] = ()) -> tuple[list[Finding], list[Finding], str]:
    """Pass 3's verification (`reviewer.passes.verify`): (kept findings, refuted ones, what did not finish).

    Every finding at or above the floor comes back with its `verification`;
    one without a verdict (a failed call, a run stopped first) is kept with
    its rating, marked unverified. One that restates a remembered refutation
    (`refutations`, from earlier reviews of the pull request) whose code has
    not changed is refuted again without a call. Appends to `not_run` when the
    run was stopped before verification began, and says once why nothing is
    verified.
    """
    targets = [i for i, f in enumerate(found) if verify.wanted(f, config.verify_min_severity)]
    if not targets:
        return found, [], ""
    if s.view is None or s.verify_tools is None:
        if s.verify_off:
            notes.append(s.verify_off)
        return found, [], ""
    found = list(found)
    targets = _not_repeats(found, targets, posted, notes)
    targets = _still_refuted(found, targets, refutations, notes)
    if not targets:
        return _split(found) + ("",)
    if client.stopped is not None:
        not_run.append("verification")
        for i in targets:
            found[i] = verify.unchecked(found[i], "verification did not run: the review was stopped first")
        return found, [], ""
    view, tools = s.view, s.verify_tools
    schema = schemas.verify_answer_schema()
    model = config.model_for("verify")
    # Verifier calls share a prefix the per-file cache entry cannot serve (another schema):
    # the first one writes it alone, the others start once its response has begun.
    began = asyncio.Event() if config.prewarm and s.cache_ok and len(targets) >= 2 else None
    progress.start("verification", len(targets))

    async def check(f: Finding, lead: bool) -> dict[str, Any]:
        if began is not None and not lead:
            await began.wait()
        try:
            return await client.ask(pass_name="verify", subject=verify.subject(f), model=model, prefix=s.prefix,
                                    user=verify.user_message(f, config.max_tool_rounds), schema=schema,
                                    began=began if lead else None, tools=tools)
        finally:
            progress.advance()

    outcomes = await _gather([check(found[i], k == 0) for k, i in enumerate(targets)])
    progress.stop()
    stopped = 0
    for i, outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, Stopped):
            stopped += 1
            what = "the deadline was reached" if str(outcome) == "deadline" else f"interrupted by {outcome}"
            found[i] = verify.unchecked(found[i], f"verification did not finish: {what}")
        elif isinstance(outcome, CallFailed):
            found[i] = verify.unchecked(found[i], f"the verifier's call failed: {outcome}")
        else:
            found[i] = await asyncio.to_thread(verify.judge, found[i], outcome, view)
    failed = sum(1 for i, o in zip(targets, outcomes, strict=True) if isinstance(o, CallFailed) and not isinstance(o, Stopped))
    if failed:
        notes.append(f"{failed} verifier call(s) failed; those findings are kept with the aggregate pass's rating, "
                     "marked unverified")
    unfinished = (f"verification did not finish ({len(targets) - stopped} of {len(targets)} findings checked; "
                  "the others keep the aggregate pass's rating, marked unverified)") if stopped else ""
    return _split(found) + (unfinished,)


def _split(found: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(findings kept, findings refuted)."""
    refuted = [f for f in found if f.verification is not None and f.verification.verdict == "refuted"]
    return [f for f in found if f.verification is None or f.verification.verdict != "refuted"], refuted


@dataclass
class _Ledger:
    """Counts every finding the calls returned, and where each went (models.Tally)."""

    returned: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    over_limit: Counter[str] = field(default_factory=Counter)
    merged: int = 0
    confirmed: int = 0
    refuted: int = 0
    unverified: int = 0
    refuted_earlier: int = 0
    notes: list[str] = field(default_factory=list)
    floods: list[str] = field(default_factory=list)

    def take(self, answers: Sequence[Any], diff: Diff, pass_name: str, limit: int, scope: str) -> list[Finding]:
        """Anchor one call's answers and cap them; what is not kept is counted."""
        self.returned += len(answers)
        anchored, rejected = findings_mod.anchor_all(answers, diff, pass_name)
        for r in rejected:
            self.rejected[r.path] += r.count
        kept, flood, dropped = findings_mod.cap_counted(anchored, limit, scope)
        self.over_limit.update(dropped)
        if flood:
            self.floods.append(flood)
        return kept

    def tally(self) -> Tally:
        if len(self.floods) <= 3:
            self.notes[:0] = self.floods
        else:
            # One note, not one per file: the per-file counts are in the tally (and the summary's top files).
            per_call = sum(self.over_limit.values())
            self.notes.insert(0, f"{len(self.floods)} call(s) returned more findings than max_findings_per_file; "
                                 f"{per_call} finding(s) over the limits in all were counted, not kept "
                                 f"(per file in stats.tally.over_limit)")
        rejected = tuple(Rejected(redact(path), n, findings_mod.REJECTED_NOT_IN_DIFF)
                         for path, n in self.rejected.most_common())
        if rejected:
            self.notes.append("rejected " + "; ".join(
                f"{r.count} finding(s) on '{r.path[:200]}'" for r in rejected[:20])
                + (f"; and {sum(r.count for r in rejected[20:])} on {len(rejected) - 20} more path(s), listed in stats.tally"
                   if len(rejected) > 20 else "")
                + f": {findings_mod.REJECTED_NOT_IN_DIFF}")
        return Tally(self.returned, rejected, tuple(self.over_limit.most_common()), self.merged,
                     self.confirmed, self.refuted, self.unverified, self.refuted_earlier)


async def _gather(coros: Sequence[Any]) -> list[Any]:
    """Results in order, CallFailed kept as a value; any other error cancels the rest."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    pending: set[asyncio.Future[Any]] = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                exc = t.exception()
                if exc is not None and not isinstance(exc, CallFailed):
                    raise exc
    finally:
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return [t.exception() or t.result() for t in tasks]
