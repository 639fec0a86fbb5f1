"""`--format json`: the document described by schemas/review.schema.json."""

from __future__ import annotations

import json

from ..models import Plan, ReviewResult


def render(result: ReviewResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_plan(plan: Plan) -> str:
    return json.dumps(
        {
            "dry_run": True,
            "files_reviewed": list(plan.reviewed),
            "files_skipped": [{"file": s.path, "reason": s.reason} for s in plan.skipped],
            "calls": plan.calls_per_pass(),
            "estimated_usage": plan.usage.to_dict(),
            "estimated_cost_usd": plan.cost_usd,
            "notes": list(plan.notes),
        },
        indent=2,
    ) + "\n"
