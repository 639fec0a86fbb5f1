"""`reviewer audit run --wait` killed with SIGKILL, then started again: nothing is lost or sent twice.

The CLI runs as a child process against the session's Anthropic emulator. The
emulator's hooks let a test kill the child at an exact point of its
conversation with the API (the moment a batch-create request arrives, after
the batch exists but before the child hears of it, in the middle of a results
stream), or at the k-th request of any kind. Then the command is started
again, as a CI re-run would, and must finish the same audit:

* every custom_id reaches the Batches API exactly once (`custom_id_submissions`),
  retries of errored and expired requests under their own `-r<n>` ids;
* every request that the canary did not answer was submitted;
* every file's findings are in the report, and nothing is left unanswered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from reviewer.cli import main
from tests.audit_model import audit_model, batch_outcome
from tests.emulators.anthropic import Drop
from tests.security_table import case
from tests.test_audit import make_repo

BUGGY = "def mean(xs):\n    total = sum(xs)\n    return total / len(xs)  # BUG\n"
FILES = {
    "m0.py": BUGGY,
    "m1.py": "# one\n" + BUGGY,
    "m2.py": "# two\n" + BUGGY,
    "copy_of_m0.py": BUGGY,
    "flaky.py": "def f(n):\n    return 1 / n  # FLAKY # BUG\n",
    "slow.py": "def g(n):\n    return 2 / n  # SLOW # BUG\n",
}
RUN = ("audit", "run", "--wait", "--timeout", "60", "--canary", "1", "--max-batch-requests", "2")


class Child:
    """The CLI as a child process, which the emulator's hooks may kill at a chosen point."""

    def __init__(self, repo: Path, state: Path) -> None:
        self.repo, self.state = repo, state
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()
        self.points: list[tuple[str, Any]] = []
        self.fired: list[str] = []
        self.kill_at_request: int | None = None
        self.seen = 0

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "REVIEWER_AUDIT_POLL_SECONDS": "0.02", "REVIEWER_AUDIT_SETTLE_SECONDS": "0.3"}
        cmd = [sys.executable, "-m", "reviewer.cli", *args, "--repo-dir", str(self.repo), "--state", str(self.state)]
        with self.lock:
            self.seen = 0
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        out, err = self.proc.communicate(timeout=90)
        return subprocess.CompletedProcess(cmd, self.proc.returncode, out, err)

    def _kill(self, label: str) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.fired.append(label)

    def _alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _next(self, kind: str, arg: Any = None, match_arg: bool = False) -> Any:
        # A killed child's last request is still being handled: it must not use up a point.
        with self.lock:
            if self._alive() and self.points and self.points[0][0] == kind:
                if not match_arg or self.points[0][1] == arg:
                    return self.points.pop(0)
        return None

    # emulator hooks

    def on_request(self, record: Any) -> Any:
        with self.lock:
            self.seen += 1
            due = self.kill_at_request is not None and self.seen == self.kill_at_request and self._alive()
        if due:
            self._kill(f"request {self.seen}: {record.method} {record.path}")
            return None
        if record.method == "POST" and record.path == "/v1/messages/batches":
            point = self._next("create")
            if point is not None:
                self._kill(f"create arrives ({'never created' if point[1] else 'created anyway'})")
                return Drop() if point[1] else None
        return None

    def on_batch_created(self, batch: dict) -> None:
        if self._next("created") is not None:
            self._kill("batch exists, its id not yet recorded")

    def on_results_line(self, batch_id: str, index: int) -> None:
        if self._next("results", index, match_arg=True) is not None:
            self._kill(f"mid-collect, before results line {index}")


@pytest.fixture
def setup(anthropic_emu, tmp_path: Path):
    emu = anthropic_emu
    emu.batch_processing_seconds = 0.05
    emu.responder = audit_model
    emu.batch_outcome = batch_outcome
    repo = make_repo(tmp_path / "repo", FILES)
    child = Child(repo, tmp_path / "state" / "audit.db")
    emu.on_request = child.on_request
    emu.on_batch_created = child.on_batch_created
    emu.on_results_line = child.on_results_line
    return emu, repo, child


def planned_ids(child: Child) -> list[str]:
    done = child.run("audit", "plan", "--format", "json", "--canary", "1")
    assert done.returncode == 0, done.stderr
    return [r["custom_id"] for r in json.loads(done.stdout)["requests"]]


