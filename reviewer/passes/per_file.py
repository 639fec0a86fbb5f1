"""Pass 1: one independent call per reviewable file (or per group of hunks).

Scope: bugs, type errors, error handling, dead code, edge cases, stale comments,
naming. A file too large for `per_file_token_budget` is split into groups of
whole hunks; a single hunk larger than the budget is cut, and the cut is noted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import prompts
from ..config import Config
from ..diff import shown_path
from ..models import FileDiff, Hunk, PriorFinding
from ..pricing import estimate_tokens
from . import render_prior

# Headroom for the template, the prior findings and the file header.
_OVERHEAD_TOKENS = 600


@dataclass(frozen=True)
class FileTask:
    file: FileDiff
    part: int
    parts: int
    user: str
    note: str | None = None

    @property
    def subject(self) -> str:
        return self.file.path if self.parts == 1 else f"{self.file.path} (part {self.part}/{self.parts})"


def _context(file: FileDiff, hunks: Sequence[Hunk], budget: int, around: int) -> str:
    """The file at head: whole if it fits half the budget, else windows around the hunks."""
    if file.head_text is None:
        return "(the full file is not available; review the diff alone)"
    lines = file.head_text.splitlines()
    numbered = [f"{n:>6} | {text}" for n, text in enumerate(lines, 1)]
    whole = "\n".join(numbered)
    if estimate_tokens(whole) <= budget // 2:
        return whole
    keep: set[int] = set()
    for hunk in hunks:
        if hunk.new_lines:
            first, last = min(hunk.new_lines), max(hunk.new_lines)
            keep.update(range(max(1, first - around), min(len(lines), last + around) + 1))
    out: list[str] = []
    previous = 0
    for n in sorted(keep):
        if n != previous + 1:
            out.append("   ... |")
        out.append(numbered[n - 1])
        previous = n
    text = "\n".join(out)
    if estimate_tokens(text) > budget // 2:
        return "(the file is too large to show; review the diff alone)"
    return text


def _cut(hunk: Hunk, budget: int) -> tuple[str, int]:
    """The rendered hunk cut to `budget` tokens, and how many lines were left out."""
    lines = hunk.rendered.splitlines()
    kept: list[str] = []
    used = 0
    for line in lines:
        used += estimate_tokens(line) + 1
        if used > budget:
            break
        kept.append(line)
    left = len(lines) - len(kept)
    return "\n".join(kept) + f"\n[... {left} more lines of this hunk are not shown]\n", left


def _groups(file: FileDiff, budget: int) -> list[list[Hunk]]:
    groups: list[list[Hunk]] = [[]]
    used = 0
    for hunk in file.hunks:
        cost = estimate_tokens(hunk.rendered)
        if groups[-1] and used + cost > budget:
            groups.append([])
            used = 0
        groups[-1].append(hunk)
        used += cost
    return groups


def tasks(file: FileDiff, config: Config, prior: Sequence[PriorFinding] = ()) -> list[FileTask]:
    """The per-file calls for `file`, each within the token budget."""
    prior_text = render_prior(prior)
    budget = max(500, config.per_file_token_budget - _OVERHEAD_TOKENS - estimate_tokens(prior_text))
    groups = _groups(file, budget // 2)
    out: list[FileTask] = []
    for index, hunks in enumerate(groups, 1):
        note = None
        if len(hunks) == 1 and estimate_tokens(hunks[0].rendered) > budget:
            shown, left = _cut(hunks[0], budget)
            note = f"{shown_path(file.path)}: a hunk of {left + len(shown.splitlines()) - 1} lines exceeds the per-file token budget; {left} lines were not reviewed"
        else:
            shown = "".join(h.rendered for h in hunks)
        context = _context(file, hunks, budget - estimate_tokens(shown), config.context_lines)
        renamed = f" (renamed from {shown_path(file.old_path)})" if file.old_path else ""
        part = f"This is part {index} of {len(groups)} of the file's diff; other parts are reviewed separately.\n" if len(groups) > 1 else ""
        user = prompts.render(
            "per_file",
            # A name cannot start a new line of the prompt: shown escaped (diff.shown_path).
            path=shown_path(file.path), status=file.status, renamed=renamed, part=part, prior=prior_text,
            context=context, hunks=shown.rstrip("\n"),
            boundary=prompts.boundary(file.path, shown, context),
        )
        out.append(FileTask(file, index, len(groups), user, note))
    return out

