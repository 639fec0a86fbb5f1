"""Secrets in disguise (issue 11, item 7): no output carries a secret, however it is spelled.

The model quotes every disguise a leaked secret takes (a `PGPASSWORD` value, a
Slack webhook URL, the API key in base64, hex and with a zero-width space
inside, a URL-encoded password, a GitHub token and an AWS key that are in no
environment variable) in findings, suggestions, replacements, a merged
aggregate verdict, a path outside the diff, and an API error. The real CLI
reviews a pull request on the GitHub emulator with `--post`; then stdout,
stderr, every body GitHub stored or was sent, the step summary and the report
file are searched, with invisible characters removed, for any 16-character
piece of any disguise.
"""

from __future__ import annotations

import base64
import json
import unicodedata
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from reviewer.cli import main
from tests.audit_model import audit_model, path_of
from tests.emulators.anthropic import Fault
from tests.emulators.github import PullFile
from tests.model_script import ScriptedModel, finding_rows
from tests.security_table import case
from tests.test_audit import audit, emu, make_repo, report  # noqa: F401 (fixtures)

REPO = "acme/vault"
HEAD, BASE = "f" * 40, "0" * 40

PGPASSWORD = "pg-Pa55/word+with&chars"
API_KEY = "sk-ant-api03-" + "Zq7_Lm2-Xw9" * 4 + "AA"
SLACK_WEBHOOK = "https://hooks.slack.com/services/T0A1B2C3D/B4E5F6G7H/aBcDeFgHiJkLmNoPqRsTuVwX"
GITHUB_TOKEN_SHAPE = "ghp_" + "r8Kd2Lq0Wm5Nz7Xc4Vb1Hj6Gf3Ts9Pa2Yu5E"
AWS_KEY_SHAPE = "AKIA2E0A8F3B244C9986"
DISGUISES = {
    "PGPASSWORD value": PGPASSWORD,
    "Slack webhook URL": SLACK_WEBHOOK,
    "API key in base64": base64.b64encode(API_KEY.encode()).decode(),
    "API key inside a Basic auth header": base64.b64encode(b"bot:" + API_KEY.encode()).decode(),
    "API key, urlsafe base64 without padding": base64.urlsafe_b64encode(b"x" + API_KEY.encode()).decode().rstrip("="),
    "API key with U+200B inside": API_KEY[:10] + "\u200b" + API_KEY[10:30] + "\u200b" + API_KEY[30:],
    "API key hex-encoded": API_KEY.encode().hex(),
    "PGPASSWORD URL-encoded": urllib.parse.quote(PGPASSWORD, safe=""),
    "GitHub token not in the environment": GITHUB_TOKEN_SHAPE,
    "AWS key not in the environment": AWS_KEY_SHAPE,
}
D = DISGUISES
SHA, FINGERPRINT = "3b74b81e1f2c3d4e5f60718293a4b5c6d7e8f901", "0123456789abcdef"

UTIL = "def mean(xs):\n    return sum(xs) / len(xs)\n\n\ndef median(xs):\n    xs = sorted(xs)\n    return xs[len(xs) // 2]\n"
UTIL_PATCH = "@@ -1,2 +1,7 @@\n def mean(xs):\n     return sum(xs) / len(xs)\n+\n+\n+def median(xs):\n+    xs = sorted(xs)\n+    return xs[len(xs) // 2]\n"
APP = "from util import mean, median\n\n\ndef report(xs):\n    return f'{mean(xs)} {median(xs)}'\n"
APP_PATCH = "@@ -1,5 +1,5 @@\n-from util import mean\n+from util import mean, median\n \n \n def report(xs):\n-    return f'{mean(xs)}'\n+    return f'{mean(xs)} {median(xs)}'\n"
PAY = "def pay(amount):\n    return charge(amount)\n"
PAY_PATCH = "@@ -0,0 +1,2 @@\n+def pay(amount):\n+    return charge(amount)\n"


def leaks(text: str) -> list[str]:
    """The disguises of which some 16-character piece is in `text`, read without its invisible characters."""
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    found = []
    for name, disguise in DISGUISES.items():
        plain = "".join(c for c in disguise if unicodedata.category(c) != "Cf")
        if any(plain[i:i + 16] in visible for i in range(len(plain) - 15)):
            found.append(name)
    for name, secret in (("API key", API_KEY), ("PGPASSWORD", PGPASSWORD)):
        if secret in visible:
            found.append(name)
    return found


