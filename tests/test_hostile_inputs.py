"""Hostile inputs, round two (issue 11, items 8, 10 and 11): bad numbers, deep nesting, a BOM,
file names git quotes, and a hunk longer than its header.

Each error is one line on stderr with its documented exit code and no traceback.
Reviews run against real git repositories and the emulators, as everywhere else.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reviewer import config
from reviewer.cli import main
from tests.audit_model import audit_model, batch_outcome
from tests.conftest import git
from tests.emulators.github import PullFile
from tests.model_script import ScriptedModel, pass_of, user_text
from tests.security_table import case

DIFFS = Path(__file__).parent / "data" / "diffs"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The single error line on stderr; fails on a traceback or a second line."""
    lines = [line for line in err.splitlines() if line.startswith("reviewer:") or "Error" in line]
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def make_repo(root: Path, commits: list[dict[str, str]]) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    for files in commits:
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "change", "--allow-empty")
    return root


# ---------------------------------------------------------------------- item 8: numbers, nesting, BOM


@case("bad numbers", "`request_timeout = nan`, `request_timeout = inf`, `confidence_threshold = nan` or `-inf` in `.reviewer.toml`",
      "a configuration error naming the file and the key (exit 2); nothing is planned or sent")
@pytest.mark.parametrize("line", ["request_timeout = nan", "request_timeout = inf",
                                  "confidence_threshold = nan", "confidence_threshold = -inf"])
def test_nan_and_inf_in_the_configuration_are_refused_naming_the_key(no_anthropic, repo: Path, capsys, line) -> None:
    (repo / ".reviewer.toml").write_text(line + "\n")
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run")
    assert code == 2 and out == ""
    message = one_line_error(err)
    key = line.split(" =")[0]
    assert ".reviewer.toml" in message and f"'{key}' must be a finite number" in message


@case("bad numbers", "`audit run --max-cost nan` (and `inf`, and `audit plan --max-cost nan`): NaN compares false with every estimate",
      "refused as a usage error (exit 2) before planning; no request reaches the API")
def test_max_cost_nan_cannot_switch_the_audit_cost_gate_off(anthropic_emu, tmp_path: Path, capsys, monkeypatch) -> None:
    anthropic_emu.responder = audit_model
    anthropic_emu.batch_outcome = batch_outcome
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    repo = make_repo(tmp_path / "repo", [{f"m{i}.py": "def f(x):\n    return 1 / x  # BUG\n" for i in range(5)}])
    for args in (["run", "--wait", "--max-cost", "nan"], ["run", "--wait", "--max-cost", "inf"],
                 ["run", "--wait", "--max-cost", "NaN", "--canary", "0"], ["plan", "--max-cost", "nan"]):
        code, _, err = run(capsys, "audit", *args, "--repo-dir", str(repo))
        assert code == 2, (args, err)
        assert "--max-cost" in err and "finite number" in err and "Traceback" not in err
    assert anthropic_emu.requests == []
    assert not (repo / ".reviewer" / "audit.db").exists()


@case("bad numbers", "`REVIEWER_GITHUB_TIMEOUT=nan`, `..._THROTTLE=inf`, `..._WRITE_THROTTLE=-inf`, `..._BACKOFF=-1`, "
      "`..._SECONDARY_WAIT=NaN`",
      "a usage error naming the variable (exit 2) before any request to GitHub")
@pytest.mark.parametrize("name,value", [("REVIEWER_GITHUB_TIMEOUT", "nan"), ("REVIEWER_GITHUB_THROTTLE", "inf"),
                                        ("REVIEWER_GITHUB_WRITE_THROTTLE", "-inf"), ("REVIEWER_GITHUB_BACKOFF", "-1"),
                                        ("REVIEWER_GITHUB_SECONDARY_WAIT", "NaN")])
def test_github_settings_in_the_environment_must_be_finite_seconds(
    no_anthropic, github_emu, capsys, monkeypatch, name, value
) -> None:
    github_emu.add_pull("acme/shop", 9, "d" * 40, "e" * 40,
                        files=[PullFile("a.py", patch="@@ -1 +1 @@\n-x = 1\n+x = 2\n", content=b"x = 2\n")])
    monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "review", "--pr", "9", "--repo", "acme/shop", "--dry-run")
    assert code == 2
    assert name in one_line_error(err)
    assert github_emu.requests == []


@case("bad files", "a `.reviewer.toml` nested 100,000 levels deep, as arrays or as dotted keys",
      "a configuration error saying it is nested too deeply (exit 2), not `internal error: RecursionError`")
@pytest.mark.parametrize("text", ["ignore = " + "[" * 100_000 + "]" * 100_000 + "\n",
                                  "[" + ".".join(["model"] * 100_000) + "]\nx = 1\n"])
def test_a_deeply_nested_configuration_is_a_configuration_error(no_anthropic, repo: Path, capsys, text) -> None:
    (repo / ".reviewer.toml").write_text(text)
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run")
    assert code == 2 and out == ""
    message = one_line_error(err)
    assert ".reviewer.toml" in message and "nested" in message and len(message) < 400


