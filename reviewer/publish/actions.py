"""GitHub Actions integration: step summary, step outputs, and notices.

GITHUB_STEP_SUMMARY takes at most 1 MiB per step (over it, the upload fails),
so the report is cut to fit with a pointer to the full one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from ..redact import redact

STEP_SUMMARY_LIMIT = 1024 * 1024
_SUMMARY_BUDGET = STEP_SUMMARY_LIMIT - 4096


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def fit_summary(markdown: str, report_path: str | None) -> str:
    data = markdown.encode("utf-8")
    if len(data) <= _SUMMARY_BUDGET:
        return markdown
    cut = data[:_SUMMARY_BUDGET].decode("utf-8", "ignore")
    cut = cut[: cut.rfind("\n") + 1] if "\n" in cut else cut
    where = f" (full report: `{report_path}`)" if report_path else ""
    return cut + f"\n\n…the report was cut to fit the 1 MiB step summary limit{where}.\n"


def write_step_summary(markdown: str, report_path: str | None = None) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(fit_summary(redact(markdown), report_path))


def write_outputs(values: Mapping[str, str | int]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            text = str(value)
            if "\n" in text:
                # A random delimiter can never appear alone on a line of the value.
                delimiter = f"reviewer_{uuid.uuid4().hex}"
                fh.write(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")
            else:
                fh.write(f"{name}={text}\n")


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def notice(message: str) -> str:
    return f"::notice title=reviewer::{escape_data(message)}"


def default_report_path() -> Path | None:
    temp = os.environ.get("RUNNER_TEMP")
    return Path(temp) / "reviewer-report.md" if temp else None
