"""The conservation law, checked on what GitHub holds after a run.

Every finding the model returned is on the pull request itself: an inline
comment, an entry of the review body, an entry of a follow-up comment, or
counted in the summary comment (repeats of earlier findings, merged
duplicates, over the limits, not in the diff). A finding the verifier refuted
is an entry of the body or of a follow-up too, under "Checked and not
posted" with its reason and a `checked` marker (not a finding marker: it was
not posted); the summary says how many of the listed ones those are. The summary's ledger must say
so, and its numbers must be the ones a reader can count on the pull request.

Reads only the GitHub emulator's stored reviews and comments, as a person
would read the pull request.
"""

from __future__ import annotations

import json
import re
from typing import Any

_MARKER = re.compile(r"<!-- reviewer:(\w+) (.*?) -->", re.S)
_ROW = re.compile(r"^\| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", re.M)
_FIELDS = ("inline", "body", "followups", "repeats", "merged", "over_limit", "rejected")


def markers(body: str) -> list[tuple[str, Any]]:
    return [(kind, json.loads(data)) for kind, data in _MARKER.findall(body or "")]


def _findings_in(body: str) -> int:
    """Entries of a review body or comment: posted findings, and findings checked and not posted."""
    return sum(1 for kind, _ in markers(body) if kind in ("f", "checked"))


def _low_confidence_in(body: str) -> int:
    sections = re.findall(r"<summary>For a human to verify.*?</details>", body or "", re.S)
    return sum(_findings_in(s) for s in sections)


def _refuted_in(body: str) -> int:
    """Findings listed under "Checked and not posted", each with the reason it was refuted."""
    sections = re.findall(r"<summary>Checked and not posted.*?</details>", body or "", re.S)
    for section in sections:
        entries = re.findall(r"^- `.*?(?=^- `|\Z)", section, re.S | re.M)
        assert all("\n  Refuted: " in e for e in entries), "every refuted finding says why"
        assert not any(k == "f" for k, _ in markers(section)), "a refuted finding carries no finding marker"
    return sum(sum(1 for k, _ in markers(s) if k == "checked") for s in sections)


def check_conservation(gh: Any, repo: str, number: int, returned: int | None = None,
                       login: str = "reviewer-bot") -> dict[str, int]:
    """Assert the law for the latest run on the PR; return its ledger as read from the summary comment.

    `returned` is how many findings the scripted model answered in that run
    (None: not known to the test, only the summary's own figure is used).
    """
    summaries = [c for c in gh.issue_comments(repo, number)
                 if c["user"]["login"] == login and any(k == "summary" for k, _ in markers(c["body"]))]
    assert len(summaries) == 1, "exactly one summary comment"
    summary = summaries[0]["body"]
    data = next(d for k, d in markers(summary) if k == "summary")
    run = data["run"]
    row = _ROW.search(summary.split("Where the ", 1)[1])
    assert row, "the summary shows where the findings went"
    visible = dict(zip(_FIELDS, map(int, row.groups())))
    said = int(re.search(r"Where the (\d+) finding", summary).group(1))

    reviews = [r for r in gh.reviews(repo, number)
               if any(k == "review" and d.get("run") == run for k, d in markers(r["body"]))]
    assert len(reviews) <= 1, "one review per run"
    inline = body = low = refuted = 0
    if reviews:
        review = reviews[0]
        inline_bodies = [c["body"] for c in gh.review_comments(repo, number)
                         if c["pull_request_review_id"] == review["id"]]
        assert not any(k == "checked" for b in inline_bodies for k, _ in markers(b)), "a refuted finding is never inline"
        inline = sum(_findings_in(b) for b in inline_bodies)
        body = _findings_in(review["body"])
        low = _low_confidence_in(review["body"])
        refuted = _refuted_in(review["body"])
    followups = [c["body"] for c in gh.issue_comments(repo, number)
                 if any(k == "followup" and d.get("run") == run for k, d in markers(c["body"]))]
    in_followups = sum(_findings_in(b) for b in followups)
    low += sum(_low_confidence_in(b) for b in followups)
    refuted += sum(_refuted_in(b) for b in followups)
    for b in [reviews[0]["body"] if reviews else ""] + followups:
        assert len(b) <= 65_536, "under GitHub's comment limit"

    assert (visible["inline"], visible["body"], visible["followups"]) == (inline, body, in_followups), (
        f"the summary says {visible}, the pull request holds inline={inline} body={body} follow-ups={in_followups}")
    low_said = re.search(r"(\d+) of the listed findings are low confidence", summary)
    assert (int(low_said.group(1)) if low_said else 0) == low
    refuted_said = re.search(r"(\d+) of the listed findings were refuted by the verifier", summary)
    assert (int(refuted_said.group(1)) if refuted_said else 0) == refuted
    assert refuted == data["ledger"].get("refuted", 0), "the summary's marker counts the same refuted findings"
    assert sum(visible.values()) == said, f"the ledger {visible} does not add up to {said}"
    if returned is not None:
        assert said == returned, f"the summary counts {said} findings, the model returned {returned}"
    repeats = re.findall(r"^- `[^`]+` repeats `[^`]+`", summary, re.M)
    cut = re.search(r"Repeats of earlier findings.*?- … and (\d+) more", summary, re.S)
    assert len(repeats) + (int(cut.group(1)) if cut else 0) == visible["repeats"], "every repeat is named or counted"
    for cut_list in re.findall(r"- … and (\d+) more, (.+)", summary):
        assert int(cut_list[0]) > 0 and cut_list[1], "a cut list says how many it left out and where they are"
    return {**visible, "returned": said, "low_confidence": low, "refuted": refuted}
