"""The definitions a part of a Python file uses from other files of the repository.

The audit cannot run a tool loop (the Batches API answers one turn), so each
audited part of a Python file carries a small static context instead (issue 12,
item 7): for every name the part uses that its file imports from another file
of the tree, that name's definition in that file, under a token budget.

What counts as an import from another file, all parsed with `ast`:

* `from x.y import name [as alias]`, then `alias` in the part;
* `import x.y [as alias]`, then `x.y.name` (or `alias.name`) in the part;
* `from pkg import module`, then `module.name` in the part;
* relative imports, resolved against the file's own package (its folder).

An absolute module `x.y` is looked for as `x/y.py` or `x/y/__init__.py` under the
top of the audited folder and under the folder holding the file's top package
(so a `src/` layout resolves). Imports anywhere in the file count (also inside
functions and `if TYPE_CHECKING:`); shadowing by a local name is not tracked.
A name a module only re-exports (`from .impl import name` in `__init__.py`) is
followed to its definition, at most `MAX_HOPS` files away.

What a definition shows: a top-level `def`, `class` or assignment of the name.
A definition of at most `SHORT_LINES` lines is given whole. A longer function
gives its signature lines (decorators included), its docstring's first line
and `...`; a longer class gives its header, docstring's first line, then one
entry per public member (class-level assignments' first lines, method
signatures), at most `MAX_ENTRY_LINES` lines; a longer assignment its first
`SHORT_LINES` lines. Each cut says how many lines it left out. NOTE: the
signature is the contract a caller can break, and the body of a long function
is what SWE-PRBench found to make answers worse, not better.

Where definitions come from (issue 11's rules, as for every byte sent): the
listing and git objects of the audited commit through a `RepoView` only; a
module that is a symbolic link is never followed, a submodule never entered
(it is not in the listing), a module over `max_module_bytes` is never read,
one that does not parse (or is not UTF-8 text) gives nothing, and `accept`
(the plan's skip rules: ignored, vendored, generated, binary) may refuse any
file. Nothing here writes or runs anything.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from . import symbols
from .repo_view import Entry, RepoView

SHORT_LINES = 15
"""A definition up to this many lines is shown whole."""
MAX_ENTRY_LINES = 40
"""Lines of one definition at most, whatever its kind."""
MAX_LINE_CHARS = 240
MAX_HOPS = 3
"""Re-exports followed from the imported module to the defining one."""
MAX_LEFT_OUT_NAMED = 12
HEADER = "Definitions this part uses from other files"

_REGULAR = frozenset({"100644", "100755"})
_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError, UnicodeDecodeError)


def tokens(text: str) -> int:
    """Rough token count, as the plan estimates every part (one token per four characters)."""
    return math.ceil(len(text) / 4) if text else 0


@dataclass(frozen=True)
class Definition:
    """One definition found in another file, rendered for the prompt."""

    path: str
    line: int
    kind: str
    """def | class | assignment"""
    text: str


@dataclass
class _Module:
    """What an imported module offers: its rendered top-level definitions and its re-exports."""

    path: str
    definitions: dict[str, Definition] = field(default_factory=dict)
    reexports: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    """name -> (level, module, name there) of a `from module import name` at the top level."""


@dataclass(frozen=True)
class Use:
    """A use, in the audited file, of a name defined in another file."""

    line: int
    shown: str
    """As the code spells it: `Config`, `plan.chunk_key`."""
    module: str
    """The file the name is looked up in."""
    name: str


@dataclass(frozen=True)
class FileUses:
    """Every use of an imported name in one audited file, in line order."""

    path: str
    uses: tuple[Use, ...]


class Index:
    """Definitions over the tree at one commit: each imported module is read and parsed at most once.

    `files` maps paths relative to the view's folder (as the plan walks them)
    to their entries; `accept(path, data)` says whether a file's content may be
    sent at all. Not thread-safe (one per plan).
    """

    def __init__(self, view: RepoView, files: Mapping[str, Entry], *, max_module_bytes: int,
                 accept: Callable[[str, bytes], bool] = lambda path, data: True) -> None:
        self.view, self.files, self.max_module_bytes, self.accept = view, files, max_module_bytes, accept
        self._modules: dict[str, _Module | None] = {}
        self.refused: dict[str, str] = {}
        """Module paths that gave nothing, with the reason (for tests and debugging)."""

    # ------------------------------------------------------------------ the audited file

    def uses(self, path: str, data: bytes) -> FileUses | None:
        """The uses of names `path` imports from other files of the tree; None when there are none."""
        if not path.endswith(".py") or b"import" not in data:
            return None
        try:
            tree = ast.parse(data.decode("utf-8"))
        except _PARSE_ERRORS:
            return None
        # One walk: ast.walk dominates the cost of planning a repository.
        imports: list[ast.Import | ast.ImportFrom] = []
        loads: list[ast.Name | ast.Attribute] = []
        for node in ast.walk(tree):
            kind = type(node)
            if kind is ast.Name or kind is ast.Attribute:
                if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                    loads.append(node)  # type: ignore[arg-type]
            elif kind is ast.ImportFrom or kind is ast.Import:
                imports.append(node)  # type: ignore[arg-type]
        names: dict[str, tuple[str, str]] = {}   # local name -> (module path, name there)
        modules: dict[str, str] = {}             # dotted local spelling -> module path
        for node in imports:
            if isinstance(node, ast.ImportFrom):
                base = self._resolve(path, node.level, node.module or "")
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    local = alias.asname or alias.name
                    sub = self._submodule(base, alias.name) if base is not None else self._resolve(
                        path, node.level, f"{node.module}.{alias.name}" if node.module else alias.name)
                    if sub is not None and (base is None or not self._defines(base, alias.name)):
                        modules[local] = sub
                    elif base is not None and base != path:
                        names[local] = (base, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        target = self._resolve(path, 0, alias.name)
                        if target is not None:
                            modules[alias.asname] = target
                        continue
                    parts = alias.name.split(".")
                    for i in range(1, len(parts) + 1):
                        target = self._resolve(path, 0, ".".join(parts[:i]))
                        if target is not None:
                            modules[".".join(parts[:i])] = target
        modules = {k: v for k, v in modules.items() if v != path}
        if not names and not modules:
            return None
        found: list[Use] = []
        for node in loads:
            if isinstance(node, ast.Name):
                if node.id in names:
                    module, name = names[node.id]
                    found.append(Use(node.lineno, node.id, module, name))
            else:
                dotted = symbols.dotted(node.value)
                if dotted is not None and dotted in modules:
                    found.append(Use(node.lineno, f"{dotted}.{node.attr}", modules[dotted], node.attr))
        found.sort(key=lambda u: (u.line, u.shown))
        return FileUses(path, tuple(found)) if found else None

    # ------------------------------------------------------------------ the block

    def block(self, uses: FileUses | None, start: int, end: int, budget: int) -> str:
        """The definitions block for lines `start`..`end` under `budget` tokens; '' when there is nothing.

        Most-used names first (then first use); a definition that does not fit
        is left out and named in the block's last line, and a smaller one after
        it may still fit.
        """
        if uses is None or budget <= 0:
            return ""
        counted: dict[tuple[str, str], list] = {}
        for u in uses.uses:
            if start <= u.line <= end:
                entry = counted.setdefault((u.module, u.name), [0, u.line, u.shown])
                entry[0] += 1
        order = sorted(counted.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[1][2]))
        parts: list[str] = []
        left_out: list[str] = []
        seen: set[tuple[str, int]] = set()
        # Room for the left-out line, so the block as a whole stays under the budget.
        room = budget - tokens(f"# Left out for the token budget: {'x' * 20 * MAX_LEFT_OUT_NAMED}\n")
        for (module, name), (count, _, shown) in order:
            d = self.definition(module, name)
            if d is None or (d.path, d.line) in seen:
                continue
            times = "once" if count == 1 else f"{count} times"
            text = f"# {shown} ({times} here): {d.path}, line {d.line}\n{d.text}\n"
            if tokens(text) + 1 > room:
                left_out.append(shown)
                continue
            seen.add((d.path, d.line))
            room -= tokens(text) + 1
            parts.append(text)
        if left_out:
            named = ", ".join(left_out[:MAX_LEFT_OUT_NAMED])
            more = f" and {len(left_out) - MAX_LEFT_OUT_NAMED} more" if len(left_out) > MAX_LEFT_OUT_NAMED else ""
            parts.append(f"# Left out for the token budget: {named}{more}\n")
        return "\n".join(parts).rstrip("\n") if parts else ""

    def definition(self, module: str, name: str) -> Definition | None:
        """`name`'s definition in the file `module`, following re-exports; None when there is none."""
        for _ in range(MAX_HOPS + 1):
            m = self._module(module)
            if m is None:
                return None
            found = m.definitions.get(name)
            if found is not None:
                return found
            hop = m.reexports.get(name)
            if hop is None:
                return None
            level, dotted, name = hop
            base = self._resolve(module, level, dotted)
            if base is None:
                return None
            module = base
        return None

    # ------------------------------------------------------------------ modules

    def _defines(self, module: str, name: str) -> bool:
        m = self._module(module)
        return m is not None and (name in m.definitions or name in m.reexports)

    def _module(self, path: str) -> _Module | None:
        if path in self._modules:
            return self._modules[path]
        self._modules[path] = module = self._load(path)
        return module

    def _load(self, path: str) -> _Module | None:
        entry = self.files.get(path)
        reason = None
        if entry is None:
            reason = "not a file in the tree"
        elif entry.mode not in _REGULAR:
            reason = f"not a regular file (mode {entry.mode}): not followed"
        elif entry.size is not None and entry.size > self.max_module_bytes:
            reason = f"over the size limit ({entry.size:,} bytes)"
        if reason is None:
            assert entry is not None
            blob = self.view.read_entry(entry, self.max_module_bytes)
            if blob.is_link or blob.truncated:
                reason = "a link or over the size limit"
            elif not self.accept(path, blob.data):
                reason = "refused by the audit's skip rules"
            else:
                try:
                    source = blob.data.decode("utf-8")
                    tree = ast.parse(source)
                except _PARSE_ERRORS:
                    reason = "does not parse"
                else:
                    return _index(path, source, tree)
        self.refused[path] = reason or "?"
        return None

    def _resolve(self, path: str, level: int, dotted: str) -> str | None:
        """The file of module `dotted` imported from `path` (relative when `level`), or None."""
        return symbols.module_file(path, level, dotted, self.files.__contains__)

    def _submodule(self, module: str, name: str) -> str | None:
        """The file of submodule `name` of the package whose `__init__.py` is `module`."""
        if not module.endswith("__init__.py"):
            return None
        return symbols.module_stem(module[:-len("__init__.py")] + name, self.files.__contains__)


