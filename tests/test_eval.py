"""`reviewer eval` end to end (issue 13): the real CLI, the real SDK, the Anthropic emulator.

A scripted model catches a chosen subset of the planted defects and adds a
chosen amount of noise; the report's recall, precision, noise and per-kind
table must be exactly what the test computes from those choices. The same
through `--batch`, killed with SIGKILL once a batch exists and started again:
every request is submitted once, and the scores are the same.
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

from reviewer import schemas
from reviewer.cli import main
from reviewer.eval import runner
from reviewer.eval.models import Case
from tests.conftest import git
from tests.model_script import each_alone, file_of, pass_of, task_text

SHOP = {
    "shop/cart.py": '''"""A shopping cart."""

import json
import os


DEFAULT_CURRENCY = "EUR"


class Cart:
    def __init__(self, owner, currency="EUR", limit=10):
        self.owner = owner
        self.currency = currency
        self.limit = limit
        self.items = []

    def add(self, name, price, quantity=1):
        if name is None:
            raise ValueError("an item needs a name")
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        if len(self.items) >= self.limit:
            raise OverflowError("the cart is full")
        self.items.append((name, price, quantity))
        return len(self.items)

    def total(self, discount=0):
        subtotal = 0
        for name, price, quantity in self.items:
            subtotal += price * quantity
        if discount > 0 and subtotal > 100:
            subtotal = subtotal - discount
        return round(subtotal, 2)

    def first(self, n):
        return self.items[:n]

    def last(self):
        if not self.items:
            return None
        return self.items[-1]


def load(path):
    with open(path) as handle:
        data = json.load(handle)
    return data


def save(path, cart):
    try:
        with open(path, "w") as handle:
            json.dump(cart.items, handle)
    except OSError:
        raise
    return os.path.getsize(path)


def price_of(cart, name, fallback=0):
    for item_name, price, quantity in cart.items:
        if item_name == name:
            return price
    return fallback


def split(total, parts):
    if parts == 0:
        return []
    share = total // parts
    rest = total - share * parts
    return [share + 1 if i < rest else share for i in range(parts)]
''',
    "shop/checkout.py": '''"""Checkout: uses the cart."""

from shop.cart import Cart, price_of, split


def checkout(owner, items, parts=1):
    cart = Cart(owner)
    for name, price in items:
        cart.add(name, price)
    total = cart.total()
    shares = split(total, parts)
    return total, shares


def quote(cart, name):
    return price_of(cart, name, 0)
''',
    "shop/__init__.py": "",
    "README.md": "# shop\n",
    ".reviewer.toml": "verify = false\n",
}


def make_shop(root: Path) -> Path:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    for path, text in SHOP.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "shop")
    return root


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path / "shop")


ARGS = ("--seed", "3", "--planted", "12", "--controls", "4")


def _plan(repo: Path) -> runner.EvalPlan:
    from reviewer import config as config_mod

    cfg = config_mod.load(None, repo)
    return runner.plan(runner.Settings(repo_dir=repo, config=cfg, seed=3, planted=12, controls=4))


class Judge:
    """The scripted model: catches the planted cases it is told to, adds noise where it is told to."""

    def __init__(self, cases: tuple[Case, ...], catch: set[str], noise: dict[str, int], strays: set[str]) -> None:
        self.cases = cases
        self.catch, self.noise, self.strays = catch, noise, strays
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def case_of(self, body: dict[str, Any]) -> Case:
        # The prompt shows the whole file at the case's head, numbered (the fixture's files are small)
        # (not the hunks: git may draw a moved line as another remove and add than the case's diff).
        text = task_text(body)
        found = [c for c in self.cases if c.path == file_of(body) and all(
            f"{n:>6} | {line}" in text for n, line in enumerate(c.new_text.splitlines(), 1))]
        assert len(found) == 1, f"{len(found)} cases match a per-file prompt for {file_of(body)}"
        return found[0]

    def __call__(self, body: dict[str, Any]) -> Any:
        kind = pass_of(body)
        if kind == "aggregate":
            return each_alone(body)
        if kind != "per_file":
            return {"findings": []}
        c = self.case_of(body)
        with self.lock:
            self.seen[c.id] = self.seen.get(c.id, 0) + 1
        out = []
        if c.id in self.catch:
            out.append(self.finding(c, c.start, "warning", 0.9, "the change breaks the contract"))
            # Below --min-severity: neither a catch nor noise.
            out.append(self.finding(c, c.start, "info", 0.3, "naming could be clearer"))
        if c.id in self.strays:
            out.append(self.finding(c, c.start, "warning", 0.6, "a stray remark", file_level=True))
        for k in range(self.noise.get(c.id, 0)):
            out.append(self.finding(c, c.start, "warning", 0.75, f"noise number {k} about this change"))
        return {"findings": out}

    @staticmethod
    def finding(c: Case, line: int, severity: str, confidence: float, issue: str,
                file_level: bool = False) -> dict[str, Any]:
        return {"file": c.path, "line": None if file_level else line, "side": "RIGHT", "severity": severity,
                "category": "bug", "confidence": confidence, "issue": f"{issue} ({c.id})"}


def choose(p: runner.EvalPlan) -> tuple[set[str], dict[str, int], set[str]]:
    planted = [c for c in p.cases.cases if c.planted]
    controls = [c for c in p.cases.cases if not c.planted]
    catch = {c.id for i, c in enumerate(planted) if i % 3 != 2}
    noise = {controls[0].id: 2, controls[-1].id: 1} if len(controls) > 1 else {}
    strays = {planted[0].id}
    return catch, noise, strays


def expected(p: runner.EvalPlan, catch: set[str], noise: dict[str, int], strays: set[str]) -> dict[str, Any]:
    planted = [c for c in p.cases.cases if c.planted]
    controls = [c for c in p.cases.cases if not c.planted]
    caught = [c for c in planted if c.id in catch]
    findings_on_planted = len(caught) + len([c for c in planted if c.id in strays])
    per_kind: dict[str, tuple[int, int]] = {}
    for c in planted:
        hit, n = per_kind.get(c.kind, (0, 0))
        per_kind[c.kind] = (hit + (c.id in catch), n + 1)
    return {
        "recall": len(caught) / len(planted),
        "precision": len(caught) / findings_on_planted,
        "noise": sum(noise.values()) / len(controls),
        "per_kind": {k: hit / n for k, (hit, n) in per_kind.items()},
    }


def _report(out_dir: Path) -> dict[str, Any]:
    doc = json.loads((out_dir / "eval.json").read_text())
    assert schemas.first_error(schemas.load("eval-report"), doc) is None
    return doc


def _metric(doc: dict[str, Any], name: str) -> float:
    return doc["summary"][{"noise": "noise_per_control"}.get(name, name)]["value"]


def test_plan_and_dry_run_send_nothing_and_max_cost_refuses(shop: Path, anthropic_emu, capsys) -> None:
    assert main(["eval", "plan", "--repo-dir", str(shop), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "planted" in out and "estimated cost" in out and "shop/cart.py" in out
    assert main(["eval", "run", "--dry-run", "--repo-dir", str(shop), *ARGS]) == 0
    assert main(["eval", "run", "--repo-dir", str(shop), *ARGS, "--max-cost", "0.000001"]) == 1
    captured = capsys.readouterr()
    assert "refused" in captured.err and "estimated" in captured.err.lower() + captured.out.lower()
    assert anthropic_emu.requests == []
    assert not (shop / ".reviewer" / "eval" / "cases.git").exists()
    # Nothing was written into the user's repository: no object, no ref, a clean tree.
    assert git(shop, "status", "--porcelain").strip() in ("", "?? .reviewer/")
    assert git(shop, "for-each-ref").count("\n") == 1


def test_run_scores_what_the_scripted_model_caught(shop: Path, anthropic_emu, tmp_path: Path, capsys) -> None:
    p = _plan(shop)
    assert len(p.cases.planted) >= 8 and len(p.cases.controls) >= 2
    catch, noise, strays = choose(p)
    judge = Judge(p.cases.cases, catch, noise, strays)
    anthropic_emu.responder = judge
    out_dir = tmp_path / "out"
    objects_before = git(shop, "count-objects", "-v")
    assert main(["eval", "run", "--repo-dir", str(shop), *ARGS, "--output-dir", str(out_dir), "--format", "json"]) == 0
    doc = _report(out_dir)
    want = expected(p, catch, noise, strays)
    assert _metric(doc, "recall") == pytest.approx(want["recall"])
    assert _metric(doc, "precision") == pytest.approx(want["precision"])
    assert _metric(doc, "noise") == pytest.approx(want["noise"])
    kinds = {k["kind"]: k for k in doc["kinds"] if k["planted"]}
    assert {k: v["recall"]["value"] for k, v in kinds.items()} == pytest.approx(want["per_kind"])
    assert set(judge.seen) == {c.id for c in p.cases.cases}
    # The user's repository got no object: the cases live in the scratch repository.
    assert git(shop, "count-objects", "-v") == objects_before
    # Run again: every case has its outcome, nothing is sent.
    sent = len(anthropic_emu.requests)
    assert main(["eval", "run", "--repo-dir", str(shop), *ARGS, "--output-dir", str(out_dir)]) == 0
    assert len(anthropic_emu.requests) == sent
    assert _metric(_report(out_dir), "recall") == pytest.approx(want["recall"])
    capsys.readouterr()
    # The saved report prints again, and compares with itself without a difference.
    assert main(["eval", "report", str(out_dir / "eval.json"), "--format", "markdown"]) == 0
    assert "recall" in capsys.readouterr().out.lower()
    assert main(["eval", "compare", str(out_dir / "eval.json"), str(out_dir / "eval.json")]) == 0


def test_batch_killed_after_a_batch_exists_resumes_and_submits_each_request_once(
        shop: Path, anthropic_emu, tmp_path: Path) -> None:
    p = _plan(shop)
    catch, noise, strays = choose(p)
    anthropic_emu.responder = Judge(p.cases.cases, catch, noise, strays)
    out_dir = tmp_path / "out"
    env = {**os.environ, "REVIEWER_AUDIT_POLL_SECONDS": "0.02", "REVIEWER_AUDIT_SETTLE_SECONDS": "0.3"}
    cmd = [sys.executable, "-m", "reviewer.cli", "eval", "run", "--batch", "--repo-dir", str(shop), *ARGS,
           "--output-dir", str(out_dir), "--timeout", "60"]
    proc: list[subprocess.Popen[str]] = []
    killed: list[str] = []

    def kill(_batch: Any) -> None:
        # The batch exists at the API; the child never hears of it.
        if not killed and proc and proc[0].poll() is None:
            proc[0].send_signal(signal.SIGKILL)
            proc[0].wait()
            killed.append("after the batch was created")

    anthropic_emu.on_batch_created = kill
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    proc.append(first)
    first.communicate(timeout=90)
    assert killed and first.returncode == -signal.SIGKILL
    anthropic_emu.on_batch_created = None
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=90)
    assert second.returncode == 0, second.stderr
    assert all(n == 1 for n in anthropic_emu.custom_id_submissions.values()), anthropic_emu.custom_id_submissions
    doc = _report(out_dir)
    want = expected(p, catch, noise, strays)
    assert _metric(doc, "recall") == pytest.approx(want["recall"])
    assert _metric(doc, "precision") == pytest.approx(want["precision"])
    assert _metric(doc, "noise") == pytest.approx(want["noise"])
    assert doc["run"]["mode"] == "batch" and doc["run"]["tools"] is False
    assert any("without repository tools" in n for n in doc["notes"])


def _child(shop: Path, out_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reviewer.cli", "eval", "run", "--repo-dir", str(shop), *ARGS,
            "--output-dir", str(out_dir), "--cases-at-once", "2", *extra]


def test_sync_run_killed_mid_way_resumes_and_reviews_only_the_cases_without_an_outcome(
        shop: Path, anthropic_emu, tmp_path: Path) -> None:
    p = _plan(shop)
    catch, noise, strays = choose(p)
    judge = Judge(p.cases.cases, catch, noise, strays)
    anthropic_emu.responder = judge
    out_dir = tmp_path / "out"
    proc: list[subprocess.Popen[str]] = []
    seen: list[int] = []

    def kill_at_the_ninth_request(record: Any) -> None:
        seen.append(1)
        if len(seen) == 9 and proc and proc[0].poll() is None:
            proc[0].send_signal(signal.SIGKILL)

    anthropic_emu.on_request = kill_at_the_ninth_request
    first = subprocess.Popen(_child(shop, out_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.append(first)
    first.communicate(timeout=90)
    assert first.returncode == -signal.SIGKILL
    anthropic_emu.on_request = None
    journal = runner.load_outcomes(shop / ".reviewer" / "eval" / "runs" / p.key)
    finished_before = {o.case_id for o in journal}
    assert 0 < len(finished_before) < len(p.cases.cases)
    before = dict(judge.seen)
    second = subprocess.run(_child(shop, out_dir), capture_output=True, text=True, timeout=90)
    assert second.returncode == 0, second.stderr
    # A case with an outcome is never sent again; at most the two in flight at the kill are sent twice.
    again = {cid for cid, n in judge.seen.items() if n > before.get(cid, 0) and cid in before}
    assert not again & finished_before and len(again) <= 2
    assert set(judge.seen) == {c.id for c in p.cases.cases}
    want = expected(p, catch, noise, strays)
    assert _metric(_report(out_dir), "recall") == pytest.approx(want["recall"])


def test_sigint_writes_what_is_done_marked_incomplete_and_exits_130(shop: Path, anthropic_emu, tmp_path: Path) -> None:
    p = _plan(shop)
    judge = Judge(p.cases.cases, *choose(p))
    anthropic_emu.responder = judge
    out_dir = tmp_path / "out"
    proc: list[subprocess.Popen[str]] = []
    seen: list[int] = []

    def interrupt(record: Any) -> None:
        seen.append(1)
        if len(seen) == 6 and proc and proc[0].poll() is None:
            proc[0].send_signal(signal.SIGINT)

    anthropic_emu.on_request = interrupt
    child = subprocess.Popen(_child(shop, out_dir, "--cases-at-once", "1"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    proc.append(child)
    _out, err = child.communicate(timeout=90)
    anthropic_emu.on_request = None
    assert child.returncode == 130, err
    assert "incomplete" in err and "Traceback" not in err
    doc = _report(out_dir)
    assert any("incomplete" in n for n in doc["notes"])
    assert 0 < doc["summary"]["cases"]["scored_planted"] + doc["summary"]["cases"]["scored_controls"] < len(p.cases.cases)


def test_in_github_actions_the_markdown_goes_to_the_step_summary_and_the_numbers_to_the_outputs(
        shop: Path, anthropic_emu, tmp_path: Path, monkeypatch) -> None:
    p = _plan(shop)
    catch, noise, strays = choose(p)
    anthropic_emu.responder = Judge(p.cases.cases, catch, noise, strays)
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    assert main(["eval", "run", "--repo-dir", str(shop), *ARGS]) == 0
    want = expected(p, catch, noise, strays)
    text = summary.read_text()
    assert text.startswith("## reviewer eval") and f"{want['recall']:.1%}" in text
    written = outputs.read_text()
    assert f"recall={want['recall']:.4f}" in written and f"noise={want['noise']:.4f}" in written
    assert "report=" + str(shop / ".reviewer" / "eval" / "eval.md") in written


def test_a_state_folder_that_cannot_be_made_is_one_line_and_exit_2(shop: Path, anthropic_emu, tmp_path: Path,
                                                                   capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    p = _plan(shop)
    anthropic_emu.responder = Judge(p.cases.cases, *choose(p))
    assert main(["eval", "run", "--repo-dir", str(shop), *ARGS, "--state-dir", str(blocker / "eval")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot" in err[0] and "Traceback" not in err[0], err
    assert anthropic_emu.requests == []


def test_batch_a_case_whose_request_always_errors_is_listed_with_its_reason_and_sent_again_next_run(
        shop: Path, anthropic_emu, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    monkeypatch.setenv("REVIEWER_AUDIT_SETTLE_SECONDS", "0.2")
    anthropic_emu.batch_processing_seconds = 0.05
    p = _plan(shop)
    catch, noise, strays = choose(p)
    anthropic_emu.responder = Judge(p.cases.cases, catch, noise, strays)
    broken = p.cases.planted[-1]
    anthropic_emu.batch_outcome = lambda custom_id, params: "errored" if custom_id.startswith(broken.id) else None
    out_dir = tmp_path / "out"
    args = ["eval", "run", "--batch", "--repo-dir", str(shop), *ARGS, "--output-dir", str(out_dir), "--timeout", "60"]
    assert main(args) == 0
    doc = _report(out_dir)
    [excluded] = doc["excluded"]
    assert excluded["case"] == broken.id and excluded["status"] == "failed" and excluded["reason"]
    assert doc["summary"]["cases"]["scored_planted"] == len(p.cases.planted) - 1
    # The next run sends only that case again; it answers now.
    anthropic_emu.batch_outcome = None
    before = sum(anthropic_emu.custom_id_submissions.values())
    assert main(args) == 0
    sent = [c for c in anthropic_emu.custom_id_submissions if c.startswith(broken.id)]
    assert sum(anthropic_emu.custom_id_submissions.values()) - before <= 2 and sent
    assert _report(out_dir)["excluded"] == []
    capsys.readouterr()
