"""Where a name is defined and used, in the source of one file, by a parser.

Python is parsed with the standard library's `ast`: definitions are `def`,
`async def`, `class`, module- and class-level assignments (plain, annotated,
augmented), imports that bind the name, and parameters; references are every
other use of the name (a `Name`, an attribute `x.name`, a keyword argument
`name=`) and every use of `g` after `from m import name as g`. A file is
indexed once for every name (`index`), with its scopes, and `Resolver` ties
a reference to the definition it names through the file's imports.

JavaScript, TypeScript (and TSX), Go, Java, Rust, C and C++ are parsed with
tree-sitter (`reviewer.treesitter`): an identifier node spelled `name` is a
definition when it is the name of a declaration (function, method, class,
struct, interface, enum, type alias, constant, variable, field, import) or a
parameter, found by node type and field (`DEFINED`); any other identifier node
is a reference (a call, a field or member access, a name). Comments and string
contents hold no identifier nodes, so a name there is not reported. A file with
a syntax error is still reported: tree-sitter parses around the error, and a
name inside the broken part counts as a reference.

Other languages are not parsed here: their files are reported as text matches
by the caller, labelled as such, never guessed at.

Pure functions over text; nothing here reads files or runs anything (the
`Resolver` reads other files only through the functions it is given).
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

from . import treesitter

if TYPE_CHECKING:
    from tree_sitter import Node

PARSED_SUFFIXES = (".py", ".pyi")
"""Python files: parsed with `ast`. Other parsed files are those `treesitter.language` knows."""
PARSED_LANGUAGES = ", ".join(["Python", *treesitter.display_names()])
"""The parsed languages, as said to the model."""

Role = Literal["definition", "reference"]


@dataclass(frozen=True)
class Occurrence:
    """One place a name occurs: its line, what it is there, and the line's text."""

    line: int
    role: Role
    kind: str
    """def, class, assignment, import, parameter, call, attribute, name, keyword; "call as g" or
    "name as g" where `from m import name as g` bound the name to `g`. Parsed by tree-sitter also:
    type (struct, interface, enum, trait, type alias, typedef) and const (constants, enum members)."""
    text: str


def covered(path: str) -> bool:
    """Whether `occurrences` can parse this file."""
    return path.endswith(PARSED_SUFFIXES) or treesitter.language(path) is not None


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


def occurrences(source: str, name: str, path: str = "") -> list[Occurrence] | None:
    """Every occurrence of `name` in `source`, in line order; None when it does not parse.

    `path` chooses the parser by its suffix: tree-sitter for the languages it
    covers (a tree-sitter parse always gives a tree), else Python's `ast`.
    """
    if treesitter.language(path) is not None:
        return _tree_occurrences(path, source, name)
    module = index(source)
    if module is None:
        return None
    return _one_per_line([module.occurrence(site, kind) for site, kind, _ in module.sites_of(name)])


def _one_per_line(out: list[Occurrence]) -> list[Occurrence]:
    """`out` in line order, each (line, role) once."""
    # One line may hold a definition and references (def f(f): ...): keep each (line, role) once, a call first.
    out.sort(key=lambda o: (o.line, o.role, not o.kind.startswith("call"), o.kind))
    seen: set[tuple[int, Role]] = set()
    unique = []
    for o in out:
        if (o.line, o.role) not in seen:
            seen.add((o.line, o.role))
            unique.append(o)
    return unique


# -------------------------------------------------------------------- Python
# One pass over a file's tree records every name it binds, per scope, and every place a name
# occurs, whatever the name: a ToolBox keeps the result per file, and each lookup only reads it.


class Binding(NamedTuple):
    """What a statement binds a name to, in one scope."""

    kind: str
    """def, class, assignment (at module or class level), local (in a function: assignment,
    loop, `with`, `except`), parameter, from (`from module import name`), import (`import module`)."""
    line: int
    scope: int = -1
    """def and class: the scope of the body."""
    level: int = 0
    module: str = ""
    """from: the module as written (relative when `level`); import: the module the name stands for."""
    name: str = ""
    """from: the name imported."""
    qual: str = ""
    """def, class, assignment: the dotted name from the module (`Config.load`)."""


