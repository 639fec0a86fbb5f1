"""Offline emulator of the Anthropic Messages API for the ``reviewer`` test suite.

The official SDK (``anthropic`` 2.x) talks through its own transport
(``httpx2``), so HTTP mocks do not intercept it.  This module is a real HTTP
server instead: pure standard library (``http.server.ThreadingHTTPServer``,
HTTP/1.1, keep-alive, daemon threads, a deep listen backlog) bound to
``127.0.0.1`` on an ephemeral port.  It serves many slow requests at once
(latency is slept outside the lock) and keeps all state in one object guarded
by one lock.  It enforces the rules of ``/work/shared/specs/anthropic.md`` §9.

Endpoints
---------
::

    POST   /v1/messages                       Messages (JSON, or server-sent events with stream: true)
    POST   /v1/messages/count_tokens          {"input_tokens": N}
    POST   /v1/messages/batches               create a Message Batch
    GET    /v1/messages/batches               list, newest first (limit, after_id, before_id)
    GET    /v1/messages/batches/{id}          retrieve
    POST   /v1/messages/batches/{id}/cancel   -> canceling, then ended
    DELETE /v1/messages/batches/{id}          only once ended
    GET    /v1/messages/batches/{id}/results  JSONL, shuffled, only once ended

Public API
----------
::

    from tests.emulators.anthropic import (
        AnthropicEmulator, Reply, ToolCalls, ImpossibleAnswer, Refusal, Truncated, Fault, Drop, Slow)

    emu = AnthropicEmulator(api_keys=("test-key",), *, models=None, min_cache_tokens=1024,
                            prefill_factor=0.05, batch_processing_seconds=0.2,
                            batch_cancel_seconds=0.05)
    emu.start(); emu.stop()        # or: with AnthropicEmulator() as emu: ...
    emu.base_url                   # "http://127.0.0.1:PORT"
    emu.reset()                    # forget requests, cache, faults, batches, errors, counters;
                                   # every setting below back to the constructor's values
    emu.latency = 1.0              # seconds per generating /v1/messages request
    emu.prefill_factor = 0.05      # its response begins after latency * prefill_factor (the
                                   # prompt is processed); a max_tokens=0 pre-warm ends there
                                   # (`prewarm_factor` is the same setting, its former name)
    emu.responder = fn             # fn(body: dict) -> answer (see below); default {"findings": []}
                                   # called from server threads, concurrently: keep it thread-safe
    emu.enqueue_fault(Fault(529), count=1)   # next `count` valid /v1/messages requests
    emu.requests                   # [Recorded(method, path, headers, body, started, finished,
                                   #  status, query, began)] copies, arrival order; path has no
                                   # query string; status 0 = dropped / never delivered / a
                                   # stream still running; began = when a message's response
                                   # began (its cache entries became readable)
    emu.message_requests()         # recorded POST /v1/messages with status 200
    emu.max_in_flight              # peak concurrent POST /v1/messages since reset (every such
                                   # request counts from arrival to its response, errors included)
    emu.in_flight                  # POST /v1/messages being processed right now
    emu.cache_entries()            # number of live prompt-cache entries
    emu.max_message_body = 32 MiB; emu.max_batch_body = 256 MiB   # 413 thresholds
    emu.min_cache_tokens = 1024    # prefixes shorter than this are never cached
    emu.clock_offset = 0.0         # seconds added to the cache clock (expire entries)
    emu.models                     # {model id: ModelSpec}; add entries to allow more models
    emu.errors                     # exceptions raised by responders (answered as 500), including
                                   # ImpossibleAnswer for a turn the model could not give
    emu.batches                    # {batch id: Batch} snapshot
    emu.batch_processing_seconds = 0.2   # a batch ends this long after creation
    emu.batch_cancel_seconds = 0.05      # a canceled batch ends this long after the cancel
    emu.batch_outcome = fn         # fn(custom_id, params) -> None|"errored"|"expired"|"canceled"|Fault
                                   # (a Fault: an errored result with its error type and message)
    emu.custom_id_submissions      # collections.Counter of every custom_id ever submitted

Hooks (None by default; called from server threads, so a test can act at an
exact point of a client's conversation, e.g. kill the client process):

    emu.on_request = fn            # fn(Recorded) -> None | Fault | Drop, for every authenticated
                                   # request once its body is parsed, before it is handled; a Fault
                                   # or Drop is answered instead (e.g. the batch is never created)
    emu.on_batch_created = fn      # fn(batch_json), after a batch is stored, before the create answer
    emu.on_results_line = fn       # fn(batch_id, index), before each line of a results stream is
                                   # written (lines are sent one by one while a hook is set)

Checks run in this order: body size (413), auth (401), ``anthropic-version``,
JSON, the body rules (400, unknown model 404); then, for a valid
``/v1/messages``, the cache read, a queued fault if any, else the responder.

Answers (returned by the responder, or queued with ``enqueue_fault``):

* ``dict`` / ``list`` -> JSON-dumped as the single text block, ``end_turn``.
* ``str`` -> the text verbatim (may be invalid JSON).
* ``Reply(text, stop_reason="end_turn", output_tokens=None)``.
* ``ToolCalls(calls=[("read_file", {"path": "a.py"}), ...], text=None, thinking=None,
  output_tokens=None)`` -> 200, ``stop_reason: "tool_use"``: thinking blocks, the note, one
  ``tool_use`` block per call (see "Tool use" below).
* ``Refusal(explanation)`` -> 200, ``stop_reason: "refusal"``, ``stop_details``, text ``""``.
* ``Truncated(text)`` -> 200, ``stop_reason: "max_tokens"``, the (cut) text.
* ``Fault(status, error_type=None, message=None, retry_after=None, should_retry=None)``
  -> that status with the real error envelope; defaults per status follow the
  spec's error table.  ``retry_after`` sets ``retry-after`` and
  ``retry-after-ms``; ``should_retry`` sets ``x-should-retry``; 400s carry
  ``x-should-retry: false`` unless told otherwise.
* ``Drop()`` -> the connection is closed without a response.
* ``MidStream(fault=Fault(529))`` -> streamed: 200, ``message_start`` (the cache
  is written), then an ``error`` event carrying the fault's type and message,
  and the stream ends; unstreamed: the fault itself.
* ``Slow(seconds, then=None)`` -> sleep ``seconds``, then handle ``then`` as
  usual (so a generating answer still pays ``latency`` on top).  ``then=None``
  means "what would have happened otherwise": the responder's answer when the
  ``Slow`` was queued, the default answer when a responder returned it.

A normal answer (not Fault/Drop) takes ``latency``: its response *begins*
after ``latency * prefill_factor`` (the prompt is processed, the cache
written, ``Recorded.began`` set) and ends at ``latency``; faults and drops
answer at once.  With ``stream: true`` the answer is server-sent events
(spec §1): the HTTP headers go out at once, ``message_start`` (with all the
cache counters) when the response begins, the text in four
``content_block_delta`` events spread over the rest of ``latency``, then
``message_delta`` (stop reason, cumulative usage) and ``message_stop``.  A
fault is an HTTP error before any event.  A ``max_tokens: 0`` request is a
cache pre-warm (spec §3a): the responder is not consulted (queued faults
still apply), it takes ``latency * prefill_factor`` and returns
``content: []`` with ``stop_reason: "max_tokens"`` and ``output_tokens: 0``
(it is a 200, so ``message_requests()`` lists it); combined with
``stream: true``, ``thinking.type: "enabled"``, ``output_config.format`` (or
the legacy ``output_format``) or ``tool_choice`` ``any``/``tool`` it is a 400
``invalid_request_error``, and inside a batch an ``errored`` result.  A text longer than ``max_tokens`` (and no
explicit ``Reply.output_tokens``) is cut to ``max_tokens * 4`` characters with
``stop_reason: "max_tokens"``; a listed ``stop_sequences`` entry in the text
cuts it with ``stop_reason: "stop_sequence"``.  If a responder raises, the
request gets a 500 ``api_error`` with ``x-should-retry: false`` and the
exception is kept in ``emu.errors``; an answer the model could not give with
the request's tools (``ImpossibleAnswer``, see "Tool use") is such a 500.

Tool use (spec §10)
-------------------
A tool loop against the emulator::

    emu.responder = lambda body: (
        ToolCalls([("read_file", {"path": "app.py"})]) if len(body["messages"]) == 1
        else {"findings": []})
    turn = sdk.messages.create(..., tools=[READ_FILE])          # stop_reason "tool_use"
    messages += [{"role": "assistant", "content": turn.content},
                 {"role": "user", "content": [{"type": "tool_result",
                                               "tool_use_id": turn.content[-1].id, "content": "..."}]}]
    final = sdk.messages.create(..., tools=[READ_FILE], messages=messages)   # end_turn

(``tests/model_script.py``: ``Turns`` scripts this per file and pass.)

A ``ToolCalls`` turn's ``content`` is one ``thinking`` block per ``thinking`` string, then
the ``text`` note, then one ``tool_use {id: "toolu_…", name, input}`` per call.  On models
with ``ModelSpec.notes_as_thinking`` (Opus 5.5, Sonnet 5.5, Fable 5.1) the note is one more
``thinking`` block instead of ``text`` (docs, "What's new in Claude Opus 5.5": "text between
tool calls comes back in thinking blocks whose text is empty at the default display
setting"; for Fable 5.1 unverified).  Thinking text is returned at ``thinking.display:
"summarized"`` and is ``""`` at ``"omitted"``, the default of those three models
(``ModelSpec.thinking_display``); every thinking block has a ``signature``.
``thinking.type: "disabled"`` drops scripted thinking on the other models.  Output tokens:
thinking + note + each input's canonical JSON; past ``max_tokens`` the calls that do not fit
are left out and ``stop_reason`` is ``"max_tokens"``.  Streamed (checked against SDK 2.16.0
``lib/streaming/_messages.py``, whose accumulator joins the fragments and parses them with
``jiter``): a ``tool_use`` opens with ``input: {}`` and its input JSON follows in three
``input_json_delta`` fragments; a thinking block opens as ``{"thinking": "", "signature":
""}``, then ``thinking_delta``s (none when omitted) and one ``signature_delta``.  Batches
return the same content.

Refused with 400 ``invalid_request_error`` (texts quoted by issue reports marked *, the
others plausible guesses):

* a tool ``name`` not matching ``^[a-zA-Z0-9_-]{1,64}$``: ``tools.N.custom.name: String
  should match pattern '^[a-zA-Z0-9_-]{1,64}$'`` * (reports of mid-2025 quote ``{1,128}``;
  the stricter pattern is kept); ``input_schema`` missing or not ``type: "object"``; an
  unknown field; duplicate names: ``tools: Tool names must be unique.`` *;
* a ``strict: true`` tool whose ``input_schema`` breaks the structured-output subset (the
  §2 checks of ``output_config.format``, at ``tools.N.custom.input_schema``); more than 20
  strict tools (spec §2);
* ``tool_choice``: ``type`` not auto/any/tool/none; ``tool`` without a ``name`` or naming
  a tool not in ``tools``; ``disable_parallel_tool_use`` not a boolean, on ``none``, or at
  the top level; ``any``/``tool`` on Opus/Sonnet 5.5 and Fable 5.1 *, with enabled thinking,
  or with ``max_tokens: 0``;
* ``tool_use`` not answered by ``tool_result`` blocks first in the next user message, or a
  ``tool_result`` for an id the previous assistant turn did not ask (partial text in docs);
* thinking blocks sent back, below.

``ImpossibleAnswer`` (a 500 kept in ``emu.errors``, so a test cannot script what the model
could not say): a call to a tool not in ``tools``; any call under ``tool_choice: none``
(the model must answer with text); more than one call under ``disable_parallel_tool_use``;
under ``any``/``tool`` a text answer, a note before the call, or a call to another tool
than the forced one; a ``strict`` tool's input not following its schema; a ``text`` note in
a tool turn under ``output_config.format`` (the format binds Claude's final answer, not
``tool_use`` turns, spec §10; whether a tool turn's text is held to it is undocumented, and
SDK ``parse()`` fails on it: script the note as ``thinking=``).  The final ``end_turn``
answer is the responder's dict/list JSON-dumped as before.

Thinking blocks sent back (SDK ``ThinkingBlockParam``: "passed back unmodified and in their
original order; a modified block results in a 400"; docs "Preserved thinking", "Prefix
checks on thinking blocks", "Fix a thinking block bound to a different conversation").  The
emulator keeps every thinking block it issued, keyed by its signature, with its model and a
digest of its prefix: ``system``, ``tools`` and everything before the block (the request's
messages, then the blocks of the same response before it), ``cache_control`` and null fields
left out, same-role turns merged.  That digest is what identifies a conversation, as with
the API ("a different conversation" means the content before the block differs; the check
compares no sessions or users).  On every model a block sent back with a signature never
issued, or with text that differs from the issued text, is a 400 ``messages.I.content.J:
Invalid `signature` in `thinking` block`` (text unverified).  On models with
``ModelSpec.thinking_prefix_check`` (Opus 5.5, Sonnet 5.5, Fable 5.1) a block whose prefix
differs (``system`` or ``tools`` edited, an earlier message edited, an earlier thinking block
left out or moved) is a 400 with the docs' text: ``messages.I.content.J: Invalid `signature`
in `thinking` block. The block is bound to a different conversation. Remove the block, or
set `thinking.block_binding.prefix_mismatch_behavior` to "drop_block".``; with that setting
at ``"drop_block"`` the request passes (the beta header is not required here).  The docs
also list Haiku 5.5 and Fable 5.2 as preserved-thinking models, with an outcome "depending
on the model": not enforced for them.  A block issued for another model is ignored (docs: a
model that cannot read a block drops it without an error).  ``reset()`` forgets them all.

Token approximation
-------------------
``tokens(text) = ceil(len(text) / 4)``, and at least 1 for a non-empty text
(0 for ``""``).  The input count of a request is the sum over: the canonical
JSON (sorted keys, no spaces) of the output schema (``output_config.format``),
the canonical JSON of each tool, the text of each system block, and the text of
each message block (non-text blocks: their canonical JSON without
``cache_control`` and null-valued fields, so an SDK ``model_dump()`` of a response block
costs what the block costs).  A tool with ``defer_loading: true`` is left out (spec §10:
not in the prefix nor the cache key).  No tool-use system prompt is added (spec §7
overheads); a tool turn's output tokens are its thinking, note and inputs' canonical JSON.  Output tokens are ``tokens(answer text)`` unless
``Reply.output_tokens`` is given.  ``count_tokens`` returns the same input count.

Prompt-cache model
------------------
Breakpoints are the blocks carrying ``cache_control`` in ``tools``, ``system``
(list form) and message content, plus the top-level ``cache_control``
(automatic caching: a breakpoint on the last cacheable block of the messages,
walking back past thinking blocks; a no-op if that block is marked with the
same TTL, a 400 if with another).  At most 4 (else 400); ``ttl`` is ``"5m"``
(default) or ``"1h"``, and in render order every 1h breakpoint precedes every
5m one (else 400).  The cache is global to the emulator (one organisation),
keyed by prefix, and expires on ``time.monotonic() + clock_offset``.

The key of a prefix is the hash of what the API renders up to that block, in
this order (spec §3 "what invalidates the cache", §2):

1. the model (caches are per model);
2. ``output_config.format``: the API injects a system prompt for the format
   and the docs say "changing the output_config.format parameter will
   invalidate any prompt cache for that conversation thread"; where it is
   injected is not documented, so it heads the prefix here.  An entry written
   without a format is never read by a request with one, nor the reverse,
   nor across two schemas (so a ``max_tokens: 0`` pre-warm, which may not
   carry a format, never warms a format-carrying call);
3. each tool (with the whole tool list: a change invalidates everything);
4. ``speed``, then each system block (``speed`` invalidates system and messages);
5. ``tool_choice`` (with ``disable_parallel_tool_use``), ``thinking`` and
   ``output_config.effort``, then each message block with its role (these three
   invalidate the messages).

``cache_control`` values are left out of the key.  Sizes: a position's size is
the cumulative token count at its block.  Every block boundary is a position,
except inside a run of ``tool_use`` (or ``tool_result``) blocks, which counts as
one; a breakpoint is always one.  So in a tool loop with top-level
``cache_control`` each round's breakpoint (its last ``tool_result``) finds the previous
round's entry a few positions back however many calls ran in parallel: the earlier turns
are read, the new assistant turn and results written (spec §3, §10).

* READ, on arrival (after validation): the longest live entry at any of the
  ``LOOKBACK`` (20) positions ending at each breakpoint is a hit; its tokens
  are ``cache_read_input_tokens`` and its expiry is refreshed.
* WRITE, when the response BEGINS (``latency * prefill_factor`` after
  arrival; spec §3a: "caches the prefix once the response begins"): every
  breakpoint past the read point whose cumulative count is
  ``>= min_cache_tokens`` is written.  The tokens from the read point to the
  last written breakpoint are ``cache_creation_input_tokens`` (split by TTL
  of the breakpoint closing each segment into
  ``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``).
* ``input_tokens`` = total input - read - creation.

So requests that arrive before the first writer's response began all pay the
write, as with the real API ("a cache entry only becomes available after the
first response begins"): a caller wanting hits for parallel requests waits
for the first one's ``message_start`` (streaming) before sending the rest.
When exactly the API counts a response as begun (the first event or the HTTP
headers) is unverified; here the headers of a stream come first and carry no
such promise, the entries exist before ``message_start`` is written.  Batch
requests use the same cache, processed in order.

Deviations / simplifications (documented on purpose)
----------------------------------------------------
* Streaming carries the answer's blocks (text, thinking, tool_use); an ``error`` event only
  when scripted.  No ``redacted_thinking`` block is ever issued.
  Messages-level ``system`` turns are rejected for every model.  Error texts
  marked "unverified" in the spec (e.g. the pre-warm refusals, the TTL
  order) are plausible guesses.
* A canceled batch ends with every request ``canceled`` (the emulator
  processes a batch's requests only when it ends).
* Unknown top-level fields are rejected (``<field>: Extra inputs are not
  permitted``) as the real API does.
"""

