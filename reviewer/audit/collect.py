"""Receiving: poll the open batches, stream their results, give every request a final state.

Results are read with the SDK's `batches.results()`, a lazy JSONL stream, and
matched by custom_id to the batch's requests, so memory stays flat whatever
the batch size. Each result is one state transition; they are committed in
groups of `COMMIT_EVERY` (a crash loses at most one group, and the results of
an ended batch can be read again: a request already final is skipped).

Per result:

* succeeded: the answer is checked against the full findings schema. A valid
  one is anchored to the chunk's lines and stored under the chunk's content
  key (`results`); an invalid one (refusal, cut off, not JSON, off-schema) is
  *quarantined* with the reason. Both were billed: their usage is recorded.
* errored: a context-length error re-chunks the request into smaller parts
  (new requests); another invalid request fails at once (sending it again
  would fail again); anything else is retried like an expired one.
* expired (or missing from the results): sent again in a new batch under a new
  custom_id, until the run's `max_attempts`; then failed, with the reason.
* canceled: final.

A failure the part's own content explains (an invalid answer, a request the
API rejected, a single line too long for the model) is remembered under its
content key, so later runs leave the part out until the key changes; a
transient one (errored, expired, a lost batch) is not, so the next run sends
it again. An answer, or a transient failure, replaces what was remembered.
A re-chunking is remembered too: later runs plan the parts, not the whole.

Every call is bounded by the run's `Deadline` (`audit run --timeout`); at the
deadline the results read so far are committed and DeadlineReached raised:
the batch stays `ended` and the next run reads it again, skipping what is
already final.
"""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any

from .. import lazy

if TYPE_CHECKING:
    import anthropic
else:
    anthropic = lazy.module("anthropic")  # imported at first use: start-up stays fast

from .. import findings as findings_mod
from .. import pricing, schemas
from ..client import check_answer, fatal_errors, refused, stream_errors, usage_of
from ..deadline import Deadline, DeadlineReached
from ..errors import ServiceError
from ..models import Finding
from . import Progress, plan
from .state import OPEN_BATCH, Request, Run, Store, now, pack

COMMIT_EVERY = 500
NO_DEADLINE = Deadline(None)
STREAM_ATTEMPTS = 3
MAX_NOTES_PER_REQUEST = 5
_CONTEXT_LENGTH = re.compile(
    r"prompt is too long|context (window|length)|too many (input )?tokens|maximum context|exceeds? the "
    r"(model'?s? )?(maximum|context)", re.I)


def record_answer(store: Store, run: Run, req: Request, message: anthropic.types.Message, *, batch: bool) -> str | None:
    """Record one answer inside the caller's transaction; the quarantine reason, or None if valid."""
    usage = usage_of(message)
    store.record_usage(req.id, usage, pricing.cost(run.model, usage, batch=batch))
    if message.stop_reason == "model_context_window_exceeded":
        split(store, run, req, "the model's context window was exceeded")
        return None
    answer, problem = check_answer(message, schemas.findings_answer_schema())
    if answer is None:
        fail(store, run, req, problem, state="quarantined")
        return problem
    if run.kind == "eval":
        # Anchored by the eval against its case's diff, as the review anchors a per-file answer.
        store.db.execute(
            "INSERT OR REPLACE INTO results (key, run_id, custom_id, findings_json, answered_at) VALUES (?, ?, ?, ?, ?)",
            (req.key, run.id, req.custom_id, json.dumps(answer["findings"]), now()))
        store.set_request(req.id, state="succeeded", reason=None)
        return None
    lines = dict(enumerate(req.text.split("\n"), start=req.start_line))
    anchored: list[tuple[Finding, str]] = []
    notes: list[str] = []
    for raw in answer["findings"]:
        result, code = findings_mod.anchor_in_range(raw, req.path, lines, req.start_line, req.end_line)
        if result.finding is not None:
            anchored.append((result.finding, code))
        if result.note:
            notes.append(result.note)
    kept, flood = findings_mod.cap([f for f, _ in anchored], run.max_findings, f"{req.path}:{req.start_line}-{req.end_line}")
    keep = {id(f) for f in kept}
    rows = [{"finding": f.to_dict(), "code": code} for f, code in anchored if id(f) in keep]
    store.db.execute(
        "INSERT OR REPLACE INTO results (key, run_id, custom_id, findings_json, answered_at) VALUES (?, ?, ?, ?, ?)",
        (req.key, run.id, req.custom_id, json.dumps(rows), now()))
    if len(notes) > MAX_NOTES_PER_REQUEST:
        # Rejections are all alike: the first few name them, the rest are counted.
        notes = notes[:MAX_NOTES_PER_REQUEST] + [
            f"{req.path}:{req.start_line}-{req.end_line}: and {len(notes) - MAX_NOTES_PER_REQUEST} more finding(s) "
            "rejected the same way"]
    for note in notes + ([flood] if flood else []):
        store.add_note(run.id, note)
    store.set_request(req.id, state="succeeded", reason=None)
    store.forget_failure(req.key)
    return None


