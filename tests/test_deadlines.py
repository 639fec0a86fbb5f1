"""Deadlines, signals, progress lines, the review's cost gate and `--force` (issue 11, items 3-6 and 8).

Everything runs the real CLI and the real SDK against the emulators, or
against an endpoint that accepts connections and never answers (a listening
socket nobody accepts on: the kernel completes the handshake, and the request
is never read).

NOTE: the issue's check is `--timeout 20`; these use 2 seconds. The deadline
code does not depend on its value, and 20 s per case would add minutes to the
suite; "within the deadline plus a few seconds" is asserted as deadline + 3 s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from reviewer import schemas
from reviewer.cli import main
from tests.audit_model import audit_model
from tests.conftest import API_KEY, git
from tests.emulators.anthropic import Slow
from tests.emulators.github import PullFile
from tests.model_script import ScriptedModel, file_of, pass_of
from tests.security_table import case

ROOT = Path(__file__).resolve().parent.parent
REPO = "acme/shop"
HEAD, BASE = "d" * 40, "e" * 40
DEADLINE = 2.0
SLACK = 3.0
# Longer than the deadline, short enough that the emulator's sleeping threads
# are done before the next test starts (the fixture waits for them).
HANG = DEADLINE + 2.0

THREE = "".join(f"--- a/f{i}.py\n+++ b/f{i}.py\n@@ -1 +1,2 @@\n x = {i}\n+y = {i}\n" for i in range(3))
KEPT = {"findings": [{"file": "f0.py", "line": 2, "severity": "warning", "issue": "kept although the run was cut"}]}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    capsys.readouterr()
    started = time.monotonic()
    code = main(list(args))
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    return code, out, err, elapsed


@pytest.fixture
def three(tmp_path: Path) -> Path:
    path = tmp_path / "three.diff"
    path.write_text(THREE)
    return path


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """ANTHROPIC_BASE_URL at an endpoint that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    yield url
    sock.close()


def _one_answers_the_others_hang() -> ScriptedModel:
    return ScriptedModel(per_file={"f0.py": KEPT, "f1.py": Slow(HANG), "f2.py": Slow(HANG)})


# ---------------------------------------------------------------------- review: the deadline


@case("deadlines", "`review --timeout`: one file answers, the API never answers the others",
      "ends within the deadline + 3 s, exit 0; the answered file's findings are kept, the others are failed "
      "\"not reviewed: the deadline was reached\", and every format says \"deadline reached after N s: 1 of 3 "
      "files reviewed; cross-file and aggregate not run\"")
def test_review_deadline_keeps_what_was_answered_and_says_what_was_not(anthropic_emu, capsys, three, tmp_path) -> None:
    anthropic_emu.responder = _one_answers_the_others_hang()
    code, out, err, elapsed = run(capsys, "review", "--diff", str(three), "--format", "json",
                                  "--timeout", str(DEADLINE), "--output", str(tmp_path / "r.json"))
    assert code == 0, err
    assert elapsed < DEADLINE + SLACK
    doc = json.loads((tmp_path / "r.json").read_text())
    assert schemas.first_error(schemas.load("review"), doc) is None
    assert doc["incomplete"].startswith("deadline reached after ")
    assert doc["incomplete"].endswith(": 1 of 3 files reviewed; cross-file and aggregate not run")
    assert [f["issue"] for f in doc["findings"]] == ["kept although the run was cut"]
    assert doc["stats"]["files_reviewed"] == ["f0.py"]
    assert {f["file"]: f["error"] for f in doc["stats"]["files_failed"]} == {
        "f1.py": "not reviewed: the deadline was reached before its answer",
        "f2.py": "not reviewed: the deadline was reached before its answer"}
    assert "reviewer: incomplete: deadline reached" in err
    # No cross-file or aggregate request was sent after the deadline.
    assert {pass_of(r.body) for r in anthropic_emu.requests if r.body} == {"per_file"}

    anthropic_emu.responder = _one_answers_the_others_hang()
    for fmt, marker in (("text", "INCOMPLETE deadline reached"), ("markdown", "> **Incomplete:** deadline reached")):
        code, out, err, _ = run(capsys, "review", "--diff", str(three), "--format", fmt, "--timeout", str(DEADLINE))
        assert code == 0, err
        assert marker in out and "1 of 3 files reviewed" in out