@case("bad files", "a `GITHUB_EVENT_PATH` payload nested 100,000 levels deep",
      "a usage error naming the file and saying it is nested too deeply (exit 2); GitHub is not called")
def test_a_deeply_nested_event_payload_is_a_usage_error(no_anthropic, github_emu, tmp_path: Path, capsys, monkeypatch) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"pull_request": ' + "[" * 100_000 + "]" * 100_000 + "}")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    code, _, err = run(capsys, "review", "--repo-dir", str(tmp_path), "--dry-run")
    assert code == 2
    message = one_line_error(err)
    assert str(event) in message and "nested too deeply" in message
    assert github_emu.requests == []


@case("bad files", "a `.reviewer.toml` saved with a UTF-8 byte-order mark (Windows editors)",
      "read as the same file without it; the settings apply")
def test_a_configuration_starting_with_a_utf8_bom_is_read(no_anthropic, repo: Path, capsys) -> None:
    (repo / ".reviewer.toml").write_bytes(b"\xef\xbb\xbfmax_concurrency = 3\nignore = [\"util.py\"]\n")
    assert config.load(None, repo).max_concurrency == 3
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run")
    assert code == 0, err
    assert "util.py: ignored by util.py" in out


# ---------------------------------------------------------------------- item 10: names git quotes

# Ten lines, so a finding on line 1 is outside the hunk's own context (3 lines)
# and is only seen by the model when the file at head was read.
def _module(marker: str, changed: str) -> str:
    return f"# {marker}\n" + "".join(f"v{i} = {i}\n" for i in range(2, 6)) + changed + "".join(
        f"w{i} = {i}\n" for i in range(7, 11))


ODD_NAMES = ("caf\u00e9.py", 'q"uote.py', "evil\u202egnp.py", "sp ace.py")


@case("file names", "files named `café.py`, `q\"uote.py`, `evil<U+202E>gnp.py`, `sp ace.py`, `back\\slash.py`, "
      "`tab<TAB>x.py` and `new<LF>line.py`, which `git diff` C-quotes",
      "each is listed as reviewed under its real name and its per-file call shows lines of the file at head outside "
      "the hunk (not the line-break name, which the repository view refuses); findings on the first four are anchored "
      "on their lines, none rejected")
def test_file_names_git_quotes_are_reviewed_under_their_real_names(anthropic_emu, tmp_path: Path, capsys) -> None:
    names = ODD_NAMES + ("back\\slash.py", "tab\tx.py", "new\nline.py")
    repo = make_repo(tmp_path / "repo", [
        {name: _module(f"head-context-{i}", "x = 1\n") for i, name in enumerate(names)},
        {name: _module(f"head-context-{i}", "x = 2\n") for i, name in enumerate(names)},
    ])
    from reviewer.diff import shown_path

    # The prompts show each name escaped (a name cannot reorder or break the prompt's lines),
    # so the model reports it as shown; the finding lands on the real file.
    anthropic_emu.responder = ScriptedModel(per_file={
        shown_path(name): {"findings": [{"file": shown_path(name), "line": 6, "side": "RIGHT", "severity": "warning",
                                         "category": "bug", "issue": f"x changed in {shown_path(name)}"}]}
        for name in ODD_NAMES
    })
    code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert sorted(doc["stats"]["files_reviewed"]) == sorted(names), json.dumps(doc["stats"])[:3000]
    assert sorted(f["file"] for f in doc["findings"]) == sorted(ODD_NAMES)
    assert all(f["line"] == 6 for f in doc["findings"])
    assert not any("rejected" in note for note in doc.get("notes", [])), doc.get("notes")
    per_file = [user_text(r.body) for r in anthropic_emu.message_requests() if pass_of(r.body) == "per_file"]
    for i, name in enumerate(names):
        if "\n" not in name:  # a name with a line break is refused by the repository view: no context
            prompt = next(t for t in per_file if f"File: {shown_path(name)}\n" in t)
            file_line = next(line for line in prompt.splitlines() if line.startswith("File: "))
            assert "\u202e" not in file_line and "\t" not in file_line
            assert f"head-context-{i}\n" in prompt, name  # line 1, outside the hunk: read from git at head


@case("file names", "a pull request whose files are named with a quote, a backslash, a tab and a line break",
      "the diff rebuilt from the API keeps each name whole; each file is reviewed under its real name")
def test_pull_request_file_names_with_quotes_and_line_breaks_stay_whole(
    anthropic_emu, github_emu, capsys
) -> None:
    names = ('we"ird.py', "back\\slash.py", "tab\tx.py", "new\nline.py", "caf\u00e9.py")
    github_emu.add_pull("acme/shop", 9, "d" * 40, "e" * 40, files=[
        PullFile(name, patch="@@ -1 +1 @@\n-x = 1\n+x = 2\n", content=b"x = 2\n") for name in names])
    anthropic_emu.responder = ScriptedModel()
    code, out, err = run(capsys, "review", "--pr", "9", "--repo", "acme/shop", "--format", "json")
    assert code == 0, err
    assert sorted(json.loads(out)["stats"]["files_reviewed"]) == sorted(names)


