"""A scripted model for the Anthropic emulator: answers by pass and by file.

It reads only what the real API would see (the request body) to decide which
pass a request belongs to, so tests exercise reviewer's real prompts.

A tool loop is scripted with `Turns`: the answer for a request is chosen by how
many assistant turns it already holds, so

    ScriptedModel(per_file={"util.py": Turns(
        ToolCalls([("read_file", {"path": "app.py"})]),   # round 1: read app.py
        {"findings": [...]},                               # round 2: the answer
    )})

makes the per-file call for util.py read app.py first, then answer. The pass and
the file come from the first user message (the task), which a tool loop keeps.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.emulators.anthropic import ToolCalls

__all__ = [
    "ScriptedModel", "ToolCalls", "Turns", "assistant_turns", "each_alone", "file_of", "finding_rows",
    "pass_of", "prior_id", "task_text", "tool_results", "tool_uses", "user_text", "verify_task", "UNVERIFIED",
]

Answer = Any  # whatever the emulator's responder may return


class Turns:
    """The turns of one tool loop: turn n answers a request holding n assistant turns (the
    last turn answers any later round too). A turn is a `ToolCalls` or a final answer."""

    def __init__(self, *turns: Answer) -> None:
        if not turns:
            raise ValueError("Turns needs at least one turn")
        self.turns = turns

    def pick(self, body: dict[str, Any]) -> Answer:
        return self.turns[min(assistant_turns(body), len(self.turns) - 1)]

    def __repr__(self) -> str:
        return f"Turns{self.turns!r}"


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def task_text(body: dict[str, Any]) -> str:
    """The text of the first user message: the task a conversation started with."""
    first = next(m for m in body["messages"] if m["role"] == "user")
    return "".join(b.get("text", "") for b in _blocks(first["content"]) if b.get("type") == "text")


def assistant_turns(body: dict[str, Any]) -> int:
    """How many assistant turns the request already holds (0 on a conversation's first call)."""
    return sum(1 for m in body["messages"] if m["role"] == "assistant")


def tool_results(body: dict[str, Any]) -> list[str]:
    """The text of each `tool_result` in the last user message, in order (text blocks joined)."""
    last = body["messages"][-1]
    out = []
    for block in _blocks(last["content"]) if last["role"] == "user" else []:
        if block.get("type") != "tool_result":
            continue
        content = block.get("content") or ""
        out.append(content if isinstance(content, str)
                   else "".join(b.get("text", "") for b in content if b.get("type") == "text"))
    return out


def tool_uses(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every `tool_use` block the conversation holds, oldest first."""
    return [b for m in body["messages"] if m["role"] == "assistant" and not isinstance(m["content"], str)
            for b in m["content"] if b.get("type") == "tool_use"]


def user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content)


def pass_of(body: dict[str, Any]) -> str:
    text = task_text(body)
    if text.startswith("Review one file"):
        return "per_file"
    if text.startswith("Review a change as a whole"):
        return "cross_file"
    if text.startswith("Aggregate the findings"):
        return "aggregate"
    if text.startswith("Check one finding"):
        return "verify"
    return "other"


def verify_task(body: dict[str, Any]) -> dict[str, str]:
    """What a verifier request was told about its finding: file, lines, category and issue."""
    text = task_text(body)
    out = {key: m.group(1) for key in ("file", "lines", "category")
           if (m := re.search(rf"^Finding's {key}: (.*)$", text, re.M))}
    issue = re.search(r"<finding-[0-9a-f]+>\n(.*)\n</finding-[0-9a-f]+>", text, re.S)
    out["issue"] = issue.group(1) if issue else ""
    return out


UNVERIFIED = {"verdict": "confirmed", "evidence": [], "reason": "scripted verifier: no evidence given",
              "severity": "warning", "confidence": 0.5}
"""The default verifier answer: a confirmation without evidence, which the review marks unverified
(so a test that does not script the verifier keeps the aggregate pass's ratings)."""


def file_of(body: dict[str, Any]) -> str | None:
    match = re.search(r"^File: (.+)$", task_text(body), re.M)
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
    """per_file[path] -> answer (or list of answers, one per attempt); cross_file; aggregate.

    Any of these answers may be a `Turns` (a tool loop). An attempt is a new conversation:
    a request holding assistant turns (a later round of a loop) is not counted as one."""

    per_file: dict[str, Any] = field(default_factory=dict)
    cross_file: Any = None
    aggregate: Callable[[dict[str, Any]], Answer] | Any = None
    verify: Callable[[dict[str, Any]], Answer] | dict[str, Any] | None = None
    """Verifier answers: a callable(body), or a dict whose key is the finding's file or a part of its
    issue text (values as for per_file: an answer, a list per attempt, a Turns); None: UNVERIFIED."""
    attempts: dict[str, int] = field(default_factory=dict)
    returned: int = 0
    """Findings answered so far by per-file and cross-file requests (the conservation law's total)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: dict[str, Any]) -> Answer:
        kind = pass_of(body)
        key = file_of(body) if kind == "per_file" else kind
        if kind == "verify":
            task = verify_task(body)
            key = f"verify {task.get('file')}: {task['issue']}"
        with self._lock:
            attempt = self.attempts.get(str(key), 0)
            if assistant_turns(body) == 0:
                self.attempts[str(key)] = attempt + 1
            else:
                attempt = max(0, attempt - 1)  # a later round of the current attempt
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
        elif kind == "verify":
            if callable(self.verify):
                return self.verify(body)
            task = verify_task(body)
            answer = next((a for k, a in (self.verify or {}).items()
                           if k == task.get("file") or k in task["issue"]), UNVERIFIED)
        else:
            return {"findings": []}
        if isinstance(answer, list):
            answer = answer[min(attempt, len(answer) - 1)]
        if isinstance(answer, Turns):
            answer = answer.pick(body)
        if isinstance(answer, dict) and isinstance(answer.get("findings"), list):
            with self._lock:
                self.returned += len(answer["findings"])
        return answer


def each_alone(body: dict[str, Any], confidence: float = 0.8) -> dict[str, Any]:
    """An aggregate answer that keeps every finding in a group of its own."""
    return {"groups": [{"ids": [r["id"]], "severity": r["severity"], "confidence": confidence, "issue": None}
                       for r in finding_rows(body)]}
