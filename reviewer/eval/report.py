"""`Score` -> text, JSON (schemas/eval-report.schema.json) and Markdown; a report read back; two compared.

The JSON report keeps every case with its findings and each finding's right
flag, so `load` rebuilds the `Score` by scoring those cases again
(`score.rescore`) with the report's own settings: what is loaded is what was
written. `compare` uses the same per-case data to score two runs on the cases
they have in common, and tells a difference from noise with a paired bootstrap.

Renderers never redact: the CLI passes every rendered report through
`redact.redact_document`, as for the other reports. Markdown treats paths,
case descriptions, findings and errors as untrusted text (`_md`); diffs go in
fences longer than any backtick run they hold (`publish.markdown.fence`).
"""

from __future__ import annotations

import json
import random
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import schemas
from ..diff import shown_path
from ..errors import UsageError
from ..models import SEVERITY_RANK, Finding
from ..pricing import usd
from ..publish import safe
from ..publish.markdown import fence
from .models import LanguageCount, Site
from .score import (
    LEVEL,
    Bucket,
    CaseResult,
    Estimate,
    Noisy,
    Run,
    Score,
    ScoredFinding,
    bootstrap,
    control_row,
    planted_row,
    rescore,
)

VERSION = 1
DIFF_LINES = 80
"""Lines of a case's diff shown in Markdown; the step summary is capped at 1 MiB."""


# --- JSON ----------------------------------------------------------------------


def _estimate(e: Estimate | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"value": e.value, "low": e.low, "high": e.high, "numerator": e.numerator, "denominator": e.denominator}


def _bucket(b: Bucket) -> dict[str, Any]:
    return {"label": b.label, "findings": b.findings, "right": b.right, "share": b.share}


def _run(r: Run) -> dict[str, Any]:
    return {"commit": r.commit, "seed": r.seed, "models": list(r.models), "mode": r.mode, "tools": r.tools,
            "started_at": r.started_at, "finished_at": r.finished_at, "config_digest": r.config_digest}


def _finding(f: Finding) -> dict[str, Any]:
    d = f.to_dict()
    # A finding that never went through `findings.fingerprint` (a hand-made outcome)
    # has "", which the finding schema does not allow; absent reads back as "".
    if not d.get("fingerprint"):
        d.pop("fingerprint", None)
    return d


def _case(c: CaseResult, min_severity: str) -> dict[str, Any]:
    return {
        "id": c.id, "kind": c.kind, "planted": c.planted, "language": c.language, "path": c.path,
        "start": c.start, "end": c.end, "function": c.function, "description": c.description, "diff": c.diff,
        "sites": [{"path": s.path, "line": s.line} for s in c.sites],
        "status": c.status, "error": c.error, "caught": c.caught(min_severity),
        "counted": len(c.counted(min_severity)), "catches": len(c.catches(min_severity)),
        "stray": len(c.stray(min_severity)),
        "findings": [{"right": f.right, "finding": _finding(f.finding)} for f in c.findings],
        "input_tokens": c.input_tokens, "output_tokens": c.output_tokens, "cost_usd": c.cost_usd,
        "seconds": c.seconds,
    }


