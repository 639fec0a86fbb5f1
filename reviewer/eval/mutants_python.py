"""Python mutator of `reviewer eval`: candidate defects and controls for one file, from the standard library's ast.

The interface is the one documented on `models.Mutant`: `language`, `parser_name`,
`parses`, `mutants`. Every candidate is an edit of the original text, never a
round trip through `ast.unparse`: only the source segment of the nodes changed is
replaced (found from `lineno/col_offset/end_lineno/end_col_offset`), so the rest of
the file, its comments and its line endings stay byte-identical and the diff shows
what a person would have written.

What every candidate promises (checked here before it is returned, and again by the tests):

* the new text parses;
* a planted kind changes the ast of the function it names, at a node that runs
  (not a docstring or comment, not under `if TYPE_CHECKING:` / `if False:`, not after
  a `return`/`raise`/`continue`/`break` in the same block);
* a control kind leaves behaviour unchanged: the ast of the function is identical,
  once the renamed local is mapped back (rename-local) or the new constant inlined
  back (extract-constant, whose new module line must parse as exactly `NAME = <that
  literal>`); reorder-imports checks that the two swapped lines parse, alone, as
  the same two statements in the other order;
* `start`/`end` are the changed lines of the new text, from a `difflib` line diff.

Checking a candidate parses only the function it edits (its lines, under an
`if 1:` when indented), not the whole file: the edit stays inside that compound
statement (or adds whole lines between top-level statements before it), so the
file parses when the statement does, and a file of 3,000 lines is not reparsed
for each of its candidates. The rest of the file being byte-identical, the
module's ast differs from the original only inside that function.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import keyword
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..symbols import parse as _parse
from .models import CONTROL_KINDS, CallSite, Mutant, Site

LANGUAGE = "Python"
PARSER = "ast (standard library)"

Callers = Callable[[str, str], Sequence[CallSite]]
Edit = tuple[int, int, str]
"""(start offset, end offset, replacement) in the original text."""

# A function yields at most one candidate of a kind (tried among PER_FUNCTION sites), and a
# file at most PER_FILE: the generator keeps one case per function and kind and spreads
# cases over files, so more candidates would only cost validation time.
PER_FUNCTION = 2
PER_FILE = 2
# Kinds whose edit leaves the function, so that each candidate costs a parse of the whole module.
PER_FILE_MODULE_EDITS = 2

_NEGATED_COMPARE: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Lt: ("<", ">="), ast.GtE: (">=", "<"), ast.Gt: (">", "<="), ast.LtE: ("<=", ">"),
    ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is"),
    ast.In: ("in", "not in"), ast.NotIn: ("not in", "in"),
}
# The boundary of a strict or inclusive comparison moved by one: the classic off-by-one.
_SHIFTED_BOUND: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
}
# Swapping the arguments of these does not change what they compute.
_SYMMETRIC_CALLS = frozenset({"max", "min", "print", "set", "frozenset", "hash", "id"})
# Methods whose two arguments can be exchanged without changing behaviour (only a failure's message).
_SYMMETRIC_METHODS = frozenset({"assertEqual", "assertNotEqual", "assertAlmostEqual", "assertNotAlmostEqual",
                                "assertCountEqual", "assertIs", "assertIsNot", "isclose", "union", "intersection",
                                "symmetric_difference"})
# Imports whose order can matter (monkey patching, backends chosen at import time).
_SIDE_EFFECT_WORDS = ("monkey", "patch", "setup", "gevent", "eventlet", "readline", "site", "matplotlib",
                      "conftest", "init", "register", "warnings", "faulthandler", "django", "environ")
# Opened resources: `open(...)`, `io.open(...)`, `path.open(...)`, `gzip.open(...)`.
_OPENERS = frozenset({"open"})
# Scopes of their own inside a function: their names are not the function's locals.
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# New parameters for stale-callers, with the annotation used when the signature is annotated.
_FRESH_PARAMETERS = (("strict", "bool"), ("limit", "int"), ("encoding", "str"), ("timeout", "float"),
                     ("options", "dict"), ("context", "object"))
_FRESH_SUFFIXES = ("value", "item", "current", "result")
# Parameters whose exchange may keep the meaning (`max(a, b)`-like): not "of different roles".
_INTERCHANGEABLE = frozenset(frozenset(p) for p in (
    ("a", "b"), ("x", "y"), ("i", "j"), ("m", "n"), ("u", "v"), ("p", "q"), ("s", "t"), ("left", "right"),
    ("lhs", "rhs"), ("first", "second"), ("this", "other"), ("one", "two")))
# The uses of a returned value that each return-contract change breaks (`CallSite.use`). A tuple
# is always true and never equal to what was returned; None or another shape fails where the
# value is read, while a truth test or a format of it still runs (and may well be right).
_VALUE_USES = frozenset({"assigned", "unpacked", "compared", "passed on", "attribute", "subscripted",
                         "iterated", "operand", "called", "with"})
_BROKEN_USES = {"tuple": _VALUE_USES | {"tested", "formatted"}, "none": _VALUE_USES, "shape": _VALUE_USES}
# Expressions that need no parentheses before `, None`.
_ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant, ast.List, ast.Dict, ast.Set,
          ast.ListComp, ast.DictComp, ast.SetComp)


def language(path: str) -> str | None:
    """"Python" for `.py` and `.pyi` files (stubs are counted; they hold nothing to mutate)."""
    return LANGUAGE if path.endswith((".py", ".pyi")) else None


def parser_name(language: str) -> str:
    return PARSER


def parses(path: str, text: str) -> bool:
    return _parse(text) is not None


CHECKS_PARSE = True
"""Every mutant returned parses (see the module docstring): `cases` need not parse its whole file again."""


def mutants(path: str, text: str, callers: Callers | None = None, tree: ast.Module | None = None) -> list[Mutant]:
    """Every candidate this file offers, in source order of the functions and a fixed order of kinds.

    `tree` is `text` already parsed, when the caller has it (it is only read).
    A file that does not parse, a stub (`.pyi`) and a file with a lone carriage
    return (ast counts it as a line break, git and the diff do not) give nothing.
    """
    if not path.endswith(".py") or "\r" in text.replace("\r\n", ""):
        return []
    if tree is None:
        tree = _parse(text)
    if tree is None:
        return []
    return _Mutator(path, _Source(text), tree, callers).run()


# ---------------------------------------------------------------------------- text

def _lines(text: str) -> list[str]:
    """`text` cut after each "\\n", as git counts lines (not `str.splitlines`, which also cuts at \\f, \\x1c...)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


