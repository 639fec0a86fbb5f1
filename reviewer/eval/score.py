"""Cases + outcomes -> `Score`: what the review caught, what it said in vain, and how sure we can be.

The rules (issue 13):

- A finding is *right* when it points at the plant of its case: a RIGHT-side,
  line-anchored finding in `case.path` whose range [line, end_line or line]
  comes within `tolerance` lines of [case.start, case.end]; for
  `stale-callers` also one within `tolerance` of any of `case.sites`.
  File-level findings (line None) and findings on control cases are never
  right. Rightness ignores severity, so calibration can judge every finding.
- A planted case is *caught* when a right finding is at or above
  `min_severity`. Findings at or above `min_severity` are *counted*; a counted
  finding that is not right is *stray*.
- recall = caught / planted cases; precision = counted right findings /
  counted findings on planted cases; noise = counted findings per control
  case, and the share of control cases with any.
- Only cases whose review finished (`status == "done"`) are scored; failed,
  incomplete and missing cases are counted and listed (`Score.excluded`),
  never dropped quietly. A metric with nothing to measure is None ("not
  measured"), never 0.

Intervals are 95% percentile intervals of a bootstrap over cases (cases drawn
with replacement; per kind, within the kind). Each metric draws from its own
`random.Random(f"{seed}:{metric}")`, so the same seed gives the same
intervals, and adding a kind does not shift the intervals of the others.

Everything a metric needs is kept per case (`CaseResult`: the findings with
their right flag), so a report read back from JSON is scored again by the
same code (`rescore`), and two reports can be compared on their common cases.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ..models import SEVERITIES, SEVERITY_RANK, Finding
from .models import CONTROL_KINDS, PLANTED_KINDS, Case, CaseOutcome, CasePlan, LanguageCount, Site

LEVEL = 0.95
"""The coverage of every interval."""
LIST_CAP = 20
"""Misses and noisiest findings shown; the rest are counted (`*_left_out`)."""
CONFIDENCE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("[0, 0.5)", 0.0, 0.5),
    ("[0.5, 0.7)", 0.5, 0.7),
    ("[0.7, 0.85)", 0.7, 0.85),
    ("[0.85, 1.0]", 0.85, math.inf),
)
NO_CONFIDENCE = "none"

CaseState = Literal["done", "failed", "incomplete", "missing"]
Mode = Literal["sync", "batch", "mixed"]


@dataclass(frozen=True)
class Run:
    """What was run: reported with the scores, never used to compute them."""

    commit: str
    """The full SHA the cases apply to."""
    seed: int
    """The seed that chose the cases (`CasePlan.seed`), not the bootstrap's."""
    models: tuple[str, ...] = ()
    """Every model the reviews used (per-file, cross-file, verifier), as configured."""
    mode: Mode = "sync"
    """How the reviews were sent: one request at a time, through the Batches API, or both (a resumed run)."""
    tools: bool = False
    """Whether the reviews could read the repository through their tools."""
    started_at: str | None = None
    """ISO 8601 with a timezone; None when not known."""
    finished_at: str | None = None
    config_digest: str | None = None
    """A digest of the effective review configuration, so two runs can be told apart."""


@dataclass(frozen=True)
class ScoredFinding:
    """A finding of a case, and whether it points at the case's plant."""

    finding: Finding
    right: bool
    """True when it is within `tolerance` lines of the plant (or a stale call site); always False on a control."""


@dataclass(frozen=True)
class CaseResult:
    """One case as scored: the case's description, what the review said, what it cost."""

    id: str
    kind: str
    planted: bool
    language: str
    path: str
    start: int
    end: int
    function: str
    description: str
    diff: str
    sites: tuple[Site, ...]
    status: CaseState
    """done: scored; failed/incomplete: the review did not finish; missing: no outcome for the case."""
    error: str | None
    """Why the case is not scored (the outcome's error, or "no outcome"); None when done."""
    findings: tuple[ScoredFinding, ...]
    """Every finding the review kept, all severities, in the review's order."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    """None when the model's price is unknown."""
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return self.status == "done"

    def counted(self, min_severity: str) -> tuple[ScoredFinding, ...]:
        """Findings at or above `min_severity`: the ones that catch, and the ones that are noise."""
        floor = SEVERITY_RANK[min_severity]
        return tuple(f for f in self.findings if SEVERITY_RANK[f.finding.severity] >= floor)

    def catches(self, min_severity: str) -> tuple[ScoredFinding, ...]:
        return tuple(f for f in self.counted(min_severity) if f.right)

    def stray(self, min_severity: str) -> tuple[ScoredFinding, ...]:
        """Counted findings that are not a catch: on a control, every counted finding."""
        return tuple(f for f in self.counted(min_severity) if not f.right)

    def caught(self, min_severity: str) -> bool | None:
        """Whether a counted finding catches the plant; None for a control or a case not scored."""
        if not self.planted or not self.done:
            return None
        return bool(self.catches(min_severity))


