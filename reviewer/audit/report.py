"""What an audit run found, as SARIF, Markdown and JSON, and the completion webhook.

Findings are read from the state: every audited part of every file (including
copies and parts carried over from earlier runs) takes the findings stored
under its content key. A copy gets its own path and a fingerprint computed
from its own path and the code the finding points at.

Identity across nights (README: "A finding's identity"; `reviewer.identity`).
GitHub code scanning tracks an alert by its `partialFingerprints`, so a finding
must keep its fingerprint while it is the same problem. An unchanged part is
not sent again and its findings keep their fresh fingerprints; a changed file
is sent again, and the model may reword a finding or see it a few lines away.
So the first report of a run matches each file's findings against the same
path's findings in the previous completed run (`identity.match`, after pairing
equal fresh fingerprints; an earlier finding is first relocated to where its
code is now in the parts this run sent, using the code its entry in `results`
stores) and a matched finding inherits the fingerprint that run published
(`identity.inherit`). The outcome is recorded in the state's `identities`
table, (run, path, fresh fingerprint) -> published fingerprint, for two
reasons: the next night inherits what was published, not the fresh value, so
A reworded on night 2 and again on night 3 is still A; and a report built
again after the run finished (when the earlier run's parts are pruned) gives
the same fingerprints. A table rather than a field of `results`: one content
key's findings fan out to copies in other paths and to many runs, while an
identity belongs to one path in one run. Only the previous completed run's
rows are needed, so older ones are dropped when a run's are recorded.
Parts with no valid answer are listed as problems with their final state and
reason, and whether the next run sends them again by itself; parts not sent
because their unchanged content failed before are listed as left out, with
that failure. Nothing pending or failed goes unlisted.

The JSON document validates against `schemas/audit-report.schema.json`. The
webhook POSTs `{"event": "audit.completed", "run", "summary"}` signed with
`X-Reviewer-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, identity
from .. import findings as findings_mod
from ..errors import UsageError
from ..models import SEVERITIES, Finding, Skipped, Usage
from ..pricing import usd
from ..publish import counts, location, safe, sarif
from ..publish.markdown import finding_block
from ..redact import redact, redact_document
from .plan import LeftOut, private_dir
from .state import Run, Store

FORMATS = {"json": "audit.json", "markdown": "audit.md", "sarif": "audit.sarif"}
SARIF_CATEGORY = "reviewer-audit"
FINAL_STATES = ("succeeded", "quarantined", "failed", "canceled", "split")


@dataclass(frozen=True)
class Problem:
    """An audited part of a file with no valid answer, and why."""

    file: str
    start_line: int
    end_line: int
    state: str
    reason: str
    custom_id: str | None
    sent_again: bool = True
    """Whether the next run sends it again by itself: false for a failure remembered by content key."""


@dataclass(frozen=True)
class AuditReport:
    run: Run
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]
    problems: tuple[Problem, ...]
    requests: Mapping[str, int]
    planned: int
    retries: int
    usage: Usage
    cost_usd: float | None
    notes: tuple[str, ...]
    left_out: tuple[LeftOut, ...] = ()

    def summary(self) -> dict[str, Any]:
        by_severity = counts(list(self.findings))
        return {
            "findings": {**by_severity, "total": len(self.findings)},
            "files_audited": self.run.files,
            "files_skipped": self.run.skipped,
            "chunks": self.run.chunks,
            "requests": {
                "planned": self.planned,
                **{s: self.requests.get(s, 0) for s in ("succeeded", "quarantined", "failed", "canceled")},
                "rechunked": self.requests.get("split", 0),
                "retries": self.retries,
                "open": sum(n for s, n in self.requests.items() if s not in FINAL_STATES),
            },
            "carried_over": self.run.carried,
            "deduplicated": self.run.deduplicated,
            "left_out": {
                **{s: sum(1 for x in self.left_out if x.failure.state == s) for s in ("quarantined", "failed")},
                "total": len(self.left_out),
            },
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "estimated_cost_usd": self.run.estimate_usd,
        }

    def run_dict(self) -> dict[str, Any]:
        r = self.run
        return {
            "id": r.id, "status": r.status, "created_at": r.created_at, "finished_at": r.finished_at,
            "commit": r.commit_sha, "model": r.model, "prompt_version": r.prompt_version,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "run": self.run_dict(),
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
            "files_skipped": [{"file": s.path, "reason": s.reason} for s in self.skipped],
            "problems": [
                {"file": p.file, "start_line": p.start_line, "end_line": p.end_line, "state": p.state,
                 "reason": p.reason, "custom_id": p.custom_id, "sent_again": p.sent_again}
                for p in self.problems
            ],
            "left_out": [
                {"file": x.path, "start_line": x.start, "end_line": x.end, "state": x.failure.state,
                 "reason": redact(x.failure.reason), "run": x.failure.run_id, "failed_at": x.failure.failed_at,
                 "custom_id": x.failure.custom_id}
                for x in self.left_out
            ],
            "notes": list(self.notes),
        }


def build(store: Store, run: Run) -> AuditReport:
    """The report of `run` from the state (its findings, problems, usage and cost).

    Call it once no request of `run` is open. The first call records the
    identity of each of the run's findings (see the module docstring), so the
    next run can inherit it; later calls read it back, the same answer even
    after the earlier run's parts were pruned.
    """
    fresh = _fresh_findings(store, run.id)
    ids = _identities(store, run, fresh)
    found = [findings_mod.redacted(f.with_(fingerprint=ids.get((f.file, f.fingerprint), f.fingerprint)))
             for f, _ in fresh]
    problems = []
    left_out = []
    failures = store.failures()
    for path, start, end, key in store.db.execute(
            "SELECT rc.path, rc.start_line, rc.end_line, rc.key FROM run_chunks rc "
            "LEFT JOIN results r ON r.key = rc.key WHERE rc.run_id = ? AND r.key IS NULL "
            "ORDER BY rc.path, rc.start_line", (run.id,)).fetchall():
        req = store.db.execute(
            "SELECT custom_id, state, reason FROM requests WHERE run_id = ? AND key = ? ORDER BY id DESC LIMIT 1",
            (run.id, key)).fetchone()
        if req is None and key in failures:
            left_out.append(LeftOut(path, start, end, failures[key]))
        elif req is None:
            problems.append(Problem(path, start, end, "missing", "no request was recorded for it", None))
        else:
            state = req[1] if req[1] in FINAL_STATES else "pending"
            problems.append(Problem(path, start, end, state, redact(req[2] or state), req[0], key not in failures))
    skipped = tuple(Skipped(p, r) for p, r in store.db.execute(
        "SELECT path, skip_reason FROM run_files WHERE run_id = ? AND skip_reason IS NOT NULL ORDER BY path",
        (run.id,)))
    planned = store.db.execute("SELECT COUNT(*) FROM requests WHERE run_id = ? AND parent_id IS NULL",
                               (run.id,)).fetchone()[0]
    usage, cost = store.usage(run.id)
    notes = [redact(n) for n in ([run.reason] if run.reason else []) + store.notes(run.id)]
    return AuditReport(run, tuple(findings_mod.finalize(found)), skipped, tuple(problems),
                       store.state_counts(run.id), planned, store.retries(run.id), usage, cost, tuple(notes),
                       tuple(left_out))


# ---------------------------------------------------------------------- identity across runs


def _fresh_findings(store: Store, run_id: int) -> list[tuple[Finding, str]]:
    """Every finding of `run_id`'s parts with its fresh fingerprint, and the normalised code it points at."""
    out: list[tuple[Finding, str]] = []
    rows = store.db.execute(
        "SELECT rc.path, r.findings_json FROM run_chunks rc JOIN results r ON r.key = rc.key "
        "WHERE rc.run_id = ? ORDER BY rc.path, rc.start_line", (run_id,))
    for path, stored in rows:
        for entry in json.loads(stored):
            f = Finding.from_dict(entry["finding"])
            code = entry.get("code", "")
            if f.file != path:
                # A copy of the same text: same lines, its own identity.
                f = f.with_(file=path, fingerprint=findings_mod.fingerprint(path, f.category, "RIGHT", code, f.issue))
            out.append((f, code))
    return out


