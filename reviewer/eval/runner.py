"""`reviewer eval plan` and `run` as library functions: cases -> outcomes, resumable.

Each case is reviewed by the real pipeline (`engine.review`) with the user's
configuration: its diff comes from `git diff` of the evaluated commit and the
case's commit (`workspace`), and the repository tools read the case's tree.
Cases run concurrently (`cases_at_once`), each with its own `max_concurrency`.

Resume: a run is named by a key over everything that decides what is sent
(the commit, the cases, the configuration, the models, the prompts, the
mode). Every finished case is appended to `outcomes.jsonl` in the run's folder,
flushed and synced, before the next one is counted: a run killed at any
moment and started again reviews only the cases without an outcome. In sync
mode a case in flight when the process died is reviewed again (at most
`cases_at_once` of them); `--batch` (`batch.py`) pays every request once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import engine, lazy, pricing, prompts
from .. import pull_request as pull_request_mod
from .. import source as source_mod
from ..audit.plan import OWN_DIR, private_dir
from ..config import Config
from ..deadline import Deadline
from ..errors import ReviewerError, UsageError
from ..models import Diff, Finding, Usage
from ..models import Plan as ReviewPlan
from ..progress import Progress
from ..redact import redact
from ..repo_view import RepoView
from .models import Case, CaseOutcome, CasePlan, CaseStatus
from .workspace import Workspace

DEFAULT_PLANTED = 40
DEFAULT_CONTROLS = 10

TEST_GLOBS: tuple[str, ...] = (
    "test/*", "tests/*", "*/test/*", "*/tests/*", "__tests__/*", "*/__tests__/*", "spec/*", "*/spec/*",
    "test_*.py", "*/test_*.py", "*_test.py", "conftest.py", "*/conftest.py", "*_test.go", "*.test.*", "*.spec.*",
    "*Test.java", "*Tests.java",
)
"""Test code, where no case is planted by default: a review is measured on the code it guards.
A swapped `assertEqual(a, b)` changes no behaviour, and teams rarely want findings on tests."""


@dataclass(frozen=True)
class Settings:
    repo_dir: Path
    config: Config
    rev: str = "HEAD"
    seed: int = 1
    planted: int = DEFAULT_PLANTED
    controls: int = DEFAULT_CONTROLS
    kinds: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_tests: bool = False
    """Plant in test code too (`TEST_GLOBS`)."""
    max_cost: float | None = None
    min_severity: str = "warning"
    batch: bool = False
    cases_at_once: int = 4
    timeout: float | None = None
    """Deadline of the whole command; then what is done is reported, marked incomplete."""
    state_dir: Path | None = None
    """Where the scratch repository and the runs' outcomes live [default: REPO_DIR/.reviewer/eval]."""

    @property
    def home(self) -> Path:
        return self.state_dir or self.repo_dir / OWN_DIR / "eval"


@dataclass(frozen=True)
class CaseEstimate:
    case_id: str
    plan: ReviewPlan


@dataclass(frozen=True)
class EvalPlan:
    """What `run` would do: the cases, what each would cost, and the run they belong to."""

    cases: CasePlan
    estimates: tuple[CaseEstimate, ...]
    key: str
    """Names the run: the same key resumes the same evaluation."""
    done: frozenset[str] = frozenset()
    """Cases that already have an outcome under this key (a resumed run skips them)."""
    tools: bool = True
    notes: tuple[str, ...] = ()

    @property
    def cost_usd(self) -> float | None:
        """The estimate of what is left to send (cases already done cost nothing more)."""
        costs = [e.plan.cost_usd for e in self.estimates if e.case_id not in self.done]
        if any(c is None for c in costs):
            return None
        return round(sum(c for c in costs if c is not None), 6)

    @property
    def calls(self) -> int:
        return sum(len(e.plan.calls) for e in self.estimates if e.case_id not in self.done)