# ---------------------------------------------------------------------- rendering


def _index(path: str, source: str, tree: ast.Module) -> _Module:
    lines = source.splitlines()
    module = _Module(path)
    for node in _top_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [n.id for t in node.targets for n in _targets(t)]
        elif isinstance(node, ast.AnnAssign):
            names = [n.id for n in _targets(node.target)]
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    module.reexports.setdefault(alias.asname or alias.name, (node.level, node.module or "", alias.name))
            continue
        else:
            continue
        for name in names:
            if name not in module.definitions:
                module.definitions[name] = _render(path, node, lines)
    return module


def _top_level(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Top-level statements, and those one level inside `if` / `try` (TYPE_CHECKING, fallbacks)."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from node.body
            yield from node.orelse
        elif isinstance(node, ast.Try):
            yield from node.body
            for handler in node.handlers:
                yield from handler.body


def _targets(target: ast.expr) -> list[ast.Name]:
    if isinstance(target, ast.Name):
        return [target]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for t in target.elts for n in _targets(t)]
    return []


def _first(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def _lines(lines: list[str], first: int, last: int) -> list[str]:
    return [_clip(x.rstrip()) for x in lines[first - 1:last]]


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, lines: list[str]) -> list[str]:
    """The header lines of a def or class: decorators through the line before its body."""
    body_line = node.body[0].lineno if node.body else node.lineno + 1
    return _lines(lines, _first(node), max(node.lineno, body_line - 1))


