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