def model() -> ScriptedModel:
    util = [
        {"file": "util.py", "line": 7, "severity": "critical", "category": "security", "confidence": 0.95,
         "issue": f"median() logs PGPASSWORD={D['PGPASSWORD value']} and posts to {D['Slack webhook URL']}; "
                  f"the key is {D['API key in base64']} in base64",
         "suggestion": f"drop 'Authorization: Basic {D['API key inside a Basic auth header']}' and the key "
                       f"{D['API key with U+200B inside']}",
         "replacement": f"    return xs[len(xs) // 2]  # {D['GitHub token not in the environment']} {D['AWS key not in the environment']}"},
        {"file": "util.py", "line": 2, "severity": "warning", "category": "bug", "confidence": 0.9,
         "issue": f"hex {D['API key hex-encoded']}, url-encoded {D['PGPASSWORD URL-encoded']}, "
                  f"commit {SHA}, fingerprint {FINGERPRINT}: mean() divides by zero",
         "suggestion": "return None when `len(xs) == 0`"},
        # Not in the diff: rejected, and its path goes into the notes and the summary.
        {"file": f"secrets/{D['GitHub token not in the environment']}.env", "severity": "info",
         "issue": D["PGPASSWORD value"]},
    ]
    app = [
        # Low confidence: listed in the review body, for a human to verify.
        {"file": "app.py", "line": 5, "severity": "info", "category": "other", "confidence": 0.2,
         "issue": f"maybe {D['AWS key not in the environment']} and {D['API key, urlsafe base64 without padding']}"},
        {"file": "app.py", "line": 1, "severity": "info", "category": "naming", "confidence": 0.9,
         "issue": "the import is fine"},
    ]
    cross = {"findings": [{"file": "app.py", "line": None, "severity": "warning", "category": "architecture",
                           "confidence": 0.8, "issue": f"{D['API key with U+200B inside']} and {D['PGPASSWORD URL-encoded']}"}]}

    def aggregate(body: dict[str, Any]) -> dict[str, Any]:
        rows = finding_rows(body)
        merged = [r["id"] for r in rows if r["file"] == "app.py" and r.get("line") == 1][:1] + \
                 [r["id"] for r in rows if "architecture" == r.get("category")][:1]
        groups = [{"ids": merged, "severity": "warning", "confidence": 0.8,
                   "issue": f"merged: {D['Slack webhook URL']} {D['API key hex-encoded']}"}] if len(merged) == 2 else []
        return {"groups": groups + [{"ids": [r["id"]], "severity": r["severity"], "confidence": 0.8, "issue": None}
                                    for r in rows if r["id"] not in merged]}

    return ScriptedModel(per_file={"util.py": {"findings": util}, "app.py": {"findings": app},
                                   # Every call for pay.py fails; the API's message quotes secrets.
                                   "pay.py": Fault(529, retry_after=0.001,
                                                   message=f"overloaded: {D['API key with U+200B inside']} {D['PGPASSWORD value']}")},
                         cross_file=cross, aggregate=aggregate)


@pytest.fixture
def leaky_pr(anthropic_emu, github_emu, monkeypatch, tmp_path):
    anthropic_emu.api_keys = anthropic_emu.api_keys | {API_KEY}
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("PGPASSWORD", PGPASSWORD)
    github_emu.add_pull(REPO, 3, HEAD, BASE, files=[
        PullFile("util.py", patch=UTIL_PATCH, content=UTIL.encode()),
        PullFile("app.py", patch=APP_PATCH, content=APP.encode()),
        PullFile("pay.py", status="added", patch=PAY_PATCH, content=PAY.encode()),
    ])
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path))
    (tmp_path / "config.toml").write_text("max_retries = 1\n")
    anthropic_emu.responder = model()
    return github_emu, tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def outputs(gh, tmp_path: Path, out: str, err: str) -> dict[str, str]:
    """Every text the run wrote or sent, by where it went."""
    texts = {"stdout": out, "stderr": err}
    texts |= {f"review {r['id']}": r["body"] for r in gh.reviews(REPO, 3)}
    texts |= {f"inline comment {c['id']}": c["body"] for c in gh.review_comments(REPO, 3)}
    texts |= {f"comment {c['id']}": c["body"] for c in gh.issue_comments(REPO, 3)}
    texts |= {f"request {r.method} {r.path}": json.dumps(r.body, ensure_ascii=False)
              for r in gh.requests if r.method != "GET" and r.body is not None}
    texts |= {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir() if p.is_file() and p.suffix != ".toml"}
    return texts


@case("secrets", "the model quotes a `PGPASSWORD` value, a Slack webhook URL, the API key in base64 (alone, in a Basic "
      "auth header, URL-safe unpadded), hex-encoded and with a zero-width space inside, a URL-encoded password, and a "
      "GitHub token and an AWS key that are in no variable; in findings, fixes, replacements, a merged verdict, a "
      "rejected path and an API error",
      "none appears in stdout or stderr for any `--format`, in any review, comment or summary GitHub stored or was "
      "sent, in the step summary or the report file; hashes and fingerprints in the same text are kept")