def fail(store: Store, run: Run, req: Request, reason: str, *, state: str = "failed", transient: bool = False) -> None:
    """`req` ends without an answer, inside the caller's transaction.

    Unless `transient`, the failure is its content's: remembered under its key,
    so the next run does not pay for it again (see the module docstring).
    """
    store.set_request(req.id, state=state, reason=reason)
    if transient:
        store.forget_failure(req.key)
    else:
        store.remember_failure(run.id, req, state, reason)


def requeue(store: Store, run: Run, req: Request, reason: str) -> None:
    """Send `req` again under a new custom_id, or fail it when its attempts are spent."""
    if run.status == "canceling":
        store.set_request(req.id, state="canceled", reason=f"audit canceled ({reason})")
        return
    attempt = req.attempt + 1
    if attempt >= run.max_attempts:
        fail(store, run, req, f"{reason} (after {attempt} attempt(s))", transient=True)
        return
    store.set_request(req.id, state="planned", attempt=attempt, custom_id=plan.retry_id(req.base_id, attempt),
                      batch_id=None, reason=reason)


def split(store: Store, run: Run, req: Request, why: str) -> None:
    """Replace `req` by requests for smaller parts of its lines, in the caller's transaction."""
    parts = plan.halves(req.text, req.start_line, req.tokens) if run.kind == "audit" else []
    if len(parts) < 2:
        fail(store, run, req, f"{why}, and " + ("a single line cannot be cut smaller" if run.kind == "audit"
                                                 else "an eval case's request is not cut"))
        return
    children = []
    for start, text in parts:
        end = start + text.count("\n")
        # A part keeps its whole's definitions block (the plan's `_expand` does the same).
        key = plan.chunk_key(run.context_digest, start, text.encode("utf-8", "surrogatepass"), req.context)
        children.append((start, end, key, text, plan.part_tokens(req.path, len(text), end - start + 1)
                         + plan.context_tokens(req.context)))
    stamp = now()
    for start, end, key, text, tokens in children:
        cid = plan.custom_id(req.path, start, key)
        store.db.execute(
            "INSERT OR IGNORE INTO requests (run_id, base_id, custom_id, key, path, start_line, end_line, total_lines, "
            "tokens, parent_id, state, text, context, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?)",
            (run.id, cid, cid, key, req.path, start, end, req.total_lines, tokens, req.id,
             pack(text), req.context_blob, stamp))
    # Every path holding the parent's text (fan-out copies too) now holds the parts.
    paths = [r[0] for r in store.db.execute(
        "SELECT path FROM run_chunks WHERE run_id = ? AND key = ? AND start_line = ?", (run.id, req.key, req.start_line))]
    store.db.execute("DELETE FROM run_chunks WHERE run_id = ? AND key = ? AND start_line = ?",
                     (run.id, req.key, req.start_line))
    store.db.executemany(
        "INSERT OR REPLACE INTO run_chunks (run_id, path, start_line, end_line, key) VALUES (?, ?, ?, ?, ?)",
        [(run.id, p, start, end, key) for p in paths for start, end, key, _, _ in children])
    store.set_request(req.id, state="split", reason=f"{why}: re-chunked into {len(children)} parts")
    store.remember_split(run.id, req.key, [(start, end, key) for start, end, key, _, _ in children])


def _error_of(result: Any) -> tuple[str, str]:
    inner = getattr(getattr(result, "error", None), "error", None)
    return str(getattr(inner, "type", "api_error")), str(getattr(inner, "message", "") or "")


