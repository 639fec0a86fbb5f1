"""The eval's mutants for the languages tree-sitter parses: each is what its kind says, checked on the tree.

One realistic snippet per language. For every mutant: the new text parses cleanly, the
change is the one its kind claims (looked at on the old and new trees, around the changed
bytes), `start`/`end` are the lines the bytes changed on, and the same input gives the
same mutants.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tree_sitter import Node

from reviewer import treesitter
from reviewer.eval import cases
from reviewer.eval import mutants_treesitter as mt
from reviewer.eval.models import CallSite, Mutant, Site
from reviewer.repo_view import RepoView

SNIPPETS = {
    "src/cart.js": ("""\
import { round } from "./money.js";

export function total(items, tax = 0, label = "cart") {
  if (items == null) {
    return 0;
  }
  const count = items.length;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    sum += items[i].price;
  }
  if (sum > 100 && tax !== 0) {
    return round(sum, tax);
  }
  return items[count - 1].price + sum;
}
""", "total"),
    "web/user.ts": ("""\
export function page(users: User[], size: number = 20, strict: boolean = false): User[] {
  if (users === undefined) {
    throw new Error("no users");
  }
  const start = users.length - size;
  const shown = users.slice(start, size);
  while (shown.length >= size || strict) {
    shown.pop();
  }
  return shown;
}
""", "page"),
    "store/store.go": ("""\
package store

type Store struct{ items map[string]int }

func (s *Store) Sum(keys []string, limit int) (int, error) {
	if s == nil {
		return 0, errNil
	}
	total := 0
	for i := 0; i < limit; i++ {
		total += s.items[keys[i]]
	}
	if total >= 10 && limit != 0 {
		return clamp(total, limit), nil
	}
	return total + len(keys[1]), nil
}
""", "Store.Sum"),
    "src/main/java/a/Account.java": ("""\
package a;

public class Account {
    private long[] history = new long[8];

    public long withdraw(Ledger ledger, long amount) {
        if (ledger == null) {
            throw new IllegalStateException("no ledger");
        }
        long balance = ledger.balance();
        for (int i = 0; i < history.length; i++) {
            balance -= history[i];
        }
        if (amount > balance || amount <= 0) {
            return ledger.reject(amount, balance);
        }
        return history[0];
    }
}
""", "Account.withdraw"),
    "src/stack.rs": ("""\
pub struct Stack { items: Vec<u32> }

impl Stack {
    pub fn peek_sum(&self, top: Option<usize>, n: usize) -> u32 {
        if top.is_none() {
            return 0;
        }
        let depth = self.items.len();
        let mut sum = 0;
        while sum < 100 && depth > n {
            sum += self.items[depth - 1];
        }
        combine(sum, n as u32) + self.items[0]
    }
}
""", "Stack.peek_sum"),
    "lib/list.c": ("""\
#include <stddef.h>

struct node { int val; struct node *next; };

int sum_first(const struct node *head, int limit) {
    if (head == NULL) {
        return -1;
    }
    int total = 0;
    if (limit > 64) {
        limit = 64;
    }
    for (int i = 0; i < limit && head != NULL; i++) {
        total += head->val;
        head = head->next;
    }
    return clamp(total, limit);
}
""", "sum_first"),
    "src/grid.cpp": ("""\
#include <vector>

int Grid::cell(const std::vector<int> &cells, int row, int width = 8) {
    if (cells.data() == nullptr) {
        return 0;
    }
    int index = row * width;
    if (index >= static_cast<int>(cells.size())) {
        return at(cells, index);
    }
    return cells[index + 1];
}
""", "Grid.cell"),
}

EXPECTED_KINDS = {
    "src/cart.js": {"inverted-condition", "off-by-one", "swapped-arguments", "changed-default", "removed-guard",
                    "wrong-variable", "rename-local", "reformat", "extract-constant"},
    "web/user.ts": {"inverted-condition", "swapped-arguments", "changed-default", "removed-guard", "rename-local",
                    "reformat", "extract-constant"},
    "store/store.go": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard", "wrong-variable",
                       "rename-local", "reformat", "extract-constant"},
    "src/main/java/a/Account.java": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard",
                                     "rename-local", "reformat", "extract-constant"},
    "src/stack.rs": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard", "rename-local",
                     "reformat"},
    "lib/list.c": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard", "wrong-variable",
                   "rename-local", "reformat"},
    "src/grid.cpp": {"inverted-condition", "off-by-one", "swapped-arguments", "changed-default", "removed-guard",
                     "rename-local", "reformat"},
}

# One snippet per language for the kinds that need a try, typed locals or imports: the kinds it must give.
MORE_SNIPPETS: dict[str, tuple[str, set[str]]] = {
    "src/sync.js": ("""\