class _Source:
    """The original text with line offsets, to turn ast positions (UTF-8 byte columns) into string offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = _lines(text)
        self.starts: list[int] = []
        at = 0
        for line in self.lines:
            self.starts.append(at)
            at += len(line)
        self.starts.append(at)
        self.eol = "\r\n" if "\r\n" in text else "\n"

    def offset(self, line: int, col: int) -> int:
        s = self.lines[line - 1] if line <= len(self.lines) else ""
        if not s.isascii():
            col = len(s.encode("utf-8")[:col].decode("utf-8", "ignore"))
        return self.starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                self.offset(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    def seg(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.text[a:b]

    def indent(self, line: int) -> str:
        s = self.lines[line - 1]
        return s[:len(s) - len(s.lstrip(" \t"))]

    def alone(self, node: ast.AST) -> bool:
        """Whether `node` has only blanks before it on its first line and at most a comment after it on its last."""
        a, b = self.span(node)
        before = self.text[self.starts[node.lineno - 1]:a]  # type: ignore[attr-defined]
        after = self.text[b:self.starts[node.end_lineno]].strip()  # type: ignore[attr-defined]
        return not before.strip() and (not after or after.startswith("#"))

    def line_range(self, first: int, last: int) -> tuple[int, int]:
        """Offsets of whole lines `first`..`last` (1-based, inclusive), line ends included."""
        return self.starts[first - 1], self.starts[last]


def _short(code: str, width: int = 40) -> str:
    one = " ".join(code.split())
    return one if len(one) <= width else one[:width - 1] + "…"


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


# ---------------------------------------------------------------------------- functions and live code

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class _Func:
    node: FunctionNode
    qualname: str
    index: int
    """Its place among the file's functions in source order (qualified names can repeat: property setters)."""
    top: bool
    """Defined at the top level of the module (so other files can import and call it)."""


def _functions(tree: ast.Module) -> list[_Func]:
    out: list[_Func] = []

    def visit(node: ast.AST, prefix: str, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                if not any(_decorator_name(d) == "overload" for d in child.decorator_list):  # a stub for type checkers
                    out.append(_Func(child, name, len(out), top))
                visit(child, name + ".", False)
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".", False)
            elif isinstance(child, ast.stmt | ast.ExceptHandler | ast.match_case):
                visit(child, prefix, top)

    visit(tree, "", True)
    return out


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""


