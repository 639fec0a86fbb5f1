"""The repository at a commit -> planted and control cases (`CasePlan`), deterministic by seed.

Every tracked file is read from git objects through `RepoView` (the working tree
is never looked at), counted under its language, and handed to the first
mutator that parses its language (`mutants_python`, then `mutants_treesitter`
when it is installed). The candidates are sampled with `random.Random(seed)`
after sorting everything, so the same commit, seed and arguments give the same
cases, ids and diffs byte for byte.

Sampling spreads the cases: kinds are taken in turn (round robin), and within a
kind the files are taken in turn, so 40 cases do not come from one large file;
a function gives at most one case of a kind.

Pure library code: nothing is printed; bad arguments raise `UsageError`.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from .. import symbols
from ..errors import UsageError
from ..repo_view import RepoView
from . import mutants_python
from .models import CONTROL_KINDS, PLANTED_KINDS, CallSite, Case, CasePlan, LanguageCount, Mutant

# Vendored and generated code: not the user's own, so a defect planted there says little.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    "node_modules/*", "*/node_modules/*", "vendor/*", "*/vendor/*", "third_party/*", "*/third_party/*",
    "*.min.js", "*.min.css", "*_pb2.py", "*_pb2_grpc.py",
)

# Languages named from the file suffix when no mutator parses them, for the "not covered" note.
SUFFIX_LANGUAGES: dict[str, str] = {
    ".py": "Python", ".pyi": "Python", ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript",
    ".jsx": "JavaScript", ".ts": "TypeScript", ".tsx": "TypeScript", ".go": "Go", ".rs": "Rust",
    ".java": "Java", ".kt": "Kotlin", ".kts": "Kotlin", ".scala": "Scala", ".c": "C", ".h": "C",
    ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".hpp": "C++", ".hh": "C++", ".cs": "C#", ".rb": "Ruby",
    ".php": "PHP", ".swift": "Swift", ".m": "Objective-C", ".mm": "Objective-C", ".hs": "Haskell",
    ".ml": "OCaml", ".mli": "OCaml", ".fs": "F#", ".ex": "Elixir", ".exs": "Elixir", ".erl": "Erlang",
    ".clj": "Clojure", ".lua": "Lua", ".pl": "Perl", ".pm": "Perl", ".r": "R", ".R": "R", ".jl": "Julia",
    ".dart": "Dart", ".zig": "Zig", ".nim": "Nim", ".sh": "Shell", ".bash": "Shell", ".sql": "SQL",
    ".vue": "Vue", ".svelte": "Svelte", ".elm": "Elm", ".groovy": "Groovy", ".ps1": "PowerShell",
}

# Characters git would quote in a diff header; such paths are skipped rather than quoted here.
_UNQUOTABLE = frozenset('"\\\t\n\r')


class Mutator(Protocol):
    """What `generate` needs of a mutator module (see `models.Mutant`)."""

    def language(self, path: str) -> str | None: ...
    def parser_name(self, language: str) -> str: ...
    def parses(self, path: str, text: str) -> bool: ...
    def mutants(self, path: str, text: str,
                callers: Callable[[str, str], Sequence[CallSite]] | None = None) -> list[Mutant]: ...


def default_mutators() -> list[ModuleType]:
    """The Python mutator, then the tree-sitter one when it (and its grammars) can be imported."""
    found: list[ModuleType] = [mutants_python]
    try:
        from . import mutants_treesitter  # noqa: PLC0415  (optional: tree-sitter may not be installed)
    except ImportError:
        return found
    found.append(mutants_treesitter)
    return found


@dataclass(frozen=True)
class _File:
    path: str
    text: str
    language: str
    mutator: ModuleType


def generate(view: RepoView, *, seed: int, planted: int = 40, controls: int = 10,
             kinds: Sequence[str] | None = None, include: Sequence[str] = (), exclude: Sequence[str] = (),
             max_file_bytes: int = 200_000, mutators: Sequence[ModuleType] | None = None) -> CasePlan:
    """Up to `planted` planted and `controls` control cases from the files of `view`'s commit.

    `kinds` limits both (planted kinds for the planted cases, control kinds for
    the controls); `include` keeps only paths matching one of its globs,
    `exclude` drops paths matching one (on top of vendored and generated code).
    A shortfall is not an error: the plan's notes say how many cases the
    repository gave and which kinds found no site. Raises UsageError for a
    negative count, an unknown kind or a non-positive `max_file_bytes`.
    """
    if planted < 0 or controls < 0:
        raise UsageError("the numbers of planted and control cases cannot be negative")
    if max_file_bytes <= 0:
        raise UsageError("max_file_bytes must be positive")
    known = PLANTED_KINDS + CONTROL_KINDS
    if kinds is not None:
        unknown = sorted(set(kinds) - set(known))
        if unknown:
            raise UsageError(f"unknown case kind{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                             f"known kinds: {', '.join(known)}")
    wanted = set(known if kinds is None else kinds)
    planted_kinds = [k for k in PLANTED_KINDS if k in wanted]
    control_kinds = [k for k in CONTROL_KINDS if k in wanted]
    mods = list(default_mutators() if mutators is None else mutators)

    files, languages, notes = _files(view, mods, include, exclude, max_file_bytes)
    callers = _Callers(files)
    pools: dict[str, list[tuple[_File, Mutant]]] = {k: [] for k in planted_kinds + control_kinds}
    if (planted and planted_kinds) or (controls and control_kinds):
        for f in files:
            if f.mutator is mutants_python:  # the file's one parse, shared with the callers' index
                tree = callers.tree(f.path, f.text) if f.path.endswith(".py") else None
                found = mutants_python.mutants(f.path, f.text, callers, tree=tree)
            else:
                found = f.mutator.mutants(f.path, f.text, callers if symbols.covered(f.path) else None)
            for m in found:
                if m.kind in pools and m.new_text != f.text:
                    pools[m.kind].append((f, m))

    rng = random.Random(seed)
    chosen_planted = _sample(pools, planted_kinds, planted, rng)
    chosen_controls = _sample(pools, control_kinds, controls, rng)
    cases: list[Case] = []
    seen: set[str] = set()
    texts = {f.path: f.text for f in files}
    for f, m in chosen_planted + chosen_controls:
        if m.sites and not _confirmed(m, symbols.covered(f.path), texts):
            continue
        case = _case(f, m)
        if case is not None and case.id not in seen:
            seen.add(case.id)
            cases.append(case)
    made_planted = sum(c.planted for c in cases)
    made_controls = len(cases) - made_planted
    for asked, made, kind_list, label in ((planted, made_planted, planted_kinds, "planted"),
                                          (controls, made_controls, control_kinds, "control")):
        if made < asked and kind_list:
            empty = [k for k in kind_list if not pools[k]]
            why = f" (kinds without a site: {', '.join(empty)})" if empty else ""
            notes.append(f"asked for {asked} {label} cases, the repository gave {made}{why}")
    return CasePlan(view.commit, seed, tuple(cases), languages, tuple(notes))


# ---------------------------------------------------------------------------- files

def _excluded(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not any(fnmatch.fnmatchcase(path, g) for g in include):
        return True
    return any(fnmatch.fnmatchcase(path, g) for g in (*DEFAULT_EXCLUDE, *exclude))


def _files(view: RepoView, mods: list[ModuleType], include: Sequence[str], exclude: Sequence[str],
           max_file_bytes: int) -> tuple[list[_File], tuple[LanguageCount, ...], list[str]]:
    """The files cases can be made from, the count of files per language, and notes on what was left out."""
    files: list[_File] = []
    covered: dict[str, tuple[int, str]] = {}
    uncovered: dict[str, int] = {}
    for entry in view.entries():
        path = entry.path
        if entry.kind != "file" or _excluded(path, include, exclude):
            continue
        mod = next((m for m in mods if m.language(path)), None)
        if mod is None:
            suffix = "." + path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
            name = SUFFIX_LANGUAGES.get(suffix)
            if name is not None:
                uncovered[name] = uncovered.get(name, 0) + 1
            continue
        lang = mod.language(path)
        assert lang is not None
        n, parser = covered.get(lang, (0, mod.parser_name(lang)))
        covered[lang] = (n + 1, parser)
        if entry.size is not None and entry.size > max_file_bytes:
            continue
        if any(ch in _UNQUOTABLE or not ch.isprintable() for ch in path):
            continue
        blob = view.read_entry(entry, max_file_bytes)
        if blob.truncated or blob.binary:
            continue
        try:
            text = blob.data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a mutant re-encoded as UTF-8 would change bytes the mutation did not touch
        files.append(_File(path, text, lang, mod))
    languages = [LanguageCount(lang, n, True, parser) for lang, (n, parser) in sorted(covered.items())]
    for name in sorted(uncovered):
        if name not in covered:
            languages.append(LanguageCount(name, uncovered[name], False))
    notes = []
    missing = sorted(((n, name) for name, n in uncovered.items() if name not in covered), key=lambda x: (-x[0], x[1]))
    if missing:
        notes.append("not covered: " + ", ".join(f"{name} ({n} file{'s' if n != 1 else ''})" for n, name in missing))
    return files, tuple(languages), notes


# ---------------------------------------------------------------------------- callers (stale-callers)

class _Callers:
    """`callers(name, path)`: the plain calls of the top-level function `name` of `path` in other Python files.

    A call counts when the calling file imports the function from that module
    (`from pkg.mod import name`, also `as alias`, also relative) or imports the
    module and calls `mod.name(...)`. Each comes with how it passes its
    arguments and how the calling code uses the value (`CallSite`), which the
    mutator needs to keep only the calls its change breaks. The sites of the
    cases kept are then confirmed with `symbols.occurrences` (kind "call") by
    `_confirmed`.

    Every Python file is parsed once in all: `tree(path, text)` gives the
    mutator the tree the index of that file was made from, or parses it and
    indexes it then. An index holds no syntax tree, only what `find` asks
    (parsing once per name, as `symbols.occurrences` does, cost 280 parses and
    7 s on this repository; parsing each file for the index and again for the
    mutator, a third of a plan's time). Trees parsed for an index before their
    file's turn wait for it, up to `KEEP_BYTES` of source; beyond, a file is
    parsed again.
    """

    KEEP_BYTES = 8_000_000

    def __init__(self, files: list[_File]) -> None:
        self.files = [f for f in files if f.path.endswith(".py")]
        self.others = [f for f in files if not f.path.endswith(".py") and hasattr(f.mutator, "call_index")]
        """Files of the tree-sitter languages whose mutator can index calls (JavaScript/TypeScript, Go, Java)."""
        self.other_index: dict[str, Any] = {}
        self.cache: dict[tuple[str, str], tuple[CallSite, ...]] = {}
        self.index: dict[str, _CallIndex | None] = {}
        self.words: dict[str, set[str]] = {}
        """Each file's identifier-like words: a file without the name and the module's name is not parsed."""
        self.waiting: dict[str, ast.Module] = {}
        """Trees parsed for an index, kept for the mutator's turn at their file."""
        self.waiting_bytes = 0
        self.done: set[str] = set()
        """Files the mutator has had."""

    def __call__(self, name: str, path: str) -> tuple[CallSite, ...]:
        key = (name, path)
        if key not in self.cache:
            self.cache[key] = self.find(name, path) if path.endswith(".py") else self.find_other(name, path)
        return self.cache[key]

    def tree(self, path: str, text: str) -> ast.Module | None:
        """`text` parsed, for the mutator of `path` (whose turn it now is); the file is indexed too."""
        self.done.add(path)
        tree = self.waiting.pop(path, None)
        if tree is not None:
            self.waiting_bytes -= len(text)
            return tree
        tree = symbols.parse(text)
        if path not in self.index and path.endswith(".py"):
            self.index[path] = _CallIndex(tree, path) if tree is not None else None
        return tree

    def index_of(self, f: _File) -> _CallIndex | None:
        if f.path not in self.index:
            tree = symbols.parse(f.text)
            self.index[f.path] = _CallIndex(tree, f.path) if tree is not None else None
            if tree is not None and f.path not in self.done and self.waiting_bytes + len(f.text) <= self.KEEP_BYTES:
                self.waiting[f.path] = tree
                self.waiting_bytes += len(f.text)
        return self.index[f.path]

    def find_other(self, name: str, path: str) -> tuple[CallSite, ...]:
        """The calls of `name` defined in `path`, a tree-sitter file, as its mutator's `call_sites` binds them.

        Only files holding the word `name` are parsed, each once for all names (the index keeps no tree).
        """
        target = next((f for f in self.others if f.path == path), None)
        if target is None:
            return ()
        indexes = []
        for f in self.others:
            if f.path != path and f.mutator is target.mutator:
                if f.path not in self.words:
                    self.words[f.path] = _words(f.text)
                if name in self.words[f.path]:
                    if f.path not in self.other_index:
                        self.other_index[f.path] = f.mutator.call_index(f.path, f.text)
                    if self.other_index[f.path] is not None:
                        indexes.append(self.other_index[f.path])
        own = target.mutator.call_index(path, target.text) if indexes else None
        return tuple(target.mutator.call_sites(name, own, indexes)) if own is not None else ()

    def find(self, name: str, path: str) -> tuple[CallSite, ...]:
        module = path[:-3].split("/")
        if module[-1] == "__init__":
            module = module[:-1]
        if not module:
            return ()
        sites: list[CallSite] = []
        for f in self.files:
            if f.path == path:
                continue
            if f.path not in self.words:
                self.words[f.path] = _words(f.text)
            words = self.words[f.path]
            if name not in words or module[-1] not in words:
                continue
            index = self.index_of(f)
            if index is None:
                continue
            direct, modules = index.bindings(module, name)
            # An import inside a function binds its name there only: `f` from one function's
            # `import x as f` is not the `f` another function calls.
            calls = [c for alias, where in direct for c in index.by_name.get(alias, ())
                     if where is None or c.scope == where]
            calls += [c for c in index.by_attr.get(name, ())
                      if any(c.base == alias and (where is None or c.scope == where) for alias, where in modules)]
            sites += (CallSite(f.path, c.line, c.positional, c.starred, c.use) for c in calls)
        return tuple(sorted(set(sites), key=lambda s: (s.path, s.line, s.positional, s.starred, s.use or "")))


def _words(text: str) -> set[str]:
    separators = {ord(ch): " " for ch in set(text) if not (ch.isalnum() or ch == "_")}
    return set(text.translate(separators).split())


@dataclass(frozen=True)
class _Call:
    """What `_Callers.find` needs of a call: how it names the function, where, how it passes and uses."""

    base: str | None
    """`mod` of `mod.name(...)`; None for `name(...)` or a call on anything but a name."""
    scope: int | None
    """The function the call sits in (a number within its file); None: the module."""
    line: int
    positional: int
    starred: bool
    use: str | None


class _CallIndex:
    """One calling file: its imports, and its calls by the called name (no syntax tree is kept)."""

    def __init__(self, tree: ast.Module, path: str) -> None:
        self.package = path.split("/")[:-1]
        self.imports: list[tuple[ast.Import | ast.ImportFrom, int | None]] = []
        """Each import with the function it sits in (None: the module)."""
        self.by_name: dict[str, list[_Call]] = {}
        self.by_attr: dict[str, list[_Call]] = {}
        awaited: dict[int, ast.AST | None] = {}
        """The parent of each `await`: the value of `await f()` is used where the `await` is."""
        scopes = 0
        stack: list[tuple[ast.AST, int | None, ast.AST | None]] = [(tree, None, None)]
        while stack:
            node, scope, parent = stack.pop()
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imports.append((node, scope))
                continue
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name | ast.Attribute):
                    starred = any(isinstance(a, ast.Starred) for a in node.args) \
                        or any(k.arg is None for k in node.keywords)
                    base = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                        else None
                    call = _Call(base, scope, func.end_lineno or node.lineno, len(node.args), starred,
                                 _use(node, parent, awaited))
                    if isinstance(func, ast.Name):
                        self.by_name.setdefault(func.id, []).append(call)
                    else:
                        self.by_attr.setdefault(func.attr, []).append(call)
            elif isinstance(node, ast.Await):
                awaited[id(node)] = parent
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                scopes += 1
                scope = scopes
            stack.extend((child, scope, node) for child in ast.iter_child_nodes(node))

    def bindings(self, module: list[str], name: str) -> tuple[set[tuple[str, int | None]],
                                                              set[tuple[str, int | None]]]:
        """(names bound to the function `name` of `module`, names bound to `module`) by this file's imports,
        each with the function the import binds it in (None: the whole module)."""
        direct: set[tuple[str, int | None]] = set()
        modules: set[tuple[str, int | None]] = set()
        for node, scope in self.imports:
            if isinstance(node, ast.ImportFrom):
                full = node.module.split(".") if node.module else []
                if node.level:  # relative: resolved against the calling file's package
                    if node.level - 1 > len(self.package):
                        continue
                    full = self.package[:len(self.package) - (node.level - 1)] + full
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if alias.name == name and _same_module(full, module):
                        direct.add((bound, scope))
                    elif _same_module([*full, alias.name], module):
                        modules.add((bound, scope))
            else:
                for alias in node.names:
                    if alias.asname and _same_module(alias.name.split("."), module):
                        modules.add((alias.asname, scope))
        return direct, modules