def handle(store: Store, run: Run, req: Request, result: Any) -> None:
    """One batch result for `req`, inside the caller's transaction."""
    kind = result.type
    if kind == "succeeded":
        record_answer(store, run, req, result.message, batch=True)
    elif kind == "errored":
        error_type, message = _error_of(result)
        if _CONTEXT_LENGTH.search(message):
            split(store, run, req, f"too long for the model's context ({message[:200]})")
        elif error_type == "invalid_request_error":
            fail(store, run, req, f"the API rejected the request: {message[:500]}")
        else:
            requeue(store, run, req, f"errored: {error_type}: {message[:300]}")
    elif kind == "expired":
        requeue(store, run, req, "expired before the batch processed it")
    elif kind == "canceled":
        store.set_request(req.id, state="canceled", reason="its batch was canceled")
    else:  # pragma: no cover - a result type the SDK does not know yet
        requeue(store, run, req, f"unknown result type {kind!r}")


def poll(store: Store, run: Run, sdk: anthropic.Anthropic, progress: Progress,
         deadline: Deadline = NO_DEADLINE) -> int:
    """Refresh the open batches of `run` and collect every ended one; returns results handled."""
    handled = 0
    for b in store.batches(run.id, ("in_progress", "canceling")):
        try:
            live = deadline.call(sdk, functools.partial(_retrieve, batch_id=b.api_id or ""),
                                 f"while polling batch {b.api_id}")
        except anthropic.NotFoundError:
            _lost(store, run, b.id, f"batch {b.api_id} is no longer known to the API")
            continue
        except fatal_errors() as exc:
            raise refused(exc, f"to read batch {b.api_id}") from exc
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            raise ServiceError(f"cannot read batch {b.api_id}: {exc}") from exc
        counts = live.request_counts.model_dump() if live.request_counts else None
        if live.processing_status != b.state or counts != b.counts:
            with store.transaction():
                store.set_batch(b.id, state=live.processing_status, counts_json=json.dumps(counts),
                                ended_at=str(live.ended_at) if live.ended_at else None)
    for b in store.batches(run.id, ("ended",)):
        handled += collect_batch(store, run, sdk, b.id, progress, deadline=deadline)
    return handled


def collect_batch(store: Store, run: Run, sdk: anthropic.Anthropic, batch_id: int, progress: Progress,
                  attempts: int = STREAM_ATTEMPTS, deadline: Deadline = NO_DEADLINE) -> int:
    """Stream the results of an ended batch into the state; returns how many were new.

    A stream cut off mid-way keeps what it delivered (each result is its own
    state transition) and is read again from the start, up to `attempts`
    times: results already recorded are skipped.
    """
    b = store.batch(batch_id)
    handled = 0
    for attempt in range(1, attempts + 1):
        try:
            handled += _read_results(store, store.run(run.id), sdk, b, progress, deadline)
            break
        except _StreamCut as cut:
            if attempt == attempts:
                raise ServiceError(f"the results of batch {b.api_id} were cut off {attempts} times: {cut}") from None
            progress.log(f"the results of batch {b.api_id} were cut off ({cut}); kept what arrived, read again")
    if handled:
        progress.log(f"collected {handled} result(s) of batch {b.api_id}")
    return handled


class _StreamCut(Exception):
    """The results stream broke after it started: what arrived is committed."""


