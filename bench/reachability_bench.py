"""Benchmark: can a review reach the evidence of a cross-file defect? (issue 12)

Planted defects made from real code: a temporary clone of this repository (at
`--rev`, pinned by default so the figures do not move with every commit). For
each case a real module-level Python function that other files call is changed
in its own file, committed on a branch as the "pull request", and its callers,
in files the branch does not touch, are left stale. Case kinds:

    add_required_param  a new positional parameter without a default
    remove_param        the last parameter removed (its value becomes a local)
    rename_keyword      a parameter renamed, in the body too
    keyword_only        every parameter after the first made keyword-only
    return_tuple        every `return X` becomes `return X, None`
    return_none         `if not <first parameter>: return None` on entry

Ground truth, the call sites of the function `f` defined in module `M` (its
path as a dotted name; `__init__.py` is its package), found by parsing every
Python file at head with `ast`: a `Call` whose callee is
  * a plain name bound to `f`: `f` inside `M`, or a name bound anywhere in the
    file by `from M import f` / `from M import f as g` (relative imports
    resolved; `M` may also be a module that re-exports `f` by such an import);
  * an attribute `<m>.f` where `<m>` is a dotted name that resolves to `M`
    through `import M`, `import M as m`, `from pkg import mod [as m]`.
Scopes and shadowing are not modelled (an import inside a function binds for
the whole file); calls through `getattr`, a variable holding `f`, or an
instance are not counted. A site is (path, line of the called name). The
stale sites are those in files other than the changed one.

Measured per case and summed per kind and overall:
  1. recall of `find_symbol` over the stale sites: a site counts as reached
     when the tool's answer has a row `path:line:` for it; target 100 %;
  2. precision: reference rows (under a "references to" header, imports
     left out) that are call sites of `f` (any file at head) over all of them,
     and over the rows tagged [call] only; then the rows of the group of `f`'s
     definition ("references to f, defined at M's path:line"), the share of
     stale sites in that group ("in group") and the group's precision (a
     reference that passes `f` as a value is counted against it: it is not a
     call site); and the tokens of an answer (characters / 4);
  3. the baseline: the share of stale sites whose line text appears in the
     user messages a review sends today without tools (`diff.parse` on
     `git diff base...head` with the head files, `per_file.tasks` for each
     file and `cross_file.user_message`, default `Config()`); a text match
     anywhere counts, so this overstates the baseline: a match is the same
     text elsewhere (`doc = report(repo)` in the changed file itself). "file
     shown" is the share of stale sites whose file the prompts show at all.
Every miss is listed. Then a sweep without planting: `find_symbol` for every
module-level function called from another file, recall over all its sites in
other files (what the lookup returns there does not depend on the change), the
share of them in the group of the function's definition, tokens per answer.

    python bench/reachability_bench.py [--rev REV] [--seed 12] [--per-kind 6] [--no-sweep]
"""

from __future__ import annotations

import argparse
import ast
import io
import random
import re
import subprocess
import sys
import tempfile
import time
import tokenize
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reviewer import diff as diff_mod
from reviewer import source
from reviewer.config import Config
from reviewer.passes import cross_file, per_file
from reviewer.repo_view import RepoView
from reviewer.tools import ToolBox

# The commit the figures in the README were measured on; `--rev HEAD` measures today's tree.
PINNED = "8105f1bb66920ce6f9d3503c80b726a95f5310af"
KINDS = ("add_required_param", "remove_param", "rename_keyword", "keyword_only", "return_tuple", "return_none")
_ROW = re.compile(r"^(?P<path>[^\n:]+):(?P<line>\d+): ")


def git(repo: Path, *args: str, input: str | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.email=bench@example.invalid", "-c", "user.name=bench",
                           *args], capture_output=True, text=True, input=input, check=True)
    return done.stdout


# ---------------------------------------------------------------------- ground truth