class Site(NamedTuple):
    """One place a name occurs in a file."""

    line: int
    role: Role
    kind: str
    """definition: def, class, assignment, import, parameter, attribute; reference: call, name,
    attribute, keyword, import."""
    scope: int
    base: str | None = None
    """An attribute `a.b.name`: its value's dotted spelling ("a.b"; "" when not a dotted name)."""
    is_base: bool = False
    """A name read as the value of an attribute (`m` in `m.x`)."""
    binding: Binding | None = None
    """An import: what it binds."""


@dataclass
class Scope:
    """A module, class or function body (a lambda or a comprehension counts as a function)."""

    kind: Literal["module", "class", "function"]
    parent: int
    qual: str
    """Dotted prefix of the names bound here ("" for the module, "Config." in a class body)."""
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)
    owner: int = -1
    """A method: the scope of its class."""
    first: str = ""
    """A method: its first parameter (self, cls), which stands for an instance of `owner`."""


@dataclass
class PyModule:
    """A Python file indexed by `index`: its scopes and where each name occurs."""

    lines: list[str]
    scopes: list[Scope]
    sites: dict[str, list[Site]]
    aliases: dict[str, set[str]]
    """name -> the names `from m import name as other` bound it to in this file."""

    def sites_of(self, name: str) -> list[tuple[Site, str, str]]:
        """Every place `name` occurs: the site, the kind to report it as ("call as g" for an alias `g`)
        and the name spelled there (`name`, or `g`)."""
        out = [(s, s.kind, name) for s in self.sites.get(name, ())]
        for alias in self.aliases.get(name, ()):
            # `from pkg import mod as m` looks the same: an alias read as `m.attr` is a module, not the name.
            out += [(s, f"{s.kind} as {alias}", alias) for s in self.sites.get(alias, ())
                    if s.role == "reference" and s.base is None and s.kind in ("name", "call") and not s.is_base]
        return out

    def occurrence(self, site: Site, kind: str) -> Occurrence:
        text = self.lines[site.line - 1].strip() if 0 < site.line <= len(self.lines) else ""
        return Occurrence(site.line, site.role, kind, text)

    def lookup(self, scope: int, name: str) -> tuple[int, list[Binding]] | None:
        """The scope whose bindings `name` reads at `scope`, and those bindings; None when none does.

        Python's rule: the enclosing functions, then the module; a class body is
        seen only from itself, not from its methods; `global` and `nonlocal` obeyed.
        """
        at, first = scope, True
        while at >= 0:
            s = self.scopes[at]
            if name in s.globals and at != 0:
                at, first = 0, False
                continue
            if (first or s.kind != "class") and name not in s.nonlocals:
                found = s.bindings.get(name)
                if found:
                    return at, found
            at, first = s.parent, False
        return None