@dataclass(frozen=True)
class RunOutcome:
    status: str
    """completed | incomplete (the deadline or a signal stopped it: rerun to finish) | refused"""
    message: str
    plan: EvalPlan
    outcomes: tuple[CaseOutcome, ...] = ()
    folder: Path | None = None
    started: str = ""
    finished: str = ""
    signal: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def run_key(cases: CasePlan, config: Config, batch: bool) -> str:
    """What decides the answers: a change to any part starts another evaluation."""
    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if k not in ("timeout", "max_cost", "max_concurrency", "source", "fail_on", "max_retries",
                             "request_timeout")}
    payload = json.dumps([cases.commit, cases.seed, [c.id for c in cases.cases], settings, prompts.version(),
                          "batch" if batch else "sync"], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def generate(s: Settings, view: RepoView) -> CasePlan:
    from . import cases as cases_mod  # the generator parses every covered file: only when asked

    exclude = s.exclude if s.include_tests else s.exclude + TEST_GLOBS
    plan = cases_mod.generate(view, seed=s.seed, planted=s.planted, controls=s.controls, kinds=s.kinds or None,
                              include=s.include, exclude=exclude)
    if not s.include_tests:
        plan = dataclasses.replace(plan, notes=plan.notes + (
            "test code is left out (--include-tests plants there too)",))
    return plan


def case_source(case: Case, commit: str) -> source_mod.Source:
    """The case as a diff source without a commit object (planning sends and writes nothing)."""
    data = case.new_text.encode("utf-8", "surrogateescape")
    return source_mod.Source(f"case {case.id}", case.diff.encode("utf-8", "surrogateescape"),
                             read_head=lambda paths: {p: data if p == case.path else None for p in paths})


def plan(s: Settings) -> EvalPlan:
    """The cases and the estimate; sends nothing and writes nothing."""
    view = RepoView(s.repo_dir, s.rev)
    try:
        cases = generate(s, view)
        off = engine.tools_for(s.config, view)
        estimates = []
        for case in cases.cases:
            parsed = pull_request_mod.parse(case_source(case, cases.commit), s.config)
            if s.batch:
                estimates.append(CaseEstimate(case.id, batch_estimate(parsed, s.config)))
            else:
                estimates.append(CaseEstimate(case.id, engine.plan(parsed, s.config, view=view)))
    finally:
        view.close()
    key = run_key(cases, s.config, s.batch)
    done = frozenset(o.case_id for o in load_outcomes(s.home / "runs" / key))
    notes = list(cases.notes)
    tools = off is None and not s.batch
    if s.batch:
        notes.append("batch mode reviews each case's per-file pass through the Message Batches API, without "
                     "repository tools, cross-file pass or verifier (a batch request cannot run a tool loop)")
    elif off:
        notes.append(off)
    if done:
        notes.append(f"{len(done)} of {len(cases.cases)} case(s) already reviewed under this run ({key}): "
                     "not sent again")
    return EvalPlan(cases, tuple(estimates), key, done, tools, tuple(notes))


def batch_estimate(parsed: Diff, config: Config) -> ReviewPlan:
    """The per-file pass alone, at batch prices (the cross-file and later passes are not run in batch mode)."""
    full = engine.plan(parsed, config.with_overrides(tools=False), view=None)
    calls = tuple(c for c in full.calls if c.pass_name == "per_file")
    # Uncached: a batch's requests may or may not read a cache entry, so the estimate assumes none.
    usage = Usage(sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls))
    costs = [pricing.cost(c.model, Usage(c.input_tokens, c.output_tokens), batch=True) for c in calls]
    cost = None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 6)
    return ReviewPlan(full.reviewed, full.skipped, calls, usage, cost, ())


def over_budget(p: EvalPlan, max_cost: float | None) -> str | None:
    return pricing.over_budget(p.cost_usd, max_cost, p.calls > 0)


# --------------------------------------------------------------------- outcomes


def load_outcomes(folder: Path) -> list[CaseOutcome]:
    """The outcomes recorded under a run; a line cut by a crash (the last one) is ignored."""
    path = folder / "outcomes.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    out: dict[str, CaseOutcome] = {}
    for line in lines:
        try:
            o = outcome_from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue  # a torn write: that case is reviewed again
        out[o.case_id] = o
    return list(out.values())


