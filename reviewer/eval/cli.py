"""`reviewer eval ...`: read the options, call `runner`, print, return the exit code.

Exit codes: 0 done (also a run stopped by --timeout: what is done is reported,
marked incomplete, and the same command finishes it); 1 the estimate is above
--max-cost (nothing is sent); 2 usage or configuration; 3 the API failed;
130, 143 SIGINT, SIGTERM (every case finished is kept: the same command goes on).
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import config as config_mod
from .. import lazy
from .. import progress as progress_mod
from ..audit.cli import FiniteFloatRange
from ..audit.plan import private_dir
from ..client import require_credentials
from ..errors import EXIT_FINDINGS, EXIT_OK, UsageError, exit_for_signal
from ..pricing import usd
from ..publish import actions
from ..redact import redact, redact_document
from . import runner
from .models import CONTROL_KINDS, PLANTED_KINDS

FORMATS = ("text", "json", "markdown")


# One click type for every number flag: refuses nan and inf (issue 11, item 8).
_FiniteFloat = FiniteFloatRange


def _cases(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--repo-dir", default=".", show_default=True,
                     type=click.Path(file_okay=False, exists=True, path_type=Path), help="The git repository."),
        click.option("--rev", default="HEAD", show_default=True, help="The commit the cases are planted in."),
        click.option("--seed", type=click.IntRange(0), default=1, show_default=True,
                     help="Which cases: the same seed and commit give the same cases."),
        click.option("--planted", type=click.IntRange(0, 2000), default=runner.DEFAULT_PLANTED, show_default=True,
                     help="Planted defects to make."),
        click.option("--controls", type=click.IntRange(0, 2000), default=runner.DEFAULT_CONTROLS, show_default=True,
                     help="Behaviour-preserving changes to make (findings on them are noise)."),
        click.option("--kind", "kinds", multiple=True, type=click.Choice(PLANTED_KINDS + CONTROL_KINDS),
                     help="Only these kinds (repeatable) [default: all]."),
        click.option("--include", multiple=True, metavar="GLOB", help="Plant only in files matching a glob (repeatable)."),
        click.option("--exclude", multiple=True, metavar="GLOB", help="Never plant in files matching a glob (repeatable)."),
        click.option("--include-tests", is_flag=True,
                     help="Plant in test code too (tests/, test_*.py, *_test.go, *.spec.ts, ...); left out by default."),
        click.option("--config", "config_path", metavar="PATH",
                     help="Configuration file (default: .reviewer.toml or [tool.reviewer] in pyproject.toml)."),
        click.option("--model", help="Model for every pass (overrides the configuration)."),
        click.option("--batch", is_flag=True,
                     help="The per-file pass of every case through the Message Batches API (half price; no tools)."),
        click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Scratch repository and outcomes [default: REPO_DIR/.reviewer/eval]."),
    ]):
        fn = decorator(fn)
    return fn


def _settings(repo_dir: Path, config_path: str | None, model: str | None, **kw: Any) -> runner.Settings:
    cfg = config_mod.load(Path(config_path) if config_path else None, repo_dir)
    if model:
        cfg = cfg.with_overrides(model=model, models={})
    overrides = {k: kw.pop(k) for k in ("max_concurrency",) if k in kw}
    cfg = cfg.with_overrides(**overrides)
    for key in ("kinds", "include", "exclude"):
        kw[key] = tuple(kw.get(key) or ())
    return runner.Settings(repo_dir=repo_dir, config=cfg, **kw)


def _progress() -> progress_mod.Progress:
    return progress_mod.for_stderr("reviewer eval")


@click.group("eval")
def eval_group() -> None:
    """Plant known defects in this repository and measure what the review catches and says in vain."""


@eval_group.command("plan")
@_cases
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def plan_command(fmt: str, **kw: Any) -> int:
    """Print the cases, their kinds and files, and the estimated cost; sends nothing."""
    p = runner.plan(_settings(**kw))
    click.echo(render_plan_json(p) if fmt == "json" else render_plan_text(p))
    return EXIT_OK


@eval_group.command("run")
@_cases
@click.option("--dry-run", is_flag=True, help="Send nothing: print the plan and its cost (as `eval plan`).")
@click.option("--max-cost", type=_FiniteFloat(0), metavar="USD", help="Refuse (exit 1) when the estimate is above this.")
@click.option("--min-severity", type=click.Choice(("critical", "warning", "info")), default="warning",
              show_default=True, help="Findings below this severity neither catch a plant nor count as noise.")
@click.option("--max-concurrency", type=click.IntRange(1, 256), help="Calls in flight per case [default: 8].")
@click.option("--cases-at-once", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Cases reviewed at the same time.")
@click.option("--timeout", type=_FiniteFloat(0, min_open=True), metavar="SECONDS",
              help="Deadline of the whole run; what is done is reported and the same command finishes it.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where eval.json and eval.md go [default: REPO_DIR/.reviewer/eval].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="What is printed on stdout.")
def run_command(dry_run: bool, min_severity: str, output_dir: Path | None, fmt: str, **kw: Any) -> int:
    """Review every case with the real pipeline and score the review (resumable)."""
    s = _settings(min_severity=min_severity, **kw)
    if dry_run:
        p = runner.plan(s)
        click.echo(render_plan_json(p) if fmt == "json" else render_plan_text(p))
        refusal = runner.over_budget(p, s.max_cost)
        return _refused(refusal) if refusal else EXIT_OK
    # The SDK's import (a second or more) overlaps planning the cases, whose git calls let it run.
    lazy.warm("anthropic")
    stopping = threading.Event()
    caught: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        caught.append(signum)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = runner.run(s, _progress(), stopping=stopping, require_credentials=require_credentials)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if outcome.status == "refused":
        click.echo(render_plan_text(outcome.plan), err=True)
        return _refused(outcome.message)
    from . import report as report_mod

    scored = runner.scored(outcome, s)
    out_dir = output_dir or s.home
    written = _write(scored, out_dir)
    click.echo(redact_document(_render(scored, fmt)))
    if actions.in_actions():
        actions.write_step_summary(redact(report_mod.render_markdown(scored)), str(written[-1]) if written else None)
        actions.write_outputs(runner.outputs(scored, written))
    click.echo(f"reviewer eval: {outcome.status}: {outcome.message}; reports: "
               + ", ".join(str(w) for w in written), err=True)
    if caught:
        return exit_for_signal(caught[0])
    return EXIT_OK


@eval_group.command("report")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def report_command(path: Path, fmt: str) -> int:
    """Print a saved run (eval.json) as text, JSON or Markdown."""
    from . import report as report_mod

    click.echo(redact_document(_render(report_mod.load(path), fmt)))
    return EXIT_OK


@eval_group.command("compare")
@click.argument("first", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("second", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def compare_command(first: Path, second: Path, fmt: str) -> int:
    """Two runs on the same cases side by side: each difference, and whether it is outside the noise."""
    from . import report as report_mod

    comparison = report_mod.compare(report_mod.load(first), report_mod.load(second))
    render = {"json": report_mod.render_compare_json, "markdown": report_mod.render_compare_markdown}.get(
        fmt, report_mod.render_compare_text)
    text = redact_document(render(comparison))
    click.echo(text)
    if actions.in_actions() and fmt != "markdown":
        actions.write_step_summary(redact(report_mod.render_compare_markdown(comparison)), None)
    return EXIT_OK


def _render(scored: Any, fmt: str) -> str:
    from . import report as report_mod

    return {"json": report_mod.render_json, "markdown": report_mod.render_markdown}.get(
        fmt, report_mod.render_text)(scored)


def _write(scored: Any, out_dir: Path) -> tuple[Path, ...]:
    from . import report as report_mod

    private_dir(out_dir)
    written = []
    for name, render in (("eval.json", report_mod.render_json), ("eval.md", report_mod.render_markdown)):
        path = out_dir / name
        text = redact_document(render(scored))
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
        written.append(path)
    return tuple(written)


def _refused(reason: str) -> int:
    click.echo(f"reviewer eval: refused: {reason}; nothing was sent", err=True)
    return EXIT_FINDINGS


# ---------------------------------------------------------------------- plan rendering


def render_plan_text(p: runner.EvalPlan) -> str:
    cases = p.cases
    planted, controls = cases.planted, cases.controls
    lines = [f"eval plan at {cases.commit[:12]} (seed {cases.seed}): {len(planted)} planted, "
             f"{len(controls)} control case(s); run {p.key}"]
    kinds = Counter(c.kind for c in cases.cases)
    lines.append("kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) if kinds else "kinds: none")
    covered = [lang for lang in cases.languages if lang.covered]
    uncovered = [lang for lang in cases.languages if not lang.covered]
    if covered:
        lines.append("languages covered: " + ", ".join(
            f"{lang.language} ({lang.files} file(s), {lang.parser})" for lang in covered))
    if uncovered:
        lines.append("languages not covered (no case is made in them): " + ", ".join(
            f"{lang.language} ({lang.files} file(s))" for lang in uncovered))
    lines.append("")
    for c in cases.cases:
        mark = "plant  " if c.planted else "control"
        done = "  (done)" if c.id in p.done else ""
        lines.append(f"  {mark} {c.kind:<20} {c.path}:{c.start}-{c.end}  {c.description}{done}")
    lines.append("")
    calls = p.calls
    lines.append(f"estimated cost: {usd(p.cost_usd, approx=True)} for {calls} call(s)"
                 + (f" ({len(p.done)} case(s) already done are not sent again)" if p.done else ""))
    for note in p.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def render_plan_json(p: runner.EvalPlan) -> str:
    doc = {
        "commit": p.cases.commit, "seed": p.cases.seed, "run": p.key,
        "cases": [{**{k: v for k, v in c.to_dict().items() if k != "diff"}, "done": c.id in p.done}
                  for c in p.cases.cases],
        "languages": [{"language": lang.language, "files": lang.files, "covered": lang.covered,
                       "parser": lang.parser} for lang in p.cases.languages],
        "estimate": {"calls": p.calls, "cost_usd": p.cost_usd},
        "notes": list(p.notes),
    }
    return redact_document(json.dumps(doc, indent=2))


