"""The README's security table, rendered from the cases the adversarial tests register.

A test proves one row: `@case(area, attack, behaviour)` registers it when its
module is imported. The table lists the modules' cases in order.

    python -m tests.security_table --write   # rewrite the table in README.md
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Callable

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- security-table:start -->", "<!-- security-table:end -->"
MODULES = ("tests.test_adversarial", "tests.test_adversarial_audit", "tests.test_audit", "tests.test_audit_crash",
           "tests.test_nothing_lost", "tests.test_sarif", "tests.test_secrets_disguised", "tests.test_confinement",
           "tests.test_hostile_inputs", "tests.test_deadlines", "tests.test_definitions",
           "tests.test_verify", "tests.test_refutations", "tests.test_audit_state_fs")

_CASES: dict[str, list[dict[str, str]]] = {}


def case(area: str, attack: str, behaviour: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated test as the proof of one row of the table."""
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        rows = _CASES.setdefault(fn.__module__, [])
        if not any(r["test"] == fn.__name__ for r in rows):
            rows.append({"area": area, "attack": attack, "behaviour": behaviour, "test": fn.__name__})
        return fn
    return register


def cases() -> list[dict[str, str]]:
    """Every registered row, module by module in MODULES order."""
    for name in MODULES:
        importlib.import_module(name)
    return [row for name in MODULES for row in _CASES.get(name, [])]


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
    # The tests register with `tests.security_table`, not with this `__main__` copy.
    from tests import security_table

    if "--write" in sys.argv:
        security_table.write(security_table.cases())
    else:
        sys.stdout.write(security_table.render(security_table.cases()))
