"""`reviewer eval run --batch`: the cases' per-file pass through the Message Batches API.

Half the price of the synchronous run, through the audit's machinery, so the
same guarantees hold: a canary first, every request submitted exactly once
(an intent recorded before each batch is created, reconciled after a crash),
answers recorded as they are read, and a run killed at any moment continued
by the next `reviewer eval run` with the same options. The state is a file of
the audit's format (`audit/state.py`) in the run's folder, with runs of kind
"eval": each request holds the case's per-file prompt as the review renders
it (`passes/per_file.py`), and its answer is kept as the model gave it, then
anchored here against the case's diff exactly as the review anchors a
per-file answer.

What a batch cannot do is said in the report: no repository tools (a batch
request cannot run a tool loop), no cross-file pass and no verifier (they
need the per-file answers first). The scores are of the per-file pass alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import findings as findings_mod
from .. import pull_request as pull_request_mod
from ..audit import collect
from ..audit import runner as audit_runner
from ..audit.state import Run, Store, now, pack, translated
from ..client import Prefix
from ..config import Config
from ..deadline import Deadline
from ..passes import per_file
from ..progress import Progress
from ..redact import redact
from ..source import env_seconds
from .models import Case, CaseOutcome

if TYPE_CHECKING:  # runner imports this module when --batch is given: no import at run time
    from .runner import EvalPlan, RunOutcome, Settings

CANARY = 2
"""Requests sent synchronously and checked before any batch (the audit's canary)."""
STATE_FILE = "batch.db"


def _custom_id(case: Case, part: int) -> str:
    # The API allows [a-zA-Z0-9_-]{1,64}; case ids are a kind and a hash, well under that.
    return f"{case.id[:52]}-p{part}"


def requests_of(cases: tuple[Case, ...], config: Config) -> list[dict[str, Any]]:
    """The column values of every case's per-file requests (one per file part), in case order."""
    rows = []
    for case in cases:
        parsed = pull_request_mod.parse(_source(case), config)
        for file in parsed.files:
            for task in per_file.tasks(file, config):
                key = hashlib.sha256(json.dumps([config.model_for("per_file"), task.user]).encode()).hexdigest()[:32]
                cid = _custom_id(case, task.part)
                rows.append({
                    "base_id": cid, "custom_id": cid, "key": key, "path": file.path, "start_line": task.part,
                    "end_line": task.part, "total_lines": task.parts, "tokens": len(task.user) // 4,
                    "state": "planned", "text": pack(task.user),
                })
    return rows


def _source(case: Case) -> Any:
    from .runner import case_source  # one definition of a case as a diff source

    return case_source(case, "")


def run(s: Settings, p: EvalPlan, folder: Path, progress: Progress, deadline: Deadline,
        started: str) -> RunOutcome:
    """Send (or continue sending) the plan's pending cases; record every finished case in the journal."""
    from .runner import RunOutcome, _Journal, load_outcomes

    journal = _Journal(folder)
    state_path = folder / STATE_FILE
    pending = tuple(c for c in p.cases.cases if c.id not in p.done)
    by_id = {c.id: c for c in p.cases.cases}
    audit_settings = audit_runner.Settings(
        repo_dir=s.repo_dir, state_path=state_path, config=s.config, wait=True, timeout=s.timeout,
        poll_seconds=env_seconds("REVIEWER_AUDIT_POLL_SECONDS", 10.0, positive=True),
    )

    failed: list[CaseOutcome] = []

    def finish(store: Store, run: Run) -> audit_runner.Outcome:
        outcomes = _outcomes(store, run, by_id, s.config)
        for o in outcomes:
            if o.status == "done":
                journal.add(o)
            else:
                failed.append(o)  # reported with its reason; sent again by the next run
        collect.finish(store, run, {"cases": len(outcomes)})
        return audit_runner.Outcome("completed", f"{len(outcomes)} case(s) answered", store.run(run.id))

    message = ""
    status = "completed"
    if pending:
        with translated(state_path), Store(state_path, lock=True, log=progress.log,
                                           command="reviewer eval run --batch") as store:
            active = store.active_run()
            if active is None:
                if store.latest_run(("completed",)) is not None:
                    # Answered, but some cases failed: their requests are sent again in a new run.
                    progress.log("the previous batch run completed; its failed cases are sent again")
                active = _record(store, pending, s.config, s.repo_dir, p.cases.commit, p.key)
                progress.log(f"eval batch run {active.id}: {len(pending)} case(s), "
                             f"{len(store.requests(active.id, with_text=False))} request(s)")
            else:
                progress.log(f"eval batch run {active.id} is unfinished: continuing it")
            done = audit_runner.drive(store, active, audit_settings, progress, deadline, finish=finish)
            store.checkpoint()
        if done.status != "completed":
            status, message = "incomplete", redact(done.message)
    outcomes = {o.case_id: o for o in load_outcomes(folder)}
    for o in failed:
        outcomes.setdefault(o.case_id, o)
    ordered = tuple(outcomes[c.id] for c in p.cases.cases if c.id in outcomes)
    left = len(p.cases.cases) - sum(1 for o in ordered if o.status == "done")
    if left and status == "completed":
        status = "incomplete"
    summary = f"{len(ordered)} of {len(p.cases.cases)} case(s) reviewed through the Batches API"
    if message:
        summary += f"; {message}"
    elif left:
        summary += f"; {left} failed: `reviewer eval run --batch` with the same options sends them again"
    return RunOutcome(status, summary, p, ordered, folder, started, now())


def _record(store: Store, cases: tuple[Case, ...], config: Config, repo_dir: Path, commit: str, key: str) -> Run:
    rows = requests_of(cases, config)
    for i, row in enumerate(rows):
        row["canary"] = int(i < CANARY)
    prefix = Prefix.build(config.guidelines)
    model = config.model_for("per_file")
    fields = {
        "status": "active", "kind": "eval", "repo_dir": str(repo_dir), "commit_sha": commit, "tree_key": key,
        "model": model, "prompt_version": key, "context_digest": key, "system_json": list(prefix.blocks),
        "max_tokens": config.max_output_tokens, "canary": min(CANARY, len(rows)),
        "canary_passed": int(not rows), "max_attempts": 3, "max_findings": config.max_findings_per_file,
        "files": len(cases), "skipped": 0, "chunks": len(rows), "carried": 0, "deduplicated": 0,
        "estimate_usd": None,
    }
    # run_chunks hold each request's key, so the answers survive the run's completion (`collect.finish`).
    chunks = [(row["custom_id"], 1, 1, row["key"]) for row in rows]
    return store.run(store.insert_run(fields, [(c.id, None) for c in cases], chunks, rows))


def _outcomes(store: Store, run: Run, cases: dict[str, Case], config: Config) -> list[CaseOutcome]:
    """Each case of the run: its answers anchored to its diff, or why it has none."""
    rows = store.db.execute(
        "SELECT r.base_id, r.state, r.reason, r.input_tokens + r.cache_creation_input_tokens + "
        "r.cache_read_input_tokens, r.output_tokens, r.cost_usd, r.unpriced, res.findings_json "
        "FROM requests r LEFT JOIN results res ON res.key = r.key "
        "WHERE r.run_id = ? ORDER BY r.id", (run.id,)).fetchall()
    per_case: dict[str, list[Any]] = {}
    for row in rows:
        per_case.setdefault(row[0].rsplit("-p", 1)[0], []).append(row)
    out = []
    for prefix, parts in per_case.items():
        case = next((c for cid, c in cases.items() if cid[:52] == prefix), None)
        if case is None:
            continue
        tokens_in = sum(r[3] for r in parts)
        tokens_out = sum(r[4] for r in parts)
        cost = None if any(r[6] for r in parts) else round(sum(r[5] for r in parts), 6)
        failed = [r for r in parts if r[1] != "succeeded"]
        if failed:
            out.append(CaseOutcome(case.id, "failed", (), tokens_in, tokens_out, cost, 0.0,
                                   redact(f"{failed[0][1]}: {failed[0][2] or 'no answer'}"), "batch", False))
            continue
        answers = [a for r in parts for a in json.loads(r[7] or "[]")]
        diff = pull_request_mod.parse(_source(case), config)
        anchored, _rejected = findings_mod.anchor_all(answers, diff, "per_file")
        kept, _flood = findings_mod.cap(anchored, config.max_findings_per_file, case.path)
        found = tuple(findings_mod.finalize(findings_mod.redacted(f) for f in kept))
        out.append(CaseOutcome(case.id, "done", found, tokens_in, tokens_out, cost, 0.0, None, "batch", False))
    return out