def _read_results(store: Store, run: Run, sdk: anthropic.Anthropic, b: Any, progress: Progress,
                  deadline: Deadline = NO_DEADLINE) -> int:
    progress.start(f"collecting {b.api_id}", b.request_count)
    handled = foreign = 0
    what = f"while reading the results of batch {b.api_id} (what arrived is kept)"
    try:
        stream = deadline.call(sdk, lambda c: c.messages.batches.results(b.api_id or ""), what)
    except DeadlineReached:
        progress.stop()
        raise
    except anthropic.NotFoundError:
        progress.stop()
        _lost(store, run, b.id, f"the results of batch {b.api_id} are no longer available")
        return 0
    except fatal_errors() as exc:
        progress.stop()
        raise refused(exc, f"the results of {b.api_id}") from exc
    except (anthropic.APIStatusError, anthropic.APIConnectionError, anthropic.AnthropicError) as exc:
        progress.stop()
        raise ServiceError(f"cannot read the results of batch {b.api_id}: {exc}") from exc
    pending = 0
    try:
        store.db.execute("BEGIN IMMEDIATE")
        broken: tuple[type[BaseException], ...] = (*stream_errors(), json.JSONDecodeError)
        try:
            for item in stream:
                req = store.request_in_batch(b.id, item.custom_id)
                if req is None:
                    # Ours if it was submitted in this batch and has since been sent
                    # again under a new id (a stream read a second time).
                    foreign += not store.submitted_in(b.id, run.id, item.custom_id)
                    continue
                if req.state == "submitted":
                    handle(store, run, req, item.result)
                    handled += 1
                    pending += 1
                progress.advance()
                if pending >= COMMIT_EVERY:
                    store.db.execute("COMMIT")
                    store.db.execute("BEGIN IMMEDIATE")
                    pending = 0
                if deadline.expired():
                    store.db.execute("COMMIT")
                    raise DeadlineReached(f"--timeout {deadline.seconds:g}s reached {what}")
        except broken as exc:
            store.db.execute("COMMIT")
            if deadline.expired():
                raise DeadlineReached(f"--timeout {deadline.seconds:g}s reached {what}") from exc
            raise _StreamCut(str(exc) or type(exc).__name__) from exc
        for req in store.unanswered_in_batch(b.id):
            requeue(store, run, req, f"no result for it in batch {b.api_id}")
        if foreign:
            store.add_note(run.id, f"batch {b.api_id} returned {foreign} result(s) for custom_ids this audit "
                                   "did not send; they were ignored")
        store.set_batch(b.id, state="collected")
        store.db.execute("COMMIT")
    except BaseException:
        if store.db.in_transaction:
            store.db.execute("ROLLBACK")
        raise
    finally:
        stream.close()
        progress.stop()
    return handled


def _lost(store: Store, run: Run, batch_id: int, why: str) -> None:
    with store.transaction():
        for req in store.unanswered_in_batch(batch_id):
            requeue(store, run, req, why)
        store.set_batch(batch_id, state="lost")


def _prune_splits(store: Store, run: Run) -> None:
    """Keep the re-chunkings this run's parts came from (a part may have been cut again)."""
    live = {r[0] for r in store.db.execute("SELECT DISTINCT key FROM run_chunks WHERE run_id = ?", (run.id,))}
    splits = store.splits()
    grew = True
    kept: set[str] = set()
    while grew:
        grew = False
        for key, parts in splits.items():
            if key not in kept and any(k in live or k in kept for _, _, k in parts):
                kept.add(key)
                grew = True
    store.db.executemany("DELETE FROM splits WHERE key = ?", ((k,) for k in splits.keys() - kept))


def complete(store: Store, run: Run) -> bool:
    """True when no request of `run` is waiting for anything."""
    return not store.open_requests(run.id) and not store.batches(run.id, OPEN_BATCH)


def finish(store: Store, run: Run, summary: dict[str, Any]) -> Run:
    """Close a complete run with its summary; prune what later runs no longer need.

    A completed run keeps the answers it uses (they carry over to the next
    run) and drops older answers and the per-request details of older runs.
    """
    status = "canceled" if run.status == "canceling" else "completed"
    with store.transaction() as db:
        store.set_run(run.id, status=status, finished_at=now(), summary_json=json.dumps(summary))
        db.execute("UPDATE requests SET text = NULL, context = NULL WHERE run_id = ?", (run.id,))
        if status == "completed":
            db.execute("DELETE FROM results WHERE key NOT IN (SELECT key FROM run_chunks WHERE run_id = ?)", (run.id,))
            db.execute("DELETE FROM failures WHERE key NOT IN (SELECT key FROM run_chunks WHERE run_id = ?)", (run.id,))
            _prune_splits(store, run)
            older = "SELECT id FROM runs WHERE id < ? AND status NOT IN ('active', 'canceling')"
            for table in ("run_files", "run_chunks", "requests", "batches", "submissions", "notes"):
                db.execute(f"DELETE FROM {table} WHERE run_id IN ({older})", (run.id,))
    pages, free = (store.db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count"))
    if pages > 256 and free * 2 > pages:
        store.db.execute("VACUUM")
    return store.run(run.id)


def _retrieve(client: anthropic.Anthropic, batch_id: str) -> Any:
    return client.messages.batches.retrieve(batch_id)
