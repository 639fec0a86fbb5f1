"""Workflow security: the rules zizmor cannot know about this project, as tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
FILES = WORKFLOWS + [ROOT / "action.yml"]
ALLOWED_WRITE = {"pull-requests", "security-events", "contents", "actions"}
UNTRUSTED = re.compile(r"\$\{\{\s*(github\.event\.|github\.head_ref|inputs\.)")


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # BaseLoader: `on` stays a string


def _steps(doc: dict) -> list[dict]:
    if "runs" in doc:
        return doc["runs"].get("steps", [])
    return [s for job in doc.get("jobs", {}).values() for s in job.get("steps", [])]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_pull_request_target(path: Path) -> None:
    assert "pull_request_target" not in _load(path).get("on", {})


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_explicit_and_least_privilege(path: Path) -> None:
    doc = _load(path)
    assert doc.get("permissions") in ({}, "{}", None) or isinstance(doc.get("permissions"), dict)
    assert doc.get("permissions") not in ("write-all", "read-all")
    for name, job in doc["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"job {name} must list its permissions"
        for scope, level in perms.items():
            assert level in ("read", "none") or scope in ALLOWED_WRITE, f"{name}: {scope}: {level}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_untrusted_expression_inside_run_scripts(path: Path) -> None:
    for step in _steps(_load(path)):
        assert not UNTRUSTED.search(step.get("run", "")), f"{step.get('name')}: pass it through env:"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_never_reach_code_checked_out_from_the_pull_request(path: Path) -> None:
    doc = _load(path)
    for name, job in doc["jobs"].items():
        steps = job.get("steps", [])
        pr_code = any(
            "checkout" in s.get("uses", "") and "base" not in s.get("with", {}).get("ref", "")
            for s in steps
        ) and "pull_request" in doc.get("on", {})
        if pr_code:
            for s in steps:
                assert "secrets." not in str(s), f"job {name} runs PR code next to a secret"


def test_review_workflow_skips_drafts_and_forks_and_cancels_stale_runs() -> None:
    doc = _load(ROOT / ".github" / "workflows" / "review.yml")
    assert doc["concurrency"]["cancel-in-progress"] == "true"
    assert "github.event.pull_request.number" in doc["concurrency"]["group"]
    job = doc["jobs"]["review"]
    assert "draft" in job["if"]
    assert any("fork" in s.get("run", "") for s in job["steps"])
    assert sorted(doc["on"]["pull_request"]["types"]) == ["opened", "ready_for_review", "reopened", "synchronize"]


def _run_action_script(tmp_path: Path, **inputs: str) -> tuple[int, list[str], str]:
    """Run the action's script with a stand-in `reviewer` that records its argv."""
    import os
    import subprocess

    step = next(s for s in _load(ROOT / "action.yml")["runs"]["steps"] if s.get("id") == "review")
    fake = tmp_path / "bin" / "reviewer"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n')
    fake.chmod(0o755)
    args_file = tmp_path / "args"
    args_file.unlink(missing_ok=True)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path), "ARGS_FILE": str(args_file),
           "REVIEWER_COMMAND": "review", "REVIEWER_MODEL": "", "REVIEWER_FAIL_ON": "never", "REVIEWER_CONFIG": "",
           "REVIEWER_MAX_COST": "", "REVIEWER_TIMEOUT": ""} | inputs
    done = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True)
    return done.returncode, args_file.read_text().splitlines() if args_file.exists() else [], done.stdout


def test_action_passes_inputs_to_reviewer_as_arguments(tmp_path: Path) -> None:
    code, args, _ = _run_action_script(tmp_path, REVIEWER_MODEL="claude-opus-5-5", REVIEWER_FAIL_ON="critical",
                                       REVIEWER_CONFIG="ci/review.toml")
    assert code == 0 and args == ["review", "--post", "--format", "markdown", "--output", f"{tmp_path}/reviewer-report.md",
                                  "--fail-on", "critical", "--model", "claude-opus-5-5", "--config", "ci/review.toml"]
    code, args, _ = _run_action_script(tmp_path, REVIEWER_MAX_COST="2.5", REVIEWER_TIMEOUT="900")
    assert code == 0 and args == ["review", "--post", "--format", "markdown", "--output", f"{tmp_path}/reviewer-report.md",
                                  "--fail-on", "never", "--timeout", "900", "--max-cost", "2.5"]
    code, args, _ = _run_action_script(tmp_path, REVIEWER_COMMAND="audit", REVIEWER_MAX_COST="20",
                                       REVIEWER_TIMEOUT="600")
    assert code == 0 and args == ["audit", "run", "--wait", "--timeout", "600", "--max-cost", "20"]
    code, args, _ = _run_action_script(tmp_path, REVIEWER_COMMAND="audit")
    assert code == 0 and args == ["audit", "run", "--wait", "--timeout", "2700"]
    code, args, _ = _run_action_script(tmp_path, REVIEWER_COMMAND="eval", REVIEWER_EVAL_SEED="7",
                                       REVIEWER_EVAL_PLANTED="20", REVIEWER_EVAL_CONTROLS="5",
                                       REVIEWER_EVAL_BATCH="true", REVIEWER_MAX_COST="3")
    assert code == 0 and args == ["eval", "run", "--seed", "7", "--planted", "20", "--controls", "5", "--timeout",
                                  "2700", "--batch", "--max-cost", "3"]
    code, args, out = _run_action_script(tmp_path, REVIEWER_COMMAND="deploy")
    assert code == 2 and args == [] and out.startswith("::error title=reviewer::the command input must be")
    action = _load(ROOT / "action.yml")
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "review")
    assert step["env"]["ANTHROPIC_API_KEY"] == "${{ inputs.anthropic-api-key }}"
    assert set(action["outputs"]) == {"findings", "critical", "report", "recall", "precision", "noise"}

