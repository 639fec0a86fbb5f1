"""Where a name is defined and used, in the source of one file, by a parser.

Python is parsed with the standard library's `ast`: definitions are `def`,
`async def`, `class`, module- and class-level assignments (plain, annotated,
augmented), imports that bind the name, and parameters; references are every
other use of the name (a `Name`, an attribute `x.name`, a keyword argument
`name=`) and every use of `g` after `from m import name as g`.

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

Pure functions over text; nothing here reads files or runs anything.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

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
    return _one_per_line(out)


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