def _identities(store: Store, run: Run, fresh: list[tuple[Finding, str]]) -> dict[tuple[str, str], str]:
    """(path, fresh fingerprint) -> identity of `run`'s findings: recorded, else inherited now and recorded."""
    known = store.identities(run.id)
    if known or not fresh:
        return known
    base = store.latest_run(("completed",), before=run.id)
    ids = _inherit(store, run, fresh, base) if base is not None else {}
    ids = {key: ids.get(key, key[1]) for key in ((f.file, f.fingerprint) for f, _ in fresh)}
    if not store.open_requests(run.id):
        # Rows of runs before the base are no longer needed: the next run inherits from this one or the base.
        store.keep_identities(run.id, ids, forget_before=base.id if base is not None else None)
    return ids


def _inherit(store: Store, run: Run, fresh: list[tuple[Finding, str]], base: Run) -> dict[tuple[str, str], str]:
    """The identities `run`'s findings inherit from the same problems in `base`, file by file."""
    earlier_ids = store.identities(base.id)
    new_by_path: dict[str, list[tuple[Finding, str]]] = {}
    old_by_path: dict[str, list[tuple[Finding, str]]] = {}
    for f, code in fresh:
        new_by_path.setdefault(f.file, []).append((f, code))
    for f, code in _fresh_findings(store, base.id):
        if f.file in new_by_path:
            old_by_path.setdefault(f.file, []).append((f, code))
    ids: dict[tuple[str, str], str] = {}
    for path, new in new_by_path.items():
        old = old_by_path.get(path, [])
        if not old:
            continue
        findings = [f for f, _ in new]
        pairs = _pair(store, run, path, findings, old)
        # What `base` published, not its fresh fingerprint: so the identity chains across nights.
        earlier = [e.with_(fingerprint=earlier_ids.get((path, e.fingerprint), e.fingerprint)) for e, _ in old]
        for f, inherited in zip(findings, identity.inherit(findings, earlier, pairs), strict=True):
            # Equal fresh fingerprints in one file share one identity (`finalize` then tells them apart).
            ids.setdefault((path, f.fingerprint), inherited.fingerprint)
    return ids


