"""Where a name is defined and used, in the source of one file, by a parser.

Python is parsed with the standard library's `ast`: definitions are `def`,
`async def`, `class`, module- and class-level assignments (plain, annotated,
augmented), imports that bind the name, and parameters; references are every
other use of the name (a `Name`, an attribute `x.name`, a keyword argument
`name=`) and every use of `g` after `from m import name as g`. Other languages
are not parsed here: their files are reported as text matches by the caller,
labelled as such, never guessed at.

Pure functions over text; nothing here reads files or runs anything.
"""

from __future__ import annotations

import ast
import threading
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
    """def, class, assignment, import, parameter, call, attribute, name, keyword; "call as g" or
    "name as g" where `from m import name as g` bound the name to `g`."""
    text: str


def covered(path: str) -> bool:
    """Whether `occurrences` can parse this file."""
    return path.endswith(PARSED_SUFFIXES)


# CPython's parser is not safe to run from several threads at once: concurrent
# ast.parse calls can fail with "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905), and tool calls run in worker threads.
PARSE_LOCK = threading.Lock()


def parse(source: str) -> ast.Module | None:
    """`source` parsed, one parse at a time (PARSE_LOCK); None when it does not parse."""
    try:
        with PARSE_LOCK:
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, SystemError):
        return None


def occurrences(source: str, name: str) -> list[Occurrence] | None:
    """Every occurrence of `name` in a Python `source`, in line order; None when it does not parse."""
    tree = parse(source)
    if tree is None:
        return None
    lines = source.splitlines()
    nodes = list(ast.walk(tree))
    # `from m import name as other`: calls of `other` are calls of `name` (reported "call as other").
    aliases = {a.asname for n in nodes if isinstance(n, ast.ImportFrom) for a in n.names
               if a.name == name and a.asname and a.asname != name}
    # `from pkg import mod as m` looks the same: an alias read as `m.attr` is a module, not the name.
    bases = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)} if aliases else set()
    found: dict[tuple[int, Role, str], None] = {}
    called: set[tuple[int, str]] = set()

    def add(node: ast.AST, role: Role, kind: str) -> None:
        # An attribute is reported on the line of its name, not where `a.b.` began.
        line = (getattr(node, "end_lineno", 0) if isinstance(node, ast.Attribute) else 0) or getattr(node, "lineno", 0)
        if line:
            found[(line, role, kind)] = None

    for node in nodes:
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
        elif (isinstance(node, ast.Name) and node.id in aliases and not isinstance(node.ctx, ast.Store)
              and id(node) not in bases):
            add(node, "reference", f"name as {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr == name:
            add(node, "definition" if isinstance(node.ctx, ast.Store) else "reference", "attribute")
        elif isinstance(node, ast.keyword) and node.arg == name:
            add(node, "reference", "keyword")
        if isinstance(node, ast.Call):  # a call is a reference that says more than "name"
            func = node.func
            if isinstance(func, ast.Name) and (func.id == name or func.id in aliases):
                called.add((func.lineno, func.id))
            elif isinstance(func, ast.Attribute) and func.attr == name:
                called.add((func.end_lineno or func.lineno, name))
    out = []
    for line, role, kind in found:
        callee = kind[len("name as "):] if kind.startswith("name as ") else name
        if role == "reference" and kind.split()[0] in ("name", "attribute") and (line, callee) in called:
            kind = "call" if callee == name else f"call as {callee}"
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        out.append(Occurrence(line, role, kind, text))
    # One line may hold a definition and references (def f(f): ...): keep each (line, role) once, a call first.
    out.sort(key=lambda o: (o.line, o.role, not o.kind.startswith("call"), o.kind))
    seen: set[tuple[int, Role]] = set()
    unique = []
    for o in out:
        if (o.line, o.role) not in seen:
            seen.add((o.line, o.role))
            unique.append(o)
    return unique
