"""Benchmark of `reviewer eval`: planning time and memory, and a run's wall time over its critical path.

1. plan: `reviewer eval plan` (the cases, then each case's review plan and
   estimate; nothing is sent) on a clone of this repository's HEAD and on an
   installed package's source (jsonschema from this venv, copied into a fresh
   git repository), at the default 40 planted + 10 controls and at 200 + 50.
   Each measure runs in a child process, so its peak RSS is the plan's alone;
   printed: the median seconds of `--repeat` runs (the range beside it) and the
   peak RSS (with the interpreter and imports alone).
2. run: `reviewer eval run` over `--planted` + `--controls` cases of the clone
   against the Anthropic emulator, which runs in its own process (as the real
   API would: in this one its request handling would compete with the client
   for the GIL) with a fixed latency per call and a scripted model that finds
   nothing. Printed: the wall time of the command, the span of the model calls
   (first request to last answer, from the emulator's recorded timings), the
   calls per pass, and both over the critical path

       ceil(cases / cases_at_once) x calls_per_case x latency

   A case is a one-file diff, so its calls (the per-file call, then each later
   pass it reaches) depend on one another and none run side by side:
   `--max-concurrency` does not shorten a case, and a case's chain is its calls
   x latency. `calls_per_case` is the largest number of passes a case makes, read
   from the emulator's calls per pass (each pass is at most one call per case
   when the model calls no tool, and this one never does); cases run
   `--cases-at-once` at a time, so the slowest case of each wave sets it.
3. batch: the same cases through `--batch` (the emulator ends a batch
   `--batch-seconds` after it is created): wall time, requests and batches
   sent, with the first poll after 10 s (the default of
   REVIEWER_AUDIT_POLL_SECONDS, which then sets the wall time) and after 1 s.

It prints figures and asserts nothing about speed.

    python bench/eval_bench.py [--repeat 3] [--latency 0.5] [--planted 24] [--controls 6]
                               [--cases-at-once 4] [--max-concurrency 8] [--batch-seconds 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args], cwd=root,
                   check=True, capture_output=True)


def clone_head(dest: Path) -> Path:
    """This repository at HEAD (the checkout may hold others' uncommitted work)."""
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(dest)], check=True)
    return dest


def package_repo(dest: Path, package: str) -> Path:
    """An installed package's source, committed to a fresh repository under `src/`."""
    module = __import__(package)
    shutil.copytree(Path(str(module.__file__)).parent, dest / "src" / package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", package)
    return dest


def _quiet_cli(argv: list[str]) -> int:
    from reviewer.cli import main as cli

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli(argv)


# ---------------------------------------------------------------------------- children

def child_plan(repo: str, planted: str, controls: str, state: str) -> None:
    import reviewer.cli  # noqa: F401  (imports are the baseline, not the plan)

    base = peak_mb()
    started = time.perf_counter()
    code = _quiet_cli(["eval", "plan", "--repo-dir", repo, "--state-dir", state, "--planted", planted,
                       "--controls", controls, "--format", "json"])
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"eval plan exited {code}")
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "baseline_mb": base}))


def child_emulator(latency: str, batch_seconds: str) -> None:
    """The Anthropic emulator; one line on stdin asks for the counters since the last ask (then reset)."""
    from tests.emulators.anthropic import AnthropicEmulator
    from tests.model_script import ScriptedModel, pass_of

    emu = AnthropicEmulator(api_keys=("bench-key",), prefill_factor=0.05,
                            batch_processing_seconds=float(batch_seconds)).start()

    def configure() -> None:
        emu.latency = float(latency)
        emu.responder = ScriptedModel()

    configure()
    print(emu.base_url, flush=True)
    for _line in sys.stdin:
        messages = emu.message_requests()
        passes = Counter(pass_of(r.body or {}) for r in messages)
        spans = [(r.started, r.finished) for r in messages]
        print(json.dumps({
            "messages": len(messages), "passes": dict(passes), "max_in_flight": emu.max_in_flight,
            "first": min((s for s, _ in spans), default=0.0), "last": max((f for _, f in spans), default=0.0),
            "batches": len(emu.batches), "batch_requests": sum(emu.custom_id_submissions.values()),
        }), flush=True)
        emu.reset()
        configure()
    emu.stop()


