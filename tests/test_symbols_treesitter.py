"""find_symbol's parser for the languages tree-sitter covers: definitions told from references.

Each case is a real-looking snippet, a name, then what is expected on which line: a name in a
comment or a string is never reported, and a file that does not parse is still reported.
"""

from __future__ import annotations

import threading

import pytest

from reviewer import symbols, treesitter


def found(path: str, source: str, name: str) -> set[tuple[int, str, str]]:
    result = symbols.occurrences(source, name, path)
    assert result is not None
    return {(o.line, o.role, o.kind) for o in result}


CASES = [
    pytest.param("src/cart.js", """\
import { total as sum } from "./money.js";
// total is computed by sum(): not this comment
export function total(items, tax = 0) {
  const label = "total";
  return sum(items.map((i) => i.price)) * (1 + tax);
}
class Cart {
  total() { return total(this.items); }
}
const cart = { total: 3 };
""", "total", {
        (1, "reference", "import"),
        (3, "definition", "def"),
        (8, "definition", "def"),
        (8, "reference", "call"),
        (10, "reference", "keyword"),
    }, id="javascript"),
    pytest.param("web/user.ts", """\
export interface User { id: number; name: string }
type UserId = User["id"];
/* User in a comment */
export function load(id: UserId, fallback?: User): User {
  const user: User = fetchUser(id) ?? fallback;
  return user;
}
""", "User", {
        (1, "definition", "type"),
        (2, "reference", "name"),
        (4, "reference", "name"),
        (5, "reference", "name"),
    }, id="typescript"),
    pytest.param("web/Badge.tsx", """\
export const Badge = ({ label }: { label: string }) => <span title="Badge">{label}</span>;
export function Page() { return <Badge label="x" />; }
""", "Badge", {
        (1, "definition", "def"),
        (2, "reference", "name"),
    }, id="tsx"),
    pytest.param("store/store.go", """\
package store

// Get returns the value; "Get" in a comment is not a use.
type Store struct{ items map[string]int }

func (s *Store) Get(key string) (int, bool) {
	v, ok := s.items[key]
	return v, ok
}

func lookup(s *Store, key string) int {
	v, _ := s.Get(key)
	fmt.Println("Get")
	return v
}
""", "Get", {
        (6, "definition", "def"),
        (12, "reference", "call"),
    }, id="go"),
    pytest.param("store/store.go", """\
package store

func lookup(s *Store, key string) int {
	v, _ := s.Get(key)
	return v + len(key)
}
""", "key", {
        (3, "definition", "parameter"),
        (4, "reference", "name"),
        (5, "reference", "name"),
    }, id="go-parameter"),
    pytest.param("src/main/java/a/Account.java", """\
package a;

import java.util.List;

/** Account: a balance and its owner. */
public class Account {
    private long balance;

    public Account(long balance) { this.balance = balance; }

    public void deposit(long amount) {
        if (amount < 0) { throw new IllegalArgumentException("balance"); }
        balance += amount;
    }
}
""", "balance", {
        (7, "definition", "attribute"),
        (9, "definition", "attribute"),  # one definition per line: `this.balance =` over the parameter
        (9, "reference", "name"),
        (13, "definition", "assignment"),
    }, id="java"),
    pytest.param("src/a/Account.java", """\
class Account {
    static Account open(String owner) { return new Account(owner); }
}
""", "Account", {
        (1, "definition", "class"),
        (2, "reference", "call"),
    }, id="java-class"),
    pytest.param("src/parse.rs", """\
use crate::token::{Token, Kind as TokenKind};

/// Parse a Token stream.
pub struct Parser { tokens: Vec<Token> }

impl Parser {
    pub fn next(&mut self) -> Option<Token> { self.tokens.pop() }
}

fn first(p: &mut Parser) -> Token { p.next().unwrap_or(Token::eof("Token")) }
""", "Token", {
        (1, "definition", "import"),
        (4, "reference", "name"),
        (7, "reference", "name"),
        (10, "reference", "name"),
    }, id="rust"),
    pytest.param("src/parse.rs", """\
impl Parser {
    pub fn next(&mut self) -> Option<Token> { self.tokens.pop() }
}
fn first(p: &mut Parser) -> Token { p.next().unwrap() }
""", "next", {
        (2, "definition", "def"),
        (4, "reference", "call"),
    }, id="rust-method"),
    pytest.param("lib/list.c", """\
#include <stdlib.h>
/* count: the number of nodes */
typedef struct node { int val; struct node *next; } node_t;

int count(const node_t *head) {
    int n = 0;
    for (const node_t *p = head; p != NULL; p = p->next) n++;
    return n;
}

int main(void) { printf("count"); return count(NULL); }
""", "count", {
        (5, "definition", "def"),
        (11, "reference", "call"),
    }, id="c"),
    pytest.param("lib/list.c", """\
typedef struct node { int val; struct node *next; } node_t;
int count(const node_t *head) { return head ? 1 + count(head->next) : 0; }
""", "next", {
        (1, "definition", "attribute"),
        (2, "reference", "attribute"),
    }, id="c-field"),
    pytest.param("src/box.cpp", """\
namespace geo {
class Box {
 public:
  int area() const;
  int w, h;
};
}  // namespace geo: area

int geo::Box::area() const { return w * h; }
int twice(const geo::Box &b) { return 2 * b.area(); }
""", "area", {
        (4, "definition", "def"),
        (9, "definition", "def"),
        (10, "reference", "call"),
    }, id="cpp"),
]


