"""Benchmark: wall time of a 50-file review over its critical path, parse cost, cache share.

Runs the real engine and the real SDK against the Anthropic emulator with a fixed
latency per call. The critical path of a review is
    (ceil(files / concurrency) + 2) x latency
(per-file waves, then the cross-file and the aggregate call); the ratio printed
is measured wall time over that, target <= 1.15.

    python bench/review_bench.py [--latency 1.0] [--files 50]
"""

from __future__ import annotations

import argparse
import math
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


def bench_review(emu: AnthropicEmulator, files: int, concurrency: int, latency: float, prewarm: bool = True) -> None:
    import os

    emu.reset()
    emu.latency = latency
    emu.responder = model(files)
    os.environ["ANTHROPIC_BASE_URL"] = emu.base_url
    os.environ["ANTHROPIC_API_KEY"] = "bench-key"
    parsed = diff.parse(make_diff(files))
    config = Config(max_concurrency=concurrency, prewarm=prewarm)
    started = time.perf_counter()
    result = engine.review(parsed, config)
    wall = time.perf_counter() - started
    critical = (math.ceil(files / concurrency) + 2) * latency
    per_file = [c for c in result.calls if c.pass_name == "per_file"]
    total_in = sum(c.usage.total_input for c in per_file)
    read = sum(c.usage.cache_read_input_tokens for c in per_file)
    assert len(result.reviewed) == files and not result.failed, result.failed
    cost = sum(c.cost_usd or 0 for c in result.calls)
    print(f"review {files} files @ concurrency {concurrency:>2}, pre-warm {'on ' if prewarm else 'off'}: "
          f"wall {wall:6.2f} s, critical path {critical:5.2f} s, ratio {wall / critical:.3f} (target <= 1.15); "
          f"max in flight {emu.max_in_flight}; per-file input billed as cache reads {read / total_in:.1%}; "
          f"cost ${cost:.4f}")


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
    parser.add_argument("--files", type=int, default=50)
    args = parser.parse_args()
    emu = AnthropicEmulator(api_keys=("bench-key",))
    emu.start()
    try:
        for concurrency in (8, 64):
            bench_review(emu, args.files, concurrency, args.latency)
        # The same reviews without the pre-warm: calls started together all pay the cache write.
        for concurrency in (8, 64):
            bench_review(emu, args.files, concurrency, args.latency, prewarm=False)
    finally:
        emu.stop()
    bench_parse(500)


if __name__ == "__main__":
    main()
