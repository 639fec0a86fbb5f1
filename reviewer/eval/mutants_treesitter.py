"""Mutants of the files tree-sitter parses (JavaScript, TypeScript, Go, Java, Rust, C, C++).

The mutator interface documented on `models.Mutant`. Every change is found by
node type and field, and replaces only the bytes of the nodes it changes, so
the rest of the file is byte for byte the same; a candidate whose result does
not parse cleanly (an ERROR or MISSING node) is dropped.

Planted kinds:
- inverted-condition: a comparison or `&&`/`||` in an if/while/for condition flipped;
- off-by-one: an integer literal compared against, or used as (or added to) an index, moved up by one;
- swapped-arguments: two neighbouring, different arguments of a call exchanged;
- changed-default: a parameter default changed (JavaScript, TypeScript, C++: the others have none);
- removed-guard: `if (x == null) { return ...; }` (nil, NULL, nullptr, undefined; Rust `x.is_none()`)
  removed with its lines;
- wrong-variable: a read of a local replaced by another local of the function declared (with a value)
  before it and visible there, of the same declared type where the language checks types (Go and JS/TS
  literals give one); never a name bound twice, a parameter, a member, a key or a write;
- swallowed-exception (JavaScript, TypeScript, Java, C++): a catch body that does something emptied
  (`catch (e) {}`); a narrow Java type in the try's last catch also broadened to `Exception`;
- stale-callers (JavaScript, TypeScript, Go, Java): a top-level function (Go: not a method; Java: a
  static method of the file's class) gains a required first parameter while `callers(name, path)`
  names calls of it in other files (`call_index`/`call_sites` are the search `cases` runs for these);
- resource-not-closed (Java, Go): a one-resource try-with-resources made a plain declaration; a Go
  `defer x.Close()` right after the opening of `x` removed (why not JS/TS: on `_resources_not_closed`).
Controls (the behaviour is unchanged):
- rename-local: a local declared at the top of a function body renamed at each of its identifiers;
- reformat: blank lines added between statements of a function body;
- reorder-imports: two adjacent imports swapped (JS/TS `import ... from`, Go specs of one block, Java
  `import`, Rust `use`; why each is safe is said on `_reordered_imports`);
- extract-constant (JS/TS, Go, Java, Rust): a literal of a function moved to a new constant after the
  imports (Java: first in its class); which literals, and why the meaning is kept, on `_extracted_constants`.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tree_sitter import Node, Tree

from .. import symbols, treesitter
from .models import CallSite, Mutant, Site


def language(path: str) -> str | None:
    """The language `path` is parsed as, named for people ("Go", "C++"), or None."""
    key = treesitter.language(path)
    return treesitter.GRAMMARS[key].display if key else None


def parser_name(language: str) -> str:
    """"tree-sitter (tree-sitter-go 0.25.0)" for "Go"."""
    key = next((k for k, g in treesitter.GRAMMARS.items() if g.display == language), language)
    return treesitter.parser_name(key)


def parses(path: str, text: str) -> bool:
    """Whether `text` parses as the language of `path` without ERROR or MISSING nodes."""
    tree = treesitter.parse(path, text)
    return tree is not None and not treesitter.has_errors(tree)


# ------------------------------------------------------------------ node types

FUNCTIONS = frozenset({
    "function_declaration", "generator_function_declaration", "function_expression", "function",
    "generator_function", "arrow_function", "method_definition",               # JS, TS
    "method_declaration", "func_literal",                                      # Go (and Java)
    "constructor_declaration", "lambda_expression",                            # Java
    "function_item", "closure_expression",                                     # Rust
    "function_definition",                                                     # C, C++
})
CLASSES = frozenset({
    "class_declaration", "abstract_class_declaration", "class", "interface_declaration", "enum_declaration",
    "record_declaration", "class_specifier", "struct_specifier", "impl_item", "trait_item",
})
LOOPS_AND_BRANCHES: dict[str, str] = {
    # node type -> the field holding its condition
    "if_statement": "condition", "while_statement": "condition", "do_statement": "condition",
    "for_statement": "condition", "for_clause": "condition",                   # JS, Java, C; Go
    "if_expression": "condition", "while_expression": "condition",             # Rust
}
INVERSE = {"<": ">=", ">=": "<", ">": "<=", "<=": ">", "==": "!=", "!=": "==", "===": "!==", "!==": "===",
           "&&": "||", "||": "&&"}
COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!=", "===", "!=="})
INTEGERS = frozenset({"number", "int_literal", "decimal_integer_literal", "integer_literal", "number_literal"})
INDEXES = frozenset({"subscript_expression", "index_expression", "array_access", "subscript_argument_list"})
ARGUMENT_LISTS = frozenset({"arguments", "argument_list"})
NULLS = frozenset({"null", "nil", "null_literal", "undefined"})
EXITS = frozenset({"return_statement", "throw_statement", "return_expression"})
DECLARATIONS = frozenset({
    "lexical_declaration", "variable_declaration",                             # JS, TS
    "short_var_declaration", "var_declaration",                                # Go
    "local_variable_declaration",                                              # Java
    "let_declaration",                                                         # Rust
    "declaration",                                                             # C, C++
})
# A name in one of these places cannot be renamed alone: `{name}` in JS is a key and a value,
# `S { name }` in Rust a field and a value, and a Go `{name: v}` key may be a struct field.
UNRENAMABLE = frozenset({"shorthand_property_identifier", "shorthand_property_identifier_pattern",
                         "shorthand_field_identifier"})
CAMEL_CASE = frozenset({"javascript", "typescript", "tsx", "java", "go"})
RUST_INTEGER_SUFFIXES = frozenset({"", "u8", "u16", "u32", "u64", "u128", "usize",
                                   "i8", "i16", "i32", "i64", "i128", "isize"})


@dataclass(frozen=True)
class _Edit:
    kind: str
    at: Node
    """Where the change is (its enclosing function names the mutant)."""
    changes: tuple[tuple[int, int, bytes], ...]
    """(start byte, end byte, new bytes), disjoint."""
    description: str
    sites: tuple[Site, ...] = ()
    """stale-callers: the calls in other files the change left stale."""


def mutants(path: str, text: str, callers: Callable[[str, str], Sequence[CallSite]] | None = None) -> list[Mutant]:
    """Every candidate mutant of `text`, planted kinds then controls, each in document order.

    Empty when the file is not covered or does not parse cleanly: a mutant of a
    broken file could not be told from the breakage. `callers(name, path)` gives the calls in
    other files of a top-level function (stale-callers is made only with it).
    """
    lang = treesitter.language(path)
    if lang is None:
        return []
    data = treesitter.encode(text)
    tree = treesitter.parse(path, data)
    if tree is None or treesitter.has_errors(tree):
        return []
    def stale(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
        return _stale_callers(tree, data, lang, path, callers)

    makers: tuple[Callable[[Tree, bytes, str], Iterator[_Edit]], ...] = (
        _inverted_conditions, _off_by_ones, _swapped_arguments, _changed_defaults, _removed_guards,
        _wrong_variables, _swallowed_exceptions, _resources_not_closed, stale,
        _renamed_locals, _extracted_constants, _reformats, _reordered_imports,
    )
    out: list[Mutant] = []
    seen: set[bytes] = set()
    old_lines = text.splitlines(keepends=True)
    for make in makers:
        for edit in make(tree, data, lang):
            new = _apply(data, edit.changes)
            if new == data or new in seen:
                continue
            _, new_tree = treesitter.reparse(path, tree, data, edit.changes)
            if treesitter.has_errors(new_tree):
                continue
            seen.add(new)
            new_text = treesitter.decode(new)
            start, end = _changed_lines(old_lines, new_text.splitlines(keepends=True))
            out.append(Mutant(kind=edit.kind, function=function_name(edit.at), start=start, end=end,
                              description=edit.description, new_text=new_text, sites=edit.sites))
    return out


def _apply(data: bytes, changes: tuple[tuple[int, int, bytes], ...]) -> bytes:
    for start, end, new in sorted(changes, reverse=True):
        data = data[:start] + new + data[end:]
    return data


def _changed_lines(old: list[str], new: list[str]) -> tuple[int, int]:
    """The changed lines of `new` (1-based, inclusive); for a pure removal, the lines either side."""
    # The lines both ends share are left out of the diff: difflib is quadratic in the lines it is given,
    # and a mutant changes a few lines of a file that may hold thousands.
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    added: list[int] = []
    removed_at: list[int] = []
    matcher = difflib.SequenceMatcher(None, old[head:len(old) - tail], new[head:len(new) - tail], autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        j1, j2 = j1 + head, j2 + head
        if tag == "equal":
            continue
        if j2 > j1:
            added += [j1 + 1, j2]
        else:
            removed_at += [max(1, j1), max(1, min(len(new), j1 + 1))]
    # The lines either side of a removal count only when nothing was added: two swapped lines are
    # a removal and an addition, and their span is the two lines, as `cases` reads it from its diff.
    touched = added or removed_at
    return (min(touched), max(touched)) if touched else (1, 1)


# ------------------------------------------------------------------ helpers

def _nodes(node: Node) -> Iterator[Node]:
    yield from treesitter.walk(node)


def _text(node: Node) -> str:
    return treesitter.decode(node.text or b"")


def _operator(node: Node) -> Node | None:
    """The operator token of a binary expression."""
    if node.type != "binary_expression":
        return None
    op = node.child_by_field_name("operator")
    if op is None and node.child_count == 3:  # grammars without an operator field
        op = node.children[1]
    return op


def _integer(node: Node, lang: str) -> tuple[int, str] | None:
    """(value, suffix) of a plain decimal integer literal: `10`, `10usize`, `10u`; None otherwise."""
    if node.type not in INTEGERS:
        return None
    raw = _text(node)
    digits = len(raw) - len(raw.lstrip("0123456789"))
    number, suffix = raw[:digits], raw[digits:]
    if not number or (len(number) > 1 and number[0] == "0"):  # empty, or octal in C and JS
        return None
    allowed = RUST_INTEGER_SUFFIXES if lang == "rust" else (
        {"", "u", "U", "l", "L", "ul", "UL", "lu", "LU", "ll", "LL", "ull", "ULL"} if lang in ("c", "cpp")
        else {""})
    return (int(number), suffix) if suffix in allowed else None


def _inside_function(node: Node) -> Node | None:
    above = node.parent
    while above is not None and not (above.is_named and above.type in FUNCTIONS):
        above = above.parent
    return above


def _statements(function: Node) -> list[Node]:
    """The statements directly in a function's body (Go wraps them in a statement_list)."""
    body = function.child_by_field_name("body")
    if body is None:
        return []
    kids = [c for c in body.named_children if c.type != "comment" and not c.type.endswith("_comment")]
    if len(kids) == 1 and kids[0].type == "statement_list":
        kids = [c for c in kids[0].named_children if c.type != "comment"]
    return kids