def _use(call: ast.Call, parent: ast.AST | None, awaited: dict[int, ast.AST | None]) -> str | None:
    """How the code around `call` uses its value (see `CallSite.use`); None: discarded, returned or stored."""
    node: ast.AST = call
    while isinstance(parent, ast.Await):
        node, parent = parent, awaited.get(id(parent))
    if isinstance(parent, ast.Assign | ast.AnnAssign | ast.NamedExpr):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        if getattr(parent, "value", None) is not node:
            return None  # an annotation
        return "unpacked" if any(isinstance(t, ast.Tuple | ast.List) for t in targets) else "assigned"
    if isinstance(parent, ast.Compare):
        others = [x for x in (parent.left, *parent.comparators) if x is not node]
        if all(isinstance(x, ast.Constant) and x.value is None for x in others) \
                and all(isinstance(op, ast.Is | ast.IsNot) for op in parent.ops):
            return "checked for None"
        return "compared"
    if isinstance(parent, ast.Call):
        return "called" if parent.func is node else "passed on"
    if isinstance(parent, ast.If | ast.While | ast.IfExp | ast.Assert):
        return "tested" if parent.test is node else None
    if isinstance(parent, ast.For | ast.AsyncFor | ast.comprehension):
        return "iterated" if parent.iter is node else None
    if isinstance(parent, ast.Subscript):
        return "subscripted" if parent.value is node else "operand"
    simple: tuple[tuple[tuple[type[ast.AST], ...], str], ...] = (
        ((ast.keyword,), "passed on"), ((ast.Attribute,), "attribute"), ((ast.BoolOp,), "tested"),
        ((ast.AugAssign, ast.BinOp), "operand"), ((ast.Starred,), "unpacked"), ((ast.FormattedValue,), "formatted"),
        ((ast.withitem,), "with"))
    for types, use in simple:
        if isinstance(parent, types):
            return use
    if isinstance(parent, ast.UnaryOp):
        return "tested" if isinstance(parent.op, ast.Not) else "operand"
    return None


