"""One structured-output call to the Messages API: schema check, one repair, usage and cost.

Every call is a new conversation holding a single user message; nothing of one
call's conversation reaches another. The official SDK reads ANTHROPIC_API_KEY and
ANTHROPIC_BASE_URL, and retries 408/409/429/5xx/529 honouring `retry-after`.

A call can be the review's cache lead (`ask(..., began=event)`): its first
attempt is streamed, and `event` is set when its `message_start` arrives, the
moment the prompt-cache entries it writes become readable (anthropic.md §3a),
so the engine can hold the other calls until then.

A call never outlives its run: each attempt gets at most `request_timeout` or
the time left before the run's deadline, whichever is less (the SDK's
`timeout=`), and `stop()` (the deadline, or a signal) cancels every call in
flight or waiting for a slot: they end as `Stopped`, and a call cancelled
after it was sent is recorded as a failed call (the API may have billed it).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import lazy, pricing, prompts, schemas
from .config import Config
from .deadline import Deadline
from .errors import ServiceError, UsageError
from .models import Call, PassName, Usage
from .tools import ToolResult

if TYPE_CHECKING:
    import anthropic
else:
    anthropic = lazy.module("anthropic")  # imported at first use: start-up stays fast

KEY_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


class CallFailed(Exception):
    """This call produced no valid answer; the caller records it and goes on."""


class Stopped(CallFailed):
    """The run was stopped (its deadline passed, or a signal came) before this call answered."""


@dataclass
class ToolBudget:
    """What the tools may still cost across one review: calls, and tokens of results sent back."""

    calls: int
    result_tokens: int

    def take(self) -> bool:
        if self.calls <= 0 or self.result_tokens <= 0:
            return False
        self.calls -= 1
        return True


@dataclass(frozen=True)
class ToolUse:
    """The tools a call may use: their definitions (the same in every call), how to run one, the limits."""

    definitions: tuple[dict[str, Any], ...]
    run: Callable[[str, Any], ToolResult]
    max_rounds: int
    budget: ToolBudget


class _StreamBroke(Exception):
    """A streamed answer failed after its headers: an SSE `error` event or a cut body."""


def require_credentials() -> None:
    if not any(os.environ.get(name) for name in KEY_VARIABLES):
        raise UsageError(
            "ANTHROPIC_API_KEY is not set: export it for a real review, "
            "or pass --dry-run to see the plan and its cost without calling the API"
        )


@dataclass(frozen=True)
class Prefix:
    """The shared, cached head of every request: system prompt, rubric, guidelines."""

    blocks: tuple[dict[str, Any], ...]

    @classmethod
    def build(cls, guidelines: str) -> Prefix:
        texts = [prompts.text("system")]
        if guidelines.strip():
            texts.append("# Repository guidelines\n\n" + guidelines.strip() + "\n")
        blocks: list[dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
        # One breakpoint on the last block caches everything before it.
        blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
        return cls(tuple(blocks))

    def uncached(self) -> Prefix:
        return Prefix(tuple({k: v for k, v in b.items() if k != "cache_control"} for b in self.blocks))

    @property
    def text(self) -> str:
        return "".join(b["text"] for b in self.blocks)

    @property
    def tokens(self) -> int:
        return pricing.estimate_tokens(self.text)


def usage_of(message: anthropic.types.Message) -> Usage:
    """The four token counters of a response (a synchronous call's or a batch result's)."""
    u = message.usage
    return Usage(
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
        cache_read_input_tokens=u.cache_read_input_tokens or 0,
    )


def _text(message: anthropic.types.Message) -> str:
    # Adaptive-thinking models may put a thinking block first.
    for block in message.content:
        if block.type == "text":
            return block.text
    return ""


def stream_errors() -> tuple[type[BaseException], ...]:
    """A response body (a results stream) broken after its headers arrived: the SDK
    raises its transport's own error then, not an APIConnectionError."""
    try:  # the SDK's HTTP transport: httpx2 since anthropic 2.x, httpx before
        import httpx2 as transport
    except ImportError:  # pragma: no cover - older SDKs
        import httpx as transport  # type: ignore[no-redef,import-not-found]
    return (transport.HTTPError, anthropic.APIConnectionError)