def to_dict(score: Score) -> dict[str, Any]:
    """The report as schemas/eval-report.schema.json describes it."""
    s = score
    sp = s.spend
    return {
        "version": VERSION,
        "run": _run(s.run),
        "scoring": {"min_severity": s.min_severity, "tolerance": s.tolerance, "resamples": s.resamples,
                    "seed": s.seed, "level": LEVEL},
        "summary": {
            "cases": {"total": len(s.cases), "planted": sum(c.planted for c in s.cases),
                      "controls": sum(not c.planted for c in s.cases), "scored_planted": len(s.scored_planted),
                      "scored_controls": len(s.scored_controls), "excluded": len(s.excluded)},
            "recall": _estimate(s.recall), "precision": _estimate(s.precision),
            "noise_per_control": _estimate(s.noise), "controls_with_findings": _estimate(s.noisy_controls),
        },
        "kinds": [{"kind": k.kind, "planted": k.planted, "cases": k.cases, "excluded": k.excluded,
                   "recall": _estimate(k.recall), "noise_per_control": _estimate(k.noise)} for k in s.kinds],
        "calibration": {"severity": [_bucket(b) for b in s.severity_calibration],
                        "confidence": [_bucket(b) for b in s.confidence_calibration]},
        "spend": {"cases": sp.cases, "input_tokens": sp.input_tokens, "output_tokens": sp.output_tokens,
                  "cost_usd": sp.cost_usd, "seconds": sp.seconds, "mean_input_tokens": sp.mean_input_tokens,
                  "mean_output_tokens": sp.mean_output_tokens, "mean_cost_usd": sp.mean_cost_usd,
                  "mean_seconds": sp.mean_seconds, "p50_seconds": sp.p50_seconds, "p90_seconds": sp.p90_seconds},
        "languages": [{"language": lc.language, "files": lc.files, "covered": lc.covered, "parser": lc.parser}
                      for lc in s.languages],
        "cases": [_case(c, s.min_severity) for c in s.cases],
        "excluded": [{"case": c.id, "kind": c.kind, "planted": c.planted, "status": c.status,
                      "reason": c.error or c.status} for c in s.excluded],
        "misses": {"cases": [c.id for c in s.misses], "left_out": s.misses_left_out},
        "noisiest": {"findings": [{"case": n.case.id, "index": n.index} for n in s.noisiest],
                     "left_out": s.noisiest_left_out},
        "notes": list(s.notes),
    }


def _dumps(doc: dict[str, Any]) -> str:
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A path with bytes that are not UTF-8 (kept as lone surrogates) cannot be
        # written as UTF-8: \u escapes keep it, and json.loads gives it back.
        text = json.dumps(doc, indent=2)
    return text + "\n"


def render_json(score: Score) -> str:
    return _dumps(to_dict(score))


