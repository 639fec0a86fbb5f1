"""Sending: the canary, then batches, never the same request twice.

Canary: before any batch, the first N planned requests go through the
synchronous Messages API and their answers are checked against the full
schema. An invalid answer or a request the API rejects (4xx) fails the run
with the reason and nothing is batched: a broken prompt costs N requests, not
the repository. Valid canary answers are kept: those requests are done.

A canary request is paid when it is answered, so its answer must never be
lost to a failed write and then bought again on resume (issue 11, item 9):

1. before the call, the request is marked `submitting` (no batch) in its own
   transaction: if that write fails (a full or read-only disk), nothing was sent;
2. the answer is recorded in one transaction with its usage and findings;
3. when that write fails, the custom_id is written into the lock file's
   fixed-size record (an overwrite in place, which a full disk allows), and
   the command stops with StateError naming the lost answer.

On resume, a canary request still `submitting` whose custom_id the lock record
names is failed ("answered and paid, but the answer could not be saved"), not
sent again: re-sending would pay twice for what the run already bought, and a
part not audited is listed in the report, so nothing disappears quietly. One
the record does not name was cut off by a kill during the call (no answer
reached us): it goes back to planned and is sent again, as before. A failed
call, a deadline or an interrupt puts the request back to planned at once.

Batches hold at most `max_requests` requests and `max_bytes` of JSON (the API
allows 100,000 and 256 MB). A batch is created in three steps, each its own
transaction or call:

1. *intent*: a `batches` row in state `creating` with the request count, the
   requests moved to `submitting`, one `submissions` row per custom_id (its
   primary key refuses a second submission of a custom_id in a run);
2. the create call, with the SDK's retries off: a retried POST whose first
   attempt did reach the API would create a second batch;
3. the API id recorded, the requests `submitted`.

A crash (or a lost response) between 1 and 3 leaves an intent. Before creating
anything, `reconcile` resolves it against `batches.list()`: a batch created
after the intent, unknown to the state and holding exactly the intent's
request count is adopted; when none shows up within `settle_seconds` of the
intent, the create never happened and the intent is released (its requests go
back to planned). The collector later checks an adopted batch's custom_ids.

Every call here is bounded by the run's `Deadline` (`audit run --timeout`):
each attempt gets at most the time left, and at the deadline DeadlineReached
leaves the state as it is, which the next run continues from (an unanswered
canary request is still planned; an intent is reconciled).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .. import lazy

if TYPE_CHECKING:
    import anthropic
else:
    anthropic = lazy.module("anthropic")  # imported at first use: start-up stays fast

from .. import schemas
from ..client import api_message, fatal_errors, refused
from ..config import Config
from ..deadline import Deadline
from ..errors import ServiceError, StateError
from . import Progress, plan
from .collect import fail, record_answer
from .state import Batch, Request, Run, Store, now, parse_time, state_error

# A listed batch created this long before the intent row may still be ours
# (the API's clock and ours disagree a little).
CLOCK_SKEW = timedelta(seconds=120)
# Bytes of `{"requests": []}` around the items, with room to spare.
ENVELOPE = 64
# Statuses after which the batch was certainly not created.
_REFUSED = frozenset({400, 401, 402, 403, 404, 413, 422})
NO_DEADLINE = Deadline(None)


@dataclass(frozen=True)
class Limits:
    max_requests: int = plan.MAX_BATCH_REQUESTS
    max_bytes: int = plan.DEFAULT_BATCH_BYTES
    settle_seconds: float = 15.0
    """How long after an intent a batch it created must be visible in `batches.list()`."""


def client(config: Config) -> anthropic.Anthropic:
    lazy.ready("anthropic")
    return anthropic.Anthropic(max_retries=config.max_retries, timeout=config.request_timeout)


def request_params(run: Run, req: Request) -> dict[str, Any]:
    if run.kind == "eval":
        user = req.text  # an eval case's per-file prompt, rendered by the review itself
    else:
        user = plan.user_message(req.path, req.start_line, req.end_line, req.total_lines, req.text, req.context)
    return plan.params(run.model, run.system, run.max_tokens, schemas.findings_model_schema(), user)


# ---------------------------------------------------------------------- canary


def canary(store: Store, run: Run, sdk: anthropic.Anthropic, progress: Progress,
           deadline: Deadline = NO_DEADLINE) -> str | None:
    """Send the run's canary requests synchronously; None when every answer is valid, else the reason.

    On failure the run is marked failed with the reason. Raises ServiceError
    for failures the request shape does not explain (credentials, outages),
    and DeadlineReached at the deadline (each answer received is kept; the
    others stay planned for the next run).
    """
    _resolve_in_flight(store, run, progress)
    pending = store.requests(run.id, ("planned",), canary=True)
    if pending:
        progress.log(f"canary: {len(pending)} request(s) through the Messages API before any batch")
        progress.start("canary", len(pending))
    try:
        return _canary(store, run, sdk, progress, deadline, pending)
    finally:
        if pending:
            progress.stop()


UNSAVED = ("answered and paid for in the canary, but the answer could not be saved (the state could not be "
           "written); not sent again, so it is not paid twice")


def _resolve_in_flight(store: Store, run: Run, progress: Progress) -> None:
    """Canary requests a previous process sent without recording what came back (see the module docstring)."""
    in_flight = [r for r in store.requests(run.id, ("submitting",), canary=True, with_text=False)
                 if r.batch_id is None]
    if not in_flight:
        return
    lost = set(store.unsaved_answers)
    with store.transaction():
        for req in in_flight:
            if req.custom_id in lost:
                fail(store, run, req, UNSAVED, transient=True)
                # The canary still checks as many answers: the next planned request takes its place.
                store.db.execute("UPDATE requests SET canary = 1 WHERE id = (SELECT id FROM requests WHERE run_id = ? "
                                 "AND state = 'planned' AND canary = 0 ORDER BY id LIMIT 1)", (run.id,))
                progress.log(f"canary: {req.custom_id} was {UNSAVED}")
            else:
                store.set_request(req.id, state="planned")
    store.forget_unsaved_answers()


def _unsend(store: Store, req: Request) -> None:
    """No answer came back: the request is planned again (best effort; a failed write leaves it in flight)."""
    try:
        with store.transaction():
            store.db.execute("UPDATE requests SET state = 'planned', updated_at = ? WHERE id = ? AND state = 'submitting'",
                             (now(), req.id))
    except Exception:  # noqa: BLE001 - the original failure is the one to report
        pass


def _canary(store: Store, run: Run, sdk: anthropic.Anthropic, progress: Progress, deadline: Deadline,
            pending: list[Request]) -> str | None:
    for done, req in enumerate(pending):
        where = f"{req.custom_id} ({req.path}:{req.start_line}-{req.end_line})"
        deadline.check(f"in the canary ({done} of {len(pending)} canary request(s) answered)")
        with store.transaction():
            # Write-ahead: on disk before the call, so a resume knows it may have been paid.
            store.set_request(req.id, state="submitting")
        progress.in_flight(1)
        try:
            try:
                # The lambda is called at once, inside this iteration (B023 does not apply).
                message = deadline.call(sdk, lambda c: c.messages.create(**request_params(run, req)),  # noqa: B023
                                        f"in the canary ({done} of {len(pending)} canary request(s) answered)")
            except BaseException:
                _unsend(store, req)
                raise
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
            raise refused(exc, "the canary request") from exc
        except anthropic.APIStatusError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                reason = f"canary: the API rejected request {where} ({exc.status_code}): {api_message(exc)}"
                with store.transaction():
                    # NOTE: not remembered as the part's failure: a synchronous 4xx is as
                    # likely the account's or the request shape's (credit balance, unknown
                    # model, schema) as this part's, and the next run's canary asks again.
                    store.set_request(req.id, state="failed", reason=reason)
                    store.set_run(run.id, status="failed", reason=reason, finished_at=now())
                return reason
            raise ServiceError(f"canary request {where} failed ({exc.status_code}): {api_message(exc)}") from exc
        except anthropic.APIConnectionError as exc:
            raise ServiceError(f"canary request {where}: cannot reach the Anthropic API: {exc}") from exc
        finally:
            progress.in_flight(0)
        progress.advance()
        try:
            with store.transaction():
                problem = record_answer(store, run, req, message, batch=False)
                if problem is not None:
                    reason = f"canary: the answer to {where} is invalid: {problem}"
                    store.set_run(run.id, status="failed", reason=reason, finished_at=now())
        except Exception as exc:
            error = state_error(store.path, exc)
            if error is None:
                raise
            noted = store.note_unsaved_answer(req.custom_id)
            # Stop here: the next request's write-ahead would fail the same way, and
            # a resume must not buy this answer again (see the module docstring).
            raise StateError(f"{error}; the paid answer to canary request {where} could not be saved"
                             + ("" if noted else " (nor noted in the lock file: a resume sends it again)")
                             + ("; it will not be sent again" if noted else ""), error.cause) from None
        if problem is not None:
            return reason
    with store.transaction():
        store.set_run(run.id, canary_passed=1)
    return None


# ---------------------------------------------------------------------- batches


def submit(store: Store, run: Run, sdk: anthropic.Anthropic, limits: Limits, progress: Progress,
           sleep: Callable[[float], None] = time.sleep, deadline: Deadline = NO_DEADLINE) -> int:
    """Submit every planned request of `run`; returns how many were submitted.

    Raises ServiceError when the API refuses a batch or stays unreachable; the
    state then holds nothing half-done (at most an intent the next run resolves).
    Raises DeadlineReached at the deadline, between batches or while unsure
    whether a create went through (its intent is left for the next run).
    """
    reconcile(store, run, sdk, limits, progress, sleep, deadline)
    creator = sdk.with_options(max_retries=0)
    per_call = sdk.timeout if isinstance(sdk.timeout, (int, float)) else None
    max_bytes = limits.max_bytes
    submitted = 0
    unsure = 0
    while True:
        deadline.check("while submitting batches")
        batch = _next_batch(store, run, limits.max_requests, max_bytes)
        if batch is None:
            return submitted
        items, ids, size = batch
        batch_id = _intent(store, run, ids, [i["custom_id"] for i in items], size)
        try:
            timeout = deadline.timeout(per_call) if per_call is not None else anthropic.NOT_GIVEN
            created = creator.messages.batches.create(requests=items, timeout=timeout)  # type: ignore[arg-type]
        except anthropic.APIStatusError as exc:
            if exc.status_code in _REFUSED:
                release(store, store.batch(batch_id), "rejected")
                if exc.status_code == 413 and size > 1024 * 1024:
                    max_bytes = size // 2
                    progress.log(f"the API found a batch of {size:,} bytes too large; trying {max_bytes:,}")
                    continue
                raise ServiceError(f"the API refused a batch of {len(items)} request(s) "
                                   f"({exc.status_code}): {api_message(exc)}") from exc
            failure: Exception = exc
        except anthropic.APIConnectionError as exc:
            failure = exc
        else:
            _created(store, batch_id, created)
            submitted += len(items)
            progress.log(f"submitted batch {created.id}: {len(items)} request(s), {size:,} bytes")
            continue
        # No answer: the batch may or may not exist. Only the listing can tell,
        # and only once the API has had time to show it: wait from the failure,
        # not from the intent (a timed-out create is long past that).
        unsure += 1
        progress.log(f"creating a batch failed ({failure}); checking the API in {limits.settle_seconds:g}s "
                     "before trying again")
        deadline.sleep(limits.settle_seconds, "while checking whether a batch was created "
                                               "(the next run reconciles it)", sleep)
        reconcile(store, run, sdk, limits, progress, sleep, deadline)
        if unsure >= 3:
            raise ServiceError(f"cannot create a batch: {failure}")


def _next_batch(store: Store, run: Run, max_requests: int, max_bytes: int
                ) -> tuple[list[dict[str, Any]], list[int], int] | None:
    """The next batch of planned requests, up to `max_requests` and `max_bytes` of JSON.

    Requests are read lazily in id order, so each batch reads about its own
    rows, not every planned one. A request too big for any batch fails here.
    """
    items: list[dict[str, Any]] = []
    ids: list[int] = []
    size = ENVELOPE
    too_big: list[tuple[Request, int]] = []
    for req in store.iter_requests(run.id, ("planned",)):
        item = {"custom_id": req.custom_id, "params": request_params(run, req)}
        n = len(json.dumps(item).encode("utf-8")) + 2
        if n + ENVELOPE > max_bytes:
            too_big.append((req, n))
            continue
        if items and (size + n > max_bytes or len(items) >= max_requests):
            break
        items.append(item)
        ids.append(req.id)
        size += n
    if too_big:
        # Not remembered: the limit is a flag (--max-batch-bytes), not the part's content, and nothing was sent.
        with store.transaction():
            for req, n in too_big:
                store.set_request(req.id, state="failed",
                                  reason=f"request of {n:,} bytes is over the batch limit of {max_bytes:,}")
    return (items, ids, size) if items else None


def _intent(store: Store, run: Run, ids: list[int], custom_ids: list[str], size: int) -> int:
    with store.transaction() as db:
        cur = db.execute("INSERT INTO batches (run_id, state, request_count, bytes, intent_at) "
                         "VALUES (?, 'creating', ?, ?, ?)", (run.id, len(ids), size, now()))
        batch_id = int(cur.lastrowid or 0)
        stamp = now()
        db.executemany("UPDATE requests SET state = 'submitting', batch_id = ?, updated_at = ? "
                       "WHERE id = ? AND state = 'planned'", ((batch_id, stamp, i) for i in ids))
        db.executemany("INSERT INTO submissions (run_id, custom_id, request_id, batch_id) VALUES (?, ?, ?, ?)",
                       ((run.id, c, i, batch_id) for c, i in zip(custom_ids, ids, strict=True)))
    return batch_id


def _created(store: Store, batch_id: int, created: Any, adopted: bool = False) -> None:
    with store.transaction() as db:
        store.set_batch(batch_id, api_id=created.id, state=created.processing_status,
                        created_at=_iso(created.created_at), adopted=int(adopted))
        db.execute("UPDATE requests SET state = 'submitted', updated_at = ? WHERE batch_id = ? AND state = 'submitting'",
                   (now(), batch_id))
        if adopted:
            store.add_note(store.batch(batch_id).run_id,
                           f"batch {created.id} was created before an interruption and adopted from the API's list")


def release(store: Store, intent: Batch, state: str) -> None:
    """The intent's batch does not exist: its requests go back to planned (or canceled)."""
    run_state = store.run(intent.run_id).status
    with store.transaction() as db:
        if run_state == "canceling":
            db.execute("UPDATE requests SET state = 'canceled', batch_id = NULL, reason = 'audit canceled', "
                       "updated_at = ? WHERE batch_id = ? AND state = 'submitting'", (now(), intent.id))
        else:
            db.execute("UPDATE requests SET state = 'planned', batch_id = NULL, updated_at = ? "
                       "WHERE batch_id = ? AND state = 'submitting'", (now(), intent.id))
        db.execute("DELETE FROM submissions WHERE batch_id = ?", (intent.id,))
        store.set_batch(intent.id, state=state)


