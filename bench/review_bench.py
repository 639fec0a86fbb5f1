"""Benchmark: wall time of a 50-file review over its critical path, parse cost, cache share.

Runs the real engine and the real SDK against the Anthropic emulator with a fixed
latency per call, whose response begins (prompt processed, cache written,
`message_start` sent) after `--prefill` x latency. The emulator runs in its own
process, as the real API would: in this one its request handling would compete
with the client for the GIL and the measure would be the emulator's.

It compares the cache policy on and off (`Config.prewarm`): on, the first
per-file call goes alone, streamed, and the others start when its response
begins, so they read the prefix it wrote (anthropic.md §3a); off, all start
together and each pays the write. Printed per configuration: the share of
per-file input tokens billed as cache reads, the review's cost, and the wall
time over the critical path
    (ceil(files / concurrency) + 2) x latency
(per-file waves, then the cross-file and the aggregate call), target <= 1.15;
the lead's wait for its first event (prefill x latency) is part of the
measured overhead. Each configuration runs `--repeat` times and the median is
printed with the range: on a shared 2-core machine one run can be 0.2 s
slower than the next for reasons of its own.

    python bench/review_bench.py [--latency 1.0] [--prefill 0.05] [--files 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviewer import diff, engine, findings  # noqa: E402
from reviewer.config import Config  # noqa: E402
from tests.emulators.anthropic import AnthropicEmulator  # noqa: E402
from tests.model_script import ScriptedModel  # noqa: E402


def make_diff(files: int, lines: int = 30) -> str:
    out = []
    for i in range(files):
        body = "".join(f"+    value_{j} = compute_{i}({j})\n" for j in range(lines))
        out.append(
            f"diff --git a/pkg/mod_{i}.py b/pkg/mod_{i}.py\n--- a/pkg/mod_{i}.py\n+++ b/pkg/mod_{i}.py\n"
            f"@@ -1,2 +1,{lines + 2} @@\n def f_{i}():\n{body}     return None\n"
        )
    return "".join(out)


def model(files: int) -> ScriptedModel:
    return ScriptedModel(per_file={
        f"pkg/mod_{i}.py": {"findings": [{"file": f"pkg/mod_{i}.py", "line": 3, "severity": "warning",
                                          "category": "bug", "issue": f"compute_{i} result is unused"}]}
        for i in range(files)
    })


def _serve(files: int, latency: float, prefill: float, conn: "multiprocessing.connection.Connection") -> None:
    emu = AnthropicEmulator(api_keys=("bench-key",), prefill_factor=prefill)
    emu.latency = latency
    emu.responder = model(files)
    emu.start()
    conn.send(emu.base_url)
    conn.recv()  # the review is done
    conn.send(emu.max_in_flight)
    emu.stop()


def bench_review(files: int, concurrency: int, latency: float, prefill: float, lead: bool = True,
                 repeat: int = 3) -> None:
    runs = sorted((_review_once(files, concurrency, latency, prefill, lead) for _ in range(repeat)),
                  key=lambda r: r[0])
    wall, max_in_flight, read_share, cost, writes = runs[len(runs) // 2]
    critical = (math.ceil(files / concurrency) + 2) * latency
    spread = f" (runs {runs[0][0] / critical:.3f}-{runs[-1][0] / critical:.3f})" if repeat > 1 else ""
    print(f"review {files} files @ concurrency {concurrency:>2}, cache lead {'on ' if lead else 'off'}: "
          f"wall {wall:6.2f} s, critical path {critical:5.2f} s, median ratio {wall / critical:.3f}{spread} "
          f"(target <= 1.15); max in flight {max_in_flight}; per-file input billed as cache reads {read_share:.1%} "
          f"({writes} per-file cache writes); cost ${cost:.4f}")


def _review_once(files: int, concurrency: int, latency: float, prefill: float,
                 lead: bool) -> tuple[float, int, float, float, int]:
    import os

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(files, latency, prefill, child),
                                                         daemon=True)
    server.start()
    os.environ["ANTHROPIC_BASE_URL"] = parent.recv()
    os.environ["ANTHROPIC_API_KEY"] = "bench-key"
    parsed = diff.parse(make_diff(files))
    config = Config(max_concurrency=concurrency, prewarm=lead)
    started = time.perf_counter()
    result = engine.review(parsed, config)
    wall = time.perf_counter() - started
    parent.send("done")
    max_in_flight = parent.recv()
    server.join()
    per_file = [c for c in result.calls if c.pass_name == "per_file"]
    total_in = sum(c.usage.total_input for c in per_file)
    read = sum(c.usage.cache_read_input_tokens for c in per_file)
    writes = sum(1 for c in per_file if c.usage.cache_creation_input_tokens)
    assert len(result.reviewed) == files and not result.failed, result.failed
    assert not any(c.pass_name == "prewarm" for c in result.calls)
    return wall, max_in_flight, read / total_in, sum(c.cost_usd or 0 for c in result.calls), writes


def bench_parse(files: int) -> None:
    text = make_diff(files, lines=40)
    started = time.process_time()
    parsed = diff.parse(text)
    anchored = 0
    for f in parsed.files:
        for line in (3, 20, 999):
            result = findings.anchor({"file": f.path, "line": line, "severity": "info", "issue": "x y z"}, parsed, "per_file")
            anchored += result.finding is not None
    cpu = time.process_time() - started
    print(f"parse + anchor a {files}-file diff ({len(text) / 1e6:.1f} MB, {anchored} findings): "
          f"CPU {cpu:.2f} s (target < 2 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--prefill", type=float, default=0.05, help="time to the first event, share of latency")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for concurrency in (8, 64):
        bench_review(args.files, concurrency, args.latency, args.prefill, repeat=args.repeat)
    # The same reviews without the cache lead: calls started together all pay the cache write.
    for concurrency in (8, 64):
        bench_review(args.files, concurrency, args.latency, args.prefill, lead=False, repeat=args.repeat)
    bench_parse(500)


if __name__ == "__main__":
    main()
