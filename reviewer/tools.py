"""Read-only tools the review's model may call, over the repository at the reviewed commit.

Everything a tool returns comes from a `RepoView` (git objects at one commit,
links never followed, submodules never entered, every path checked) and is
capped, and every cut says so. What the model asks for is untrusted input: it
is validated against the tool's input schema, and a malformed or refused call
gets an error result the model can read, never an exception.

The definitions (`DEFINITIONS`) are the same in every call, so they sit in the
cached prefix of the prompt (spec §3: tools render before the system prompt).

Tools:
- `read_file`: a file or a line range, numbered as in the prompts;
- `search_code`: a regular expression (POSIX extended, as `git grep -E`) over
  the tree, optionally under a path glob; `file:line: text`, capped;
- `list_files`: the files under a directory;
- `find_symbol`: the definitions and references of a name, parsed for Python,
  JavaScript, TypeScript, Go, Java, Rust, C and C++ (`reviewer.symbols`), plain
  word matches for other languages, labelled so; Python references grouped by
  the definition their file's imports tie them to, the others listed as not
  resolved.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import symbols
from .redact import redact
from .repo_view import PathRefused, RepoView, shown

MAX_RESULT_CHARS = 12_000
"""Characters of one tool result; the cut is said in the result."""
MAX_READ_LINES = 400
MAX_FILE_BYTES = 512 * 1024
MAX_MATCHES = 60
MAX_LIST = 300
MAX_SYMBOL_FILES = 40
MAX_INDEXED_FILES = 2_000
"""Python files whose index a ToolBox keeps between `find_symbol` calls."""
SEARCH_TIMEOUT = 10.0
"""Seconds a search may run; a pattern that takes longer is refused."""

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
# Order of `find_symbol` rows by kind (`symbols.Occurrence.kind`), per role.
_RANKS = {"definition": {"def": 0, "class": 0, "type": 0, "import": 1, "const": 1, "assignment": 2, "attribute": 2,
                         "parameter": 3},
          "reference": {"call": 0, "import": 1, "attribute": 2, "keyword": 2, "name": 3}}
_UNRESOLVED = ("no import ties them to one: attributes of objects of unknown type, locals, keyword arguments, "
               "names from outside the repository, other languages")

DEFINITIONS: tuple[dict[str, Any], ...] = (
    {
        "name": "read_file",
        "description": (
            "Read a file of the repository at the commit under review, or a range of its lines. "
            "Lines are numbered as in the diff you were given. Paths are from the top of the "
            f"repository. At most {MAX_READ_LINES} lines per call; ask again for more."
        ),
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["path"],
            "properties": {
                "path": {"type": "string", "description": "File path from the top of the repository, e.g. src/app.py."},
                "start_line": {"type": "integer", "description": "First line to read (1-based); default 1."},
                "end_line": {"type": "integer", "description": "Last line to read; default start_line + 399."},
            },
        },
    },
    {
        "name": "search_code",
        "description": (
            "Search the repository at the commit under review with a regular expression (POSIX "
            "extended, like `grep -E`), optionally only in files matching a glob such as "
            f"'src/**/*.py'. Returns up to {MAX_MATCHES} matches as `file:line: text`."
        ),
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pattern"],
            "properties": {
                "pattern": {"type": "string", "description": "Regular expression, e.g. 'def parse_\\w+'."},
                "path_glob": {"type": "string", "description": "Only files matching this glob, e.g. 'tests/*.py'."},
            },
        },
    },
    {
        "name": "list_files",
        "description": f"List the files under a directory of the repository (up to {MAX_LIST}), with their sizes.",
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": [],
            "properties": {
                "directory": {"type": "string", "description": "Directory from the top of the repository; '' for all."},
            },
        },
    },
    {
        "name": "find_symbol",
        "description": (
            "Find where a name (function, class, variable, method, attribute) is defined and where it "
            "is used, across the repository at the commit under review. Files in these languages are "
            f"parsed: {symbols.PARSED_LANGUAGES}; other files give plain word matches, marked as such. "
            "Python references are grouped under the definition their file's imports tie them to; "
            "the rest (e.g. `obj.name` where obj's type is unknown) are listed as not resolved."
        ),
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "description": "An identifier, e.g. parse_config."},
                "path_glob": {"type": "string", "description": "Only files matching this glob, e.g. 'src/**/*.py'."},
            },
        },
    },
)

NAMES = tuple(d["name"] for d in DEFINITIONS)


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model as a `tool_result` block."""

    text: str
    is_error: bool = False


