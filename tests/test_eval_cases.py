"""`reviewer eval`'s case generator, on real code: this repository and an installed package's source.

Each case is checked from the outside: its diff applies to the commit with
`git apply --check`, its file parses, `start`/`end` are the diff's `+` lines,
and its kind is what it says, told from the ast of the function before and
after (a planted kind changes it in the way its name says; a control leaves
the module's ast identical once the rename or the constant is undone).
"""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import click
import pytest

from reviewer.errors import UsageError
from reviewer.eval import cases, mutants_python
from reviewer.eval.models import CONTROL_KINDS, PLANTED_KINDS, Case, CasePlan, Site
from reviewer.repo_view import RepoView

REPO_ROOT = Path(__file__).resolve().parent.parent


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)
    return done.stdout


def _commit_tree(root: Path) -> Path:
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "fixture")
    return root


@pytest.fixture(scope="module")
def this_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository's HEAD: the checkout changes while others work in it."""
    clone = tmp_path_factory.mktemp("this") / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    return clone


@pytest.fixture(scope="module")
def package_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """click's installed source, committed to a fresh repository."""
    root = tmp_path_factory.mktemp("pkg") / "click"
    shutil.copytree(Path(click.__file__).parent, root / "src" / "click",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return _commit_tree(root)


@pytest.fixture(scope="module")
def repo_plan(this_repo: Path) -> CasePlan:
    """The library's own code (the tests and benches are left out to keep this file fast)."""
    return cases.generate(RepoView(this_repo), seed=1, include=("reviewer/*",))


@pytest.fixture(scope="module")
def package_plan(package_repo: Path) -> CasePlan:
    return cases.generate(RepoView(package_repo), seed=1)


# ---------------------------------------------------------------------------- helpers

def _functions(tree: ast.AST) -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Qualified name -> the functions of that name, in source order (a property's setter repeats its name)."""
    out: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.setdefault(prefix + child.name, []).append(child)
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.stmt | ast.ExceptHandler | ast.match_case):
                visit(child, prefix)

    visit(tree, "")
    return out


def _divergence(a: object, b: object) -> tuple[object, object] | None:
    """The innermost pair of nodes (or values) where two trees first differ; None when they are equal."""
    if type(a) is not type(b):
        return a, b
    if isinstance(a, ast.AST):
        for f in a._fields:
            found = _divergence(getattr(a, f, None), getattr(b, f, None))
            if found is not None:
                return (a, b) if not isinstance(found[0], ast.AST) else found
        return None
    if isinstance(a, list):
        assert isinstance(b, list)
        if len(a) != len(b):
            return a, b
        for x, y in zip(a, b, strict=True):
            found = _divergence(x, y)
            if found is not None:
                return found
        return None
    return None if a == b else (a, b)


def _dumps(nodes: list[ast.AST]) -> Counter[str]:
    return Counter(ast.dump(n) for n in nodes)


def _nodes(func: ast.AST, kind: type | tuple[type, ...]) -> list:
    return [n for n in ast.walk(func) if isinstance(n, kind)]


def _plus_lines(diff: str) -> tuple[set[int], set[int]]:
    """(new-file numbers of the `+` lines, new-file positions right after `-` lines) of a one-file diff."""
    plus, minus_at = set(), set()
    new_line = 0
    for line in diff.splitlines():
        if line.startswith("@@"):
            new_line = int(line.split("+")[1].split(",")[0].split(" ")[0])
        elif line.startswith(("+++", "---", "diff ", "\\")):
            continue
        elif line.startswith("+"):
            plus.add(new_line)
            new_line += 1
        elif line.startswith("-"):
            minus_at.add(new_line)
        elif line.startswith(" "):
            new_line += 1
    return plus, minus_at


def _signature(func: ast.FunctionDef | ast.AsyncFunctionDef) -> inspect.Signature:
    """The signature of a `def`, defaults replaced by None (only the shape matters here)."""
    args = func.args
    stub = ast.FunctionDef(name="stub", args=ast.arguments(
        posonlyargs=args.posonlyargs, args=args.args, vararg=args.vararg, kwonlyargs=args.kwonlyargs,
        kw_defaults=[None if d is None else ast.Constant(None) for d in args.kw_defaults], kwarg=args.kwarg,
        defaults=[ast.Constant(None) for _ in args.defaults]), body=[ast.Pass()], decorator_list=[], returns=None)
    for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        a.annotation = None
    module = ast.fix_missing_locations(ast.Module(body=[stub], type_ignores=[]))
    space: dict[str, object] = {}
    exec(compile(module, "<signature>", "exec"), space)  # noqa: S102 - a stub built above, no user code
    return inspect.signature(space["stub"])  # type: ignore[arg-type]


def _binding(sig: inspect.Signature, call: ast.Call) -> dict[str, int | str] | None:
    """How a call's arguments bind to `sig` (positional index or keyword), None when they do not bind."""
    try:
        bound = sig.bind(*range(len(call.args)), **{k.arg: k.arg for k in call.keywords if k.arg})
    except TypeError:
        return None
    return dict(bound.arguments)


def check_case(case: Case, repo: Path, old_text: str) -> None:
    """Every promise of a case, checked without the generator's own code."""
    patch = repo.parent / f"{case.id}.patch"
    patch.write_text(case.diff, encoding="utf-8", newline="")
    done = subprocess.run(["git", "apply", "--check", str(patch)], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, (case.id, done.stderr, case.diff)
    assert case.diff.startswith(f"diff --git a/{case.path} b/{case.path}\n--- a/{case.path}\n+++ b/{case.path}\n")
    assert case.new_text != old_text
    new_tree, old_tree = ast.parse(case.new_text), ast.parse(old_text)
    eol_old, eol_new = old_text.count("\r\n"), case.new_text.count("\r\n")
    assert (eol_old == 0) == (eol_new == 0), "line endings kept"
    assert case.id.startswith(case.kind + "-") and case.planted == (case.kind in PLANTED_KINDS)
    assert "\n" not in case.description and case.description

    plus, minus_at = _plus_lines(case.diff)
    if plus:
        assert (case.start, case.end) == (min(plus), max(plus)), (case.id, case.start, case.end, plus)
    else:
        assert any(abs(case.start - p) <= 1 for p in minus_at), (case.id, case.start, minus_at)
    assert 1 <= case.start <= case.end <= len(case.new_text.split("\n"))

    if case.kind in CONTROL_KINDS:
        _check_control(case, old_tree, new_tree)
    else:
        pairs = zip(_functions(old_tree)[case.function], _functions(new_tree)[case.function], strict=True)
        changed = [(x, y) for x, y in pairs if ast.dump(x) != ast.dump(y)]
        assert len(changed) == 1, "a planted change changes the function's ast"
        _check_planted(case, *changed[0], repo)


def _check_planted(case: Case, old: ast.AST, new: ast.AST, repo: Path) -> None:
    pair = _divergence(old, new)
    assert pair is not None
    a, b = pair
    kind = case.kind
    if kind == "inverted-condition":
        ops = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
               ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
               ast.And: ast.Or, ast.Or: ast.And}
        negated = isinstance(b, ast.UnaryOp) and isinstance(b.op, ast.Not) and ast.dump(b.operand) == ast.dump(a) \
            or isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.Not) and ast.dump(a.operand) == ast.dump(b)
        assert negated or ops.get(type(a)) is type(b), (case.id, a, b)
    elif kind == "off-by-one":
        shifted = {(ast.Lt, ast.LtE), (ast.LtE, ast.Lt), (ast.Gt, ast.GtE), (ast.GtE, ast.Gt)}
        by_one = isinstance(a, ast.Constant) and isinstance(b, ast.Constant) and abs(a.value - b.value) == 1
        plus_minus = isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add | ast.Sub) \
            and ast.dump(b.left) == ast.dump(a) and isinstance(b.right, ast.Constant) and b.right.value == 1
        assert by_one or plus_minus or (type(a), type(b)) in shifted, (case.id, a, b)
    elif kind == "swapped-arguments":
        calls = [(x, y) for x, y in zip(_nodes(old, ast.Call), _nodes(new, ast.Call), strict=True)
                 if ast.dump(x) != ast.dump(y) and ast.dump(x.func) == ast.dump(y.func)]

        def swapped(old_call: ast.Call, new_call: ast.Call) -> bool:
            oa, na = [ast.dump(x) for x in old_call.args], [ast.dump(x) for x in new_call.args]
            moved = [i for i in range(len(oa)) if oa[i] != na[i]]
            return len(moved) == 2 and oa[moved[0]] == na[moved[1]] and oa[moved[1]] == na[moved[0]]

        assert any(swapped(x, y) for x, y in calls)  # an outer call holding it differs too
    elif kind == "removed-guard":
        assert len(_nodes(new, ast.If)) == len(_nodes(old, ast.If)) - 1
        gone = _dumps(_nodes(old, ast.If)) - _dumps(_nodes(new, ast.If))  # the guard, and any `if` holding it
        assert any(isinstance(n.body[0], ast.Return | ast.Raise) and len(n.body) == 1 and not n.orelse
                   and isinstance(n.test, ast.Compare | ast.UnaryOp) for n in _nodes(old, ast.If) if ast.dump(n) in gone)
    elif kind == "wrong-variable":
        assert isinstance(a, ast.Name) and isinstance(b, ast.Name) and a.id != b.id, (case.id, a, b)
        local = {n.id for n in _nodes(old, ast.Name)} | {a.arg for a in _nodes(old, ast.arg)}
        assert b.id in local, "the other name is a local or a parameter of the function"
    elif kind == "swallowed-exception":
        old_raises = sum(len(_nodes(h, ast.Raise)) for h in _nodes(old, ast.ExceptHandler))
        new_raises = sum(len(_nodes(h, ast.Raise)) for h in _nodes(new, ast.ExceptHandler))
        broadened = [h for h in _nodes(new, ast.ExceptHandler) if isinstance(h.type, ast.Name)
                     and h.type.id == "Exception" and len(h.body) == 1 and isinstance(h.body[0], ast.Pass)]
        assert new_raises < old_raises or len(broadened) > sum(
            1 for h in _nodes(old, ast.ExceptHandler) if isinstance(h.type, ast.Name) and h.type.id == "Exception"
            and len(h.body) == 1 and isinstance(h.body[0], ast.Pass))
    elif kind == "resource-not-closed":
        assert len(_nodes(new, ast.With)) == len(_nodes(old, ast.With)) - 1
        opened = [n for n in _nodes(new, ast.Assign) if isinstance(n.value, ast.Call)
                  and getattr(n.value.func, "id", getattr(n.value.func, "attr", "")) == "open"]
        assert len(opened) > len([n for n in _nodes(old, ast.Assign) if ast.dump(n) in {ast.dump(o) for o in opened}])
        assert not any(getattr(n.func, "attr", "") == "close" for n in _nodes(new, ast.Call)
                       if isinstance(n.func, ast.Attribute)
                       and isinstance(n.func.value, ast.Name) and n.func.value.id == opened[0].targets[0].id)
    elif kind == "changed-default":
        assert isinstance(old, ast.FunctionDef | ast.AsyncFunctionDef)
        assert isinstance(new, ast.FunctionDef | ast.AsyncFunctionDef)
        assert ast.dump(ast.Module(old.body, [])) == ast.dump(ast.Module(new.body, [])), "only the signature"
        defaults = [(x, y) for x, y in zip(old.args.defaults + old.args.kw_defaults,
                                           new.args.defaults + new.args.kw_defaults, strict=True)
                    if (x is None) != (y is None) or x is not None and y is not None and ast.dump(x) != ast.dump(y)]
        assert len(defaults) == 1
    elif kind == "stale-callers":
        assert isinstance(new, ast.FunctionDef | ast.AsyncFunctionDef)
        assert isinstance(old, ast.FunctionDef | ast.AsyncFunctionDef)
        assert case.sites and all(s.path != case.path for s in case.sites)
        calls = [_site_call(repo, site, case.function) for site in case.sites]
        if ast.dump(old.args) != ast.dump(new.args):  # a signature form: the body is the same
            assert ast.dump(ast.Module(old.body, [])) == ast.dump(ast.Module(new.body, []))
            old_sig, new_sig = _signature(old), _signature(new)
            old_names, new_names = list(old_sig.parameters), list(new_sig.parameters)
            if sorted(old_names) == sorted(new_names):  # two parameters swapped: passed by position at the sites
                moved = [i for i, (x, y) in enumerate(zip(old_names, new_names, strict=True)) if x != y]
                assert len(moved) == 2 and moved[1] == moved[0] + 1, (case.id, old_names, new_names)
                assert "swapped places" in case.description
                assert all(len(call.args) > moved[0] for _tree, call in calls), case.id
            else:
                assert "gained a required parameter" in case.description
            for (_tree, call), site in zip(calls, case.sites, strict=True):
                assert _binding(new_sig, call) != _binding(old_sig, call), (case.id, site, "the call still fits")
        else:  # a return-contract form: only the values returned changed, and the sites use the value
            _check_returns(case, old, new)
            for (tree, call), site in zip(calls, case.sites, strict=True):
                assert _value_used(tree, call), (case.id, site, "the call's value is not used there")
    else:  # pragma: no cover
        raise AssertionError(kind)


