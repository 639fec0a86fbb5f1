"""Where a name is defined and used, in the source of one file, by a parser.

Python is parsed with the standard library's `ast`: definitions are `def`,
`async def`, `class`, module- and class-level assignments (plain, annotated,
augmented), imports that bind the name, and parameters; references are every
other use of the name (a `Name`, an attribute `x.name`, a keyword argument
`name=`). Other languages are not parsed here: their files are reported as text
matches by the caller, labelled as such, never guessed at.

Pure functions over text; nothing here reads files or runs anything.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal

PARSED_SUFFIXES = (".py", ".pyi")
"""Files whose definitions and references this module can tell apart."""

Role = Literal["definition", "reference"]


@dataclass(frozen=True)
class Occurrence:
    """One place a name occurs: its line, what it is there, and the line's text."""

    line: int
    role: Role
    kind: str
    """def, class, assignment, import, parameter, call, attribute, name, keyword."""
    text: str


def covered(path: str) -> bool:
    """Whether `occurrences` can parse this file."""
    return path.endswith(PARSED_SUFFIXES)


def occurrences(source: str, name: str) -> list[Occurrence] | None:
    """Every occurrence of `name` in a Python `source`, in line order; None when it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = source.splitlines()
    found: dict[tuple[int, Role, str], None] = {}

    def add(node: ast.AST, role: Role, kind: str) -> None:
        line = getattr(node, "lineno", 0)
        if line:
            found[(line, role, kind)] = None

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            add(node, "definition", "class" if isinstance(node, ast.ClassDef) else "def")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name or alias.name.split(".")[-1] == name:
                    add(node, "definition" if bound == name else "reference", "import")
        elif isinstance(node, ast.arg) and node.arg == name:
            add(node, "definition", "parameter")
        elif isinstance(node, ast.Name) and node.id == name:
            if isinstance(node.ctx, ast.Store):
                add(node, "definition", "assignment")
            else:
                add(node, "reference", "name")
        elif isinstance(node, ast.Attribute) and node.attr == name:
            add(node, "definition" if isinstance(node.ctx, ast.Store) else "reference", "attribute")
        elif isinstance(node, ast.keyword) and node.arg == name:
            add(node, "reference", "keyword")
    # A call is a reference that says more than "name": mark the lines where the name is called.
    called = {getattr(n.func, "lineno", 0) for n in ast.walk(tree) if isinstance(n, ast.Call)
              and ((isinstance(n.func, ast.Name) and n.func.id == name)
                   or (isinstance(n.func, ast.Attribute) and n.func.attr == name))}
    out = []
    for line, role, kind in sorted(found):
        if role == "reference" and line in called and kind in ("name", "attribute"):
            kind = "call"
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        out.append(Occurrence(line, role, kind, text))
    # One line may hold a definition and references (def f(f): ...): keep each (line, role) once.
    seen: set[tuple[int, Role]] = set()
    unique = []
    for o in out:
        if (o.line, o.role) not in seen:
            seen.add((o.line, o.role))
            unique.append(o)
    return unique