def fatal_errors() -> tuple[type[anthropic.APIStatusError], ...]:
    """Errors no other call can avoid either: stop the whole review at once."""
    return (anthropic.AuthenticationError, anthropic.PermissionDeniedError, anthropic.NotFoundError)


def refused(exc: anthropic.APIStatusError, what: str = "the request") -> ServiceError:
    """The error for a refusal no retry can mend (credentials, permission, a missing resource)."""
    return ServiceError(f"Anthropic API refused {what} ({exc.status_code}): {api_message(exc)}")


@dataclass
class ModelClient:
    """Makes the calls of one review; collects every billed call in `calls`."""

    config: Config
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    on_in_flight: Callable[[int], None] | None = None
    """Told how many requests are in flight whenever that changes (progress lines)."""
    calls: list[Call] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None
    """Why the run was stopped (`stop()`), None while it goes on."""

    def __post_init__(self) -> None:
        lazy.ready("anthropic")
        self._sdk = anthropic.AsyncAnthropic(
            max_retries=self.config.max_retries, timeout=self.config.request_timeout
        )
        self._slots = asyncio.Semaphore(self.config.max_concurrency)
        self._priced_models: set[str] = set()
        self._halt = asyncio.Event()
        self._in_flight = 0

    async def close(self) -> None:
        await self._sdk.close()

    def stop(self, why: str) -> None:
        """Cancel every call in flight or waiting, and refuse new ones: they raise Stopped(`why`)."""
        if self.stopped is None:
            self.stopped = why
        self._halt.set()

    def _flight(self, delta: int) -> None:
        self._in_flight += delta
        if self.on_in_flight is not None:
            self.on_in_flight(self._in_flight)

    def _record(self, pass_name: PassName, subject: str, model: str, usage: Usage,
                ok: bool, repair: bool, seconds: float) -> None:
        cost = pricing.cost(model, usage)
        if cost is None and model not in self._priced_models:
            self._priced_models.add(model)
            self.notes.append(pricing.unknown_price_note(model))
        self.calls.append(Call(pass_name, subject, model, usage, cost, ok, repair, seconds))

    async def _call(self, pass_name: PassName, subject: str, model: str, repair: bool,
                    send: Callable[[float], Awaitable[anthropic.types.Message]]) -> anthropic.types.Message:
        """One request (with the SDK's retries), ended early by `stop()`."""
        if self.stopped is not None:
            raise Stopped(self.stopped)
        work = asyncio.ensure_future(self._attempt(pass_name, subject, model, repair, send))
        halt = asyncio.ensure_future(self._halt.wait())
        try:
            await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.cancel()
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        if work.cancelled():
            raise Stopped(self.stopped or "stopped")
        return work.result()

    async def _attempt(self, pass_name: PassName, subject: str, model: str, repair: bool,
                       send: Callable[[float], Awaitable[anthropic.types.Message]]) -> anthropic.types.Message:
        async with self._slots:
            started = time.monotonic()
            self._flight(+1)
            try:
                message = await send(self.deadline.timeout(self.config.request_timeout))
            except asyncio.CancelledError:
                # Sent and never answered: the API may bill it, so it is listed, as failed.
                self._record(pass_name, subject, model, Usage(), False, repair, time.monotonic() - started)
                raise
            except fatal_errors() as exc:
                raise refused(exc) from exc
            except anthropic.APIStatusError as exc:
                self._record(pass_name, subject, model, Usage(), False, repair, time.monotonic() - started)
                raise CallFailed(f"API error {exc.status_code}: {api_message(exc)}") from exc
            except anthropic.APIConnectionError as exc:
                self._record(pass_name, subject, model, Usage(), False, repair, time.monotonic() - started)
                kind = "timed out" if isinstance(exc, anthropic.APITimeoutError) else "connection failed"
                raise CallFailed(f"request {kind} after {self.config.max_retries} retries") from exc
            except _StreamBroke:
                self._record(pass_name, subject, model, Usage(), False, repair, time.monotonic() - started)
                raise
            finally:
                self._flight(-1)
        self._record(pass_name, subject, model, usage_of(message), True, repair, time.monotonic() - started)
        return message

    async def _create(self, pass_name: PassName, subject: str, model: str, repair: bool,
                      **params: Any) -> anthropic.types.Message:
        return await self._call(pass_name, subject, model, repair,
                                lambda timeout: self._sdk.messages.create(model=model, timeout=timeout, **params))

    async def _stream(self, pass_name: PassName, subject: str, model: str, began: asyncio.Event,
                      **params: Any) -> anthropic.types.Message:
        """One call through the SDK's streaming helper; sets `began` at `message_start`.

        Not at the HTTP headers: the docs promise the cache entry once "the response
        begins", and whether the headers already count is not documented.
        """
        broken: tuple[type[BaseException], ...] = (anthropic.APIStatusError, StopAsyncIteration, *stream_errors())

        async def send(timeout: float) -> anthropic.types.Message:
            async with self._sdk.messages.stream(model=model, timeout=timeout, **params) as stream:
                try:
                    while (await stream.__anext__()).type != "message_start":
                        pass
                    began.set()
                    return await stream.get_final_message()
                except broken as exc:
                    what = api_message(exc) if isinstance(exc, anthropic.APIStatusError) else type(exc).__name__
                    raise _StreamBroke(what) from exc

        return await self._call(pass_name, subject, model, False, send)

    async def ask(self, *, pass_name: PassName, subject: str, model: str, prefix: Prefix,
                  user: str, schema: dict[str, Any], began: asyncio.Event | None = None,
                  tools: ToolUse | None = None) -> dict[str, Any]:
        """The model's answer to `user`, valid against the full `schema`.

        One repair call quotes the validation error; raises CallFailed when that
        fails too, and ServiceError for failures every call would share.

        With `began` this is the cache lead call: its first attempt is streamed
        and `began` is set once that response has begun, or once the call is
        over whatever happened, so no waiter hangs. A stream that breaks after
        its headers (the SDK retries nothing then, anthropic.md §5) is sent
        again once without streaming.

        With `tools` the model may call them for up to `tools.max_rounds` turns
        (and while the review's tool budget lasts); then it is asked to answer
        with what it has (`tool_choice: none`: the 5.5 models refuse `any` and
        `tool`, anthropic.md §10). Every turn is a billed call of this pass.
        """
        try:
            return await self._ask(pass_name, subject, model, prefix, user, schema, began, tools)
        finally:
            if began is not None:
                began.set()

    async def _send(self, pass_name: PassName, subject: str, model: str, repair: bool,
                    began: asyncio.Event | None, params: dict[str, Any]) -> anthropic.types.Message:
        if began is None or began.is_set():
            return await self._create(pass_name, subject, model, repair, **params)
        try:
            return await self._stream(pass_name, subject, model, began, **params)
        except _StreamBroke as exc:
            began.set()
            self.notes.append(f"the cache lead call's stream broke ({exc}); it was sent again unstreamed")
            return await self._create(pass_name, subject, model, repair, **params)

    async def _ask(self, pass_name: PassName, subject: str, model: str, prefix: Prefix,
                   user: str, schema: dict[str, Any], began: asyncio.Event | None,
                   tools: ToolUse | None) -> dict[str, Any]:
        output_config = {"format": {"type": "json_schema", "schema": schemas.for_model(schema)}}
        base: dict[str, Any] = dict(max_tokens=self.config.max_output_tokens, system=list(prefix.blocks),
                                    output_config=output_config)
        if tools is not None:
            base["tools"] = list(tools.definitions)
            # Automatic caching: each turn reads the conversation so far and writes its new end (§3).
            base["cache_control"] = {"type": "ephemeral"}
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
        rounds = 0
        error = ""
        for attempt in range(2):
            while True:
                params = dict(base, messages=list(messages))
                done_with_tools = tools is None or rounds >= tools.max_rounds or attempt > 0
                if tools is not None and done_with_tools:
                    params["tool_choice"] = {"type": "none"}
                    # A change of tool_choice invalidates the messages part of the cache (§3):
                    # this turn cannot read what the earlier turns wrote, and as the last turn
                    # nothing reads what it would write (bar a rare repair), so it writes nothing
                    # instead of paying the write premium on the whole conversation.
                    params.pop("cache_control", None)
                message = await self._send(pass_name, subject, model, attempt > 0, began, params)
                if tools is None or done_with_tools or message.stop_reason != "tool_use":
                    break
                rounds += 1
                messages.append({"role": "assistant", "content": _blocks(message)})
                messages.append({"role": "user", "content": await self._run_tools(message, tools)})
            text = _text(message)
            answer, error = check_answer(message, schema, text)
            if answer is not None:
                return answer
            if message.stop_reason == "refusal":
                break  # a refusal is not a formatting slip: asking again would not help
            repair = prompts.render("repair", error=error, answer=text[:4000], boundary=prompts.boundary(text))
            if tools is None:
                messages = [{"role": "user", "content": user + repair}]
            else:
                # Keep what the tools found: the repair goes on in the same conversation.
                messages += [{"role": "assistant", "content": _blocks(message) or [{"type": "text", "text": "(no answer)"}]},
                             {"role": "user", "content": repair.strip()}]
        raise CallFailed(error)

    async def _run_tools(self, message: anthropic.types.Message, tools: ToolUse) -> list[dict[str, Any]]:
        """One `tool_result` per `tool_use` of `message`, in order (§10: all in the next user message)."""
        results = []
        for block in message.content:
            if block.type != "tool_use":
                continue
            if tools.budget.take():
                result = await asyncio.to_thread(tools.run, block.name, block.input)
                tools.budget.result_tokens -= pricing.estimate_tokens(result.text)
            else:
                result = ToolResult("the tool budget of this review is spent: answer with what you have", True)
            entry: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.id, "content": result.text}
            if result.is_error:
                entry["is_error"] = True
            results.append(entry)
        return results