def index(source: str) -> PyModule | None:
    """`source` parsed and indexed; None when it does not parse."""
    tree = parse(source)
    return None if tree is None else _Indexer(source.splitlines()).run(tree)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Indexer:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.scopes = [Scope("module", -1, "")]
        self.sites: dict[str, list[Site]] = {}
        self.aliases: dict[str, set[str]] = {}

    def bind(self, scope: int, name: str, binding: Binding) -> None:
        self.scopes[scope].bindings.setdefault(name, []).append(binding)

    def site(self, name: str, site: Site) -> None:
        self.sites.setdefault(name, []).append(site)

    def new_scope(self, kind: Literal["class", "function"], parent: int, name: str) -> int:
        self.scopes.append(Scope(kind, parent, f"{self.scopes[parent].qual}{name}."))
        return len(self.scopes) - 1

    def run(self, tree: ast.Module) -> PyModule:
        callees: set[int] = set()
        bases: set[int] = set()
        stack: list[tuple[ast.AST, int]] = [(n, 0) for n in reversed(tree.body)]
        while stack:
            node, scope = stack.pop()
            todo: list[tuple[ast.AST, int]] = []
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Store):
                    where = 0 if node.id in self.scopes[scope].globals else scope
                    local = self.scopes[where].kind == "function"
                    self.bind(where, node.id, Binding("local" if local else "assignment", node.lineno,
                                                      qual=self.scopes[where].qual + node.id))
                    self.site(node.id, Site(node.lineno, "definition", "assignment", scope))
                else:
                    self.site(node.id, Site(node.lineno, "reference", "call" if id(node) in callees else "name",
                                            scope, is_base=id(node) in bases))
                continue
            if isinstance(node, ast.Attribute):
                # An attribute is reported on the line of its name, not where `a.b.` began.
                line = node.end_lineno or node.lineno
                if isinstance(node.ctx, ast.Store):
                    self.site(node.attr, Site(line, "definition", "attribute", scope))
                else:
                    self.site(node.attr, Site(line, "reference", "call" if id(node) in callees else "attribute",
                                              scope, base=dotted(node.value) or ""))
                bases.add(id(node.value))
                todo.append((node.value, scope))
            elif isinstance(node, ast.Call):
                callees.add(id(node.func))
                todo += [(n, scope) for n in ast.iter_child_nodes(node)]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                todo += self.function(node, scope)
            elif isinstance(node, ast.ClassDef):
                inner = self.new_scope("class", scope, node.name)
                self.bind(scope, node.name, Binding("class", node.lineno, inner,
                                                    qual=self.scopes[scope].qual + node.name))
                self.site(node.name, Site(node.lineno, "definition", "class", scope))
                todo += [(n, scope) for n in (*node.decorator_list, *node.bases, *node.keywords)]
                todo += [(n, inner) for n in node.body]
            elif isinstance(node, _COMPREHENSIONS):
                inner = self.new_scope("function", scope, "<comprehension>")
                todo += [(n, inner) for n in ast.iter_child_nodes(node)]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    binding = Binding("import", node.lineno, module=alias.name if alias.asname else bound)
                    self.bind(scope, bound, binding)
                    self.site(bound, Site(node.lineno, "definition", "import", scope, binding=binding))
                    last = alias.name.split(".")[-1]
                    if last != bound:
                        self.site(last, Site(node.lineno, "reference", "import", scope, binding=binding))
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    bound = alias.asname or alias.name
                    binding = Binding("from", node.lineno, level=node.level, module=node.module or "",
                                      name=alias.name)
                    self.bind(scope, bound, binding)
                    self.site(bound, Site(node.lineno, "definition", "import", scope, binding=binding))
                    if alias.name != bound:
                        self.site(alias.name, Site(node.lineno, "reference", "import", scope, binding=binding))
                        self.aliases.setdefault(alias.name, set()).add(bound)
            elif isinstance(node, ast.Global):
                self.scopes[scope].globals.update(node.names)
            elif isinstance(node, ast.Nonlocal):
                self.scopes[scope].nonlocals.update(node.names)
            elif isinstance(node, ast.keyword):
                if node.arg:
                    self.site(node.arg, Site(node.lineno, "reference", "keyword", scope))
                todo.append((node.value, scope))
            else:
                if isinstance(node, ast.ExceptHandler) and node.name:
                    self.bind(scope, node.name, Binding("local", node.lineno))
                elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                    self.bind(scope, node.name, Binding("local", node.lineno))
                todo += [(n, scope) for n in ast.iter_child_nodes(node)]
            stack += reversed(todo)
        return PyModule(self.lines, self.scopes, self.sites, self.aliases)

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
                 scope: int) -> list[tuple[ast.AST, int]]:
        """Binds a def or lambda and its parameters; the nodes to visit, each with its scope."""
        args = node.args
        params = [*args.posonlyargs, *args.args, *([args.vararg] if args.vararg else []), *args.kwonlyargs,
                  *([args.kwarg] if args.kwarg else [])]
        todo: list[tuple[ast.AST, int]] = [(d, scope) for d in (*args.defaults, *args.kw_defaults) if d is not None]
        todo += [(a.annotation, scope) for a in params if a.annotation is not None]
        if isinstance(node, ast.Lambda):
            inner = self.new_scope("function", scope, "<lambda>")
            body: list[ast.AST] = [node.body]
        else:
            inner = self.new_scope("function", scope, node.name)
            self.bind(scope, node.name, Binding("def", node.lineno, inner, qual=self.scopes[scope].qual + node.name))
            self.site(node.name, Site(node.lineno, "definition", "def", scope))
            todo += [(d, scope) for d in node.decorator_list]
            if node.returns is not None:
                todo.append((node.returns, scope))
            body = list(node.body)
            plain = not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
            positional = [*args.posonlyargs, *args.args]
            if self.scopes[scope].kind == "class" and plain and positional:
                self.scopes[inner].owner, self.scopes[inner].first = scope, positional[0].arg
        for a in params:
            self.bind(inner, a.arg, Binding("parameter", a.lineno))
            self.site(a.arg, Site(a.lineno, "definition", "parameter", inner))
        return todo + [(n, inner) for n in body]