@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif"])
def test_disguised_secrets_reach_no_output_of_a_posted_review(leaky_pr, capsys, fmt) -> None:
    gh, tmp = leaky_pr
    code, out, err = run(capsys, "review", "--pr", "3", "--repo", REPO, "--post", "--format", fmt,
                         "--config", str(tmp / "config.toml"))
    assert code == 0, err
    texts = outputs(gh, tmp, out, err)
    # The disguises did reach every channel, redacted: the test would see a leak.
    summary = next(t for name, t in texts.items() if name.startswith("comment "))
    assert "Failed files:" in summary and "`pay.py`: API error 529" in summary and "[redacted]" in summary
    assert "[redacted]" in texts["github_step_summary"] and "[redacted]" in texts["reviewer-report.md"]
    assert "[redacted]" in out and any("[redacted]" in t for n, t in texts.items() if n.startswith("inline"))
    assert {name: leaks(text) for name, text in texts.items() if leaks(text)} == {}
    # Ordinary review text is not mangled on the way.
    assert SHA in texts["reviewer-report.md"] and FINGERPRINT in texts["reviewer-report.md"]
    assert any(SHA in t and FINGERPRINT in t for n, t in texts.items() if n.startswith("inline"))
    if fmt in ("json", "sarif"):
        json.loads(out)


@case("secrets", "an API error whose message carries the API key with a zero-width space inside, in base64 and a "
      "`PGPASSWORD` value",
      "the error line on stderr names the refusal and shows none of them; exit 3")
def test_disguised_secrets_in_an_api_error_reach_no_error_line(anthropic_emu, capsys, monkeypatch, tmp_path) -> None:
    anthropic_emu.api_keys = anthropic_emu.api_keys | {API_KEY}
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("PGPASSWORD", PGPASSWORD)
    anthropic_emu.responder = lambda body: Fault(403, message=f"key {D['API key with U+200B inside']} is not allowed "
                                                               f"({D['API key in base64']}, {D['PGPASSWORD value']})")
    (tmp_path / "change.diff").write_text("--- a/pay.py\n+++ b/pay.py\n@@ -1 +1,2 @@\n a = 1\n+b = 2\n")
    code, out, err = run(capsys, "review", "--diff", str(tmp_path / "change.diff"))
    assert code == 3
    (line,) = [x for x in err.splitlines() if x.startswith("reviewer: error:")]
    assert line.startswith("reviewer: error: Anthropic API refused") and "[redacted]" in line
    assert leaks(out + err) == []


def disguising_model(body: dict[str, Any]) -> Any:
    if path_of(body) != "pay.py":
        return audit_model(body)
    return {"findings": [
        {"file": "pay.py", "line": 1, "end_line": None, "side": "RIGHT", "severity": "critical", "category": "security",
         "issue": " ".join(DISGUISES.values()), "suggestion": f"rotate {D['API key with U+200B inside']}",
         "replacement": f"def pay(amount):  # {D['API key hex-encoded']}", "confidence": 0.9},
        {"file": f"../{D['GitHub token not in the environment']}", "line": 1, "severity": "info",
         "issue": D["Slack webhook URL"]},
    ]}


@case("audit: secrets", "an audited file makes the model quote every disguise above (base64, hex, zero-width space, "
      "URL-encoded, a Slack webhook, token shapes in no variable)",
      "none appears in audit.json, audit.md, audit.sarif, the step summary or the log")
def test_disguised_secrets_reach_no_audit_report(emu, tmp_path: Path, capsys, monkeypatch) -> None:
    emu.api_keys = emu.api_keys | {API_KEY}
    emu.responder = disguising_model
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("PGPASSWORD", PGPASSWORD)
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    repo = make_repo(tmp_path / "repo", {"pay.py": PAY, "b.py": "ok = 1\n"})
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30", "--canary", "1",
                           "--state", str(tmp_path / "state.db"))
    assert code == 0, err
    texts = {"stdout": out, "stderr": err, "step summary": summary.read_text()}
    texts |= {name: report(repo, name) if name == "audit.md" else json.dumps(report(repo, name), ensure_ascii=False)
              for name in ("audit.json", "audit.md", "audit.sarif")}
    assert "[redacted]" in texts["audit.md"] and "[redacted]" in texts["step summary"]
    assert {name: leaks(text) for name, text in texts.items() if leaks(text)} == {}