def reconcile(store: Store, run: Run, sdk: anthropic.Anthropic, limits: Limits, progress: Progress,
              sleep: Callable[[float], None] = time.sleep, deadline: Deadline = NO_DEADLINE) -> None:
    """Resolve every intent of `run` (see the module docstring): adopt its batch or release it."""
    for intent in store.batches(run.id, ("creating",)):
        found = _find(store, sdk, intent, deadline)
        if found is None:
            age = (datetime.now(timezone.utc) - parse_time(intent.intent_at)).total_seconds()
            if age < limits.settle_seconds:
                wait = limits.settle_seconds - age
                progress.log(f"an interrupted batch creation is not in the API's list yet; checking again in {wait:.1f}s")
                deadline.sleep(wait, "while reconciling an interrupted batch creation", sleep)
                found = _find(store, sdk, intent, deadline)
        if found is not None:
            _created(store, intent.id, found, adopted=True)
            progress.log(f"adopted batch {found.id} ({intent.request_count} request(s)) created before an interruption")
        else:
            release(store, intent, "abandoned")
            progress.log(f"an interrupted batch creation never reached the API; its {intent.request_count} "
                         "request(s) will be submitted again")


def _find(store: Store, sdk: anthropic.Anthropic, intent: Batch, deadline: Deadline = NO_DEADLINE) -> Any:
    floor = parse_time(intent.intent_at) - CLOCK_SKEW
    best = None
    try:
        # Newest first: stop at the first batch older than the intent.
        for listed in deadline.call(sdk, lambda c: c.messages.batches.list(limit=100),
                                    "while reconciling an interrupted batch creation"):
            if listed.created_at < floor:
                break
            if store.known_batch(listed.id):
                continue
            c = listed.request_counts
            if c.processing + c.succeeded + c.errored + c.canceled + c.expired == intent.request_count:
                best = listed  # the oldest match is the one closest after the intent
    except fatal_errors() as exc:
        raise refused(exc, "to list batches") from exc
    except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
        raise ServiceError(f"cannot list batches to reconcile the state: {exc}") from exc
    return best