def assert_nothing_lost_or_sent_twice(emu: Any, child: Child, planned: list[str]) -> None:
    submitted = emu.custom_id_submissions
    assert all(n == 1 for n in submitted.values()), submitted
    batched = planned[1:]  # the first one is the canary's, answered synchronously
    retries = {c for c in submitted if c.endswith("-r1")}
    assert set(submitted) == set(batched) | retries
    assert {c[:-3].split("-L")[0] for c in retries} == {"flaky_py", "slow_py"}
    doc = json.loads((child.repo / ".reviewer" / "audit" / "audit.json").read_text())
    assert doc["run"]["status"] == "completed" and doc["problems"] == []
    assert sorted(f["file"] for f in doc["findings"]) == sorted(FILES)
    if doc["run"]["id"] == 1:
        assert doc["summary"]["requests"]["succeeded"] == len(planned) and doc["summary"]["requests"]["retries"] == 2
    else:  # run 1 had completed before the kill came: the restart sent nothing and carried everything over
        assert doc["summary"]["requests"]["planned"] == 0 and doc["summary"]["carried_over"] == len(FILES)


@case('audit: crashes',
      '`audit run --wait` killed with SIGKILL as a batch create arrives, after the batch exists but before the client hears of it, and mid results stream; then started again',
      "the lost batch is adopted from the API's list, never created twice; every custom_id submitted once (retries under their own ids); every finding in the report")
def test_killed_at_each_step_of_submitting_and_collecting_then_restarted_sends_each_request_once(setup) -> None:
    emu, repo, child = setup
    planned = planned_ids(child)
    assert len(planned) == 5  # copy_of_m0.py rides along with m0.py
    child.points = [
        ("create", True),   # the create request arrives and is lost: no batch
        ("create", False),  # the create request arrives, the batch is made after the child died
        ("created", None),  # the batch exists, the child never got its id
        ("results", 1),     # in the middle of a results stream, inside a state transaction
        ("create", False),  # the retry batch for the errored and expired requests
    ]
    runs = []
    for _ in range(10):
        done = child.run(*RUN)
        runs.append(done.returncode)
        if done.returncode != -signal.SIGKILL:
            break
    assert done.returncode == 0, done.stderr
    assert child.points == [] and len(child.fired) == 5, child.fired
    assert runs == [-9] * 5 + [0]
    assert "adopted batch" in done.stderr or any("adopted" in n for n in json.loads(
        (repo / ".reviewer" / "audit" / "audit.json").read_text())["notes"])
    assert_nothing_lost_or_sent_twice(emu, child, planned)
    # four requests in batches of two, then the two retries: no batch was created twice
    assert sorted(len(b.requests) for b in emu.batches.values()) in ([2, 2, 2], [1, 1, 2, 2])


@case('audit: crashes',
      '`audit run --wait` killed with SIGKILL at each request it makes, in turn, then started again',
      "every run finishes the same audit: each custom_id submitted once, every file's findings in the report, nothing left open")
def test_killed_at_any_request_then_restarted_finishes_the_same_audit(setup, tmp_path: Path, monkeypatch) -> None:
    emu, repo, child = setup
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    monkeypatch.setenv("REVIEWER_AUDIT_SETTLE_SECONDS", "0.3")
    emu.batch_processing_seconds = 0.005  # few polls: the kill points are the interesting requests
    planned = planned_ids(child)
    reference = child.run(*RUN)
    assert reference.returncode == 0, reference.stderr
    kinds = [f"{r.method} {r.path.rsplit('/', 1)[-1] if 'results' in r.path else r.path[:22]}" for r in emu.requests]
    # canary call, two creates, polls, two result streams, the retry batch(es): create, poll, results
    assert kinds.count("POST /v1/messages") == 1 and kinds.count("POST /v1/messages/batches") in (3, 4)
    assert kinds.count("GET results") == kinds.count("POST /v1/messages/batches") and len(kinds) <= 30, kinds
    for k in range(1, len(kinds) + 1):
        emu.reset()
        emu.batch_processing_seconds = 0.005
        emu.responder, emu.batch_outcome, emu.on_request = audit_model, batch_outcome, child.on_request
        child.state = tmp_path / f"state-{k}" / "audit.db"
        child.kill_at_request = k
        first = child.run(*RUN)
        child.kill_at_request = None
        assert first.returncode in (-signal.SIGKILL, 0), first.stderr
        # Started again (in this process: only the killed run needs to be a child).
        assert main([*RUN, "--repo-dir", str(repo), "--state", str(child.state)]) == 0, k
        assert_nothing_lost_or_sent_twice(emu, child, planned)