def _dead_test(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:`, `if typing.TYPE_CHECKING:`, `if False:`, `if 0:`: a body that never runs."""
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return isinstance(test, ast.Constant) and not test.value and test.value is not None


def _live(func: FunctionNode) -> list[ast.AST]:
    """The nodes of `func`'s body that run: not its docstring, not dead blocks, not nested defs or f-strings.

    Nested functions and classes are their own `_Func`s. F-strings are left out
    because before Python 3.12 the positions of the nodes inside them are not
    reliable enough to edit by.
    """
    out: list[ast.AST] = []

    def block(stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if isinstance(stmt, ast.If) and _dead_test(stmt.test):
                block(stmt.orelse)
                continue
            node(stmt)
            if isinstance(stmt, ast.Return | ast.Raise | ast.Continue | ast.Break):
                break  # what follows in this block never runs

    def node(n: ast.AST) -> None:
        if isinstance(n, ast.JoinedStr | ast.pattern):
            return
        out.append(n)
        for name, value in ast.iter_fields(n):
            if name == "annotation":
                continue  # a local variable's annotation is never evaluated
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    block(value)
                else:
                    for item in value:
                        if isinstance(item, ast.AST):
                            node(item)
            elif isinstance(value, ast.AST):
                node(value)

    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    block(body)
    return out


def _in_scope_of(node: ast.AST, func: FunctionNode, parents: dict[int, ast.AST]) -> bool:
    """Whether `node` belongs to `func`'s own scope (not to a lambda or comprehension inside it)."""
    at = parents.get(id(node))
    while at is not None and at is not func:
        if isinstance(at, _SCOPES):
            return False
        at = parents.get(id(at))
    return True


def _spread(items: list, k: int) -> list:
    """At most `k` of `items`, evenly spaced, so a cap does not keep only the first ones."""
    if len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def _names_in(text: str) -> set[str]:
    """Every identifier-looking word of `text`: a fresh name must avoid them all (comments and strings included)."""
    separators = {ord(ch): " " for ch in set(text) if not (ch.isalnum() or ch == "_")}
    return set(text.translate(separators).split())


def _same(a: object, b: object) -> bool:
    """Whether two ast nodes are equal field by field (what comparing their `ast.dump` tells), stopping early."""
    if type(a) is not type(b):
        return False
    if isinstance(a, ast.AST):
        return all(_same(getattr(a, f, None), getattr(b, f, None)) for f in a._fields)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    return a == b


# ---------------------------------------------------------------------------- the mutator

@dataclass
class _Candidate:
    kind: str
    func: _Func
    edits: list[Edit]
    description: str
    renamed: tuple[str, str] | None = None
    """rename-local: (old, new)."""
    constant: tuple[str, object] | None = None
    """extract-constant: (NAME, value)."""
    sites: tuple[Site, ...] = ()


class _Mutator:
    def __init__(self, path: str, src: _Source, tree: ast.Module, callers: Callers | None) -> None:
        self.path, self.src, self.tree, self.callers = path, src, tree, callers
        self.words = _names_in(src.text)
        # Per function (by index), computed when a kind first needs them and shared with the others.
        self._live: dict[int, list[ast.AST]] = {}
        self._parents: dict[int, dict[int, ast.AST]] = {}
        self._scopes: dict[int, _Scope] = {}
        self._dumps: dict[int, str] = {}

    def live(self, f: _Func) -> list[ast.AST]:
        if f.index not in self._live:
            self._live[f.index] = _live(f.node)
        return self._live[f.index]

    def parents(self, f: _Func) -> dict[int, ast.AST]:
        """Child id -> parent among the function's live nodes (a statement of its body has none)."""
        if f.index not in self._parents:
            self._parents[f.index] = {id(child): parent for parent in self.live(f)
                                      for child in ast.iter_child_nodes(parent)}
        return self._parents[f.index]

    def scope(self, f: _Func, live: list[ast.AST]) -> _Scope:
        if f.index not in self._scopes:
            self._scopes[f.index] = _Scope(f.node, live, self.parents(f))
        return self._scopes[f.index]

    def dump(self, f: _Func) -> str:
        if f.index not in self._dumps:
            self._dumps[f.index] = ast.dump(f.node)
        return self._dumps[f.index]

    def run(self) -> list[Mutant]:
        makers: list[tuple[str, Callable[[_Func, list[ast.AST]], list[_Candidate]]]] = [
            ("inverted-condition", self.inverted_condition),
            ("off-by-one", self.off_by_one),
            ("swapped-arguments", self.swapped_arguments),
            ("removed-guard", self.removed_guard),
            ("wrong-variable", self.wrong_variable),
            ("swallowed-exception", self.swallowed_exception),
            ("resource-not-closed", self.resource_not_closed),
            ("changed-default", self.changed_default),
            ("stale-callers", self.stale_callers),
            ("rename-local", self.rename_local),
            ("extract-constant", self.extract_constant),
            ("reformat", self.reformat),
        ]
        # Functions are visited in an order fixed by their names' hashes, which scatters the
        # few kept per kind over the file, and a kind stops at its cap: a file of 300 functions
        # costs the functions needed, not all of them.
        funcs = sorted(_functions(self.tree), key=lambda f: hashlib.sha256(
            f"{f.qualname}#{f.index}".encode("utf-8", "surrogateescape")).digest())
        out: list[Mutant] = []
        for kind, make in makers:
            cap = PER_FILE_MODULE_EDITS if kind == "extract-constant" else PER_FILE
            kept = 0
            for f in funcs:
                if kept >= cap:
                    break
                if kind == "stale-callers" and not self.may_have_callers(f):
                    continue
                for cand in _spread(make(f, self.live(f)), PER_FUNCTION):
                    mutant = self.build(cand)
                    if mutant is not None:  # one per function: the generator keeps one per function and kind
                        out.append(mutant)
                        kept += 1
                        break
        out.extend(self.reorder_imports())
        return out

    # ------------------------------------------------------------------ building and checking

    def build(self, cand: _Candidate) -> Mutant | None:
        src, edits = self.src, sorted(cand.edits)
        for (_a, b, _r), (c, _d, _s) in zip(edits, edits[1:], strict=False):
            if c < b:
                return None  # overlapping edits
        pieces, at = [], 0
        for a, b, repl in edits:
            pieces.append(src.text[at:a])
            pieces.append(repl)
            at = b
        pieces.append(src.text[at:])
        new_text = "".join(pieces)
        if new_text == src.text:
            return None
        if not self.check(cand, new_text):
            return None
        span = _changed_lines(src, edits, new_text)
        if span is None:
            return None
        return Mutant(cand.kind, cand.func.qualname, span[0], span[1], cand.description, new_text, cand.sites)

    def check(self, cand: _Candidate, new_text: str) -> bool:
        """The promises of the module docstring for one candidate: it parses, and changes or keeps the ast."""
        if cand.constant is not None and not _assigns(min(cand.edits)[2], *cand.constant):
            return False
        new = self.reparse_function(cand.func, cand.edits, new_text)
        if new is None:
            return False
        if cand.renamed is not None:
            old_name, new_name = cand.renamed
            if any(isinstance(n, ast.Name) and n.id == old_name for n in ast.walk(new)):
                return False
            for n in ast.walk(new):
                if isinstance(n, ast.Name) and n.id == new_name:
                    n.id = old_name
        if cand.constant is not None:
            name, value = cand.constant
            new = _Inline(name, value).visit(new)
        if cand.kind in CONTROL_KINDS:
            return self.dump(cand.func) == ast.dump(new)
        return not _same(cand.func.node, new)

    def reparse_function(self, func: _Func, edits: list[Edit], new_text: str) -> FunctionNode | None:
        """The edited function, parsed alone from its lines of `new_text`; None when it does not parse.

        Edits are inside the function's lines, or whole lines before it
        (extract-constant's new line), which only move it.
        """
        src = self.src
        first, last = _first_line(func.node), func.node.end_lineno or func.node.lineno
        a, b = src.line_range(first, last)
        if any(e[1] > b or e[0] < a < e[1] for e in edits):
            return None
        before = sum(len(r) - (e - s) for s, e, r in edits if e <= a and s < a or s == e < a)
        grown = sum(len(r) - (e - s) for s, e, r in edits)
        segment = new_text[a + before:b + grown]
        indented = bool(src.indent(first))
        tree = _parse(("if 1:\n" if indented else "") + segment)
        if tree is None or not tree.body:
            return None
        stmt = tree.body[0]
        if indented:
            stmt = stmt.body[0] if isinstance(stmt, ast.If) and stmt.body else stmt
        return stmt if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) else None

    # ------------------------------------------------------------------ planted kinds

    def inverted_condition(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        parents = self.parents(f)
        for n in live:
            if isinstance(n, ast.Compare) and len(n.ops) == 1:
                words = _NEGATED_COMPARE.get(type(n.ops[0]))
                edit = words and self.operator_edit(n.left, n.comparators[0], words[0], words[1])
                if words and edit:
                    out.append(_Candidate("inverted-condition", f, [edit],
                                          f"`{words[0]}` became `{words[1]}` in `{f.qualname}`"))
            elif isinstance(n, ast.BoolOp) and len(n.values) == 2 \
                    and not isinstance(parents.get(id(n)), ast.BoolOp):
                old_op, new_op = ("and", "or") if isinstance(n.op, ast.And) else ("or", "and")
                edit = self.operator_edit(n.values[0], n.values[1], old_op, new_op)
                if edit:
                    out.append(_Candidate("inverted-condition", f, [edit],
                                          f"`{old_op}` became `{new_op}` in `{f.qualname}`"))
            elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
                a, b = self.src.span(n)
                text = self.src.text[a:b]
                if text.startswith("not") and "\n" not in text:
                    rest = text[3:].lstrip()
                    out.append(_Candidate("inverted-condition", f, [(a, b, rest)],
                                          f"`{_short(text)}` became `{_short(rest)}` in `{f.qualname}`"))
            elif isinstance(n, ast.If | ast.While) and not isinstance(n.test, ast.Compare | ast.BoolOp | ast.UnaryOp):
                a, b = self.src.span(n.test)
                text = self.src.text[a:b]
                if "\n" in text:
                    continue
                atom = isinstance(n.test, ast.Name | ast.Attribute | ast.Call | ast.Subscript)
                new = f"not {text}" if atom else f"not ({text})"
                out.append(_Candidate("inverted-condition", f, [(a, b, new)],
                                      f"`{_short(text)}` became `{_short(new)}` in `{f.qualname}`"))
        return out

    def operator_edit(self, left: ast.AST, right: ast.AST, old: str, new: str) -> Edit | None:
        """Replace the operator between `left` and `right` when only it, blanks and parentheses lie between.

        The parentheses and spacing around it are kept; a comment or a line
        break between the operands makes the site too irregular to edit by hand.
        """
        a = self.src.span(left)[1]
        between = self.src.text[a:self.src.span(right)[0]]
        if "\n" in between or "#" in between or "\\" in between:
            return None
        word = between.strip(" \t()")
        if not word or " ".join(word.split()) != old:
            return None
        at = a + between.index(word)
        return (at, at + len(word), new)

    def off_by_one(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        for n in live:
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "range" \
                    and 1 <= len(n.args) <= 2 and not n.keywords:
                bound = n.args[-1]
                edit = self.shift(bound, -1)
                if edit:
                    out.append(_Candidate("off-by-one", f, [edit[0]],
                                          f"the bound of `range` moved by one (`{edit[1]}`) in `{f.qualname}`"))
            elif isinstance(n, ast.Slice):
                for part in (n.lower, n.upper):
                    edit = self.shift(part, +1) if part is not None else None
                    if edit:
                        out.append(_Candidate("off-by-one", f, [edit[0]],
                                              f"a slice bound moved by one (`{edit[1]}`) in `{f.qualname}`"))
                        break
            elif isinstance(n, ast.Subscript) and _int_literal(n.slice) is not None:
                edit = self.shift(n.slice, +1)
                if edit:
                    out.append(_Candidate("off-by-one", f, [edit[0]],
                                          f"an index moved by one (`{edit[1]}`) in `{f.qualname}`"))
            elif isinstance(n, ast.Compare) and len(n.ops) == 1:
                right = n.comparators[0]
                if _int_literal(right) is not None:
                    edit = self.shift(right, +1)
                    if edit:
                        out.append(_Candidate("off-by-one", f, [edit[0]],
                                              f"a compared bound moved by one (`{edit[1]}`) in `{f.qualname}`"))
                else:
                    words = _SHIFTED_BOUND.get(type(n.ops[0]))
                    op_edit = words and self.operator_edit(n.left, right, words[0], words[1])
                    if words and op_edit:
                        out.append(_Candidate("off-by-one", f, [op_edit],
                                              f"`{words[0]}` became `{words[1]}` in `{f.qualname}`"))
        return out

    def shift(self, node: ast.expr, by: int) -> tuple[Edit, str] | None:
        """`node` moved by one: an integer literal becomes the next (or previous) one, a name gets `+ 1`/`- 1`."""
        a, b = self.src.span(node)
        text = self.src.text[a:b]
        if "\n" in text:
            return None
        value = _int_literal(node)
        if value is not None:
            # A negative index counts from the end: `-1` moves to `-2` (to `0` would empty a slice,
            # not shift it); a bound at 0 can only grow.
            new = str(value - 1 if value < 0 else value + by if value + by >= 0 else value + 1)
        elif isinstance(node, ast.Name | ast.Attribute | ast.Call | ast.Subscript):
            new = f"{text} {'+' if by > 0 else '-'} 1"
        else:
            return None
        return (a, b, new), f"{text}` -> `{new}"

    def swapped_arguments(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        for n in live:
            if not isinstance(n, ast.Call) or len(n.args) < 2:
                continue
            if (isinstance(n.func, ast.Name) and n.func.id in _SYMMETRIC_CALLS
                    or isinstance(n.func, ast.Attribute) and n.func.attr in _SYMMETRIC_METHODS):
                continue
            for x, y in zip(n.args, n.args[1:], strict=False):
                if isinstance(x, ast.Starred) or isinstance(y, ast.Starred) or ast.dump(x) == ast.dump(y):
                    continue
                (xa, xb), (ya, yb) = self.src.span(x), self.src.span(y)
                sx, sy = self.src.text[xa:xb], self.src.text[ya:yb]
                callee = _short(self.src.seg(n.func), 30)
                out.append(_Candidate("swapped-arguments", f, [(xa, xb, sy), (ya, yb, sx)],
                                      f"the arguments `{_short(sx, 20)}` and `{_short(sy, 20)}` of `{callee}` "
                                      f"swapped in `{f.qualname}`"))
                break
        return out

    def removed_guard(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        parents = self.parents(f)
        for n in live:
            if not isinstance(n, ast.If) or n.orelse or len(n.body) != 1 \
                    or not isinstance(n.body[0], ast.Return | ast.Raise) or not _is_guard_test(n.test):
                continue
            siblings = _block_of(parents.get(id(n), f.node), n)
            if siblings is None or len(siblings) < 2 or not self.src.alone(n):
                continue
            a, b = self.src.line_range(n.lineno, n.end_lineno or n.lineno)
            test = _short(self.src.seg(n.test))
            action = "return" if isinstance(n.body[0], ast.Return) else "raise"
            out.append(_Candidate("removed-guard", f, [(a, b, "")],
                                  f"the guard `if {test}: {action} ...` removed from `{f.qualname}`"))
        return out

    def wrong_variable(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        scope = self.scope(f, live)
        out = []
        for load in scope.loads:
            name = load.id
            if name not in scope.bound or name in ("self", "cls"):
                continue
            at = (load.lineno, load.col_offset)
            if scope.bound[name] >= at:
                continue
            others = [o for o, pos in scope.bound.items()
                      if o != name and pos < at and o not in ("self", "cls") and o not in scope.unsafe]
            if not others:
                continue
            tag = scope.tags.get(name)
            same = [o for o in others if tag is not None and scope.tags.get(o) == tag]
            pool = same or [o for o in others if tag is None or scope.tags.get(o) is None]
            if not pool:
                continue
            other = max(pool, key=lambda o: (scope.bound[o], o))  # the most recently bound: the likeliest slip
            a, b = self.src.span(load)
            out.append(_Candidate("wrong-variable", f, [(a, b, other)],
                                  f"`{name}` read as `{other}` in `{f.qualname}`"))
        return out

    def swallowed_exception(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        for n in live:
            if not isinstance(n, ast.ExceptHandler) or not n.body:
                continue
            if len(n.body) == 1 and isinstance(n.body[0], ast.Pass):
                continue
            narrow = n.type is not None and not (isinstance(n.type, ast.Name)
                                                 and n.type.id in ("Exception", "BaseException"))
            first, last = n.body[0], n.body[-1]
            if narrow and n.type is not None and first.lineno > n.lineno and self.src.alone(first) \
                    and self.src.alone(last):
                ta, tb = self.src.span(n.type)
                a, b = self.src.line_range(_first_line(first), last.end_lineno or last.lineno)
                pad = self.src.indent(first.lineno)
                caught = _short(self.src.seg(n.type), 30)
                out.append(_Candidate("swallowed-exception", f, [(ta, tb, "Exception"), (a, b, f"{pad}pass{self.src.eol}")],
                                      f"`except {caught}` became `except Exception: pass` in `{f.qualname}`"))
                continue
            raises = [s for s in n.body if isinstance(s, ast.Raise)]
            if raises and self.src.alone(raises[0]):
                r = raises[0]
                a, b = self.src.line_range(r.lineno, r.end_lineno or r.lineno)
                repl = f"{self.src.indent(r.lineno)}pass{self.src.eol}" if len(n.body) == 1 else ""
                out.append(_Candidate("swallowed-exception", f, [(a, b, repl)],
                                      f"`{_short(self.src.seg(r))}` dropped from an `except` in `{f.qualname}`"))
        return out

    def resource_not_closed(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        for n in live:
            if not isinstance(n, ast.With) or len(n.items) != 1:
                continue
            item = n.items[0]
            call, target = item.context_expr, item.optional_vars
            if not isinstance(call, ast.Call) or not isinstance(target, ast.Name):
                continue
            callee = call.func
            if not (isinstance(callee, ast.Name) and callee.id in _OPENERS
                    or isinstance(callee, ast.Attribute) and callee.attr in _OPENERS):
                continue
            header_last = target.end_lineno or target.lineno
            if _first_line(n.body[0]) <= header_last or not self.src.alone(n):
                continue
            with_a = self.src.span(n)[0]
            end_of_header = self.src.starts[header_last]
            if self.src.text[with_a:self.src.span(call)[0]].strip() != "with" \
                    or self.src.text[self.src.span(target)[1]:end_of_header].strip() != ":":
                continue
            outer, inner = self.src.indent(n.lineno), self.src.indent(_first_line(n.body[0]))
            if not inner.startswith(outer) or inner == outer:
                continue
            # The body moves out one level; lines that start inside a multi-line string keep
            # their text, and continuation lines indented less than the body are left alone.
            in_strings = _string_interior_lines(n)
            pieces = [f"{outer}{target.id} = {self.src.seg(call)}{self.src.eol}"]
            for line in range(header_last + 1, (n.end_lineno or n.lineno) + 1):
                s = self.src.lines[line - 1]
                if line not in in_strings and s.startswith(inner):
                    s = outer + s[len(inner):]
                pieces.append(s)
            a, b = self.src.line_range(n.lineno, n.end_lineno or n.lineno)
            out.append(_Candidate("resource-not-closed", f, [(a, b, "".join(pieces))],
                                  f"`with {_short(self.src.seg(call), 30)} as {target.id}` became a plain "
                                  f"assignment, never closed, in `{f.qualname}`"))
        return out

    def changed_default(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        args = f.node.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=False))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=False) if d is not None]
        # A default the body never reads changes nothing when changed: not a planted defect.
        read = {n.id for stmt in f.node.body for n in ast.walk(stmt)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        for arg, default in pairs:
            if arg.arg not in read:
                continue
            text = self.src.seg(default)
            new: str | None = None
            if isinstance(default, ast.Constant) and isinstance(default.value, bool):
                new = str(not default.value)
            elif _int_literal(default) is not None:
                value = _int_literal(default)
                assert value is not None
                new = str(value + 1) if value != 1 else "0"
            elif isinstance(default, ast.Constant) and type(default.value) is float:
                new = repr(default.value + 1)
            elif isinstance(default, ast.Constant) and default.value is None and arg.annotation is not None:
                new = _literal_for(arg.annotation)
            if new is None or "\n" in text:
                continue
            a, b = self.src.span(default)
            out.append(_Candidate("changed-default", f, [(a, b, new)],
                                  f"the default of `{arg.arg}` became `{new}` (was `{_short(text, 20)}`) "
                                  f"in `{f.qualname}`"))
        return out

    def may_have_callers(self, f: _Func) -> bool:
        """Top-level and undecorated (a decorator can change what a call takes or gives), with callers to look up."""
        return f.top and not f.node.decorator_list and self.callers is not None

    def stale_callers(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        """The function's signature or return contract changed; its calls in other files left as they were.

        Five forms, each kept only with the calls it breaks: a new required
        positional parameter (every plain call), two positional parameters
        swapped in the signature (calls passing one of them by position), and
        a changed return contract — a tuple where a value was, None on one
        path, a dict returned as a list or a tuple or list as a dict (calls
        whose value the calling code uses: `CallSite.use`). The forms are
        tried in an order turned by a hash of the function's name, so that
        the functions of a repository spread over them.
        """
        if not self.may_have_callers(f) or self.callers is None:
            return []
        calls = tuple(self.callers(f.node.name, self.path))
        if not calls:
            return []
        forms = [self.new_parameter, self.swapped_parameters, self.tuple_return, self.none_return,
                 self.reshaped_return]
        turn = hashlib.sha256(f"form#{f.qualname}".encode("utf-8", "surrogateescape")).digest()[0] % len(forms)
        out = []
        for form in forms[turn:] + forms[:turn]:
            cand = form(f, live, calls)
            if cand is not None:
                out.append(cand)
        return out

    def new_parameter(self, f: _Func, live: list[ast.AST], calls: tuple[CallSite, ...]) -> _Candidate | None:
        """A new required positional parameter: every plain call now misses it or binds it wrongly.

        Not with `*args`, where a new positional would silently take an argument meant for it.
        """
        node = f.node
        positional = node.args.posonlyargs + node.args.args
        sites = _sites(c for c in calls if not c.starred)
        if node.args.vararg is not None or not positional or not sites:
            return None
        required = len(positional) - len(node.args.defaults)
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {a.arg for a in ast.walk(node)
                                                                            if isinstance(a, ast.arg)}
        picked = next(((p, t) for p, t in _FRESH_PARAMETERS if p not in names), None)
        if picked is None:
            return None
        fresh = picked[0]
        # An annotated signature gets an annotated parameter, as its author would have written it.
        param = f"{fresh}: {picked[1]}" if any(a.annotation is not None for a in positional) else fresh
        if required > 0:
            end = self.src.span(positional[required - 1])[1]
            edit = (end, end, f", {param}")
        else:
            start = self.src.span(positional[0])[0]
            edit = (start, start, f"{param}, ")
        return _Candidate("stale-callers", f, [edit],
                          f"`{f.qualname}` gained a required parameter `{fresh}`; {_calls(sites)} in other files "
                          f"not updated", sites=sites)

    def swapped_parameters(self, f: _Func, live: list[ast.AST], calls: tuple[CallSite, ...]) -> _Candidate | None:
        """Two adjacent positional parameters of different roles trade places in the signature only.

        Each keeps its annotation and default; both have a default or neither
        does, and both sit on the same side of a `/`. The calls passing the
        first of them by position now bind it, and what follows, to the other.
        """
        args = f.node.args
        for group, offset in ((args.posonlyargs, 0), (args.args, len(args.posonlyargs))):
            first_default = len(args.posonlyargs) + len(args.args) - len(args.defaults)
            for k, (x, y) in enumerate(zip(group, group[1:], strict=False)):
                i = offset + k
                stems = (x.arg.rstrip("0123456789_"), y.arg.rstrip("0123456789_"))
                if (i < first_default) != (i + 1 < first_default) or x.arg in ("self", "cls") \
                        or frozenset(stems) in _INTERCHANGEABLE or stems[0] == stems[1]:
                    continue
                sites = _sites(c for c in calls if not c.starred and c.positional > i)
                if not sites:
                    continue
                (xa, xb), (ya, yb) = self.param_span(f, i, first_default), self.param_span(f, i + 1, first_default)
                between = self.src.text[xb:ya]
                if between.strip() != "," or "\n" in self.src.text[xa:xb] + self.src.text[ya:yb]:
                    continue
                sx, sy = self.src.text[xa:xb], self.src.text[ya:yb]
                return _Candidate("stale-callers", f, [(xa, xb, sy), (ya, yb, sx)],
                                  f"the parameters `{x.arg}` and `{y.arg}` of `{f.qualname}` swapped places in its "
                                  f"signature; {_calls(sites, 'passes', 'pass')} them by position as before",
                                  sites=sites)
        return None

    def param_span(self, f: _Func, index: int, first_default: int) -> tuple[int, int]:
        """The text of the function's positional parameter `index` with its annotation and default."""
        args = f.node.args
        a, b = self.src.span((args.posonlyargs + args.args)[index])
        if index >= first_default:
            b = self.src.span(args.defaults[index - first_default])[1]
        return a, b

    def value_returns(self, f: _Func, live: list[ast.AST]) -> list[ast.Return] | None:
        """The function's `return <value>` statements that run, or None when it is a generator or has none."""
        if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in live):
            return None
        returns = [n for n in live if isinstance(n, ast.Return) and n.value is not None
                   and not (isinstance(n.value, ast.Constant) and n.value.value is None)]
        return returns or None

    def tuple_return(self, f: _Func, live: list[ast.AST], calls: tuple[CallSite, ...]) -> _Candidate | None:
        """`return x` -> `return x, None` at every return of a value: a tuple where the value was."""
        returns = self.value_returns(f, live)
        sites = _sites(c for c in calls if c.use in _BROKEN_USES["tuple"])
        if returns is None or not sites:
            return None
        edits: list[Edit] = []
        for r in returns:
            assert r.value is not None
            text = self.src.seg(r.value)
            a, b = self.src.span(r.value)
            wrapped = text if isinstance(r.value, _ATOMS) or _parenthesized(r.value, text) else f"({text})"
            edits.append((a, b, f"{wrapped}, None"))
        shown = min((e[2][:-len(", None")] for e in edits), key=lambda t: (len(t), t))  # the plainest value
        return _Candidate("stale-callers", f, edits,
                          f"`{f.qualname}` now returns a tuple `({_short(shown, 32)}, None)`; "
                          f"{_calls(sites, 'uses', 'use')} its value as before", sites=sites)

    def none_return(self, f: _Func, live: list[ast.AST], calls: tuple[CallSite, ...]) -> _Candidate | None:
        """One early `return <value>` of a function that never returned None made `return None`."""
        returns = self.value_returns(f, live)
        body = f.node.body
        if returns is None or len(returns) < 2 or not isinstance(body[-1], ast.Return | ast.Raise):
            return None
        if any(isinstance(n, ast.Return) and n not in returns for n in live):
            return None  # it already returns None somewhere: its callers may expect it
        sites = _sites(c for c in calls if c.use in _BROKEN_USES["none"])
        early = next((r for r in returns if r is not body[-1]), None)
        if not sites or early is None or early.value is None:
            return None
        a, b = self.src.span(early.value)
        was = _short(self.src.seg(early.value), 30)
        return _Candidate("stale-callers", f, [(a, b, "None")],
                          f"`{f.qualname}` now returns None where it returned `{was}`; "
                          f"{_calls(sites, 'uses', 'use')} its value as before", sites=sites)

    def reshaped_return(self, f: _Func, live: list[ast.AST], calls: tuple[CallSite, ...]) -> _Candidate | None:
        """Every returned dict display becomes the list of its values; a tuple or list of names, a dict of them."""
        returns = self.value_returns(f, live)
        sites = _sites(c for c in calls if c.use in _BROKEN_USES["shape"])
        if returns is None or not sites or any(r.value is None or "#" in self.src.seg(r.value) for r in returns):
            return None
        values = [r.value for r in returns if r.value is not None]
        edits: list[Edit] = []
        if all(isinstance(v, ast.Dict) and len(v.keys) >= 2 and all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) for k in v.keys) for v in values):
            for v in values:
                assert isinstance(v, ast.Dict)
                a, b = self.src.span(v)
                edits.append((a, b, "[" + ", ".join(self.src.seg(x) for x in v.values) + "]"))
            shape, was = "a list", "a dict"
        elif all(isinstance(v, ast.Tuple | ast.List) and len(v.elts) >= 2
                 and all(isinstance(e, ast.Name) for e in v.elts) for v in values):
            for v in values:
                assert isinstance(v, ast.Tuple | ast.List)
                a, b = self.src.span(v)
                names = [e.id for e in v.elts if isinstance(e, ast.Name)]
                edits.append((a, b, "{" + ", ".join(f'"{n}": {n}' for n in names) + "}"))
            shape, was = "a dict", "a tuple" if isinstance(values[0], ast.Tuple) else "a list"
        else:
            return None
        return _Candidate("stale-callers", f, edits,
                          f"`{f.qualname}` now returns {shape} `{_short(edits[0][2], 30)}` where it returned "
                          f"{was}; {_calls(sites, 'uses', 'use')} its value as before", sites=sites)

    # ------------------------------------------------------------------ controls

    def rename_local(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        scope = self.scope(f, live)
        out = []
        for name in sorted(scope.bound, key=lambda n: (scope.bound[n], n)):
            if name in scope.params or name in scope.unsafe or name in scope.nested or scope.dynamic:
                continue
            fresh = next((f"{name}_{s}" for s in _FRESH_SUFFIXES if f"{name}_{s}" not in self.words), None)
            if fresh is None:
                continue
            edits = []
            for n in scope.every_name.get(name, []):
                a, b = self.src.span(n)
                edits.append((a, b, fresh))
            out.append(_Candidate("rename-local", f, edits, f"the local `{name}` renamed `{fresh}` in `{f.qualname}`",
                                  renamed=(name, fresh)))
        return out

    def extract_constant(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        """A literal of the function moved to a new module constant, inserted after the imports.

        Behaviour is kept by construction: the name is fresh in the whole file
        (so nothing binds or shadows it), it is assigned at the top of the
        module before any definition runs, and a literal is immutable; `check`
        inlines it back and compares the function's ast.
        """
        where = self.constant_line()
        if where is None:
            return []
        parents = self.parents(f)
        out = []
        for n in live:
            if not isinstance(n, ast.Constant) or not _extractable(n.value):
                continue
            parent = parents.get(id(n))
            if isinstance(parent, ast.Expr | ast.FormattedValue | ast.JoinedStr | ast.AnnAssign | ast.arg) \
                    or parent is None:
                continue
            if isinstance(parent, ast.UnaryOp | ast.Subscript) and isinstance(parents.get(id(parent)), ast.AnnAssign):
                continue
            text = self.src.seg(n)
            if "\n" in text:
                continue
            name = _constant_name(n.value)
            if name is None or name in self.words:
                continue
            a, b = self.src.span(n)
            at = self.src.starts[where - 1]
            lead = self.src.eol if where > 1 and self.src.lines[where - 2].strip() else ""
            follow = self.src.eol if where <= len(self.src.lines) and self.src.lines[where - 1].strip() else ""
            insert = f"{lead}{name} = {text}{self.src.eol}{follow}"
            out.append(_Candidate("extract-constant", f, [(at, at, insert), (a, b, name)],
                                  f"the literal `{_short(text, 30)}` of `{f.qualname}` moved to a constant `{name}`",
                                  constant=(name, n.value)))
        return out

    def constant_line(self) -> int | None:
        """The line a new module constant goes on: after the docstring, `__future__` and the leading imports."""
        body = self.tree.body
        if not body:
            return None
        last: ast.stmt | None = None
        for i, stmt in enumerate(body):
            docstring = i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str)
            if docstring or isinstance(stmt, ast.Import | ast.ImportFrom):
                last = stmt
                continue
            break
        if last is None:
            first = body[0]
            return _first_line(first) if self.src.alone(first) else None
        if not self.src.alone(last) or last is body[-1] and not self.src.text.endswith("\n"):
            return None
        return (last.end_lineno or last.lineno) + 1

    def reformat(self, f: _Func, live: list[ast.AST]) -> list[_Candidate]:
        out = []
        for n in live:
            edit = self.wrap_call(n) if isinstance(n, ast.Call) else None
            if edit:
                out.append(_Candidate("reformat", f, [edit], f"a call's arguments put one per line in `{f.qualname}`"))
        blocks = [b for b in live if isinstance(b, ast.stmt)]
        for stmt in [f.node, *blocks]:
            for field in ("body", "orelse", "finalbody"):
                stmts = getattr(stmt, field, None)
                if not isinstance(stmts, list) or len(stmts) < 2:
                    continue
                for prev, nxt in zip(stmts, stmts[1:], strict=False):
                    gap = range((prev.end_lineno or prev.lineno) + 1, _first_line(nxt))
                    blank = [line for line in gap if not self.src.lines[line - 1].strip()]
                    if blank:
                        a, b = self.src.line_range(blank[0], blank[0])
                        out.append(_Candidate("reformat", f, [(a, b, "")],
                                              f"a blank line removed in `{f.qualname}`"))
                    elif self.src.alone(nxt) and not gap:
                        at = self.src.starts[_first_line(nxt) - 1]
                        out.append(_Candidate("reformat", f, [(at, at, self.src.eol)],
                                              f"a blank line added in `{f.qualname}`"))
        return out

    def wrap_call(self, call: ast.Call) -> Edit | None:
        """The call's arguments one per line, with a trailing comma, when it sits on one long line."""
        if call.lineno != call.end_lineno or len(self.src.lines[call.lineno - 1]) < 60:
            return None
        args: list[ast.expr | ast.keyword] = sorted([*call.args, *call.keywords], key=lambda a: (a.lineno, a.col_offset))
        if len(args) < 2 or any(isinstance(a, ast.GeneratorExp) for a in args):
            return None
        a, b = self.src.span(call)
        spans = [self.src.span(x) for x in args]
        head = self.src.text[a:spans[0][0]]
        if not head.rstrip().endswith("("):
            return None
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            if self.src.text[end:start].strip() != ",":
                return None
        tail = self.src.text[spans[-1][1]:b].strip()
        if tail not in (")", ",)"):
            return None
        pad = self.src.indent(call.lineno)
        step = "\t" if pad.startswith("\t") else "    "
        eol = self.src.eol
        inner = "".join(f"{pad}{step}{self.src.text[s:e]},{eol}" for s, e in spans)
        return (a, b, f"{head.rstrip()}{eol}{inner}{pad})")

    def reorder_imports(self) -> list[Mutant]:
        """Two adjacent one-line top-level imports swapped, when neither can depend on the other's side effects."""
        body = self.tree.body
        found: list[Mutant] = []
        for x, y in zip(body, body[1:], strict=False):
            if len(found) >= PER_FILE_MODULE_EDITS:
                break
            if not (_plain_import(x) and _plain_import(y)) or y.lineno != (x.end_lineno or 0) + 1:
                continue
            if x.lineno != x.end_lineno or y.lineno != y.end_lineno or not self.src.alone(x) or not self.src.alone(y):
                continue
            if _bound_names(x) & _bound_names(y):
                continue
            xa, xb = self.src.line_range(x.lineno, x.lineno)
            ya, yb = self.src.line_range(y.lineno, y.lineno)
            lx, ly = self.src.text[xa:xb], self.src.text[ya:yb]
            if not ly.endswith("\n"):
                continue
            # Two whole one-line statements at the top level trade places and nothing else moves,
            # so the module's ast is the original one with them swapped back when the two lines
            # parse, alone, as the same two statements in the other order.
            pair = _parse(ly + lx)
            if pair is None or len(pair.body) != 2 or not (_same(pair.body[0], y) and _same(pair.body[1], x)):
                continue
            new_text = self.src.text[:xa] + ly + lx + self.src.text[yb:]
            span = _changed_lines(self.src, [(xa, yb, ly + lx)], new_text)
            if span is None:
                continue
            desc = f"`{_short(self.src.seg(x), 30)}` and `{_short(self.src.seg(y), 30)}` swapped"
            found.append(Mutant("reorder-imports", "<module>", span[0], span[1], desc, new_text))
        return found


# ---------------------------------------------------------------------------- helpers

class _Scope:
    """The locals of one function: where each is first bound, what it looks like, which are unsafe to touch."""

    def __init__(self, func: FunctionNode, live: list[ast.AST], parents: dict[int, ast.AST]) -> None:
        self.bound: dict[str, tuple[int, int]] = {}
        self.tags: dict[str, str | None] = {}
        self.params: set[str] = set()
        self.unsafe: set[str] = set()
        """Bound in ways a Name edit cannot follow: global, nonlocal, import, except-as, def, class, match."""
        self.nested: set[str] = set()
        """Named anywhere inside a nested scope or an f-string of the function."""
        self.loads: list[ast.Name] = []
        self.every_name: dict[str, list[ast.Name]] = {}
        """Every `Name` node of the body by identifier, dead code and nested scopes included."""
        self.dynamic = False
        """The function calls locals(), vars(), eval() or exec(): renaming a local could change what they see."""
        a = func.args
        start = (func.lineno, -1)
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]:
            self.bound[arg.arg] = start
            self.params.add(arg.arg)
            self.tags[arg.arg] = ast.dump(arg.annotation) if arg.annotation is not None else "param"
        live_ids = {id(n) for n in live}
        for stmt in func.body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name):
                    self.every_name.setdefault(n.id, []).append(n)
                elif isinstance(n, _SCOPES) or isinstance(n, ast.JoinedStr):
                    for inner in ast.walk(n):
                        if isinstance(inner, ast.Name):
                            self.nested.add(inner.id)
                        elif isinstance(inner, ast.arg):
                            self.nested.add(inner.arg)
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        self.unsafe.add(n.name)
                elif isinstance(n, ast.Global | ast.Nonlocal):
                    self.unsafe.update(n.names)
                elif isinstance(n, ast.Import | ast.ImportFrom):
                    self.unsafe.update(_bound_names(n))
                elif isinstance(n, ast.ExceptHandler) and n.name:
                    self.unsafe.add(n.name)
                elif isinstance(n, ast.MatchAs | ast.MatchStar) and n.name:
                    self.unsafe.add(n.name)
                elif isinstance(n, ast.MatchMapping) and n.rest:
                    self.unsafe.add(n.rest)
                elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) \
                        and n.func.id in ("locals", "vars", "eval", "exec"):
                    self.dynamic = True
        for n in live:
            if not isinstance(n, ast.Name) or not _in_scope_of(n, func, parents):
                continue
            if isinstance(n.ctx, ast.Store):
                parent = parents.get(id(n))
                stmt_of = parent
                while stmt_of is not None and isinstance(stmt_of, ast.Tuple | ast.List | ast.Starred):
                    stmt_of = parents.get(id(stmt_of))
                ends_at = stmt_of if isinstance(stmt_of, ast.Assign | ast.AnnAssign | ast.AugAssign) else n
                pos = (ends_at.end_lineno or ends_at.lineno, ends_at.end_col_offset or 0)
                if n.id not in self.bound or pos < self.bound[n.id]:
                    self.bound[n.id] = pos
                tag = _value_tag(stmt_of.value) if isinstance(stmt_of, ast.Assign) and stmt_of.value else None
                if n.id in self.tags and self.tags[n.id] != tag:
                    self.tags[n.id] = None
                else:
                    self.tags[n.id] = tag
            elif isinstance(n.ctx, ast.Load) and id(n) in live_ids:
                parent = parents.get(id(n))
                if isinstance(parent, ast.Call) and parent.func is n:
                    continue
                self.loads.append(n)
        for name in self.unsafe:
            self.bound.pop(name, None)


def _sites(calls: Iterable[CallSite]) -> tuple[Site, ...]:
    """The lines of `calls`, once each, in order."""
    return tuple(sorted({c.site for c in calls}, key=lambda s: (s.path, s.line)))


def _calls(sites: tuple[Site, ...], one: str = "", many: str = "") -> str:
    """"3 calls", or with a verb: "1 call in other files uses", "3 calls in other files use"."""
    if not one:
        return f"{len(sites)} call{'s' if len(sites) != 1 else ''}"
    return f"1 call in other files {one}" if len(sites) == 1 else f"{len(sites)} calls in other files {many}"


def _parenthesized(node: ast.expr, text: str) -> bool:
    """Whether `text`, the source of a tuple or another expression, is already wrapped in its own parentheses."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    try:
        inner = ast.parse(text[1:-1].strip(), mode="eval").body
    except SyntaxError:
        return False  # `(a), (b)`: the parentheses belong to the elements
    return _same(inner, node)


def _value_tag(value: ast.expr) -> str | None:
    if isinstance(value, ast.Constant):
        return type(value.value).__name__
    if isinstance(value, ast.List | ast.Dict | ast.Set | ast.Tuple):
        return type(value).__name__
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return "call:" + value.func.id
    return None


def _int_literal(node: ast.AST | None) -> int | None:
    """The value of an integer literal (`3`, `-1`), not a bool; None for anything else."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int:
        return -node.operand.value
    return None


def _is_guard_test(test: ast.expr) -> bool:
    """`x is None`, `x is not None`, `not x`: the tests of an early-exit guard."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Is | ast.IsNot):
        right = test.comparators[0]
        return isinstance(right, ast.Constant) and right.value is None
    return isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) \
        and isinstance(test.operand, ast.Name | ast.Attribute)


def _block_of(parent: ast.AST | None, stmt: ast.stmt) -> list[ast.stmt] | None:
    if parent is None:
        return None
    for _name, value in ast.iter_fields(parent):
        if isinstance(value, list) and any(v is stmt for v in value):
            return value
    return None


def _string_interior_lines(node: ast.AST) -> set[int]:
    """Lines that begin inside a multi-line string literal: re-indenting them would change the string."""
    out: set[int] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Constant | ast.JoinedStr) and (n.end_lineno or n.lineno) > n.lineno:
            out.update(range(n.lineno + 1, (n.end_lineno or n.lineno) + 1))
    return out


def _literal_for(annotation: ast.expr) -> str | None:
    """A plausible non-None default for an `X | None` / `Optional[X]` annotation of a simple type."""
    names = {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}
    names |= {n.value for n in ast.walk(annotation) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for name, literal in (("bool", "False"), ("int", "0"), ("float", "0.0"), ("str", '""')):
        if name in names:
            return literal
    return None


def _extractable(value: object) -> bool:
    """Literals worth a named constant: strings of a few characters, numbers other than 0, 1, 2."""
    if isinstance(value, str):
        return 3 <= len(value) <= 40 and value.isprintable()
    if type(value) is int:
        return abs(value) > 2
    return type(value) is float


def _constant_name(value: object) -> str | None:
    if isinstance(value, str):
        words = "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in value).split()
        name = "_".join(words)[:30].strip("_").upper()
        if not name or name[0].isdigit():
            name = "TEXT_" + name if name else "TEXT"
    else:
        name = "LIMIT_" + str(value).replace(".", "_").replace("-", "MINUS_").replace("+", "")
    name = "_" + name
    return name if name.isidentifier() and not keyword.iskeyword(name) else None


def _plain_import(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import):
        modules = [a.name for a in stmt.names]
    elif isinstance(stmt, ast.ImportFrom):
        if stmt.module == "__future__":
            return False
        modules = [stmt.module or ""] + [a.name for a in stmt.names]
    else:
        return False
    return not any(word in m.lower() for m in modules for word in _SIDE_EFFECT_WORDS)


def _bound_names(stmt: ast.Import | ast.ImportFrom | ast.stmt) -> set[str]:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return {a.asname or a.name.split(".")[0] for a in stmt.names}
    return set()


def _assigns(text: str, name: str, value: object) -> bool:
    """Whether `text` is exactly one statement, `name = <value>`: the new line of extract-constant.

    It goes between two top-level statements, after one that ends its line, so
    the module parses when this line does and the function parses.
    """
    tree = _parse(text.strip())
    if tree is None or len(tree.body) != 1:
        return False
    stmt = tree.body[0]
    return isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
        and stmt.targets[0].id == name and isinstance(stmt.value, ast.Constant) \
        and type(stmt.value.value) is type(value) and stmt.value.value == value


class _Inline(ast.NodeTransformer):
    """Every read of the extracted constant's name replaced by the literal again."""

    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == self.name and isinstance(node.ctx, ast.Load):
            return ast.Constant(self.value)
        return node


def _changed_lines(src: _Source, edits: list[Edit], new_text: str) -> tuple[int, int] | None:
    """The first and last changed line of `new_text` (1-based), from a line diff of the edited window.

    The window is the lines the edits touch; everything before and after it is
    the same text, so diffing only the window gives the lines a whole-file diff
    would. A pure removal is reported as the lines on either side of it.
    """
    first = min(a for a, _b, _r in edits)
    last = max(b for _a, b, _r in edits)
    w0 = _line_at(src, first)  # 0-based index of the first touched line
    w1 = _line_at(src, max(last - 1, first)) + 1 if last > first else w0 + 1
    w1 = min(max(w1, w0 + 1), len(src.lines))
    grown = sum(len(r) - (b - a) for a, b, r in edits)
    old_window = src.lines[w0:w1]
    new_start = src.starts[w0]
    new_window = _lines(new_text[new_start:src.starts[w1] + grown])
    total = new_text.count("\n") + (0 if new_text.endswith("\n") else 1)
    added: list[int] = []
    removed_at: list[int] = []
    matcher = difflib.SequenceMatcher(None, old_window, new_window, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if j2 > j1:
            added += [w0 + j1 + 1, w0 + j2]
        else:
            removed_at += [w0 + j1, w0 + j1 + 1]
    # Lines only removed count when nothing was written: then the lines on either side stand for them.
    span = added or removed_at
    if not span:
        return None
    lo, hi = min(span), max(span)
    lo, hi = max(1, lo), min(max(total, 1), hi)
    return (min(lo, hi), hi)


def _line_at(src: _Source, offset: int) -> int:
    """The 0-based index of the line holding `offset`."""
    lo, hi = 0, len(src.lines) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if src.starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo
