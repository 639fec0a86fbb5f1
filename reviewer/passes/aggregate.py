"""Pass 3: one call over every finding that groups duplicates and rates each group.

The model only groups and rates; `findings.apply_groups` keeps every finding it
did not mention, so aggregation can never make a finding disappear.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import prompts
from ..models import Finding, PriorFinding
from . import render_findings, render_prior


def user_message(findings: Sequence[Finding], prior: Sequence[PriorFinding] = ()) -> str:
    text = render_findings(findings, ids=True)
    return prompts.render(
        "aggregate", prior=render_prior(prior), findings=text, boundary=prompts.boundary(text)
    )