from __future__ import annotations

import base64
import collections
import copy
import dataclasses
import hashlib
import json
import math
import random
import re
import secrets
import socket
import string
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "AnthropicEmulator",
    "Answer",
    "Batch",
    "DEFAULT_ANSWER",
    "DEFAULT_MODELS",
    "Drop",
    "Fault",
    "MidStream",
    "ModelSpec",
    "Recorded",
    "Refusal",
    "Reply",
    "ImpossibleAnswer",
    "Slow",
    "ToolCalls",
    "Truncated",
    "tokens",
]

API_VERSIONS = ("2023-06-01", "2026-10-21")
NEW_VERSION = "2026-10-21"
MESSAGES_BODY_LIMIT = 32 * 1024 * 1024
BATCH_BODY_LIMIT = 256 * 1024 * 1024
MAX_BATCH_REQUESTS = 100_000
MAX_MESSAGES = 100_000
MAX_CACHE_BREAKPOINTS = 4
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""Spec §10. Issue reports of 2025 quote this pattern in the 400, later ones ``{1,128}``: the
stricter one is kept, so a suite green here is green on the real API either way."""
MAX_STRICT_TOOLS = 20
BOUND_THINKING = (
    "Invalid `signature` in `thinking` block. The block is bound to a different conversation. "
    "Remove the block, or set `thinking.block_binding.prefix_mismatch_behavior` to \"drop_block\"."
)
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
DEFAULT_ANSWER: Dict[str, Any] = {"findings": []}
PREFILL_MESSAGE = (
    "This model does not support assistant message prefill. "
    "The conversation must end with a user message."
)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """What the emulator knows about one model id."""

    max_output_tokens: int
    prefill: bool = False
    """Whether a final assistant turn (prefill) is accepted."""
    sampling: bool = True
    """Whether a non-default ``temperature`` is accepted (under 2023-06-01)."""
    forced_tool_choice: bool = True
    """Whether ``tool_choice`` ``any``/``tool`` is accepted by ``/v1/messages`` (spec §10)."""
    forced_tool_choice_count: bool = True
    """The same for ``/v1/messages/count_tokens`` (spec §7: Opus/Sonnet 5.5 refuse it there too)."""
    notes_as_thinking: bool = False
    """Spec §10: the notes written between tool calls come back as ``thinking`` blocks, not ``text``."""
    thinking_display: str = "summarized"
    """Default ``thinking.display``: ``"omitted"`` returns thinking blocks with empty text (and a signature)."""
    thinking_prefix_check: bool = False
    """Preserved thinking: a thinking block sent back after ``system``, ``tools`` or an earlier message
    changed is a 400 (spec §10; docs "Prefix checks on thinking blocks")."""


_FIVE = ModelSpec(128_000, prefill=False, sampling=False)
_PRESERVED: Dict[str, Any] = dict(notes_as_thinking=True, thinking_display="omitted", thinking_prefix_check=True)
DEFAULT_MODELS: Dict[str, ModelSpec] = {
    # 5.x: no prefill, no sampling knobs, 128K output.
    "claude-fable-5-2": _FIVE,
    # Spec §10: forced tool use is refused by Opus 5.5, Sonnet 5.5 (count_tokens too) and Fable 5.1.
    # The same three return the notes between tool calls as thinking blocks, empty at the default
    # display, and refuse a thinking block replayed after an edit of its prefix.
    "claude-fable-5-1": dataclasses.replace(_FIVE, forced_tool_choice=False, **_PRESERVED),
    "claude-opus-5-5": dataclasses.replace(_FIVE, forced_tool_choice=False, forced_tool_choice_count=False,
                                           **_PRESERVED),
    "claude-sonnet-5-5": dataclasses.replace(_FIVE, forced_tool_choice=False, forced_tool_choice_count=False,
                                             **_PRESERVED),
    "claude-haiku-5-5": _FIVE,
    "claude-opus-5": _FIVE,
    "claude-sonnet-5": _FIVE,
    # 4.x
    "claude-opus-4-8": ModelSpec(64_000, prefill=False, sampling=False),
    "claude-opus-4-7": ModelSpec(64_000, prefill=False, sampling=False),
    "claude-opus-4-6": ModelSpec(64_000, prefill=False),
    "claude-sonnet-4-6": ModelSpec(64_000, prefill=False),
    "claude-opus-4-5": ModelSpec(64_000, prefill=True),
    "claude-opus-4-5-20251101": ModelSpec(64_000, prefill=True),
    "claude-sonnet-4-5": ModelSpec(64_000, prefill=True),
    "claude-sonnet-4-5-20250929": ModelSpec(64_000, prefill=True),
    "claude-haiku-4-5": ModelSpec(64_000, prefill=True),
    "claude-haiku-4-5-20251001": ModelSpec(64_000, prefill=True),
}


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Reply:
    """A successful answer with full control over the text and stop reason."""

    text: str
    stop_reason: str = "end_turn"
    output_tokens: Optional[int] = None


@dataclass(frozen=True)
class ToolCalls:
    """A turn that calls tools: HTTP 200, ``stop_reason: "tool_use"``.

    ``calls`` is a sequence of ``(name, input)`` pairs, one ``tool_use`` block each (ids
    ``toolu_…``), in order. ``thinking`` (a string or several) comes first as ``thinking`` blocks;
    ``text`` is the note before the calls: a ``text`` block, or on models with
    ``ModelSpec.notes_as_thinking`` one more ``thinking`` block. Thinking text is returned only at
    ``thinking.display: "summarized"`` (the model's default display otherwise); every thinking block
    carries a ``signature``. ``output_tokens`` overrides the count (thinking + text + inputs)."""

    calls: Sequence[Tuple[str, Mapping[str, Any]]]
    text: Optional[str] = None
    thinking: Union[None, str, Sequence[str]] = None
    output_tokens: Optional[int] = None


class ImpossibleAnswer(ValueError):
    """A responder answered what the model cannot (a tool that is not offered, a call under
    ``tool_choice: none``, text where a call is forced...): the request gets a 500 and the
    exception is kept in ``emu.errors``, so a test cannot script an impossible conversation."""


@dataclass(frozen=True)
class Refusal:
    """HTTP 200, ``stop_reason: "refusal"``, empty text, ``stop_details`` set."""

    explanation: Optional[str] = "The request was declined."
    category: Optional[str] = None


@dataclass(frozen=True)
class Truncated:
    """HTTP 200, ``stop_reason: "max_tokens"`` with the given (cut) text."""

    text: str


_DEFAULT_ERRORS: Dict[int, Tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    408: ("timeout_error", "Request timed out."),
    409: ("conflict_error", "Conflict."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    422: ("invalid_request_error", "Unprocessable entity."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable."),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass(frozen=True)
class Fault:
    """An HTTP error answer with the real error envelope."""

    status: int
    error_type: Optional[str] = None
    message: Optional[str] = None
    retry_after: Optional[float] = None
    should_retry: Optional[bool] = None

    @property
    def resolved_type(self) -> str:
        if self.error_type is not None:
            return self.error_type
        if self.status in _DEFAULT_ERRORS:
            return _DEFAULT_ERRORS[self.status][0]
        return "api_error" if self.status >= 500 else "invalid_request_error"

    @property
    def resolved_message(self) -> str:
        if self.message is not None:
            return self.message
        return _DEFAULT_ERRORS.get(self.status, ("", f"Error {self.status}"))[1]


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending any response."""


@dataclass(frozen=True)
class MidStream:
    """Streamed: ``message_start``, then an SSE ``error`` event with ``fault``'s type and
    message after HTTP 200 (spec §1; the SDK raises and does not retry). Unstreamed: ``fault``."""

    fault: "Fault" = field(default_factory=lambda: Fault(529))


@dataclass(frozen=True)
class Slow:
    """Sleep ``seconds``, then answer ``then`` (None: see the module docstring)."""

    seconds: float
    then: Any = None


Answer = Union[Dict[str, Any], List[Any], str, Reply, ToolCalls, Refusal, Truncated, Fault, Drop, Slow, MidStream]
Responder = Callable[[Dict[str, Any]], Any]
BatchOutcome = Callable[[str, Dict[str, Any]], Any]  # None, a result type name, or a Fault


class _Prewarm:
    """Internal answer of a ``max_tokens: 0`` request."""


_PREWARM = _Prewarm()


# --------------------------------------------------------------------------- records


@dataclass
class Recorded:
    """One HTTP request as the emulator saw it (times are ``time.monotonic()``)."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Optional[Any]
    started: float
    finished: float = 0.0
    status: int = 0
    """HTTP status sent; 0 while in flight or when the connection was dropped."""
    query: Dict[str, str] = field(default_factory=dict)
    began: float = 0.0
    """``POST /v1/messages`` only: when its response began (prompt processed, cache entries
    written and readable, ``message_start`` sent when streaming); 0 if it never did."""


@dataclass
class Batch:
    """A Message Batch held by the emulator (``to_json`` is the API object)."""

    id: str
    created_at: datetime
    requests: List[Tuple[str, Dict[str, Any]]]
    version: str
    seq: int
    processing_status: str = "in_progress"
    ended_at: Optional[datetime] = None
    cancel_initiated_at: Optional[datetime] = None
    archived_at: Optional[datetime] = None
    results_url: Optional[str] = None
    results: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    counts: Dict[str, int] = field(default_factory=dict)
    finishing: bool = False

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(hours=24)

    def to_json(self) -> Dict[str, Any]:
        if self.processing_status == "ended":
            counts = {k: self.counts.get(k, 0) for k in ("processing", "succeeded", "errored", "canceled", "expired")}
        else:
            counts = {"processing": len(self.requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.processing_status,
            "request_counts": counts,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "ended_at": _iso(self.ended_at),
            "cancel_initiated_at": _iso(self.cancel_initiated_at),
            "archived_at": _iso(self.archived_at),
            "results_url": self.results_url,
        }


# --------------------------------------------------------------------------- helpers


_ALNUM = string.ascii_letters + string.digits


def _rid(prefix: str) -> str:
    return prefix + "01" + "".join(secrets.choice(_ALNUM) for _ in range(22))


def _iso(value: Optional[datetime]) -> Optional[str]:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def tokens(text: str) -> int:
    """The emulator's token count of ``text``: ``ceil(len / 4)``, at least 1 if non-empty."""
    if not text:
        return 0
    return max(1, math.ceil(len(text) / 4))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _norm(value: Any) -> Any:
    """``value`` as the API reads it: without ``cache_control`` (at any depth) and without
    null-valued keys (an SDK ``model_dump()`` of a response block adds ``citations: None``,
    ``caller: None``...; the API parses both forms into the same block)."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if k != "cache_control" and v is not None}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _blocks_of(content: Any) -> List[Dict[str, Any]]:
    """A message's content (or ``system``) as a block list: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content or [])


def _block_tokens(block: Any) -> int:
    if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return tokens(block["text"])
    return tokens(_canonical(_norm(block)))


def _object(body: Mapping[str, Any], key: str) -> Dict[str, Any]:
    """``body[key]`` if it is an object, else ``{}``."""
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _ApiError(Exception):
    """An error answer produced by validation or routing."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def as_fault(self) -> Fault:
        return Fault(self.status, self.error_type, self.message)


def _bad(message: str) -> _ApiError:
    return _ApiError(400, "invalid_request_error", message)


# --------------------------------------------------------------------------- validation

_MESSAGE_FIELDS = frozenset({
    "max_tokens", "messages", "model", "cache_control", "container", "context_management",
    "diagnostics", "inference_geo", "mcp_servers", "metadata", "output_config", "output_format",
    "service_tier", "speed", "stop_sequences", "stream", "system", "thinking", "tool_choice", "tools",
})
_COUNT_FIELDS = frozenset({
    "messages", "model", "cache_control", "context_management", "mcp_servers", "output_config",
    "output_format", "speed", "system", "thinking", "tool_choice", "tools",
})
_SAMPLING = ("temperature", "top_p", "top_k")
_BLOCK_TYPES = frozenset({
    "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
    "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
    "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "mcp_tool_use", "mcp_tool_result", "container_upload",
})
_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
_UNSUPPORTED_KEYWORDS = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "maxItems",
)
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_SINGLES = ("items", "not", "if", "then", "else", "contains", "additionalItems", "propertyNames")


def _check_cache_control(value: Any, path: str) -> Optional[str]:
    """Validate a cache_control object; return its TTL ("5m"/"1h") or None if null."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(f"{path}: Input should be a valid dictionary")
    if value.get("type") != "ephemeral":
        raise _bad(f"{path}.type: Input should be 'ephemeral'")
    for key in value:
        if key not in ("type", "ttl"):
            raise _bad(f"{path}.{key}: Extra inputs are not permitted")
    ttl = value.get("ttl")
    if ttl is None:
        return "5m"
    if ttl not in TTL_SECONDS:
        raise _bad(f"{path}.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def _schema_type_name(node: Dict[str, Any]) -> str:
    t = node.get("type")
    if isinstance(t, str):
        return t
    if isinstance(t, list) and t:
        return str(t[0])
    return "schema"


def _is_object_schema(node: Dict[str, Any]) -> bool:
    t = node.get("type")
    return t == "object" or (isinstance(t, list) and "object" in t)


def _walk_schema(node: Any, path: str) -> Iterator[Tuple[Dict[str, Any], str]]:
    """Every sub-schema of ``node`` (itself included) with its JSON pointer."""
    if not isinstance(node, dict):
        return
    yield node, path
    for key in _SCHEMA_MAPS:
        sub = node.get(key)
        if isinstance(sub, dict):
            for name, child in sub.items():
                yield from _walk_schema(child, f"{path}/{key}/{_escape(name)}")
    for key in _SCHEMA_LISTS:
        sub = node.get(key)
        if isinstance(sub, list):
            for i, child in enumerate(sub):
                yield from _walk_schema(child, f"{path}/{key}/{i}")
    for key in _SCHEMA_SINGLES:
        sub = node.get(key)
        if isinstance(sub, dict):
            yield from _walk_schema(sub, f"{path}/{key}")
        elif key == "items" and isinstance(sub, list):
            for i, child in enumerate(sub):
                yield from _walk_schema(child, f"{path}/{key}/{i}")
    sub = node.get("additionalProperties")
    if isinstance(sub, dict):
        yield from _walk_schema(sub, f"{path}/additionalProperties")


def _escape(name: str) -> str:
    return str(name).replace("~", "~0").replace("/", "~1")


def _resolve_pointer(root: Any, pointer: str) -> Any:
    node = root
    if pointer == "":
        return node
    if not pointer.startswith("/"):
        raise KeyError(pointer)
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(pointer)
    return node


def _check_schema(schema: Any, where: str) -> None:
    """Enforce the structured-output subset of JSON Schema (spec §2)."""
    prefix = f"{where}: "
    if not isinstance(schema, dict):
        raise _bad(f"{where}: Input should be a valid dictionary")
    for node, _ in _walk_schema(schema, ""):
        kind = _schema_type_name(node)
        if _is_object_schema(node):
            if "additionalProperties" not in node:
                raise _bad(prefix + "For 'object' type, 'additionalProperties' must be explicitly set to false")
            if node["additionalProperties"] is not False:
                shown = json.dumps(node["additionalProperties"])
                raise _bad(
                    prefix + f"For 'object' type, 'additionalProperties: {shown}' is not supported. "
                    "Please set 'additionalProperties' to false"
                )
        for keyword in _UNSUPPORTED_KEYWORDS:
            if keyword in node:
                raise _bad(prefix + f"For '{kind}' type, property '{keyword}' is not supported")
        if "minItems" in node and node["minItems"] not in (0, 1):
            raise _bad(
                prefix + f"For '{kind}' type, property 'minItems' is not supported "
                f"(only 0 or 1 are allowed, got {node['minItems']!r})"
            )
    _check_refs(schema, schema, "", (), set(), prefix)


def _check_refs(root: Dict[str, Any], node: Any, location: str, active: Tuple[str, ...],
                done: set, prefix: str) -> None:
    for sub, path in _walk_schema(node, location):
        ref = sub.get("$ref")
        if ref is None:
            continue
        if not isinstance(ref, str):
            raise _bad(prefix + "'$ref' must be a string")
        if not ref.startswith("#"):
            raise _bad(prefix + f"External '$ref' is not supported: {ref}")
        pointer = ref[1:]
        if pointer == "" or path == pointer or path.startswith(pointer + "/") or pointer in active:
            raise _bad(prefix + f"Recursive schemas are not supported: '$ref' {ref} refers to itself")
        if pointer in done:
            continue
        try:
            target = _resolve_pointer(root, pointer)
        except KeyError:
            raise _bad(prefix + f"'$ref' {ref} could not be resolved") from None
        _check_refs(root, target, pointer, active + (pointer,), done, prefix)
        done.add(pointer)


def _check_format(fmt: Any, path: str) -> Optional[Dict[str, Any]]:
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _bad(f"{path}: Input should be a valid dictionary")
    if fmt.get("type") != "json_schema":
        raise _bad(f"{path}.type: Input should be 'json_schema'")
    if "schema" not in fmt:
        raise _bad(f"{path}.schema: Field required")
    _check_schema(fmt["schema"], f"{path}.schema")
    return fmt["schema"]


def _validate(body: Any, version: str, kind: str, models: Mapping[str, ModelSpec]) -> None:
    """Validate a Messages body; ``kind`` is "messages", "count" or "batch". Raises _ApiError."""
    if not isinstance(body, dict):
        raise _bad("Input should be a valid dictionary")
    allowed = _COUNT_FIELDS if kind == "count" else _MESSAGE_FIELDS

    # Required fields and their types.
    if "model" not in body:
        raise _bad("model: Field required")
    if not isinstance(body["model"], str):
        raise _bad("model: Input should be a valid string")
    if "messages" not in body:
        raise _bad("messages: Field required")
    if not isinstance(body["messages"], list):
        raise _bad("messages: Input should be a valid list")
    if kind != "count":
        if "max_tokens" not in body:
            raise _bad("max_tokens: Field required")
        if not _is_int(body["max_tokens"]):
            raise _bad("max_tokens: Input should be a valid integer")

    # Extra fields; sampling parameters depend on the API version.
    for key in body:
        if key in _SAMPLING:
            if version == NEW_VERSION:
                raise _bad(f"{key}: Extra inputs are not permitted")
        elif key not in allowed:
            raise _bad(f"{key}: Extra inputs are not permitted")

    model = body["model"]
    spec = models.get(model)
    if spec is None:
        raise _ApiError(404, "not_found_error", f"model: {model}")

    if kind != "count":
        max_tokens = body["max_tokens"]
        if max_tokens < 0:
            raise _bad("max_tokens: Input should be greater than or equal to 0")
        if max_tokens == 0 and kind == "batch":
            # Spec §3a/§6: a pre-warm is not supported inside Message Batches (≥ 1 there).
            raise _bad("max_tokens: Input should be greater than or equal to 1; "
                       "a cache pre-warm (max_tokens: 0) is not supported in Message Batches")
        if max_tokens == 0:
            _check_prewarm(body)
        elif max_tokens > spec.max_output_tokens:
            raise _bad(
                f"max_tokens: {max_tokens} > {spec.max_output_tokens}, which is the maximum "
                f"allowed number of output tokens for {model}"
            )

    for key in _SAMPLING:
        if key not in body:
            continue
        value = body[key]
        if key == "top_k":
            if not _is_int(value) or value < 0:
                raise _bad("top_k: Input should be a valid non-negative integer")
            continue
        if not _is_number(value):
            raise _bad(f"{key}: Input should be a valid number")
        if not 0.0 <= value <= 1.0:
            raise _bad(f"{key}: Input should be between 0 and 1")
        if key == "temperature" and not spec.sampling and value != 1.0:
            raise _bad("`temperature` is deprecated for this model.")

    breakpoints = 0
    breakpoints += _validate_messages(body["messages"], version, spec)
    breakpoints += _validate_system(body.get("system"))

    if "tools" in body:
        breakpoints += _validate_tools(body["tools"])
    choice = _validate_tool_choice(body, spec, kind)

    if "stop_sequences" in body:
        seqs = body["stop_sequences"]
        if not isinstance(seqs, list) or not all(isinstance(s, str) for s in seqs):
            raise _bad("stop_sequences: Input should be a valid list of strings")

    if "stream" in body:
        if not isinstance(body["stream"], bool):
            raise _bad("stream: Input should be a valid boolean")
        if body["stream"] and kind == "batch":
            raise _bad("stream: streaming is not supported in Message Batches")

    if "metadata" in body:
        meta = body["metadata"]
        if not isinstance(meta, dict):
            raise _bad("metadata: Input should be a valid dictionary")
        for key, value in meta.items():
            if key != "user_id":
                raise _bad(f"metadata.{key}: Extra inputs are not permitted")
            if value is not None and not isinstance(value, str):
                raise _bad("metadata.user_id: Input should be a valid string")

    if "thinking" in body:
        thinking = body["thinking"]
        if not isinstance(thinking, dict) or thinking.get("type") not in (
                "adaptive", "enabled", "disabled", "between_tools"):
            raise _bad("thinking.type: Input should be 'adaptive', 'enabled', 'disabled' or 'between_tools'")
        if thinking.get("display") not in (None, "summarized", "omitted"):
            raise _bad(f"thinking.{thinking['type']}.display: Input should be 'summarized' or 'omitted'")
        if thinking["type"] == "enabled":
            budget = thinking.get("budget_tokens")
            if not _is_int(budget) or budget < 1024:
                raise _bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if kind != "count" and budget >= body["max_tokens"]:
                raise _bad("`max_tokens` must be greater than `thinking.budget_tokens`")
            if choice in ("any", "tool"):
                # Spec §10: forced tool use prefills the turn, which extended thinking cannot follow.
                raise _bad("Thinking may not be enabled when tool_choice forces tool use.")

    schema_from_config = None
    if "output_config" in body:
        config = body["output_config"]
        if not isinstance(config, dict):
            raise _bad("output_config: Input should be a valid dictionary")
        for key in config:
            if key not in ("format", "effort", "task_budget"):
                raise _bad(f"output_config.{key}: Extra inputs are not permitted")
        if "effort" in config and config["effort"] is not None and config["effort"] not in _EFFORTS:
            raise _bad("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
        schema_from_config = _check_format(config.get("format"), "output_config.format")
    if "output_format" in body:
        if schema_from_config is not None and body["output_format"] is not None:
            raise _bad("output_format: cannot be combined with output_config.format")
        _check_format(body["output_format"], "output_format")

    if "cache_control" in body:
        auto_ttl = _check_cache_control(body["cache_control"], "cache_control")
        target = _auto_target(body["messages"]) if auto_ttl else None
        if target is not None:
            own = target[2]
            if own is None:
                breakpoints += 1
            elif (own.get("ttl") or "5m") != auto_ttl:
                # Spec §3: the last block already marked with another TTL is a conflict, not a no-op.
                raise _bad(
                    f"cache_control: the automatic cache_control (ttl '{auto_ttl}') conflicts with the "
                    f"cache_control of the last cacheable block (ttl '{own.get('ttl') or '5m'}')"
                )
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        raise _bad(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}."
        )
    ttls = [point.ttl for point in _analyse(body).breakpoints]
    if "5m" in ttls and "1h" in ttls[ttls.index("5m"):]:
        # Spec §3: in render order (tools, system, messages) 1h entries must precede 5m ones.
        raise _bad(
            "cache_control: a block with ttl '1h' must not come after a block with ttl '5m' "
            "(order: tools, system, messages)"
        )


_TOOL_FIELDS = frozenset({
    "name", "description", "input_schema", "cache_control", "strict", "type", "input_examples",
    "defer_loading", "allowed_callers", "eager_input_streaming",
})


def _validate_tools(tools: Any) -> int:
    """Spec §10 tool definitions; returns the number of cache breakpoints among them.

    Client tools (no ``type`` or ``"custom"``) are checked field by field, the path in the
    style of the real messages (``tools.3.custom.name: String should match pattern …`` and
    ``tools: Tool names must be unique.`` are quoted by issue reports; the others are
    unverified). A server tool (any other ``type``) is only counted and its name kept unique."""
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    breakpoints = 0
    names: set = set()
    duplicate = False
    strict = 0
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools.{i}: Input should be a valid dictionary")
        if _check_cache_control(tool.get("cache_control"), f"tools.{i}.cache_control"):
            breakpoints += 1
        custom = tool.get("type") in (None, "custom")
        at = f"tools.{i}.custom" if custom else f"tools.{i}"
        name = tool.get("name")
        if name is None:
            raise _bad(f"{at}.name: Field required")
        if not isinstance(name, str):
            raise _bad(f"{at}.name: Input should be a valid string")
        if custom and not TOOL_NAME.match(name):
            raise _bad(f"{at}.name: String should match pattern '{TOOL_NAME.pattern}'")
        duplicate = duplicate or name in names
        names.add(name)
        if not custom:
            continue
        for key in tool:
            if key not in _TOOL_FIELDS:
                raise _bad(f"{at}.{key}: Extra inputs are not permitted")
        if "description" in tool and not isinstance(tool["description"], str):
            raise _bad(f"{at}.description: Input should be a valid string")
        if "input_schema" not in tool:
            raise _bad(f"{at}.input_schema: Field required")
        schema = tool["input_schema"]
        if not isinstance(schema, dict):
            raise _bad(f"{at}.input_schema: Input should be a valid dictionary")
        if schema.get("type") != "object":
            raise _bad(f"{at}.input_schema.type: Input should be 'object'")
        if "strict" in tool and not isinstance(tool["strict"], bool):
            raise _bad(f"{at}.strict: Input should be a valid boolean")
        if tool.get("strict"):
            # Spec §2: a strict tool's input is generated under the structured-output grammar,
            # so its schema obeys the same subset.
            _check_schema(schema, f"{at}.input_schema")
            strict += 1
    if duplicate:
        raise _bad("tools: Tool names must be unique.")
    if strict > MAX_STRICT_TOOLS:
        # Spec §2: at most 20 strict tools per request (text unverified).
        raise _bad(f"tools: Too many strict tools ({strict}); at most {MAX_STRICT_TOOLS} are supported.")
    return breakpoints


def _check_prewarm(body: Dict[str, Any]) -> None:
    """Spec §3a: ``max_tokens: 0`` only prefills the prompt; what needs generation is refused."""
    what = "max_tokens: 0 (cache pre-warm) cannot be combined with"
    if body.get("stream") is True:
        raise _bad(f"{what} stream: true")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        raise _bad(f"{what} thinking.type: 'enabled'")
    if _output_schema(body) is not None:
        raise _bad(f"{what} output_config.format")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise _bad(f"{what} tool_choice.type: '{choice['type']}'")


def _validate_tool_choice(body: Dict[str, Any], spec: ModelSpec, kind: str) -> Optional[str]:
    """Spec §10: the shape of ``tool_choice`` and the models refusing forced tool use; its type."""
    if body.get("tool_choice") is None:
        return None
    choice = body["tool_choice"]
    if not isinstance(choice, dict):
        raise _bad("tool_choice: Input should be a valid dictionary")
    ctype = choice.get("type")
    if ctype not in ("auto", "any", "tool", "none"):
        raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    allowed = {"type"} | ({"disable_parallel_tool_use"} if ctype != "none" else set()) | (
        {"name"} if ctype == "tool" else set())
    for key in choice:
        if key not in allowed:
            raise _bad(f"tool_choice.{ctype}.{key}: Extra inputs are not permitted")
    if ctype == "tool" and not isinstance(choice.get("name"), str):
        raise _bad("tool_choice.tool.name: Field required")
    if "disable_parallel_tool_use" in choice and not isinstance(choice["disable_parallel_tool_use"], bool):
        raise _bad(f"tool_choice.{ctype}.disable_parallel_tool_use: Input should be a valid boolean")
    if ctype in ("any", "tool"):
        if not (spec.forced_tool_choice_count if kind == "count" else spec.forced_tool_choice):
            raise _bad('tool_choice: type "tool" and "any" are not supported for this model.')
        names = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        if ctype == "tool" and choice["name"] not in names:
            raise _bad(f"tool_choice: tool '{choice['name']}' not found in tools")  # text unverified
        if ctype == "any" and not names:
            raise _bad("tool_choice: type 'any' requires at least one tool")  # text unverified
    return str(ctype)


# Blocks that can carry cache_control, hence a target of automatic caching (spec §3).
_CACHEABLE = frozenset({"text", "image", "document", "search_result", "tool_use", "tool_result"})


def _auto_target(messages: List[Any]) -> Optional[Tuple[int, int, Any]]:
    """(message index, block index, the block's own cache_control) of the block top-level
    ``cache_control`` lands on: the last cacheable one, walking back (spec §3)."""
    for i in range(len(messages) - 1, -1, -1):
        content = messages[i].get("content") if isinstance(messages[i], dict) else None
        if isinstance(content, str):
            return i, 0, None  # a string turn is one text block
        blocks = content if isinstance(content, list) else []
        for j in range(len(blocks) - 1, -1, -1):
            if isinstance(blocks[j], dict) and blocks[j].get("type") in _CACHEABLE:
                return i, j, blocks[j].get("cache_control")
    return None


def _validate_messages(messages: List[Any], version: str, spec: ModelSpec) -> int:
    if not messages:
        raise _bad("messages: List should have at least 1 item after validation, not 0")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"messages: List should have at most {MAX_MESSAGES} items after validation, not {len(messages)}")
    breakpoints = 0
    last = len(messages) - 1
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _bad(f"{where}: Input should be a valid dictionary")
        for key in ("role", "content"):
            if key not in message:
                raise _bad(f"{where}.{key}: Field required")
        for key in message:
            if key not in ("role", "content"):
                raise _bad(f"{where}.{key}: Extra inputs are not permitted")
        role = message["role"]
        if role not in ("user", "assistant"):
            raise _bad(f"{where}.role: Input should be 'user' or 'assistant'")
        content = message["content"]
        final_assistant = i == last and role == "assistant"
        empty = f"{where}: all messages must have non-empty content except for the optional final assistant message"
        if isinstance(content, str):
            if not content and not final_assistant:
                raise _bad(empty)
            continue
        if not isinstance(content, list):
            raise _bad(f"{where}.content: Input should be a valid string or list of content blocks")
        if not content and not final_assistant:
            raise _bad(empty)
        for j, block in enumerate(content):
            at = f"{where}.content.{j}"
            if not isinstance(block, dict):
                raise _bad(f"{at}: Input should be a valid dictionary")
            btype = block.get("type")
            if btype not in _BLOCK_TYPES:
                raise _bad(f"{at}.type: Input tag {btype!r} found using 'type' does not match any of the expected tags")
            if btype == "text":
                if not isinstance(block.get("text"), str):
                    raise _bad(f"{at}.text: Field required")
                if not block["text"]:
                    raise _bad(f"{at}.text: text content blocks must be non-empty")
                if version == NEW_VERSION and role == "user" and block.get("citations"):
                    raise _bad(f"{at}.citations: citations are not allowed on user text blocks")
            if btype == "thinking":
                for key in ("thinking", "signature"):
                    if not isinstance(block.get(key), str):
                        raise _bad(f"{at}.thinking.{key}: Field required")
            if btype == "document" and role == "assistant" and version == NEW_VERSION:
                raise _bad(f"{at}: document blocks are not allowed in assistant messages")
            if _check_cache_control(block.get("cache_control"), f"{at}.cache_control"):
                breakpoints += 1
    if messages[0]["role"] != "user":
        raise _bad('messages: first message must use the "user" role')
    _check_tool_results(messages)
    if messages[last]["role"] == "assistant" and not spec.prefill:
        raise _bad(PREFILL_MESSAGE)
    return breakpoints


def _check_tool_results(messages: List[Dict[str, Any]]) -> None:
    """Spec §10: every ``tool_use`` is answered in the next user message, its ``tool_result`` blocks first."""
    def blocks(message: Dict[str, Any]) -> List[Dict[str, Any]]:
        content = message["content"]
        return content if isinstance(content, list) else [{"type": "text", "text": content}]

    for i, message in enumerate(messages):
        asked = [b.get("id") for b in blocks(message) if b.get("type") == "tool_use"] \
            if message["role"] == "assistant" else []
        if i > 0 and message["role"] == "user":
            previous = messages[i - 1]
            expected = {b.get("id") for b in blocks(previous) if b.get("type") == "tool_use"} \
                if previous["role"] == "assistant" else set()
            for block in blocks(message):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in expected:
                    raise _bad(
                        f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )
        if not asked or i == len(messages) - 1:
            continue
        answered: set = set()
        for block in blocks(messages[i + 1]) if messages[i + 1]["role"] == "user" else []:
            if block.get("type") != "tool_result":
                break  # results come first; anything after other content does not count
            answered.add(block.get("tool_use_id"))
        missing = [x for x in asked if x not in answered]
        if missing:
            raise _bad(
                f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(str(x) for x in missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )


def _validate_system(system: Any) -> int:
    if system is None or isinstance(system, str):
        return 0
    if not isinstance(system, list):
        raise _bad("system: Input should be a valid string or list of text blocks")
    breakpoints = 0
    for j, block in enumerate(system):
        at = f"system.{j}"
        if not isinstance(block, dict):
            raise _bad(f"{at}: Input should be a valid dictionary")
        if block.get("type") != "text":
            raise _bad(f"{at}.type: Input should be 'text'")
        if not isinstance(block.get("text"), str):
            raise _bad(f"{at}.text: Field required")
        if not block["text"]:
            raise _bad(f"{at}.text: text content blocks must be non-empty")
        if _check_cache_control(block.get("cache_control"), f"{at}.cache_control"):
            breakpoints += 1
    return breakpoints


# --------------------------------------------------------------------------- prompt analysis


LOOKBACK = 20
"""Positions a read looks back from each breakpoint, the breakpoint included (spec §3)."""


@dataclass(frozen=True)
class _Breakpoint:
    key: str
    cumulative: int
    ttl: str
    position: int
    """Index of this breakpoint's block in ``_Prompt.positions``."""


@dataclass(frozen=True)
class _Prompt:
    total: int
    breakpoints: Tuple[_Breakpoint, ...]
    positions: Tuple[Tuple[str, int], ...] = ()
    """(prefix key, cumulative tokens) at each position a read may look back to."""


def _output_schema(body: Dict[str, Any]) -> Any:
    config = body.get("output_config")
    if isinstance(config, dict) and isinstance(config.get("format"), dict):
        return config["format"].get("schema")
    if isinstance(body.get("output_format"), dict):
        return body["output_format"].get("schema")
    return None


def _analyse(body: Dict[str, Any]) -> _Prompt:
    """Token count, cache breakpoints and lookback positions of a validated body (see module docstring)."""
    digest = hashlib.sha256()
    total = 0
    points: List[_Breakpoint] = []
    positions: List[Tuple[str, int]] = []

    def feed(item: Any) -> None:
        digest.update(_canonical(item).encode("utf-8"))
        digest.update(b"\x1e")

    def close(cc: Any, merge: bool = False) -> None:
        # A block boundary is a position, except inside a run of tool_use (or tool_result)
        # blocks, which counts as one (spec §3); a breakpoint is always one.
        if merge and not cc:
            return
        key = digest.copy().hexdigest()
        positions.append((key, total))
        if cc:
            points.append(_Breakpoint(key, total, cc.get("ttl") or "5m", len(positions) - 1))

    feed(["model", body["model"]])
    # The API renders a system prompt of its own for output_config.format (spec §2, §3a):
    # "changing the output_config.format parameter will invalidate any prompt cache".
    # Where it is injected is not documented, so it heads the prefix here: a request
    # without a format, and one with another schema, share no entry with this one.
    schema = _output_schema(body)
    feed(["format", schema])
    if schema is not None:
        total += tokens(_canonical(schema))

    for tool in body.get("tools") or []:
        if tool.get("defer_loading"):
            continue  # spec §10: left out of the prefix and the cache key (loaded by tool search)
        stripped = _norm(tool)
        feed(["tool", stripped])
        total += tokens(_canonical(stripped))
        close(tool.get("cache_control"))

    # Spec §3 invalidation table: `speed` invalidates system and messages ...
    feed(["speed", body.get("speed")])
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}] if system else []
    for block in system or []:
        feed(["system", _norm(block)])
        total += _block_tokens(block)
        close(block.get("cache_control"))

    # ... and tool_choice, thinking and output_config.effort the messages.
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    feed(["rendering", body.get("tool_choice"), body.get("thinking"), effort])
    auto = body.get("cache_control")
    target = _auto_target(body["messages"]) if auto else None
    for i, message in enumerate(body["messages"]):
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for j, block in enumerate(blocks):
            feed(["message", message["role"], _norm(block)])
            total += _block_tokens(block)
            kind = block.get("type")
            merge = kind in ("tool_use", "tool_result") and j + 1 < len(blocks) and blocks[j + 1].get("type") == kind
            close(block.get("cache_control") or (auto if target and target[:2] == (i, j) else None), merge)
    return _Prompt(total, tuple(points), tuple(positions))


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    emulator: "AnthropicEmulator"