def _docline(node: ast.AST, indent: str) -> list[str]:
    doc = ast.get_docstring(node, clean=True) if isinstance(
        node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
    if not doc:
        return []
    first = doc.strip().splitlines()[0]
    return [_clip(f'{indent}"""{first}"""')]


def _indent_of(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


def _render(path: str, node: ast.stmt, lines: list[str]) -> Definition:
    first, last = _first(node), getattr(node, "end_lineno", None) or node.lineno
    kind = ("class" if isinstance(node, ast.ClassDef) else "def"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else "assignment")
    total = last - first + 1
    if total <= SHORT_LINES:
        out = _lines(lines, first, last)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        head = _signature(node, lines)
        inner = _indent_of(lines[node.body[0].lineno - 1]) if node.body else "    "
        out = head + _docline(node, inner) + [f"{inner}...  # {total - len(head)} more line(s) not shown"]
    elif isinstance(node, ast.ClassDef):
        head = _signature(node, lines)
        inner = _indent_of(lines[node.body[0].lineno - 1]) if node.body else "    "
        out = head + _docline(node, inner)
        for member in node.body:
            if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if member.name.startswith("_") and not member.name.startswith("__"):
                    continue
                sig = _signature(member, lines)[:6]
                out += sig[:-1] + [sig[-1] + " ..."]
            elif isinstance(member, (ast.Assign, ast.AnnAssign)) and not all(
                    n.id.startswith("_") for n in _targets(member.target if isinstance(member, ast.AnnAssign)
                                                           else member.targets[0])):
                out += _lines(lines, member.lineno, member.lineno)
        shown = len(out)
        if shown > MAX_ENTRY_LINES:
            out = out[:MAX_ENTRY_LINES]
        out.append(f"{inner}# ({total} lines in all; private members and bodies not shown)")
    else:
        out = _lines(lines, first, first + SHORT_LINES - 1) + [f"# ... {total - SHORT_LINES} more line(s) not shown"]
    return Definition(path, first, kind, "\n".join(out[:MAX_ENTRY_LINES + 1]))