def module_of(path: str) -> str:
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str | None, level: int, here: str, is_package: bool) -> str:
    """The absolute module a `from ... import` names, seen from module `here`."""
    if not level:
        return module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, *([module] if module else [])])


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


@dataclass
class Parsed:
    """One file at head: its imports and calls, extracted once (the lookups below run per function)."""

    path: str
    source: str
    tree: ast.Module
    module: str = ""
    is_package: bool = False
    lines: list[str] = field(default_factory=list)
    from_imports: list[tuple[str, str, str]] = field(default_factory=list)
    """(absolute module, imported name, bound name) of every `from ... import`."""
    imports: list[tuple[str, str | None]] = field(default_factory=list)
    """(module, alias or None) of every `import`."""
    name_calls: dict[str, list[int]] = field(default_factory=dict)
    """callee name -> lines, for calls of a plain name."""
    attribute_calls: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    """attribute -> (dotted value, line of the attribute), for calls of `a.b.attr`."""

    def __post_init__(self) -> None:
        self.module = module_of(self.path)
        self.is_package = self.path.endswith("__init__.py")
        self.lines = self.source.splitlines()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(node.module, node.level, self.module, self.is_package)
                self.from_imports += [(base, a.name, a.asname or a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                self.imports += [(a.name, a.asname) for a in node.names]
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name):
                    self.name_calls.setdefault(func.id, []).append(func.lineno)
                elif isinstance(func, ast.Attribute):
                    dotted = _dotted(func.value)
                    if dotted is not None:
                        self.attribute_calls.setdefault(func.attr, []).append(
                            (dotted, func.end_lineno or func.lineno))


def parse_files(files: dict[str, str]) -> dict[str, Parsed]:
    out = {}
    for path, text in files.items():
        try:
            out[path] = Parsed(path, text, ast.parse(text))
        except SyntaxError:
            pass
    return out


def call_sites(parsed: dict[str, Parsed], module: str, name: str) -> set[tuple[str, int]]:
    """(path, line) of every call of `module.name` by the rule in the module docstring."""
    modules = {p.module for p in parsed.values()}
    exporters = {module}
    grew = True
    while grew:  # modules re-exporting the function under its own name
        grew = False
        for p in parsed.values():
            if p.module not in exporters and any(base in exporters and imported == name == bound
                                                 for base, imported, bound in p.from_imports):
                exporters.add(p.module)
                grew = True
    sites: set[tuple[str, int]] = set()
    for p in parsed.values():
        if name not in p.name_calls and name not in p.attribute_calls and not any(
                imported == name for _, imported, _ in p.from_imports):
            continue
        as_function = {name} if p.module == module else set()
        as_module: dict[str, str] = {}
        for base, imported, bound in p.from_imports:
            if base in exporters and imported == name:
                as_function.add(bound)
            full = f"{base}.{imported}" if base else imported
            if full in modules:
                as_module[bound] = full
        for imported, alias in p.imports:
            top = imported.split(".")[0]
            as_module[alias or top] = imported if alias else top
        for bound in as_function:
            sites.update((p.path, line) for line in p.name_calls.get(bound, ()))
        for dotted, line in p.attribute_calls.get(name, ()):
            head, _, rest = dotted.partition(".")
            if head in as_module and ".".join(filter(None, (as_module[head], rest))) in exporters:
                sites.add((p.path, line))
    return sites


# ---------------------------------------------------------------------- planting

@dataclass(frozen=True)
class Target:
    path: str
    name: str
    module: str
    stale: frozenset[tuple[str, int]]


def _byte_offsets(source: str) -> list[int]:
    starts, at = [0], 0
    for line in source.encode("utf-8").splitlines(keepends=True):
        at += len(line)
        starts.append(at)
    return starts


def _header_colon(source: str, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
    """(line, character column) of the colon that ends the `def` header."""
    lines = source.splitlines(keepends=True)
    depth, seen_def = 0, False
    for tok in tokenize.generate_tokens(io.StringIO("".join(lines[fn.lineno - 1:])).readline):
        if tok.type == tokenize.NAME and tok.string == "def":
            seen_def = True
        elif tok.type == tokenize.OP and seen_def:
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == ":" and depth == 0:
                return fn.lineno + tok.start[0] - 1, tok.start[1]
    raise ValueError("no header colon")


Edit = tuple[int, int, str]  # byte offsets [start, end) and the replacement


def _apply(source: str, edits: list[Edit]) -> str:
    data = source.encode("utf-8")
    for start, end, text in sorted(edits, key=lambda e: e[0], reverse=True):
        data = data[:start] + text.encode("utf-8") + data[end:]
    return data.decode("utf-8")


def _own_nodes(fn: ast.AST) -> list[ast.AST]:
    """Nodes of a function's body, not descending into nested functions, classes or lambdas."""
    out, todo = [], list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        out.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return out


def plant(source: str, name: str, kind: str, rng: random.Random) -> str | None:
    """`source` with the module-level function `name` changed by `kind`, or None when it does not apply."""
    tree = ast.parse(source)
    fns = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
    if len(fns) != 1:
        return None
    fn = fns[0]
    starts = _byte_offsets(source)

    def at(line: int, col: int) -> int:  # ast columns count UTF-8 bytes
        return starts[line - 1] + col

    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    params = [a.arg for a in (*positional, *args.kwonlyargs)]
    new_args = ast.arguments(posonlyargs=list(args.posonlyargs), args=list(args.args), vararg=args.vararg,
                             kwonlyargs=list(args.kwonlyargs), kw_defaults=list(args.kw_defaults),
                             kwarg=args.kwarg, defaults=list(args.defaults))
    edits: list[Edit] = []
    body = fn.body
    docstring = (len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                 and isinstance(body[0].value.value, str))
    first = body[1] if docstring else body[0]
    colon_line, _ = _header_colon(source, fn)
    insert_ok = first.lineno > colon_line  # a statement can go on its own line before `first`
    indent = " " * first.col_offset if insert_ok else ""

    def insert(stmt: str) -> None:
        edits.append((at(first.lineno, 0), at(first.lineno, 0), f"{indent}{stmt}\n"))

    def returns() -> list[ast.Return]:
        return [n for n in _own_nodes(fn) if isinstance(n, ast.Return) and n.value is not None]

    if kind == "add_required_param":
        extra = next(p for p in ("strict", "limit", "encoding", "deadline", "context", "origin") if p not in params)
        required = len(new_args.args) - len(new_args.defaults)
        if required < 0 or args.posonlyargs:
            return None
        new_args.args.insert(required, ast.arg(extra))
    elif kind == "remove_param":
        if not insert_ok:
            return None
        if new_args.kwonlyargs:
            gone, default = new_args.kwonlyargs.pop(), new_args.kw_defaults.pop()
        elif new_args.args:
            gone = new_args.args.pop()
            default = new_args.defaults.pop() if new_args.defaults else None  # defaults align to the right
        else:
            return None
        insert(f"{gone.arg} = {ast.unparse(default) if default is not None else 'None'}")
    elif kind == "rename_keyword":
        named = [a for a in (*new_args.args, *new_args.kwonlyargs) if a.arg not in ("self", "cls")]
        if not named:
            return None
        old = rng.choice(named)
        renamed = f"{old.arg}_value"
        for a in (*new_args.args, *new_args.kwonlyargs):
            if a is old:
                a.arg = renamed  # the ast is unparsed into the new header below
        for node in _own_nodes(fn):
            if isinstance(node, ast.Name) and node.id == old.arg:
                end = at(node.end_lineno or node.lineno, node.end_col_offset or node.col_offset)
                edits.append((at(node.lineno, node.col_offset), end, renamed))
    elif kind == "keyword_only":
        if args.vararg or args.posonlyargs or len(args.args) < 2:
            return None
        keep = new_args.args[:1]
        moved = new_args.args[1:]
        defaults = [None] * (len(new_args.args) - len(new_args.defaults)) + list(new_args.defaults)
        new_args.args = keep
        new_args.defaults = [d for d in defaults[:1] if d is not None]
        new_args.kwonlyargs = moved + new_args.kwonlyargs
        new_args.kw_defaults = defaults[1:] + new_args.kw_defaults
    elif kind == "return_tuple":
        values = [r.value for r in returns()]
        if not values:
            return None
        for v in values:
            assert v is not None
            end = at(v.end_lineno or v.lineno, v.end_col_offset or 0)
            edits.append((end, end, ", None"))
    elif kind == "return_none":
        if not insert_ok or not returns() or not positional or positional[0].arg in ("self", "cls"):
            return None
        insert(f"if not {positional[0].arg}:\n{indent}    return None")
    else:
        raise ValueError(kind)

    if kind in ("add_required_param", "remove_param", "rename_keyword", "keyword_only"):
        # The header from `def` to its colon, rewritten from the changed arguments.
        line, col = colon_line, _header_colon(source, fn)[1]
        colon_byte = at(line, len(source.splitlines()[line - 1][:col].encode("utf-8")))
        returns_text = f" -> {ast.unparse(fn.returns)}" if fn.returns else ""
        prefix = "async def" if isinstance(fn, ast.AsyncFunctionDef) else "def"
        edits.append((at(fn.lineno, fn.col_offset), colon_byte,
                      f"{prefix} {fn.name}({ast.unparse(new_args)}){returns_text}"))
    changed = _apply(source, edits)
    if changed == source:
        return None
    try:
        ast.parse(changed)
    except SyntaxError:
        return None
    return changed


# ---------------------------------------------------------------------- measuring

@dataclass
class Result:
    kind: str
    target: Target
    reached: set[tuple[str, int]]
    references: int
    true_references: int
    call_rows: int
    true_call_rows: int
    in_prompts: int
    file_shown: int
    cut: bool
    grouped: int
    """Reference rows in the group of the changed function's definition."""
    true_grouped: int
    reached_in_group: int
    """Stale sites reached in that group."""
    answer_tokens: int


Row = tuple[str, int, bool, tuple[str, int] | None]
"""A reference row: path, line, tagged [call], and the definition its group names (None: not resolved)."""
_GROUP = re.compile(r"^references to \S+, defined at (?P<path>[^\n:]+):(?P<line>\d+) \(\d+\):$")


def find_symbol_rows(text: str) -> tuple[set[tuple[str, int]], list[Row], bool]:
    """Every `path:line` row of a find_symbol answer, the reference rows, and whether it was cut.

    Reference rows are those under a "references to" header, except imports (`[import]`
    rows are bindings; older answers listed most of them as definitions), each with the
    definition of its group when the header names one.
    """
    rows, references = set(), []
    section, group = "", None
    for line in text.splitlines():
        if not _ROW.match(line):
            section = line.split()[0] if line else section
            m = _GROUP.match(line)
            group = (m["path"], int(m["line"])) if m else None
            continue
        m = _ROW.match(line)
        assert m is not None
        row = (m["path"], int(m["line"]))
        rows.add(row)
        tag = line[m.end():]
        if section == "references" and not tag.startswith("[import]"):
            references.append((*row, tag.startswith("[call"), group))
    return rows, references, "[cut:" in text or "more than" in text and "files mention" in text


def tokens(text: str) -> int:
    """Rough token count, one token per four characters (as `reviewer.definitions.tokens`)."""
    return -(-len(text) // 4)


def def_line(source: str, name: str) -> int:
    """The line of the module-level `def name` in `source` (what find_symbol names a group by)."""
    return next(n.lineno for n in ast.parse(source).body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name)


def diff_only_prompts(clone: Path, base: str, head: str, config: Config) -> tuple[list[str], set[str]]:
    """The user messages a review without tools sends for `base...head`, and the files they show."""
    src = source.from_git(clone, base, head)
    try:
        parsed = diff_mod.parse(diff_mod.decode(src.data), ignore=config.ignore_globs,
                                max_file_bytes=config.max_file_bytes, read_head=src.read_head)
    finally:
        src.close()
    messages = [t.user for f in parsed.files for t in per_file.tasks(f, config)]
    messages.append(cross_file.user_message(parsed, [], config)[0])
    return messages, {f.path for f in parsed.files}


def run(rev: str, seed: int, per_kind: int, sweep: bool,
        log: Callable[[str], None]) -> list[Result]:
    rng = random.Random(seed)
    config = Config()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="reachability-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        base = git(clone, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()
        git(clone, "checkout", "-q", "--detach", base)
        paths = [p for p in git(clone, "ls-tree", "-r", "--name-only", base).splitlines() if p.endswith(".py")]
        files = {p: (clone / p).read_text("utf-8") for p in paths}
        parsed = parse_files(files)

        targets = []
        for p in sorted(parsed.values(), key=lambda p: p.path):
            names = [n.name for n in p.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for name in sorted(set(names)):
                if names.count(name) != 1 or name.startswith("__"):
                    continue
                stale = frozenset(s for s in call_sites(parsed, p.module, name) if s[0] != p.path)
                if stale:
                    targets.append(Target(p.path, name, p.module, stale))
        log(f"{len(parsed)} Python files at {base[:12]}; {len(targets)} module-level functions called "
            f"from other files")

        planned: list[tuple[str, Target, str]] = []
        used: set[tuple[str, str]] = set()
        for kind in KINDS:
            order = targets[:]
            rng.shuffle(order)
            picked = 0
            for t in order:
                if picked == per_kind:
                    break
                if (t.path, t.name) in used:
                    continue
                changed = plant(files[t.path], t.name, kind, rng)
                if changed is None:
                    continue
                used.add((t.path, t.name))
                planned.append((kind, t, changed))
                picked += 1

        for i, (kind, target, changed) in enumerate(planned):
            branch = f"case-{i:02d}-{kind}"
            git(clone, "checkout", "-q", "-b", branch, base)
            (clone / target.path).write_text(changed, "utf-8")
            git(clone, "commit", "-q", "-m", f"{kind}: {target.name}", "--", target.path)
            head = git(clone, "rev-parse", "HEAD").strip()

            at_head = dict(parsed)
            at_head.update(parse_files({target.path: changed}))
            truth = call_sites(at_head, target.module, target.name)
            with RepoView(clone, head) as view:
                answer = ToolBox(view).run("find_symbol", {"name": target.name})
            rows, references, cut = find_symbol_rows(answer.text)
            reached = set(target.stale) & rows
            own = (target.path, def_line(changed, target.name))
            grouped = [(p, n) for p, n, _, g in references if g == own]
            messages, shown_files = diff_only_prompts(clone, base, head, config)
            prompts = "\n".join(messages)
            present = sum(1 for path, line in target.stale
                          if parsed[path].lines[line - 1].strip() in prompts)
            results.append(Result(kind, target, reached, len(references),
                                  sum(1 for p, n, _, _ in references if (p, n) in truth),
                                  sum(1 for r in references if r[2]),
                                  sum(1 for p, n, call, _ in references if call and (p, n) in truth), present,
                                  sum(1 for path, _ in target.stale if path in shown_files), cut,
                                  len(grouped), sum(1 for r in grouped if r in truth),
                                  len(set(target.stale) & set(grouped)), tokens(answer.text)))
            if reached != set(target.stale):
                for path, line in sorted(set(target.stale) - reached):
                    log(f"  miss [{kind}] {target.name} ({target.path}): {path}:{line}: "
                        f"{parsed[path].lines[line - 1].strip()}" + ("  (answer was cut)" if cut else ""))
        git(clone, "checkout", "-q", "--detach", base)

        if sweep:
            # Every function, not only the sampled ones: the lookup over files the change does not
            # touch reads the same objects at base as at any case's head.
            all_stale = reached_all = in_group = answer_tokens = 0
            with RepoView(clone, base) as view:
                tools = ToolBox(view)
                for t in targets:
                    text = tools.run("find_symbol", {"name": t.name}).text
                    rows, references, cut = find_symbol_rows(text)
                    own = (t.path, def_line(files[t.path], t.name))
                    all_stale += len(t.stale)
                    reached_all += len(t.stale & rows)
                    in_group += len(t.stale & {(p, n) for p, n, _, g in references if g == own})
                    answer_tokens += tokens(text)
                    for path, line in sorted(t.stale - rows):
                        log(f"  miss [sweep] {t.name} ({t.path}): {path}:{line}: "
                            f"{parsed[path].lines[line - 1].strip()}" + ("  (answer was cut)" if cut else ""))
            log(f"sweep, every function called from another file ({len(targets)}, no change planted): "
                f"find_symbol reaches {reached_all} of {all_stale} call sites ({reached_all / all_stale:.1%}), "
                f"{in_group} ({in_group / all_stale:.1%}) in the group of the function's definition; "
                f"{answer_tokens / len(targets):,.0f} tokens per answer")
    return results


def table(results: list[Result]) -> str:
    rows = [(f"{'kind':<20} {'cases':>5} {'functions':>9} {'stale sites':>11} {'recall':>8} {'in group':>8} "
             f"{'references':>10} {'precision':>9} {'[call] rows':>11} {'group rows':>10} {'group prec.':>11} "
             f"{'tokens':>6} {'text in diff-only prompts':>25} {'file shown':>10}")]
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[r.kind].append(r)
    for label, rs in [*((k, groups[k]) for k in KINDS if k in groups), ("overall", results)]:
        stale = sum(len(r.target.stale) for r in rs)
        reached = sum(len(r.reached) for r in rs)
        refs = sum(r.references for r in rs)
        true = sum(r.true_references for r in rs)
        calls, true_calls = sum(r.call_rows for r in rs), sum(r.true_call_rows for r in rs)
        present = sum(r.in_prompts for r in rs)
        shown = sum(r.file_shown for r in rs)
        functions = len({(r.target.path, r.target.name) for r in rs})
        grouped, true_grouped = sum(r.grouped for r in rs), sum(r.true_grouped for r in rs)
        in_group = sum(r.reached_in_group for r in rs)
        answer = sum(r.answer_tokens for r in rs) / len(rs)
        rows.append(f"{label:<20} {len(rs):>5} {functions:>9} {stale:>11} {reached / stale:>8.1%} "
                    f"{in_group / stale:>8.1%} {refs:>10} {true / refs if refs else 0:>9.1%} "
                    f"{true_calls / calls if calls else 0:>11.1%} {grouped:>10} "
                    f"{true_grouped / grouped if grouped else 0:>11.1%} {answer:>6,.0f} "
                    f"{present / stale:>25.1%} {shown / stale:>10.1%}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", default=PINNED, help="commit of this repository the cases are made from")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--per-kind", type=int, default=6, help="cases per kind of change")
    parser.add_argument("--no-sweep", action="store_true", help="skip the lookup of every function (about 30 s)")
    opts = parser.parse_args()
    started = time.perf_counter()
    results = run(opts.rev, opts.seed, opts.per_kind, not opts.no_sweep, lambda s: print(s, flush=True))
    print(table(results))
    cut = sum(r.cut for r in results)
    print(f"{len(results)} cases, {len({(r.target.path, r.target.name) for r in results})} functions, seed {opts.seed}; "
          f"{cut} find_symbol answer(s) cut or capped; {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
