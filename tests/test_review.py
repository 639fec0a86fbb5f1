"""`reviewer review` end to end: the real SDK against the Anthropic emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewer import diff, engine, schemas
from reviewer.cli import main
from reviewer.config import Config
from tests.emulators.anthropic import Fault, MidStream, Refusal
from tests.model_script import ScriptedModel, each_alone, pass_of, user_text

DIFFS = Path(__file__).parent / "data" / "diffs"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _median_model() -> ScriptedModel:
    return ScriptedModel(
        per_file={
            "util.py": {"findings": [
                {"file": "util.py", "line": 7, "side": "RIGHT", "severity": "warning", "category": "edge-case",
                 "issue": "median() raises IndexError for an empty list", "suggestion": "return None for []"},
                {"file": "util.py", "line": 1, "side": "RIGHT", "severity": "info", "category": "edge-case",
                 "issue": "mean() divides by zero for an empty list"},
            ]},
            "app.py": {"findings": [
                {"file": "app.py", "line": 5, "severity": "info", "category": "naming", "issue": "report is vague",
                 "replacement": "    return f'mean={mean(xs)}, median={median(xs)}'"},
            ]},
        },
        cross_file={"findings": [
            {"file": "app.py", "line": 40, "severity": "warning", "category": "api-contract",
             "issue": "report() passes an unchecked list to median(), which fails on empty input"},
        ]},
    )


def test_review_of_a_git_repo_makes_one_call_per_file_plus_cross_and_aggregate(
    anthropic_emu, repo: Path, capsys
) -> None:
    anthropic_emu.responder = _median_model()
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert schemas.first_error(schemas.load("review"), doc) is None

    sent = anthropic_emu.message_requests()
    assert [r.status for r in anthropic_emu.requests] == [200] * len(sent)  # nothing refused
    kinds = [pass_of(r.body) for r in sent]
    # The two warnings then go to the verifier (pass 3), one call each.
    assert sorted(kinds) == ["aggregate", "cross_file", "per_file", "per_file", "verify", "verify"]
    for r in sent:
        assert len(r.body["messages"]) == 1 and r.body["messages"][0]["role"] == "user"
        assert r.body["output_config"]["format"]["type"] == "json_schema"
    # No pre-warm request any more; the key stays in the schema'd stats, at 0.
    assert doc["stats"]["calls"] == {"prewarm": 0, "per_file": 2, "cross_file": 1, "aggregate": 1, "verify": 2,
                                     "repairs": 0}
    assert doc["stats"]["files_reviewed"] == ["app.py", "util.py"]
    assert doc["stats"]["files_skipped"] == [{"file": "poetry.lock", "reason": "ignored by *.lock"}]

    # Every finding the model returned is in the output, each one anchored.
    issues = sorted(f["issue"].split(" (reported")[0] for f in doc["findings"])
    assert len(doc["findings"]) == 4
    assert "median() raises IndexError for an empty list" in issues
    cross = next(f for f in doc["findings"] if f["pass"] == "cross_file")
    assert cross["line"] is None if "line" in cross else True
    assert "line 40" in cross["issue"]
    parsed = diff.parse(diff.decode(__import__("subprocess").run(
        ["git", "-C", str(repo), "diff", "HEAD~1...HEAD"], capture_output=True).stdout))
    for f in doc["findings"]:
        if f.get("line"):
            assert f["line"] in parsed.get(f["file"]).commentable(f.get("side", "RIGHT"))
        assert len(f["fingerprint"]) == 16


def test_per_file_call_sees_surrounding_file_and_nothing_of_other_calls(anthropic_emu, repo: Path, capsys) -> None:
    anthropic_emu.responder = _median_model()
    code, _, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", "json")
    assert code == 0, err
    per_file = [r for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file"]
    util = next(r for r in per_file if "File: util.py" in user_text(r.body))
    app = next(r for r in per_file if "File: app.py" in user_text(r.body))
    assert "def mean(xs):" in user_text(util.body)  # unchanged context from the file at head
    # Independent instances: no per-file call carries another file's diff or findings.
    assert "median() raises IndexError" not in user_text(app.body)
    assert "report(xs)" not in user_text(util.body)
    cross = next(r for r in anthropic_emu.message_requests() if pass_of(r.body) == "cross_file")
    assert "median() raises IndexError" in user_text(cross.body)  # handed pass-1 findings as data
    systems = {json.dumps(r.body["system"]) for r in anthropic_emu.message_requests() if pass_of(r.body) != "aggregate"}
    assert len(systems) == 1  # one shared, cacheable prefix


def _files_diff(n: int) -> str:
    return "".join(
        f"diff --git a/m{i}.py b/m{i}.py\n--- a/m{i}.py\n+++ b/m{i}.py\n@@ -1 +1,2 @@\n x = {i}\n+y = x * {i}\n"
        for i in range(n)
    )


def test_per_file_calls_after_the_first_read_the_prefix_it_wrote(anthropic_emu) -> None:
    anthropic_emu.latency = 0.4
    anthropic_emu.prefill_factor = 0.25  # the response begins 0.1 s in, ends at 0.4 s
    n = 5
    result = engine.review(diff.parse(_files_diff(n)), Config(tools=False))  # no repository: the tools are off (and would say so)
    assert len(result.reviewed) == n and not result.failed and not result.notes

    # Every request was accepted: no 400 for a pre-warm the API refuses (anthropic.md §3a).
    assert all(r.status == 200 for r in anthropic_emu.requests)
    sent = [r for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file"]
    assert len(sent) == n and [c.pass_name for c in result.calls].count("prewarm") == 0

    # One write of the shared prefix, by the first per-file call, and n-1 reads of it.
    per_file = [c for c in result.calls if c.pass_name == "per_file"]
    writes = [c for c in per_file if c.usage.cache_creation_input_tokens]
    reads = [c for c in per_file if c.usage.cache_read_input_tokens]
    assert len(writes) == 1 and len(reads) == n - 1 and writes[0] not in reads
    assert {c.usage.cache_read_input_tokens for c in reads} == {writes[0].usage.cache_creation_input_tokens}

    # The lead went alone and streamed; the others left once its response had begun,
    # and ran together, not after it had finished.
    lead, *others = sorted(sent, key=lambda r: r.started)
    assert lead.body.get("stream") is True and not any(r.body.get("stream") for r in others)
    assert all(r.started >= lead.began > 0 for r in others)
    assert all(r.started < lead.finished for r in others)


def test_no_lead_call_when_caching_does_not_apply(anthropic_emu) -> None:
    # A prefix under the model's minimum is never cached: nothing to wait for.
    result = engine.review(diff.parse(_files_diff(3)), Config(cache_min_tokens=10**6))
    assert len(result.reviewed) == 3
    assert not any(r.body.get("stream") for r in anthropic_emu.message_requests())
    assert plan_calls(Config(cache_min_tokens=10**6)) == plan_calls(Config(prewarm=False))


def plan_calls(config: Config) -> list[tuple[str, int, int]]:
    p = engine.plan(diff.parse(_files_diff(3)), config)
    return [(c.pass_name, c.input_tokens, c.cached_tokens) for c in p.calls]


def test_plan_has_no_prewarm_call_and_bills_one_write(anthropic_emu) -> None:
    p = engine.plan(diff.parse(_files_diff(4)), Config())
    assert [c.pass_name for c in p.calls] == ["per_file"] * 4 + ["cross_file", "aggregate"]
    prefix = p.calls[0].cached_tokens
    assert prefix > 0
    # The estimate: one write (the first per-file call), reads by the 3 others and the cross-file call ...
    assert (p.usage.cache_creation_input_tokens, p.usage.cache_read_input_tokens) == (prefix, 4 * prefix)
    # ... which is what the run bills.
    result = engine.review(diff.parse(_files_diff(4)), Config())
    billed = [c for c in result.calls if c.pass_name in ("per_file", "cross_file")]
    assert sum(1 for c in billed if c.usage.cache_creation_input_tokens) == 1
    assert sum(1 for c in billed if c.usage.cache_read_input_tokens) == 4


def test_a_lead_call_whose_stream_breaks_is_sent_again_unstreamed(anthropic_emu) -> None:
    first: list[bool] = []

    def responder(body: dict) -> object:
        if body.get("stream") and not first:
            first.append(True)
            return MidStream(Fault(529))  # message_start, then an error event (the SDK does not retry)
        return {"findings": []}

    anthropic_emu.responder = responder
    result = engine.review(diff.parse(_files_diff(3)), Config())
    assert len(result.reviewed) == 3 and not result.failed
    assert any("stream broke" in n and "sent again unstreamed" in n for n in result.notes)
    per_file = [c for c in result.calls if c.pass_name == "per_file"]
    assert [c.ok for c in per_file].count(False) == 1 and len(per_file) == 4
    # The broken stream had begun, so its write is there for every other per-file call.
    assert sum(1 for c in per_file if c.ok and c.usage.cache_read_input_tokens) == 3


def test_a_failed_lead_call_does_not_hold_the_others(anthropic_emu) -> None:
    anthropic_emu.responder = ScriptedModel(per_file={"m0.py": Fault(400, message="no")})
    result = engine.review(diff.parse(_files_diff(3)), Config())
    assert [f.path for f in result.failed] == ["m0.py"] and len(result.reviewed) == 2


def test_schema_violation_is_repaired_once_quoting_the_error(anthropic_emu, capsys) -> None:
    bad = {"findings": [{"file": "multi.py", "line": 3, "severity": "warning", "issue": "x", "confidence": 1.5}]}
    good = {"findings": [{"file": "multi.py", "line": 3, "severity": "warning", "issue": "x", "confidence": 0.5}]}
    anthropic_emu.responder = ScriptedModel(per_file={"multi.py": [bad, good]})
    code, out, err = run(capsys, "review", "--diff", str(DIFFS / "multi_hunk.diff"), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["stats"]["calls"]["repairs"] == 1
    assert len(doc["findings"]) == 1 and doc["stats"]["files_failed"] == []
    repair = [r for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file"][-1]
    assert "1.5 is greater than the maximum of 1" in user_text(repair.body)
    assert len(repair.body["messages"]) == 1


def test_file_whose_calls_keep_failing_is_listed_and_the_review_completes(anthropic_emu, repo: Path, capsys) -> None:
    anthropic_emu.responder = ScriptedModel(per_file={
        "util.py": "this is not json",
        "app.py": {"findings": [{"file": "app.py", "line": 5, "severity": "info", "issue": "fine"}]},
    })
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert [f["file"] for f in doc["stats"]["files_failed"]] == ["util.py"]
    assert "not valid JSON" in doc["stats"]["files_failed"][0]["error"]
    assert doc["stats"]["files_reviewed"] == ["app.py"]
    assert [f["issue"] for f in doc["findings"]] == ["fine"]


def test_refusal_fails_only_that_file_without_a_repair(anthropic_emu, repo: Path, capsys) -> None:
    anthropic_emu.responder = ScriptedModel(per_file={"util.py": Refusal(explanation="no")})
    code, out, _ = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert "refused" in doc["stats"]["files_failed"][0]["error"]
    util_calls = [r for r in anthropic_emu.message_requests() if "File: util.py" in user_text(r.body)]
    assert len(util_calls) == 1


def test_overload_is_retried_by_the_sdk_and_the_review_succeeds(anthropic_emu, capsys) -> None:
    anthropic_emu.enqueue_fault(Fault(529, retry_after=0.001), count=2)
    code, out, err = run(capsys, "review", "--diff", str(DIFFS / "multi_hunk.diff"), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["stats"]["files_failed"] == []
    assert sum(1 for r in anthropic_emu.requests if r.status == 529) == 2


def test_every_call_failing_exits_3(anthropic_emu, capsys) -> None:
    anthropic_emu.responder = lambda body: Fault(500, retry_after=0.001)
    code, _, err = run(capsys, "review", "--diff", str(DIFFS / "multi_hunk.diff"))
    assert code == 3
    assert "every model call failed" in err


def test_bad_api_key_exits_3_after_one_request(anthropic_emu, repo: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "wrong")
    code, _, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1")
    assert code == 3
    assert "401" in err and "invalid x-api-key" in err
    assert len(anthropic_emu.requests) <= 3


def test_unknown_model_exits_3_with_the_api_message(anthropic_emu, capsys) -> None:
    code, _, err = run(capsys, "review", "--diff", str(DIFFS / "multi_hunk.diff"), "--model", "claude-nope-1")
    assert code == 3
    assert "claude-nope-1" in err


def test_concurrency_never_exceeds_the_flag(anthropic_emu, capsys, tmp_path: Path) -> None:
    patch = "".join(
        f"--- a/f{i}.py\n+++ b/f{i}.py\n@@ -1,1 +1,2 @@\n x = {i}\n+y = {i}\n" for i in range(10)
    )
    (tmp_path / "ten.diff").write_text(patch)
    anthropic_emu.latency = 0.15
    code, out, err = run(capsys, "review", "--diff", str(tmp_path / "ten.diff"), "--max-concurrency", "3", "--format", "json")
    assert code == 0, err
    assert anthropic_emu.max_in_flight == 3
    assert json.loads(out)["stats"]["calls"]["per_file"] == 10


def test_fail_on_sets_exit_1_when_a_finding_reaches_it(anthropic_emu, repo: Path, capsys) -> None:
    anthropic_emu.responder = _median_model()
    code, _, _ = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--fail-on", "warning")
    assert code == 1
    anthropic_emu.responder = _median_model()
    code, _, _ = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--fail-on", "critical")
    assert code == 0


def test_aggregate_merges_duplicates_into_one_finding(anthropic_emu, repo: Path, capsys) -> None:
    model = _median_model()

    def merge_all_edge_cases(body: dict) -> dict:
        rows = each_alone(body)["groups"]
        edge = [g["ids"][0] for g, r in zip(rows, __import__("tests.model_script", fromlist=["x"]).finding_rows(body))
                if "empty" in r["issue"]]
        rest = [g for g in rows if g["ids"][0] not in edge]
        return {"groups": [{"ids": edge, "severity": "critical", "confidence": 0.95, "issue": "empty input crashes"}] + rest}

    model.aggregate = merge_all_edge_cases
    anthropic_emu.responder = model
    code, out, _ = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["findings"][0]["severity"] == "critical" and doc["findings"][0]["issue"] == "empty input crashes"
    assert len(doc["findings"]) == 2


def test_dry_run_sends_no_request_and_needs_no_key(no_anthropic, anthropic_server, repo: Path, capsys) -> None:
    anthropic_server.reset()
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run")
    assert code == 0, err
    assert "per-file 2, cross-file 1, aggregate 1" in out
    assert "poetry.lock: ignored by *.lock" in out
    assert "$" in out and anthropic_server.requests == []


def test_missing_api_key_is_one_line_naming_the_variable(no_anthropic, repo: Path, capsys) -> None:
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "ANTHROPIC_API_KEY" in err and "--dry-run" in err


@pytest.mark.parametrize("args, message", [
    ([], "nothing to review"),
    (["--diff", "x.diff", "--base", "HEAD"], "give only one of --diff, --base and --pr"),
    (["--diff", "/nonexistent.diff"], "no such file"),
    (["--base", "no-such-ref"], "is not a commit"),
    (["--format", "yaml", "--diff", "-"], "Invalid value for '--format'"),
])
def test_usage_errors_exit_2_with_one_line(no_anthropic, repo: Path, capsys, monkeypatch, args, message) -> None:
    monkeypatch.chdir(repo)
    code, out, err = run(capsys, "review", *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_config_error_exits_2_naming_the_key(no_anthropic, repo: Path, capsys) -> None:
    (repo / ".reviewer.toml").write_text("max_concurency = 4\n")
    code, _, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run")
    assert code == 2 and "unknown key 'max_concurency'" in err


def test_empty_diff_is_a_clean_review_with_no_calls(anthropic_emu, capsys) -> None:
    code, out, _ = run(capsys, "review", "--diff", str(DIFFS / "empty.diff"), "--format", "json")
    assert code == 0
    assert json.loads(out)["findings"] == [] and anthropic_emu.requests == []


def test_output_flag_writes_the_report_and_keeps_stdout_empty(anthropic_emu, repo: Path, capsys, tmp_path) -> None:
    anthropic_emu.responder = _median_model()
    target = tmp_path / "out" / "review.md"
    code, out, _ = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", "markdown", "--output", str(target))
    assert code == 0 and out == ""
    text = target.read_text()
    assert "median() raises IndexError" in text and "| critical | warning | info |" in text


def test_real_multi_file_diff_every_finding_kept_and_anchored(anthropic_emu, capsys) -> None:
    """The issue's acceptance run: a real diff of this repository's own history."""
    answers = {
        "reviewer/cli.py": {"findings": [
            {"file": "reviewer/cli.py", "line": 170, "end_line": 178, "severity": "warning", "category": "bug",
             "issue": "R1 lambda closes over read_all"},
            {"file": "reviewer/cli.py", "line": 174, "side": "LEFT", "severity": "info", "category": "dead-code",
             "issue": "R2 removed parse call"}]},
        "reviewer/config.py": {"findings": [
            {"file": "reviewer/config.py", "line": 117, "severity": "info", "category": "naming",
             "issue": "R3 candidate is vague"}]},
        "reviewer/findings.py": {"findings": [
            {"file": "reviewer/findings.py", "line": 5, "severity": "info", "category": "stale-comment",
             "issue": "R4 module docstring is stale"}]},
    }
    cross = {"findings": [{"file": "reviewer/config.py", "line": 120, "severity": "warning", "category": "api-contract",
                           "issue": "R5 find_config no longer reads pyproject twice"}]}
    anthropic_emu.responder = ScriptedModel(per_file=answers, cross_file=cross)
    path = DIFFS / "real_multi_file.diff"
    code, out, err = run(capsys, "review", "--diff", str(path), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert schemas.first_error(schemas.load("review"), doc) is None

    sent = anthropic_emu.message_requests()
    kinds = sorted(pass_of(r.body) for r in sent)
    assert kinds == ["aggregate", "cross_file", "per_file", "per_file", "per_file"]
    for r in sent:
        assert [m["role"] for m in r.body["messages"]] == ["user"]
        assert r.body["output_config"]["format"]["type"] == "json_schema"

    parsed = diff.parse(diff.decode(path.read_bytes()))
    tags = sorted(f["issue"][:2] for f in doc["findings"])
    assert tags == ["R1", "R2", "R3", "R4", "R5"]
    for f in doc["findings"]:
        if f.get("line") is not None:
            file = parsed.get(f["file"])
            assert f["line"] in file.commentable(f.get("side", "RIGHT"))
            if f.get("end_line"):
                assert file.hunk_of(f["line"], f["side"]) is file.hunk_of(f["end_line"], f["side"])
    by_tag = {f["issue"][:2]: f for f in doc["findings"]}
    assert (by_tag["R1"]["line"], by_tag["R1"]["end_line"]) == (171, 178)
    assert by_tag["R2"]["side"] == "LEFT" and by_tag["R2"]["line"] == 174
    assert "line" not in by_tag["R4"] and "line 5" in by_tag["R4"]["issue"]


def _many_hunks(hunks: int) -> str:
    lines = ["--- a/big.py", "+++ b/big.py"]
    for i in range(hunks):
        start = 1 + i * 20
        lines.append(f"@@ -{start},3 +{start},4 @@")
        lines += [f" ctx_{i}_a = 1", f"+added_{i} = compute_something_long_enough_to_count({i}, 'x' * 40)", f" ctx_{i}_b = 2", f" ctx_{i}_c = 3"]
    return "\n".join(lines) + "\n"


def test_file_over_the_token_budget_is_split_by_groups_of_hunks(anthropic_emu, capsys, tmp_path) -> None:
    (tmp_path / "big.diff").write_text(_many_hunks(30))
    (tmp_path / "c.toml").write_text("per_file_token_budget = 1000\n")
    anthropic_emu.responder = lambda body: {"findings": [{"file": "big.py", "line": 2, "severity": "info", "issue": "x"}]} \
        if pass_of(body) == "per_file" else ({"groups": []} if pass_of(body) == "aggregate" else {"findings": []})
    code, out, err = run(capsys, "review", "--diff", str(tmp_path / "big.diff"), "--config", str(tmp_path / "c.toml"), "--format", "json")
    assert code == 0, err
    per_file = [user_text(r.body) for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file"]
    assert len(per_file) > 1
    assert all(f"of {len(per_file)} of the file's diff" in text for text in per_file)
    for i in range(30):  # every hunk is reviewed, in exactly one call
        assert sum(f"+added_{i} =" in text for text in per_file) == 1
    doc = json.loads(out)
    assert doc["stats"]["files_reviewed"] == ["big.py"] and doc["stats"]["calls"]["per_file"] == len(per_file)


def test_large_change_is_compressed_for_the_cross_file_pass(anthropic_emu, capsys, tmp_path) -> None:
    (tmp_path / "big.diff").write_text(_many_hunks(200))
    (tmp_path / "c.toml").write_text("cross_file_token_budget = 2000\n")
    code, out, err = run(capsys, "review", "--diff", str(tmp_path / "big.diff"), "--config", str(tmp_path / "c.toml"), "--format", "json")
    assert code == 0, err
    cross = next(user_text(r.body) for r in anthropic_emu.message_requests() if pass_of(r.body) == "cross_file")
    assert len(cross) / 4 < 2000 + 600
    assert "more lines not shown" in cross
    assert any("cross-file pass saw a compressed diff" in n for n in json.loads(out)["stats"]["notes"])
