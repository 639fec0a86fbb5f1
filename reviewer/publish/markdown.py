"""`--format markdown`: the report for people (step summary, files, PR bodies)."""

from __future__ import annotations

from ..diff import shown_path
from ..models import Finding, Plan, ReviewResult
from ..pricing import usd
from . import counts, location, safe


def fence(code: str, lang: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside `code`."""
    longest = max((len(run) for run in code.split("\n") for run in _runs(run)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{code}\n{ticks}"


def _runs(line: str) -> list[str]:
    out, current = [], ""
    for ch in line:
        if ch == "`":
            current += "`"
        elif current:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def finding_block(f: Finding) -> str:
    conf = "" if f.confidence is None else f" · confidence {f.confidence:.2f}"
    v = f.verification
    mark = "" if v is None else " · verified" if v.verdict == "confirmed" else " · unverified"
    parts = [f"**{f.severity}** · `{location(f)}` · {f.category}{conf}{mark}", "", safe(f.issue)]
    if v is not None and v.verdict == "unverified":
        parts += ["", "Not verified: " + safe(v.reason)]
    if f.suggestion:
        parts += ["", "Fix: " + safe(f.suggestion)]
    if f.replacement:
        parts += ["", fence(f.replacement)]
    return "\n".join(parts)


def render(result: ReviewResult, title: str = "reviewer") -> str:
    c = counts(result.findings)
    u = result.usage
    cost = usd(result.cost_usd)
    out = [
        f"## {title}",
        "",
        *([f"> **Incomplete:** {safe(result.incomplete.message)}", ""] if result.incomplete else []),
        "| critical | warning | info | files reviewed | skipped | failed |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {c['critical']} | {c['warning']} | {c['info']} | {len(result.reviewed)} | {len(result.skipped)} | {len(result.failed)} |",
        "",
    ]
    if not result.findings:
        out += ["No findings.", ""]
    for severity in ("critical", "warning", "info"):
        group = [f for f in result.findings if f.severity == severity]
        if group:
            out += [f"### {severity.capitalize()} ({len(group)})", ""]
            for f in group:
                out += [finding_block(f), "", "---", ""]
    if result.refuted:
        out += [f"<details><summary>Checked and not posted (refuted by the verifier) ({len(result.refuted)})</summary>", ""]
        out += [f"- `{safe(location(f))}` · {f.category}: {safe(f.issue)}<br>Refuted: "
                f"{safe(f.verification.reason if f.verification else '')}" for f in result.refuted]
        out += ["", "</details>", ""]
    if result.skipped:
        out += ["<details><summary>Skipped files</summary>", ""]
        out += [f"- `{safe(shown_path(s.path))}`: {safe(s.reason)}" for s in result.skipped]
        out += ["", "</details>", ""]
    if result.failed:
        out += ["**Failed files** (not reviewed):", ""]
        out += [f"- `{safe(shown_path(f.path))}`: {safe(f.error)}" for f in result.failed]
        out.append("")
    if result.notes:
        out += ["Notes:", ""] + [f"- {safe(n)}" for n in result.notes] + [""]
    t = result.tally
    if t.confirmed or t.refuted or t.unverified:
        out += [f"Verification: {t.confirmed} confirmed with quoted code, {t.refuted} refuted, {t.unverified} unverified.", ""]
    calls = result.calls_per_pass()
    out.append(
        f"<sub>{calls['per_file']} per-file, {calls['cross_file']} cross-file, {calls['aggregate']} aggregate, "
        f"{calls['verify']} verify call(s) · "
        f"{u.total_input:,} input tokens ({u.cache_read_input_tokens:,} cache read) · {u.output_tokens:,} output · {cost}</sub>"
    )
    return "\n".join(out) + "\n"


def render_plan(plan: Plan) -> str:
    calls = plan.calls_per_pass()
    cost = usd(plan.cost_usd, approx=True)
    out = ["## reviewer dry run", "", f"Would review {len(plan.reviewed)} file(s):", ""]
    out += [f"- `{safe(p)}`" for p in plan.reviewed]
    if plan.skipped:
        out += ["", "Skipped:", ""] + [f"- `{safe(shown_path(s.path))}`: {safe(s.reason)}" for s in plan.skipped]
    out += ["", f"Calls: {calls['per_file']} per-file, {calls['cross_file']} cross-file, {calls['aggregate']} aggregate"
            + (f", ~{calls['verify']} verify (estimated)." if calls["verify"] else "."),
            f"Estimated: {plan.usage.total_input:,} input tokens, {plan.usage.output_tokens:,} output, {cost}."]
    out += [f"- {safe(n)}" for n in plan.notes]
    return "\n".join(out) + "\n"
