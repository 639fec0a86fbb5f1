"""`reviewer eval` scoring and reports: every number below is worked out by hand from the cases."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from reviewer import schemas
from reviewer.cli import main
from reviewer.errors import UsageError
from reviewer.eval import report
from reviewer.eval.models import Case, CaseOutcome, CasePlan, LanguageCount, Site
from reviewer.eval.score import Run, Score, score
from reviewer.models import Finding

SHA = "0123456789abcdef0123456789abcdef01234567"


def case(id: str, kind: str, path: str, start: int, end: int, *, planted: bool = True,
         sites: tuple[Site, ...] = (), diff: str | None = None) -> Case:
    return Case(id=id, kind=kind, planted=planted, language="python", path=path, start=start, end=end,
                description=f"{kind} in f", function="f",
                diff=diff or f"--- a/{path}\n+++ b/{path}\n@@ -{start} +{start} @@\n-old\n+new\n",
                new_text="", sites=sites)


def f(path: str, line: int | None, severity: str = "warning", confidence: float | None = None, *,
      end: int | None = None, side: str = "RIGHT", issue: str = "a problem") -> Finding:
    return Finding(file=path, severity=severity, issue=issue, line=line, end_line=end,  # type: ignore[arg-type]
                   side=side, confidence=confidence)  # type: ignore[arg-type]


# Six planted cases of three kinds (one of them fails), three controls.
CASES = (
    case("P1", "off-by-one", "a.py", 10, 10),
    case("P2", "off-by-one", "a.py", 20, 21),
    case("P3", "inverted-condition", "b.py", 5, 5),
    case("P4", "inverted-condition", "b.py", 30, 30),
    case("P5", "stale-callers", "c.py", 12, 14, sites=(Site("d.py", 50),)),
    case("P6", "stale-callers", "c.py", 60, 60, sites=(Site("d.py", 80),)),
    case("C1", "rename-local", "e.py", 1, 3, planted=False),
    case("C2", "reformat", "e.py", 10, 12, planted=False),
    case("C3", "extract-constant", "f.py", 5, 5, planted=False),
)
FINDINGS = {
    "P1": (f("a.py", 10, "warning", 0.9),),                         # exact: caught
    "P2": (f("a.py", 24, "critical", 0.8),                          # end + 3: caught
           f("a.py", 40, "warning", 0.6)),                          # far away: stray
    "P3": (f("b.py", 9, "warning", 0.75),                           # start + 4: stray, not a catch
           f("b.py", 5, "info", None),                              # exact but below warning: right, no catch
           f("a.py", 5, "warning", 0.3)),                           # exact line, other file: stray
    "P4": (f("b.py", None, "warning", None),                        # file-level: never catches
           f("b.py", 30, "warning", 0.85, side="LEFT")),            # old side: never catches
    "P5": (f("d.py", 47, "warning", 0.95),),                        # stale call site - 3: caught
    "P6": (f("c.py", 60, "critical", 0.99),),                       # failed case: counted nowhere
    "C1": (f("e.py", 1, "warning", 0.5), f("e.py", 2, "warning", 0.69), f("e.py", 3, "warning", None)),
    "C2": (f("e.py", 11, "critical", 0.99), f("e.py", 10, "info", 0.1)),
    "C3": (),
}


def outcomes(costs: dict[str, float | None] | None = None) -> list[CaseOutcome]:
    out = []
    for i, c in enumerate(CASES, start=1):
        failed = c.id == "P6"
        out.append(CaseOutcome(case_id=c.id, status="failed" if failed else "done", findings=FINDINGS[c.id],
                               input_tokens=1000, output_tokens=100, cost_usd=(costs or {}).get(c.id, 0.01),
                               seconds=float(i), error="API error 529" if failed else None))
    return out


PLAN = CasePlan(commit=SHA, seed=7, cases=CASES, languages=(LanguageCount("python", 12, True, "ast"),),
                notes=("asked for 8 planted cases, the repository gave 6",))
RUN = Run(commit=SHA, seed=7, models=("claude-sonnet-4-5",), mode="sync", tools=True,
          started_at="2025-01-01T00:00:00Z", finished_at="2025-01-01T00:10:00Z", config_digest="sha256:abc")


@pytest.fixture(scope="module")
def s() -> Score:
    return score(PLAN, outcomes(), run=RUN)


def test_recall_counts_catches_within_three_lines_and_never_a_file_level_or_old_side_finding(s: Score) -> None:
    assert (s.recall.numerator, s.recall.denominator) == (3, 5)
    assert s.recall.value == pytest.approx(3 / 5)
    caught = {c.id: c.caught(s.min_severity) for c in s.cases}
    assert caught == {"P1": True, "P2": True, "P3": False, "P4": False, "P5": True, "P6": None,
                      "C1": None, "C2": None, "C3": None}


def test_a_stale_callers_case_is_caught_on_its_call_site(s: Score) -> None:
    p5 = s.case("P5")
    assert p5 is not None and [x.finding.file for x in p5.catches("warning")] == ["d.py"]


def test_precision_is_right_counted_findings_over_counted_findings_on_planted_cases(s: Score) -> None:
    # counted (>= warning) on P1..P5: 1 + 2 + 2 + 2 + 1 = 8, of which right: P1, P2's critical, P5.
    assert (s.precision.numerator, s.precision.denominator) == (3, 8)
    assert s.precision.value == pytest.approx(3 / 8)


def test_noise_is_counted_findings_per_control_and_info_does_not_count(s: Score) -> None:
    assert (s.noise.numerator, s.noise.denominator) == (4, 3)
    assert s.noise.value == pytest.approx(4 / 3)
    assert (s.noisy_controls.numerator, s.noisy_controls.denominator) == (2, 3)


def test_per_kind_recall_and_noise(s: Score) -> None:
    kinds = {k.kind: k for k in s.kinds}
    assert [k.kind for k in s.kinds] == ["inverted-condition", "off-by-one", "stale-callers",
                                         "rename-local", "extract-constant", "reformat"]
    assert kinds["off-by-one"].recall is not None and kinds["off-by-one"].recall.value == 1.0
    assert kinds["inverted-condition"].recall is not None and kinds["inverted-condition"].recall.value == 0.0
    stale = kinds["stale-callers"]
    assert stale.recall is not None and (stale.recall.numerator, stale.recall.denominator, stale.excluded) == (1, 1, 1)
    assert kinds["rename-local"].noise is not None and kinds["rename-local"].noise.value == 3.0
    assert kinds["extract-constant"].noise is not None and kinds["extract-constant"].noise.value == 0.0
    assert kinds["rename-local"].recall is None and kinds["off-by-one"].noise is None


def test_calibration_by_severity_and_confidence(s: Score) -> None:
    sev = {b.label: (b.findings, b.right) for b in s.severity_calibration}
    assert sev == {"critical": (2, 1), "warning": (10, 2), "info": (2, 1)}
    conf = {b.label: (b.findings, b.right) for b in s.confidence_calibration}
    assert conf == {"[0, 0.5)": (2, 0), "[0.5, 0.7)": (3, 0), "[0.7, 0.85)": (2, 1), "[0.85, 1.0]": (4, 2),
                    "none": (3, 1)}
    assert next(b.share for b in s.confidence_calibration if b.label == "[0.85, 1.0]") == 0.5
    assert next(b.share for b in s.severity_calibration if b.label == "critical") == 0.5


def test_spend_counts_every_case_that_ran_failed_ones_included(s: Score) -> None:
    sp = s.spend
    assert (sp.cases, sp.input_tokens, sp.output_tokens) == (9, 9000, 900)
    assert sp.cost_usd == pytest.approx(0.09) and sp.mean_cost_usd == pytest.approx(0.01)
    assert (sp.mean_seconds, sp.p50_seconds) == (5.0, 5.0)
    assert sp.p90_seconds == pytest.approx(8.2)  # 1..9 s: 8 + 0.2 * (9 - 8)


def test_an_unknown_cost_makes_the_total_unknown() -> None:
    sp = score(PLAN, outcomes({"C3": None}), resamples=10).spend
    assert sp.cost_usd is None and sp.mean_cost_usd is None and sp.input_tokens == 9000


def test_failed_case_is_listed_and_left_out_of_every_rate(s: Score) -> None:
    assert [(c.id, c.status, c.error) for c in s.excluded] == [("P6", "failed", "API error 529")]
    assert "1 not scored" in report.render_text(s)
    assert "**Not scored:** 1 of 9 cases (1 failed)" in report.render_markdown(s)


def test_a_case_without_outcome_is_missing_and_a_stray_outcome_is_noted() -> None:
    outs = [o for o in outcomes() if o.case_id != "C3"] + [CaseOutcome("ghost", "done")]
    got = score(PLAN, outs, resamples=10)
    c3 = got.case("C3")
    assert c3 is not None and c3.status == "missing"
    assert got.noise.denominator == 2
    assert any("ghost" in n for n in got.notes)


def test_misses_and_noisiest_findings_are_listed_most_severe_and_confident_first(s: Score) -> None:
    assert [c.id for c in s.misses] == ["P3", "P4"] and s.misses_left_out == 0
    shown = [(n.case.id, n.finding.severity, n.finding.confidence) for n in s.noisiest]
    assert shown == [("C2", "critical", 0.99), ("P4", "warning", 0.85), ("P3", "warning", 0.75),
                     ("C1", "warning", 0.69), ("P2", "warning", 0.6), ("C1", "warning", 0.5),
                     ("P3", "warning", 0.3), ("C1", "warning", None), ("P4", "warning", None)]
    assert s.noisiest_left_out == 0


def test_lists_are_capped_with_a_count_of_the_rest() -> None:
    many = tuple(case(f"M{i:02}", "off-by-one", "a.py", 10, 10) for i in range(25))
    got = score(CasePlan(SHA, 0, many), [CaseOutcome(c.id, "done", (f("x.py", 1),)) for c in many], resamples=10)
    assert (len(got.misses), got.misses_left_out) == (20, 5)
    assert (len(got.noisiest), got.noisiest_left_out) == (20, 5)


def test_intervals_hold_the_estimate_and_are_fixed_by_the_seed(s: Score) -> None:
    for e in (s.recall, s.precision, s.noise, s.noisy_controls):
        assert e.low is not None and e.high is not None and e.value is not None
        assert e.low <= e.value <= e.high
    again = score(PLAN, outcomes(), run=RUN)
    assert again == s
    other = score(PLAN, outcomes(), run=RUN, seed=1)
    assert other.recall.value == s.recall.value


def test_nothing_to_measure_is_none_not_zero() -> None:
    only_controls = CasePlan(SHA, 0, CASES[6:])
    got = score(only_controls, [o for o in outcomes() if o.case_id.startswith("C")], resamples=10)
    assert got.recall.value is None and got.recall.low is None and got.precision.value is None
    assert got.noise.value == pytest.approx(4 / 3)
    only_planted = score(CasePlan(SHA, 0, CASES[:2]), outcomes()[:2], resamples=10)
    assert only_planted.noise.value is None and only_planted.noisy_controls.value is None
    empty = score(CasePlan(SHA, 0, ()), [], resamples=10)
    assert empty.recall.value is None and empty.spend.mean_seconds is None
    assert "not measured" in report.render_text(empty) and "not measured" in report.render_markdown(empty)
    assert schemas.first_error(schemas.load("eval-report"), json.loads(report.render_json(empty))) is None


def test_min_severity_decides_what_catches() -> None:
    got = score(PLAN, outcomes(), min_severity="info", resamples=10)
    assert got.recall.numerator == 4  # P3's info finding on the exact line now catches
    crit = score(PLAN, outcomes(), min_severity="critical", resamples=10)
    assert (crit.recall.numerator, crit.noise.numerator) == (1, 1)


def test_bootstrap_of_500_cases_is_fast() -> None:
    kinds = ("off-by-one", "inverted-condition", "removed-guard", "stale-callers")
    many = tuple(case(f"B{i}", kinds[i % 4], "a.py", 10, 10) for i in range(400)) + tuple(
        case(f"K{i}", "reformat", "a.py", 10, 10, planted=False) for i in range(100))
    outs = [CaseOutcome(c.id, "done", (f("a.py", 10 + i % 7, confidence=0.5),)) for i, c in enumerate(many)]
    start = time.perf_counter()
    got = score(CasePlan(SHA, 0, many), outs, resamples=2000)
    assert time.perf_counter() - start < 1.5  # about 0.3 s here; the margin is for slow CI machines
    assert got.recall.denominator == 400


def test_json_report_validates_and_loads_back_as_the_same_score(s: Score, tmp_path: Path) -> None:
    text = report.render_json(s)
    doc = json.loads(text)
    assert schemas.first_error(schemas.load("eval-report"), doc) is None
    assert doc["version"] == 1 and doc["run"]["models"] == ["claude-sonnet-4-5"]
    assert doc["scoring"]["min_severity"] == "warning"
    p2 = next(c for c in doc["cases"] if c["id"] == "P2")
    assert (p2["counted"], p2["catches"], p2["stray"], p2["caught"]) == (2, 1, 1, True)
    assert [x["right"] for x in p2["findings"]] == [True, False]
    path = tmp_path / "eval.json"
    path.write_text(text, encoding="utf-8")
    assert report.load(path) == s


def test_the_schema_is_listed_and_printed_by_reviewer_schema(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    assert "eval-report" in schemas.NAMES
    jsonschema.Draft202012Validator.check_schema(schemas.load("eval-report"))
    assert main(["schema", "eval-report"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Eval report"


@pytest.mark.parametrize("content, says", [
    ("not json {", "not JSON"),
    ('{"version": 1, "findings": [], "stats": {}}', "not a valid eval report"),
    ("[1, 2]", "not a valid eval report"),
])
def test_a_bad_or_foreign_file_is_a_one_line_usage_error(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        report.load(path)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_missing_file_or_a_newer_version_is_a_usage_error(s: Score, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        report.load(tmp_path / "absent.json")
    doc = json.loads(report.render_json(s))
    doc["version"] = 2
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(UsageError, match="version 2"):
        report.load(path)


def test_text_report_shows_the_headline_kinds_misses_and_noise(s: Score) -> None:
    text = report.render_text(s)
    assert "recall     60.0% (3 of 5 planted case(s) caught)" in text
    assert "precision  37.5% (3 of 8" in text
    assert "noise      1.33 finding(s) per control (4 in 3)" in text
    assert "FAILED" in text and "API error 529" in text
    assert "misses (2)" in text and "+new" in text


def test_markdown_has_the_headline_table_and_the_diffs_in_fences(s: Score) -> None:
    md = report.render_markdown(s)
    assert "| recall | precision | noise per control | cost | time per case |" in md
    assert "60.0% (3/5)" in md and "37.5% (3/8)" in md and "1.33 (4/3)" in md
    assert "<details><summary>Misses (2)</summary>" in md
    assert "```diff\n--- a/b.py" in md


def _outside_fences(md: str) -> str:
    kept, fence_len = [], 0
    for line in md.splitlines():
        m = re.match(r"^(`{3,})", line)
        if fence_len == 0 and m:
            fence_len = len(m.group(1))
        elif fence_len and line.strip() == "`" * fence_len:
            fence_len = 0
        elif not fence_len:
            kept.append(line)
    assert fence_len == 0, "a fence was left open"
    return "\n".join(kept)


def test_markdown_escapes_a_hostile_path_and_finding_text() -> None:
    hostile = "<img src=x onerror=alert(1)>.py"
    issue = "# looks wrong\n```\n</details><script>alert(1)</script> @everyone [x](javascript:alert(1))\n```"
    c = case("H1", "reformat", hostile, 1, 1, planted=False,
             diff="--- a/x\n+++ b/x\n@@ -1 +1 @@\n-```\n+``` </details>\n")
    got = score(CasePlan(SHA, 0, (c,)), [CaseOutcome("H1", "done", (f(hostile, 1, issue=issue),))], resamples=10)
    md = report.render_markdown(got)
    prose = _outside_fences(md)
    assert "<img" not in prose and "<script" not in prose and "@everyone" not in prose
    assert "&lt;img src=x onerror=alert(1)&gt;" in prose
    assert "\\# looks wrong<br>\\`\\`\\`<br>&lt;/details&gt;" in prose  # no heading, no fence, no tag
    assert "\\[x\\](javascript:alert(1))" in prose
    assert prose.count("<details>") == prose.count("</details>")
    assert "````diff" in md  # the diff holds ``` so its fence is longer


def test_compare_of_a_report_with_itself_shows_no_difference(s: Score) -> None:
    c = report.compare(s, s)
    assert (c.common, c.only_a, c.only_b, c.not_scored, c.planted, c.controls) == (9, (), (), ("P6",), 5, 3)
    for d in c.metrics + c.kinds:
        assert d.delta in (0, None)
        assert d.outside_noise in (False, None)
    recall = next(d for d in c.metrics if d.metric == "recall")
    # Five planted cases: under MIN_PAIRED_CASES, so the difference is given but not tested.
    assert (recall.a, recall.b, recall.low, recall.high, recall.outside_noise) == (0.6, 0.6, None, None, None)
    assert "outside the noise" not in report.render_compare_text(c)
    assert "outside the noise" not in report.render_compare_markdown(c)
    doc = json.loads(report.render_compare_json(c))
    assert doc["cases"]["common"] == 9 and doc["metrics"][0]["metric"] == "recall"


def test_compare_flags_a_real_difference_on_the_common_cases() -> None:
    cases = tuple(case(f"R{i:02}", "off-by-one", "a.py", 10, 10) for i in range(40))
    extra = tuple(case(f"X{i}", "off-by-one", "a.py", 10, 10) for i in range(3))
    a = score(CasePlan(SHA, 0, cases), [CaseOutcome(c.id, "done") for c in cases], resamples=500)
    b_cases = cases[5:] + extra
    b = score(CasePlan(SHA, 0, b_cases), [CaseOutcome(c.id, "done", (f("a.py", 11),)) for c in b_cases],
              resamples=500)
    c = report.compare(a, b)
    assert (c.common, len(c.only_a), len(c.only_b), c.planted) == (35, 5, 3, 35)
    recall = next(d for d in c.metrics if d.metric == "recall")
    assert (recall.a, recall.b, recall.delta, recall.outside_noise) == (0.0, 1.0, 1.0, True)
    kind = next(d for d in c.kinds if d.metric == "off-by-one")
    assert kind.outside_noise is True
    assert "outside the noise" in report.render_compare_text(c)
    assert "**outside the noise**" in report.render_compare_markdown(c)


def test_compare_uses_only_cases_done_in_both_runs() -> None:
    a = score(PLAN, outcomes(), resamples=50)
    b_outs = [replace(o, status="failed", error="x") if o.case_id == "P1" else o for o in outcomes()]
    b = score(PLAN, b_outs, resamples=50)
    c = report.compare(a, b)
    assert set(c.not_scored) == {"P1", "P6"} and c.planted == 4
    recall = next(d for d in c.metrics if d.metric == "recall")
    assert (recall.a, recall.b) == (0.5, 0.5)  # P2, P5 of P2..P5, in both


@pytest.mark.parametrize("text, shown", [
    ("1. not a list", "1\\. not a list"),
    ("- not an item", "\\- not an item"),
    ("+ not an item", "\\+ not an item"),
    ("=== not a heading underline", "\\=== not a heading underline"),
    ("a | b", "a \\| b"),
    ("**bold** _it_ ~~del~~", "\\*\\*bold\\*\\* \\_it\\_ \\~\\~del\\~\\~"),
    ("ping @org/team", "ping @\u200borg/team"),
    ("a & b <br>", "a &amp; b &lt;br&gt;"),
])
def test_untrusted_text_cannot_start_markdown_structure(text: str, shown: str) -> None:
    assert report._md(text) == shown


def test_text_report_writes_control_characters_as_escapes() -> None:
    c = case("T1", "reformat", "e.py", 1, 1, planted=False)
    got = score(CasePlan(SHA, 0, (c,)), [CaseOutcome("T1", "done", (f("e.py", 1, issue="x\x1b[2J\u202ey"),))],
                resamples=10)
    text = report.render_text(got)
    assert "\x1b" not in text and "\u202e" not in text and "\\x1b[2J\\u202ey" in text


def test_compare_tells_the_runs_apart_and_says_which_way_the_difference_goes(s: Score) -> None:
    b = score(PLAN, outcomes(), run=replace(RUN, models=("claude-opus-4-1",), config_digest="sha256:def"))
    md = report.render_compare_markdown(report.compare(s, b))
    assert "claude\\-sonnet" not in md  # models are not over-escaped
    assert "- **A**: commit 0123456789ab · claude-sonnet-4-5" in md and "config sha256:def" in md
    assert "B − A" in md
    doc = json.loads(report.render_compare_json(report.compare(s, b)))
    assert doc["scoring"]["delta"] == "b - a" and doc["metrics"][0]["unit"] == "share"


def test_a_report_with_missing_cases_and_odd_paths_validates_and_round_trips(tmp_path: Path) -> None:
    odd = "b\udcff<x>.py"  # a byte that is not UTF-8, kept by surrogateescape
    c = case("O1", "off-by-one", odd, 3, 3)
    plan = CasePlan(SHA, 0, (c, CASES[6]))
    got = score(plan, [CaseOutcome("O1", "done", (f(odd, 30, confidence=1.0),), cost_usd=None)], resamples=20)
    doc = json.loads(report.render_json(got))
    assert schemas.first_error(schemas.load("eval-report"), doc) is None
    assert doc["excluded"] == [{"case": "C1", "kind": "rename-local", "planted": False, "status": "missing",
                                "reason": "no outcome"}]
    path = tmp_path / "eval.json"
    path.write_text(report.render_json(got), encoding="utf-8")
    assert report.load(path) == got
    assert "b\\xff<x>.py" in report.render_text(got)


def test_a_kind_with_one_case_has_no_interval_rather_than_a_zero_width_one() -> None:
    from reviewer.eval.score import estimate

    one = estimate([(1, 1, 1, 1)], 1, 0, metric="recall", resamples=200, seed=0)
    assert one.value == 1.0 and one.low is None and one.high is None
    two = estimate([(1, 1, 1, 1), (1, 0, 0, 0)], 1, 0, metric="recall", resamples=200, seed=0)
    assert two.low is not None and two.low <= 0.5 <= two.high


def test_compare_does_not_test_a_difference_over_fewer_than_six_cases() -> None:
    # One case caught in A and missed in B: a bootstrap would call -100 pts certain.
    cases = tuple(case(f"K{i}", "off-by-one", "a.py", 10, 10) for i in range(3))
    plan = CasePlan(SHA, 0, cases)
    hit = [CaseOutcome(c.id, "done", (f("a.py", 10),)) for c in cases]
    miss = [CaseOutcome(c.id, "done", ()) for c in cases]
    c = report.compare(score(plan, hit, resamples=200), score(plan, miss, resamples=200))
    recall = next(d for d in c.metrics if d.metric == "recall")
    assert recall.delta == -1.0 and recall.outside_noise is None and recall.low is None
    assert "not tested (under 6 cases)" in report.render_compare_text(c)
    assert "outside the noise" not in report.render_compare_text(c)