def cancel(store: Store, run: Run, sdk: anthropic.Anthropic, limits: Limits, progress: Progress,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Cancel `run`: unsent requests now, open batches through the API. Returns batches asked to cancel."""
    with store.transaction():
        store.set_run(run.id, status="canceling")
        cancel_planned(store, run)
    reconcile(store, store.run(run.id), sdk, limits, progress, sleep)
    asked = 0
    for b in store.batches(run.id, ("in_progress",)):
        try:
            live = sdk.messages.batches.cancel(b.api_id or "")
        except fatal_errors() as exc:
            raise refused(exc, f"to cancel {b.api_id}") from exc
        except anthropic.APIStatusError as exc:
            raise ServiceError(f"cannot cancel batch {b.api_id} ({exc.status_code}): {api_message(exc)}") from exc
        except anthropic.APIConnectionError as exc:
            raise ServiceError(f"cannot cancel batch {b.api_id}: {exc}") from exc
        with store.transaction():
            store.set_batch(b.id, state=live.processing_status)
        asked += 1
        progress.log(f"asked the API to cancel batch {b.api_id}")
    return asked


def cancel_planned(store: Store, run: Run) -> None:
    """Requests of a canceled run that were never sent end canceled (in the caller's transaction)."""
    store.db.execute("UPDATE requests SET state = 'canceled', reason = 'audit canceled', updated_at = ? "
                     "WHERE run_id = ? AND state = 'planned'", (now(), run.id))


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)