@pytest.mark.parametrize(("path", "source", "name", "expected"), CASES)
def test_definitions_and_references_are_told_apart(path: str, source: str, name: str,
                                                   expected: set[tuple[int, str, str]]) -> None:
    assert found(path, source, name) == expected


def test_occurrence_text_is_the_stripped_line() -> None:
    result = symbols.occurrences("package p\n\n\tfunc Run() {}\n", "Run", "cmd/run.go")
    assert result == [symbols.Occurrence(3, "definition", "def", "func Run() {}")]


def test_a_file_with_a_syntax_error_is_still_reported() -> None:
    source = """\
function ok(a) { return helper(a); }
function broken(a { return helper(a) +; }
function later() { return helper(1); }
"""
    tree = treesitter.parse("src/x.js", source)
    assert tree is not None and treesitter.has_errors(tree)
    lines = {line for line, _, _ in found("src/x.js", source, "helper")}
    assert {1, 3} <= lines


def test_missing_node_counts_as_an_error() -> None:
    tree = treesitter.parse("a.go", "package p\nfunc f() { g(1\n}\n")
    assert tree is not None and treesitter.has_errors(tree)
    clean = treesitter.parse("a.go", "package p\nfunc f() { g(1) }\n")
    assert clean is not None and not treesitter.has_errors(clean)


def test_covered_files_and_python_unchanged() -> None:
    assert symbols.covered("a/b.ts") and symbols.covered("x.tsx") and symbols.covered("m.rs")
    assert symbols.covered("h/list.h") and symbols.covered("p.py")
    assert not symbols.covered("README.md") and not symbols.covered("Makefile") and not symbols.covered("a.rb")
    # No path: Python, as before the path parameter existed.
    python = symbols.occurrences("def f():\n    return f()\n", "f")
    assert python is not None and [(o.line, o.role, o.kind) for o in python] == [
        (1, "definition", "def"), (2, "reference", "call")]


def test_language_and_parser_name() -> None:
    assert treesitter.language("src/App.TSX") == "tsx"
    assert treesitter.language("dir.go/README") is None
    assert treesitter.parser_name("go").startswith("tree-sitter (tree-sitter-go ")


def test_parsers_are_used_from_many_threads() -> None:
    source = "package p\nfunc f(x int) int { return g(x) }\n" * 200
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                assert len(found("p.go", source, "g")) == 200
        except BaseException as e:  # re-raised by the main thread as a failed assert
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