def _pair(store: Store, run: Run, path: str, new: list[Finding], old: list[tuple[Finding, str]]) -> dict[int, int]:
    """(index in `new`) -> (index in `old`) of the same problems (`identity.match`).

    An equal fresh fingerprint pairs first, so an unchanged finding keeps its
    own identity rather than a reworded neighbour's; the rest are matched
    against the earlier findings left, each relocated to where its code is
    now in the parts this run sent (its recorded line when unknown or gone).
    """
    pairs: dict[int, int] = {}
    by_print: dict[str, int] = {}
    for j, (e, _) in enumerate(old):
        by_print.setdefault(e.fingerprint, j)
    for i, f in enumerate(new):
        if f.fingerprint in by_print:
            pairs[i] = by_print[f.fingerprint]
    rest = [i for i in range(len(new)) if i not in pairs]
    left = [j for j in range(len(old)) if j not in set(pairs.values())]
    if not rest or not left:
        return pairs
    text: dict[int, str] = {}
    for first, last, part in store.part_texts(run.id, path):
        text.update(zip(range(first, last + 1), part.split("\n"), strict=False))
    lines: dict[int, int | None] = {}
    for k, j in enumerate(left):
        e, code = old[j]
        place = None
        if text and e.line is not None:
            place = identity.relocate(e.line, e.end_line, identity.code_hash(code), text.get, identity.RELOCATE_LIMIT)
        lines[k] = place[0] if place is not None else e.line
    matched = identity.match([new[i] for i in rest], [old[j][0] for j in left], lines)
    pairs.update((rest[a], left[b]) for a, b in matched.items())
    return pairs


# ---------------------------------------------------------------------- renderers


def render_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_sarif(report: AuditReport) -> str:
    return sarif.render(report.findings, automation_id=f"{SARIF_CATEGORY}/{report.run.id}", full_report="audit.json")