import { fetchRows } from "./api.js";
import { log } from "./log.js";
import "./polyfill.js";

export function sync(store, limit) {
  const first = store.first();
  const last = store.last();
  try {
    return fetchRows(first, last, limit);
  } catch (err) {
    log(err);
    return [];
  }
}
""", {"swallowed-exception", "wrong-variable", "reorder-imports"}),
    "web/load.ts": ("""\
import type { Row } from "./row";
import { parse } from "./parse";

export function load(text: string, start: number, end: number): Row[] {
  const from: number = start + 1;
  const to: number = end - 1;
  let rows: Row[] = [];
  try {
    rows = parse(text.slice(from, to));
  } catch (e) {
    console.error(e);
  }
  return rows;
}
""", {"swallowed-exception", "wrong-variable", "reorder-imports"}),
    "store/load.go": ("""\
package store

import (
	"fmt"
	"strings"
)

func Load(name string, size int) (string, error) {
	step := 1
	count := 0
	for count < size {
		count += step * len(name)
	}
	if count > size {
		return "", fmt.Errorf("too long: %d", count)
	}
	return strings.Repeat(name, count), nil
}
""", {"wrong-variable", "reorder-imports"}),
    "src/main/java/a/Loader.java": ("""\
package a;

import java.io.IOException;
import java.util.List;

public class Loader {
    public static int load(Source source, int first, int last) {
        int lo = first + 1;
        int hi = last - 1;
        try {
            return source.read(lo, hi);
        } catch (IOException e) {
            log(e);
        }
        return hi - lo;
    }
}
""", {"swallowed-exception", "wrong-variable", "reorder-imports"}),
    "src/load.rs": ("""\
use std::fmt;
use std::io::Read;

pub fn load(first: usize, last: usize) -> usize {
    let lo: usize = first + 1;
    let hi: usize = last - 1;
    if lo > hi {
        return 0;
    }
    hi - lo
}
""", {"wrong-variable", "reorder-imports"}),
    "lib/load.c": ("""\
int load(const char *buf, int first, int last) {
    int lo = first + 1;
    int hi = last - 1;
    while (lo < hi && buf[lo] != '\\0') {
        lo++;
    }
    return hi - lo;
}
""", {"wrong-variable"}),
    "src/load.cpp": ("""\
#include <stdexcept>

int Loader::load(const Source &source, int first, int last) {
    int lo = first + 1;
    int hi = last - 1;
    try {
        return source.read(lo, hi);
    } catch (const std::runtime_error &e) {
        report(e.what());
        return -1;
    }
}
""", {"swallowed-exception", "wrong-variable"}),
    "src/main/java/a/Reader.java": ("""\
package a;

import java.nio.file.Files;

public class Reader {
    public static String first(Path path, int skip) throws IOException {
        try (var in = Files.newBufferedReader(path)) {
            String line = in.readLine();
            return line == null ? "empty file" : line.substring(skip);
        }
    }
}
""", {"resource-not-closed", "extract-constant"}),
    "store/read.go": ("""\
package store

import "os"

func Read(name string) ([]byte, error) {
\tf, err := os.Open(name)
\tif err != nil {
\t\treturn nil, err
\t}
\tdefer f.Close()
\treturn readAll(f, 4096, "read file")
}
""", {"resource-not-closed", "extract-constant"}),
    "src/name.rs": ("""\
//! Names.
use std::fmt;