def _site_call(repo: Path, site: Site, function: str) -> tuple[ast.Module, ast.Call]:
    """The calling file's tree and the call of `function` on `site`'s line (imported maybe under another name)."""
    tree = ast.parse((repo / site.path).read_text(encoding="utf-8"))
    calls = [c for c in _nodes(tree, ast.Call) if (c.func.end_lineno or c.lineno) == site.line
             and getattr(c.func, "id", getattr(c.func, "attr", None)) is not None]
    assert calls, site
    named = [c for c in calls if function in (getattr(c.func, "id", None), getattr(c.func, "attr", None))]
    return tree, (named or [c for c in calls if isinstance(c.func, ast.Name)])[0]


def _value_used(tree: ast.Module, call: ast.Call) -> bool:
    """Whether the code around `call` reads its value (not a statement of its own, not returned or yielded)."""
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    node: ast.AST = call
    parent = parents[id(call)]
    while isinstance(parent, ast.Await):
        node, parent = parent, parents[id(parent)]
    if isinstance(parent, ast.Expr | ast.Return | ast.Yield | ast.YieldFrom | ast.Lambda | ast.Tuple | ast.List
                  | ast.Set | ast.Dict):
        return False
    if isinstance(parent, ast.If | ast.While | ast.IfExp | ast.Assert):
        return parent.test is node
    if isinstance(parent, ast.Compare):  # `f() is None` copes with None
        return not any(isinstance(x, ast.Constant) and x.value is None for x in (parent.left, *parent.comparators))
    return isinstance(parent, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr | ast.Call | ast.keyword
                      | ast.Attribute | ast.Subscript | ast.For | ast.AsyncFor | ast.comprehension | ast.BinOp
                      | ast.BoolOp | ast.UnaryOp | ast.Starred | ast.FormattedValue | ast.withitem)