@dataclass
class _Response:
    status: int
    body: bytes
    headers: Dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    drop: bool = False
    chunks: Optional[List[bytes]] = None
    """When set, the body is written in these pieces, calling ``on_chunk(index)`` before each."""
    on_chunk: Optional[Callable[[int], None]] = None
    stream: Optional[Iterator[bytes]] = None
    """Server-sent events: the headers go out at once, then each item as a chunk (chunked encoding)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.emulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    def do_POST(self) -> None:
        self.server.emulator._handle(self)

    def do_DELETE(self) -> None:
        self.server.emulator._handle(self)

    def do_PUT(self) -> None:
        self.server.emulator._handle(self)

    def do_PATCH(self) -> None:
        self.server.emulator._handle(self)

    # -- body I/O

    def read_body(self, limit: int) -> Tuple[Optional[bytes], bool]:
        """The request body; (None, True) if it exceeded ``limit`` (it is drained)."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks: List[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(n)
                self.rfile.readline(3)
                size += n
                if size <= limit:
                    chunks.append(data)
            return (None, True) if size > limit else (b"".join(chunks), False)
        length = int(self.headers.get("content-length") or 0)
        if length > limit:
            remaining = length
            while remaining > 0:
                got = self.rfile.read(min(remaining, 1 << 20))
                if not got:
                    break
                remaining -= len(got)
            return None, True
        return (self.rfile.read(length) if length else b""), False

    def send(self, response: _Response, request_id: str) -> None:
        if response.stream is not None:
            self.send_stream(response, request_id)
            return
        reason = "Overloaded" if response.status == 529 else None
        self.send_response(response.status, reason)
        self.send_header("request-id", request_id)
        self.send_header("content-type", response.content_type)
        self.send_header("content-length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.chunks is None:
            self.wfile.write(response.body)
            self.wfile.flush()
            return
        self.wfile.flush()
        for index, chunk in enumerate(response.chunks):
            if response.on_chunk is not None:
                response.on_chunk(index)
            self.wfile.write(chunk)
            self.wfile.flush()


    def send_stream(self, response: _Response, request_id: str) -> None:
        assert response.stream is not None
        self.send_response(response.status)
        self.send_header("request-id", request_id)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for chunk in response.stream:
            self.wfile.write(f"{len(chunk):x}\r\n".encode("ascii") + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _pieces(text: str, parts: int) -> List[str]:
    size = max(1, math.ceil(len(text) / parts))
    return [text[i:i + size] for i in range(0, len(text), size)]


def _stream_block(block: Dict[str, Any]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """A content block as streamed (spec §1; docs "Streaming messages"): the ``content_block_start``
    payload and the deltas. Text in four ``text_delta``s; a thinking block opens empty, its text in
    ``thinking_delta``s (none when omitted) then one ``signature_delta``; a ``tool_use`` opens with
    ``input: {}`` and its input JSON follows as ``input_json_delta`` fragments, which the SDK's
    accumulator joins and parses (``lib/streaming/_messages.py``, ``accumulate_event``)."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in _pieces(block["text"], 4)]
    if kind == "thinking":
        steps = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], 2)]
        return ({"type": "thinking", "thinking": "", "signature": ""},
                steps + [{"type": "signature_delta", "signature": block["signature"]}])
    if kind == "tool_use":
        raw = json.dumps(block["input"])
        return ({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                [{"type": "input_json_delta", "partial_json": p} for p in _pieces(raw, 3)])
    raise ValueError(f"cannot stream a {kind!r} block")


def _sse(event: str, data: Dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode("utf-8")


def _json_response(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> _Response:
    return _Response(status, json.dumps(payload).encode("utf-8"), dict(headers or {}))


def _fault_response(fault: Fault, request_id: str) -> _Response:
    headers: Dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = _format_seconds(fault.retry_after)
        headers["retry-after-ms"] = str(int(round(fault.retry_after * 1000)))
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    elif fault.status == 400:
        headers["x-should-retry"] = "false"
    payload = {
        "type": "error",
        "error": {"type": fault.resolved_type, "message": fault.resolved_message},
        "request_id": request_id,
    }
    return _json_response(fault.status, payload, headers)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


# --------------------------------------------------------------------------- the emulator


@dataclass(frozen=True)
class _IssuedThinking:
    """A thinking block the emulator returned, keyed by its signature."""

    model: str
    thinking: str
    prefix: str
    """Digest of what preceded the block when it was produced: system, tools, earlier messages."""


def _prefix_digest(body: Dict[str, Any], turns: Sequence[Tuple[str, List[Dict[str, Any]]]]) -> str:
    """The prefix a thinking block is bound to (docs, "Prefix checks on thinking blocks"): the
    top-level ``system``, ``tools`` and the messages before the block, ``cache_control`` and null
    fields left out, consecutive turns of one role merged."""
    merged: List[Tuple[str, List[Any]]] = []
    for role, blocks in turns:
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(_norm(blocks))
        else:
            merged.append((role, list(_norm(blocks))))
    payload = [_norm(_blocks_of(body.get("system"))), _norm(body.get("tools") or []), merged]
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def _turns(messages: Sequence[Dict[str, Any]]) -> List[Tuple[str, List[Dict[str, Any]]]]:
    return [(m["role"], _blocks_of(m["content"])) for m in messages]


@dataclass
class _CacheEntry:
    tokens: int
    ttl: float
    expires: float


@dataclass
class _Usage:
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    ephemeral_5m: int
    ephemeral_1h: int

    def to_json(self, service_tier: str) -> Dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m,
                "ephemeral_1h_input_tokens": self.ephemeral_1h,
            },
            "service_tier": service_tier,
        }


@dataclass
class _Generated:
    """A normalised successful answer before usage is known."""

    text: Optional[str]  # None: no content block at all (pre-warm)
    stop_reason: str
    output_tokens: Optional[int] = None
    stop_sequence: Optional[str] = None
    stop_details: Optional[Dict[str, Any]] = None
    content: Optional[List[Dict[str, Any]]] = None
    """The content blocks when not a single text block (a tool-calling turn)."""

    def blocks(self) -> List[Dict[str, Any]]:
        if self.content is not None:
            return self.content
        return [] if self.text is None else [{"type": "text", "text": self.text}]


class AnthropicEmulator:
    """An in-process HTTP server that behaves like the Anthropic Messages API.

    See the module docstring for the endpoints, answers, token and cache model.
    """

    def __init__(
        self,
        api_keys: Sequence[str] = ("test-key",),
        *,
        models: Optional[Mapping[str, ModelSpec]] = None,
        min_cache_tokens: int = 1024,
        prefill_factor: float = 0.05,
        batch_processing_seconds: float = 0.2,
        batch_cancel_seconds: float = 0.05,
    ) -> None:
        self.api_keys = frozenset((api_keys,) if isinstance(api_keys, str) else api_keys)
        self._defaults = dict(
            min_cache_tokens=min_cache_tokens,
            prefill_factor=prefill_factor,
            batch_processing_seconds=batch_processing_seconds,
            batch_cancel_seconds=batch_cancel_seconds,
        )
        self._default_models = dict(models if models is not None else DEFAULT_MODELS)
        self._lock = threading.RLock()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: set = set()
        self._timers: set = set()
        self._batch_seq = 0
        self._init_state()

    # ----------------------------------------------------------------- lifecycle

    def _init_state(self) -> None:
        self.latency: float = 0.0
        self.prefill_factor: float = float(self._defaults["prefill_factor"])
        self.min_cache_tokens: int = int(self._defaults["min_cache_tokens"])
        self.batch_processing_seconds: float = float(self._defaults["batch_processing_seconds"])
        self.batch_cancel_seconds: float = float(self._defaults["batch_cancel_seconds"])
        self.clock_offset: float = 0.0
        self.max_message_body: int = MESSAGES_BODY_LIMIT
        self.max_batch_body: int = BATCH_BODY_LIMIT
        self.responder: Responder = _default_responder
        self.batch_outcome: Optional[BatchOutcome] = None
        self.on_request: Optional[Callable[[Recorded], Any]] = None
        self.on_batch_created: Optional[Callable[[Dict[str, Any]], None]] = None
        self.on_results_line: Optional[Callable[[str, int], None]] = None
        self.models: Dict[str, ModelSpec] = dict(self._default_models)
        self.custom_id_submissions: collections.Counter = collections.Counter()
        self.errors: List[BaseException] = []
        self._requests: List[Recorded] = []
        self._cache: Dict[str, _CacheEntry] = {}
        self._faults: collections.deque = collections.deque()
        self._batches: Dict[str, Batch] = {}
        self._thinking: Dict[str, _IssuedThinking] = {}
        self._in_flight = 0
        self._max_in_flight = 0

    def start(self) -> "AnthropicEmulator":
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="anthropic-emulator", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and pending batch timers."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            timers = list(self._timers)
            self._timers.clear()
        for timer in timers:
            timer.cancel()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "AnthropicEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget requests, cache, queued faults and batches; settings back to defaults."""
        with self._lock:
            timers = list(self._timers)
            self._timers.clear()
            in_flight = self._in_flight
            self._init_state()
            self._in_flight = in_flight
        for timer in timers:
            timer.cancel()

    @property
    def prewarm_factor(self) -> float:
        """Former name of ``prefill_factor`` (a pre-warm is a prefill and nothing more)."""
        return self.prefill_factor

    @prewarm_factor.setter
    def prewarm_factor(self, value: float) -> None:
        self.prefill_factor = value

    # ----------------------------------------------------------------- inspection

    @property
    def requests(self) -> List[Recorded]:
        """A snapshot (copies) of every recorded HTTP request, in arrival order."""
        with self._lock:
            return [dataclasses.replace(r) for r in self._requests]

    def message_requests(self) -> List[Recorded]:
        """Recorded ``POST /v1/messages`` requests answered 200, in arrival order."""
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages" and r.status == 200]

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def batches(self) -> Dict[str, Batch]:
        with self._lock:
            return dict(self._batches)

    def enqueue_fault(self, fault: Any, count: int = 1) -> None:
        """The next ``count`` valid ``POST /v1/messages`` requests get ``fault``
        (any answer: Fault, Drop, Slow, Reply...) instead of the responder."""
        with self._lock:
            for _ in range(count):
                self._faults.append(fault)

    def cache_entries(self) -> int:
        """Number of unexpired prompt-cache entries."""
        with self._lock:
            now = self._now()
            return sum(1 for e in self._cache.values() if e.expires > now)

    # ----------------------------------------------------------------- plumbing

    def _now(self) -> float:
        return time.monotonic() + self.clock_offset

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _start_timer(self, delay: float, fn: Callable[[], None]) -> None:
        holder: List[threading.Timer] = []

        def run() -> None:
            with self._lock:
                self._timers.discard(holder[0])
            fn()

        timer = threading.Timer(max(0.0, delay), run)
        timer.daemon = True
        holder.append(timer)
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        method = handler.command
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = Recorded(method, path, headers, None, time.monotonic(), query=query)
        is_message = method == "POST" and path == "/v1/messages"
        with self._lock:
            self._requests.append(record)
            if is_message:
                self._in_flight += 1
                self._max_in_flight = max(self._max_in_flight, self._in_flight)
        request_id = _rid("req_")
        try:
            try:
                response = self._route(handler, method, path, query, headers, record, request_id)
            except _ApiError as err:
                response = _fault_response(err.as_fault(), request_id)
            except Exception as exc:  # a bug in a responder or the emulator
                with self._lock:
                    self.errors.append(exc)
                traceback.print_exc(file=sys.stderr)
                response = _fault_response(
                    Fault(500, "api_error", f"emulator error: {exc!r}", should_retry=False), request_id
                )
            # Record before sending: once the client has the answer, so does `requests`.
            # A stream records itself before its last event and counts out in `finally`.
            if response.stream is None:
                with self._lock:
                    record.status = 0 if response.drop else response.status
                    record.finished = time.monotonic()
                    if is_message:
                        self._in_flight -= 1
                        is_message = False  # counted out: the `finally` must not do it again
            if response.drop:
                handler.close_connection = True
            else:
                try:
                    handler.send(response, request_id)
                except OSError:  # the client went away (e.g. its timeout fired)
                    handler.close_connection = True
                    with self._lock:
                        record.status = 0
        finally:
            if is_message:
                with self._lock:
                    self._in_flight -= 1

    def _route(self, handler: _Handler, method: str, path: str, query: Dict[str, str],
               headers: Dict[str, str], record: Recorded, request_id: str) -> _Response:
        body_bytes = b""
        if method in ("POST", "PUT", "PATCH"):
            limit = self.max_batch_body if path == "/v1/messages/batches" else self.max_message_body
            body_bytes, too_large = handler.read_body(limit)
            if too_large:
                size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
                raise _ApiError(
                    413, "request_too_large",
                    f"Request exceeds the maximum allowed number of bytes. The maximum request size is {size}.",
                )
        self._authenticate(headers)
        version = headers.get("anthropic-version")
        if not version:
            raise _bad("anthropic-version: header is required")
        if version not in API_VERSIONS:
            raise _bad(f"anthropic-version: {version!r} is not a valid version")

        body: Any = None
        if method in ("POST", "PUT", "PATCH") and path in ("/v1/messages", "/v1/messages/count_tokens",
                                                          "/v1/messages/batches"):
            try:
                body = json.loads(body_bytes.decode("utf-8")) if body_bytes else None
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _bad(f"There was an error parsing the body of your request: {exc}") from None
            with self._lock:
                record.body = body
            if body is None:
                raise _bad("Input should be a valid dictionary")

        hook = self.on_request
        if hook is not None:
            answer = hook(dataclasses.replace(record))
            if isinstance(answer, Fault):
                return _fault_response(answer, request_id)
            if isinstance(answer, Drop):
                return _Response(0, b"", drop=True)

        if path == "/v1/messages":
            if method != "POST":
                raise _method_not_allowed(method, path)
            return self._messages(body, version, request_id, record)
        if path == "/v1/messages/count_tokens":
            if method != "POST":
                raise _method_not_allowed(method, path)
            _validate(body, version, "count", self.models)
            return _json_response(200, {"input_tokens": _analyse(body).total})
        if path == "/v1/messages/batches":
            if method == "POST":
                return self._create_batch(body, version)
            if method == "GET":
                return self._list_batches(query)
            raise _method_not_allowed(method, path)
        match = re.fullmatch(r"/v1/messages/batches/([^/]+)(/cancel|/results)?", path)
        if match:
            batch_id, tail = match.group(1), match.group(2)
            if tail is None and method == "GET":
                return _json_response(200, self._get_batch(batch_id).to_json())
            if tail is None and method == "DELETE":
                return self._delete_batch(batch_id)
            if tail == "/cancel" and method == "POST":
                return self._cancel_batch(batch_id)
            if tail == "/results" and method == "GET":
                return self._batch_results(batch_id)
            raise _method_not_allowed(method, path)
        raise _ApiError(404, "not_found_error", f"Not found: {method} {path}")

    def _authenticate(self, headers: Dict[str, str]) -> None:
        key = headers.get("x-api-key")
        if not key:
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                key = auth[7:].strip()
        if not key:
            raise _ApiError(401, "authentication_error", "x-api-key header is required")
        if key not in self.api_keys:
            raise _ApiError(401, "authentication_error", "invalid x-api-key")

    # ----------------------------------------------------------------- messages

    def _messages(self, body: Dict[str, Any], version: str, request_id: str, record: Recorded) -> _Response:
        _validate(body, version, "messages", self.models)
        self._check_thinking(body)
        prompt = _analyse(body)
        prewarm = body["max_tokens"] == 0
        read_tokens = self._cache_read(prompt)

        with self._lock:
            queued = self._faults.popleft() if self._faults else None
            latency = self.latency
            factor = self.prefill_factor

        def fallback() -> Any:
            return _PREWARM if prewarm else self._call_responder(body)

        answer = fallback() if queued is None else queued
        while isinstance(answer, Slow):
            time.sleep(max(0.0, answer.seconds))
            if answer.then is not None:
                answer = answer.then
            elif answer is queued:
                answer = fallback()
            else:
                answer = _PREWARM if prewarm else DEFAULT_ANSWER
        if isinstance(answer, MidStream) and not body.get("stream"):
            answer = answer.fault
        if isinstance(answer, Fault):
            return _fault_response(answer, request_id)
        if isinstance(answer, Drop):
            return _Response(0, b"", drop=True)

        broken = answer.fault if isinstance(answer, MidStream) else None
        generated = _Generated("", "end_turn") if broken else self._generated(answer, body)
        prefill = max(0.0, latency * factor)
        rest = 0.0 if prewarm else max(0.0, latency - prefill)
        if body.get("stream"):
            return _Response(200, b"", content_type="text/event-stream",
                             stream=self._events(body, prompt, read_tokens, generated, prefill, rest, record,
                                                 broken))
        time.sleep(prefill)
        usage = self._begin(prompt, read_tokens, generated, record)
        time.sleep(rest)
        return _json_response(200, _message_json(body, generated, usage, "standard"))

    def _generated(self, answer: Any, body: Dict[str, Any]) -> _Generated:
        """``_generate`` for this emulator's models; thinking blocks it returns are remembered."""
        generated = _generate(answer, body, self.models.get(body["model"]))
        content = generated.blocks()
        issued = {}
        for j, block in enumerate(content):
            if block["type"] == "thinking":
                prefix = _prefix_digest(body, _turns(body["messages"]) + [("assistant", content[:j])])
                issued[block["signature"]] = _IssuedThinking(body["model"], block["thinking"], prefix)
        if issued:
            with self._lock:
                self._thinking.update(issued)
        return generated

    def _check_thinking(self, body: Dict[str, Any]) -> None:
        """Thinking blocks sent back (spec §10; SDK ``ThinkingBlockParam``: "Thinking blocks must be
        passed back unmodified and in their original order; a modified block results in a 400").

        A block whose signature this emulator never issued, or whose text differs from what was
        issued with that signature, is refused on every model. A block issued for another model is
        ignored (the docs: a model that cannot read a block drops it without an error). On models
        with ``thinking_prefix_check`` a block whose prefix (system, tools, earlier messages) is not
        the one it was produced after is refused with the docs' message, unless
        ``thinking.block_binding.prefix_mismatch_behavior`` is ``"drop_block"``."""
        spec = self.models[body["model"]]
        thinking_cfg = _object(body, "thinking")
        binding = _object(thinking_cfg, "block_binding")
        drop = binding.get("prefix_mismatch_behavior") == "drop_block"
        messages = body["messages"]
        for i, message in enumerate(messages):
            if message["role"] != "assistant" or isinstance(message["content"], str):
                continue
            for j, block in enumerate(message["content"]):
                if block.get("type") != "thinking":
                    continue
                at = f"messages.{i}.content.{j}"
                with self._lock:
                    issued = self._thinking.get(block["signature"])
                if issued is None or issued.thinking != block["thinking"]:
                    # Text unverified; the docs' prefix-mismatch message starts the same way.
                    raise _bad(f"{at}: Invalid `signature` in `thinking` block")
                if issued.model != body["model"] or not spec.thinking_prefix_check or drop:
                    continue
                prefix = _prefix_digest(body, _turns(messages[:i]) + [("assistant", message["content"][:j])])
                if prefix != issued.prefix:
                    raise _bad(f"{at}: {BOUND_THINKING}")

    def _begin(self, prompt: _Prompt, read_tokens: int, generated: _Generated,
               record: Optional[Recorded]) -> _Usage:
        """The response begins: the prompt is processed and its cache entries become readable."""
        usage = self._cache_write(prompt, read_tokens, generated)
        if record is not None:
            with self._lock:
                record.began = time.monotonic()
        return usage

    def _events(self, body: Dict[str, Any], prompt: _Prompt, read_tokens: int, generated: _Generated,
                prefill: float, rest: float, record: Recorded, broken: Optional[Fault] = None) -> Iterator[bytes]:
        """The SSE events of a streamed answer (spec §1), paced like a non-streamed one."""
        time.sleep(prefill)
        usage = self._begin(prompt, read_tokens, generated, record)
        start = _message_json(body, _Generated(None, ""), usage, "standard")
        start.update(stop_reason=None, stop_sequence=None, stop_details=None)
        start["usage"]["output_tokens"] = 1  # as in the docs' example; message_delta carries the total
        yield _sse("message_start", {"type": "message_start", "message": start})
        yield _sse("ping", {"type": "ping"})
        if broken is not None:
            with self._lock:
                record.status = 200
                record.finished = time.monotonic()
            yield _sse("error", {"type": "error", "error": {"type": broken.resolved_type,
                                                            "message": broken.resolved_message}})
            return
        blocks = generated.blocks() or [{"type": "text", "text": ""}]
        plan = [(index, _stream_block(block)) for index, block in enumerate(blocks)]
        deltas = sum(len(steps) for _, (_, steps) in plan)
        for index, (opening, steps) in plan:
            yield _sse("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": opening})
            for delta in steps:
                time.sleep(rest / deltas)
                yield _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        if not deltas:
            time.sleep(rest)
        final = usage.to_json("standard")
        yield _sse("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": generated.stop_reason, "stop_sequence": generated.stop_sequence,
                      "stop_details": generated.stop_details, "container": None},
            "usage": {k: final[k] for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                            "cache_read_input_tokens")},
        })
        with self._lock:  # as for a plain answer: recorded before the client has all of it
            record.status = 200
            record.finished = time.monotonic()
        yield _sse("message_stop", {"type": "message_stop"})

    def _call_responder(self, body: Dict[str, Any]) -> Any:
        with self._lock:
            responder = self.responder
        return responder(copy.deepcopy(body))

    def _cache_read(self, prompt: _Prompt) -> int:
        """Tokens of the longest live entry within the lookback of any breakpoint (0: a miss).

        A hit refreshes the entry's TTL (spec §3)."""
        candidates: set = set()
        for point in prompt.breakpoints:
            candidates.update(range(max(0, point.position - LOOKBACK + 1), point.position + 1))
        with self._lock:
            now = self._now()
            for index in sorted(candidates, reverse=True):
                key, cumulative = prompt.positions[index]
                entry = self._cache.get(key)
                if entry is not None and entry.expires > now:
                    entry.expires = now + entry.ttl
                    return cumulative
        return 0

    def _cache_write(self, prompt: _Prompt, read_tokens: int, generated: _Generated) -> _Usage:
        five = hour = 0
        with self._lock:
            now = self._now()
            previous = read_tokens
            for point in prompt.breakpoints:
                if point.cumulative < self.min_cache_tokens or point.cumulative <= previous:
                    continue
                ttl = TTL_SECONDS[point.ttl]
                old = self._cache.get(point.key)
                if old is not None and old.expires > now:
                    ttl = max(ttl, old.ttl)
                self._cache[point.key] = _CacheEntry(point.cumulative, ttl, now + ttl)
                segment = point.cumulative - previous
                if point.ttl == "1h":
                    hour += segment
                else:
                    five += segment
                previous = point.cumulative
        creation = five + hour
        if generated.output_tokens is not None:
            output = generated.output_tokens
        else:
            output = tokens(generated.text or "")
        return _Usage(
            input_tokens=prompt.total - read_tokens - creation,
            output_tokens=output,
            cache_creation_input_tokens=creation,
            cache_read_input_tokens=read_tokens,
            ephemeral_5m=five,
            ephemeral_1h=hour,
        )

    # ----------------------------------------------------------------- batches

    def _create_batch(self, body: Any, version: str) -> _Response:
        if not isinstance(body, dict):
            raise _bad("Input should be a valid dictionary")
        for key in body:
            if key != "requests":
                raise _bad(f"{key}: Extra inputs are not permitted")
        if "requests" not in body:
            raise _bad("requests: Field required")
        items = body["requests"]
        if not isinstance(items, list):
            raise _bad("requests: Input should be a valid list")
        if not items:
            raise _bad("requests: List should have at least 1 item after validation, not 0")
        if len(items) > MAX_BATCH_REQUESTS:
            raise _bad(
                f"requests: List should have at most {MAX_BATCH_REQUESTS} items after validation, not {len(items)}"
            )
        seen: set = set()
        parsed: List[Tuple[str, Dict[str, Any]]] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise _bad(f"requests.{i}: Input should be a valid dictionary")
            for key in ("custom_id", "params"):
                if key not in item:
                    raise _bad(f"requests.{i}.{key}: Field required")
            for key in item:
                if key not in ("custom_id", "params"):
                    raise _bad(f"requests.{i}.{key}: Extra inputs are not permitted")
            custom_id = item["custom_id"]
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                raise _bad(f"requests.{i}.custom_id: String should match pattern '{CUSTOM_ID.pattern}'")
            if custom_id in seen:
                raise _bad(
                    f"requests.{i}.custom_id: Duplicate custom_id {custom_id!r}; "
                    "each request in a batch must have a unique custom_id"
                )
            seen.add(custom_id)
            if not isinstance(item["params"], dict):
                raise _bad(f"requests.{i}.params: Input should be a valid dictionary")
            parsed.append((custom_id, item["params"]))
        with self._lock:
            self._batch_seq += 1
            batch = Batch(
                id=_rid("msgbatch_"), created_at=_utcnow(), requests=parsed,
                version=version, seq=self._batch_seq,
            )
            self._batches[batch.id] = batch
            self.custom_id_submissions.update(cid for cid, _ in parsed)
            delay = self.batch_processing_seconds
            snapshot = batch.to_json()
            created_hook = self.on_batch_created
        self._start_timer(delay, lambda: self._finish_batch(batch))
        if created_hook is not None:
            created_hook(copy.deepcopy(snapshot))
        return _json_response(200, snapshot)

    def _get_batch(self, batch_id: str) -> Batch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise _ApiError(404, "not_found_error", f"No message batch found with id '{batch_id}'")
        return batch

    def _list_batches(self, query: Dict[str, str]) -> _Response:
        raw_limit = query.get("limit", "20")
        try:
            limit = int(raw_limit)
        except ValueError:
            raise _bad("limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise _bad("limit: Input should be between 1 and 1000")
        with self._lock:
            ordered = sorted(self._batches.values(), key=lambda b: b.seq, reverse=True)
            ids = [b.id for b in ordered]
            after, before = query.get("after_id"), query.get("before_id")
            if after is not None and before is not None:
                raise _bad("after_id and before_id cannot both be given")
            if before is not None:
                end = ids.index(before) if before in ids else 0
                start = max(0, end - limit)
                page = ordered[start:end]
                has_more = start > 0
            else:
                start = ids.index(after) + 1 if after is not None and after in ids else 0
                if after is not None and after not in ids:
                    start = len(ids)
                page = ordered[start:start + limit]
                has_more = start + limit < len(ordered)
            data = [b.to_json() for b in page]
        return _json_response(200, {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        })

    def _cancel_batch(self, batch_id: str) -> _Response:
        batch = self._get_batch(batch_id)
        with self._lock:
            schedule = batch.processing_status == "in_progress"
            if schedule:
                batch.processing_status = "canceling"
                batch.cancel_initiated_at = _utcnow()
            delay = self.batch_cancel_seconds
            snapshot = batch.to_json()
        if schedule:
            self._start_timer(delay, lambda: self._finish_batch(batch))
        return _json_response(200, snapshot)

    def _delete_batch(self, batch_id: str) -> _Response:
        batch = self._get_batch(batch_id)
        with self._lock:
            if batch.processing_status != "ended":
                raise _bad(
                    f"Message batch {batch_id} cannot be deleted while it is {batch.processing_status}; "
                    "cancel it and wait for it to end first."
                )
            self._batches.pop(batch_id, None)
        return _json_response(200, {"id": batch_id, "type": "message_batch_deleted"})

    def _batch_results(self, batch_id: str) -> _Response:
        batch = self._get_batch(batch_id)
        with self._lock:
            if batch.processing_status != "ended":
                raise _bad(f"Message batch {batch_id} has not finished processing; results are not available yet.")
            lines = [json.dumps(result) for result in batch.results.values()]
            line_hook = self.on_results_line
        random.shuffle(lines)
        body = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
        if line_hook is not None and lines:
            chunks = [(line + "\n").encode("utf-8") for line in lines]
            return _Response(200, body, content_type="application/x-jsonl", chunks=chunks,
                             on_chunk=lambda index: line_hook(batch_id, index))
        return _Response(200, body, content_type="application/x-jsonl")

    def _finish_batch(self, batch: Batch) -> None:
        with self._lock:
            if self._batches.get(batch.id) is not batch or batch.finishing or batch.processing_status == "ended":
                return
            batch.finishing = True
            canceled = batch.processing_status == "canceling"
            outcome_fn = self.batch_outcome
        results: Dict[str, Dict[str, Any]] = {}
        for custom_id, params in batch.requests:
            if canceled:
                result: Dict[str, Any] = {"type": "canceled"}
            else:
                try:
                    result = self._batch_result(custom_id, params, batch.version, outcome_fn)
                except Exception as exc:  # a bug in a responder
                    with self._lock:
                        self.errors.append(exc)
                    traceback.print_exc(file=sys.stderr)
                    result = _errored("api_error", f"emulator error: {exc!r}")
            results[custom_id] = {"custom_id": custom_id, "result": result}
        with self._lock:
            if self._batches.get(batch.id) is not batch:
                return
            counts = collections.Counter(r["result"]["type"] for r in results.values())
            batch.results = results
            batch.counts = {"processing": 0, **{k: counts.get(k, 0) for k in ("succeeded", "errored", "canceled", "expired")}}
            batch.processing_status = "ended"
            batch.ended_at = _utcnow()
            if self._server is not None:
                batch.results_url = f"{self.base_url}/v1/messages/batches/{batch.id}/results"
            else:
                batch.results_url = f"/v1/messages/batches/{batch.id}/results"

    def _batch_result(self, custom_id: str, params: Dict[str, Any], version: str,
                      outcome_fn: Optional[BatchOutcome]) -> Dict[str, Any]:
        if outcome_fn is not None:
            scripted = outcome_fn(custom_id, copy.deepcopy(params))
            if scripted in ("expired", "canceled"):
                return {"type": scripted}
            if scripted == "errored":
                return _errored("api_error", "Internal server error")
            if isinstance(scripted, Fault):
                return _errored(scripted.resolved_type, scripted.resolved_message)
            if scripted is not None:
                raise ValueError(f"batch_outcome returned {scripted!r}")
        try:
            _validate(params, version, "batch", self.models)
            self._check_thinking(params)
        except _ApiError as err:
            return _errored(err.error_type, err.message)
        prompt = _analyse(params)
        read_tokens = self._cache_read(prompt)
        answer = self._call_responder(params)
        while isinstance(answer, Slow):  # no sleeping inside a batch
            answer = answer.then if answer.then is not None else DEFAULT_ANSWER
        if isinstance(answer, MidStream):  # batches do not stream
            answer = answer.fault
        if isinstance(answer, Fault):
            return _errored(answer.resolved_type, answer.resolved_message)
        if isinstance(answer, Drop):
            return _errored("api_error", "Internal server error")
        generated = self._generated(answer, params)
        usage = self._begin(prompt, read_tokens, generated, None)
        return {"type": "succeeded", "message": _message_json(params, generated, usage, "batch")}


# --------------------------------------------------------------------------- answer rendering


def _default_responder(body: Dict[str, Any]) -> Any:
    return copy.deepcopy(DEFAULT_ANSWER)


def _method_not_allowed(method: str, path: str) -> _ApiError:
    return _ApiError(405, "invalid_request_error", f"Method {method} is not allowed on {path}")


def _errored(error_type: str, message: str) -> Dict[str, Any]:
    return {
        "type": "errored",
        "error": {"type": "error", "error": {"type": error_type, "message": message}, "request_id": _rid("req_")},
    }


def _generate(answer: Any, body: Dict[str, Any], spec: Optional[ModelSpec] = None) -> _Generated:
    """Normalise a responder answer into text/stop reason, applying max_tokens and stop sequences.

    Raises ImpossibleAnswer for an answer the model could not give with this request's tools."""
    if isinstance(answer, _Prewarm):
        return _Generated(None, "max_tokens", output_tokens=0)
    if isinstance(answer, ToolCalls):
        return _tool_turn(answer, body, spec or ModelSpec(128_000))
    choice = _object(body, "tool_choice")
    if choice.get("type") in ("any", "tool") and (
            isinstance(answer, (str, dict, list)) or (isinstance(answer, Reply) and answer.stop_reason == "end_turn")):
        # Spec §10: a forced choice prefills the turn with a tool call; only a refusal or a cut
        # turn can end otherwise.
        raise ImpossibleAnswer(f"tool_choice {choice['type']!r} forces a tool call; the responder answered text")
    if isinstance(answer, Refusal):
        details = {"type": "refusal", "category": answer.category, "explanation": answer.explanation}
        return _Generated("", "refusal", stop_details=details)
    if isinstance(answer, Truncated):
        return _Generated(answer.text, "max_tokens")
    if isinstance(answer, Reply):
        generated = _Generated(answer.text, answer.stop_reason, output_tokens=answer.output_tokens)
    elif isinstance(answer, str):
        generated = _Generated(answer, "end_turn")
    elif isinstance(answer, (dict, list)):
        generated = _Generated(json.dumps(answer), "end_turn")
    else:
        raise TypeError(f"unsupported responder answer: {answer!r}")
    if generated.stop_reason != "end_turn":
        return generated
    text = generated.text or ""
    cut: Optional[Tuple[int, str]] = None
    for seq in body.get("stop_sequences") or []:
        if seq:
            pos = text.find(seq)
            if pos >= 0 and (cut is None or pos < cut[0]):
                cut = (pos, seq)
    if cut is not None:
        text = text[:cut[0]]
        generated = _Generated(text, "stop_sequence", generated.output_tokens, stop_sequence=cut[1])
    max_tokens = body.get("max_tokens") or 0
    if generated.output_tokens is None and max_tokens and tokens(text) > max_tokens:
        return _Generated(text[:max_tokens * 4], "max_tokens", output_tokens=max_tokens)
    return generated


def _thinking_texts(value: Union[None, str, Sequence[str]]) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _signature() -> str:
    """An opaque signature (the real ones are long base64 strings)."""
    return base64.b64encode(secrets.token_bytes(48)).decode("ascii")


def _tool_turn(answer: ToolCalls, body: Dict[str, Any], spec: ModelSpec) -> _Generated:
    """The content of a tool-calling turn (spec §10), after checking the model could produce it."""
    _check_tool_calls(answer, body)
    thinking_cfg = _object(body, "thinking")
    display = thinking_cfg.get("display") or spec.thinking_display
    notes = _thinking_texts(answer.thinking)
    if thinking_cfg.get("type") == "disabled" and not spec.notes_as_thinking:
        notes = []  # thinking off: no thinking blocks (the notes-as-thinking models cannot turn it off)
    text = answer.text or None
    if text is not None and spec.notes_as_thinking:
        notes.append(text)
        text = None
    content: List[Dict[str, Any]] = [
        {"type": "thinking", "thinking": note if display == "summarized" else "", "signature": _signature()}
        for note in notes
    ]
    if text is not None:
        if _output_schema(body) is not None:
            # Spec §10: the format binds Claude's final answer; text in a tool turn would have to
            # obey it too (undocumented) and SDK parse() fails on it: script the note as thinking.
            raise ImpossibleAnswer("a tool_use turn under output_config.format carries no text (script thinking=)")
        content.append({"type": "text", "text": text})
    billed = sum(tokens(n) for n in notes) + tokens(text or "")
    budget = body.get("max_tokens") or 0
    stop_reason = "tool_use"
    for name, arguments in answer.calls:
        cost = tokens(_canonical(dict(arguments)))
        if answer.output_tokens is None and budget and billed + cost > budget:
            stop_reason = "max_tokens"  # spec §10: max_tokens can cut a tool_use block; this one is left out
            billed = budget
            break
        billed += cost
        content.append({"type": "tool_use", "id": _rid("toolu_"), "name": name, "input": copy.deepcopy(dict(arguments))})
    output = answer.output_tokens if answer.output_tokens is not None else billed
    return _Generated(None, stop_reason, output_tokens=output, content=content)


def _check_tool_calls(answer: ToolCalls, body: Dict[str, Any]) -> None:
    offered = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
    choice = _object(body, "tool_choice")
    ctype = choice.get("type", "auto")
    if not answer.calls:
        raise ImpossibleAnswer("ToolCalls without calls: answer text instead")
    if ctype == "none":
        raise ImpossibleAnswer("tool_choice is 'none': the model must answer with text, not call tools")
    if ctype in ("any", "tool") and answer.text:
        raise ImpossibleAnswer(f"tool_choice {ctype!r} prefills the turn with the call: no text before it")
    if choice.get("disable_parallel_tool_use") and len(answer.calls) > 1:
        raise ImpossibleAnswer(f"disable_parallel_tool_use: at most one call, got {len(answer.calls)}")
    for name, arguments in answer.calls:
        if name not in offered:
            raise ImpossibleAnswer(f"the responder called {name!r}, which is not among tools {sorted(map(str, offered))}")
        if ctype == "tool" and name != choice.get("name"):
            raise ImpossibleAnswer(f"tool_choice forces {choice.get('name')!r}; the responder called {name!r}")
        if not isinstance(arguments, Mapping):
            raise ImpossibleAnswer(f"the input of a {name!r} call must be an object, got {arguments!r}")
        tool = offered[name]
        if tool.get("strict"):
            problem = _instance_error(tool["input_schema"], dict(arguments), tool["input_schema"], "input")
            if problem:
                raise ImpossibleAnswer(f"strict tool {name!r}: {problem}")


_JSON_TYPES: Dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": _is_int,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _instance_error(schema: Any, value: Any, root: Dict[str, Any], path: str) -> Optional[str]:
    """Why ``value`` does not follow ``schema`` (the §2 subset: type, enum, const, properties,
    required, additionalProperties, items, anyOf/allOf, local $ref), or None."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#"):
        return _instance_error(_resolve_pointer(root, schema["$ref"][1:]), value, root, path)
    types = schema.get("type")
    if types is not None:
        wanted = [types] if isinstance(types, str) else list(types)
        if not any(_JSON_TYPES.get(t, lambda v: True)(value) for t in wanted):
            return f"{path}: {value!r} is not of type {types!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        return f"{path}: {value!r} is not {schema['const']!r}"
    for sub in schema.get("allOf") or []:
        problem = _instance_error(sub, value, root, path)
        if problem:
            return problem
    if schema.get("anyOf") and all(_instance_error(sub, value, root, path) for sub in schema["anyOf"]):
        return f"{path}: {value!r} matches none of anyOf"
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key in schema.get("required") or []:
            if key not in value:
                return f"{path}: {key!r} is required"
        for key, item in value.items():
            if key in props:
                problem = _instance_error(props[key], item, root, f"{path}.{key}")
                if problem:
                    return problem
            elif schema.get("additionalProperties") is False:
                return f"{path}: unexpected property {key!r}"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = _instance_error(schema["items"], item, root, f"{path}.{i}")
            if problem:
                return problem
    return None


def _message_json(body: Dict[str, Any], generated: _Generated, usage: _Usage, tier: str) -> Dict[str, Any]:
    content = copy.deepcopy(generated.blocks())
    return {
        "id": _rid("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": generated.stop_reason,
        "stop_sequence": generated.stop_sequence,
        "stop_details": generated.stop_details,
        "container": None,
        "usage": usage.to_json(tier),
    }
