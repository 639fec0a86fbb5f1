"""Pass 3 verifies (issue 12, item 4): an independent call per finding, quotes checked against the head commit.

The real SDK against the Anthropic emulator, the real CLI against the GitHub
emulator, and a real git repository for the head commit the verifier reads.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reviewer import diff as diff_mod
from reviewer import engine, schemas
from reviewer.cli import main
from reviewer.config import Config
from reviewer.repo_view import RepoView
from tests.conftest import git
from tests.emulators.anthropic import Slow
from tests.emulators.github import PullFile
from tests.model_script import (
    ScriptedModel,
    ToolCalls,
    Turns,
    pass_of,
    task_text,
    tool_results,
    verify_task,
)
from tests.security_table import case

MEDIAN_EMPTY = {"file": "util.py", "line": 7, "side": "RIGHT", "severity": "warning", "category": "edge-case",
                "confidence": 0.9, "issue": "median() raises IndexError for an empty list"}
MEAN_EMPTY = {"file": "util.py", "line": 2, "side": "RIGHT", "severity": "warning", "category": "edge-case",
              "confidence": 0.9, "issue": "mean() divides by zero for an empty list"}
APP_NAMING = {"file": "app.py", "line": 5, "side": "RIGHT", "severity": "info", "category": "naming",
              "confidence": 0.8, "issue": "the report string is hard to read"}
CROSS = {"file": "app.py", "line": 5, "side": "RIGHT", "severity": "critical", "category": "api-contract",
         "confidence": 0.7, "issue": "report() passes an unchecked list to median()"}

MEDIAN_LINE = "    return xs[len(xs) // 2]"


def confirmed(*evidence: tuple[str, int, str], severity: str = "critical", confidence: float = 0.95,
              reason: str = "an empty list reaches xs[0]") -> dict:
    return {"verdict": "confirmed", "evidence": [{"file": f, "line": n, "quote": q} for f, n, q in evidence],
            "reason": reason, "severity": severity, "confidence": confidence}


def refuted(reason: str, *evidence: tuple[str, int, str]) -> dict:
    return {"verdict": "refuted", "evidence": [{"file": f, "line": n, "quote": q} for f, n, q in evidence],
            "reason": reason, "severity": "info", "confidence": 0.1}


def _diff(repo: Path) -> diff_mod.Diff:
    raw = subprocess.run(["git", "-C", str(repo), "diff", "HEAD~1...HEAD"], capture_output=True, check=True).stdout
    return diff_mod.parse(diff_mod.decode(raw))


def _review(repo: Path, config: Config | None = None, **kw) -> engine.ReviewResult:
    with RepoView(repo, "HEAD") as view:
        return engine.review(_diff(repo), config or Config(), view=view, **kw)


def _verify_requests(emu) -> list:
    return [r for r in emu.message_requests() if pass_of(r.body) == "verify"]


# ---------------------------------------------------------------------- what the verifier sees and decides


def test_a_confirmed_finding_takes_the_verifiers_severity_and_confidence(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY]}},
        # The verifier reads the file first, then quotes the line it read.
        verify={"median()": Turns(ToolCalls([("read_file", {"path": "util.py", "start_line": 5})], thinking=["?"]),
                                  confirmed(("util.py", 7, MEDIAN_LINE.strip())))},
    )
    result = _review(repo)
    [f] = result.findings
    assert (f.severity, f.confidence) == ("critical", 0.95)  # the verifier's, not the aggregate's 0.8
    assert f.verification is not None and f.verification.verdict == "confirmed"
    assert f.verification.evidence[0].line == 7
    assert (result.tally.confirmed, result.tally.refuted, result.tally.unverified) == (1, 0, 0)
    assert result.calls_per_pass()["verify"] == 2  # a tool turn and the answer: both counted in the pass

    [first, answer] = _verify_requests(anthropic_emu)
    assert "return xs[len(xs) // 2]" in tool_results(answer.body)[0]
    # A fresh conversation with the same tools and system prompt, and its own schema.
    per_file = next(r for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file")
    assert first.body["system"] == per_file.body["system"] and first.body["tools"] == per_file.body["tools"]
    assert len(first.body["messages"]) == 1
    assert first.body["output_config"]["format"]["schema"]["required"] == [
        "verdict", "evidence", "reason", "severity", "confidence"]


def test_the_verifier_sees_file_lines_category_and_issue_only(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(per_file={"util.py": {"findings": [
        {**MEDIAN_EMPTY, "suggestion": "return None for an empty list", "confidence": 0.42}]}},
        aggregate=lambda body: {"groups": [{"ids": ["F1"], "severity": "warning", "confidence": 0.37, "issue": None}]})
    _review(repo)
    [sent] = _verify_requests(anthropic_emu)
    task = verify_task(sent.body)
    assert task == {"file": "util.py", "lines": "7 at the head commit", "category": "edge-case",
                    "issue": "median() raises IndexError for an empty list"}
    text = task_text(sent.body)
    for hidden in ("0.42", "0.37", "warning", "per_file", "per-file", "return None for an empty list", "confidence 0"):
        assert hidden not in text.split("Finding's file: ")[1], hidden


def test_per_file_calls_that_spend_the_tool_budget_leave_the_verifier_its_own(anthropic_emu, repo: Path) -> None:
    reads = [("read_file", {"path": "util.py"}), ("read_file", {"path": "app.py"}), ("list_files", {"path": "."})]
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": Turns(ToolCalls(reads), {"findings": [MEDIAN_EMPTY]})},
        verify={"median()": Turns(ToolCalls([("read_file", {"path": "util.py", "start_line": 5})]),
                                  confirmed(("util.py", 7, MEDIAN_LINE)))})
    result = _review(repo, Config(max_tool_calls=2, max_tool_result_tokens=100_000))
    per_file_results = [t for r in anthropic_emu.message_requests()
                        if pass_of(r.body) == "per_file" and tool_results(r.body) for t in tool_results(r.body)]
    assert sum("budget of this review is spent" in t for t in per_file_results) == 1  # the review-wide budget ran out
    answer = _verify_requests(anthropic_emu)[-1]
    [read] = tool_results(answer.body)
    assert MEDIAN_LINE.strip() in read and "budget" not in read
    [f] = result.findings
    assert f.verification.verdict == "confirmed" and (f.severity, f.confidence) == ("critical", 0.95)

    # Its own budget spent, the verifier is told so and cannot confirm what it did not read.
    anthropic_emu.reset()
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY]}},
        verify={"median()": Turns(ToolCalls([("read_file", {"path": "util.py", "start_line": 5})]),
                                  confirmed(("util.py", 7, MEDIAN_LINE)))})
    _review(repo, Config(max_verify_tool_calls=0))
    [read] = tool_results(_verify_requests(anthropic_emu)[-1].body)
    assert "budget of this review is spent" in read


@case("verification", "a verifier confirms a finding quoting code that is not at the line it names",
      "the quote is looked up at the head commit; the finding is kept with the aggregate's rating, marked unverified")
def test_a_confirmation_whose_quote_is_not_in_the_code_is_unverified(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY, MEAN_EMPTY]}},
        verify={"median()": confirmed(("util.py", 7, "return xs[0]")),           # not what line 7 says
                "mean()": confirmed(("util.py", 2, "return sum(xs) / len(xs)"), ("util.py", 2, "    "))},
        aggregate=lambda body: {"groups": [{"ids": [r], "severity": "warning", "confidence": 0.6, "issue": None}
                                           for r in ("F1", "F2")]},
    )
    result = _review(repo)
    by_issue = {f.issue: f for f in result.findings}
    median = by_issue[MEDIAN_EMPTY["issue"]]
    assert median.verification.verdict == "unverified"
    assert "util.py' line 7: the quoted code is not there" in median.verification.reason
    # Kept, with the aggregate pass's rating (not the verifier's critical / 0.95).
    assert (median.severity, median.confidence) == ("warning", 0.6)
    mean = by_issue[MEAN_EMPTY["issue"]]
    assert mean.verification.verdict == "unverified" and "the quote is empty" in mean.verification.reason
    assert (result.tally.confirmed, result.tally.unverified) == (0, 2)


@pytest.mark.parametrize("quote", [
    "return   sum(xs)/len(xs)".replace("/", " / "),          # whitespace differs
    "sum(xs) / len(xs)",                                    # a part of the line
    "     2 | return sum(xs) / len(xs)",                    # the read_file margin left in
])
def test_a_quote_matches_whitespace_normalised(anthropic_emu, repo: Path, quote: str) -> None:
    anthropic_emu.responder = ScriptedModel(per_file={"util.py": {"findings": [MEAN_EMPTY]}},
                                            verify={"mean()": confirmed(("./util.py", 2, quote))})
    [f] = _review(repo).findings
    assert f.verification.verdict == "confirmed", f.verification.reason


def test_a_multi_line_quote_must_start_at_its_line(anthropic_emu, repo: Path) -> None:
    quote = "def median(xs):\n    xs = sorted(xs)\n    return xs[len(xs) // 2]\n"
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY, MEAN_EMPTY]}},
        verify={"median()": confirmed(("util.py", 5, quote)), "mean()": confirmed(("util.py", 4, quote))})
    by_issue = {f.issue: f.verification for f in _review(repo).findings}
    assert by_issue[MEDIAN_EMPTY["issue"]].verdict == "confirmed"
    assert by_issue[MEAN_EMPTY["issue"]].verdict == "unverified"  # one line early: lines 4-6 are not the quote


@case("verification", "a verifier cites `../../etc/passwd` as evidence",
      "the path is refused by the repository view, never read; the finding stays unverified")
def test_a_quote_outside_the_tree_is_never_read(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY]}},
        verify={"median()": confirmed(("../../etc/passwd", 1, "root:x:0:0"))})
    [f] = _review(repo).findings
    assert f.verification.verdict == "unverified"
    assert "has a '..' component" in f.verification.reason


def test_a_refuted_finding_is_not_kept_and_says_why(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY, MEAN_EMPTY]}},
        verify={"mean()": refuted("every caller checks for an empty list first", ("app.py", 4, "def report(xs):")),
                "median()": confirmed(("util.py", 7, MEDIAN_LINE))})
    result = _review(repo)
    assert [f.issue for f in result.findings] == [MEDIAN_EMPTY["issue"]]
    [gone] = result.refuted
    assert gone.issue == MEAN_EMPTY["issue"] and gone.verification.reason == "every caller checks for an empty list first"
    t = result.tally
    assert t.returned == len(result.findings) + t.rejected_total + t.over_limit_total + t.merged + t.refuted
    doc = result.to_dict()
    assert schemas.first_error(schemas.load("review"), doc) is None
    assert doc["refuted"][0]["verification"]["verdict"] == "refuted"
    assert doc["stats"]["tally"]["refuted"] == 1 and doc["stats"]["tally"]["confirmed"] == 1


@case("verification", "a verifier refutes a real finding with made-up code as evidence",
      "the refutation is not believed: the finding is kept and posted, marked unverified")
def test_a_refutation_whose_quote_is_not_in_the_code_keeps_the_finding(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEAN_EMPTY]}},
        verify={"mean()": refuted("mean() checks for an empty list", ("util.py", 2, "if not xs: return 0"))})
    result = _review(repo)
    [f] = result.findings
    assert f.verification.verdict == "unverified" and not result.refuted
    assert "refuted it, but its evidence does not match" in f.verification.reason


def test_findings_below_the_floor_are_not_verified(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(per_file={"util.py": {"findings": [MEDIAN_EMPTY]},
                                                      "app.py": {"findings": [APP_NAMING]}})
    result = _review(repo)
    [sent] = _verify_requests(anthropic_emu)
    assert verify_task(sent.body)["file"] == "util.py"
    naming = next(f for f in result.findings if f.file == "app.py")
    assert naming.verification is None and "verification" not in naming.to_dict()
    anthropic_emu.reset()
    anthropic_emu.responder = ScriptedModel(per_file={"util.py": {"findings": [MEDIAN_EMPTY]},
                                                      "app.py": {"findings": [APP_NAMING]}})
    _review(repo, Config(verify_min_severity="info"))
    assert len(_verify_requests(anthropic_emu)) == 2
    anthropic_emu.reset()
    anthropic_emu.responder = ScriptedModel(per_file={"util.py": {"findings": [MEDIAN_EMPTY]}})
    result = _review(repo, Config(verify_min_severity="critical"))
    assert not _verify_requests(anthropic_emu) and not any("verif" in n for n in result.notes)


def test_without_a_repository_or_with_verify_off_nothing_is_verified_and_it_is_said_once(
        anthropic_emu, repo: Path) -> None:
    def model() -> ScriptedModel:
        return ScriptedModel(per_file={"util.py": {"findings": [MEDIAN_EMPTY, MEAN_EMPTY]}})

    anthropic_emu.responder = model()
    result = engine.review(_diff(repo), Config())  # a diff file: no repository at the head
    assert not _verify_requests(anthropic_emu)
    said = [n for n in result.notes if "not checked by an independent verifier" in n]
    assert len(said) == 1 and "no repository at the head commit" in said[0]
    assert all(f.verification is None for f in result.findings)

    anthropic_emu.reset()
    anthropic_emu.responder = model()
    result = _review(repo, Config(verify=False))
    assert not _verify_requests(anthropic_emu)
    assert [n for n in result.notes if "verifier" in n] == [
        "findings were not checked by an independent verifier (verify = false)"]

    anthropic_emu.reset()
    anthropic_emu.responder = model()
    result = _review(repo, Config(tools=False))  # today's review: nothing verified, nothing to say
    assert not _verify_requests(anthropic_emu) and not [n for n in result.notes if "verif" in n]


def test_verifier_calls_run_concurrently_under_max_concurrency(anthropic_emu, repo: Path) -> None:
    findings = [{**MEDIAN_EMPTY, "line": n, "issue": f"problem number {n}"} for n in (1, 2, 5, 6, 7)]
    anthropic_emu.responder = ScriptedModel(per_file={"util.py": {"findings": findings}})
    anthropic_emu.latency = 0.5
    _review(repo, Config(max_concurrency=3))
    sent = _verify_requests(anthropic_emu)
    assert len(sent) == 5
    starts = sorted(r.started for r in sent)
    lead = min(sent, key=lambda r: r.started)
    # The first writes the cache alone; the others start once its response began, three at a time.
    assert all(r.started >= lead.began for r in sent if r is not lead)
    overlapping = max(sum(1 for r in sent if r.started <= t < r.finished) for t in starts)
    assert overlapping == 3
    assert starts[-1] - starts[0] < 3 * 0.5  # not one after another (that would take 5 x 0.5 s)


def test_the_deadline_cancels_verification_and_the_findings_keep_their_rating(anthropic_emu, repo: Path) -> None:
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY, MEAN_EMPTY]}},
        verify={"median()": confirmed(("util.py", 7, MEDIAN_LINE)), "mean()": Slow(5.0)})
    result = _review(repo, Config(timeout=2.0))
    assert result.incomplete is not None
    assert "verification did not finish (1 of 2 findings checked" in result.incomplete.message
    by_issue = {f.issue: f for f in result.findings}
    mean = by_issue[MEAN_EMPTY["issue"]]
    assert mean.verification.verdict == "unverified" and "deadline" in mean.verification.reason
    assert (mean.severity, mean.confidence) == ("warning", 0.8)  # the aggregate's (ScriptedModel default)
    assert by_issue[MEDIAN_EMPTY["issue"]].verification.verdict == "confirmed"
    verify_calls = [c for c in result.calls if c.pass_name == "verify"]
    assert any(not c.ok for c in verify_calls)  # sent and never answered: listed as failed, maybe billed


def test_the_dry_run_estimates_verification_and_says_so(repo: Path, capsys, no_anthropic) -> None:
    with RepoView(repo, "HEAD") as view:
        plan = engine.plan(_diff(repo), Config(), view=view)
    # 3 files in the diff x 2 expected findings, half of them verified.
    assert plan.calls_per_pass()["verify"] == 3
    assert any("50% of ~6 expected findings" in n and "go to the verifier" in n for n in plan.notes)
    verify_calls = [c for c in plan.calls if c.pass_name == "verify"]
    assert verify_calls[0].cached_tokens and verify_calls[1].input_tokens < verify_calls[0].input_tokens + 10_000
    plain = engine.plan(_diff(repo), Config())
    assert plain.calls_per_pass()["verify"] == 0
    assert sum("not checked by an independent verifier" in n for n in plain.notes) == 1
    assert plan.cost_usd > plain.cost_usd
    code = main(["review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "verify ~2" in out  # the CLI skips poetry.lock: 2 files and "go to the verifier" in out


# ---------------------------------------------------------------------- on the pull request

PR_REPO = "acme/shop"


def _add_pr(gh, repo: Path) -> str:
    """Pull request 7 of acme/shop whose head is the `repo` fixture's HEAD (its files, its SHAs)."""
    head, base = git(repo, "rev-parse", "HEAD").strip(), git(repo, "rev-parse", "HEAD~1").strip()
    files = []
    for path in ("app.py", "util.py"):
        patch = git(repo, "diff", "HEAD~1", "HEAD", "--", path)
        files.append(PullFile(path, patch=patch[patch.index("@@"):], content=(repo / path).read_bytes()))
    gh.add_pull(PR_REPO, 7, head, base, files=files)
    return head