def dotted(node: ast.expr) -> str | None:
    """`a.b.c` for an attribute chain on a name; None for anything else (a call, a subscript)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


# ------------------------------------------------------------ Python: resolving names through imports


class Target(NamedTuple):
    """A definition a reference resolves to: a def, class or module- or class-level assignment."""

    path: str
    line: int
    qual: str
    """The dotted name from its module: `parse`, `Config.load`."""
    scope: int = -1
    """A class: the scope of its body."""


@dataclass(frozen=True)
class _Module:
    """A module file, the value of `import m` or of `from pkg import m`."""

    path: str


@dataclass(frozen=True)
class _Instance:
    """`self` (or `cls`) in a method: its attributes are looked up in its class's body only."""

    path: str
    scope: int


_Value = Target | _Module | _Instance | None

MAX_HOPS = 4
"""Re-exports (`from .impl import name` in `__init__.py`) followed from an import to the definition."""
_DEFINING = frozenset({"def", "class", "assignment"})


def _pick(bindings: list[Binding]) -> Binding | None:
    """The one binding a name has in a scope; None when the bindings disagree (unresolved, never guessed).

    Defs, classes and assignments together: the first def or class (a property and its
    setter, `f = wrap(f)`); the same import repeated: that import; anything else: None.
    """
    kinds = {b.kind for b in bindings}
    if not bindings:
        return None
    if kinds <= _DEFINING:
        return next((b for b in bindings if b.kind != "assignment"), bindings[0])
    if len({(b.kind, b.level, b.module, b.name) for b in bindings}) == 1 and bindings[0].kind in ("from", "import"):
        return bindings[0]
    return None


def module_file(importer: str, level: int, dotted: str, exists: Callable[[str], bool]) -> str | None:
    """The file of module `dotted` as imported from the file `importer` (relative when `level`), or None.

    An absolute module `x.y` is looked for as `x/y.py` or `x/y/__init__.py` under the
    folder above `importer`'s top package (a `src/` layout), then under the top.
    """
    parts = [p for p in dotted.split(".") if p]
    folder = importer.split("/")[:-1]
    if level:
        if level - 1 > len(folder):
            return None
        return module_stem("/".join(folder[:len(folder) - (level - 1)] + parts), exists)
    if not parts:
        return None
    while folder and exists("/".join([*folder, "__init__.py"])):
        folder = folder[:-1]
    for root in ([folder, []] if folder else [[]]):
        found = module_stem("/".join(root + parts), exists)
        if found is not None:
            return found
    return None


def module_stem(stem: str, exists: Callable[[str], bool]) -> str | None:
    """`stem.py` or `stem/__init__.py`, whichever `exists` first; None when neither."""
    stem = stem.strip("/")
    for candidate in ((stem + ".py", stem + "/__init__.py") if stem else ("__init__.py",)):
        if exists(candidate):
            return candidate
    return None