def _confirmed(m: Mutant, covered: bool, texts: dict[str, str]) -> bool:
    """Whether `symbols.occurrences` sees a call of the changed function on every line `m.sites` names."""
    if not covered:
        return True
    name = m.function.rsplit(".", 1)[-1]
    for path in sorted({s.path for s in m.sites}):
        found = symbols.occurrences(texts.get(path, ""), name, path) or []
        calls = {o.line for o in found if o.kind.startswith("call")}
        if any(s.line not in calls for s in m.sites if s.path == path):
            return False
    return True


def _same_module(imported: list[str], module: list[str]) -> bool:
    """Whether an import names the file's module: the module path ends with the imported dotted name.

    The repository's layout (a `src/` folder, a package root) is not known, so
    `pkg.mod` matches the file `src/pkg/mod.py`; a bare one-word match counts
    only when the file sits at that path.
    """
    if not imported or len(imported) > len(module):
        return False
    return module[-len(imported):] == imported and (len(imported) > 1 or len(module) == 1)


# ---------------------------------------------------------------------------- sampling

def _sample(pools: dict[str, list[tuple[_File, Mutant]]], kinds: list[str], count: int,
            rng: random.Random) -> list[tuple[_File, Mutant]]:
    """`count` candidates: kinds in turn, and within a kind files in turn; one per function and kind."""
    if count <= 0 or not kinds:
        return []
    queues: dict[str, list[tuple[_File, Mutant]]] = {}
    for kind in kinds:
        by_file: dict[str, dict[str, list[tuple[_File, Mutant]]]] = {}
        for f, m in sorted(pools[kind], key=lambda fm: (fm[0].path, fm[1].function, fm[1].start, fm[1].new_text)):
            by_file.setdefault(f.path, {}).setdefault(m.function, []).append((f, m))
        per_file: list[list[tuple[_File, Mutant]]] = []
        for path in sorted(by_file):
            functions = by_file[path]
            picks = [rng.choice(functions[name]) for name in sorted(functions)]  # one per function
            rng.shuffle(picks)
            per_file.append(picks)
        rng.shuffle(per_file)
        queue: list[tuple[_File, Mutant]] = []
        depth = 0
        while any(depth < len(p) for p in per_file):
            queue.extend(p[depth] for p in per_file if depth < len(p))
            depth += 1
        queues[kind] = queue
    order = list(kinds)
    rng.shuffle(order)
    out: list[tuple[_File, Mutant]] = []
    at = dict.fromkeys(order, 0)
    while len(out) < count and any(at[k] < len(queues[k]) for k in order):
        for kind in order:
            if len(out) >= count:
                break
            if at[kind] < len(queues[kind]):
                out.append(queues[kind][at[kind]])
                at[kind] += 1
    return out


