"""`reviewer audit`: a finding keeps its identity across nights (README: "A finding's identity").

Three nights over a real git repository, the real CLI and SDK against the
Anthropic emulator. Between nights the file changes, so its parts are sent
again, and the scripted model restates the same problem in other words one
line further down each night: code scanning must see one alert, not a new one
every night.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reviewer import identity
from reviewer.audit.state import Store
from tests.audit_model import batch_outcome, numbered, path_of
from tests.test_audit import SARIF_SCHEMA, audit, make_repo, report, write


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    monkeypatch.setenv("REVIEWER_AUDIT_SETTLE_SECONDS", "0.2")
    monkeypatch.delenv("REVIEWER_WEBHOOK_URL", raising=False)


# The same problem in the words of three nights: each pair is `similar`, each has its own fresh fingerprint.
WORDING = {
    1: "mean() divides by zero when the input is empty.",
    2: "Division by zero in mean() for an empty input list.",
    3: "mean() raises ZeroDivisionError: division by zero on an empty input list.",
}
RACE = "The module-level cache dictionary is mutated without holding a lock, a data race between threads."


class Nightly:
    """A scripted model whose wording depends on the night; `# BUG` and `# RACE` mark lines."""

    def __init__(self) -> None:
        self.night = 1

    def __call__(self, body: dict[str, Any]) -> Any:
        path = path_of(body)
        findings = []
        for n, text in numbered(body):
            if "# BUG" in text:
                findings.append({"file": path, "line": n, "end_line": None, "side": "RIGHT", "severity": "warning",
                                 "category": "bug", "issue": WORDING[self.night], "suggestion": None,
                                 "replacement": None, "confidence": 0.9})
            if "# RACE" in text:
                findings.append({"file": path, "line": n, "end_line": None, "side": "RIGHT", "severity": "warning",
                                 "category": "shared-state", "issue": RACE, "suggestion": None,
                                 "replacement": None, "confidence": 0.9})
        return {"findings": findings}


def source(padding: int, race: bool = False) -> str:
    """`stats.py` with the bug `padding` lines further down (a docstring line per night)."""
    mark = "  # BUG # RACE" if race else "  # BUG"
    return ("".join(f'"""Statistics, revision {i}."""\n' for i in range(padding))
            + "def mean(xs):\n    total = sum(xs)\n    return total / len(xs)" + mark + "\n")


@pytest.fixture
def model(anthropic_emu) -> Nightly:
    anthropic_emu.batch_processing_seconds = 0.05
    anthropic_emu.responder = Nightly()
    anthropic_emu.batch_outcome = batch_outcome
    return anthropic_emu.responder


def night(capsys, repo: Path) -> tuple[dict[tuple[str, int, str], str], dict[tuple[str, int, str], str]]:
    """Run one audit; (file, line, category) -> fingerprint, from the SARIF and from the JSON report."""
    code, out, err = audit(capsys, repo, "run", "--wait", "--canary", "0", "--timeout", "30")
    assert code == 0, err + out
    sarif = report(repo, "audit.sarif")
    jsonschema.validate(sarif, SARIF_SCHEMA)
    from_sarif = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                   r["locations"][0]["physicalLocation"]["region"]["startLine"], r["ruleId"]):
                  r["partialFingerprints"]["reviewerFingerprint/v1"] for r in sarif["runs"][0]["results"]}
    from_json = {(f["file"], f["line"], f["category"]): f["fingerprint"] for f in report(repo)["findings"]}
    return from_sarif, from_json


def test_a_reworded_finding_that_moves_a_line_each_night_keeps_one_fingerprint_for_three_nights(
        model, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", {"stats.py": source(0), "copy/stats.py": source(0), "other.py": "x = 1\n"})
    prints = []
    for n in (1, 2, 3):
        model.night = n
        if n > 1:
            write(repo, {"stats.py": source(n - 1), "copy/stats.py": source(n - 1)})
        sarif, doc = night(capsys, repo)
        assert set(sarif) == {("stats.py", 2 + n, "bug"), ("copy/stats.py", 2 + n, "bug")}
        assert sarif == doc  # the JSON report says what code scanning sees
        prints.append((sarif[("stats.py", 2 + n, "bug")], sarif[("copy/stats.py", 2 + n, "bug")]))
    # The wording did change: without inheritance, each night would have opened new alerts.
    assert len({identity.fingerprint("stats.py", "bug", "RIGHT", "return total / len(xs) # BUG", WORDING[n])
                for n in WORDING}) == 3
    assert prints[0] == prints[1] == prints[2]
    # A copy of the same text in another path keeps an identity of its own.
    assert prints[0][0] != prints[0][1]


def test_a_different_problem_on_the_same_line_gets_its_own_fingerprint(model, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", {"stats.py": source(0)})
    first, _ = night(capsys, repo)
    bug = first[("stats.py", 3, "bug")]
    model.night = 2
    write(repo, {"stats.py": source(1, race=True)})  # moved a line, reworded, and a race on the same line
    second, doc = night(capsys, repo)
    assert second == doc
    assert second[("stats.py", 4, "bug")] == bug
    race = second[("stats.py", 4, "shared-state")]
    assert race != bug
    model.night = 3
    write(repo, {"stats.py": source(2, race=True)})
    third, _ = night(capsys, repo)
    assert third == {("stats.py", 5, "bug"): bug, ("stats.py", 5, "shared-state"): race}


def test_an_unchanged_repository_keeps_its_fingerprints_and_sends_nothing(model, anthropic_emu, tmp_path,
                                                                         capsys) -> None:
    repo = make_repo(tmp_path / "repo", {"stats.py": source(0), "other.py": "y = 2  # BUG\n"})
    night(capsys, repo)
    model.night = 2
    write(repo, {"stats.py": source(1)})
    second, _ = night(capsys, repo)  # stats.py inherited its first fingerprint; other.py was carried over
    anthropic_emu.reset()
    anthropic_emu.responder, anthropic_emu.batch_outcome = model, batch_outcome
    third, _ = night(capsys, repo)
    assert anthropic_emu.requests == []  # nothing sent, not even a listing
    assert third == second
    # Written again from the state once the earlier runs' parts are pruned: still the same.
    code, _, err = audit(capsys, repo, "collect")
    assert code == 0, err
    again = {(f["file"], f["line"], f["category"]): f["fingerprint"] for f in report(repo)["findings"]}
    assert again == second
    # Only what the next run inherits from is kept.
    with Store(repo / ".reviewer" / "audit.db") as store:
        assert {r[0] for r in store.db.execute("SELECT DISTINCT run_id FROM identities")} <= {2, 3}


def test_a_reworded_finding_pushed_far_down_by_new_code_above_keeps_its_fingerprint(model, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", {"stats.py": source(0)})
    first, _ = night(capsys, repo)
    model.night = 2
    write(repo, {"stats.py": source(12)})  # twelve lines above it: too far to be "near" without relocation
    second, _ = night(capsys, repo)
    assert second == {("stats.py", 15, "bug"): first[("stats.py", 3, "bug")]}