class Resolver:
    """Ties the occurrences of a name in Python files to the definitions they refer to, through imports.

    A reference in file F resolves to a definition in module M when F binds the
    name (or an alias of it) by `from M import name [as g]`, reads it as `m.name`
    after `import M [as m]` or `from pkg import M`, is M itself (a use in the same
    module, unless a function binds the name locally), or, in a method, reads
    `self.name` where the method's class defines `name`; relative imports are
    resolved against F's folder, re-exports followed up to MAX_HOPS. Anything
    else (an attribute of an object of unknown type, a keyword argument, a local,
    a name imported from outside the tree, a `*` import) stays unresolved.

    `load(path)` gives a file's index (None when it is not a regular Python file
    that parses); `exists(path)` whether a regular file is at `path`.
    """

    def __init__(self, load: Callable[[str], PyModule | None], exists: Callable[[str], bool]) -> None:
        self.load, self.exists = load, exists

    def resolve(self, path: str, module: PyModule, site: Site, name: str) -> Target | None:
        """The definition the occurrence `site` of `name` in `path` refers to (`name` as spelled there: an alias)."""
        if site.binding is not None:
            found = self._binding(path, site.binding)
            return found if isinstance(found, Target) else None
        if site.role == "definition" or site.kind == "keyword":
            return None
        if site.base is None:
            value = self._name(path, module, site.scope, name)
        elif site.base:
            value = self._attribute(self._value_of(path, module, site.scope, site.base), name)
        else:
            value = None
        return value if isinstance(value, Target) else None

    def _value_of(self, path: str, module: PyModule, scope: int, dotted: str) -> _Value:
        """What the dotted name `dotted` (`m`, `self`, `pkg.mod`) read at `scope` stands for."""
        head, *rest = dotted.split(".")
        found = module.lookup(scope, head)
        if found is None:
            return None
        where, bindings = found
        value: _Value = None
        if rest and len(bindings) == 1 and bindings[0].kind == "import":
            # `import a.b` then `a.b.c.name`: the longest dotted prefix that is a module file.
            for i in range(len(rest), 0, -1):
                file = module_file(path, 0, ".".join([bindings[0].module, *rest[:i]]), self.exists)
                if file is not None:
                    value, rest = _Module(file), rest[i:]
                    break
        if value is None:
            value = self._name(path, module, scope, head)
        for part in rest:
            value = self._attribute(value, part)
        return value

    def _name(self, path: str, module: PyModule, scope: int, name: str) -> _Value:
        """What the plain name `name` read at `scope` stands for."""
        found = module.lookup(scope, name)
        if found is None:
            return None
        where, bindings = found
        method = module.scopes[where]
        if method.owner >= 0 and method.first == name and [b.kind for b in bindings] == ["parameter"]:
            return _Instance(path, method.owner)
        binding = _pick(bindings)
        return None if binding is None else self._binding(path, binding)

    def _binding(self, path: str, binding: Binding, hops: int = 0) -> Target | _Module | None:
        if binding.kind in _DEFINING:
            return Target(path, binding.line, binding.qual, binding.scope if binding.kind == "class" else -1)
        if binding.kind == "import":
            file = module_file(path, 0, binding.module, self.exists)
            return _Module(file) if file is not None else None
        if binding.kind == "from" and hops <= MAX_HOPS:
            return self._from(path, binding.level, binding.module, binding.name, hops)
        return None

    def _from(self, path: str, level: int, module: str, name: str, hops: int) -> Target | _Module | None:
        """What `from module import name` in `path` binds."""
        base = module_file(path, level, module, self.exists)
        if base is None:  # `from . import m` in a folder without __init__.py: the module m
            file = module_file(path, level, f"{module}.{name}" if module else name, self.exists)
            return _Module(file) if file is not None else None
        indexed = self.load(base)
        if indexed is not None and name in indexed.scopes[0].bindings:
            return self._export(base, indexed, name, hops)
        if base.endswith("__init__.py"):
            file = module_stem(base[:-len("__init__.py")] + name, self.exists)
            return _Module(file) if file is not None else None
        return None

    def _export(self, path: str, module: PyModule, name: str, hops: int) -> Target | _Module | None:
        binding = _pick(module.scopes[0].bindings.get(name, []))
        return None if binding is None else self._binding(path, binding, hops + 1)

    def _attribute(self, value: _Value, name: str) -> Target | _Module | None:
        if isinstance(value, _Module):
            indexed = self.load(value.path)
            if indexed is not None and name in indexed.scopes[0].bindings:
                return self._export(value.path, indexed, name, 0)
            if value.path.endswith("__init__.py"):
                file = module_stem(value.path[:-len("__init__.py")] + name, self.exists)
                return _Module(file) if file is not None else None
            return None
        scope = value.scope if isinstance(value, (Target, _Instance)) else -1
        if value is None or scope < 0:
            return None
        indexed = self.load(value.path)
        if indexed is None:
            return None
        binding = _pick(indexed.scopes[scope].bindings.get(name, []))
        if binding is None or binding.kind not in _DEFINING:
            return None
        return Target(value.path, binding.line, binding.qual, binding.scope if binding.kind == "class" else -1)



