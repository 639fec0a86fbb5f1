"""Benchmark of the nightly audit: planning a large repository, collecting a large batch.

1. plan: a synthetic git repository of 10,000 files (about 34 MB of source,
   some files large enough to be cut into parts) is planned as `reviewer audit
   plan` does (walk, read, skip checks, chunking, hashing, custom_ids,
   estimate). Prints wall time and the process's peak RSS.
   Target: under 5 s and 150 MB on 2 cores.
2. submit: `reviewer audit run` (no canary, no wait) sends that plan to the
   Anthropic emulator (its own process) in batches of at most
   `--max-batch-bytes` (the default, 32 MiB, then the API's limit for
   comparison); prints the submitting process's peak RSS.
   Target: under 400 MB at the default.
3. collect: the Anthropic emulator (its own process) holds an ended batch of
   N results; a fresh process streams them with the real collector (SDK
   `batches.results()`, schema check, anchoring, one state row per result)
   and prints its peak RSS, for N = 10,000 and 100,000.
   Target: under 250 MB and flat as N grows.

4. context (`--context REPO`, alone): the definitions blocks (issue 12, item 7)
   over a real repository at HEAD (a temp clone, so only committed files):
   the share of parts that get a block, the input tokens they add in all and
   per part, the planning time, and the estimated cost with and without them
   at batch prices, at the default `audit_context_tokens`.

Each measurement runs in a child process, so the peak RSS is that phase's alone.

    python bench/audit_bench.py [--files 10000] [--results 10000 100000]
    python bench/audit_bench.py --context .      # this repository's own tree at HEAD
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_repo(root: Path, files: int) -> int:
    """About 3.4 KB per file on average, every 500th file ~230 KB (cut into parts); returns the bytes written."""
    root.mkdir(parents=True)
    total = 0
    for i in range(files):
        lines = 3000 if i % 500 == 0 else 20 + i % 38
        body = [f'"""Module {i}: synthetic source for the audit benchmark."""\n', "\n"]
        for j in range(lines):
            if j % 12 == 0:
                body.append(f"\n\ndef function_{i}_{j}(values, factor={j}):\n")
            body.append(f"    result_{j} = [v * factor + {i % 97} for v in values if v % {j % 7 + 2}]  # step {j}\n")
        text = "".join(body)
        path = root / f"pkg{i % 50}" / f"mod_{i}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        total += len(text)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=b@e", "-c", "user.name=b", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    return total


def child_plan(repo: str) -> None:
    from reviewer.audit import plan
    from reviewer.config import Config

    base = peak_mb()
    started = time.perf_counter()
    p = plan.build(Path(repo), Config())
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "baseline_mb": base, "files": len(p.files),
                      "chunks": len(p.chunks), "requests": len(p.requests), "cost": p.estimate.cost_usd}))


def child_run(repo: str, state: str, max_bytes: str) -> None:
    import contextlib
    import io

    from reviewer.cli import main as cli

    base = peak_mb()
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = cli(["audit", "run", "--repo-dir", repo, "--state", state, "--canary", "0",
                    "--max-batch-bytes", max_bytes])
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"audit run exited {code}: {out.getvalue()}")
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "baseline_mb": base}))


def child_emulator() -> None:
    from tests.emulators.anthropic import AnthropicEmulator

    emu = AnthropicEmulator(api_keys=("bench-key",), batch_processing_seconds=0.0).start()
    calls = {"n": 0}

    def responder(body: dict) -> dict:
        calls["n"] += 1
        text = body["messages"][-1]["content"]
        if calls["n"] % 10:
            return {"findings": []}
        return {"findings": [{"file": "mod.py", "line": 1, "severity": "info", "category": "naming",
                              "issue": f"finding for {text[:20]}", "confidence": 0.5}]}

    emu.responder = responder
    print(emu.base_url, flush=True)
    sys.stdin.read()  # until the parent closes it
    emu.stop()


def _setup_state(state: Path, n: int) -> tuple[int, int]:
    """A run with `n` small requests in one batch row (the state the submitter leaves)."""
    from reviewer.audit.plan import Context
    from reviewer.audit.state import Store, pack
    from reviewer.config import Config

    context = Context.build(Config())
    with Store(state) as store:
        fields = {"status": "active", "repo_dir": ".", "tree_key": "bench", "model": context.model,
                  "prompt_version": context.prompt_version, "context_digest": context.digest,
                  "system_json": list(context.prefix.blocks), "max_tokens": 1024, "canary": 0,
                  "canary_passed": 1, "max_attempts": 3, "max_findings": 25, "files": n, "skipped": 0,
                  "chunks": n, "carried": 0, "deduplicated": 0}
        text = pack("x = 1")
        run_id = store.insert_run(fields, [], (("mod.py", i + 1, i + 1, f"k{i}") for i in range(n)), (
            {"base_id": f"r{i}", "custom_id": f"r{i}", "key": f"k{i}", "path": "mod.py", "start_line": 1,
             "end_line": 1, "total_lines": 1, "tokens": 10, "state": "submitted", "text": text} for i in range(n)))
        with store.transaction() as db:
            cur = db.execute("INSERT INTO batches (run_id, state, request_count, bytes, intent_at) "
                             "VALUES (?, 'ended', ?, 0, '2026-01-01T00:00:00Z')", (run_id, n))
            batch_id = int(cur.lastrowid or 0)
            db.execute("UPDATE requests SET batch_id = ? WHERE run_id = ?", (batch_id, run_id))
    return run_id, batch_id


def child_submit(state: str, n: int) -> None:
    """Create the batch in the emulator and wait for it to end; record its id in the state."""
    import anthropic

    from reviewer.audit.state import Store

    run_id, batch_id = _setup_state(Path(state), n)
    sdk = anthropic.Anthropic(timeout=600)
    created = sdk.messages.batches.create(requests=[
        {"custom_id": f"r{i}", "params": {"model": "claude-haiku-5-5", "max_tokens": 256,
                                          "messages": [{"role": "user", "content": f"request {i}"}]}}
        for i in range(n)])
    while sdk.messages.batches.retrieve(created.id).processing_status != "ended":
        time.sleep(0.2)
    with Store(Path(state)) as store, store.transaction():
        store.set_batch(batch_id, api_id=created.id)
    print(json.dumps({"run": run_id, "batch": batch_id}))


def child_collect(state: str, run_id: int, batch_id: int) -> None:
    import anthropic

    from reviewer.audit import Progress, collect
    from reviewer.audit.state import Store

    base = peak_mb()
    sdk = anthropic.Anthropic(timeout=600)
    with Store(Path(state)) as store:
        run = store.run(run_id)
        started = time.perf_counter()
        handled = collect.collect_batch(store, run, sdk, batch_id, Progress())
        seconds = time.perf_counter() - started
        counts = store.state_counts(run_id)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb(), "baseline_mb": base, "handled": handled,
                      "counts": counts}))


def context_cost(repo: str) -> None:
    """Plan a temp clone of `repo` at HEAD with and without definitions blocks; print what they add."""
    from reviewer import pricing
    from reviewer.audit import plan
    from reviewer.config import Config
    from reviewer.models import Usage

    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(Path(repo).resolve()), str(clone)], check=True)
        config = Config()
        timed = {}
        plans = {}
        for budget in (0, config.audit_context_tokens):
            started = time.perf_counter()
            plans[budget] = plan.build(clone, Config(audit_context_tokens=budget), canary=0)
            timed[budget] = time.perf_counter() - started
        off, on = plans[0], plans[config.audit_context_tokens]
        head = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    py = [c for c in on.chunks if c.path.endswith(".py")]
    blocks = [plan.context_tokens(c.context) for c in on.chunks if c.context]
    added = sum(blocks)
    base_in = off.estimate.usage.input_tokens + off.estimate.usage.cache_read_input_tokens + \
        off.estimate.usage.cache_creation_input_tokens
    model = on.model
    added_usd = pricing.cost(model, Usage(added, 0), batch=True)
    print(f"context  {repo} at {head}: {len(on.files)} files, {len(on.chunks)} parts ({len(py)} of Python files); "
          f"budget {config.audit_context_tokens:,} tokens, model {model}")
    print(f"context  parts with a block: {len(blocks)} of {len(on.chunks)} ({len(blocks) / max(1, len(on.chunks)):.0%}; "
          f"{len(blocks) / max(1, len(py)):.0%} of the Python parts)")
    print(f"context  added input: {added:,} tokens in all; {added / max(1, len(blocks)):,.0f} per part with a block "
          f"(max {max(blocks, default=0):,}), {added / max(1, len(on.chunks)):,.0f} per part overall; "
          f"+{added / max(1, base_in):.1%} of the audit's input tokens ({base_in:,})")
    print(f"context  estimated cost (canary 0, batch prices, {plan.ESTIMATED_OUTPUT_TOKENS} output tokens a part "
          f"assumed): {pricing.usd(off.estimate.cost_usd)} without, {pricing.usd(on.estimate.cost_usd)} with "
          f"(+{pricing.usd(added_usd)} for the blocks' input)")
    print(f"context  planning time: {timed[0]:.2f} s without, {timed[config.audit_context_tokens]:.2f} s with "
          "(every Python file parsed, imported modules parsed once)")


def run_child(*args: str, env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--results", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--context", metavar="REPO", help="only measure the definitions blocks over REPO at HEAD")
    args = parser.parse_args()
    if args.context:
        context_cost(args.context)
        return
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        size = make_repo(repo, args.files)
        r = run_child("_plan", str(repo))
        ok = r["seconds"] < 5 and r["peak_mb"] < 150
        print(f"plan     {r['files']:,} files, {size / 1e6:.1f} MB -> {r['chunks']:,} parts, {r['requests']:,} requests: "
              f"{r['seconds']:.2f} s, peak RSS {r['peak_mb']:.0f} MB (interpreter and imports {r['baseline_mb']:.0f} MB)"
              f"  [target < 5 s, < 150 MB: {'ok' if ok else 'MISSED'}]")

        emulator = subprocess.Popen([sys.executable, __file__, "_emulator"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        try:
            base_url = emulator.stdout.readline().strip()  # type: ignore[union-attr]
            env = {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "bench-key"}
            # The default batch size, then the API's limit for comparison.
            for max_bytes in (32 * 1024 * 1024, 262_144_000):
                r = run_child("_run", str(repo), str(Path(tmp) / f"submit-{max_bytes}.db"), str(max_bytes), env=env)
                verdict = (f"  [target < 400 MB: {'ok' if r['peak_mb'] < 400 else 'MISSED'}]"
                           if max_bytes == 32 * 1024 * 1024 else "  (for comparison)")
                print(f"submit   the plan above, batches of <= {max_bytes / 2**20:.0f} MiB: {r['seconds']:.1f} s, peak RSS "
                      f"{r['peak_mb']:.0f} MB (interpreter and imports {r['baseline_mb']:.0f} MB){verdict}")
            peaks = []
            for n in args.results:
                state = str(Path(tmp) / f"state-{n}.db")
                ids = run_child("_submit", state, str(n), env=env)
                r = run_child("_collect", state, str(ids["run"]), str(ids["batch"]), env=env)
                peaks.append(r["peak_mb"])
                print(f"collect  {n:>7,} results: {r['seconds']:.1f} s ({n / r['seconds']:,.0f}/s), peak RSS "
                      f"{r['peak_mb']:.0f} MB (interpreter and imports {r['baseline_mb']:.0f} MB); {r['counts']}")
            if not peaks:
                return
            flat = max(peaks) < 250 and (len(peaks) < 2 or peaks[-1] - peaks[0] < 25)
            print(f"collect  peak RSS {' -> '.join(f'{p:.0f}' for p in peaks)} MB  "
                  f"[target < 250 MB and flat: {'ok' if flat else 'MISSED'}]")
        finally:
            emulator.stdin.close()  # type: ignore[union-attr]
            emulator.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        command, rest = sys.argv[1], sys.argv[2:]
        {"_plan": lambda: child_plan(*rest), "_emulator": child_emulator, "_run": lambda: child_run(*rest),
         "_submit": lambda: child_submit(rest[0], int(rest[1])),
         "_collect": lambda: child_collect(rest[0], int(rest[1]), int(rest[2]))}[command]()
    else:
        main()