def _check_returns(case: Case, old: ast.FunctionDef | ast.AsyncFunctionDef,
                   new: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Only `return` values changed, all in one of the ways a return contract is changed here."""
    old_returns, new_returns = _nodes(old, ast.Return), _nodes(new, ast.Return)
    assert len(old_returns) == len(new_returns)
    changed = [(x.value, y.value) for x, y in zip(old_returns, new_returns, strict=True) if ast.dump(x) != ast.dump(y)]
    assert changed, case.id
    for x, y in zip(old_returns, new_returns, strict=True):
        y.value = x.value  # the old values back: nothing else may differ
    assert ast.dump(old) == ast.dump(new), "only return values changed"
    forms = set()
    for x, y in changed:
        assert x is not None and y is not None
        if isinstance(y, ast.Tuple) and len(y.elts) == 2 and ast.dump(y.elts[0]) == ast.dump(x) \
                and isinstance(y.elts[1], ast.Constant) and y.elts[1].value is None:
            forms.add("tuple")
        elif isinstance(y, ast.Constant) and y.value is None:
            forms.add("none")
        elif isinstance(x, ast.Dict) and isinstance(y, ast.List):
            assert [ast.dump(v) for v in x.values] == [ast.dump(v) for v in y.elts]
            forms.add("dict to list")
        elif isinstance(x, ast.Tuple | ast.List) and isinstance(y, ast.Dict):
            assert [getattr(k, "value", None) for k in y.keys] == [getattr(e, "id", None) for e in x.elts]
            assert [ast.dump(v) for v in y.values] == [ast.dump(e) for e in x.elts]
            forms.add("names to dict")
        else:
            raise AssertionError((case.id, ast.dump(x), ast.dump(y)))
    assert len(forms) == 1, (case.id, forms)
    form = forms.pop()
    assert form != "none" or len(changed) == 1, "None on one path"
    said = {"tuple": "now returns a tuple `(", "none": "now returns None where it returned",
            "dict to list": "now returns a list `[", "names to dict": "now returns a dict `{"}[form]
    assert said in case.description and "its value as before" in case.description, case.description


def _check_control(case: Case, old: ast.Module, new: ast.Module) -> None:
    if case.kind == "rename-local":
        added = {n.id for n in _nodes(new, ast.Name)} - {n.id for n in _nodes(old, ast.Name)}
        removed = {n.id for f in _functions(old)[case.function] for n in _nodes(f, ast.Name)} - \
            {n.id for f in _functions(new)[case.function] for n in _nodes(f, ast.Name)}
        assert len(added) == 1 and len(removed) == 1
        fresh, name = added.pop(), removed.pop()
        assert fresh not in ast.dump(old), "a name the file did not use"
        for n in _nodes(new, ast.Name):
            if n.id == fresh:
                n.id = name
    elif case.kind == "extract-constant":
        assigned = [s for s in new.body if isinstance(s, ast.Assign)
                    and ast.dump(s) not in {ast.dump(o) for o in old.body}]
        assert len(assigned) == 1 and isinstance(assigned[0].value, ast.Constant)
        name = assigned[0].targets[0].id  # type: ignore[attr-defined]
        value = assigned[0].value.value
        assert name.isupper() or name.lstrip("_").replace("_", "").isalnum()
        new.body.remove(assigned[0])

        class Inline(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> ast.AST:
                return ast.Constant(value) if node.id == name else node

        new = Inline().visit(new)
    elif case.kind == "reorder-imports":
        moved = [i for i, (x, y) in enumerate(zip(old.body, new.body, strict=True)) if ast.dump(x) != ast.dump(y)]
        assert len(moved) == 2 and moved[1] == moved[0] + 1
        assert all(isinstance(new.body[i], ast.Import | ast.ImportFrom) for i in moved)
        new.body[moved[0]], new.body[moved[1]] = new.body[moved[1]], new.body[moved[0]]
    assert ast.dump(new) == ast.dump(old), f"{case.id}: a control keeps the module's ast"


def _case_ids(plan: CasePlan) -> list[tuple[str, str]]:
    return [(c.id, c.diff) for c in plan.cases]


# ---------------------------------------------------------------------------- this repository

def test_cases_on_this_repository_apply_parse_and_are_what_they_claim(this_repo: Path, repo_plan: CasePlan) -> None:
    view = RepoView(this_repo)
    assert repo_plan.commit == view.commit
    assert len(repo_plan.planted) == 40 and len(repo_plan.controls) == 10, repo_plan.notes
    assert len({c.id for c in repo_plan.cases}) == len(repo_plan.cases)
    kinds = Counter(c.kind for c in repo_plan.planted)
    assert len(kinds) >= 7, kinds  # spread over the kinds, round robin
    assert len({c.path for c in repo_plan.planted}) >= 15  # and over the files
    assert len({(c.path, c.function, c.kind) for c in repo_plan.cases}) == len(repo_plan.cases)
    for case in repo_plan.cases:
        check_case(case, this_repo, view.read(case.path).text)


def test_stale_callers_on_this_repository_name_calls_in_other_files(repo_plan: CasePlan) -> None:
    stale = [c for c in repo_plan.cases if c.kind == "stale-callers"]
    assert stale, "this repository has functions called from other modules"
    for case in stale:
        assert any(said in case.description for said in STALE_FORMS.values()), case.description
        assert f"{len(case.sites)} call" in case.description


def test_python_is_listed_as_covered_with_its_parser(repo_plan: CasePlan) -> None:
    python = next(lang for lang in repo_plan.languages if lang.language == "Python")
    assert python.covered and python.parser == "ast (standard library)" and python.files > 30


# ---------------------------------------------------------------------------- a real package

def test_same_seed_gives_the_same_cases_another_seed_others(package_repo: Path, package_plan: CasePlan) -> None:
    view = RepoView(package_repo)
    again = cases.generate(view, seed=1)
    assert _case_ids(again) == _case_ids(package_plan)
    other = cases.generate(view, seed=2)
    assert {c.id for c in other.cases} != {c.id for c in package_plan.cases}
    assert len(other.cases) == len(package_plan.cases)


def test_cases_on_a_package_apply_parse_and_are_what_they_claim(package_repo: Path,
                                                                package_plan: CasePlan) -> None:
    view = RepoView(package_repo)
    assert len(package_plan.planted) == 40, package_plan.notes
    for case in package_plan.cases:
        check_case(case, package_repo, view.read(case.path).text)


# ---------------------------------------------------------------------------- a small fixture

FIXTURE_PY = '''"""A module to mutate."""

import json
import os


def load(path, strict=False, retries=3):
    if path is None:
        return None
    with open(path) as fh:
        data = json.load(fh)
    count = len(data)
    total = 0
    for i in range(count):
        if data[i] > 10 and strict:
            total = total + data[i]
    try:
        extra = os.environ["EXTRA"]
    except KeyError:
        raise ValueError("no EXTRA")
    return total, extra, data[0:count]
'''

CALLER_PY = '''from pkg.core import load


def main():
    return load("a.json", True)
'''


@pytest.fixture(scope="module")
def fixture_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fixture") / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "core.py").write_text(FIXTURE_PY)
    (root / "pkg" / "cli.py").write_text(CALLER_PY)
    # CRLF line endings and no newline at the end: both kept in the mutated text and the diff.
    (root / "pkg" / "crlf.py").write_bytes(FIXTURE_PY.replace("load", "read").replace("\n", "\r\n").encode())
    (root / "pkg" / "tail.py").write_text(FIXTURE_PY.replace("load", "tail").rstrip("\n"))
    (root / "src").mkdir()
    (root / "src" / "lib.rs").write_text("fn main() {}\n")
    (root / "src" / "other.rs").write_text("fn other() {}\n")
    (root / "Main.hs").write_text("main = pure ()\n")
    (root / "vendor").mkdir()
    (root / "vendor" / "dep.py").write_text(FIXTURE_PY)
    (root / "README.md").write_text("# fixture\n")
    return _commit_tree(root)


def test_unsupported_languages_are_listed_as_not_covered(fixture_repo: Path) -> None:
    plan = cases.generate(RepoView(fixture_repo), seed=3, mutators=[mutants_python])
    langs = {lang.language: lang for lang in plan.languages}
    assert langs["Rust"].covered is False and langs["Rust"].files == 2 and langs["Rust"].parser is None
    assert langs["Haskell"].covered is False and langs["Haskell"].files == 1
    assert langs["Python"].covered and langs["Python"].files == 4  # vendor/ left out
    assert "not covered: Rust (2 files), Haskell (1 file)" in plan.notes
    assert not any(c.path.startswith("vendor/") for c in plan.cases)


def test_every_kind_is_made_on_the_fixture_and_each_is_sound(fixture_repo: Path) -> None:
    view = RepoView(fixture_repo)
    plan = cases.generate(view, seed=5, planted=200, controls=200, mutators=[mutants_python])
    made = {c.kind for c in plan.cases}
    assert set(PLANTED_KINDS) - made == set(), plan.notes
    assert {"rename-local", "extract-constant", "reorder-imports", "reformat"} <= made
    assert any("asked for 200 planted cases" in n for n in plan.notes)
    for case in plan.cases:
        check_case(case, fixture_repo, view.read(case.path).text)
    crlf = [c for c in plan.cases if c.path == "pkg/crlf.py"]
    assert crlf and all("\r\n" in c.new_text and "\n" not in c.new_text.replace("\r\n", "") for c in crlf)
    stale = [c for c in plan.cases if c.kind == "stale-callers"]
    assert [(s.path, s.line) for c in stale for s in c.sites] == [("pkg/cli.py", 5)]


STALE_FORMS = {
    "new parameter": "gained a required parameter", "swapped parameters": "swapped places in its signature",
    "tuple": "now returns a tuple `(", "none": "now returns None where it returned",
    "dict to list": "now returns a list `[", "names to dict": "now returns a dict `{",
}


def _callers_repo(root: Path, modules: int) -> Path:
    """`modules` library modules, each called from its own module of another package, once for nothing."""
    (root / "pkg").mkdir(parents=True)
    (root / "app").mkdir()
    for i in range(modules):
        (root / "pkg" / f"m{i}.py").write_text(f'''def fetch_{i}(path, limit, strict=False, retries=3):
    if not path:
        return {{"path": path, "rows": []}}
    rows = [path] * limit
    return {{"path": path, "rows": rows}}


def pair_{i}(total, parts):
    share = total // parts
    rest = total - share * parts
    return share, rest
''')
        (root / "app" / f"use{i}.py").write_text(f'''from pkg.m{i} import fetch_{i}
from pkg import m{i}


def main(p):
    fetch_{i}(p, 1)
    result = fetch_{i}(p, 3)
    share, rest = m{i}.pair_{i}(10, p)
    return result["rows"], share + rest
''')
    return _commit_tree(root)


def test_stale_callers_come_in_every_form_each_naming_only_the_calls_it_breaks(tmp_path: Path) -> None:
    repo = _callers_repo(tmp_path / "repo", 16)
    view = RepoView(repo)
    plan = cases.generate(view, seed=4, planted=200, controls=0, kinds=["stale-callers"], mutators=[mutants_python])
    assert plan.cases == cases.generate(view, seed=4, planted=200, controls=0, kinds=["stale-callers"],
                                        mutators=[mutants_python]).cases
    assert len(plan.cases) == 32, plan.notes  # both functions of every module
    forms: Counter[str] = Counter()
    for case in plan.cases:
        check_case(case, repo, view.read(case.path).text)
        form = next(name for name, said in STALE_FORMS.items() if said in case.description)
        forms[form] += 1
        lines = sorted(s.line for s in case.sites)
        n = case.path.removeprefix("pkg/m").removesuffix(".py")
        assert {s.path for s in case.sites} == {f"app/use{n}.py"}
        if case.function.startswith("pair_"):
            assert lines == [8], (case.id, case.description)
        elif form in ("new parameter", "swapped parameters"):
            assert lines == [6, 7], (case.id, case.description)  # the call whose value is dropped breaks too
        else:
            assert lines == [7], (case.id, case.description)  # only the call whose value is used
    assert set(forms) == set(STALE_FORMS), forms


def test_kinds_limit_the_cases_and_an_unknown_kind_is_refused(fixture_repo: Path) -> None:
    view = RepoView(fixture_repo)
    plan = cases.generate(view, seed=1, kinds=["off-by-one", "reformat"], mutators=[mutants_python])
    assert {c.kind for c in plan.cases} == {"off-by-one", "reformat"}
    with pytest.raises(UsageError, match="known kinds: inverted-condition"):
        cases.generate(view, seed=1, kinds=["off-by-two"])
    with pytest.raises(UsageError):
        cases.generate(view, seed=1, planted=-1)


def test_mutator_interface() -> None:
    assert mutants_python.language("a/b.py") == "Python" and mutants_python.language("a.rs") is None
    assert mutants_python.parser_name("Python") == "ast (standard library)"
    assert mutants_python.parses("x.py", "x = 1\n") and not mutants_python.parses("x.py", "x = (\n")
    found = mutants_python.mutants("pkg/core.py", FIXTURE_PY)
    assert found == mutants_python.mutants("pkg/core.py", FIXTURE_PY)  # deterministic
    assert not any(m.kind == "stale-callers" for m in found)  # no callers given
    assert mutants_python.mutants("broken.py", "def f(:\n") == []


def test_no_plant_that_changes_nothing_an_unread_default_or_a_symmetric_call() -> None:
    from reviewer.eval import mutants_python as mp

    text = ("def pick(items, n, strict=True):\n    return items[:n]\n\n\n"
            "def check(self, a, b):\n    self.assertEqual(a, b)\n    return max(a, b)\n")
    kinds = [m.kind for m in mp.mutants("m.py", text)]
    assert "changed-default" not in kinds and "swapped-arguments" not in kinds
    used = "def pick(items, n, strict=True):\n    return items[:n] if strict else items\n"
    assert [m.kind for m in mp.mutants("m.py", used)].count("changed-default") == 1