def _resolved(path: str, module: symbols.PyModule, name: str,
              resolver: symbols.Resolver) -> list[tuple[symbols.Occurrence, symbols.Target | None]]:
    """The occurrences of `name` in a Python file, each with the definition it resolves to.

    One row per line and role, as `symbols.occurrences` gives, except that a line
    referring to two definitions (`a.parse(b.parse(x))`) is in both groups; a line's
    unresolved occurrences are left out when another on the line resolves.
    """
    found = [(module.occurrence(site, kind), resolver.resolve(path, module, site, spelled))
             for site, kind, spelled in module.sites_of(name)]
    found.sort(key=lambda f: (f[0].line, f[0].role, f[1] is None, not f[0].kind.startswith("call"), f[0].kind))
    seen: set[tuple[int, str, tuple[str, int] | None]] = set()
    lines: set[tuple[int, str]] = set()
    out = []
    for o, target in found:  # per line and role: the resolved first, a call before other kinds
        key = None if target is None else (target.path, target.line)
        if (o.line, o.role, key) in seen or (key is None and (o.line, o.role) in lines):
            continue
        seen.add((o.line, o.role, key))
        lines.add((o.line, o.role))
        out.append((o, target))
    return out


class _Refused(Exception):
    """A call the tool cannot serve; its message goes back to the model."""