def _name_of(node: Node) -> str | None:
    """The declared name of a function or class node, if it has one."""
    if node.type == "function_definition":  # C, C++: the name sits in the declarator
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in ("identifier", "field_identifier",
                                                                 "qualified_identifier", "destructor_name",
                                                                 "operator_name"):
            declarator = declarator.child_by_field_name("declarator")
        # `int Grid::cell(...)` is named as the other languages' methods are: Grid.cell.
        return _text(declarator).replace("::", ".") if declarator is not None else None
    if node.type == "impl_item":
        kind = node.child_by_field_name("type")
        return _text(kind) if kind is not None else None
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name)
    # `const f = () => ...`: the function is named by its variable.
    parent = node.parent
    if node.type in FUNCTIONS and parent is not None and parent.type == "variable_declarator":
        target = parent.child_by_field_name("name")
        return _text(target) if target is not None and target.type == "identifier" else None
    return None


def function_name(node: Node) -> str:
    """The qualified name of the function `node` is in ("Type.method"), or "<module>"."""
    parts: list[str] = []
    above: Node | None = node
    while above is not None:
        if above.is_named and (above.type in FUNCTIONS or above.type in CLASSES):
            name = _name_of(above)
            if name is not None:
                parts.append(name)
            if above.type == "method_declaration":  # Go: `func (s *Store) Get`: the receiver's type
                receiver = above.child_by_field_name("receiver")
                for n in _nodes(receiver) if receiver is not None else ():
                    if n.type == "type_identifier":
                        parts.append(_text(n))
                        break
        above = above.parent
    return ".".join(reversed(parts)) if parts else "<module>"


# ------------------------------------------------------------------ planted

def _conditions(tree: Tree) -> Iterator[Node]:
    for node in _nodes(tree.root_node):
        field = LOOPS_AND_BRANCHES.get(node.type)
        condition = node.child_by_field_name(field) if field else None
        if condition is not None:
            yield condition