@case("deadlines", "`review --timeout 2` against an endpoint that accepts connections and never answers",
      "ends within the deadline + 3 s with exit 3 and one line: deadline reached, 0 of 3 files reviewed, nothing produced")
def test_review_against_a_silent_endpoint_ends_at_its_deadline(silent_endpoint, capsys, three) -> None:
    code, out, err, elapsed = run(capsys, "review", "--diff", str(three), "--timeout", str(DEADLINE))
    assert code == 3, err
    assert elapsed < DEADLINE + SLACK
    assert out == ""
    assert "deadline reached after" in err and "0 of 3 files reviewed; cross-file and aggregate not run" in err
    assert "nothing was produced" in err and "Traceback" not in err


def test_review_deadline_comes_from_the_configuration_and_rejects_non_finite_values(
        silent_endpoint, capsys, three, tmp_path) -> None:
    (tmp_path / "c.toml").write_text(f"timeout = {DEADLINE}\n")
    code, _, err, elapsed = run(capsys, "review", "--diff", str(three), "--config", str(tmp_path / "c.toml"))
    assert code == 3 and "deadline reached" in err and elapsed < DEADLINE + SLACK
    for bad in ("nan", "inf", "0", "-1"):
        code, _, err, _ = run(capsys, "review", "--diff", str(three), "--timeout", bad)
        assert code == 2, (bad, err)
    (tmp_path / "c.toml").write_text("timeout = nan\n")
    code, _, err, _ = run(capsys, "review", "--diff", str(three), "--config", str(tmp_path / "c.toml"))
    assert code == 2 and "timeout" in err


# ---------------------------------------------------------------------- review: signals


