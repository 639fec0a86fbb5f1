"""What an audit run found, as SARIF, Markdown and JSON, and the completion webhook.

Findings are read from the state: every audited part of every file (including
copies and parts carried over from earlier runs) takes the findings stored
under its content key. A copy gets its own path and a fingerprint computed
from its own path and the code the finding points at, so GitHub code scanning
tracks each alert across nights (`partialFingerprints`) however the lines move.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import __version__
from .. import findings as findings_mod
from ..errors import UsageError
from ..models import SEVERITIES, Finding, Skipped, Usage
from ..pricing import usd
from ..publish import counts, location, safe, sarif
from ..publish.markdown import finding_block
from ..redact import redact
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
    """The report of `run` from the state (its findings, problems, usage and cost)."""
    found: list[Finding] = []
    rows = store.db.execute(
        "SELECT rc.path, r.findings_json FROM run_chunks rc JOIN results r ON r.key = rc.key "
        "WHERE rc.run_id = ? ORDER BY rc.path, rc.start_line", (run.id,))
    for path, stored in rows:
        for entry in json.loads(stored):
            f = Finding.from_dict(entry["finding"])
            if f.file != path:
                # A copy of the same text: same lines, its own identity.
                f = f.with_(file=path, fingerprint=findings_mod.fingerprint(
                    path, f.category, "RIGHT", entry.get("code", ""), f.issue))
            found.append(findings_mod.redacted(f))
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


# ---------------------------------------------------------------------- renderers


def render_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_sarif(report: AuditReport) -> str:
    return sarif.render(report.findings, automation_id=f"{SARIF_CATEGORY}/{report.run.id}")


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
            out.append(f"- … and {len(report.notes) - 50} more")
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
            tmp.write_text(RENDERERS[fmt](report), encoding="utf-8")
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
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
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