def _blocks(message: anthropic.types.Message) -> list[dict[str, Any]]:
    """The assistant turn as returned, to send back unchanged (thinking blocks included, §10)."""
    return [block.model_dump(mode="json", exclude_none=True) for block in message.content]


def api_message(exc: anthropic.APIStatusError) -> str:
    """The API's own error message of `exc`, falling back to the SDK's."""
    if isinstance(exc.body, dict):
        inner = exc.body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return exc.message


def check_answer(message: anthropic.types.Message, schema: dict[str, Any],
                 text: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """(answer, "") when `message` holds JSON valid against the full `schema`, else (None, reason).

    Refusal, truncation, JSON and schema checks, with no repair call: batch
    results use it as it is, `ModelClient.ask` adds the repair.
    """
    text = _text(message) if text is None else text
    if message.stop_reason == "refusal":
        details = getattr(message, "stop_details", None)
        why = getattr(details, "explanation", None) if details else None
        return None, f"the model refused to answer{': ' + why if why else ''}"
    try:
        answer = json.loads(text)
    except json.JSONDecodeError as exc:
        cut = " (the answer was cut off at max_tokens)" if message.stop_reason == "max_tokens" else ""
        return None, f"the answer is not valid JSON{cut}: {exc.msg} at char {exc.pos}"
    problem = schemas.first_error(schema, answer)
    if problem:
        return None, f"the answer does not match the schema {problem}"
    return answer, ""