# ---------------------------------------------------------------------------- cases

def _case(f: _File, m: Mutant) -> Case | None:
    """The case for one mutant, or None when its text no longer parses (a mutator's bug, not the user's).

    The Python mutator checks that each candidate parses before returning it
    (`mutants_python.CHECKS_PARSE`): parsing its whole file again here cost a
    quarter of a plan's time.
    """
    if not getattr(f.mutator, "CHECKS_PARSE", False) and not f.mutator.parses(f.path, m.new_text):
        return None
    digest = hashlib.sha256((f.path + m.function + m.new_text).encode("utf-8", "surrogateescape")).hexdigest()
    old_lines, new_lines = _git_lines(f.text), _git_lines(m.new_text)
    # The span is read from the same line matching the diff is made of: a mutator's own
    # line diff may align repeated lines (blank ones) differently, and the diff is what a
    # reviewer sees.
    start, end = _changed_span(difflib.SequenceMatcher(None, old_lines, new_lines), len(new_lines))
    return Case(id=f"{m.kind}-{digest[:10]}", kind=m.kind, planted=m.kind in PLANTED_KINDS, language=f.language,
                path=f.path, start=start, end=end, description=m.description, function=m.function,
                diff=unified_diff(f.path, f.text, m.new_text), new_text=m.new_text, sites=m.sites)


def _changed_span(matcher: difflib.SequenceMatcher[str], total: int) -> tuple[int, int]:
    """First and last line of the new text that the diff adds; for a pure removal, the lines either side of it."""
    added: list[int] = []
    removed_at: list[int] = []
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if j2 > j1:
            added += [j1 + 1, j2]
        else:
            removed_at += [j1, j1 + 1]
    span = added or removed_at
    lo, hi = max(1, min(span)), min(max(total, 1), max(span))
    return min(lo, hi), hi


def _git_lines(text: str) -> list[str]:
    """Lines as git counts them: cut after "\\n" only (a "\\r" stays part of its line)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def unified_diff(path: str, old: str, new: str) -> str:
    """A `git diff`-style patch of one file, with a/ and b/ prefixes, that `git apply` accepts."""
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(_git_lines(old), _git_lines(new), f"a/{path}", f"b/{path}", n=3):
        if line.endswith("\n"):
            out.append(line)
        else:  # the file's last line, without a newline: git's marker says so
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)