# --------------------------------------------------------------- tree-sitter
# Node types and field names below are those of the grammars in treesitter.GRAMMARS; one table
# serves them all, since a node type means the same thing in every grammar that has it.

DEFINED: dict[tuple[str, str], str] = {
    # (parent node type, field of the identifier, "*" for any) -> kind of the definition.
    ("function_declaration", "name"): "def",             # JS, TS, Go
    ("generator_function_declaration", "name"): "def",
    ("function_expression", "name"): "def",
    ("function_signature", "name"): "def",               # TS: overloads, `declare function`
    ("method_definition", "name"): "def",                # JS, TS class bodies
    ("method_signature", "name"): "def",
    ("abstract_method_signature", "name"): "def",
    ("method_declaration", "name"): "def",               # Go, Java
    ("method_elem", "name"): "def",                      # Go interface
    ("constructor_declaration", "name"): "def",          # Java
    ("function_item", "name"): "def",                    # Rust
    ("function_signature_item", "name"): "def",
    ("macro_definition", "name"): "def",
    ("function_declarator", "declarator"): "def",        # C, C++: definitions and prototypes
    ("preproc_function_def", "name"): "def",
    ("class_declaration", "name"): "class",              # JS, TS, Java
    ("abstract_class_declaration", "name"): "class",
    ("class", "name"): "class",                          # JS class expression
    ("record_declaration", "name"): "class",
    ("class_specifier", "name"): "class",                # C++, with a body (else a reference)
    ("interface_declaration", "name"): "type",
    ("annotation_type_declaration", "name"): "type",
    ("enum_declaration", "name"): "type",
    ("type_alias_declaration", "name"): "type",
    ("type_spec", "name"): "type",                       # Go
    ("type_alias", "name"): "type",
    ("struct_item", "name"): "type",                     # Rust
    ("enum_item", "name"): "type",
    ("union_item", "name"): "type",
    ("trait_item", "name"): "type",
    ("type_item", "name"): "type",
    ("struct_specifier", "name"): "type",                # C, C++, with a body (else a reference)
    ("union_specifier", "name"): "type",
    ("enum_specifier", "name"): "type",
    ("type_definition", "declarator"): "type",           # typedef
    ("alias_declaration", "name"): "type",               # C++ `using X = ...`
    ("const_spec", "name"): "const",                     # Go
    ("const_item", "name"): "const",                     # Rust
    ("static_item", "name"): "const",
    ("enum_variant", "name"): "const",
    ("enum_constant", "name"): "const",                  # Java
    ("enum_body", "name"): "const",                      # TS
    ("enum_assignment", "name"): "const",
    ("enumerator", "name"): "const",                     # C, C++
    ("preproc_def", "name"): "const",
    ("variable_declarator", "name"): "assignment",       # JS, TS, Java (see definition_kind)
    ("var_spec", "name"): "assignment",                  # Go
    ("short_var_declaration", "left"): "assignment",
    ("assignment_statement", "left"): "assignment",
    ("range_clause", "left"): "assignment",
    ("assignment_expression", "left"): "assignment",     # JS, TS, Java, Rust, C, C++
    ("augmented_assignment_expression", "left"): "assignment",
    ("compound_assignment_expr", "left"): "assignment",  # Rust
    ("let_declaration", "pattern"): "assignment",
    ("for_expression", "pattern"): "assignment",
    ("for_in_statement", "left"): "assignment",          # JS for-of / for-in
    ("enhanced_for_statement", "name"): "assignment",    # Java
    ("init_declarator", "declarator"): "assignment",     # C, C++
    ("declaration", "declarator"): "assignment",
    ("field_declaration", "name"): "attribute",          # Go, Rust
    ("field_declaration", "declarator"): "attribute",    # C, C++ (Java: through variable_declarator)
    ("field_definition", "property"): "attribute",       # JS
    ("public_field_definition", "name"): "attribute",    # TS
    ("property_signature", "name"): "attribute",
    ("formal_parameters", "*"): "parameter",             # JS `function f(a)`
    ("required_parameter", "pattern"): "parameter",      # TS
    ("optional_parameter", "pattern"): "parameter",
    ("arrow_function", "parameter"): "parameter",        # JS `a => ...`
    ("catch_clause", "parameter"): "parameter",
    ("parameter_declaration", "name"): "parameter",      # Go
    ("variadic_parameter_declaration", "name"): "parameter",
    ("parameter_declaration", "declarator"): "parameter",  # C, C++
    ("optional_parameter_declaration", "declarator"): "parameter",  # C++ default
    ("formal_parameter", "name"): "parameter",           # Java
    ("catch_formal_parameter", "name"): "parameter",
    ("inferred_parameters", "*"): "parameter",           # Java `(a, b) -> ...`
    ("lambda_expression", "parameters"): "parameter",    # Java `a -> ...`
    ("parameter", "pattern"): "parameter",               # Rust
    ("closure_parameters", "*"): "parameter",
    ("preproc_params", "*"): "parameter",
    ("import_specifier", "name"): "import",              # JS, TS (see definition_kind)
    ("import_specifier", "alias"): "import",
    ("import_clause", "*"): "import",                    # `import x from`
    ("namespace_import", "*"): "import",                 # `import * as x from`
    ("import_spec", "name"): "import",                   # Go alias
    ("import_declaration", "*"): "import",               # Java
    ("use_declaration", "argument"): "import",           # Rust
    ("use_as_clause", "path"): "import",
    ("use_as_clause", "alias"): "import",
}