def from_dict(doc: dict[str, Any]) -> Score:
    """The `Score` of a report document that validates against the schema (scored again from its cases)."""
    r = doc["run"]
    run = Run(commit=r["commit"], seed=r["seed"], models=tuple(r["models"]), mode=r["mode"], tools=r["tools"],
              started_at=r["started_at"], finished_at=r["finished_at"], config_digest=r["config_digest"])
    cases = tuple(
        CaseResult(
            id=c["id"], kind=c["kind"], planted=c["planted"], language=c["language"], path=c["path"],
            start=c["start"], end=c["end"], function=c["function"], description=c["description"], diff=c["diff"],
            sites=tuple(Site(s["path"], s["line"]) for s in c["sites"]), status=c["status"], error=c["error"],
            findings=tuple(ScoredFinding(Finding.from_dict(f["finding"]), f["right"]) for f in c["findings"]),
            input_tokens=c["input_tokens"], output_tokens=c["output_tokens"], cost_usd=c["cost_usd"],
            seconds=c["seconds"],
        )
        for c in doc["cases"]
    )
    sc = doc["scoring"]
    languages = tuple(LanguageCount(lc["language"], lc["files"], lc["covered"], lc["parser"])
                      for lc in doc["languages"])
    return rescore(cases, run=run, min_severity=sc["min_severity"], tolerance=sc["tolerance"],
                   resamples=sc["resamples"], seed=sc["seed"], languages=languages, notes=tuple(doc["notes"]))


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def load(path: str | Path) -> Score:
    """The `Score` of the JSON report at `path`.

    Raises UsageError, in one line, when the file cannot be read, is not JSON,
    comes from another reviewer version, or is not an eval report (a review's
    JSON, say): the schema's first complaint says where.
    """
    shown = shown_path(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{shown} is not an eval report: it is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read the eval report {shown}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{shown} is not an eval report: not JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(doc, dict) and isinstance(doc.get("version"), int) and doc["version"] != VERSION \
            and "scoring" in doc:
        raise UsageError(f"{shown} is an eval report of version {doc['version']}; this reviewer reads version "
                         f"{VERSION}")
    error = schemas.first_error(schemas.load("eval-report"), doc)
    if error is not None:
        raise UsageError(f"{shown} is not a valid eval report ({_one_line(error)})")
    try:
        return from_dict(doc)
    except (ValueError, KeyError) as exc:  # valid by the schema, yet not scorable (an unknown severity key)
        raise UsageError(f"{shown} is not a valid eval report ({_one_line(str(exc))})") from None


# --- formatting helpers --------------------------------------------------------


def _pct(x: float | None) -> str:
    return "not measured" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "not measured" if x is None else f"{x:.2f}"


def _interval(e: Estimate, fmt: Any = _pct) -> str:
    if e.low is None or e.high is None:
        return "no interval"
    return f"{fmt(e.low)} – {fmt(e.high)}"


def _labelled(e: Estimate, fmt: Any = _pct) -> str:
    """"interval 40.0% – 60.0%" for the text report, or "no interval"."""
    text = _interval(e, fmt)
    return text if e.low is None or e.high is None else f"interval {text}"


def _secs(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f} s"


def _lines(c: CaseResult) -> str:
    return f"{c.start}" if c.start == c.end else f"{c.start}-{c.end}"


def _where(f: Finding) -> str:
    if f.line is None:
        return f"{shown_path(f.file)} (file-level)"
    side = " (old)" if f.side == "LEFT" else ""
    end = f"-{f.end_line}" if f.end_line is not None and f.end_line != f.line else ""
    return f"{shown_path(f.file)}:{f.line}{end}{side}"


def _plain(text: str) -> str:
    """Text for a terminal: control characters (escape sequences, bidi overrides) written as escapes."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


# Every ASCII punctuation character may be backslash-escaped in CommonMark. These can
# open a structure anywhere on a line (emphasis, link, image, code span, table cell,
# strikethrough); `<`, `>`, `&` are already entities (`safe`), so no tag or entity is made.
_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
# These only open one at the start of a line (heading, list item, setext underline).
_MD_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+(?=[.)]))")


def _md(text: str) -> str:
    """Untrusted text as one inert Markdown line: no HTML, no mention, no structure, no fence."""
    escaped = _MD_INLINE.sub(r"\\\1", safe(text))
    lines = [_MD_LINE_START.sub(_escape_start, line) for line in escaped.splitlines()]
    # Lines joined with <br>: a model's line break stays visible, but no line of its
    # text can start a block of its own (a fence, a heading, the end of a table).
    return "<br>".join(lines)


def _escape_start(m: re.Match[str]) -> str:
    mark = m.group(2)
    if mark[0].isdigit():  # "1." starts an ordered list: escape the dot or parenthesis after it
        return m.group(1) + mark + "\\"
    return m.group(1) + "\\" + mark


def _clip(diff: str, limit: int = DIFF_LINES) -> str:
    lines = diff.rstrip("\n").splitlines()
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join(lines[:limit] + [f"... {len(lines) - limit} more line(s)"])


def _noisy_label(n: Noisy) -> str:
    return "control " + n.case.kind if not n.case.planted else "stray on " + n.case.kind


# --- text ------------------------------------------------------------------------


def _head(score: Score) -> list[str]:
    r = score.run
    return [
        f"reviewer eval: commit {r.commit[:12]}, {len(score.cases)} case(s): "
        f"{sum(c.planted for c in score.cases)} planted, {sum(not c.planted for c in score.cases)} control(s); "
        f"{len(score.excluded)} not scored",
        f"models {', '.join(r.models) or 'not recorded'}; {r.mode}; tools {'on' if r.tools else 'off'}; "
        f"plan seed {r.seed}; findings at {score.min_severity} or above count, within ±{score.tolerance} line(s); "
        f"{int(LEVEL * 100)}% intervals by bootstrap over cases ({score.resamples} resamples, seed {score.seed})",
    ]


def render_text(score: Score) -> str:
    s = score
    sp = s.spend
    out = _head(s) + [""]
    out.append(f"recall     {_pct(s.recall.value)} ({s.recall.numerator} of {s.recall.denominator} planted "
               f"case(s) caught)  {_labelled(s.recall)}")
    out.append(f"precision  {_pct(s.precision.value)} ({s.precision.numerator} of {s.precision.denominator} "
               f"finding(s) on planted cases point at the plant)  {_labelled(s.precision)}")
    out.append(f"noise      {_num(s.noise.value)} finding(s) per control ({s.noise.numerator} in "
               f"{s.noise.denominator})  {_labelled(s.noise, _num)}; "
               f"{s.noisy_controls.numerator} of {s.noisy_controls.denominator} control(s) with a finding "
               f"({_pct(s.noisy_controls.value)})")
    out.append(f"cost       {usd(sp.cost_usd)} total, {usd(sp.mean_cost_usd)} per case; tokens {sp.input_tokens:,} in, "
               f"{sp.output_tokens:,} out over {sp.cases} case(s)")
    out.append(f"time       per case: mean {_secs(sp.mean_seconds)}, p50 {_secs(sp.p50_seconds)}, "
               f"p90 {_secs(sp.p90_seconds)}")
    if s.kinds:
        out += ["", "by kind"]
        for k in s.kinds:
            more = f", {k.excluded} not scored" if k.excluded else ""
            if k.recall is not None:
                out.append(f"  {k.kind:<22} {k.cases:>4} planted{more}: {k.recall.numerator} caught, "
                           f"{_pct(k.recall.value)}  {_labelled(k.recall)}")
            elif k.noise is not None:
                out.append(f"  {k.kind:<22} {k.cases:>4} control{more}: {k.noise.numerator} finding(s), "
                           f"{_num(k.noise.value)} per case  {_labelled(k.noise, _num)}")
    out += ["", "calibration (every finding of scored cases; right = points at the plant of its case)"]
    for title, buckets in (("severity", s.severity_calibration), ("confidence", s.confidence_calibration)):
        out.append(f"  by {title}")
        out += [f"    {b.label:<12} {b.findings:>4} finding(s), {b.right:>4} right  {_pct(b.share)}" for b in buckets]
    if s.excluded:
        out += ["", f"not scored ({len(s.excluded)}): left out of every rate"]
        out += [f"  {c.status.upper():<10} {c.id}  {c.kind}  {shown_path(c.path)}: {_plain(_one_line(c.error or ''))}"
                for c in s.excluded]
    if s.misses:
        out += ["", f"misses ({len(s.misses) + s.misses_left_out}"
                + (f", {s.misses_left_out} not shown" if s.misses_left_out else "") + ")"]
        for c in s.misses:
            out.append(f"  {c.id}  {c.kind}  {shown_path(c.path)}:{_lines(c)}  {_plain(c.description)}")
            out += textwrap.indent(_plain(_clip(c.diff)), "      ").splitlines()
    if s.noisiest:
        out += ["", f"noisiest findings ({len(s.noisiest) + s.noisiest_left_out}"
                + (f", {s.noisiest_left_out} not shown" if s.noisiest_left_out else "") + ")"]
        for n in s.noisiest:
            f = n.finding
            conf = "" if f.confidence is None else f" confidence {f.confidence:.2f}"
            out.append(f"  {f.severity.upper():<8} {_where(f)}  [{n.case.id}, {_noisy_label(n)}]{conf}")
            out += textwrap.indent(textwrap.fill(_plain(f.issue), 96), "      ").splitlines()
    if s.notes:
        out += [""] + [f"note  {_plain(n)}" for n in s.notes]
    return "\n".join(out) + "\n"


# --- Markdown ----------------------------------------------------------------------


def _md_estimate(e: Estimate, fmt: Any = _pct) -> str:
    if e.value is None:
        return "not measured"
    return f"{fmt(e.value)} ({e.numerator}/{e.denominator})<br><sub>{_interval(e, fmt)}</sub>"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align for _ in header) + "|",
            *["| " + " | ".join(r) + " |" for r in rows]]


def render_markdown(score: Score, title: str = "reviewer eval") -> str:
    s = score
    r = s.run
    sp = s.spend
    out = [
        f"## {_md(title)}",
        "",
        f"Commit {_md(r.commit[:12])} · {len(s.cases)} cases ({sum(c.planted for c in s.cases)} planted, "
        f"{sum(not c.planted for c in s.cases)} controls) · models {_md(', '.join(r.models) or 'not recorded')} · "
        f"{r.mode} · tools {'on' if r.tools else 'off'} · findings at **{s.min_severity}** or above count, "
        f"within ±{s.tolerance} lines · {int(LEVEL * 100)}% intervals by bootstrap over cases",
        "",
    ]
    noise = _md_estimate(s.noise, _num)
    if s.noisy_controls.value is not None:
        noise += f"<br><sub>{s.noisy_controls.numerator} of {s.noisy_controls.denominator} controls with a finding</sub>"
    out += _md_table(
        ["recall", "precision", "noise per control", "cost", "time per case"],
        [[_md_estimate(s.recall), _md_estimate(s.precision), noise,
          f"{usd(sp.cost_usd)}<br><sub>{usd(sp.mean_cost_usd)} per case</sub>",
          f"{_secs(sp.mean_seconds)} mean<br><sub>p50 {_secs(sp.p50_seconds)} · p90 {_secs(sp.p90_seconds)}</sub>"]],
        "---:",
    )
    out.append("")
    if s.excluded:
        states = ", ".join(f"{sum(1 for c in s.excluded if c.status == st)} {st}"
                           for st in ("failed", "incomplete", "missing") if any(c.status == st for c in s.excluded))
        out += [f"> **Not scored:** {len(s.excluded)} of {len(s.cases)} cases ({states}): left out of every rate, "
                "listed below.", ""]
    planted_kinds = [k for k in s.kinds if k.recall is not None]
    control_kinds = [k for k in s.kinds if k.noise is not None]
    if planted_kinds:
        out += ["### Planted defects by kind", ""]
        out += _md_table(["kind", "cases", "caught", "recall", "interval"],
                         [[_md(k.kind), str(k.cases) + (f" (+{k.excluded} not scored)" if k.excluded else ""),
                           str(k.recall.numerator), _pct(k.recall.value), _interval(k.recall)]
                          for k in planted_kinds if k.recall is not None], "---")
        out.append("")
    if control_kinds:
        out += ["### Controls by kind", ""]
        out += _md_table(["kind", "cases", "findings", "per control", "interval"],
                         [[_md(k.kind), str(k.cases) + (f" (+{k.excluded} not scored)" if k.excluded else ""),
                           str(k.noise.numerator), _num(k.noise.value), _interval(k.noise, _num)]
                          for k in control_kinds if k.noise is not None], "---")
        out.append("")
    out += ["### Calibration", "", "Every finding of a scored case; *right*: it points at the plant of its case.", ""]
    out += _md_table(["severity", "findings", "right", "share"],
                     [[b.label, str(b.findings), str(b.right), _pct(b.share)] for b in s.severity_calibration], "---")
    out.append("")
    out += _md_table(["confidence", "findings", "right", "share"],
                     [[_md(b.label), str(b.findings), str(b.right), _pct(b.share)]
                      for b in s.confidence_calibration], "---")
    out.append("")
    if s.misses:
        more = f", {s.misses_left_out} more not shown" if s.misses_left_out else ""
        out += [f"<details><summary>Misses ({len(s.misses) + s.misses_left_out}{more})</summary>", ""]
        for c in s.misses:
            out += [f"**{_md(c.kind)}** · {_md(shown_path(c.path))}:{_lines(c)} · {_md(c.description)}", "",
                    fence(_clip(c.diff), "diff"), ""]
        out += ["</details>", ""]
    if s.noisiest:
        more = f", {s.noisiest_left_out} more not shown" if s.noisiest_left_out else ""
        out += [f"<details><summary>Noisiest findings ({len(s.noisiest) + s.noisiest_left_out}{more})</summary>", ""]
        for n in s.noisiest:
            f = n.finding
            conf = "" if f.confidence is None else f" · confidence {f.confidence:.2f}"
            out += [f"**{f.severity}** · {_md(_where(f))} · {_md(_noisy_label(n))}{conf}", "", _md(f.issue), "",
                    fence(_clip(n.case.diff), "diff"), ""]
        out += ["</details>", ""]
    if s.excluded:
        out += [f"<details><summary>Not scored ({len(s.excluded)})</summary>", ""]
        out += [f"- {_md(c.id)} · {_md(c.kind)} · {c.status}: {_md(c.error or '')}" for c in s.excluded]
        out += ["", "</details>", ""]
    if s.notes:
        out += ["Notes:", ""] + [f"- {_md(n)}" for n in s.notes] + [""]
    out.append(f"<sub>{sp.input_tokens:,} input tokens · {sp.output_tokens:,} output · {sp.cases} case(s) run · "
               f"{s.resamples} bootstrap resamples, seed {s.seed}</sub>")
    return "\n".join(out) + "\n"


# --- comparison ----------------------------------------------------------------------


Unit = Literal["share", "mean", "usd", "seconds"]


@dataclass(frozen=True)
class Difference:
    """One metric of two runs on the cases they share, and whether the difference is more than chance."""

    metric: str
    """"recall", "precision", "noise per control", "controls with findings", "cost per case",
    "seconds per case", or a kind's name (its recall, or its noise for a control kind)."""
    a: float | None
    b: float | None
    """The metric of each run on the compared cases; None when not measured."""
    delta: float | None
    """b - a; None when either is not measured."""
    low: float | None
    high: float | None
    """The 95% interval of b - a by a paired bootstrap over the compared cases; None when not tested."""
    outside_noise: bool | None
    """True when the interval excludes 0; None for a metric not tested (cost, time) or not measured."""
    unit: Unit = "share"
    """share: a rate between 0 and 1; mean: findings per case; usd and seconds: per case."""


@dataclass(frozen=True)
class Comparison:
    """Two runs on the same cases, side by side (`compare`)."""

    a: Run
    b: Run
    min_severity: str
    """The threshold both runs were scored at here (each report's findings are judged again at it)."""
    resamples: int
    seed: int
    common: int
    """Cases (by id) in both reports."""
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    not_scored: tuple[str, ...]
    """Common cases left out: not done in both runs, or not the same case (kind or planted differ)."""
    planted: int
    controls: int
    """Common cases compared: done in both runs."""
    metrics: tuple[Difference, ...]
    kinds: tuple[Difference, ...]
    notes: tuple[str, ...] = ()


def _paired(rows: Sequence[Sequence[int]], a: Any, b: Any, *, metric: str, unit: Unit, resamples: int,
            seed: int) -> Difference:
    """Difference of `b(sums) - a(sums)` with a bootstrap that draws the same cases for both runs."""
    sums = [sum(r[i] for r in rows) for i in range(len(rows[0]))] if rows else []
    va = a(sums) if rows else None
    vb = b(sums) if rows else None
    if va is None or vb is None:
        return Difference(metric, va, vb, None, None, None, None, unit)

    def delta(s: Sequence[int]) -> float | None:
        x, y = a(s), b(s)
        return None if x is None or y is None else y - x

    if len(rows) < MIN_PAIRED_CASES:
        return Difference(metric, va, vb, vb - va, None, None, None, unit)
    low, high = bootstrap(rows, delta, resamples=resamples, rng=random.Random(f"{seed}:compare:{metric}"))
    outside = None if low is None or high is None else (low > 0 or high < 0)
    return Difference(metric, va, vb, vb - va, low, high, outside, unit)


MIN_PAIRED_CASES = 6
"""Fewer common cases than this are not tested: a bootstrap of a handful of cases draws the same few
again and again and calls any difference certain. Six is where even a difference in every case
(a sign test: 2 x 0.5^6 = 0.03) could be told from chance at the 95 % level."""


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def compare(a: Score, b: Score, *, min_severity: str | None = None, resamples: int | None = None,
            seed: int | None = None) -> Comparison:
    """Score runs `a` and `b` on the cases both hold (matched by id) and test each difference.

    Only cases done in both runs are compared, so a case that failed in one run
    does not count against the other. The threshold, resamples and seed default
    to `a`'s. Raises ValueError for an unknown `min_severity`.
    """
    floor = min_severity or a.min_severity
    if floor not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {floor!r}")
    n = resamples if resamples is not None else a.resamples
    sd = seed if seed is not None else a.seed
    by_b = {c.id: c for c in b.cases}
    ids_a = {c.id for c in a.cases}
    common = [(c, by_b[c.id]) for c in a.cases if c.id in by_b]
    only_a = tuple(c.id for c in a.cases if c.id not in by_b)
    only_b = tuple(c.id for c in b.cases if c.id not in ids_a)
    notes: list[str] = []
    if a.run.commit != b.run.commit:
        notes.append(f"the runs are of different commits ({a.run.commit[:12]}, {b.run.commit[:12]}): "
                     "cases with the same id are compared as the same change")
    if a.min_severity != b.min_severity or min_severity is not None:
        notes.append(f"both runs judged at {floor} (reports scored at {a.min_severity} and {b.min_severity})")
    if a.tolerance != b.tolerance:
        notes.append(f"the runs matched findings with different tolerances (±{a.tolerance}, ±{b.tolerance} lines)")
    different = [ca.id for ca, cb in common if (ca.kind, ca.planted) != (cb.kind, cb.planted)]
    if different:
        notes.append(f"{len(different)} common id(s) name different cases in the two reports and are left out")
    pairs = [(ca, cb) for ca, cb in common if ca.id not in different and ca.done and cb.done]
    compared = {ca.id for ca, _ in pairs}
    not_scored = tuple(ca.id for ca, _ in common if ca.id not in compared)

    def prow(ca: CaseResult, cb: CaseResult) -> tuple[int, ...]:
        ra, rb = planted_row(ca, floor), planted_row(cb, floor)
        return (1, ra[1], rb[1], ra[2], ra[3], rb[2], rb[3])

    def crow(ca: CaseResult, cb: CaseResult) -> tuple[int, ...]:
        ra, rb = control_row(ca, floor), control_row(cb, floor)
        return (1, ra[1], rb[1], ra[2], rb[2])

    planted = [(ca, cb) for ca, cb in pairs if ca.planted]
    controls = [(ca, cb) for ca, cb in pairs if not ca.planted]
    prows = [prow(ca, cb) for ca, cb in planted]
    crows = [crow(ca, cb) for ca, cb in controls]
    kw: dict[str, Any] = {"resamples": n, "seed": sd}
    metrics = [
        _paired(prows, lambda s: _ratio(s[1], s[0]), lambda s: _ratio(s[2], s[0]), metric="recall",
                unit="share", **kw),
        _paired(prows, lambda s: _ratio(s[3], s[4]), lambda s: _ratio(s[5], s[6]), metric="precision",
                unit="share", **kw),
        _paired(crows, lambda s: _ratio(s[3], s[0]), lambda s: _ratio(s[4], s[0]), metric="noise per control",
                unit="mean", **kw),
        _paired(crows, lambda s: _ratio(s[1], s[0]), lambda s: _ratio(s[2], s[0]),
                metric="controls with findings", unit="share", **kw),
    ]
    # Cost and time are reported, not tested: they are not rates, and a run's
    # prices or machine explain them better than chance does.
    spent: tuple[tuple[str, Unit, Any], ...] = (("cost per case", "usd", lambda c: c.cost_usd),
                                               ("seconds per case", "seconds", lambda c: c.seconds))
    for name, unit, get in spent:
        va = [get(ca) for ca, _ in pairs]
        vb = [get(cb) for _, cb in pairs]
        ma = None if not pairs or any(v is None for v in va) else sum(va) / len(va)
        mb = None if not pairs or any(v is None for v in vb) else sum(vb) / len(vb)
        metrics.append(Difference(name, ma, mb, None if ma is None or mb is None else mb - ma, None, None, None, unit))
    kinds = []
    order = [k.kind for k in a.kinds] + [k.kind for k in b.kinds if k.kind not in {x.kind for x in a.kinds}]
    for kind in order:
        kp = [(ca, cb) for ca, cb in planted if ca.kind == kind]
        kc = [(ca, cb) for ca, cb in controls if ca.kind == kind]
        if kp:
            kinds.append(_paired([prow(ca, cb) for ca, cb in kp], lambda s: _ratio(s[1], s[0]),
                                 lambda s: _ratio(s[2], s[0]), metric=kind, unit="share", **kw))
        elif kc:
            kinds.append(_paired([crow(ca, cb) for ca, cb in kc], lambda s: _ratio(s[3], s[0]),
                                 lambda s: _ratio(s[4], s[0]), metric=kind, unit="mean", **kw))
    return Comparison(a=a.run, b=b.run, min_severity=floor, resamples=n, seed=sd, common=len(common),
                      only_a=only_a, only_b=only_b, not_scored=not_scored, planted=len(planted),
                      controls=len(controls), metrics=tuple(metrics), kinds=tuple(kinds), notes=tuple(notes))


def _fmt(unit: Unit) -> Any:
    return {"share": _pct, "mean": _num, "usd": usd, "seconds": _secs}[unit]


def _signed(d: Difference) -> str:
    if d.delta is None:
        return "n/a"
    if d.unit == "share":
        return f"{100 * d.delta:+.1f} pts"
    if d.unit == "usd":
        return f"{'+' if d.delta >= 0 else '-'}${abs(d.delta):.4f}"
    if d.unit == "seconds":
        return f"{d.delta:+.1f} s"
    return f"{d.delta:+.2f}"


def _verdict(d: Difference) -> str:
    if d.outside_noise is None:
        return "not tested" if d.unit in ("usd", "seconds") or d.delta is None else \
            f"not tested (under {MIN_PAIRED_CASES} cases)"
    return "outside the noise" if d.outside_noise else "within the noise"


def _diff_interval(d: Difference) -> str:
    if d.low is None or d.high is None:
        return "n/a"
    if d.unit == "share":
        return f"{100 * d.low:+.1f} – {100 * d.high:+.1f} pts"
    return f"{d.low:+.2f} – {d.high:+.2f}"


def _values(d: Difference) -> tuple[str, str]:
    fmt = _fmt(d.unit)
    return (fmt(d.a) if d.a is not None else "not measured", fmt(d.b) if d.b is not None else "not measured")


def _run_line(r: Run) -> str:
    """A run told apart from another: two runs of one commit differ by model, mode, tools, config or date."""
    parts = [f"commit {r.commit[:12]}", ", ".join(r.models) or "models not recorded", r.mode,
             f"tools {'on' if r.tools else 'off'}"]
    if r.config_digest:
        parts.append(f"config {r.config_digest}")
    if r.started_at:
        parts.append(f"started {r.started_at}")
    return " · ".join(parts)


def _cases_line(c: Comparison) -> str:
    return (f"{c.common} common case(s), {len(c.only_a)} only in A, {len(c.only_b)} only in B; compared: "
            f"{c.planted} planted and {c.controls} control(s) done in both ({len(c.not_scored)} common case(s) "
            "left out)")


def render_compare_text(c: Comparison) -> str:
    out = ["reviewer eval compare", f"A  {_plain(_run_line(c.a))}", f"B  {_plain(_run_line(c.b))}",
           _cases_line(c),
           f"findings at {c.min_severity} or above; B - A with {int(LEVEL * 100)}% paired bootstrap intervals "
           f"({c.resamples} resamples, seed {c.seed})", ""]
    def line(d: Difference) -> str:
        a, b = _values(d)
        return (f"  {d.metric:<24} A {a:<14} B {b:<14} B-A {_signed(d):<12} interval {_diff_interval(d):<22} "
                f"{_verdict(d)}")

    out += [line(d) for d in c.metrics]
    if c.kinds:
        out += ["", "by kind (recall; noise per case for a control kind)"]
        out += [line(d) for d in c.kinds]
    out += [f"note  {_plain(n)}" for n in c.notes]
    return "\n".join(out) + "\n"


def render_compare_markdown(c: Comparison, title: str = "reviewer eval: A vs B") -> str:
    def row(d: Difference) -> list[str]:
        a, b = _values(d)
        verdict = _verdict(d)
        return [_md(d.metric), a, b, _signed(d), _diff_interval(d), f"**{verdict}**" if d.outside_noise else verdict]

    out = [f"## {_md(title)}", "",
           f"- **A**: {_md(_run_line(c.a))}", f"- **B**: {_md(_run_line(c.b))}", "",
           _md(_cases_line(c)) + f". Findings at **{c.min_severity}** or above; "
           f"{int(LEVEL * 100)}% intervals of B − A by a paired bootstrap over the compared cases.", ""]
    header = ["metric", "A", "B", "B − A", "interval", ""]
    out += _md_table(header, [row(d) for d in c.metrics], "---")
    out.append("")
    if c.kinds:
        out += ["### By kind", "", "Recall of each planted kind; findings per case of each control kind.", ""]
        out += _md_table(["kind"] + header[1:], [row(d) for d in c.kinds], "---")
        out.append("")
    if c.notes:
        out += ["Notes:", ""] + [f"- {_md(n)}" for n in c.notes] + [""]
    return "\n".join(out) + "\n"


def _difference(d: Difference) -> dict[str, Any]:
    return {"metric": d.metric, "unit": d.unit, "a": d.a, "b": d.b, "delta": d.delta, "low": d.low, "high": d.high,
            "outside_noise": d.outside_noise}


def compare_to_dict(c: Comparison) -> dict[str, Any]:
    return {
        "version": VERSION,
        "a": _run(c.a),
        "b": _run(c.b),
        "scoring": {"min_severity": c.min_severity, "resamples": c.resamples, "seed": c.seed, "level": LEVEL,
                    "delta": "b - a"},
        "cases": {"common": c.common, "planted": c.planted, "controls": c.controls, "only_a": list(c.only_a),
                  "only_b": list(c.only_b), "not_scored": list(c.not_scored)},
        "metrics": [_difference(d) for d in c.metrics],
        "kinds": [_difference(d) for d in c.kinds],
        "notes": list(c.notes),
    }


def render_compare_json(c: Comparison) -> str:
    return _dumps(compare_to_dict(c))
