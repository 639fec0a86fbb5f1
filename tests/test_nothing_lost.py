"""Nothing lost, nothing repeated (issue 10): on a real 38-file pull request of
this repository's history (`bench/data/pr38.json.gz`), with a push that moves
lines between two runs. Real PyGithub and anthropic SDK against the emulators;
the conservation law (tests/conservation.py) is checked on every run.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import pytest

from reviewer.cli import main
from tests.conservation import check_conservation, markers
from tests.emulators.github import PullFile
from tests.model_script import ScriptedModel, pass_of, user_text
from tests.security_table import case

DATA = Path(__file__).resolve().parent.parent / "bench" / "data" / "pr38.json.gz"
REPO, NUMBER = "acme/shop", 38
RUNNER = "reviewer/audit/runner.py"
HEAD2 = "d" * 40

# Line 221 of runner.py at the first head: `tries = report_mod.deliver(...)`, inside `try:`.
TIMEOUT = {"file": RUNNER, "line": 221, "severity": "warning", "category": "error-handling", "confidence": 0.9,
           "issue": "deliver() can raise requests.Timeout, which is not a WebhookFailed, so the whole audit run "
                    "ends with a traceback"}


def _doc() -> dict:
    return json.loads(gzip.decompress(DATA.read_bytes()))


def _files(doc: dict) -> list[PullFile]:
    return [PullFile(f["filename"], status=f["status"], patch=f["patch"], content=base64.b64decode(f["content"]))
            for f in doc["files"]]


def _added_patch(text: str) -> str:
    lines = text.splitlines()
    return f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)


@pytest.fixture
def pr38(github_emu):
    doc = _doc()
    github_emu.add_pull(REPO, NUMBER, doc["head"], doc["base"], files=_files(doc))
    return github_emu, doc


def push_line_above(gh, doc: dict) -> None:
    """A push that inserts one line at the top of runner.py: every line of it moves down by one."""
    files = _files(doc)
    runner = next(f for f in files if f.filename == RUNNER)
    text = "# audit runner\n" + runner.content.decode()
    moved = PullFile(RUNNER, status="added", patch=_added_patch(text), content=text.encode())
    files = [moved if f.filename == RUNNER else f for f in files]
    gh.set_head(REPO, NUMBER, HEAD2, files=files, compare_files=[moved])


def review(capsys, *extra: str) -> tuple[int, dict, str]:
    code = main(["review", "--pr", str(NUMBER), "--repo", REPO, "--post", "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return code, json.loads(out), err


def _config(tmp_path: Path, **values: int) -> str:
    path = tmp_path / "reviewer.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
    return str(path)


def _our_reviews(gh) -> list[dict]:
    return [r for r in gh.reviews(REPO, NUMBER) if "reviewer:review" in r["body"]]


def _summary(gh) -> str:
    (summary,) = [c["body"] for c in gh.issue_comments(REPO, NUMBER) if "reviewer:summary" in c["body"]]
    return summary


@case("nothing lost", "a re-review finds a different problem on a line that already has a comment, same category",
      "posted as a new inline comment; the earlier finding is counted as a repeat, not posted again")
def test_new_problem_on_an_already_commented_line_is_posted(anthropic_emu, pr38, capsys) -> None:
    gh, doc = pr38
    first = ScriptedModel(per_file={RUNNER: {"findings": [TIMEOUT]}})
    anthropic_emu.responder = first
    review(capsys)
    check_conservation(gh, REPO, NUMBER, returned=first.returned)
    push_line_above(gh, doc)
    anthropic_emu.reset()
    empty_secret = {**TIMEOUT, "line": 222, "issue": "an empty webhook_secret is sent as '' instead of refusing to "
                                                      "sign, hiding a missing configuration"}
    second = ScriptedModel(per_file={RUNNER: {"findings": [{**TIMEOUT, "line": 222}, empty_secret]}})
    anthropic_emu.responder = second
    _, doc2, err = review(capsys)

    reviews = _our_reviews(gh)
    assert len(reviews) == 2
    posted = [c for c in gh.review_comments(REPO, NUMBER) if c["pull_request_review_id"] == reviews[1]["id"]]
    assert [(c["path"], c["line"]) for c in posted] == [(RUNNER, 222)]
    assert "empty webhook_secret" in posted[0]["body"]
    ledger = check_conservation(gh, REPO, NUMBER, returned=second.returned)
    assert ledger["inline"] == 1 and ledger["repeats"] == 1
    assert f"`{RUNNER}:222` repeats `{RUNNER}:221`" in _summary(gh)
    assert "1 repeat(s) of earlier findings" in err


@case("nothing lost", "after a push that moves lines, the model restates an earlier finding in other words one line away",
      "not posted again: relocated by its code, matched by its words, named as a repeat in the summary")
def test_reworded_restatement_a_line_away_is_not_posted_again(anthropic_emu, pr38, capsys) -> None:
    gh, doc = pr38
    anthropic_emu.responder = ScriptedModel(per_file={RUNNER: {"findings": [TIMEOUT]}})
    review(capsys)
    push_line_above(gh, doc)
    anthropic_emu.reset()
    reworded = {**TIMEOUT, "line": 223, "category": "bug",
                "issue": "a requests.Timeout raised by deliver() is not caught (only WebhookFailed is), "
                         "so the audit run crashes"}
    second = ScriptedModel(per_file={RUNNER: {"findings": [reworded]}})
    anthropic_emu.responder = second
    review(capsys)

    assert len(_our_reviews(gh)) == 1  # nothing new: no second review
    assert len(gh.review_comments(REPO, NUMBER)) == 1
    ledger = check_conservation(gh, REPO, NUMBER, returned=second.returned)
    assert ledger["repeats"] == 1
    assert f"`{RUNNER}:223` repeats `{RUNNER}:221`" in _summary(gh)
    # The model was told which commit the prior lines refer to, and where the finding is now.
    (request,) = [r for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file"]
    text = user_text(request.body)
    assert f"the head commit under review ({HEAD2[:12]})" in text
    row = json.loads(next(line for line in text.splitlines() if line.startswith('{"id": "P1"')))
    assert row["line"] == 222 and row["file"] == RUNNER
    # The thread of the first comment stays open: the problem is still there.
    assert not any(t["isResolved"] for t in gh.threads(REPO, NUMBER))


def _entries(gh) -> list[str]:
    """Fingerprints of every finding listed on the PR: inline comments, review bodies, follow-ups."""
    bodies = [c["body"] for c in gh.review_comments(REPO, NUMBER)]
    bodies += [r["body"] for r in gh.reviews(REPO, NUMBER)]
    bodies += [c["body"] for c in gh.issue_comments(REPO, NUMBER)]
    return [d["fp"] for b in bodies for k, d in markers(b) if k == "f"]


@case("nothing lost", "200 findings over the inline cap and 100 outside the diff, with long texts (over the review body's size)",
      "all on the pull request: the body lists what fits, follow-up comments the rest, each under GitHub's limit")
def test_findings_past_the_review_body_all_appear_on_the_pull_request(anthropic_emu, pr38, capsys, tmp_path) -> None:
    gh, _ = pr38
    pad = " The reasoning goes on, as real findings do when they explain a subtle failure."
    # Small files, each reviewed in one call, each answer well within the output limit. The added files are
    # wholly in the diff; the hunks of the modified ones start at lines 20 and 50, so lines 1-15 are outside it.
    added = {"reviewer/audit/__init__.py": 36, "reviewer/prompts/audit.txt": 17, "tests/audit_model.py": 68,
             "tests/test_pricing.py": 36, "schemas/audit-report.schema.json": 112}
    modified = ("reviewer/publish/__init__.py", "reviewer/publish/markdown.py")
    per_file = {path: {"findings": [
        {"file": path, "line": 1 + n % size, "severity": "warning", "category": "bug", "confidence": 0.9,
         "issue": f"problem number {n} of {path}{pad}"} for n in range(46)]} for path, size in added.items()}
    per_file.update({path: {"findings": [
        {"file": path, "line": 1 + n % 15, "severity": "info", "category": "other", "confidence": 0.9,
         "issue": f"remark number {n} on {path}{pad}"} for n in range(50)]} for path in modified})
    model = ScriptedModel(per_file=per_file)
    anthropic_emu.responder = model
    _, doc, err = review(capsys, "--config", _config(tmp_path, max_findings_per_file=400, max_findings_per_review=1000))

    assert model.returned == 330 and len(doc["findings"]) == 330
    listed = _entries(gh)
    assert sorted(listed) == sorted(f["fingerprint"] for f in doc["findings"])  # each exactly once
    followups = [c for c in gh.issue_comments(REPO, NUMBER) if "reviewer:followup" in c["body"]]
    assert followups, "the body alone cannot hold 300 long findings"
    ledger = check_conservation(gh, REPO, NUMBER, returned=330)
    assert ledger["inline"] == 30 and ledger["body"] + ledger["followups"] == 300
    assert f"in {len(followups)} follow-up comment(s)" in err
    assert "did not fit" not in " ".join(doc["stats"]["notes"])


@case("nothing lost", "a flood over 66 files: every file over its limit, the review over its cap, 66 paths outside the diff",
      "every list in the summary comment that is cut says how many it left out and where they are; counts are exact")
def test_a_66_file_flood_leaves_no_cut_list_without_its_count(anthropic_emu, github_emu, capsys, tmp_path) -> None:
    doc = _doc()
    files = _files(doc)
    for i in range(28):
        text = "".join(f"value_{i}_{j} = {j}\n" for j in range(60))
        files.append(PullFile(f"pkg/extra_{i:02d}.py", status="added", patch=_added_patch(text), content=text.encode()))
    github_emu.add_pull(REPO, NUMBER, doc["head"], doc["base"], files=files)
    assert len(files) == 66
    per_file = {}
    for f in files:
        lines = [int(m) for m in re.findall(r"^@@ -\S+ \+(\d+)", f.patch or "", re.M)]
        per_file[f.filename] = {"findings": [
            {"file": f.filename, "line": lines[0] if lines else None, "severity": "info", "category": "other",
             "confidence": 0.9, "issue": f"finding {k} of {f.filename}"} for k in range(40)
        ] + [{"file": f"elsewhere/{f.filename}", "severity": "info", "issue": "not part of this change"}]}
    model = ScriptedModel(per_file=per_file)
    anthropic_emu.responder = model
    _, out, _ = review(capsys)

    returned = 66 * 41
    assert model.returned == returned
    listings = [r for r in github_emu.requests if r.method == "GET" and r.path.endswith(f"/pulls/{NUMBER}/files")]
    assert len(listings) == 1  # 66 files at 100 per page, not 3 pages of 30
    tally = out["stats"]["tally"]
    assert sum(r["count"] for r in tally["rejected"]) == 66
    assert sum(r["count"] for r in tally["over_limit"]) == 66 * 15 + (66 * 25 - 200)
    ledger = check_conservation(gh := github_emu, REPO, NUMBER, returned=returned)
    summary = _summary(gh)
    notes = out["stats"]["notes"]
    shown = re.search(r"\nNotes:\n((?:- .*\n?)*)", summary).group(1).splitlines()
    cut = re.search(r"- … and (\d+) more, in the run's report", "\n".join(shown))
    listed = [line for line in shown if not line.startswith("- … and")]
    assert len(listed) + (int(cut.group(1)) if cut else 0) == len(notes)
    assert any("this review: " in n and "over the limit of 200" in n for line in listed for n in [line])
    skipped_or_rejected = re.search(r"Findings not in the diff \(rejected\):\n((?:- .*\n?)*)", summary).group(1)
    rows = skipped_or_rejected.splitlines()
    more = re.search(r"- … and (\d+) more", skipped_or_rejected)
    assert len([r for r in rows if not r.startswith("- …")]) + (int(more.group(1)) if more else 0) == 66
    assert "Files carrying most:" in summary
    assert ledger["over_limit"] == 66 * 15 + (66 * 25 - 200) and ledger["rejected"] == 66


@case("nothing lost", "one call returns 150 findings on a path outside the diff (LICENSE)",
      "all 150 counted per path, in the report (`stats.tally`) and in the summary comment")
def test_150_findings_on_a_path_outside_the_diff_are_all_counted(anthropic_emu, pr38, capsys) -> None:
    gh, _ = pr38
    stray = [{"file": "LICENSE", "line": k, "severity": "info", "issue": f"license remark {k}"} for k in range(1, 151)]
    anthropic_emu.responder = ScriptedModel(per_file={RUNNER: {"findings": stray + [TIMEOUT]}})
    _, out, _ = review(capsys)
    assert out["stats"]["tally"]["rejected"] == [{"file": "LICENSE", "count": 150, "reason": "not a reviewed file of this diff"}]
    assert any("rejected 150 finding(s) on 'LICENSE'" in n for n in out["stats"]["notes"])
    assert "150 on `LICENSE`" in _summary(gh)
    ledger = check_conservation(gh, REPO, NUMBER, returned=151)
    assert ledger["rejected"] == 150 and ledger["inline"] == 1


@case("nothing lost", "the model returns over 1,000 findings, 800 and more over the per-review cap (200)",
      "counted on the pull request itself, with the files that carry most of them")
def test_findings_over_the_review_cap_are_counted_on_the_pull_request(anthropic_emu, pr38, capsys, tmp_path) -> None:
    gh, doc = pr38
    per_file = {}
    for f in doc["files"]:
        first = int(re.search(r"\+(\d+)", f["patch"]).group(1))
        per_file[f["filename"]] = {"findings": [
            {"file": f["filename"], "line": first, "severity": "info", "category": "other",
             "confidence": 0.9, "issue": f"finding {k} in {f['filename']}"} for k in range(27)]}
    model = ScriptedModel(per_file=per_file)
    anthropic_emu.responder = model
    _, out, _ = review(capsys, "--config", _config(tmp_path, max_findings_per_file=100))
    returned = model.returned  # 38 files x 27, and again for each extra part of a big file
    assert returned >= 38 * 27 and len(out["findings"]) == 200
    ledger = check_conservation(gh, REPO, NUMBER, returned=returned)
    assert ledger["over_limit"] == returned - 200 >= 800
    summary = _summary(gh)
    assert f"**{returned - 200} finding(s) over the limits were counted, not kept.** Files carrying most:" in summary
    top = re.search(r"Files carrying most: `([^`]+)` \((\d+)\)", summary)
    assert top and int(top.group(2)) == max(n["count"] for n in out["stats"]["tally"]["over_limit"])


def test_a_summary_too_long_for_one_comment_counts_what_it_leaves_out() -> None:
    """2,000 notes and 1,000 skipped files: each list is cut with its count and where the rest is."""
    from reviewer.models import ReviewResult, Skipped
    from reviewer.publish import github as github_pub
    from reviewer.source import PullRequest

    pr = PullRequest(REPO, NUMBER, "a" * 40, "b" * 40, draft=False, fork=False)
    result = ReviewResult((), (), tuple(Skipped(f"vendor/lib_{i}.js", "ignored by vendor/**") for i in range(1000)),
                          (), (), tuple(f"note {i}: " + "x" * 200 for i in range(2000)))
    outcome = github_pub.Outcome((), (), ())
    posting = github_pub.Posting()
    text = github_pub.summary_text(pr, result, outcome, posting, "run1")
    assert len(text) <= 65_536
    for title, total in (("Skipped files:", 1000), ("Notes:", 2000)):
        block = text.split("\n" + title + "\n", 1)[1].split("\n\n", 1)[0].splitlines()
        more = re.fullmatch(r"- … and (\d+) more, in the run's report \(.+\)", block[-1])
        assert more, block[-1]
        assert len(block) - 1 + int(more.group(1)) == total