THROUGH: frozenset[tuple[str, str]] = frozenset({
    # (node type, field, "*" for any): a name in there is declared by the node's parent:
    # destructuring, defaults, declarators, lists on the left of `:=`, paths of imports.
    ("assignment_pattern", "left"), ("rest_pattern", "*"), ("object_pattern", "*"), ("array_pattern", "*"),
    ("pair_pattern", "value"), ("object_assignment_pattern", "left"),
    ("expression_list", "*"),
    ("pointer_declarator", "declarator"), ("array_declarator", "declarator"), ("parenthesized_declarator", "*"),
    ("reference_declarator", "*"), ("attributed_declarator", "*"), ("qualified_identifier", "name"),
    ("tuple_pattern", "*"), ("mut_pattern", "*"), ("ref_pattern", "*"), ("reference_pattern", "*"),
    ("slice_pattern", "*"),
    ("scoped_identifier", "name"), ("use_list", "*"), ("scoped_use_list", "list"),
})

MEMBER: frozenset[tuple[str, str]] = frozenset({
    # (node type, field): the name is a member of something: `o.name`, `o->name`.
    ("member_expression", "property"), ("selector_expression", "field"), ("field_access", "field"),
    ("field_expression", "field"),
})

CALLEE: frozenset[tuple[str, str]] = frozenset({
    # (node type, field): a name reaching here through MEMBER, PATH and type arguments is called.
    ("call_expression", "function"), ("new_expression", "constructor"), ("new_expression", "type"),
    ("method_invocation", "name"), ("object_creation_expression", "type"), ("macro_invocation", "macro"),
})
PATH: frozenset[tuple[str, str]] = frozenset({
    # (node type, field): `ns::name`, `name::<T>`, `name<T>`: still the callee when called.
    ("scoped_identifier", "name"), ("qualified_identifier", "name"), ("template_function", "name"),
    ("generic_function", "function"),
})
KEYWORD: frozenset[tuple[str, str]] = frozenset({
    # An argument or field passed by name: `{name: v}`, `S { name: v }`.
    ("pair", "key"), ("field_initializer", "field"),
})
ASSIGNED: frozenset[tuple[str, str]] = frozenset({
    ("assignment_expression", "left"), ("augmented_assignment_expression", "left"),
    ("compound_assignment_expr", "left"), ("assignment_statement", "left"),
})
WITH_BODY = frozenset({"class_specifier", "struct_specifier", "union_specifier", "enum_specifier"})
FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})


