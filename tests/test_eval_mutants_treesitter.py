"""The eval's mutants for the languages tree-sitter parses: each is what its kind says, checked on the tree.

One realistic snippet per language. For every mutant: the new text parses cleanly, the
change is the one its kind claims (looked at on the old and new trees, around the changed
bytes), `start`/`end` are the lines the bytes changed on, and the same input gives the
same mutants.
"""

from __future__ import annotations

import pytest
from tree_sitter import Node

from reviewer import treesitter
from reviewer.eval import mutants_treesitter as mt
from reviewer.eval.models import Mutant

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
                    "rename-local", "reformat"},
    "web/user.ts": {"inverted-condition", "swapped-arguments", "changed-default", "removed-guard", "rename-local",
                    "reformat"},
    "store/store.go": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard", "rename-local",
                       "reformat"},
    "src/main/java/a/Account.java": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard",
                                     "rename-local", "reformat"},
    "src/stack.rs": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard", "rename-local",
                     "reformat"},
    "lib/list.c": {"inverted-condition", "off-by-one", "swapped-arguments", "removed-guard", "rename-local",
                   "reformat"},
    "src/grid.cpp": {"inverted-condition", "off-by-one", "swapped-arguments", "changed-default", "removed-guard",
                     "rename-local", "reformat"},
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
    else:
        raise AssertionError(f"unexpected kind {m.kind}")
    # start/end: the lines of new_text the change touched (around it, for a pure removal).
    if m.kind == "reformat":  # which "\n" is the new one is ambiguous in bytes: look at the lines
        new_lines = m.new_text.splitlines(keepends=True)
        assert not new_lines[m.start - 1].strip() and not new_lines[m.end - 1].strip()
        assert "".join(line for i, line in enumerate(new_lines, 1) if i not in (m.start, m.end)) == old_text
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
