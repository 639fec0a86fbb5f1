"""Dataclasses that cross stage boundaries: diff -> passes -> findings -> publishers.

Stages exchange these frozen objects, never dicts decoded from JSON; the only
dict conversions are `Finding.to_dict`/`from_dict` and `ReviewResult.to_dict`,
which follow `schemas/finding.schema.json` and `schemas/review.schema.json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Side = Literal["RIGHT", "LEFT"]
Severity = Literal["critical", "warning", "info"]
PassName = Literal["prewarm", "per_file", "cross_file", "aggregate", "verify"]
Verdict = Literal["confirmed", "unverified", "refuted"]

SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
SEVERITY_RANK: Mapping[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Hunk:
    """One `@@` hunk of a file's diff, with GitHub's commentable lines per side."""

    header: str
    text: str
    """The hunk exactly as in the diff, header line included."""
    new_lines: Mapping[int, str]
    """New-file line number -> text, for added and context lines (RIGHT side)."""
    old_lines: Mapping[int, str]
    """Old-file line number -> text, for removed and context lines (LEFT side)."""
    added: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()
    rendered: str = ""
    """The hunk with old/new line numbers in the margin, as the model sees it."""

    def lines(self, side: Side) -> Mapping[int, str]:
        return self.new_lines if side == "RIGHT" else self.old_lines


@dataclass(frozen=True)
class FileDiff:
    """A reviewable file: its hunks and, when known, its full text at head."""

    path: str
    status: Literal["added", "modified", "renamed"]
    hunks: tuple[Hunk, ...]
    old_path: str | None = None
    head_text: str | None = None

    def commentable(self, side: Side) -> frozenset[int]:
        return frozenset(n for h in self.hunks for n in h.lines(side))

    def hunk_of(self, line: int, side: Side) -> Hunk | None:
        for h in self.hunks:
            if line in h.lines(side):
                return h
        return None

    def line_text(self, line: int, side: Side) -> str | None:
        hunk = self.hunk_of(line, side)
        if hunk is not None:
            return hunk.lines(side)[line]
        if side == "RIGHT" and self.head_text is not None:
            lines = self.head_text.splitlines()
            if 1 <= line <= len(lines):
                return lines[line - 1]
        return None

    @property
    def patch(self) -> str:
        return "".join(h.text for h in self.hunks)


@dataclass(frozen=True)
class Skipped:
    """A file that was not reviewed, and why; it is always reported, never dropped."""

    path: str
    reason: str


@dataclass(frozen=True)
class Failed:
    """A file whose review calls failed; the rest of the review went on."""

    path: str
    error: str


@dataclass(frozen=True)
class Diff:
    files: tuple[FileDiff, ...]
    skipped: tuple[Skipped, ...] = ()

    def get(self, path: str) -> FileDiff | None:
        for f in self.files:
            if f.path == path:
                return f
        return None


@dataclass(frozen=True)
class Evidence:
    """A line of code a verifier cites: where it is at the head commit, and what it says."""

    file: str
    line: int
    quote: str
    """The text of line `line` (or of lines starting there), as the verifier quoted it."""
    code: str = ""
    """Hash of the cited lines at the head commit (`identity.code_hash`), set when the quote matched them;
    a remembered refutation keeps it, to know when the code it rests on changed. Not shown."""
    end_line: int | None = None
    """The last cited line when the quote spans several; None for one line."""


@dataclass(frozen=True)
class Verification:
    """What the independent verifier of pass 3 made of a finding (`reviewer.passes.verify`).

    confirmed: it answered "confirmed" and every quote of its evidence was found
    at its path and line of the head commit; unverified: it was sent to the
    verifier, which did not confirm it with evidence that holds (quotes that do
    not match, no evidence, a failed call, a run stopped first); refuted: it
    answered "refuted", with a reason (and any quotes it gave matched).
    """

    verdict: Verdict
    reason: str
    evidence: tuple[Evidence, ...] = ()
    refuted_on: str | None = None
    """The head commit an earlier review of the pull request refuted this same problem on, when the
    refutation was remembered rather than asked again (its code has not changed since)."""

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason,
                "evidence": [{"file": e.file, "line": e.line, "quote": e.quote} for e in self.evidence],
                **({"refuted_on": self.refuted_on} if self.refuted_on else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verification:
        return cls(d["verdict"], d.get("reason", ""),
                   tuple(Evidence(e["file"], e["line"], e["quote"]) for e in d.get("evidence", ())),
                   d.get("refuted_on"))


@dataclass(frozen=True)
class Refutation:
    """A finding the verifier refuted in an earlier review of the pull request, remembered on it.

    Read back from the summary comment's marker (`publish.github`), relocated to
    the head under review like a posted finding (README: A finding's identity).
    A finding of this review that is the same problem is kept refuted, not sent
    to the verifier again, unless `changed`.
    """

    finding: Finding
    """Its file, side, category, issue (the start of it) and fingerprint; `line` where its code is now."""
    sha: str
    """The head commit it was refuted on."""
    reason: str
    """The verifier's reason then."""
    code: str = ""
    """Hash of the code at its anchor when refuted (`identity.code_hash`)."""
    context: str = ""
    """Hash of the code around it when refuted."""
    changed: bool = False
    """Its code or the code around it changed since (or cannot be found), or code its evidence cited did:
    a restatement is verified again."""
    evidence: tuple[CitedCode, ...] = ()
    """Code the verifier cited for it (at most `publish.github.MAX_REMEMBERED_EVIDENCE` lines), where it is
    now; empty when it cited none (then only its own code is watched)."""


@dataclass(frozen=True)
class CitedCode:
    """A line (or lines) a refutation rests on: where, and a hash of its text (`identity.code_hash`)."""

    file: str
    line: int
    end_line: int | None
    code: str


@dataclass(frozen=True)
class Finding:
    """One anchored finding (schemas/finding.schema.json).

    `line`/`end_line` are only set when they sit on commentable lines of `side` in
    one hunk; otherwise the finding is file-level (`line` None).
    """

    file: str
    severity: Severity
    issue: str
    line: int | None = None
    end_line: int | None = None
    side: Side = "RIGHT"
    category: str = "other"
    suggestion: str | None = None
    replacement: str | None = None
    confidence: float | None = None
    pass_: Literal["per_file", "cross_file"] = "per_file"
    fingerprint: str = ""
    repeats: str | None = None
    """The id (`P3`) of the prior finding the model says this one restates, on a re-review."""
    verification: Verification | None = None
    """Set by pass 3 when the finding went to the verifier; None when it was not checked."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pass"] = d.pop("pass_")
        if self.verification is not None:
            d["verification"] = self.verification.to_dict()
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        data = dict(d)
        if "pass" in data:
            data["pass_"] = data.pop("pass")
        if isinstance(data.get("verification"), Mapping):
            data["verification"] = Verification.from_dict(data["verification"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_(self, **changes: Any) -> Finding:
        return replace(self, **changes)


@dataclass(frozen=True)
class PriorFinding:
    """A finding an earlier review posted, as a re-review shows it to the model."""

    id: str
    """`P1`, `P2`, ...: what the model cites in `repeats` when it restates this finding."""
    finding: Finding
    """With `line`/`end_line` relocated to the commit under review, or None when its code changed."""
    was: str | None = None
    """Where it was when posted ("line 7 at abc1234"), when its code has changed since."""
    at: str | None = None
    """The commit `finding.line` refers to: the head under review."""


@dataclass(frozen=True)
class Rejected:
    """Findings the model put on a path the review cannot place them on, counted per path."""

    path: str
    count: int
    reason: str


@dataclass(frozen=True)
class Tally:
    """Where every finding the model returned went: nothing leaves a review uncounted.

    returned = kept + rejected + over_limit + merged + refuted, where kept is
    the number of findings of the result (`ReviewResult.findings`); refuted
    ones are in `ReviewResult.refuted`.
    """

    returned: int = 0
    """Findings in the answers of the per-file and cross-file calls."""
    rejected: tuple[Rejected, ...] = ()
    over_limit: tuple[tuple[str, int], ...] = ()
    """(file, count) of findings over `max_findings_per_file` or `max_findings_per_review`, most first."""
    merged: int = 0
    """Findings the aggregate pass merged into another one (duplicates)."""
    confirmed: int = 0
    """Findings the verifier confirmed with evidence found in the code (they are kept)."""
    refuted: int = 0
    """Findings the verifier refuted: not kept, listed as checked and not posted."""
    unverified: int = 0
    """Findings sent to the verifier that it did not confirm with evidence that holds (they are kept)."""
    refuted_earlier: int = 0
    """Of `refuted`: restatements of a refutation remembered from an earlier review, not sent to the verifier again."""

    @property
    def rejected_total(self) -> int:
        return sum(r.count for r in self.rejected)

    @property
    def over_limit_total(self) -> int:
        return sum(n for _, n in self.over_limit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "returned": self.returned,
            "rejected": [{"file": r.path, "count": r.count, "reason": r.reason} for r in self.rejected],
            "over_limit": [{"file": path, "count": n} for path, n in self.over_limit],
            "merged": self.merged,
            "confirmed": self.confirmed,
            "refuted": self.refuted,
            "unverified": self.unverified,
            **({"refuted_earlier": self.refuted_earlier} if self.refuted_earlier else {}),
        }


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Call:
    """One HTTP request to the Messages API, as billed."""

    pass_name: PassName
    subject: str
    """The file a per-file call reviewed, or the pass name for the others."""
    model: str
    usage: Usage
    cost_usd: float | None
    ok: bool
    repair: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class PlannedCall:
    pass_name: PassName
    subject: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    """Part of `input_tokens` that is the shared prefix (written once, then read)."""


@dataclass(frozen=True)
class Plan:
    """What a review would do, computed without any request (`--dry-run`)."""

    reviewed: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    calls: tuple[PlannedCall, ...]
    usage: Usage
    cost_usd: float | None
    notes: tuple[str, ...] = ()

    def calls_per_pass(self) -> dict[str, int]:
        counts = {"prewarm": 0, "per_file": 0, "cross_file": 0, "aggregate": 0, "verify": 0}
        for c in self.calls:
            counts[c.pass_name] += 1
        return counts


@dataclass(frozen=True)
class Incomplete:
    """Why a review stopped before its end, and what it did not do."""

    message: str
    """"deadline reached after 600 s: 3 of 12 files reviewed; cross-file and aggregate not run"."""
    signal: int | None = None
    """The signal that stopped it (SIGINT, SIGTERM); None when the deadline did."""


@dataclass(frozen=True)
class ReviewResult:
    findings: tuple[Finding, ...]
    reviewed: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    failed: tuple[Failed, ...]
    calls: tuple[Call, ...]
    notes: tuple[str, ...] = field(default=())
    tally: Tally = field(default=Tally())
    incomplete: Incomplete | None = None
    """Set when the deadline or a signal stopped the review: what is here is what was done."""
    refuted: tuple[Finding, ...] = ()
    """Findings the verifier refuted (`verification.reason` says why): checked and not posted."""

    @property
    def usage(self) -> Usage:
        total = Usage()
        for c in self.calls:
            total = total + c.usage
        return total

    @property
    def cost_usd(self) -> float | None:
        costs = [c.cost_usd for c in self.calls]
        if any(c is None for c in costs):
            return None
        return round(sum(c for c in costs if c is not None), 6)

    def calls_per_pass(self) -> dict[str, int]:
        counts = {"prewarm": 0, "per_file": 0, "cross_file": 0, "aggregate": 0, "verify": 0, "repairs": 0}
        for c in self.calls:
            counts[c.pass_name] += 1
            counts["repairs"] += int(c.repair)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            **({"incomplete": self.incomplete.message} if self.incomplete else {}),
            "findings": [f.to_dict() for f in self.findings],
            **({"refuted": [f.to_dict() for f in self.refuted]} if self.refuted else {}),
            "stats": {
                "files_reviewed": list(self.reviewed),
                "files_skipped": [{"file": s.path, "reason": s.reason} for s in self.skipped],
                "files_failed": [{"file": f.path, "error": f.error} for f in self.failed],
                "calls": self.calls_per_pass(),
                "usage": self.usage.to_dict(),
                "cost_usd": self.cost_usd,
                "notes": list(self.notes),
                "tally": self.tally.to_dict(),
            },
        }
