"""Pass 2: one call over all changed files and the pass-1 findings.

Scope: data flow, API contracts, imports, architecture, shared state. A large
change is compressed to `cross_file_token_budget` in steps that lose the least
first: full hunks, then changed lines only, then each file cut to its share.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import prompts
from ..config import Config
from ..diff import shown_path
from ..models import Diff, FileDiff, Finding, PriorFinding
from ..pricing import estimate_tokens
from . import render_findings, render_prior


def _file_block(file: FileDiff, body: str) -> str:
    renamed = f" (renamed from {shown_path(file.old_path)})" if file.old_path else ""
    return f"=== {shown_path(file.path)} [{file.status}{renamed}]\n{body.rstrip()}\n"


def _changed_only(file: FileDiff) -> str:
    out = []
    for hunk in file.hunks:
        out.append(hunk.rendered.splitlines()[0])
        out.extend(line for line in hunk.rendered.splitlines()[1:] if "|+" in line[:16] or "|-" in line[:16])
    return "\n".join(out)


def _cut_to(text: str, budget: int) -> str:
    lines = text.splitlines()
    kept: list[str] = []
    used = 0
    for line in lines:
        used += estimate_tokens(line) + 1
        if used > budget:
            kept.append(f"[... {len(lines) - len(kept)} more lines not shown]")
            break
        kept.append(line)
    return "\n".join(kept)


def render_files(diff: Diff, budget: int) -> tuple[str, str]:
    """All files as one text within `budget` tokens, and a note on how it was compressed."""
    full = "".join(_file_block(f, "".join(h.rendered for h in f.hunks)) for f in diff.files)
    if estimate_tokens(full) <= budget:
        return full, "full hunks"
    changed = {f.path: _changed_only(f) for f in diff.files}
    compact = "".join(_file_block(f, changed[f.path]) for f in diff.files)
    if estimate_tokens(compact) <= budget:
        return compact, "changed lines only, context lines left out to fit the budget"
    share = max(50, budget // max(1, len(diff.files)))
    cut = "".join(_file_block(f, _cut_to(changed[f.path], share)) for f in diff.files)
    return cut, "changed lines only, each file cut to its share of the budget"


def user_message(diff: Diff, findings: Sequence[Finding], config: Config, prior: Sequence[PriorFinding] = ()) -> tuple[str, str | None]:
    """The cross-file prompt, and a note when the diff had to be compressed."""
    findings_text = render_findings(findings)
    prior_text = render_prior(prior)
    budget = config.cross_file_token_budget - estimate_tokens(findings_text + prior_text) - 600
    files, how = render_files(diff, max(1000, budget))
    user = prompts.render(
        "cross_file",
        prior=prior_text, findings=findings_text, files=files.rstrip("\n"),
        count=f"{len(diff.files)} file{'s' if len(diff.files) != 1 else ''}", note=how,
        boundary=prompts.boundary(files, findings_text),
    )
    note = None if how == "full hunks" else f"cross-file pass saw a compressed diff: {how}"
    return user, note
