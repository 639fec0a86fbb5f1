"""Dataclasses that cross the eval's stage boundaries: cases -> runner -> score -> report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..models import Finding

PLANTED_KINDS: tuple[str, ...] = (
    "inverted-condition",      # `<` -> `>=`, `==` -> `!=`, `if x` -> `if not x`, `and` -> `or`
    "off-by-one",              # a bound or slice moved by one: `range(n)` -> `range(n - 1)`, `x[1:]` -> `x[2:]`
    "swapped-arguments",       # two positional arguments of a call exchanged
    "removed-guard",           # an `if x is None: return/raise` (or empty check) removed
    "wrong-variable",          # a use of a local replaced by another local in scope
    "swallowed-exception",     # `except KeyError:` -> `except Exception: pass`, or a raise dropped
    "resource-not-closed",     # `with open(...) as f:` -> `f = open(...)` without close
    "changed-default",         # a parameter's default value changed
    "stale-callers",           # cross-file: a signature/return contract changed, callers in other files left stale
)
CONTROL_KINDS: tuple[str, ...] = (
    "rename-local",            # a local variable renamed everywhere in its scope
    "extract-constant",        # a literal moved to a module-level constant
    "reorder-imports",         # independent imports reordered
    "reformat",                # layout only (wrapping, blank lines), same AST
)


@dataclass(frozen=True)
class Site:
    """A line of an unchanged file that the change left wrong (a stale call site)."""

    path: str
    line: int


@dataclass(frozen=True)
class CallSite:
    """A call, in another file, of a top-level function (what `callers(name, path)` gives a mutator).

    The stale-callers forms keep the calls their change breaks: a new or
    reordered parameter breaks calls by how they pass arguments, a changed
    return contract breaks calls by how they use the value.
    """

    path: str
    line: int
    positional: int
    """How many arguments the call passes by position."""
    starred: bool
    """It passes `*args` or `**kwargs`: how its arguments bind cannot be told from the call."""
    use: str | None
    """How the calling code uses the returned value: "assigned", "unpacked", "compared", "checked for None",
    "passed on", "attribute", "subscripted", "iterated", "tested", "operand", "called", "formatted", "with";
    None when it is discarded, or returned or stored, so that what it breaks lies elsewhere."""

    @property
    def site(self) -> Site:
        return Site(self.path, self.line)


@dataclass(frozen=True)
class Mutant:
    """One candidate change a language's mutator can make to a file (`cases` samples among them).

    A mutator module (`mutants_python`, `mutants_treesitter`) exposes
      `language(path) -> str | None`        the language it parses this file as, or None;
      `parser_name(language) -> str`        "ast (standard library)", "tree-sitter (tree-sitter-go)";
      `parses(path, text) -> bool`          whether `text` parses as the file's language;
      `mutants(path, text, callers=None) -> list[Mutant]`
                                            every candidate, in a deterministic order; `callers(name, path)`
                                            gives the calls (`CallSite`) of a function in other files
                                            (stale-callers).
    """

    kind: str
    function: str
    start: int
    end: int
    """The changed lines in `new_text`, inclusive."""
    description: str
    new_text: str
    sites: tuple[Site, ...] = ()


@dataclass(frozen=True)
class Case:
    """One evaluation case: a one-file change of the repository at `CasePlan.commit`.

    Lines are 1-based and refer to the file after the change (`new_text`).
    """

    id: str
    """Stable across runs of the same plan: kind and a short hash of path, function and change."""
    kind: str
    """One of PLANTED_KINDS or CONTROL_KINDS."""
    planted: bool
    """True: a defect was planted (a catch is expected); False: a control (any finding is noise)."""
    language: str
    path: str
    start: int
    end: int
    """The changed lines of `path` in the new file, inclusive (for a pure removal: the lines around it)."""
    description: str
    """What changed, in one line: "`<` became `<=` in `Parser.feed`"."""
    function: str
    """The qualified name of the function (or `<module>`) the change is in."""
    diff: str
    """A unified diff against the commit with a/ and b/ prefixes; `git apply --check` accepts it."""
    new_text: str
    """The whole file after the change."""
    sites: tuple[Site, ...] = ()
    """stale-callers only: the call sites in other, unchanged files that the change broke."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "planted": self.planted, "language": self.language,
            "path": self.path, "start": self.start, "end": self.end, "description": self.description,
            "function": self.function, "diff": self.diff,
        }
        if self.sites:
            d["sites"] = [{"path": s.path, "line": s.line} for s in self.sites]
        return d


@dataclass(frozen=True)
class LanguageCount:
    """How many files of a language the commit holds, and whether cases can be made from them."""

    language: str
    files: int
    covered: bool
    parser: str | None = None
    """What parses it: "ast (standard library)", "tree-sitter (tree-sitter-javascript)"; None when not covered."""


@dataclass(frozen=True)
class CasePlan:
    commit: str
    """The full SHA the cases apply to."""
    seed: int
    cases: tuple[Case, ...]
    languages: tuple[LanguageCount, ...] = ()
    notes: tuple[str, ...] = ()
    """Shortfalls said plainly: "asked for 40 planted cases, the repository gave 31 (kinds without a site: ...)"."""

    @property
    def planted(self) -> tuple[Case, ...]:
        return tuple(c for c in self.cases if c.planted)

    @property
    def controls(self) -> tuple[Case, ...]:
        return tuple(c for c in self.cases if not c.planted)


CaseStatus = Literal["done", "failed", "incomplete"]


@dataclass(frozen=True)
class CaseOutcome:
    """What the review made of one case."""

    case_id: str
    status: CaseStatus
    findings: tuple[Finding, ...] = ()
    """Every finding the review kept (posted or not: all severities; refuted ones are not here)."""
    input_tokens: int = 0
    """All input tokens billed, cache reads and writes included."""
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0
    error: str | None = None
    """Why the case failed, or what stopped it early."""
    mode: Literal["sync", "batch"] = "sync"
    tools: bool = False
    """Whether the review could read the repository through its tools."""
    notes: tuple[str, ...] = field(default=())
