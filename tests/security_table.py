"""The README's security table, rendered from the adversarial suite's cases.

    python -m tests.security_table --write   # rewrite the table in README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- security-table:start -->", "<!-- security-table:end -->"


def render(cases: list[dict[str, str]]) -> str:
    rows = ["| area | hostile input or fault | what reviewer does (asserted by the test) | test |", "|---|---|---|---|"]
    for c in cases:
        rows.append(f"| {c['area']} | {c['attack']} | {c['behaviour']} | `{c['test']}` |")
    return "\n".join(rows) + "\n"


def readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def write(cases: list[dict[str, str]]) -> None:
    text = README.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    README.write_text(before + START + "\n" + render(cases) + END + after, encoding="utf-8")


if __name__ == "__main__":
    from tests.test_adversarial import CASES

    if "--write" in sys.argv:
        write(CASES)
    else:
        sys.stdout.write(render(CASES))