def _review_pr(capsys, repo: Path, *extra: str) -> tuple[int, dict, str]:
    code = main(["review", "--pr", "7", "--repo", PR_REPO, "--post", "--format", "json", "--repo-dir", str(repo), *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_a_refuted_finding_lands_under_checked_and_not_posted(anthropic_emu, github_emu, repo: Path, capsys) -> None:
    from tests.conservation import check_conservation

    _add_pr(github_emu, repo)
    model = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY, MEAN_EMPTY]}, "app.py": {"findings": [APP_NAMING]}},
        verify={"mean()": refuted("report() is the only caller and its input is never empty"),
                "median()": confirmed(("util.py", 7, MEDIAN_LINE))})
    anthropic_emu.responder = model
    code, doc, err = _review_pr(capsys, repo)
    assert code == 0, err

    comments = github_emu.review_comments(PR_REPO, 7)
    assert sorted((c["path"], c["line"]) for c in comments) == [("app.py", 5), ("util.py", 7)]
    median = next(c for c in comments if c["path"] == "util.py")
    assert "**critical** · edge-case · confidence 0.95 · verified" in median["body"]
    assert all("divides by zero" not in c["body"] for c in comments)  # the refuted one is not inline

    [review] = [r for r in github_emu.reviews(PR_REPO, 7) if "reviewer:review" in r["body"]]
    section = review["body"].split("<summary>Checked and not posted (refuted by the verifier) (1)</summary>")[1]
    assert "mean() divides by zero for an empty list" in section.split("</details>")[0]
    assert "Refuted: report() is the only caller and its input is never empty" in section
    assert "1 checked by the verifier and not posted" in review["body"]

    ledger = check_conservation(github_emu, PR_REPO, 7, returned=model.returned)
    assert ledger["refuted"] == 1 and ledger["inline"] == 2 and ledger["body"] == 1
    [summary] = github_emu.issue_comments(PR_REPO, 7)
    assert "Verification: 1 confirmed with quoted code, 1 refuted, 0 unverified" in summary["body"]
    assert [f["issue"] for f in doc["refuted"]] == [MEAN_EMPTY["issue"]]

    # The next run does not read the refuted finding back as posted: nothing of it is "still open".
    anthropic_emu.responder = ScriptedModel()
    code, doc, err = _review_pr(capsys, repo, "--force")
    assert code == 0, err
    [summary] = github_emu.issue_comments(PR_REPO, 7)
    assert "**0 new**, 2 still open" in summary["body"]  # the two posted, not the refuted one


def test_an_unverified_finding_is_posted_with_its_rating_and_marked(anthropic_emu, github_emu, repo: Path, capsys) -> None:
    _add_pr(github_emu, repo)
    anthropic_emu.responder = ScriptedModel(
        per_file={"util.py": {"findings": [MEDIAN_EMPTY]}},
        verify={"median()": confirmed(("util.py", 7, "return xs[-1]"))})
    code, doc, err = _review_pr(capsys, repo)
    assert code == 0, err
    [comment] = github_emu.review_comments(PR_REPO, 7)
    assert "**warning** · edge-case · confidence 0.80 · unverified" in comment["body"]
    assert "Not verified: the verifier&#x27;s quote does not match the code" in comment["body"] or \
        "Not verified: the verifier's quote does not match the code" in comment["body"]
    assert doc["stats"]["tally"]["unverified"] == 1