@case("deadlines", "SIGTERM or SIGINT while per-file calls are in flight (the job is cancelled)",
      "what was answered is written to `--output` marked \"interrupted by SIGTERM\"; exit 143 (SIGINT: 130)")
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_writes_what_is_done_marked_incomplete(anthropic_emu, three, tmp_path, signum, code) -> None:
    anthropic_emu.responder = _one_answers_the_others_hang()
    out_path = tmp_path / "r.json"
    env = {**os.environ, "ANTHROPIC_BASE_URL": anthropic_emu.base_url, "ANTHROPIC_API_KEY": API_KEY,
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reviewer.cli", "review", "--diff", str(three), "--format", "json",
         "--output", str(out_path), "--repo-dir", str(tmp_path)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        # Wait until the first per-file answer went out, and the hanging calls are in flight.
        while time.monotonic() < deadline:
            answered = [r for r in anthropic_emu.message_requests() if file_of(r.body) == "f0.py"]
            if answered and anthropic_emu.in_flight >= 2:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the first per-file answer never arrived")
        time.sleep(0.3)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    doc = json.loads(out_path.read_text())
    assert schemas.first_error(schemas.load("review"), doc) is None
    name = signal.Signals(signum).name
    assert doc["incomplete"].startswith(f"interrupted by {name} after ")
    assert "1 of 3 files reviewed; cross-file and aggregate not run" in doc["incomplete"]
    assert [f["issue"] for f in doc["findings"]] == ["kept although the run was cut"]
    assert stdout == "" and f"incomplete: interrupted by {name}" in stderr and "Traceback" not in stderr


# ---------------------------------------------------------------------- progress off a terminal


@case("deadlines", "a review in CI (stderr not a terminal) whose calls take a while",
      "a plain progress line now and then: calls done, in flight, time elapsed")
def test_progress_lines_off_a_terminal(anthropic_emu, capsys, three, monkeypatch) -> None:
    monkeypatch.setenv("REVIEWER_PROGRESS_SECONDS", "0.2")
    anthropic_emu.latency = 1.0
    code, _, err, _ = run(capsys, "review", "--diff", str(three))
    assert code == 0, err
    beats = [line for line in err.splitlines() if line.startswith("reviewer: per-file review: ")
             and " in flight, " in line]
    assert beats, err
    assert any(" done, 2 in flight, " in line or " done, 3 in flight, " in line for line in beats), beats
    assert "reviewer: per-file review: 3/3" in err
    monkeypatch.setenv("REVIEWER_PROGRESS_SECONDS", "nan")
    code, _, err, _ = run(capsys, "review", "--diff", str(three))
    assert code == 2 and "REVIEWER_PROGRESS_SECONDS" in err


# ---------------------------------------------------------------------- review: cost gate


@case("cost", "`review --max-cost` (or `max_cost`) below the estimate; `--max-cost nan`",
      "no request reaches the API; the plan is printed, exit 1 with the estimate and the ceiling; nan is a usage error (exit 2)")
def test_review_over_max_cost_sends_nothing(anthropic_emu, capsys, three, tmp_path) -> None:
    code, out, err, _ = run(capsys, "review", "--diff", str(three), "--format", "json", "--max-cost", "0.0001")
    assert code == 1, err
    assert anthropic_emu.requests == []
    assert json.loads(out)["dry_run"] is True
    assert "refused: estimated cost $" in err and "above --max-cost $0.0001" in err and "nothing was sent" in err
    (tmp_path / "c.toml").write_text("max_cost = 0.0001\n")
    code, _, err, _ = run(capsys, "review", "--diff", str(three), "--config", str(tmp_path / "c.toml"))
    assert code == 1 and "above --max-cost" in err and anthropic_emu.requests == []
    for bad in ("nan", "inf", "-1"):
        code, _, err, _ = run(capsys, "review", "--diff", str(three), "--max-cost", bad)
        assert code == 2, (bad, err)
    assert anthropic_emu.requests == []
    code, _, err, _ = run(capsys, "review", "--diff", str(three), "--max-cost", "100")
    assert code == 0, err
    assert [pass_of(r.body) for r in anthropic_emu.message_requests()].count("per_file") == 3


def _pull(github_emu, files: list[PullFile]) -> None:
    github_emu.add_pull(REPO, 9, HEAD, BASE, files=files)


FILES = [PullFile(f"f{i}.py", patch=f"@@ -1 +1,2 @@\n x = {i}\n+y = {i}\n", content=f"x = {i}\ny = {i}\n".encode())
         for i in range(3)]


@case("cost", "`review --pr N --post --max-cost` below the estimate of a large pull request",
      "no model request; one short comment on the pull request states the estimate and the ceiling (edited, not repeated, "
      "on later runs); no review; exit 1")
def test_pull_request_over_max_cost_gets_a_note_instead_of_a_review(anthropic_emu, github_emu, capsys) -> None:
    _pull(github_emu, FILES)
    for _ in range(2):
        code, _, err, _ = run(capsys, "review", "--pr", "9", "--repo", REPO, "--post", "--max-cost", "0.0001")
        assert code == 1, err
        assert "refused: estimated cost $" in err
    assert anthropic_emu.requests == []
    assert github_emu.reviews(REPO, 9) == []
    (note,) = github_emu.issue_comments(REPO, 9)
    assert "not reviewed" in note["body"] and "above --max-cost $0.0001" in note["body"]
    assert "estimated cost $" in note["body"]
    # The note is not a summary: raising the ceiling reviews the head.
    code, _, err, _ = run(capsys, "review", "--pr", "9", "--repo", REPO, "--post", "--max-cost", "100")
    assert code == 0, err
    assert any(pass_of(r.body) == "per_file" for r in anthropic_emu.message_requests())


# ---------------------------------------------------------------------- pull requests: --force, and a cut run


@case("deadlines", "a pull-request head already reviewed, then `--force`; a run cut by its deadline",
      "without --force: \"already reviewed; nothing to do\", no model call; with --force every file is reviewed again, "
      "earlier findings are not posted twice; after a cut run the summary says Incomplete and the next run reviews again")
def test_force_and_an_incomplete_run_review_the_head_again(anthropic_emu, github_emu, capsys) -> None:
    _pull(github_emu, FILES)
    anthropic_emu.responder = _one_answers_the_others_hang()
    code, _, err, elapsed = run(capsys, "review", "--pr", "9", "--repo", REPO, "--post", "--timeout", str(DEADLINE))
    assert code == 0, err
    assert elapsed < DEADLINE + SLACK
    (summary,) = github_emu.issue_comments(REPO, 9)
    assert "**Incomplete:** deadline reached after" in summary["body"]
    assert "1 of 3 files reviewed" in summary["body"]

    # The cut run did not count as a review of this head: the next run reviews every file.
    anthropic_emu.reset()
    anthropic_emu.responder = ScriptedModel(per_file={"f0.py": KEPT})
    code, _, err, _ = run(capsys, "review", "--pr", "9", "--repo", REPO, "--post")
    assert code == 0, err
    assert sorted(file_of(r.body) for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file") == [
        "f0.py", "f1.py", "f2.py"]
    assert "Incomplete" not in github_emu.issue_comments(REPO, 9)[0]["body"]

    anthropic_emu.reset()
    anthropic_emu.responder = ScriptedModel(per_file={"f0.py": KEPT})
    code, _, err, _ = run(capsys, "review", "--pr", "9", "--repo", REPO, "--post")
    assert code == 0 and "already reviewed; nothing to do (--force reviews it again)" in err
    assert anthropic_emu.requests == []

    code, _, err, _ = run(capsys, "review", "--pr", "9", "--repo", REPO, "--post", "--force")
    assert code == 0, err
    assert sorted(file_of(r.body) for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file") == [
        "f0.py", "f1.py", "f2.py"]
    # The finding posted before is a repeat: one inline comment in all, one summary comment.
    assert [c["path"] for c in github_emu.review_comments(REPO, 9)] == ["f0.py"]
    assert len(github_emu.issue_comments(REPO, 9)) == 1
    code, _, err, _ = run(capsys, "review", "--diff", "-", "--force")
    assert code == 2 and "--force needs a pull request" in err


# ---------------------------------------------------------------------- audit: every phase


@pytest.fixture
def audit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    monkeypatch.setenv("REVIEWER_AUDIT_SETTLE_SECONDS", "0.2")
    monkeypatch.delenv("REVIEWER_WEBHOOK_URL", raising=False)


def _audit_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    for i in range(3):
        (root / f"m{i}.py").write_text(f"def mean{i}(xs):\n    return sum(xs) / len(xs)  # BUG\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "files")
    return root


class _FirstAnswersThenHang:
    """The first request is answered; every later one hangs past the deadline."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Any:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        return audit_model(body) if first else Slow(HANG, then=audit_model(body))


@case("deadlines", "`audit run --wait --timeout 2`: the canary's second request never answers",
      "ends within the deadline + 3 s with exit 3 (\"reached in the canary\"), the first answer saved; the next run "
      "sends only the canary requests not answered, then completes")
def test_audit_deadline_in_the_canary_saves_what_was_answered(anthropic_emu, audit_env, capsys, tmp_path) -> None:
    anthropic_emu.batch_processing_seconds = 0.05
    anthropic_emu.responder = _FirstAnswersThenHang()
    repo = _audit_repo(tmp_path / "repo")
    code, out, err, elapsed = run(capsys, "audit", "run", "--wait", "--timeout", str(DEADLINE), "--repo-dir", str(repo))
    assert code == 3, err
    assert elapsed < DEADLINE + SLACK
    assert "reached in the canary (1 of 3 canary request(s) answered)" in err
    assert "the next `run` or `collect` continues it" in err
    code, out, _, _ = run(capsys, "audit", "status", "--repo-dir", str(repo))
    assert "run 1: active" in out and "1 succeeded" in out

    answered = len(anthropic_emu.message_requests())
    assert answered == 1
    anthropic_emu.responder = audit_model
    code, out, err, _ = run(capsys, "audit", "run", "--wait", "--timeout", "30", "--repo-dir", str(repo))
    assert code == 0, err
    assert "run 1 completed: 3 finding(s)" in out
    # Two more canary requests, nothing sent twice; no batch was needed.
    assert len(anthropic_emu.message_requests()) - answered == 2


@case("deadlines", "`audit run --wait --timeout 2` against an endpoint that accepts connections and never answers",
      "ends within the deadline + 3 s with exit 3 and one line; the run is saved for the next night")
def test_audit_against_a_silent_endpoint_ends_at_its_deadline(silent_endpoint, audit_env, capsys, tmp_path) -> None:
    repo = _audit_repo(tmp_path / "repo")
    code, out, err, elapsed = run(capsys, "audit", "run", "--wait", "--timeout", str(DEADLINE), "--repo-dir", str(repo))
    assert code == 3, err
    assert elapsed < DEADLINE + SLACK
    assert "reached in the canary (0 of 3 canary request(s) answered)" in err and "Traceback" not in err
    code, out, _, _ = run(capsys, "audit", "status", "--repo-dir", str(repo))
    assert "run 1: active" in out
