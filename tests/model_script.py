"""A scripted model for the Anthropic emulator: answers by pass and by file.

It reads only what the real API would see (the request body) to decide which
pass a request belongs to, so tests exercise reviewer's real prompts.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

Answer = Any  # whatever the emulator's responder may return


def user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content)


def pass_of(body: dict[str, Any]) -> str:
    text = user_text(body)
    if text.startswith("Review one file"):
        return "per_file"
    if text.startswith("Review a change as a whole"):
        return "cross_file"
    if text.startswith("Aggregate the findings"):
        return "aggregate"
    return "other"


def file_of(body: dict[str, Any]) -> str | None:
    match = re.search(r"^File: (.+)$", user_text(body), re.M)
    return match.group(1) if match else None


def prior_id(body: dict[str, Any], text: str) -> str | None:
    """The id a re-review prompt gives the prior finding whose issue contains `text`, as a model would cite it."""
    for line in user_text(body).splitlines():
        if line.startswith('{"id": "P'):
            row = json.loads(line)
            if text in row.get("issue", ""):
                return row["id"]
    return None


def finding_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings handed to an aggregate request, as the model would read them."""
    text = user_text(body)
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"id": "F')]


@dataclass
class ScriptedModel:
    """per_file[path] -> answer (or list of answers, one per attempt); cross_file; aggregate."""

    per_file: dict[str, Any] = field(default_factory=dict)
    cross_file: Any = None
    aggregate: Callable[[dict[str, Any]], Answer] | Any = None
    attempts: dict[str, int] = field(default_factory=dict)
    returned: int = 0
    """Findings answered so far by per-file and cross-file requests (the conservation law's total)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: dict[str, Any]) -> Answer:
        kind = pass_of(body)
        key = file_of(body) if kind == "per_file" else kind
        with self._lock:
            attempt = self.attempts.get(str(key), 0)
            self.attempts[str(key)] = attempt + 1
        if kind == "per_file":
            answer = self.per_file.get(key or "", {"findings": []})
        elif kind == "cross_file":
            answer = self.cross_file if self.cross_file is not None else {"findings": []}
        elif kind == "aggregate":
            if callable(self.aggregate):
                return self.aggregate(body)
            if self.aggregate is not None:
                answer = self.aggregate
            else:
                return each_alone(body)
        else:
            return {"findings": []}
        if isinstance(answer, list):
            answer = answer[min(attempt, len(answer) - 1)]
        if isinstance(answer, dict) and isinstance(answer.get("findings"), list):
            with self._lock:
                self.returned += len(answer["findings"])
        return answer


def each_alone(body: dict[str, Any], confidence: float = 0.8) -> dict[str, Any]:
    """An aggregate answer that keeps every finding in a group of its own."""
    return {"groups": [{"ids": [r["id"]], "severity": r["severity"], "confidence": confidence, "issue": None}
                       for r in finding_rows(body)]}