def outcome_to_dict(o: CaseOutcome) -> dict[str, Any]:
    return {
        "case_id": o.case_id, "status": o.status, "findings": [f.to_dict() for f in o.findings],
        "input_tokens": o.input_tokens, "output_tokens": o.output_tokens, "cost_usd": o.cost_usd,
        "seconds": round(o.seconds, 3), "error": o.error, "mode": o.mode, "tools": o.tools, "notes": list(o.notes),
    }


def outcome_from_dict(d: dict[str, Any]) -> CaseOutcome:
    return CaseOutcome(
        case_id=d["case_id"], status=d["status"], findings=tuple(Finding.from_dict(f) for f in d["findings"]),
        input_tokens=d["input_tokens"], output_tokens=d["output_tokens"], cost_usd=d["cost_usd"],
        seconds=d["seconds"], error=d.get("error"), mode=d.get("mode", "sync"), tools=d.get("tools", False),
        notes=tuple(d.get("notes", ())),
    )


class _Journal:
    """Appends finished outcomes, one JSON line each, synced before the case counts as done."""

    def __init__(self, folder: Path) -> None:
        try:
            private_dir(folder)
        except OSError as exc:
            raise UsageError(f"{folder}: cannot create the eval's state folder: {exc.strerror or exc}") from None
        self.path = folder / "outcomes.jsonl"
        self._lock = threading.Lock()

    def add(self, o: CaseOutcome) -> None:
        line = json.dumps(outcome_to_dict(o), sort_keys=True) + "\n"
        with self._lock:
            try:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise UsageError(f"{self.path}: cannot record the case's outcome: {exc.strerror or exc}") from None


# --------------------------------------------------------------------- running


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run(s: Settings, progress: Progress, *, stopping: threading.Event | None = None,
        require_credentials: Callable[[], None] | None = None) -> RunOutcome:
    """Review every case of the plan not reviewed yet under its key; the outcomes of all of them.

    `stopping` set (by a signal handler) stops starting cases; the ones in
    flight are abandoned (each was recorded only once finished).
    """
    started = now()
    deadline = Deadline(s.timeout)
    p = plan(s)
    refusal = over_budget(p, s.max_cost)
    if refusal:
        return RunOutcome("refused", refusal, p, started=started)
    folder = s.home / "runs" / p.key
    pending = [c for c in p.cases.cases if c.id not in p.done]
    if pending and require_credentials is not None:
        require_credentials()
    if s.batch:
        from . import batch  # the audit's state machinery: only for --batch

        return batch.run(s, p, folder, progress, deadline, started)
    journal = _Journal(folder)
    try:
        # What the run is, next to its outcomes: a person can see which cases an old folder held.
        (folder / "plan.json").write_text(json.dumps(
            {"commit": p.cases.commit, "seed": p.cases.seed, "cases": [c.to_dict() for c in p.cases.cases]}), "utf-8")
    except OSError as exc:
        raise UsageError(f"{folder}: cannot write the eval's state: {exc.strerror or exc}") from None
    stopping = stopping or threading.Event()
    if pending:
        # Imported once here: cases reviewed in threads would each race to import the SDK.
        lazy.warm("anthropic")
        lazy.ready("anthropic")
    workspace = Workspace(s.repo_dir, s.home / "cases.git") if pending else None
    progress.log(f"run {p.key}: {len(p.cases.cases)} case(s), {len(pending)} to review, "
                 f"estimated {pricing.usd(p.cost_usd, approx=True)}")
    progress.start("eval cases", len(pending))
    cut: str | None = None

    def one(case: Case) -> CaseOutcome | None:
        if stopping.is_set() or deadline.expired():
            return None
        assert workspace is not None
        o = review_case(s, case, p.cases.commit, workspace, deadline)
        if o.status == "done":
            journal.add(o)
        progress.advance()
        return o

    fresh: list[CaseOutcome] = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, s.cases_at_once), thread_name_prefix="eval")
    try:
        futures = [pool.submit(one, c) for c in pending]
        for future in concurrent.futures.as_completed(futures):
            o = future.result()
            if o is not None:
                fresh.append(o)
            if stopping.is_set():
                break
    finally:
        pool.shutdown(wait=not stopping.is_set(), cancel_futures=True)
        progress.stop()
    if stopping.is_set():
        cut = "interrupted"
    elif deadline.expired() and len(fresh) < len(pending):
        cut = f"--timeout {s.timeout:g}s reached"
    outcomes = {o.case_id: o for o in load_outcomes(folder)}
    for o in fresh:
        outcomes.setdefault(o.case_id, o)
    ordered = tuple(outcomes[c.id] for c in p.cases.cases if c.id in outcomes)
    left = len(p.cases.cases) - sum(1 for o in ordered if o.status == "done")
    status = "incomplete" if cut or left else "completed"
    message = (f"{len(p.cases.cases) - left} of {len(p.cases.cases)} case(s) reviewed"
               + (f"; {cut}" if cut else "")
               + (f"; {left} left: `reviewer eval run` with the same options finishes it" if left else ""))
    return RunOutcome(status, message, p, ordered, folder, started, now())


