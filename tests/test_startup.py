"""Commands that send nothing never import the anthropic SDK (about a second of start-up).

Each command runs in a fresh interpreter; afterwards `anthropic.types`, which
the SDK's import always loads, must not be in `sys.modules`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from reviewer.cli import main
code = main(sys.argv[1:])
print("SDK-IMPORTED" if "anthropic.types" in sys.modules else "SDK-NOT-IMPORTED", code)
"""


@pytest.mark.parametrize("args", [
    ["--help"],
    ["schema", "finding"],
    ["review", "--base", "HEAD~1", "--dry-run"],
    ["review", "--base", "HEAD~1", "--dry-run", "--format", "json"],
    ["audit", "plan"],
    ["audit", "status"],
    ["audit", "list"],
])
def test_commands_that_send_nothing_do_not_import_the_sdk(repo: Path, args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=repo, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(repo), "PYTHONPATH": str(Path(__file__).parent.parent)})
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("SDK-NOT-IMPORTED"), (args, done.stdout[-500:], done.stderr[-500:])


def test_importing_the_sdk_in_the_background_leaves_the_collector_on_and_its_objects_frozen() -> None:
    # The import runs with the collector paused (its objects are no garbage); once it is ready,
    # what exists is frozen so the review's full collections do not walk the SDK again.
    probe = ("import gc; from reviewer import lazy; lazy.warm('anthropic'); lazy.ready('anthropic'); "
             "import anthropic; print(gc.isenabled(), gc.get_freeze_count() > 100_000, anthropic.AsyncAnthropic.__name__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert done.stdout.split() == ["True", "True", "AsyncAnthropic"], done.stderr[-500:]