def run_child(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- measures

def bench_plan(name: str, repo: Path, tmp: Path, repeat: int) -> None:
    for planted, controls in ((40, 10), (200, 50)):
        runs = [run_child("_plan", str(repo), str(planted), str(controls), str(tmp / f"plan-state-{name}"))
                for _ in range(repeat)]
        seconds = sorted(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        spread = f" (runs {seconds[0]:.2f}-{seconds[-1]:.2f})" if repeat > 1 else ""
        print(f"plan  {name:<28} {planted:>3}+{controls:<3}: {statistics.median(seconds):5.2f} s{spread}, "
              f"peak RSS {peak:.0f} MB (interpreter and imports {runs[0]['baseline_mb']:.0f} MB)")


class Emulator:
    def __init__(self, latency: float, batch_seconds: float) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "_emulator", str(latency), str(batch_seconds)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.base_url = self.proc.stdout.readline().strip()

    def counters(self) -> dict[str, Any]:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _eval_run(repo: Path, tmp: Path, tag: str, args: argparse.Namespace, *extra: str) -> float:
    argv = ["eval", "run", "--repo-dir", str(repo), "--state-dir", str(tmp / f"state-{tag}"),
            "--output-dir", str(tmp / f"out-{tag}"), "--planted", str(args.planted), "--controls",
            str(args.controls), "--cases-at-once", str(args.cases_at_once), "--max-concurrency",
            str(args.max_concurrency), *extra]
    started = time.perf_counter()
    code = _quiet_cli(argv)
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"eval run {' '.join(extra)} exited {code}")
    doc = json.loads((tmp / f"out-{tag}" / "eval.json").read_text())
    failed = [c for c in doc.get("cases", []) if c.get("status") != "done"]
    if failed:
        raise SystemExit(f"eval run {tag}: {len(failed)} case(s) not done: {failed[0].get('error')}")
    return wall


def bench_run(repo: Path, tmp: Path, args: argparse.Namespace) -> None:
    emu = Emulator(args.latency, args.batch_seconds)
    os.environ.update({"ANTHROPIC_BASE_URL": emu.base_url, "ANTHROPIC_API_KEY": "bench-key"})
    os.environ.pop("ANTHROPIC_AUTH_TOKEN", None)
    try:
        emu.counters()  # a clean start
        cases = args.planted + args.controls
        rows = []
        for i in range(args.repeat):
            wall = _eval_run(repo, tmp, f"sync-{i}", args)
            rows.append((wall, emu.counters()))
        rows.sort(key=lambda r: r[0])
        wall, c = rows[len(rows) // 2]
        per_case = max(c["passes"].values(), default=0) and len(c["passes"])
        uniform = all(n == cases for n in c["passes"].values())
        critical = math.ceil(cases / args.cases_at_once) * per_case * args.latency
        span = c["last"] - c["first"]
        spread = f" (runs {rows[0][0] / critical:.2f}-{rows[-1][0] / critical:.2f})" if len(rows) > 1 else ""
        print(f"run   {cases} cases, --cases-at-once {args.cases_at_once}, --max-concurrency {args.max_concurrency}, "
              f"latency {args.latency:g} s: {c['messages']} calls {c['passes']}"
              f"{'' if uniform else ' (not one per case in every pass: the slowest case counted)'}; "
              f"max in flight {c['max_in_flight']}")
        print(f"run   critical path ceil({cases}/{args.cases_at_once}) x {per_case} x {args.latency:g} s = "
              f"{critical:.2f} s; wall {wall:.2f} s, median ratio {wall / critical:.2f}{spread}; "
              f"model calls span {span:.2f} s ({span / critical:.2f}), the rest before the first call "
              f"and after the last ({wall - span:.2f} s)")

        # The first poll of a batch waits REVIEWER_AUDIT_POLL_SECONDS (10 s by default), which
        # sets the wall time of a batch that ends sooner; 1 s shows what the rest costs.
        for poll in ("10", "1"):
            os.environ["REVIEWER_AUDIT_POLL_SECONDS"] = poll
            rows = []
            for i in range(args.repeat):
                wall = _eval_run(repo, tmp, f"batch-{poll}-{i}", args, "--batch")
                rows.append((wall, emu.counters()))
            rows.sort(key=lambda r: r[0])
            wall, c = rows[len(rows) // 2]
            spread = f" (runs {rows[0][0]:.2f}-{rows[-1][0]:.2f})" if len(rows) > 1 else ""
            print(f"batch {cases} cases, a batch ends {args.batch_seconds:g} s after its creation, first poll after "
                  f"{poll} s: wall {wall:.2f} s{spread}; {c['batch_requests']} requests in {c['batches']} "
                  f"batch(es), {c['messages']} canary call(s) sent before them")
        os.environ.pop("REVIEWER_AUDIT_POLL_SECONDS", None)
    finally:
        emu.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--package", default="jsonschema", help="an installed package whose source is planned")
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--batch-seconds", type=float, default=1.0)
    parser.add_argument("--planted", type=int, default=24)
    parser.add_argument("--controls", type=int, default=6)
    parser.add_argument("--cases-at-once", type=int, default=4)
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--skip-run", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        this = clone_head(tmp / "this")
        head = subprocess.run(["git", "-C", str(this), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        if not args.skip_plan:
            package = package_repo(tmp / args.package, args.package)
            try:
                version = importlib.metadata.version(args.package)
            except importlib.metadata.PackageNotFoundError:
                version = ""
            bench_plan(f"this repository ({head})", this, tmp, args.repeat)
            bench_plan(f"{args.package} {version}".strip(), package, tmp, args.repeat)
        if not args.skip_run:
            bench_run(this, tmp, args)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        command, rest = sys.argv[1], sys.argv[2:]
        {"_plan": lambda: child_plan(*rest), "_emulator": lambda: child_emulator(*rest)}[command]()
    else:
        main()