def review_case(s: Settings, case: Case, commit: str, workspace: Workspace, deadline: Deadline) -> CaseOutcome:
    """One case through the real pipeline; a failure is the case's outcome, never the run's end."""
    began = time.monotonic()
    left = deadline.left()
    timeout = s.config.timeout if left is None else min(left, s.config.timeout or left)
    config = s.config.with_overrides(timeout=max(timeout, 1.0) if timeout is not None else None)
    view = None
    try:
        head = workspace.commit(commit, case)
        src = source_mod.from_git(workspace.path, commit, head)
        view = src.view
        parsed = pull_request_mod.parse(src, config)
        result = engine.review(parsed, config, view=view)
    except ReviewerError as exc:
        return CaseOutcome(case.id, "failed", error=redact(str(exc)), seconds=time.monotonic() - began,
                           tools=view is not None and config.tools)
    finally:
        if view is not None:
            view.close()
    usage = result.usage
    status: CaseStatus = "incomplete" if result.incomplete is not None else "done"
    if result.failed and not result.reviewed:
        status = "failed"
    error = result.incomplete.message if result.incomplete else (
        "; ".join(f"{f.path}: {f.error}" for f in result.failed) or None)
    return CaseOutcome(
        case.id, status, result.findings, usage.total_input, usage.output_tokens, result.cost_usd,
        time.monotonic() - began, error, "sync", engine.tools_for(config, view) is None, result.notes,
    )


def config_digest(config: Config) -> str:
    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if k not in ("timeout", "max_cost", "max_concurrency", "source", "fail_on")}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def scored(outcome: RunOutcome, s: Settings) -> Any:
    """The run's `score.Score`: every case of the plan, the missing ones counted as such."""
    from . import score as score_mod

    cfg = s.config
    models = tuple(dict.fromkeys(cfg.model_for(p) for p in (
        ("per_file",) if s.batch else ("per_file", "cross_file", "aggregate", "verify"))))
    modes = {o.mode for o in outcome.outcomes}
    run = score_mod.Run(
        commit=outcome.plan.cases.commit, seed=outcome.plan.cases.seed, models=models,
        mode="mixed" if len(modes) > 1 else ("batch" if s.batch else "sync"),
        tools=outcome.plan.tools, started_at=outcome.started or None, finished_at=outcome.finished or None,
        config_digest=config_digest(cfg),
    )
    notes = tuple(outcome.plan.notes) + ((f"incomplete: {outcome.message}",) if outcome.status != "completed" else ())
    plan_with_notes = dataclasses.replace(outcome.plan.cases, notes=tuple(dict.fromkeys(notes)))
    return score_mod.score(plan_with_notes, outcome.outcomes, min_severity=s.min_severity, run=run)


def outputs(result: Any, written: Sequence[Path]) -> dict[str, Any]:
    """The Action's outputs: the headline numbers and where the reports are."""
    def value(e: Any) -> str:
        return "" if e is None or e.value is None else f"{e.value:.4f}"
    return {"recall": value(result.recall), "precision": value(result.precision), "noise": value(result.noise),
            "report": str(written[-1]) if written else ""}