# ---------------------------------------------------------------------- item 11: hunk longer than its header


@case("malformed diff", "a hunk header that counts fewer lines than its body (`@@ -10,2 +10,2 @@` over 4 lines, "
      "the extra ones adding `os.system(...)`)",
      "a malformed diff (exit 2) naming the file and the hunk, also when the extra lines follow a blank line at the "
      "end of the input; no line is dropped in silence")
def test_a_hunk_longer_than_its_header_is_a_malformed_diff(no_anthropic, capsys) -> None:
    for name, where in (("hunk_longer_than_header", "in 'app.py', hunk 2 (@@ -10,2 +10,2 @@)"),
                        ("hunk_longer_at_end_of_input", "in 'config.py', hunk 1 (@@ -4,3 +4,3 @@)")):
        code, out, err = run(capsys, "review", "--diff", str(DIFFS / f"{name}.diff"), "--dry-run")
        assert code == 2 and out == ""
        message = one_line_error(err)
        assert "malformed diff" in message and where in message


@case("file names", "a malformed hunk in a file named `evil<U+202E>gnp.py`",
      "the one-line error names the file as `evil\\u202egnp.py`; no U+202E reaches stderr")
def test_a_malformed_hunk_names_its_file_with_bidi_characters_escaped(no_anthropic, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.diff"
    bad.write_text('diff --git "a/evil\\342\\200\\256gnp.py" "b/evil\\342\\200\\256gnp.py"\n'
                   '--- "a/evil\\342\\200\\256gnp.py"\n+++ "b/evil\\342\\200\\256gnp.py"\n'
                   "@@ -1 +1 @@\n-x = 1\n+x = 2\n+y = 3\n")
    code, _, err = run(capsys, "review", "--diff", str(bad), "--dry-run")
    assert code == 2
    assert "in 'evil\\u202egnp.py', hunk 1" in one_line_error(err)
    assert "\u202e" not in err


# ---------------------------------------------------------------------- small things a new user hit


def test_base_missing_from_a_shallow_clone_says_the_history_is_missing(no_anthropic, repo: Path, tmp_path: Path, capsys) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True)
    code, out, err = run(capsys, "review", "--repo-dir", str(shallow), "--base", "HEAD~1", "--dry-run")
    assert code == 2 and out == ""
    message = one_line_error(err)
    assert "'HEAD~1' is not a commit" in message
    assert "shallow" in message and "fetch-depth: 0" in message and "git fetch --unshallow" in message


def test_base_missing_from_a_full_clone_has_no_shallow_hint(no_anthropic, repo: Path, capsys) -> None:
    code, _, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "no-such-ref", "--dry-run")
    assert code == 2 and "shallow" not in one_line_error(err)


def test_audit_cancel_with_nothing_to_cancel_exits_0(anthropic_emu, tmp_path: Path, capsys, monkeypatch) -> None:
    anthropic_emu.batch_processing_seconds = 0.05
    anthropic_emu.responder = audit_model
    anthropic_emu.batch_outcome = batch_outcome
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    repo = make_repo(tmp_path / "repo", [{"a.py": "def f(x):\n    return 1 / x  # BUG\n"}])
    code, out, err = run(capsys, "audit", "cancel", "--repo-dir", str(repo))  # no state at all
    assert (code, err) == (0, "") and "nothing to cancel" in out
    code, out, err = run(capsys, "audit", "run", "--wait", "--canary", "0", "--repo-dir", str(repo))
    assert code == 0 and "completed" in out, err
    sent = len(anthropic_emu.requests)
    for _ in range(2):  # after a completed run, and again: the same answer
        code, out, err = run(capsys, "audit", "cancel", "--repo-dir", str(repo))
        assert (code, err) == (0, "") and "nothing to cancel" in out
    assert len(anthropic_emu.requests) == sent


@case("file names", "a file named with U+202E and a line break, with findings on it",
      "every report and the pull request show the name escaped (`\\u202e`, `\\n`); never the raw characters")
def test_names_are_shown_escaped_in_every_report(anthropic_emu, tmp_path: Path, capsys) -> None:
    from reviewer.diff import shown_path

    name = "evil\u202egnp.py"
    repo = make_repo(tmp_path / "repo", [{name: "x = 1\n"}, {name: "x = 2\n"}])
    anthropic_emu.responder = ScriptedModel(per_file={shown_path(name): {"findings": [
        {"file": shown_path(name), "line": 1, "severity": "warning", "category": "bug", "issue": "x changed"}]}})
    for fmt in ("text", "markdown", "json"):
        code, out, err = run(capsys, "review", "--repo-dir", str(repo), "--base", "HEAD~1", "--format", fmt)
        assert code == 0, err
        if fmt == "json":
            assert json.loads(out)["findings"][0]["file"] == name  # data keeps the real name
        else:
            assert "\u202e" not in out and "evil\\u202egnp.py" in out
