"""The languages parsed with tree-sitter, and one parser per language and thread.

A file's language comes from its suffix (`SUFFIXES`); each language's grammar
is a separate wheel from the tree-sitter organisation (`GRAMMARS`), bundled,
so nothing is downloaded at run time (tree-sitter-language-pack 1.x fetches
its grammars from GitHub on first use, which fails offline and in a locked-down
CI). Grammars are imported on first use: a review that touches only Python
never loads them.

Python is not here: `reviewer.symbols` parses it with the standard library.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from tree_sitter import Language, Node, Parser, Tree


@dataclass(frozen=True)
class Grammar:
    """Where a language's grammar comes from."""

    display: str
    """How the language is named to people: "C++"."""
    module: str
    """The grammar's Python module: tree_sitter_go."""
    function: str
    """The module's function returning the language pointer (tree-sitter-typescript has two)."""
    package: str
    """The distribution that ships `module`, for its version."""


GRAMMARS: dict[str, Grammar] = {
    "javascript": Grammar("JavaScript", "tree_sitter_javascript", "language", "tree-sitter-javascript"),
    "typescript": Grammar("TypeScript", "tree_sitter_typescript", "language_typescript", "tree-sitter-typescript"),
    "tsx": Grammar("TypeScript", "tree_sitter_typescript", "language_tsx", "tree-sitter-typescript"),
    "go": Grammar("Go", "tree_sitter_go", "language", "tree-sitter-go"),
    "java": Grammar("Java", "tree_sitter_java", "language", "tree-sitter-java"),
    "rust": Grammar("Rust", "tree_sitter_rust", "language", "tree-sitter-rust"),
    "c": Grammar("C", "tree_sitter_c", "language", "tree-sitter-c"),
    "cpp": Grammar("C++", "tree_sitter_cpp", "language", "tree-sitter-cpp"),
}

SUFFIXES: dict[str, str] = {
    # The JavaScript grammar parses JSX too; .ts cannot (`<T>x` is a cast there), hence the two TS grammars.
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
    ".c": "c",
    # NOTE: a .h file may be C or C++. The C++ grammar accepts nearly all C (not C++ keywords used as
    # names), while the C grammar rejects every class, so headers go to C++.
    ".h": "cpp",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp",
}

ENCODING_ERRORS = "surrogatepass"
"""How text is turned into the bytes tree-sitter reads: any `str` survives the round trip."""

_languages: dict[str, Language] = {}
_languages_lock = threading.Lock()
# py-tree-sitter's Parser is not safe to share between threads, and find_symbol runs in worker
# threads: each thread gets its own parsers, so a parse never waits on another one.
_local = threading.local()


def language(path: str) -> str | None:
    """The language `path` is parsed as (a key of GRAMMARS), or None when none covers it."""
    dot = path.rfind(".")
    if dot <= path.rfind("/"):
        return None
    return SUFFIXES.get(path[dot:].lower())


def display_names() -> list[str]:
    """The covered languages as people name them, in table order, each once."""
    return list(dict.fromkeys(g.display for g in GRAMMARS.values()))


@cache
def parser_name(language: str) -> str:
    """What parses `language`: "tree-sitter (tree-sitter-go 0.25.0)"."""
    package = GRAMMARS[language].package
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return f"tree-sitter ({package})"
    return f"tree-sitter ({package} {version})"


def grammar(language: str) -> Language:
    """The tree-sitter Language of `language`, its grammar imported on first use."""
    found = _languages.get(language)
    if found is None:
        with _languages_lock:
            found = _languages.get(language)
            if found is None:
                g = GRAMMARS[language]
                found = Language(getattr(importlib.import_module(g.module), g.function)())
                _languages[language] = found
    return found


def parser(language: str) -> Parser:
    """This thread's parser for `language`."""
    parsers: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    found = parsers.get(language)
    if found is None:
        found = parsers[language] = Parser(grammar(language))
    return found


def encode(text: str) -> bytes:
    return text.encode("utf-8", ENCODING_ERRORS)


def decode(data: bytes) -> str:
    return data.decode("utf-8", ENCODING_ERRORS)


def parse(path: str, text: str | bytes) -> Tree | None:
    """`text` parsed as the language of `path`; None when no grammar covers it.

    tree-sitter always returns a tree: a syntax error becomes ERROR or MISSING
    nodes (see `has_errors`) and the rest of the file is still parsed.
    """
    lang = language(path)
    if lang is None:
        return None
    return parser(lang).parse(encode(text) if isinstance(text, str) else text)


def reparse(path: str, tree: Tree, data: bytes, changes: Iterable[tuple[int, int, bytes]]) -> tuple[bytes, Tree]:
    """`data` (which `tree` is the parse of) with `changes` made, and its tree.

    `changes` are disjoint (start byte, end byte, new bytes). The tree is parsed
    incrementally from a copy of `tree`, told about the edits, so only the
    changed region is parsed again (tree-sitter's promise: the same tree as a
    full parse); `tree` itself is left as it was.
    """
    edited = tree.copy()
    # From the last change back: the bytes and points before a change are still those of `data`.
    for start, end, new in sorted(changes, reverse=True):
        start_point = _point(data, start)
        lines = new.split(b"\n")
        new_end_point = (start_point[0] + len(lines) - 1, (start_point[1] if len(lines) == 1 else 0) + len(lines[-1]))
        edited.edit(start_byte=start, old_end_byte=end, new_end_byte=start + len(new), start_point=start_point,
                    old_end_point=_point(data, end), new_end_point=new_end_point)
        data = data[:start] + new + data[end:]
    lang = language(path)
    assert lang is not None, path
    return data, parser(lang).parse(data, edited)


def _point(data: bytes, offset: int) -> tuple[int, int]:
    """(row, column in bytes) of a byte offset, as tree-sitter counts them."""
    return data.count(b"\n", 0, offset), offset - (data.rfind(b"\n", 0, offset) + 1)


def has_errors(tree: Tree) -> bool:
    """Whether the tree holds an ERROR or a MISSING node (the text did not parse cleanly)."""
    # Node.has_error is set on every ancestor of an ERROR or MISSING node.
    return tree.root_node.has_error


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node under it, in document order (named and anonymous)."""
    cursor = node.walk()
    while True:
        assert cursor.node is not None
        yield cursor.node
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent() or cursor.node == node:
                return


def field_of(child: Node) -> str | None:
    """The field name under which `child` hangs from its parent, or None."""
    parent = child.parent
    if parent is None:
        return None
    for i, c in enumerate(parent.children):
        if c == child:
            return parent.field_name_for_child(i)
    return None
