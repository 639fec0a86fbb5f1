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
  removed with its lines.
Controls (the behaviour is unchanged):
- rename-local: a local declared at the top of a function body renamed at each of its identifiers;
- reformat: blank lines added between statements of a function body.

Not made here: wrong-variable, swallowed-exception, resource-not-closed, extract-constant,
reorder-imports and stale-callers (`callers` is accepted and unused).
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tree_sitter import Node, Tree

from .. import symbols, treesitter
from .models import CallSite, Mutant


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


def mutants(path: str, text: str, callers: Callable[[str, str], Sequence[CallSite]] | None = None) -> list[Mutant]:
    """Every candidate mutant of `text`, planted kinds then controls, each in document order.

    Empty when the file is not covered or does not parse cleanly: a mutant of a
    broken file could not be told from the breakage. `callers` is not used:
    stale-callers is made for Python only.
    """
    lang = treesitter.language(path)
    if lang is None:
        return []
    data = treesitter.encode(text)
    tree = treesitter.parse(path, data)
    if tree is None or treesitter.has_errors(tree):
        return []
    makers: tuple[Callable[[Tree, bytes, str], Iterator[_Edit]], ...] = (
        _inverted_conditions, _off_by_ones, _swapped_arguments, _changed_defaults, _removed_guards,
        _renamed_locals, _reformats,
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
                              description=edit.description, new_text=new_text))
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
    touched: list[int] = []
    matcher = difflib.SequenceMatcher(None, old[head:len(old) - tail], new[head:len(new) - tail], autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        j1, j2 = j1 + head, j2 + head
        if tag == "equal":
            continue
        if j2 > j1:
            touched += [j1 + 1, j2]
        else:
            touched += [max(1, j1), max(1, min(len(new), j1 + 1))]
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
