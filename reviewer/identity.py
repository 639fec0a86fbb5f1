"""A finding's identity: when two findings describe the same problem.

One rule for the pull-request review, the audit and SARIF, documented in the
README ("A finding's identity"):

- A new finding gets a **fingerprint**: a hash of its file, side, category, the
  whitespace-collapsed code at its anchor and the distinctive words of its
  issue. It is stable across machines and runs for the same finding, and two
  different problems on the same line differ (their words differ).
- Two findings are **the same problem** when they are in the same file and
  either the model said so (on a re-review it sees prior findings with ids
  `P1`, `P2`, ... and sets `repeats` when it restates one), or their fingerprints
  are equal, or they sit within `NEAR` lines of each other (the prior one
  relocated to the current code first) and their issues share most of their
  distinctive words (`similar`). A line inserted above a finding therefore
  does not make it new, and a different problem on a commented line is not
  mistaken for the old one.
- A finding that is the same problem as an earlier one **inherits** the earlier
  fingerprint, so the identity survives rewording across runs.

Relocation: a posted finding remembers a short hash of the code it pointed at
(`code_hash`); on the next head the line holding that code nearest to the old
line is where the finding is now, or nowhere when the code changed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from .models import Finding

NEAR = 3
"""Lines between a restated finding and the earlier one it can repeat (after relocation)."""
RELOCATE_LIMIT = 400
"""Lines away from its recorded line that an earlier finding's code is looked for."""

_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
_STOP = frozenset(
    "the and for are but not this that with from when will would could should there their which while "
    "have has had been being does did into than then them they also only some more most such very what "
    "where here its can may might must any all one two line lines code file files value values function "
    "functions method methods call calls called returns return use used uses using because instead".split()
)


def normalize_code(text: str) -> str:
    """Code with whitespace collapsed: what a fingerprint and a code hash see."""
    return " ".join(text.split())


def code_hash(code: str) -> str:
    """A short hash of normalised code; empty code hashes to ""."""
    code = "\n".join(normalize_code(line) for line in code.split("\n"))
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()[:12] if code.strip() else ""


def _stem(word: str) -> str:
    # A plural or a third person is the same word for matching ("raises"/"raise").
    for suffix in ("ies", "es", "s", "ed", "ing"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(issue: str) -> frozenset[str]:
    """The distinctive words of an issue: lower case, stemmed, without filler words."""
    return frozenset(_stem(w) for w in _WORD.findall(issue.lower()) if w not in _STOP)


_IDENTIFIER = re.compile(
    r"`([^`\n]{1,80})`"                      # `quoted code`
    r"|\b([A-Za-z_][\w.]*)\("                # a call: name(
    r"|\b([A-Za-z]\w*_\w*|\w+\.\w[\w.]*)\b"   # snake_case, dotted.name
    r"|\b([a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*)\b"  # camelCase, CamelCase
)


def identifiers(issue: str) -> frozenset[str]:
    """The code names an issue mentions (quoted, called, snake_case, dotted, CamelCase), lower case."""
    out = set()
    for match in _IDENTIFIER.finditer(issue):
        name = next(g for g in match.groups() if g)
        out.add(name.strip().strip("()").lower())
    return frozenset(n for n in out if n)


def similar(a: str, b: str) -> bool:
    """Whether two issue texts describe the same problem in other words.

    At least two distinctive words in common, making up at least half of the
    shorter text's words, and, when both name code, at least one name in
    common: "median() raises IndexError for an empty list" and "IndexError when
    median() gets an empty list" are similar; "broad except hides errors" and
    "race between the check and the write" are not, nor are "`os` is imported
    but never used" and "`sys` is imported but never used".
    """
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return a.strip().lower() == b.strip().lower()
    ia, ib = identifiers(a), identifiers(b)
    if ia and ib and not ia & ib:
        return False
    # A code name counts as a word too (`os` is too short to be one otherwise).
    ta, tb = wa | ia, wb | ib
    shared = len(ta & tb)
    return shared >= 2 and shared * 2 >= min(len(ta), len(tb))


def fingerprint(file: str, category: str, side: str, code: str, issue: str) -> str:
    """The fresh identity of a finding (see the module docstring)."""
    key = " ".join(sorted(words(issue)))
    digest = hashlib.sha256("\0".join(("v2", file, side, category, normalize_code(code), key)).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


def relocate(line: int | None, end: int | None, wanted: str, text_at: Callable[[int], str | None],
             limit: int) -> tuple[int | None, int | None] | None:
    """Where code hashed as `wanted`, once at `line`..`end`, is now; None when it is gone.

    `text_at(n)` is the current text of line n (None when unknown); the match
    nearest to the old line wins, searching outwards up to `limit` lines away.
    """
    if line is None:
        return (None, None)
    if not wanted:
        return None
    span = (end - line) if end is not None else 0
    for distance in range(0, limit + 1):
        for n in ((line,) if distance == 0 else (line - distance, line + distance)):
            if n < 1:
                continue
            texts = [text_at(k) for k in range(n, n + span + 1)]
            if any(t is None for t in texts):
                continue
            if code_hash("\n".join(t for t in texts if t is not None)) == wanted:
                return (n, n + span if end is not None else None)
    return None


def same_problem(new: Finding, earlier: Finding, earlier_line: int | None, cited: bool = False) -> bool:
    """Whether `new` restates `earlier`, whose current line is `earlier_line` (see the module docstring)."""
    if new.file != earlier.file:
        return False
    if cited or new.fingerprint == earlier.fingerprint:
        return True
    if new.side != earlier.side:
        return False
    if (new.line is None) != (earlier_line is None):
        near = False
    else:
        near = new.line is None or abs((new.line or 0) - (earlier_line or 0)) <= NEAR
    return near and similar(new.issue, earlier.issue)


def match(new: Sequence[Finding], earlier: Sequence[Finding], earlier_lines: Mapping[int, int | None] | None = None,
          citations: Mapping[int, int] | None = None) -> dict[int, int]:
    """Pairs (index in `new`) -> (index in `earlier`) of findings that are the same problem.

    `earlier_lines[j]` is earlier[j]'s current line (default: its recorded
    line); `citations[i] = j` when the model said new[i] repeats earlier[j].
    Several new findings may match one earlier finding: a problem restated
    twice is still one problem. The nearest earlier match wins.
    """
    lines = earlier_lines or {}
    cites = citations or {}
    out: dict[int, int] = {}
    by_print: dict[tuple[str, str], int] = {}
    for j, e in enumerate(earlier):
        by_print.setdefault((e.file, e.fingerprint), j)
    for i, f in enumerate(new):
        if i in cites and 0 <= cites[i] < len(earlier) and earlier[cites[i]].file == f.file:
            out[i] = cites[i]
            continue
        if (f.file, f.fingerprint) in by_print:
            # The same finding unchanged: its own earlier self, not a reworded neighbour.
            out[i] = by_print[(f.file, f.fingerprint)]
            continue
        best: tuple[int, int] | None = None
        for j, e in enumerate(earlier):
            line = lines.get(j, e.line)
            if same_problem(f, e, line):
                distance = abs((f.line or 0) - (line or 0))
                if best is None or distance < best[0]:
                    best = (distance, j)
        if best is not None:
            out[i] = best[1]
    return out


def inherit(new: Iterable[Finding], earlier: Sequence[Finding], pairs: Mapping[int, int]) -> list[Finding]:
    """`new` with each matched finding carrying the fingerprint of the earlier one it restates."""
    return [f.with_(fingerprint=earlier[pairs[i]].fingerprint) if i in pairs else f for i, f in enumerate(new)]