def _clip(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    cut = cut[: cut.rfind("\n") + 1] or cut
    return cut + f"[cut: {len(text) - len(cut):,} more characters; narrow the request]\n"


def _validate(name: str, args: Any) -> dict[str, Any]:
    """The call's arguments checked against its schema, or _Refused naming what is wrong."""
    schema = next((d["input_schema"] for d in DEFINITIONS if d["name"] == name), None)
    if schema is None:
        raise _Refused(f"unknown tool {name!r}; the tools are {', '.join(NAMES)}")
    if not isinstance(args, Mapping):
        raise _Refused("the input must be a JSON object")
    from .schemas import first_error

    error = first_error(schema, dict(args))
    if error is not None:
        raise _Refused(f"invalid input {error}")
    return dict(args)


class ToolBox:
    """Runs the tools over one `RepoView`; safe to share between concurrent calls."""

    def __init__(self, view: RepoView) -> None:
        self.view = view
        self._lock = threading.Lock()
        self._modules: OrderedDict[str, symbols.PyModule | None] = OrderedDict()
        """Python files indexed so far (the commit does not change), least recently used first."""
        self._files: dict[str, bool] = {}

    def run(self, name: str, args: Any) -> ToolResult:
        """The result of one tool call; never raises for anything the model sent."""
        try:
            clean = _validate(name, args)
            text = getattr(self, "_" + name)(**clean)
        except _Refused as exc:
            return ToolResult(redact(str(exc)), is_error=True)
        except PathRefused as exc:
            return ToolResult(redact(f"{shown(exc.path)} {exc.reason}"), is_error=True)
        except Exception as exc:  # noqa: BLE001 - what the model asks must never end the review
            return ToolResult(f"the tool failed ({type(exc).__name__}); try another request", is_error=True)
        return ToolResult(redact(_clip(text)))

    # ------------------------------------------------------------------ tools

    def _read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        blob = self.view.read(path, MAX_FILE_BYTES)
        if blob.is_link:
            return f"{shown(blob.path)} is a symbolic link to {shown(blob.text)}; links are not followed."
        if blob.binary:
            return f"{shown(blob.path)} is a binary file ({blob.size:,} bytes); it cannot be shown."
        lines = blob.text.splitlines()
        total = len(lines)
        first = max(1, start_line)
        last = min(total, end_line if end_line is not None else first + MAX_READ_LINES - 1, first + MAX_READ_LINES - 1)
        if total == 0:
            return f"{shown(blob.path)} is empty."
        if first > total:
            raise _Refused(f"{shown(blob.path)} has {total} line(s); start_line {first} is past its end")
        rows: list[str] = []
        size = 0
        for n in range(first, last + 1):
            text = lines[n - 1]
            row = f"{n:>6} | {text if len(text) <= 2000 else text[:2000] + ' …[line cut]'}"
            if rows and size + len(row) + 1 > MAX_RESULT_CHARS - 300:
                last = n - 1  # the rest would not fit in one result
                break
            rows.append(row)
            size += len(row) + 1
        cut = f", file cut at {MAX_FILE_BYTES:,} bytes" if blob.truncated else ""
        head = f"{blob.path} (lines {first}-{last} of {total}{cut})"
        more = f"\n[{total - last} more line(s); ask for start_line {last + 1}]" if last < total else ""
        return head + "\n" + "\n".join(rows) + more

    def _list_files(self, directory: str = "") -> str:
        under = directory.strip().strip("/")
        entries = self.view.entries(under) if under else self.view.entries()
        rows = []
        for e in entries[:MAX_LIST]:
            size = f"{e.size:,} bytes" if e.size is not None else ""
            kind = "" if e.kind == "file" else f" ({e.kind}, not followed)" if e.kind == "link" else f" ({e.kind}, not entered)"
            rows.append(f"{e.path}  {size}{kind}".rstrip())
        more = f"\n[{len(entries) - MAX_LIST} more entries; list a subdirectory]" if len(entries) > MAX_LIST else ""
        return (f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} under {shown(under or '.')}:\n" + "\n".join(rows) + more
                if entries else f"nothing under {shown(under or '.')}")

    def _search_code(self, pattern: str, path_glob: str | None = None) -> str:
        matches, more = self._grep(["-n", "-I", "-E", "-e", pattern], path_glob, MAX_MATCHES)
        if not matches:
            return f"no match for {pattern!r}" + (f" in {path_glob!r}" if path_glob else "")
        rows = [f"{path}:{line}: {text.strip()[:300]}" for path, line, text in matches]
        return "\n".join(rows) + ("\n[more matches not shown; narrow the pattern or the glob]" if more else "")

    def _find_symbol(self, name: str, path_glob: str | None = None) -> str:
        if not re.fullmatch(_IDENT, name):
            raise _Refused("name must be an identifier (letters, digits, _; not starting with a digit)")
        files, _ = self._grep(["-l", "-w", "-I", "-F", "-e", name], path_glob, 100_000)
        # Parsed files first: past the file cap, word matches in prose are what is left out.
        files.sort(key=lambda f: not symbols.covered(f[0]))
        more_files = len(files) > MAX_SYMBOL_FILES
        files = files[:MAX_SYMBOL_FILES]
        resolver = symbols.Resolver(self._python, self._is_file)
        definitions: list[tuple[int, str]] = []
        references: list[tuple[int, str]] = []
        groups: dict[tuple[str, int], tuple[str, list[tuple[int, str]]]] = {}
        plain: list[str] = []
        python = False
        for path, _, _ in files:
            found: list[tuple[symbols.Occurrence, symbols.Target | None]] | None = None
            if path.endswith(symbols.PARSED_SUFFIXES):
                module = self._python(path)
                if module is not None:
                    python = True
                    found = _resolved(path, module, name, resolver)
            elif symbols.covered(path):
                blob = self.view.read(path, MAX_FILE_BYTES)
                parsed = None if blob.is_link or blob.binary else symbols.occurrences(blob.text, name, path)
                found = None if parsed is None else [(o, None) for o in parsed]
            if found is None:
                hits, _ = self._grep(["-n", "-w", "-I", "-F", "-e", name], path, 20, literal_path=True)
                plain += [f"{p}:{line}: {text.strip()[:200]}" for p, line, text in hits]
                continue
            for o, target in found:
                row = f"{path}:{o.line}: [{o.kind}] {o.text[:200]}"
                if target is not None:  # a reference, or an import, tied to its definition
                    rank = _RANKS["reference"].get(o.kind.split()[0], len(_RANKS["reference"]))
                    groups.setdefault((target.path, target.line), (target.qual, []))[1].append((rank, row))
                    continue
                rank = _RANKS[o.role].get(o.kind.split()[0], len(_RANKS[o.role]))
                (definitions if o.role == "definition" else references).append((rank, row))
        # Most telling rows first (sort is stable: then path and line), so a cut drops local names, not
        # calls: def/class/import, the references of each definition, the other references, then
        # assignments, attributes and parameters.
        shown_defs = [row for rank, row in sorted(definitions, key=lambda r: r[0]) if rank <= 1]
        bindings = [row for rank, row in sorted(definitions, key=lambda r: r[0]) if rank > 1]
        shown_refs = [row for _, row in sorted(references, key=lambda r: r[0])]
        out = [f"definitions of {name} ({len(shown_defs)}):", *(shown_defs or ["(none found in parsed files)"])]
        for (path, line), (qual, rows) in sorted(groups.items()):
            out += [f"references to {qual}, defined at {path}:{line} ({len(rows)}):",
                    *(row for _, row in sorted(rows, key=lambda r: r[0]))]
        if python and references:
            out += [f"references to {name} not resolved to a definition ({_UNRESOLVED}) ({len(references)}):",
                    *shown_refs]
        elif not groups:  # as before resolution, when no Python file is in the answer
            out += [f"references to {name} ({len(references)}):", *(shown_refs or ["(none found in parsed files)"])]
        if bindings:
            out += [f"assignments, attributes and parameters named {name} ({len(bindings)}):", *bindings]
        if plain:
            out += [f"word matches in files not parsed (not told apart; languages parsed: {symbols.PARSED_LANGUAGES}) ({len(plain)}):", *plain]
        if more_files:
            out.append(f"[more than {MAX_SYMBOL_FILES} files mention {name}; give a path_glob to narrow]")
        return "\n".join(out)

    def _python(self, path: str) -> symbols.PyModule | None:
        """The index of the Python file at `path`, made once per file; None when it is not a regular file that parses."""
        with self._lock:
            if path in self._modules:
                self._modules.move_to_end(path)
                return self._modules[path]
        try:
            blob = self.view.read(path, MAX_FILE_BYTES)
        except PathRefused:
            module = None
        else:
            module = None if blob.is_link or blob.binary else symbols.index(blob.text)
        with self._lock:
            self._modules[path] = module
            while len(self._modules) > MAX_INDEXED_FILES:
                self._modules.popitem(last=False)
        return module

    def _is_file(self, path: str) -> bool:
        """Whether a regular file (not a link, not in a submodule) is at `path` in the tree."""
        with self._lock:
            known = self._files.get(path)
        if known is None:
            try:
                known = self.view.lookup(path).kind == "file"
            except PathRefused:
                known = False
            with self._lock:
                self._files[path] = known
        return known

    # ------------------------------------------------------------------ search

    def _grep(self, options: list[str], glob: str | None, limit: int,
              literal_path: bool = False) -> tuple[list[tuple[str, str, str]], bool]:
        """`git grep` at the view's commit: (path, line, text) rows, and whether there were more.

        It reads the commit's objects, never the working tree; a link is
        searched as its target text, not followed; submodules are not entered.
        """
        if glob is not None:
            glob = glob.strip()
            if glob.startswith(":") or "\0" in glob or "\n" in glob:
                raise _Refused("path_glob must be a plain glob such as 'src/**/*.py'")
            if glob.startswith("/") or ".." in glob.split("/"):
                raise _Refused("path_glob must be inside the repository (no leading / and no '..')")
        spec = [f":(literal){glob}" if literal_path else f":(glob){glob}"] if glob else []
        try:
            done = self.view.git("grep", "--no-color", "--full-name", *options, self.view.commit, "--", *spec,
                                 timeout=SEARCH_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise _Refused(f"the search took longer than {SEARCH_TIMEOUT:.0f} s; use a simpler pattern or a path_glob") from None
        if done.returncode == 1:
            return [], False
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise _Refused(f"search failed: {message[-1] if message else 'git grep exit ' + str(done.returncode)}")
        rows: list[tuple[str, str, str]] = []
        prefix = self.view.commit + ":"
        for raw in done.stdout.decode("utf-8", "replace").splitlines():
            if raw.startswith(prefix):
                raw = raw[len(prefix):]
            if "-l" in options:
                rows.append((raw, "", ""))
            else:
                path, _, rest = raw.partition(":")
                line, _, text = rest.partition(":")
                rows.append((path, line, text))
            if len(rows) > limit:
                return rows[:limit], True
        return rows, False

