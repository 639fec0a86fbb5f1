"""`--format text`: a plain report for a terminal or a CI log."""

from __future__ import annotations

import textwrap

from ..diff import shown_path
from ..models import Plan, ReviewResult
from ..pricing import usd
from . import counts, location


def render(result: ReviewResult) -> str:
    c = counts(result.findings)
    lines = [
        f"reviewer: {len(result.findings)} finding(s) "
        f"({c['critical']} critical, {c['warning']} warning, {c['info']} info) "
        f"in {len(result.reviewed)} reviewed file(s); "
        f"{len(result.skipped)} skipped, {len(result.failed)} failed",
        *([f"INCOMPLETE {result.incomplete.message}"] if result.incomplete else []),
        "",
    ]
    for f in result.findings:
        conf = "" if f.confidence is None else f" confidence {f.confidence:.2f}"
        v = f.verification
        mark = "" if v is None else " verified" if v.verdict == "confirmed" else " UNVERIFIED"
        lines.append(f"{f.severity.upper():<8} {location(f)}  [{f.category}]{conf}{mark}")
        lines.extend(textwrap.indent(textwrap.fill(f.issue, 96), "    ").splitlines())
        if v is not None and v.verdict == "unverified":
            lines.extend(textwrap.indent(textwrap.fill("not verified: " + v.reason, 96), "    ").splitlines())
        if f.suggestion:
            lines.extend(textwrap.indent(textwrap.fill("fix: " + f.suggestion, 96), "    ").splitlines())
        if f.replacement:
            lines.append("    replacement:")
            lines.extend(textwrap.indent(f.replacement, "      | ").splitlines())
        lines.append("")
    for f in result.refuted:
        reason = f.verification.reason if f.verification else ""
        lines.append(f"refuted  {location(f)}  [{f.category}] {f.issue}")
        lines.extend(textwrap.indent(textwrap.fill("checked and not posted: " + reason, 96), "         ").splitlines())
    for s in result.skipped:
        lines.append(f"skipped  {shown_path(s.path)}: {s.reason}")
    for fail in result.failed:
        lines.append(f"FAILED   {shown_path(fail.path)}: {fail.error}")
    for note in result.notes:
        lines.append(f"note     {note}")
    calls = result.calls_per_pass()
    u = result.usage
    lines.append(
        f"calls    per-file {calls['per_file']}, cross-file {calls['cross_file']}, "
        f"aggregate {calls['aggregate']}, verify {calls['verify']}, repairs {calls['repairs']}"
    )
    t = result.tally
    if t.confirmed or t.refuted or t.unverified:
        lines.append(f"verified {t.confirmed} confirmed, {t.refuted} refuted (not kept), {t.unverified} unverified")
    lines.append(
        f"tokens   input {u.input_tokens:,}, cache write {u.cache_creation_input_tokens:,}, "
        f"cache read {u.cache_read_input_tokens:,}, output {u.output_tokens:,}; cost {usd(result.cost_usd)}"
    )
    return "\n".join(lines) + "\n"


def render_plan(plan: Plan) -> str:
    calls = plan.calls_per_pass()
    lines = ["reviewer --dry-run: nothing was sent", "", f"review {len(plan.reviewed)} file(s):"]
    lines += [f"  {p}" for p in plan.reviewed] or ["  (none)"]
    if plan.skipped:
        lines.append(f"skip {len(plan.skipped)} file(s):")
        lines += [f"  {shown_path(s.path)}: {s.reason}" for s in plan.skipped]
    u = plan.usage
    lines += [
        "",
        f"calls    per-file {calls['per_file']}, cross-file {calls['cross_file']}, "
        f"aggregate {calls['aggregate']}" + (f", verify ~{calls['verify']}" if calls["verify"] else ""),
        f"tokens   ~{u.total_input:,} input ({u.cache_read_input_tokens:,} from cache), "
        f"~{u.output_tokens:,} output (estimate)",
        f"cost     ~{usd(plan.cost_usd)} (estimate)",
    ]
    lines += [f"note     {n}" for n in plan.notes]
    return "\n".join(lines) + "\n"