def render_markdown(report: AuditReport) -> str:
    s = report.summary()
    req = s["requests"]
    c = s["findings"]
    run = report.run
    cost, estimate = usd(report.cost_usd), usd(run.estimate_usd)
    commit = f" · commit `{run.commit_sha[:12]}`" if run.commit_sha else ""
    out = [
        "## reviewer nightly audit",
        "",
        f"Run {run.id} · {run.status} · started {run.created_at}{commit} · model `{run.model}`",
        "",
        "| critical | warning | info | files audited | skipped | not audited | left out |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {c['critical']} | {c['warning']} | {c['info']} | {s['files_audited']} | {s['files_skipped']} "
        f"| {len(report.problems)} | {len(report.left_out)} |",
        "",
    ]
    if not report.findings:
        out += ["No findings.", ""]
    for severity in SEVERITIES:
        group = [f for f in report.findings if f.severity == severity]
        if not group:
            continue
        out += [f"### {severity} ({len(group)})", ""]
        for f in group:
            out += [f"#### {safe(location(f))}", "", finding_block(f), ""]
    if report.problems:
        out += ["### Not audited", "",
                "These parts have no valid answer. A transient failure is sent again in the next run; an invalid "
                "answer or a request the API rejected is remembered, and sent again only when the part, the "
                "prompt, the model or the schema changes, or with `--retry-failed`.", ""]
        out += [f"- `{safe(p.file)}:{p.start_line}-{p.end_line}` {p.state}: {safe(p.reason)} "
                + ("(sent again in the next run)" if p.sent_again else "(remembered: not sent again while unchanged)")
                for p in report.problems]
        out.append("")
    if report.left_out:
        q = s["left_out"]
        out += [f"### Left out ({q['total']})", "",
                f"Not sent in this run: these parts failed before for a reason of their own ({q['quarantined']} "
                f"quarantined, {q['failed']} failed) and are unchanged since.", ""]
        out += [f"- `{safe(x.path)}:{x.start}-{x.end}` {x.failure.state} on {x.failure.failed_at[:10]} in run "
                f"{x.failure.run_id}: {safe(redact(x.failure.reason))}; unchanged since; `--retry-failed` sends it again"
                for x in report.left_out]
        out.append("")
    if report.skipped:
        out += ["<details><summary>Skipped files</summary>", ""]
        out += [f"- `{safe(x.path)}`: {safe(x.reason)}" for x in report.skipped]
        out += ["", "</details>", ""]
    if report.notes:
        out += ["Notes:", ""] + [f"- {safe(n)}" for n in report.notes[:50]]
        if len(report.notes) > 50:
            out.append(f"- … and {len(report.notes) - 50} more, in `audit.json` (`notes`)")
        out.append("")
    u = report.usage
    out.append(
        f"<sub>{s['chunks']} part(s) of files · {req['planned']} request(s) sent "
        f"({req['succeeded']} answered, {req['quarantined']} quarantined, {req['failed']} failed, "
        f"{req['canceled']} canceled, {req['rechunked']} re-chunked, {req['retries']} retries) · "
        f"{s['carried_over']} carried over · {s['deduplicated']} duplicate(s) fanned out · "
        f"{s['left_out']['total']} left out · "
        f"{u.total_input:,} input tokens ({u.cache_read_input_tokens:,} cache read) · {u.output_tokens:,} output · "
        f"{cost} (estimated {estimate})</sub>"
    )
    return "\n".join(out) + "\n"


RENDERERS: dict[str, Callable[[AuditReport], str]] = {
    "json": render_json, "markdown": render_markdown, "sarif": render_sarif,
}


def write(report: AuditReport, out_dir: Path, formats: tuple[str, ...]) -> tuple[Path, ...]:
    """Write each format to `out_dir` (audit.json, audit.md, audit.sarif); returns the paths."""
    try:
        private_dir(out_dir)
        written = []
        for fmt in formats:
            path = out_dir / FORMATS[fmt]
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(redact_document(RENDERERS[fmt](report)), encoding="utf-8")
            tmp.replace(path)
            written.append(path)
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot write the reports: {exc.strerror or exc}") from None
    return tuple(written)


# ---------------------------------------------------------------------- webhook


class WebhookFailed(Exception):
    """The webhook was not delivered; the message says what the receiver or network answered."""


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_webhook_url(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--webhook-url must be an http(s) URL (got {url[:100]!r})")


def deliver(url: str, secret: str, report: AuditReport, *, attempts: int = 4, backoff: float = 1.0,
            timeout: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> int:
    """POST the run's summary to `url`, signed; retried with backoff on 5xx, 408, 429 and network errors.

    Returns the number of attempts made; raises WebhookFailed after the last.
    """
    payload = {"event": "audit.completed", "run": report.run_dict(), "summary": report.summary()}
    body = redact_document(json.dumps(payload, sort_keys=True)).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"reviewer/{__version__}",
        "X-Reviewer-Event": "audit.completed",
        "X-Reviewer-Signature-256": signature(secret, body),
    }
    last = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - scheme checked
                return attempt
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise WebhookFailed(f"webhook {url} answered {exc.code}; not retried") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = str(reason)
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    raise WebhookFailed(f"webhook {url} failed after {attempts} attempt(s): {last}")