def _key(table: frozenset[tuple[str, str]] | dict[tuple[str, str], str], node: Node) -> tuple[str, str] | None:
    """(parent type, field of `node`) if the table holds it, with "*" standing for any field."""
    parent = node.parent
    if parent is None:
        return None
    field = treesitter.field_of(node) or ""
    for key in ((parent.type, field), (parent.type, "*")):
        if key in table:
            return key
    return None


def definition_kind(leaf: Node) -> str | None:
    """The kind of definition `leaf` (an identifier) is the name of, or None for a reference."""
    node = leaf
    while node.parent is not None:
        parent = node.parent
        key = _key(DEFINED, node)
        if key is not None:
            kind = DEFINED[key]
            if parent.type in WITH_BODY and parent.child_by_field_name("body") is None:
                return None  # `struct node *next` names a type, it does not declare one
            if parent.type == "variable_declarator":
                value = parent.child_by_field_name("value")
                above = parent.parent.type if parent.parent is not None else ""
                if above == "field_declaration":
                    return "attribute"
                if above == "spread_parameter":
                    return "parameter"
                if value is not None and value.type in FUNCTION_VALUES:
                    return "def"
            if parent.type in ("import_specifier", "use_as_clause") and key[1] in ("name", "path") \
                    and parent.child_by_field_name("alias") is not None:
                return None  # `import {name as other}`: the file's binding is `other`
            return kind
        if _key(THROUGH, node) is None:
            break
        node = parent
    # `this.name = v`, `s.name = v`: an attribute set, as Python's `self.name = v`.
    if _key(MEMBER, leaf) is not None and leaf.parent is not None:
        target = leaf.parent
        while target.parent is not None and target.parent.type == "expression_list":
            target = target.parent
        if _key(ASSIGNED, target) is not None:
            return "attribute"
    return None


def _reference_kind(leaf: Node) -> str:
    """How a reference uses the name: call, attribute, import, keyword or name."""
    if _key(KEYWORD, leaf) is not None:
        return "keyword"
    member = _key(MEMBER, leaf) is not None
    node = leaf
    while node.parent is not None and (_key(PATH, node) is not None or (node is leaf and member)):
        node = node.parent
    if _key(CALLEE, node) is not None:
        return "call"
    if _import_of(leaf):
        return "import"
    return "attribute" if member else "name"


def _import_of(leaf: Node) -> bool:
    node: Node | None = leaf.parent
    while node is not None:
        if node.type in ("import_statement", "import_declaration", "use_declaration", "import_spec"):
            return True
        if node.type in ("program", "source_file", "translation_unit", "statement_block", "block"):
            return False
        node = node.parent
    return False


def _identifiers(root: Node, name: bytes, source: bytes) -> list[Node]:
    """The identifier leaves spelled `name`, visiting only subtrees whose text holds `name`."""
    found = []
    cursor = root.walk()
    while True:
        node = cursor.node
        assert node is not None
        holds = source.find(name, node.start_byte, node.end_byte) != -1
        if holds and node.child_count == 0:
            if node.type.endswith("identifier") and node.text == name:
                found.append(node)
        elif holds and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return found


def _tree_occurrences(path: str, source: str, name: str) -> list[Occurrence] | None:
    data = treesitter.encode(source)
    tree = treesitter.parse(path, data)
    if tree is None:
        return None
    lines = source.split("\n")
    out = []
    for leaf in _identifiers(tree.root_node, name.encode(), data):
        kind = definition_kind(leaf)
        role: Role = "definition" if kind is not None else "reference"
        line = leaf.start_point.row + 1
        out.append(Occurrence(line, role, kind or _reference_kind(leaf), lines[line - 1].strip()))
    return _one_per_line(out)