def _inverted_conditions(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for condition in _conditions(tree):
        owner = _inside_function(condition)
        for node in _nodes(condition):
            op = _operator(node)
            # A callback's body inside a condition (`if (xs.some(x => x < 0))`) is not the condition.
            if op is None or op.type not in INVERSE or _inside_function(node) != owner:
                continue
            new = INVERSE[op.type]
            yield _Edit("inverted-condition", node, ((op.start_byte, op.end_byte, new.encode()),),
                        f"`{op.type}` became `{new}` in `{_text(node)[:80]}`")


def _off_by_ones(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for node in _nodes(tree.root_node):
        parent = node.parent
        found = _integer(node, lang)
        if found is None or parent is None:
            continue
        op = _operator(parent)
        if op is not None and op.type in COMPARISONS:
            where = f"the bound of `{_text(parent)[:80]}`"
        elif parent.type in INDEXES and _is_index(node, parent):
            where = f"the index of `{_text(parent)[:80]}`"
        elif (op is not None and op.type in ("+", "-") and parent.parent is not None
              and parent.parent.type in INDEXES and _is_index(parent, parent.parent)):
            where = f"the index of `{_text(parent.parent)[:80]}`"
        else:
            continue
        value, suffix = found
        yield _Edit("off-by-one", node, ((node.start_byte, node.end_byte, f"{value + 1}{suffix}".encode()),),
                    f"`{_text(node)}` became `{value + 1}{suffix}` in {where}")


def _is_index(node: Node, indexing: Node) -> bool:
    """Whether `node` is the index of `indexing` (`a[node]`), not the thing indexed."""
    if indexing.type == "subscript_argument_list":  # C++ `a[i]`: the list holds only indices
        return True
    index = indexing.child_by_field_name("index")
    if index is not None:
        return index == node
    kids = indexing.named_children  # Rust: `a[i]` has no fields: the second child is the index
    return len(kids) == 2 and kids[1] == node


def _swapped_arguments(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for node in _nodes(tree.root_node):
        if node.type not in ARGUMENT_LISTS or node.parent is None or node.parent.type == "macro_invocation":
            continue
        args = [a for a in node.named_children if a.type != "comment"]
        for a, b in itertools.pairwise(args):
            # A spread or variadic argument stands for several: swapping it changes arity, not order.
            if {a.type, b.type} & {"spread_element", "variadic_argument"} or a.text == b.text:
                continue
            yield _Edit("swapped-arguments", node,
                        ((a.start_byte, a.end_byte, b.text or b""), (b.start_byte, b.end_byte, a.text or b"")),
                        f"arguments `{_text(a)[:40]}` and `{_text(b)[:40]}` swapped in `{_text(node.parent)[:80]}`")
            break  # one swap per call: the first two that differ


def _changed_defaults(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for node in _nodes(tree.root_node):
        if node.type == "assignment_pattern" and node.parent is not None and node.parent.type == "formal_parameters":
            target, default = node.child_by_field_name("left"), node.child_by_field_name("right")  # JS
        elif node.type in ("required_parameter", "optional_parameter"):                             # TS
            target, default = node.child_by_field_name("pattern"), node.child_by_field_name("value")
        elif node.type == "optional_parameter_declaration":                                         # C++
            target, default = node.child_by_field_name("declarator"), node.child_by_field_name("default_value")
        else:
            continue
        if target is None or default is None or not _read_in_body(node, target):
            continue  # a default nobody reads changes nothing: not a planted defect
        new = _other_value(default, lang)
        if new is not None:
            yield _Edit("changed-default", node, ((default.start_byte, default.end_byte, new.encode()),),
                        f"the default of `{_text(target)}` became `{new}` (was `{_text(default)}`)")


def _read_in_body(parameter: Node, target: Node) -> bool:
    """Whether the function whose parameter this is uses the parameter's name in its body."""
    # The nearest enclosing node with a body (C++ puts the parameters in a declarator inside the function).
    body, up = None, parameter.parent
    while up is not None and body is None:
        body, up = up.child_by_field_name("body"), up.parent
    if body is None or target.type != "identifier":
        return False
    return any(n.type == "identifier" and n.text == target.text for n in _nodes(body))


def _other_value(node: Node, lang: str) -> str | None:
    """A different literal of the same type: n -> n+1, true <-> false, "s" -> ""."""
    number = _integer(node, lang)
    if number is not None:
        return f"{number[0] + 1}{number[1]}"
    if node.type in ("true", "false"):
        return "false" if node.type == "true" else "true"
    if node.type in ("string", "string_literal") and node.named_child_count > 0:  # not already empty
        quote = _text(node)[0]
        return quote * 2 if quote in "\"'" else None
    return None


def _removed_guards(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for node in _nodes(tree.root_node):
        if node.type not in ("if_statement", "if_expression") or node.child_by_field_name("alternative"):
            continue
        condition = node.child_by_field_name("condition")
        body = node.child_by_field_name("consequence")
        check = _null_check(condition) if condition is not None else None
        if check is None or body is None or not _only_exits(body):
            continue
        # A Rust `if` is an expression: removed only where it stands as a statement of its own.
        statement = node.parent if node.type == "if_expression" else node
        if statement is None or (node.type == "if_expression" and statement.type != "expression_statement"):
            continue
        start, end = _whole_lines(data, statement.start_byte, statement.end_byte)
        yield _Edit("removed-guard", statement, ((start, end, b""),),
                    f"the guard `if {_text(check)[:80]}` removed")


def _null_check(condition: Node) -> Node | None:
    """The test if `condition` is `x == null` (either side; `===`, nil, NULL, nullptr, undefined) or
    Rust's `x.is_none()`, else None."""
    node = condition
    while node.type in ("parenthesized_expression", "condition_clause") and node.named_child_count == 1:
        node = node.named_children[0]
    if node.type == "call_expression":  # Rust
        function = node.child_by_field_name("function")
        field = function.child_by_field_name("field") if function is not None else None
        return node if field is not None and field.text == b"is_none" else None
    op = _operator(node)
    # NOTE: `err != nil` is left alone: without its check, Go refuses an unused `err` (a compile error, not a bug).
    if op is None or op.type not in ("==", "==="):
        return None
    sides = [node.child_by_field_name("left"), node.child_by_field_name("right")]
    nulls = [s for s in sides if s is not None and (s.type in NULLS or (s.type == "identifier" and s.text == b"NULL"))]
    return node if nulls else None


def _only_exits(body: Node) -> bool:
    """Whether `body` is a return/throw, or a block holding only one (comments aside)."""
    if body.type in EXITS:
        return True
    kids = [c for c in body.named_children if "comment" not in c.type]
    if len(kids) == 1 and kids[0].type in ("statement_list", "expression_statement"):  # Go, Rust
        kids = [c for c in kids[0].named_children if "comment" not in c.type]
    return len(kids) == 1 and kids[0].type in EXITS


def _whole_lines(data: bytes, start: int, end: int) -> tuple[int, int]:
    """[start, end) grown to whole lines when only blanks share them, so no empty line is left."""
    line_start = data.rfind(b"\n", 0, start) + 1
    line_end = data.find(b"\n", end)
    line_end = len(data) if line_end == -1 else line_end + 1
    if data[line_start:start].strip() or data[end:line_end].strip():
        return start, end
    return line_start, line_end


# ------------------------------------------------------------------ controls

def _functions(tree: Tree) -> Iterator[Node]:
    for node in _nodes(tree.root_node):
        if node.is_named and node.type in FUNCTIONS and node.child_by_field_name("body") is not None:
            yield node


def _renamed_locals(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for function in _functions(tree):
        for statement in _statements(function):
            if statement.type not in DECLARATIONS:
                continue
            for leaf in _nodes(statement):
                if leaf.type == "identifier" and _inside_function(leaf) == function \
                        and symbols.definition_kind(leaf) == "assignment":
                    edit = _rename(function, leaf, data, lang)
                    if edit is not None:
                        yield edit


def _rename(function: Node, declared: Node, data: bytes, lang: str) -> _Edit | None:
    """Every identifier of the function spelled as `declared`, renamed; None when that is unsound."""
    name = declared.text or b""
    uses = [n for n in _nodes(function) if n.child_count == 0 and n.text == name]
    renamed = [n for n in uses if n.type == "identifier"]
    # The declaration must come first: an earlier use would be another variable (a global, an outer one).
    if not renamed or renamed[0] != declared:
        return None
    for n in uses:
        parent = n.parent
        if n.type in UNRENAMABLE or (parent is not None and parent.type in ("shorthand_field_initializer",)):
            return None
        if parent is not None and parent.type == "literal_element" and treesitter.field_of(parent) == "key":
            return None
    if lang == "rust" and any(n.type == "string_content" and b"{" + name in (n.text or b"")
                              for n in _nodes(function)):
        return None  # `format!("{name}")` captures the variable from inside the string
    fresh = _fresh(treesitter.decode(name), data, lang)
    changes = tuple((n.start_byte, n.end_byte, fresh.encode()) for n in renamed)
    return _Edit("rename-local", declared, changes,
                 f"local `{treesitter.decode(name)}` renamed to `{fresh}` in `{function_name(declared)}`")


def _fresh(name: str, data: bytes, lang: str) -> str:
    """A name like `name` that the file does not hold anywhere, in the language's usual case."""
    base = f"{name}Value" if lang in CAMEL_CASE else f"{name}_value"
    candidate, n = base, 2
    while candidate.encode() in data:
        candidate, n = f"{base}{n}", n + 1
    return candidate


def _reformats(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for function in _functions(tree):
        statements = _statements(function)
        # Blank lines before the second and the last statement, each on a line of its own.
        spots = []
        for previous, statement in itertools.pairwise(statements):
            if statement in (statements[1], statements[-1]) and statement.start_point.row > previous.end_point.row:
                line_start = data.rfind(b"\n", 0, statement.start_byte) + 1
                if not data[line_start:statement.start_byte].strip():
                    spots.append(line_start)
        if spots:
            yield _Edit("reformat", statements[1], tuple((at, at, b"\n") for at in spots),
                        f"{len(spots)} blank line(s) added in `{function_name(statements[1])}`")


# ------------------------------------------------------------------ swallowed-exception

TYPED = frozenset({"typescript", "tsx", "java", "go", "rust", "c", "cpp"})
"""Languages whose compiler checks types: a plant there must still compile, so only same-typed swaps."""
LOOP_EXITS = EXITS | {"break_statement", "continue_statement"}


def _swallowed_exceptions(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    if lang not in ("javascript", "typescript", "tsx", "java", "cpp"):
        return
    for node in _nodes(tree.root_node):
        if node.type != "catch_clause":
            continue
        body = node.child_by_field_name("body")
        kids = [c for c in body.named_children if "comment" not in c.type and c.type != "empty_statement"] \
            if body is not None else []
        if body is None or not kids:
            continue  # already swallowed
        try_statement = node.parent
        if try_statement is None or try_statement.type != "try_statement":
            continue
        if lang in ("typescript", "tsx", "java"):
            # NOTE: these compilers check what an emptied handler breaks: a handler ending in `return`
            # that was the function's last word leaves "missing return"/TS2366, and a handler assigning
            # a local leaves it "not definitely assigned". Such handlers are left alone: the plant must
            # compile and be wrong, not fail to build.
            later = try_statement.next_named_sibling
            while later is not None and "comment" in later.type:
                later = later.next_named_sibling
            if kids[-1].type in LOOP_EXITS and later is None:
                continue
            if any(n.type in ("assignment_expression", "augmented_assignment_expression") for n in _nodes(body)):
                continue
        changes = [(body.start_byte, body.end_byte, b"{}")]
        header = _text(node)[:_text(node).find("{")].strip() if "{" in _text(node) else "catch"
        description = f"the handler `{header[:60]}` emptied in `{function_name(node)}`"
        narrow = _narrow_java_type(node) if lang == "java" else None
        if narrow is not None:
            changes.append((narrow.start_byte, narrow.end_byte, b"Exception"))
            description = (f"`{header[:60]}` became `catch (Exception ...) {{}}` (broadened and emptied) "
                           f"in `{function_name(node)}`")
        yield _Edit("swallowed-exception", node, tuple(changes), description)


def _narrow_java_type(clause: Node) -> Node | None:
    """The one caught type of a Java catch clause when it is narrower than Exception and can be broadened.

    Broadening is legal only in the try's last catch clause: a later clause would
    then catch what `Exception` already caught, which javac refuses.
    """
    later = clause.next_named_sibling
    while later is not None and later.type != "catch_clause":
        later = later.next_named_sibling
    if later is not None:
        return None
    parameter = next((c for c in clause.named_children if c.type == "catch_formal_parameter"), None)
    caught = next((c for c in parameter.named_children if c.type == "catch_type"), None) if parameter else None
    types = [c for c in caught.named_children if "comment" not in c.type] if caught is not None else []
    if len(types) != 1 or types[0].type not in ("type_identifier", "scoped_type_identifier"):
        return None
    name = _text(types[0]).rsplit(".", 1)[-1]
    # An Error (OutOfMemoryError) is not an Exception: broadening it would stop catching it.
    return types[0] if name.endswith("Exception") and name != "Exception" else None


# ------------------------------------------------------------------ wrong-variable

WRONG_VARIABLES_PER_FUNCTION = 2
"""Candidates per function: the sampler keeps one per function and kind, more would only cost reparses."""
# Rust: a value of one of these types is copied when read, so reading it instead of another cannot
# move it (a move would make a later use a compile error, not a wrong value).
RUST_COPY_TYPES = frozenset({"i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128",
                             "usize", "f32", "f64", "bool", "char", "&str"})
LITERAL_TYPES: dict[str, dict[str, str]] = {
    # The type a literal initializer gives a declaration without one (Go: an untyped constant's default type).
    "javascript": {"number": "number", "string": "string", "template_string": "string", "true": "boolean",
                   "false": "boolean"},
    "go": {"int_literal": "int", "float_literal": "float64", "interpreted_string_literal": "string",
           "raw_string_literal": "string", "true": "bool", "false": "bool"},
}
LITERAL_TYPES["typescript"] = LITERAL_TYPES["tsx"] = LITERAL_TYPES["javascript"]
WRITES: dict[str, str] = {
    # node type -> the field (or "*") whose identifier is written, not (only) read
    "assignment_expression": "left", "augmented_assignment_expression": "left", "compound_assignment_expr": "left",
    "assignment_statement": "left", "update_expression": "*", "inc_statement": "*", "dec_statement": "*",
}
NOT_VALUES: frozenset[tuple[str, str]] = frozenset({
    # (parent type, field): an identifier there names a member, a callee, a key, a label, not a variable read
    ("member_expression", "property"), ("selector_expression", "field"), ("field_access", "field"),
    ("field_expression", "field"), ("call_expression", "function"), ("method_invocation", "name"),
    ("new_expression", "constructor"), ("pair", "key"), ("field_initializer", "field"),
    ("macro_invocation", "macro"), ("labeled_statement", "label"), ("goto_statement", "label"),
})


@dataclass(frozen=True)
class _Local:
    name: bytes
    node: Node
    """The declared identifier."""
    statement: Node
    """The declaration: the name is readable after it ends."""
    scope: Node
    """The block (or loop, or if with an initializer) the declaration is visible in."""
    type: str | None
    """The declared (or literal-given) type, spelled as in the source; None when not given."""


def _wrong_variables(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    for function in _functions(tree):
        found = [d for d in _declared_locals(function, lang)]
        if not found:
            continue
        bound = _binding_counts(function)
        # A name bound more than once (shadowed, redeclared, also a parameter or a pattern) is not one variable.
        by_name = {d.name: d for d in found if bound.get(d.name, 0) == 1}
        reads = [n for n in _nodes(function) if n.type == "identifier" and n.text in by_name and _is_read(n, function)]
        made = 0
        for read in reads:
            if made >= WRONG_VARIABLES_PER_FUNCTION:
                break
            local = by_name[read.text or b""]
            if not _visible(local, read):
                continue
            # Go refuses a variable declared and never read: the swapped read must not be its last.
            if lang == "go" and sum(1 for r in reads if r.text == read.text) < 2:
                continue
            others = [o for o in by_name.values() if o.name != local.name and _visible(o, read)]
            if lang in TYPED or local.type is not None:
                pool = [o for o in others if local.type is not None and o.type == local.type]
                if not pool and lang not in TYPED:
                    pool = [o for o in others if o.type is None]
            else:
                pool = [o for o in others if o.type is None]
            if not pool:
                continue
            other = max(pool, key=lambda o: o.statement.start_byte)  # the latest declared: the likeliest slip
            made += 1
            yield _Edit("wrong-variable", read, ((read.start_byte, read.end_byte, other.name),),
                        f"`{_text(read)}` read as `{treesitter.decode(other.name)}` in `{function_name(read)}`")


def _visible(local: _Local, read: Node) -> bool:
    """Whether `read` sits after the whole declaration of `local`, inside its scope."""
    if local.statement.end_byte > read.start_byte:
        return False
    above = read.parent
    while above is not None and above != local.scope:
        above = above.parent
    return above is not None


def _is_read(leaf: Node, function: Node) -> bool:
    """Whether an identifier of `function` reads a variable: not a declaration, a write, a member or a pattern."""
    if _inside_function(leaf) != function or symbols.definition_kind(leaf) is not None:
        return False
    node = leaf
    while node.parent is not None and node.parent != function:
        parent, field = node.parent, treesitter.field_of(node) or ""
        if (parent.type, field) in NOT_VALUES and node is leaf:
            return False
        if parent.type == "keyed_element" and field == "key":  # Go `S{name: v}`: maybe a field
            return False
        written = WRITES.get(parent.type)
        if written is not None and (written == "*" or written == field) and node is leaf:
            return False
        if parent.type.endswith("pattern") or parent.type in ("let_condition", "import_statement", "use_declaration"):
            return False
        if parent.type.endswith("statement") or parent.type in ("block", "statement_block", "compound_statement"):
            break
        node = parent
    return True


def _binding_counts(function: Node) -> dict[bytes, int]:
    """How many times each name is bound in `function` (nested functions and the parameters included)."""
    counts: dict[bytes, int] = {}
    for leaf in _nodes(function):
        if leaf.type != "identifier":
            continue
        kind = symbols.definition_kind(leaf)
        bound = kind is not None and not (kind == "assignment" and _written(leaf))
        above = leaf.parent
        while not bound and above is not None and above != function and not above.type.endswith("statement"):
            bound = above.type.endswith("pattern")
            above = above.parent
        if bound:
            counts[leaf.text or b""] = counts.get(leaf.text or b"", 0) + 1
    return counts


def _written(leaf: Node) -> bool:
    """Whether `leaf` is the target of an assignment (`x = v`, `x += v`, Go `x, y = v, w`), not a declaration."""
    node = leaf
    while node.parent is not None and node.parent.type == "expression_list":
        node = node.parent
    parent = node.parent
    return parent is not None and WRITES.get(parent.type) in ("*", treesitter.field_of(node))


def _declared_locals(function: Node, lang: str) -> Iterator[_Local]:
    """The plain variables declared (with a value) by declaration statements of `function` itself."""
    for statement in _nodes(function):
        if statement.type not in DECLARATIONS or _inside_function(statement) != function:
            continue
        scope = statement.parent
        if scope is not None and scope.type in ("for_clause", "condition_clause", "statement_list"):
            scope = scope.parent
        if scope is None:
            continue
        for name, declared, value in _declarators(statement, lang):
            if value is None and lang != "go":  # Go's zero value is a value; elsewhere unset is no swap
                continue
            if declared is None and value is not None:
                declared = LITERAL_TYPES.get(lang, {}).get(value.type)
            if lang == "rust" and declared not in RUST_COPY_TYPES:
                declared = None
            if lang == "rust" and declared is None:
                continue
            yield _Local(name.text or b"", name, statement, scope, declared)


def _declarators(statement: Node, lang: str) -> Iterator[tuple[Node, str | None, Node | None]]:
    """(identifier, declared type or None, value or None) for each plain name `statement` declares."""
    kind = statement.child_by_field_name("type")
    if statement.type in ("lexical_declaration", "variable_declaration"):                 # JS, TS
        for d in statement.named_children:
            name, annotation = d.child_by_field_name("name"), d.child_by_field_name("type")
            if d.type == "variable_declarator" and name is not None and name.type == "identifier":
                spelled = _text(annotation).lstrip(":").strip() if annotation is not None else None
                yield name, spelled, d.child_by_field_name("value")
    elif statement.type == "short_var_declaration":                                      # Go
        left, right = statement.child_by_field_name("left"), statement.child_by_field_name("right")
        names = left.named_children if left is not None else []
        values = right.named_children if right is not None else []
        if len(names) == len(values):
            for name, value in zip(names, values, strict=True):
                if name.type == "identifier":
                    yield name, None, value
    elif statement.type == "var_declaration":                                            # Go
        specs = [c for c in statement.named_children if c.type == "var_spec"]
        specs += [s for c in statement.named_children if c.type == "var_spec_list" for s in c.named_children
                  if s.type == "var_spec"]
        for spec in specs:
            names = [c for i, c in enumerate(spec.children) if spec.field_name_for_child(i) == "name"]
            spec_type = spec.child_by_field_name("type")
            assigned = spec.child_by_field_name("value")
            values = assigned.named_children if assigned is not None else []
            for i, name in enumerate(names):
                v = values[i] if len(values) == len(names) else None
                if spec_type is None and v is None:
                    continue
                yield name, _text(spec_type) if spec_type is not None else None, v
    elif statement.type == "local_variable_declaration" and kind is not None:            # Java
        spelled = None if _text(kind) == "var" else _text(kind)
        for d in statement.named_children:
            name = d.child_by_field_name("name")
            if d.type == "variable_declarator" and name is not None and d.child_by_field_name("dimensions") is None:
                yield name, spelled, d.child_by_field_name("value")
    elif statement.type == "let_declaration":                                            # Rust
        pattern = statement.child_by_field_name("pattern")
        if pattern is not None and pattern.type == "identifier":
            yield pattern, _text(kind).replace(" ", "") if kind is not None else None, \
                statement.child_by_field_name("value")
    elif statement.type == "declaration" and kind is not None:                           # C, C++
        if kind.type in ("placeholder_type_specifier", "auto") or "auto" in _text(kind).split():
            return
        for i, d in enumerate(statement.children):
            if statement.field_name_for_child(i) != "declarator":
                continue
            initial = d.child_by_field_name("value") if d.type == "init_declarator" else None
            inner = d.child_by_field_name("declarator") if d.type == "init_declarator" else d
            stars = ""
            while inner is not None and inner.type == "pointer_declarator":
                stars += "*"
                inner = inner.child_by_field_name("declarator")
            if inner is not None and inner.type == "identifier":
                yield inner, _text(kind) + stars, initial


# ------------------------------------------------------------------ stale-callers

# A new first parameter, with its type per language: a plain value anyone would add.
FRESH_PARAMETERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("limit", {"typescript": "number", "tsx": "number", "go": "int", "java": "int"}),
    ("strict", {"typescript": "boolean", "tsx": "boolean", "go": "bool", "java": "boolean"}),
    ("retries", {"typescript": "number", "tsx": "number", "go": "int", "java": "int"}),
    ("verbose", {"typescript": "boolean", "tsx": "boolean", "go": "bool", "java": "boolean"}),
)
REST_PARAMETERS = frozenset({"rest_pattern", "variadic_parameter_declaration", "spread_parameter"})


def _stale_callers(tree: Tree, data: bytes, lang: str, path: str,
                   callers: Callable[[str, str], Sequence[CallSite]] | None) -> Iterator[_Edit]:
    """A top-level function gains a required first parameter; its calls in other files are left as they were."""
    if callers is None or lang not in ("javascript", "typescript", "tsx", "go", "java"):
        return
    for function in _top_level_functions(tree, path, lang):
        name = function.child_by_field_name("name")
        parameters = function.child_by_field_name("parameters")
        if name is None or parameters is None or parameters.child_count == 0 or parameters.children[0].type != "(":
            continue
        params = [p for p in parameters.named_children if "comment" not in p.type]
        # A variadic function would take the old first argument into the new parameter or its rest
        # (`f(1, 2)` still compiles): the calls would not all be broken.
        if any(p.type in REST_PARAMETERS or p.child_by_field_name("pattern") is not None
               and p.child_by_field_name("pattern").type == "this" for p in params):  # type: ignore[union-attr]
            continue
        sites = tuple(sorted({c.site for c in callers(_text(name), path) if not c.starred},
                             key=lambda s: (s.path, s.line)))
        if not sites:
            continue
        fresh = next(((p, types) for p, types in FRESH_PARAMETERS if p.encode() not in (function.text or b"")), None)
        if fresh is None:
            continue
        word, types = fresh
        typed = {"go": f"{word} {types.get(lang)}", "java": f"{types.get(lang)} {word}"}.get(
            lang, f"{word}: {types[lang]}" if lang in types else word)
        insert = typed + (", " if params else "")
        at = parameters.children[0].end_byte
        count = f"{len(sites)} call{'s' if len(sites) != 1 else ''}"
        yield _Edit("stale-callers", function, ((at, at, insert.encode()),),
                    f"`{function_name(function)}` gained a required parameter `{word}`; {count} in other files "
                    f"not updated", sites)


def _top_level_functions(tree: Tree, path: str, lang: str) -> Iterator[Node]:
    """Functions callable from other files by name: JS/TS top-level functions, Go functions (not methods),
    the static methods of a Java file's top-level class named as the file, each without an overload."""
    root = tree.root_node
    if lang == "java":
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        for cls in root.named_children:
            name, body = cls.child_by_field_name("name"), cls.child_by_field_name("body")
            if cls.type != "class_declaration" or name is None or name.text != stem.encode() or body is None:
                continue
            methods = [m for m in body.named_children if m.type == "method_declaration"]
            spelled = [m.child_by_field_name("name").text for m in methods]  # type: ignore[union-attr]
            for m, n in zip(methods, spelled, strict=True):
                modifiers = next((c for c in m.named_children if c.type == "modifiers"), None)
                words = [c.type for c in modifiers.children] if modifiers is not None else []
                if "static" in words and "private" not in words and spelled.count(n) == 1:
                    yield m
        return
    for node in root.named_children:
        if node.type == "export_statement":
            node = node.child_by_field_name("declaration") or node
        if node.type == "function_declaration":
            yield node


@dataclass(frozen=True)
class _Call:
    name: str
    qualifier: str | None
    """`ns` of `ns.f(...)`, `Util` of `Util.f(...)`; None for a plain `f(...)`."""
    line: int
    positional: int
    starred: bool


@dataclass(frozen=True)
class CallIndex:
    """What the callers search needs of one file: its package, its imports and its calls (no tree kept)."""

    path: str
    family: str
    """Files that can call each other: "js" (JavaScript and TypeScript), "go", "java"."""
    package: str | None
    """The Go package name or the Java package; None in JavaScript."""
    imports: tuple[tuple[str, str, str], ...]
    """(imported name, bound name, source): JS `import {a as b} from "./m"` -> ("a", "b", "./m"), a default
    import ("default", name, ...) and a namespace ("*", ns, ...); Go ("", alias or "", path); Java
    ("", "static" or "", dotted name)."""
    calls: dict[str, tuple[_Call, ...]]
    """The calls by the called name."""


FAMILIES = {"javascript": "js", "typescript": "js", "tsx": "js", "go": "go", "java": "java"}


def call_index(path: str, text: str) -> CallIndex | None:
    """The calls and imports of a JavaScript/TypeScript, Go or Java file; None for another or a broken file."""
    lang = treesitter.language(path)
    family = FAMILIES.get(lang or "")
    tree = treesitter.parse(path, text) if family else None
    if tree is None or family is None:
        return None
    package: str | None = None
    imports: list[tuple[str, str, str]] = []
    calls: dict[str, list[_Call]] = {}
    for node in _nodes(tree.root_node):
        t = node.type
        if t == "package_clause":
            package = _text(node.named_children[0]) if node.named_children else None
        elif t == "package_declaration":
            package = next((_text(c) for c in node.named_children if "identifier" in c.type), None)
        elif t == "import_statement" and family == "js":
            source = node.child_by_field_name("source")
            clause = next((c for c in node.named_children if c.type == "import_clause"), None)
            if source is None or clause is None:
                continue
            spec = _text(source)[1:-1]
            for n in _nodes(clause):
                if n.type == "import_specifier":
                    imported, alias = n.child_by_field_name("name"), n.child_by_field_name("alias")
                    if imported is not None:
                        imports.append((_text(imported), _text(alias or imported), spec))
                elif n.type == "identifier" and n.parent == clause:
                    imports.append(("default", _text(n), spec))
                elif n.type == "identifier" and n.parent is not None and n.parent.type == "namespace_import":
                    imports.append(("*", _text(n), spec))
        elif t == "import_spec":
            spec_path, alias = node.child_by_field_name("path"), node.child_by_field_name("name")
            if spec_path is not None:
                imports.append(("", _text(alias) if alias is not None else "", _text(spec_path).strip('"`')))
        elif t == "import_declaration" and family == "java":
            dotted = next((c for c in node.named_children if "identifier" in c.type), None)
            static = any(c.type == "static" for c in node.children)
            wildcard = any(c.type == "asterisk" for c in node.named_children)
            if dotted is not None:
                imports.append(("", "static" if static else "", _text(dotted) + (".*" if wildcard else "")))
        elif t in ("call_expression", "method_invocation"):
            call = _call_of(node)
            if call is not None:
                calls.setdefault(call.name, []).append(call)
    return CallIndex(path, family, package, tuple(imports), {k: tuple(v) for k, v in calls.items()})


def _call_of(node: Node) -> _Call | None:
    if node.type == "method_invocation":                                                 # Java
        callee, qualifier = node.child_by_field_name("name"), node.child_by_field_name("object")
    else:
        callee, qualifier = node.child_by_field_name("function"), None
        if callee is not None and callee.type in ("member_expression", "selector_expression"):
            qualifier = callee.child_by_field_name("object") or callee.child_by_field_name("operand")
            callee = callee.child_by_field_name("property") or callee.child_by_field_name("field")
    arguments = node.child_by_field_name("arguments")
    if callee is None or arguments is None or (qualifier is not None and qualifier.type != "identifier"):
        return None
    args = [a for a in arguments.named_children if "comment" not in a.type]
    starred = any(a.type in ("spread_element", "variadic_argument") for a in args)
    return _Call(_text(callee), _text(qualifier) if qualifier is not None else None, callee.start_point.row + 1,
                 len(args), starred)


def call_sites(name: str, target: CallIndex, others: Sequence[CallIndex]) -> tuple[CallSite, ...]:
    """The calls, in `others`, of the top-level function `name` of `target`'s file, as its language binds them.

    JavaScript/TypeScript: a name imported from the file by a relative path (or a
    namespace import of it, `ns.name(...)`); Go: a plain call from another file of the
    same directory and package, or `pkg.Name(...)` where the file imports a path
    ending in the directory; Java: `Class.name(...)` from the same package or a file
    importing the class (or its package), and `name(...)` after `import static`.
    """
    directory = target.path.rsplit("/", 1)[0] if "/" in target.path else ""
    stem = target.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    sites: set[CallSite] = set()
    for other in others:
        if other.family != target.family or other.path == target.path:
            continue
        sites.update(CallSite(other.path, c.line, c.positional, c.starred, None)
                     for c in _calls_of(name, target, directory, stem, other))
    return tuple(sorted(sites, key=lambda s: (s.path, s.line, s.positional)))


def _calls_of(name: str, target: CallIndex, directory: str, stem: str, other: CallIndex) -> Iterator[_Call]:
    other_dir = other.path.rsplit("/", 1)[0] if "/" in other.path else ""
    if target.family == "js":
        for imported, bound, spec in other.imports:
            if not _resolves_to(other_dir, spec, target.path):
                continue
            # NOTE: `import {name as other}` is left out: the sites are confirmed by the name's calls.
            if imported == name and bound == name:
                yield from (c for c in other.calls.get(name, ()) if c.qualifier is None)
            elif imported == "*":
                yield from (c for c in other.calls.get(name, ()) if c.qualifier == bound)
    elif target.family == "go":
        calls = other.calls.get(name, ())
        if other_dir == directory and other.package == target.package:
            yield from (c for c in calls if c.qualifier is None)
        last = directory.rsplit("/", 1)[-1]
        for _, alias, spec in other.imports:
            if directory and (spec == directory or spec.endswith("/" + directory)):
                yield from (c for c in calls if c.qualifier == (alias or last))
    else:
        calls = other.calls.get(name, ())
        qualified = f"{target.package}.{stem}" if target.package else stem
        if other.package == target.package or any(
                spec in (qualified, f"{target.package}.*") for _, static, spec in other.imports if not static):
            yield from (c for c in calls if c.qualifier == stem)
        if any(static and spec in (f"{qualified}.{name}", f"{qualified}.*") for _, static, spec in other.imports):
            yield from (c for c in calls if c.qualifier is None)


def _resolves_to(directory: str, spec: str, path: str) -> bool:
    """Whether the relative module specifier `spec`, imported from `directory`, names the file `path`."""
    if not spec.startswith("./") and not spec.startswith("../"):
        return False
    parts = [p for p in directory.split("/") if p]
    for part in spec.split("/"):
        if part == "..":
            if not parts:
                return False
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    joined = "/".join(parts)
    base = path.rsplit(".", 1)[0]
    # `./cart`, `./cart.js` (TypeScript's ESM spelling of cart.ts) and `./cart/` for cart/index.ts.
    candidates = {joined, joined.rsplit(".", 1)[0] if "." in joined.rsplit("/", 1)[-1] else joined,
                  joined + "/index"}
    return base in candidates


# ------------------------------------------------------------------ reorder-imports

def _reordered_imports(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    """Two adjacent imports swapped, each whole on its own lines.

    Why behaviour is unchanged, per language:
    - Java `import` and Rust `use` only bring names into scope at compile time: they run nothing,
      and a name cannot be imported twice, so their order means nothing;
    - Go: since Go 1.21 packages are initialised in the order of their import paths, not of the
      import specs, and gofmt itself sorts the specs of a group; blank (`_`) and dot imports,
      imported for their side effects or names, are not moved;
    - JavaScript/TypeScript: the modules are evaluated in import order, which matters for modules
      imported for their side effects; so only `import ... from` statements of two different
      modules binding names are swapped, never a bare `import "x"` (the form a polyfill or a
      stylesheet is imported in), which is what sort-imports fixers do too.
    """
    if lang in ("javascript", "typescript", "tsx"):
        pairs = _pairs(tree.root_node, "import_statement")
    elif lang == "java":
        pairs = _pairs(tree.root_node, "import_declaration")
    elif lang == "rust":
        pairs = _pairs(tree.root_node, "use_declaration")
    elif lang == "go":
        lists = [n for n in _nodes(tree.root_node) if n.type == "import_spec_list"]
        pairs = [pair for spec_list in lists for pair in _pairs(spec_list, "import_spec")]
    else:
        return
    for a, b in pairs:
        if not (_alone(data, a) and _alone(data, b)) or b.start_point.row != a.end_point.row + 1:
            continue
        if lang in ("javascript", "typescript", "tsx"):
            sources = [n.child_by_field_name("source") for n in (a, b)]
            clauses = [any(c.type == "import_clause" for c in n.named_children) for n in (a, b)]
            if not all(clauses) or None in sources or sources[0].text == sources[1].text:  # type: ignore[union-attr]
                continue
        if lang == "go" and any(n.child_by_field_name("name") is not None
                                and n.child_by_field_name("name").type in ("blank_identifier", "dot")  # type: ignore[union-attr]
                                for n in (a, b)):
            continue
        if lang == "rust":
            before = a.prev_named_sibling
            if before is not None and before.type == "attribute_item":  # `#[cfg(..)]` belongs to `a`
                continue
        yield _Edit("reorder-imports", a, ((a.start_byte, a.end_byte, b.text or b""),
                                           (b.start_byte, b.end_byte, a.text or b"")),
                    f"`{_text(a)[:50]}` and `{_text(b)[:50]}` swapped")


def _pairs(parent: Node, kind: str) -> list[tuple[Node, Node]]:
    """Neighbouring children of `parent` of type `kind`, nothing but whitespace between them."""
    kids = [c for c in parent.named_children]
    return [(a, b) for a, b in itertools.pairwise(kids) if a.type == kind and b.type == kind]


def _alone(data: bytes, node: Node) -> bool:
    """Whether `node` has its lines to itself (no comment or code before or after it on them)."""
    line_start = data.rfind(b"\n", 0, node.start_byte) + 1
    line_end = data.find(b"\n", node.end_byte)
    line_end = len(data) if line_end == -1 else line_end
    return not data[line_start:node.start_byte].strip() and not data[node.end_byte:line_end].strip()


# ------------------------------------------------------------------ resource-not-closed

def _resources_not_closed(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    """A resource the language closes by construction, left open.

    Java: a try-with-resources of one declared resource and no catch or finally becomes
    the declaration followed by its body, one level out; Go: `defer x.Close()` removed
    where it follows the statement that opened `x` (or that statement's `if err != nil`).
    NOTE: JavaScript/TypeScript have no such construct the grammars parse: closing is a
    convention (`finally { x.close() }`, a stream's `end()`, a callback), and `using`
    declarations (TypeScript 5.2) parse as something else, so no plant there would be sure
    to leave something open that was closed.
    """
    if lang == "java":
        yield from _java_unclosed(tree, data)
    elif lang == "go":
        yield from _go_unclosed(tree, data)


def _java_unclosed(tree: Tree, data: bytes) -> Iterator[_Edit]:
    for node in _nodes(tree.root_node):
        if node.type != "try_with_resources_statement" or node.parent is None \
                or node.parent.type not in ("block", "constructor_body"):
            continue
        spec, body = node.child_by_field_name("resources"), node.child_by_field_name("body")
        if spec is None or body is None or any(c.type in ("catch_clause", "finally_clause") for c in node.children):
            continue
        resources = [c for c in spec.named_children if "comment" not in c.type]
        if len(resources) != 1 or resources[0].child_by_field_name("value") is None:
            continue  # several resources, or a variable declared before the try (Java 9)
        resource = resources[0]
        name = resource.child_by_field_name("name")
        declared = _text(resource)
        statements = [c for c in body.named_children if "comment" not in c.type]
        if name is None or "\n" in declared or not statements or not _alone(data, node) \
                or node.start_point.row != body.start_point.row or body.end_point.row <= body.start_point.row:
            continue
        # The header ends at the `{`, the `}` stands alone on its line, and no string spans lines
        # (a text block's lines are its value: they cannot be re-indented).
        close_start = body.end_byte - 1
        close_line = data.rfind(b"\n", 0, close_start) + 1
        open_line_end = data.find(b"\n", body.start_byte)
        if data[body.start_byte + 1:open_line_end].strip() or data[close_line:close_start].strip() \
                or any(n.type in ("string_literal", "text_block") and n.start_point.row != n.end_point.row
                       for n in _nodes(body)):
            continue
        # Out of the try, the resource and the body's locals share the enclosing block: a name
        # they declare met again later in that block would be declared twice (or rebound).
        names = {name.text} | {d.child_by_field_name("name").text  # type: ignore[union-attr]
                               for s in statements if s.type in ("local_variable_declaration", "class_declaration")
                               for d in ([s] if s.type == "class_declaration" else s.named_children)
                               if d.child_by_field_name("name") is not None}
        later = [n for n in _nodes(node.parent) if n.start_byte >= node.end_byte and n.type == "identifier"]
        if any(n.text in names for n in later):
            continue
        outer = _indent(data, node.start_byte)
        inner = _indent(data, statements[0].start_byte)
        if not inner.startswith(outer) or inner == outer:
            continue
        changes = [(node.start_byte, body.start_byte + 1, f"{declared};".encode())]
        for row in range(body.start_point.row + 1, body.end_point.row):
            at = _line_start(data, row, body.start_byte)
            if data.startswith(inner, at):
                changes.append((at + len(outer), at + len(inner), b""))
        line_end = data.find(b"\n", body.end_byte)
        changes.append((close_line, len(data) if line_end == -1 else line_end + 1, b""))
        yield _Edit("resource-not-closed", node, tuple(changes),
                    f"`try ({declared[:60]})` became a plain declaration, never closed, in `{function_name(node)}`")


def _indent(data: bytes, offset: int) -> bytes:
    """The whitespace that starts the line holding `offset`."""
    start = data.rfind(b"\n", 0, offset) + 1
    line = data[start:offset]
    return line[:len(line) - len(line.lstrip())]


def _line_start(data: bytes, row: int, near: int) -> int:
    """The byte offset of line `row` (0-based), counted from `near`, an offset on an earlier line."""
    at, current = data.rfind(b"\n", 0, near) + 1, data.count(b"\n", 0, near)
    while current < row:
        at, current = data.index(b"\n", at) + 1, current + 1
    return at


def _go_unclosed(tree: Tree, data: bytes) -> Iterator[_Edit]:
    for node in _nodes(tree.root_node):
        if node.type != "defer_statement" or not _alone(data, node):
            continue
        call = next((c for c in node.named_children if c.type == "call_expression"), None)
        callee = call.child_by_field_name("function") if call is not None else None
        arguments = call.child_by_field_name("arguments") if call is not None else None
        field = callee.child_by_field_name("field") if callee is not None else None
        if callee is None or field is None or field.text != b"Close" or arguments is None \
                or arguments.named_child_count:
            continue
        root = callee.child_by_field_name("operand")  # `f` of `f.Close()`, `resp` of `resp.Body.Close()`
        while root is not None and root.type == "selector_expression":
            root = root.child_by_field_name("operand")
        if root is None or root.type != "identifier":
            continue
        opener = _previous_statement(node)
        if opener is not None and opener.type == "if_statement" and b"nil" in (
                opener.child_by_field_name("condition").text or b""):  # type: ignore[union-attr]
            opener = _previous_statement(opener)
        left = opener.child_by_field_name("left") if opener is not None \
            and opener.type in ("short_var_declaration", "assignment_statement") else None
        right = opener.child_by_field_name("right") if opener is not None else None
        if opener is None or left is None or right is None or root.text not in {c.text for c in left.named_children} \
                or not any(c.type == "call_expression" for c in right.named_children):
            continue
        # Go refuses a variable declared and not used: the name must be read somewhere else too.
        function = _inside_function(node)
        body = function.child_by_field_name("body") if function is not None else None
        reads = [n for n in _nodes(body) if n.type == "identifier" and n.text == root.text
                 and not (node.start_byte <= n.start_byte < node.end_byte)
                 and not (left.start_byte <= n.start_byte < left.end_byte)] if body is not None else []
        if not reads:
            continue
        start, end = _whole_lines(data, node.start_byte, node.end_byte)
        yield _Edit("resource-not-closed", node, ((start, end, b""),),
                    f"`{_text(node)}` removed after `{_text(opener)[:60]}`: never closed, in `{function_name(node)}`")


def _previous_statement(node: Node) -> Node | None:
    before = node.prev_named_sibling
    while before is not None and before.type == "comment":
        before = before.prev_named_sibling
    return before


# ------------------------------------------------------------------ extract-constant

# (parent type, field or None for any): where a literal is a plain value, so a constant of the same
# value reads the same there (not a key, a type, a pattern, a case label, a macro's tokens).
VALUE_PLACES: frozenset[tuple[str, str | None]] = frozenset({
    ("arguments", None), ("argument_list", None), ("binary_expression", None), ("return_statement", None),
    ("return_expression", None), ("variable_declarator", "value"), ("let_declaration", "value"),
    ("assignment_expression", "right"), ("pair", "value"), ("array", None),
    ("ternary_expression", "consequence"), ("ternary_expression", "alternative"),
})
GO_VALUE_LISTS = frozenset({"return_statement", "short_var_declaration", "assignment_statement"})
CONSTANT_SYNTAX = {
    "javascript": "const {name} = {value};", "typescript": "const {name} = {value};", "tsx": "const {name} = {value};",
    "go": "const {name} = {value}", "java": "private static final String {name} = {value};",
    "rust": "const {name}: {type} = {value};",
}
IMPORTS = {"javascript": ("import_statement",), "typescript": ("import_statement",), "tsx": ("import_statement",),
           "go": ("package_clause", "import_declaration"),
           "rust": ("use_declaration", "extern_crate_declaration", "inner_attribute_item")}


def _extracted_constants(tree: Tree, data: bytes, lang: str) -> Iterator[_Edit]:
    """A literal of a function moved to a new constant, after the imports (Java: first in the class).

    Behaviour is kept by construction: the name is in no identifier, string or comment of
    the file, so it binds nothing else and nothing shadows it, and the constant holds the
    literal itself: JS/TS `const` (its type the literal's, widened where the literal's is),
    a Go untyped constant (a literal is one), a Java `static final String` (a constant variable,
    interned as the literal is), a Rust `const` of `&str` or of an integer's suffix. Numbers
    whose type the context chooses are left alone in Java and Rust; C and C++ get none.
    NOTE: a Go constant is package-wide: a file of the same package declaring the same name
    would not compile. The names (`tooLongText`, `limit42`) make that unlikely, not impossible:
    the mutator sees one file.
    """
    if lang not in CONSTANT_SYNTAX:
        return
    root = tree.root_node
    if lang in ("javascript", "typescript", "tsx") and not any(
            c.type in ("import_statement", "export_statement") for c in root.named_children) \
            and b"require(" not in data and b"module.exports" not in data:
        return  # a classic script: its top-level `const` joins the scope every script shares
    insert_at = _constant_place(root, data, lang) if lang != "java" else None
    if lang != "java" and insert_at is None:
        return
    for node in _nodes(root):
        literal = _literal(node, lang)
        if literal is None or not _in_value_place(node):
            continue
        kind, words = literal
        function = _inside_function(node)
        if function is None:
            continue
        name = _constant_name(words, kind, lang)
        if name is None or name.encode() in data:
            continue
        value = _text(node)
        line = CONSTANT_SYNTAX[lang].format(name=name, value=value, type=kind)
        if lang == "java":
            place = _java_constant_place(node, data)
            if place is None:
                continue
            at, indent = place
            insert = f"{indent}{line}\n\n"
        elif lang == "rust" and any(a.type == "mod_item" for a in _ancestors(node)):
            continue  # a nested module does not see its parent's items
        else:
            assert insert_at is not None
            at = insert_at
            # A blank line either side, unless one is there already.
            lead = "\n" if at > 0 and data[data.rfind(b"\n", 0, at - 1) + 1:at].strip() else ""
            follow = "\n" if data[at:].split(b"\n", 1)[0].strip() else ""
            insert = f"{lead}{line}\n{follow}"
        yield _Edit("extract-constant", node, ((at, at, insert.encode()), (node.start_byte, node.end_byte,
                                                                            name.encode())),
                    f"the literal `{value[:30]}` of `{function_name(node)}` moved to a constant `{name}`")


def _ancestors(node: Node) -> Iterator[Node]:
    above = node.parent
    while above is not None:
        yield above
        above = above.parent


def _literal(node: Node, lang: str) -> tuple[str, str] | None:
    """(type, text to name it by) of a literal worth a constant: a one-line string of 3 to 40 characters,
    a number other than 0, 1, 2 where its type cannot change (JS/TS, Go; Rust with a suffix); else None."""
    raw = _text(node)
    string = {"javascript": ("string",), "typescript": ("string",), "tsx": ("string",),
              "go": ("interpreted_string_literal", "raw_string_literal"), "java": ("string_literal",),
              "rust": ("string_literal", "raw_string_literal")}[lang]
    if node.type in string:
        if "\n" in raw or raw.startswith(('"""', "b", "br")):
            return None
        body = raw.strip("r#")[1:-1]
        return ("&str", body) if 3 <= len(body) <= 40 and body.isprintable() else None
    if lang in ("java",) or node.type not in INTEGERS | {"float_literal"}:
        return None
    number = _integer(node, lang) if node.type in INTEGERS else None
    if number is None and node.type in ("number", "float_literal") and lang != "rust":
        whole, dot, fraction = raw.partition(".")
        if dot and whole.isdigit() and fraction.isdigit():
            return "float", raw
        return None
    if number is None or number[0] <= 2 or (lang == "rust" and not number[1]):
        return None
    return number[1] or "int", raw


def _in_value_place(node: Node) -> bool:
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "expression_list":  # Go: the values of a return or an assignment, not a case label
        grand = parent.parent
        return grand is not None and grand.type in GO_VALUE_LISTS and treesitter.field_of(parent) != "left"
    return (parent.type, None) in VALUE_PLACES or (parent.type, treesitter.field_of(node)) in VALUE_PLACES


def _constant_name(words: str, kind: str, lang: str) -> str | None:
    """UPPER_SNAKE (Go: lowerCamel) from a string's words, `LIMIT_42` for a number."""
    parts = "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in words).lower().split()[:5]
    if kind != "&str":
        parts = ["limit", words.replace(".", "_").rstrip("_")]
    elif not parts or parts[0][0].isdigit():
        parts = ["text", *parts]
    if lang == "go":  # a suffix keeps it from shadowing a predeclared name (`len`, `string`) package-wide
        parts = parts if kind != "&str" else [*parts, "text"]
        name = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    else:
        name = "_".join(parts).upper()
    name = name[:40]
    return name if name.isidentifier() else None


def _constant_place(root: Node, data: bytes, lang: str) -> int | None:
    """Where a new top-level constant goes: the line after the imports (Go: after the package clause
    when there are none); with nothing to follow, before the first statement if no comment precedes it."""
    kids = list(root.named_children)
    anchor = None
    for kid in kids:
        if kid.type in IMPORTS[lang]:
            anchor = kid
        elif "comment" not in kid.type:
            break
    if anchor is not None:
        if not _alone(data, anchor):
            return None
        end = data.find(b"\n", anchor.end_byte)
        return len(data) if end == -1 else end + 1
    first = kids[0] if kids else None
    if first is None or "comment" in first.type or first.type == "attribute_item" or first.start_byte != 0:
        return None
    return 0


def _java_constant_place(node: Node, data: bytes) -> tuple[int, str] | None:
    """(offset, indent) of the start of the body of the member class whose method holds `node`; None in an
    interface, an enum, an anonymous or local class (where a static field is not allowed or would be inherited
    over)."""
    body = next((a for a in _ancestors(node) if a.type in ("class_body", "interface_body", "enum_body")), None)
    cls = body.parent if body is not None else None
    if body is None or cls is None or body.type != "class_body" or cls.type != "class_declaration" \
            or cls.parent is None or cls.parent.type not in ("program", "class_body"):
        return None
    first = body.named_children[0] if body.named_children else None
    if first is None or first.start_point.row == body.start_point.row or not _alone(data, first):
        return None
    at = data.rfind(b"\n", 0, first.start_byte) + 1
    return at, treesitter.decode(data[at:first.start_byte])