@dataclass(frozen=True)
class Estimate:
    """A rate or a mean over cases, with its bootstrap interval."""

    value: float | None
    """numerator / denominator; None ("not measured") when the denominator is 0."""
    low: float | None
    high: float | None
    """The 95% percentile interval of the bootstrap over cases; None when not measured."""
    numerator: int
    denominator: int
    """recall: caught / planted cases; precision: right / counted findings on planted cases;
    noise: counted findings / control cases; share of controls: controls with a finding / control cases."""


@dataclass(frozen=True)
class KindScore:
    """The scores of one kind of case."""

    kind: str
    planted: bool
    cases: int
    """Cases of the kind that were scored (done)."""
    excluded: int
    """Cases of the kind not scored (failed, incomplete, missing)."""
    recall: Estimate | None
    """Planted kinds: caught / cases, interval by bootstrap within the kind; None for a control kind."""
    noise: Estimate | None
    """Control kinds: counted findings per case; None for a planted kind."""


@dataclass(frozen=True)
class Bucket:
    """One row of a calibration table: findings that said X, and how many of them were right."""

    label: str
    """A severity ("critical"), a confidence range ("[0.7, 0.85)") or "none" (no confidence given)."""
    findings: int
    """Findings of scored cases (planted and control, every severity) in the bucket."""
    right: int
    share: float | None
    """right / findings; None for an empty bucket."""


@dataclass(frozen=True)
class Spend:
    """Tokens, money and time of every case that has an outcome, scored or not (failed calls are billed too)."""

    cases: int
    """Cases with an outcome: the denominator of the per-case means."""
    input_tokens: int
    """All input tokens billed, cache reads and writes included."""
    output_tokens: int
    cost_usd: float | None
    """Total; None when any outcome's cost is unknown."""
    seconds: float
    """Sum of the cases' wall-clock times (cases may have run side by side)."""
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    mean_cost_usd: float | None
    mean_seconds: float | None
    p50_seconds: float | None
    p90_seconds: float | None
    """Per-case time percentiles (linear interpolation); None without cases."""


@dataclass(frozen=True)
class Noisy:
    """A counted finding that catches nothing: on a control case, or stray on a planted one."""

    case: CaseResult
    finding: Finding
    index: int
    """The finding's position in `case.findings`."""


@dataclass(frozen=True)
class Score:
    """Everything `reviewer eval` measured, with the per-case results it was computed from."""

    run: Run
    min_severity: str
    """Findings below it neither catch nor count as noise (they are still calibrated)."""
    tolerance: int
    """Lines a finding may be away from the plant and still catch it."""
    resamples: int
    seed: int
    """The bootstrap's seed."""
    cases: tuple[CaseResult, ...]
    """Every case of the plan, in plan order, scored or not."""
    recall: Estimate
    precision: Estimate
    noise: Estimate
    """Counted findings per control case (mean)."""
    noisy_controls: Estimate
    """Share of control cases with at least one counted finding."""
    kinds: tuple[KindScore, ...]
    """Every kind with at least one case: planted kinds first, in PLANTED_KINDS order, then control kinds."""
    severity_calibration: tuple[Bucket, ...]
    confidence_calibration: tuple[Bucket, ...]
    spend: Spend
    misses: tuple[CaseResult, ...]
    """Scored planted cases not caught, at most LIST_CAP, by kind then id."""
    misses_left_out: int
    noisiest: tuple[Noisy, ...]
    """Control and stray findings, most severe, then most confident first, at most LIST_CAP."""
    noisiest_left_out: int
    languages: tuple[LanguageCount, ...] = ()
    notes: tuple[str, ...] = ()
    """The plan's shortfalls and outcomes the scoring set aside, said plainly (cases not scored are
    `excluded`, not notes)."""

    @property
    def excluded(self) -> tuple[CaseResult, ...]:
        """Cases not scored: failed, incomplete, or without an outcome."""
        return tuple(c for c in self.cases if not c.done)

    @property
    def scored_planted(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if c.done and c.planted)

    @property
    def scored_controls(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if c.done and not c.planted)

    def case(self, case_id: str) -> CaseResult | None:
        for c in self.cases:
            if c.id == case_id:
                return c
        return None


# --- matching ---------------------------------------------------------------


def _near(f: Finding, path: str, start: int, end: int, tolerance: int) -> bool:
    if f.line is None or f.side != "RIGHT" or f.file != path:
        return False
    last = f.end_line if f.end_line is not None else f.line
    low, high = min(f.line, last), max(f.line, last)
    return low <= end + tolerance and high >= start - tolerance


def is_right(f: Finding, case: Case | CaseResult, tolerance: int) -> bool:
    """Whether `f` points at the plant of `case` (see the module docstring); False on a control."""
    if not case.planted:
        return False
    if _near(f, case.path, case.start, case.end, tolerance):
        return True
    if case.kind == "stale-callers":
        return any(_near(f, s.path, s.line, s.line, tolerance) for s in case.sites)
    return False


def result_of(case: Case, outcome: CaseOutcome | None, tolerance: int) -> CaseResult:
    """One case and its outcome (None: the runner produced none) as a `CaseResult`."""
    base = CaseResult(id=case.id, kind=case.kind, planted=case.planted, language=case.language, path=case.path,
                      start=case.start, end=case.end, function=case.function, description=case.description,
                      diff=case.diff, sites=case.sites, status="missing", error="no outcome", findings=(),
                      cost_usd=None)
    if outcome is None:
        return base
    return replace(
        base, status=outcome.status, error=None if outcome.status == "done" else (outcome.error or outcome.status),
        findings=tuple(ScoredFinding(f, is_right(f, case, tolerance)) for f in outcome.findings),
        input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
        cost_usd=outcome.cost_usd, seconds=outcome.seconds,
    )


# --- statistics --------------------------------------------------------------

# Rows of non-negative counts are packed into one integer, 40 bits a column, so a
# resample is one `random.choices` and one `sum` (pure Python, no numpy): 2000
# resamples of 500 cases take about 0.1 s. 40 bits hold any count a run can reach.
_BITS = 40
_MASK = (1 << _BITS) - 1

Stat = Callable[[Sequence[int]], "float | None"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of `values` by linear interpolation between order statistics."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    i = math.floor(pos)
    if i + 1 >= len(ordered):
        return ordered[-1]
    return ordered[i] + (ordered[i + 1] - ordered[i]) * (pos - i)


def bootstrap(rows: Sequence[Sequence[int]], stat: Stat, *, resamples: int, rng: random.Random,
              ) -> tuple[float | None, float | None]:
    """The LEVEL percentile interval of `stat(column sums)` over resamples of `rows` with replacement.

    Resamples where `stat` is None (a ratio with nothing under it) are left out;
    (None, None) when no resample has a value.
    """
    if not rows or resamples <= 0:
        return None, None
    width = len(rows[0])
    packed = [sum(v << (_BITS * i) for i, v in enumerate(row)) for row in rows]
    n = len(packed)
    values: list[float] = []
    for _ in range(resamples):
        total = sum(rng.choices(packed, k=n))
        value = stat([(total >> (_BITS * i)) & _MASK for i in range(width)])
        if value is not None:
            values.append(value)
    if not values:
        return None, None
    tail = (1 - LEVEL) / 2
    return percentile(values, tail), percentile(values, 1 - tail)


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def _rng(seed: int, metric: str) -> random.Random:
    return random.Random(f"{seed}:{metric}")


def estimate(rows: Sequence[Sequence[int]], num: int, den: int, *, metric: str, resamples: int, seed: int,
             ) -> Estimate:
    """sum(row[num]) / sum(row[den]) over `rows` (one per case), with its bootstrap interval."""
    n = sum(r[num] for r in rows)
    d = sum(r[den] for r in rows)
    if d == 0:
        return Estimate(None, None, None, n, d)
    if len(rows) < 2:
        # Resampling one case gives it back every time: an interval of zero width would claim a
        # certainty one case cannot give. Said as "no interval".
        return Estimate(n / d, None, None, n, d)
    low, high = bootstrap(rows, lambda s: _ratio(s[num], s[den]), resamples=resamples, rng=_rng(seed, metric))
    return Estimate(n / d, low, high, n, d)


# Columns of a planted row and of a control row.
_ONE, _CAUGHT, _RIGHT, _COUNTED = 0, 1, 2, 3
_ANY, _FOUND = 1, 2


def planted_row(c: CaseResult, min_severity: str) -> tuple[int, int, int, int]:
    """(1, caught, counted right findings, counted findings) of a scored planted case."""
    counted = c.counted(min_severity)
    right = sum(1 for f in counted if f.right)
    return 1, int(right > 0), right, len(counted)


def control_row(c: CaseResult, min_severity: str) -> tuple[int, int, int]:
    """(1, has a counted finding, counted findings) of a scored control case."""
    n = len(c.counted(min_severity))
    return 1, int(n > 0), n


# --- scoring -----------------------------------------------------------------


def _kind_order(kinds: Iterable[str]) -> list[str]:
    known = list(PLANTED_KINDS) + list(CONTROL_KINDS)
    present = set(kinds)
    return [k for k in known if k in present] + sorted(present - set(known))


def _calibration(cases: Sequence[CaseResult]) -> tuple[tuple[Bucket, ...], tuple[Bucket, ...]]:
    findings = [f for c in cases if c.done for f in c.findings]

    def bucket(label: str, members: list[ScoredFinding]) -> Bucket:
        right = sum(1 for f in members if f.right)
        return Bucket(label, len(members), right, _ratio(right, len(members)))

    severity = tuple(bucket(s, [f for f in findings if f.finding.severity == s]) for s in SEVERITIES)
    confidence = [
        bucket(label, [f for f in findings if f.finding.confidence is not None and low <= f.finding.confidence < high])
        for label, low, high in CONFIDENCE_BUCKETS
    ]
    confidence.append(bucket(NO_CONFIDENCE, [f for f in findings if f.finding.confidence is None]))
    return severity, tuple(confidence)


def _spend(cases: Sequence[CaseResult]) -> Spend:
    ran = [c for c in cases if c.status != "missing"]
    n = len(ran)
    costs = [c.cost_usd for c in ran]
    cost = None if any(x is None for x in costs) else round(sum(x for x in costs if x is not None), 6)
    seconds = [c.seconds for c in ran]
    tokens_in = sum(c.input_tokens for c in ran)
    tokens_out = sum(c.output_tokens for c in ran)
    return Spend(
        cases=n, input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost, seconds=sum(seconds),
        mean_input_tokens=tokens_in / n if n else None, mean_output_tokens=tokens_out / n if n else None,
        mean_cost_usd=cost / n if n and cost is not None else None,
        mean_seconds=sum(seconds) / n if n else None,
        p50_seconds=percentile(seconds, 0.5) if n else None, p90_seconds=percentile(seconds, 0.9) if n else None,
    )


def _noise_key(item: Noisy) -> tuple[int, float, str, int]:
    f = item.finding
    confidence = -1.0 if f.confidence is None else f.confidence
    return -SEVERITY_RANK[f.severity], -confidence, item.case.id, item.index


def rescore(cases: Sequence[CaseResult], *, run: Run, min_severity: str = "warning", tolerance: int = 3,
            resamples: int = 2000, seed: int = 0, languages: Sequence[LanguageCount] = (),
            notes: Sequence[str] = ()) -> Score:
    """The `Score` of cases whose findings are already judged right or not (`CaseResult`).

    `score` calls it after matching; `report.load` calls it on a report read back,
    so a loaded report holds exactly what was written. Raises ValueError for an
    unknown `min_severity`.
    """
    if min_severity not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {min_severity!r}; expected one of {', '.join(SEVERITIES)}")
    cases = tuple(cases)
    planted = [c for c in cases if c.done and c.planted]
    controls = [c for c in cases if c.done and not c.planted]
    prows = [planted_row(c, min_severity) for c in planted]
    crows = [control_row(c, min_severity) for c in controls]
    kw = dict(resamples=resamples, seed=seed)

    kinds = []
    for kind in _kind_order(c.kind for c in cases):
        members = [c for c in cases if c.kind == kind]
        done = [c for c in members if c.done]
        is_planted = members[0].planted
        if is_planted:
            recall = estimate([planted_row(c, min_severity) for c in done], _CAUGHT, _ONE,
                              metric=f"recall:{kind}", **kw)
            kinds.append(KindScore(kind, True, len(done), len(members) - len(done), recall, None))
        else:
            noise = estimate([control_row(c, min_severity) for c in done], _FOUND, _ONE, metric=f"noise:{kind}", **kw)
            kinds.append(KindScore(kind, False, len(done), len(members) - len(done), None, noise))

    order = {k: i for i, k in enumerate(_kind_order(c.kind for c in cases))}
    misses = sorted((c for c in planted if not c.caught(min_severity)), key=lambda c: (order[c.kind], c.id))
    noisy = sorted(
        (Noisy(c, sf.finding, i) for c in planted + controls for i, sf in enumerate(c.findings)
         if not sf.right and SEVERITY_RANK[sf.finding.severity] >= SEVERITY_RANK[min_severity]),
        key=_noise_key,
    )
    severity_cal, confidence_cal = _calibration(cases)
    return Score(
        run=run, min_severity=min_severity, tolerance=tolerance, resamples=resamples, seed=seed, cases=cases,
        recall=estimate(prows, _CAUGHT, _ONE, metric="recall", **kw),
        precision=estimate(prows, _RIGHT, _COUNTED, metric="precision", **kw),
        noise=estimate(crows, _FOUND, _ONE, metric="noise", **kw),
        noisy_controls=estimate(crows, _ANY, _ONE, metric="noisy-controls", **kw),
        kinds=tuple(kinds), severity_calibration=severity_cal, confidence_calibration=confidence_cal,
        spend=_spend(cases),
        misses=tuple(misses[:LIST_CAP]), misses_left_out=max(0, len(misses) - LIST_CAP),
        noisiest=tuple(noisy[:LIST_CAP]), noisiest_left_out=max(0, len(noisy) - LIST_CAP),
        languages=tuple(languages), notes=tuple(notes),
    )


def _run_of(plan: CasePlan, outcomes: Sequence[CaseOutcome]) -> Run:
    modes = {o.mode for o in outcomes}
    mode: Mode = "mixed" if len(modes) > 1 else (modes.pop() if modes else "sync")
    return Run(commit=plan.commit, seed=plan.seed, mode=mode, tools=any(o.tools for o in outcomes))


def score(plan: CasePlan, outcomes: Sequence[CaseOutcome], *, min_severity: str = "warning", tolerance: int = 3,
          resamples: int = 2000, seed: int = 0, run: Run | None = None) -> Score:
    """Score the outcomes of `plan`'s cases (see the module docstring for the rules).

    `run` describes the run for the reports; without it, what the plan and the
    outcomes say (commit, plan seed, mode, tools). A case without an outcome is
    scored as "missing"; an outcome naming no case of the plan is set aside
    with a note; of two outcomes for one case, the last counts (a resumed run).
    Raises ValueError for an unknown `min_severity` or a negative `tolerance`.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be 0 or more, not {tolerance}")
    by_id: dict[str, CaseOutcome] = {}
    repeated = 0
    for o in outcomes:
        repeated += o.case_id in by_id
        by_id[o.case_id] = o
    known = {c.id for c in plan.cases}
    stray_ids = sorted(set(by_id) - known)
    notes = list(plan.notes)
    if stray_ids:
        notes.append(f"{len(stray_ids)} outcome(s) name no case of the plan and are not scored: "
                     + ", ".join(stray_ids[:5]) + (", ..." if len(stray_ids) > 5 else ""))
    if repeated:
        notes.append(f"{repeated} case(s) had more than one outcome; the last one was scored")
    results = [result_of(c, by_id.get(c.id), tolerance) for c in plan.cases]
    return rescore(results, run=run or _run_of(plan, outcomes), min_severity=min_severity, tolerance=tolerance,
                   resamples=resamples, seed=seed, languages=plan.languages, notes=notes)