pub fn label(n: usize) -> String {
    let width = 12usize;
    println!("label {}", n);
    join("unnamed", n + width, 100)
}
""", {"extract-constant"}),
}


def changed(old: bytes, new: bytes) -> tuple[int, int, int]:
    """(first differing byte, end of the change in old, end of the change in new)."""
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, len(old) - suffix, len(new) - suffix


def node_at(root: Node, start: int, end: int) -> Node:
    node = root.descendant_for_byte_range(start, max(start, end - 1) if end > start else start)
    assert node is not None
    while node.parent is not None and not (node.start_byte <= start and end <= node.end_byte):
        node = node.parent
    return node


def literal_at(root: Node, start: int, end: int) -> Node:
    """The literal around the changed bytes (a string's fragment is inside its string)."""
    node = node_at(root, start, end)
    while node.type not in mt.INTEGERS | {"true", "false", "string", "string_literal"}:
        assert node.parent is not None
        node = node.parent
    return node


def line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def shape(node: Node) -> list[str]:
    """Node types in document order: what layout and renaming must keep."""
    return [n.type for n in treesitter.walk(node) if n.is_named]


def identifiers(node: Node) -> list[str]:
    return [treesitter.decode(n.text or b"") for n in treesitter.walk(node) if n.type == "identifier"]


def leaves(node: Node) -> list[tuple[str, bytes]]:
    return [(n.type, n.text or b"") for n in treesitter.walk(node) if n.child_count == 0]


DECLARED_CONSTANTS = frozenset({"lexical_declaration", "const_declaration", "field_declaration", "const_item"})


def inline_constant(path: str, old_root: Node, new: bytes, m: Mutant) -> tuple[int, int]:
    """Checks that the new tree, with its one new constant inlined back and its declaration dropped, is the
    old one, leaf for leaf; (start of the declaration, end of the literal's one use) in `new`."""
    new_tree = treesitter.parse(path, new)
    assert new_tree is not None
    old_declarations = {n.text for n in treesitter.walk(old_root) if n.type in DECLARED_CONSTANTS}
    added = [n for n in treesitter.walk(new_tree.root_node)
             if n.type in DECLARED_CONSTANTS and n.text not in old_declarations]
    assert len(added) == 1
    declaration = added[0]
    names = [n for n in treesitter.walk(declaration) if n.type == "identifier"]
    assert len(names) == 1
    name = names[0].text or b""
    assert name not in (old_root.text or b"")
    value = declaration.text.rstrip(b";").split(b" = ", 1)[1]  # type: ignore[union-attr]
    uses = [n for n in treesitter.walk(new_tree.root_node) if n.type == "identifier" and n.text == name
            and not (declaration.start_byte <= n.start_byte < declaration.end_byte)]
    assert len(uses) == 1
    use = uses[0]
    if path.endswith(".java"):
        assert declaration.text.startswith(b"private static final String ") and value.startswith(b'"')  # type: ignore[union-attr]
    if path.endswith(".rs"):
        kind = declaration.child_by_field_name("type")
        assert kind is not None and (kind.text == b"&str" or value.endswith(kind.text or b"?"))
    inlined = new[:declaration.start_byte] + new[declaration.end_byte:use.start_byte] + value + new[use.end_byte:]
    inlined_tree = treesitter.parse(path, inlined)
    assert inlined_tree is not None and not inlined_tree.root_node.has_error
    assert leaves(inlined_tree.root_node) == leaves(old_root)
    line_start = new.rfind(b"\n", 0, declaration.start_byte) + 1
    return line_start, use.end_byte


def check(path: str, old_text: str, m: Mutant) -> None:
    old, new = treesitter.encode(old_text), treesitter.encode(m.new_text)
    assert mt.parses(path, m.new_text), m
    old_tree, new_tree = treesitter.parse(path, old), treesitter.parse(path, new)
    assert old_tree is not None and new_tree is not None
    start, old_end, new_end = changed(old, new)
    if m.kind == "inverted-condition":
        op_old, op_new = node_at(old_tree.root_node, start, old_end), node_at(new_tree.root_node, start, new_end)
        assert mt.INVERSE[op_old.type] == op_new.type and not op_new.is_named
        assert op_new.parent is not None and op_new.parent.type == "binary_expression"
        above = op_new.parent
        while above.parent is not None and treesitter.field_of(above) != "condition":
            above = above.parent
        assert treesitter.field_of(above) == "condition"
    elif m.kind in ("off-by-one", "changed-default"):
        before, after = literal_at(old_tree.root_node, start, old_end), literal_at(new_tree.root_node, start, new_end)
        assert before.type == after.type or {before.type, after.type} == {"true", "false"}
        if before.type in mt.INTEGERS:
            digits = [int("".join(ch for ch in treesitter.decode(n.text or b"") if ch.isdigit())) for n in (before, after)]
            assert digits[1] == digits[0] + 1
        if m.kind == "changed-default":
            assert treesitter.field_of(after) in ("right", "value", "default_value")
    elif m.kind == "swapped-arguments":
        call = node_at(new_tree.root_node, start, new_end)
        while call.type not in mt.ARGUMENT_LISTS:
            assert call.parent is not None
            call = call.parent
        old_call = node_at(old_tree.root_node, call.start_byte, call.end_byte)
        while old_call.type not in mt.ARGUMENT_LISTS:
            assert old_call.parent is not None
            old_call = old_call.parent
        before = [a.text for a in old_call.named_children]
        after = [a.text for a in call.named_children]
        swapped = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(swapped) == 2 and after[swapped[0]] == before[swapped[1]] and after[swapped[1]] == before[swapped[0]]
    elif m.kind == "removed-guard":
        assert len(new) < len(old)
        # The new text is the old one without the whole lines of one `if` holding a null check.
        guards = [n for n in treesitter.walk(old_tree.root_node) if n.type in ("if_statement", "if_expression")]
        lines = old.splitlines(keepends=True)
        dropped = [n for n in guards
                   if b"".join(lines[:n.start_point.row] + lines[n.end_point.row + 1:]) == new]
        assert len(dropped) == 1
        assert any(word in (dropped[0].child_by_field_name("condition").text or b"")  # type: ignore[union-attr]
                   for word in (b"null", b"nil", b"NULL", b"nullptr", b"undefined", b"is_none"))
        start, new_end = len(b"".join(lines[:dropped[0].start_point.row])), len(b"".join(lines[:dropped[0].start_point.row]))
        count = sum(1 for n in treesitter.walk(old_tree.root_node) if n.type in ("if_statement", "if_expression"))
        assert sum(1 for n in treesitter.walk(new_tree.root_node)
                   if n.type in ("if_statement", "if_expression")) == count - 1
    elif m.kind == "rename-local":
        assert shape(old_tree.root_node) == shape(new_tree.root_node)
        renamed = {(a, b) for a, b in zip(identifiers(old_tree.root_node), identifiers(new_tree.root_node),
                                          strict=True) if a != b}
        assert len(renamed) == 1
        (was, now), = renamed
        assert was not in identifiers(new_tree.root_node) and now not in old_text
    elif m.kind == "reformat":
        assert shape(old_tree.root_node) == shape(new_tree.root_node)
        assert new.replace(b"\n\n", b"\n") == old.replace(b"\n\n", b"\n") and len(new) > len(old)
    elif m.kind == "wrong-variable":
        # One identifier read in place of another, a local of the same function declared before it.
        assert shape(old_tree.root_node) == shape(new_tree.root_node)
        was, now = node_at(old_tree.root_node, start, old_end), node_at(new_tree.root_node, start, new_end)
        assert was.type == now.type == "identifier" and was.text != now.text
        function = mt._inside_function(was)
        assert function is not None
        declared = [n for n in treesitter.walk(function) if n.type == "identifier" and n.text == now.text
                    and n.start_byte < was.start_byte and mt.symbols.definition_kind(n) == "assignment"
                    and not mt._written(n)]
        assert len(declared) == 1 and mt._inside_function(declared[0]) == function
        assert mt.symbols.definition_kind(now) is None
    elif m.kind == "swallowed-exception":
        before = [n for n in treesitter.walk(old_tree.root_node) if n.type == "catch_clause"]
        after = [n for n in treesitter.walk(new_tree.root_node) if n.type == "catch_clause"]
        assert len(before) == len(after)
        changed_pairs = [(a, b) for a, b in zip(before, after, strict=True) if a.text != b.text]
        assert len(changed_pairs) == 1
        a, b = changed_pairs[0]
        body_a, body_b = a.child_by_field_name("body"), b.child_by_field_name("body")
        assert body_a is not None and body_b is not None and body_b.text == b"{}" and body_a.named_child_count > 0
        head_a, head_b = (n.text[:n.text.index(b"{")] for n in (a, b))  # type: ignore[union-attr]
        if head_a != head_b:  # Java: a narrow type broadened, the parameter kept
            assert path.endswith(".java") and head_b.split()[-1] == head_a.split()[-1]
            assert b"Exception " in head_b and head_a.count(b"(") == head_b.count(b"(")
    elif m.kind == "reorder-imports":
        # The same tree with two neighbouring import nodes exchanged, and nothing else.
        assert sorted(shape(old_tree.root_node)) == sorted(shape(new_tree.root_node))
        imports = ("import_spec",) if path.endswith(".go") else ("import_statement", "import_declaration",
                                                                  "use_declaration")
        olds = [n for n in treesitter.walk(old_tree.root_node) if n.type in imports]
        news = [n for n in treesitter.walk(new_tree.root_node) if n.type in imports]
        texts_old, texts_new = [n.text for n in olds], [n.text for n in news]
        moved = [i for i, (x, y) in enumerate(zip(texts_old, texts_new, strict=True)) if x != y]
        assert len(moved) == 2 and moved[1] == moved[0] + 1
        assert texts_new[moved[0]] == texts_old[moved[1]] and texts_new[moved[1]] == texts_old[moved[0]]
        assert all(b'import "' not in (t or b"") for t in (texts_old[i] for i in moved))  # a bare import stays
        assert all(b"_ " not in (t or b"") for t in (texts_old[i] for i in moved))  # a Go blank import too
        swapped = old[:olds[moved[0]].start_byte] + texts_old[moved[1]] + old[olds[moved[0]].end_byte:  # type: ignore[operator]
                                                                               olds[moved[1]].start_byte] \
            + texts_old[moved[0]] + old[olds[moved[1]].end_byte:]  # type: ignore[operator]
        assert swapped == new
        start, new_end = olds[moved[0]].start_byte, olds[moved[1]].end_byte
    elif m.kind == "stale-callers":
        assert m.sites and "gained a required parameter" in m.description
        params = ("formal_parameters", "parameter_list")
        old_params = [n for n in treesitter.walk(old_tree.root_node) if n.type in params]
        new_params = [n for n in treesitter.walk(new_tree.root_node) if n.type in params]
        grown = [(a, b) for a, b in zip(old_params, new_params, strict=True) if a.text != b.text]
        assert len(grown) == 1
        a, b = grown[0]
        assert len(b.named_children) == len(a.named_children) + 1
        assert [c.text for c in b.named_children[1:]] == [c.text for c in a.named_children]
    elif m.kind == "resource-not-closed" and path.endswith(".go"):
        # The old text without the whole line of one `defer x.Close()` that follows the opening of `x`.
        defers = [n for n in treesitter.walk(old_tree.root_node) if n.type == "defer_statement"
                  and (n.text or b"").endswith(b".Close()")]
        lines = old.splitlines(keepends=True)
        dropped = [n for n in defers if b"".join(lines[:n.start_point.row] + lines[n.end_point.row + 1:]) == new]
        assert len(dropped) == 1
        root = (dropped[0].text or b"").split()[1].split(b".")[0]
        opener = mt._previous_statement(dropped[0])
        if opener is not None and opener.type == "if_statement":
            opener = mt._previous_statement(opener)
        assert opener is not None and root in [c.text for c in opener.child_by_field_name("left").named_children]  # type: ignore[union-attr]
        start = new_end = len(b"".join(lines[:dropped[0].start_point.row]))
    elif m.kind == "resource-not-closed":
        # Java: one try-with-resources fewer; its resource declared in its place, then its statements.
        tries = [n for n in treesitter.walk(old_tree.root_node) if n.type == "try_with_resources_statement"]
        assert len(tries) - 1 == sum(1 for n in treesitter.walk(new_tree.root_node)
                                     if n.type == "try_with_resources_statement")
        gone = [t for t in tries if node_at(new_tree.root_node, t.start_byte, t.start_byte + 1).type != "try"]
        assert len(gone) == 1
        resource = gone[0].child_by_field_name("resources").named_children[0]  # type: ignore[union-attr]
        body = gone[0].child_by_field_name("body")
        assert body is not None
        declaration = node_at(new_tree.root_node, gone[0].start_byte, gone[0].start_byte + 1)
        while declaration.type != "local_variable_declaration":
            assert declaration.parent is not None
            declaration = declaration.parent
        assert declaration.text == (resource.text or b"") + b";"
        after, moved = declaration.next_named_sibling, []
        for statement in body.named_children:
            assert after is not None and shape(after) == shape(statement)
            assert after.text is not None and after.text.split() == (statement.text or b"").split()
            moved.append(after)
            after = after.next_named_sibling
        new_end = moved[-1].end_byte
    elif m.kind == "extract-constant":
        start, new_end = inline_constant(path, old_tree.root_node, new, m)
    else:
        raise AssertionError(f"unexpected kind {m.kind}")
    # start/end: the lines of new_text the change touched (around it, for a pure removal).
    if m.kind == "reformat":  # which "\n" is the new one is ambiguous in bytes: look at the lines
        new_lines = m.new_text.splitlines(keepends=True)
        assert not new_lines[m.start - 1].strip() and not new_lines[m.end - 1].strip()
        assert "".join(line for i, line in enumerate(new_lines, 1) if i not in (m.start, m.end)) == old_text
    elif m.kind == "reorder-imports":  # a line diff shows one of the two lines moved, or both
        assert line_of(new, start) <= m.start <= m.end <= line_of(new, new_end - 1)
    elif m.kind == "swallowed-exception":  # a body of several lines became `{}` on the catch's line
        assert m.start == m.end == line_of(new, start)
    elif new_end > start or b"\n" not in old[start:old_end]:
        assert (m.start, m.end) == (line_of(new, start), line_of(new, new_end - 1))
    else:
        assert m.start == line_of(new, start) - 1 and m.end == line_of(new, start)


@pytest.mark.parametrize("path", sorted(SNIPPETS))
def test_each_mutant_is_what_its_kind_says(path: str) -> None:
    text, function = SNIPPETS[path]
    assert mt.parses(path, text)
    found = mt.mutants(path, text)
    assert {m.kind for m in found} == EXPECTED_KINDS[path]
    for m in found:
        check(path, text, m)
        assert m.function == function
        old_lines, new_lines = text.splitlines(), m.new_text.splitlines()
        assert m.new_text != text and 1 <= m.start <= m.end <= len(new_lines)
        assert abs(len(old_lines) - len(new_lines)) <= 5


@pytest.mark.parametrize("path", sorted(SNIPPETS))
def test_same_input_gives_same_mutants(path: str) -> None:
    text, _ = SNIPPETS[path]
    assert mt.mutants(path, text) == mt.mutants(path, text)


def test_interface() -> None:
    assert mt.language("a/b.go") == "Go" and mt.language("a/b.py") is None and mt.language("x.md") is None
    assert mt.parser_name("Rust").startswith("tree-sitter (tree-sitter-rust ")
    assert not mt.parses("a.go", "package p\nfunc f( {\n")
    assert mt.mutants("a.go", "package p\nfunc f( {\n") == []
    assert mt.mutants("notes.txt", "if (a < b) {}") == []


def test_renaming_is_skipped_where_it_would_change_meaning() -> None:
    # `{ count }` is a key and a value: renaming `count` would change the object's key.
    js = "function f(xs) {\n  const count = xs.length;\n  return { count };\n}\n"
    assert not [m for m in mt.mutants("a.js", js) if m.kind == "rename-local"]
    # `format!("{total}")` reads the variable from inside the string.
    rust = 'fn f() -> String {\n    let total = 1;\n    format!("{total}")\n}\n'
    assert not [m for m in mt.mutants("a.rs", rust) if m.kind == "rename-local"]
    # A Go keyed element may name a struct field.
    go = "package p\n\nfunc f() S {\n\tname := 1\n\treturn S{name: name}\n}\n"
    assert not [m for m in mt.mutants("a.go", go) if m.kind == "rename-local"]


def test_guard_with_else_or_more_than_an_exit_is_kept() -> None:
    js = "function f(x) {\n  if (x == null) {\n    log(x);\n    return 0;\n  }\n  if (x === null) { return 1; } else { g(); }\n}\n"
    assert not [m for m in mt.mutants("a.js", js) if m.kind == "removed-guard"]


def test_a_default_nobody_reads_is_not_changed() -> None:
    # Changing it would change no behaviour: the case would be a control that claims to be a plant.
    text = "function pick(items, n, strict = true) {\n  return items.slice(0, n);\n}\n"
    assert not [m for m in mt.mutants("web/app.js", text) if m.kind == "changed-default"]
    used = "function pick(items, n, strict = true) {\n  return strict ? items.slice(0, n) : items;\n}\n"
    assert [m.kind for m in mt.mutants("web/app.js", used)].count("changed-default") == 1


@pytest.mark.parametrize("path", sorted(MORE_SNIPPETS))
def test_the_kinds_of_a_try_typed_locals_and_imports_are_what_they_say(path: str) -> None:
    text, kinds = MORE_SNIPPETS[path]
    assert mt.parses(path, text)
    found = mt.mutants(path, text)
    assert kinds <= {m.kind for m in found}
    assert not {"swallowed-exception", "reorder-imports", "wrong-variable"} - kinds & {m.kind for m in found}
    for m in found:
        check(path, text, m)
    assert found == mt.mutants(path, text)


def test_wrong_variable_keeps_to_same_typed_visible_locals() -> None:
    # `label` is a string, `n` a number: no swap between them; `inner` is not visible after its block.
    ts = ("function f(xs: number[]): string {\n  const label: string = \"x\";\n  const n: number = xs.length;\n"
          "  if (n > 0) {\n    const inner: number = 1;\n    return label;\n  }\n  return label + n;\n}\n")
    assert not [m for m in mt.mutants("a.ts", ts) if m.kind == "wrong-variable"]
    # A shadowed name, a parameter and a shorthand property are never read as another.
    js = ("function f(a) {\n  const x = 1;\n  const y = 2;\n  {\n    const x = 3;\n    use(x);\n  }\n"
          "  return { y, a, x };\n}\n")
    assert not [m for m in mt.mutants("a.js", js) if m.kind == "wrong-variable"]
    # Go refuses a variable declared and not used: its only read is not swapped away.
    go = "package p\n\nfunc f() int {\n\ta := 1\n\tb := 2\n\treturn a + b\n}\n"
    assert not [m for m in mt.mutants("a.go", go) if m.kind == "wrong-variable"]
    # Rust: only Copy types declared as such (a moved String read twice would not compile).
    rust = "fn f() -> String {\n    let a = String::new();\n    let b = a.clone();\n    b + &a\n}\n"
    assert not [m for m in mt.mutants("a.rs", rust) if m.kind == "wrong-variable"]


def test_handlers_that_are_empty_or_would_not_compile_empty_are_kept() -> None:
    js = "function f() {\n  try {\n    g();\n  } catch (e) {\n    // ignored\n  }\n}\n"
    assert not [m for m in mt.mutants("a.js", js) if m.kind == "swallowed-exception"]
    # Emptied, the handler would leave the method without a return: javac refuses that.
    java = ("class A {\n    int f() {\n        try {\n            return g();\n        } catch (IOException e) {\n"
            "            return -1;\n        }\n    }\n}\n")
    assert not [m for m in mt.mutants("A.java", java) if m.kind == "swallowed-exception"]
    # Not the last catch: broadened, a later clause would catch nothing; only the body is emptied.
    java2 = ("class A {\n    void f() {\n        try {\n            g();\n        } catch (IOException e) {\n"
             "            log(e);\n        } catch (RuntimeException e) {\n            log(e);\n        }\n    }\n}\n")
    found = [m for m in mt.mutants("A.java", java2) if m.kind == "swallowed-exception"]
    assert len(found) == 2 and "catch (IOException e) {}" in found[0].new_text
    assert "catch (Exception e) {}" in found[1].new_text and "IOException" in found[1].new_text


def test_side_effect_imports_and_attributed_uses_are_not_reordered() -> None:
    js = 'import "./setup.js";\nimport { a } from "./a.js";\nimport { b } from "./a.js";\n'
    assert not [m for m in mt.mutants("x.js", js) if m.kind == "reorder-imports"]
    go = 'package p\n\nimport (\n\t_ "embed"\n\t"fmt"\n)\n\nvar _ = fmt.Sprint\n'
    assert not [m for m in mt.mutants("x.go", go) if m.kind == "reorder-imports"]
    rust = "#[cfg(test)]\nuse a::b;\nuse c::d;\n"
    assert not [m for m in mt.mutants("x.rs", rust) if m.kind == "reorder-imports"]


STALE = {
    "web/price.ts": ("export function price(amount: number, rate: number): number {\n  return amount * rate;\n}\n",
                     "limit: number, "),
    "web/price.js": ("export function price(amount, rate) {\n  return amount * rate;\n}\n", "limit, "),
    "store/price.go": ("package store\n\nfunc Price(amount, rate int) int {\n\treturn amount * rate\n}\n",
                       "limit int, "),
    "src/a/Price.java": ("package a;\n\npublic class Price {\n    public static int price(int amount, int rate) {\n"
                         "        return amount * rate;\n    }\n}\n", "int limit, "),
}


@pytest.mark.parametrize("path", sorted(STALE))
def test_stale_callers_adds_a_first_parameter_and_names_the_calls(path: str) -> None:
    text, added = STALE[path]
    name = "Price" if path.endswith(".go") else "price"
    calls = (CallSite("app/use.x", 4, 2, False, "assigned"), CallSite("app/use.x", 9, 1, True, None))
    asked: list[tuple[str, str]] = []

    def callers(n: str, p: str) -> tuple[CallSite, ...]:
        asked.append((n, p))
        return calls

    found = [m for m in mt.mutants(path, text, callers) if m.kind == "stale-callers"]
    assert asked == [(name, path)] and len(found) == 1
    m = found[0]
    assert m.sites == (Site("app/use.x", 4),)  # a call spreading its arguments may still bind
    assert f"({added}" in m.new_text and m.new_text.replace(added, "", 1) == text
    check(path, text, m)
    assert not [m for m in mt.mutants(path, text, lambda n, p: ()) if m.kind == "stale-callers"]


def test_stale_callers_in_a_repository_names_the_calls_each_language_binds(tmp_path: Path) -> None:
    files = {
        "web/price.ts": STALE["web/price.ts"][0],
        "web/cart.ts": 'import { price } from "./price";\n\nexport function cart(n: number): number {\n'
                       '  return price(n, 2) + other.price(1, 2);\n}\n',
        "web/shop/list.ts": 'import * as p from "../price.js";\n\nexport const t = p.price(1, 2);\n',
        "store/price.go": STALE["store/price.go"][0],
        "store/cart.go": "package store\n\nfunc Cart() int {\n\treturn Price(1, 2)\n}\n",
        "cmd/main.go": 'package main\n\nimport "example.com/x/store"\n\nfunc main() {\n\t_ = store.Price(1, 2)\n}\n',
        "src/a/Price.java": STALE["src/a/Price.java"][0],
        "src/b/Use.java": "package b;\n\nimport a.Price;\n\nclass Use {\n    int u() {\n"
                          "        return Price.price(1, 2);\n    }\n}\n",
        "src/c/Other.java": "package c;\n\nclass Other {\n    int u() {\n        return Price.price(1, 2);\n    }\n}\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    plan = cases.generate(RepoView(tmp_path), seed=1, planted=20, controls=0, kinds=["stale-callers"])
    sites = {c.path: sorted((s.path, s.line) for s in c.sites) for c in plan.cases}
    assert sites == {
        "web/price.ts": [("web/cart.ts", 4), ("web/shop/list.ts", 3)],
        "store/price.go": [("cmd/main.go", 6), ("store/cart.go", 4)],
        "src/a/Price.java": [("src/b/Use.java", 7)],  # c.Other neither imports a.Price nor shares its package
    }, plan.notes


def test_resources_are_left_open_only_where_the_result_compiles_and_leaks() -> None:
    def unclosed(path: str, text: str) -> list[Mutant]:
        assert mt.parses(path, text)
        return [m for m in mt.mutants(path, text) if m.kind == "resource-not-closed"]

    java = ("class A {\n    int f(Path p) throws IOException {\n        try (var in = open(p)) {\n"
            "            return in.read();\n        }{catch}\n    }\n}\n")
    assert len(unclosed("A.java", java.replace("{catch}", ""))) == 1
    # A catch needs the try; a name the body declares, met again after the try, would be declared twice.
    assert not unclosed("A.java", java.replace("{catch}", " catch (IOException e) {\n            return -1;\n"
                                                            "        }"))
    again = ("class A {\n    void f(Path p) throws IOException {\n        try (var in = open(p)) {\n"
             "            int n = in.read();\n        }\n        int n = 0;\n    }\n}\n")
    assert not unclosed("A.java", again)
    go = ("package p\n\nfunc f(name string) error {\n\tf, err := os.Open(name)\n\tif err != nil {\n\t\treturn err\n"
          "\t}\n\tdefer f.Close()\n{use}\treturn nil\n}\n")
    assert len(unclosed("a.go", go.replace("{use}", "\tuse(f)\n"))) == 1
    # `f` read nowhere else: without the defer Go refuses it as declared and not used.
    assert not unclosed("a.go", go.replace("{use}", ""))
    # Not right after the statement that opened it.
    later = "package p\n\nfunc f(g *G) {\n\tg.Start()\n\tdefer g.Close()\n\tuse(g)\n}\n"
    assert not unclosed("a.go", later)
    assert not unclosed("a.ts", "export async function f() {\n  const h = await open('x');\n  try {\n"
                                "    return await h.read();\n  } finally {\n    await h.close();\n  }\n}\n")


def test_literals_are_extracted_only_where_the_constant_means_the_same() -> None:
    def extracted(path: str, text: str) -> list[str]:
        assert mt.parses(path, text)
        found = [m for m in mt.mutants(path, text) if m.kind == "extract-constant"]
        for m in found:
            check(path, text, m)
        return [m.description.rsplit("`", 2)[-2] for m in found]

    # Java: strings only (an int constant could change an overload or a narrowing); not in an interface.
    assert extracted("A.java", "class A {\n    long f() {\n        return g(1000, \"limit\");\n    }\n}\n") == ["LIMIT"]
    assert not extracted("A.java", "interface A {\n    default String f() {\n        return g(\"limit\");\n    }\n}\n")
    # Rust: a number without a suffix takes its type from the context; a macro needs a literal; a nested
    # module does not see the file's items.
    rust = ("use std::fmt;\n\nfn f() -> u64 {\n    println!(\"value {}\", 10);\n    g(300, 7u64)\n}\n\n"
            "mod inner {\n    fn h() {\n        g(\"inner text\");\n    }\n}\n")
    assert extracted("a.rs", rust) == ["LIMIT_7U64"]
    # JS: a key, a type or a case label is not a value; a classic script shares its top-level scope.
    ts = ('import { a } from "./a";\n\nexport function f(x: "left" | "right") {\n'
          '  switch (x) {\n    case "left":\n      return { "width": 300 };\n  }\n  return a("center");\n}\n')
    assert extracted("a.ts", ts) == ["LIMIT_300", "CENTER"]
    assert not extracted("a.js", "function f() {\n  return g(\"center\");\n}\n")
    # A name the file already holds (here in a comment) is never used.
    assert not extracted("a.go", "package p\n\n// tooLongText\nfunc f() error {\n\treturn g(\"too long\")\n}\n")
