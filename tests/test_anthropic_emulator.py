"""The Anthropic emulator, driven by the real `anthropic` SDK (and raw HTTP where the SDK cannot go)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Iterator, List, Optional, Tuple

import anthropic
import pytest

from tests.emulators.anthropic import (
    AnthropicEmulator,
    Drop,
    Fault,
    MidStream,
    Refusal,
    Reply,
    ImpossibleAnswer,
    Slow,
    ToolCalls,
    Truncated,
    tokens,
)

MODEL = "claude-sonnet-5-5"
SCHEMA: Dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"line": {"type": "integer"}, "title": {"type": "string"}},
                "required": ["line", "title"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["findings"],
    "additionalProperties": False,
}
OUTPUT_CONFIG = {"format": {"type": "json_schema", "schema": SCHEMA}}
BIG_SYSTEM = "You review code carefully. " * 200  # 5,400 chars -> 1,350 tokens


@pytest.fixture(scope="module")
def server() -> Iterator[AnthropicEmulator]:
    with AnthropicEmulator(api_keys=("test-key",)) as emu:
        yield emu


_CLIENTS: List[anthropic.Anthropic] = []


@pytest.fixture
def emu(server: AnthropicEmulator) -> Iterator[AnthropicEmulator]:
    server.reset()
    yield server
    while _CLIENTS:
        _CLIENTS.pop().close()


def client(emu: AnthropicEmulator, max_retries: int = 0, **kwargs: Any) -> anthropic.Anthropic:
    """A sync SDK client on the emulator, closed after the test."""
    sdk = anthropic.Anthropic(api_key=kwargs.pop("api_key", "test-key"), base_url=emu.base_url,
                              max_retries=max_retries, timeout=10, **kwargs)
    _CLIENTS.append(sdk)
    return sdk


def aclient(emu: AnthropicEmulator, max_retries: int = 0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test-key", base_url=emu.base_url, max_retries=max_retries, timeout=10)


def cached_system(text: str = BIG_SYSTEM, ttl: Optional[str] = None) -> List[Dict[str, Any]]:
    cc: Dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        cc["ttl"] = ttl
    return [{"type": "text", "text": text, "cache_control": cc}]


def params(**overrides: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "Review this diff."}],
        "output_config": OUTPUT_CONFIG,
    }
    base.update(overrides)
    return base


def raw(emu: AnthropicEmulator, method: str, path: str, body: Any = None,
        headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], Any]:
    """A request without the SDK: (status, lower-cased headers, parsed JSON or text)."""
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(emu.base_url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, hdrs, text = response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            status, hdrs, text = err.code, dict(err.headers), err.read().decode()
    hdrs = {k.lower(): v for k, v in hdrs.items()}
    try:
        return status, hdrs, json.loads(text)
    except json.JSONDecodeError:
        return status, hdrs, text


GOOD_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2026-10-21", "content-type": "application/json"}


def bad_request(emu: AnthropicEmulator, **overrides: Any) -> str:
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emu, max_retries=2).messages.create(**params(**overrides))
    return info.value.body["error"]["message"]


# --------------------------------------------------------------------------- round trip


def test_structured_output_round_trip(emu: AnthropicEmulator) -> None:
    answer = {"findings": [{"line": 3, "title": "off by one"}]}
    seen: List[Dict[str, Any]] = []

    def responder(body: Dict[str, Any]) -> Any:
        seen.append(body)
        return answer

    emu.responder = responder
    message = client(emu).messages.create(**params())
    assert json.loads(message.content[0].text) == answer
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_") and message._request_id.startswith("req_")
    assert message.model == MODEL
    expected_in = tokens(json.dumps(SCHEMA, sort_keys=True, separators=(",", ":"))) + tokens("Review this diff.")
    assert message.usage.input_tokens == expected_in
    assert message.usage.output_tokens == tokens(json.dumps(answer))
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0
    assert seen[0]["output_config"] == OUTPUT_CONFIG
    [recorded] = emu.message_requests()
    assert recorded.headers["authorization"] == "Bearer test-key"
    assert recorded.headers["anthropic-version"] == "2026-10-21"
    assert recorded.body["model"] == MODEL and recorded.finished >= recorded.started


def test_answer_kinds(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    emu.responder = lambda body: "not json {"
    assert sdk.messages.create(**params()).content[0].text == "not json {"

    emu.responder = lambda body: Reply("{}", output_tokens=77)
    message = sdk.messages.create(**params())
    assert message.content[0].text == "{}" and message.usage.output_tokens == 77

    emu.responder = lambda body: Refusal("no thanks")
    message = sdk.messages.create(**params())
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.explanation == "no thanks"
    assert message.stop_details.type == "refusal" and message.stop_details.category is None

    emu.responder = lambda body: Truncated('{"findings": [{"li')
    message = sdk.messages.create(**params())
    assert message.stop_reason == "max_tokens" and message.content[0].text == '{"findings": [{"li'

    # A text longer than max_tokens is cut; a stop sequence cuts too.
    emu.responder = lambda body: "x" * 400
    message = sdk.messages.create(**params(max_tokens=10))
    assert message.stop_reason == "max_tokens" and message.content[0].text == "x" * 40
    emu.responder = lambda body: "abc END def"
    message = sdk.messages.create(**params(stop_sequences=["END"]))
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"
    assert message.content[0].text == "abc "


def test_responder_fault_for_one_subject_only(emu: AnthropicEmulator) -> None:
    def responder(body: Dict[str, Any]) -> Any:
        text = body["messages"][0]["content"]
        return Fault(500, should_retry=False) if "b.py" in text else {"findings": []}

    emu.responder = responder
    sdk = client(emu, max_retries=2)
    assert sdk.messages.create(**params(messages=[{"role": "user", "content": "a.py"}])).content
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk.messages.create(**params(messages=[{"role": "user", "content": "b.py"}]))
    assert info.value.body["error"]["type"] == "api_error"
    assert len([r for r in emu.requests if r.path == "/v1/messages"]) == 2


def test_count_tokens(emu: AnthropicEmulator) -> None:
    body = params()
    del body["max_tokens"]
    counted = client(emu).messages.count_tokens(**body)
    assert counted.input_tokens == client(emu).messages.create(**params()).usage.input_tokens
    assert emu.message_requests()[0].path == "/v1/messages"


# --------------------------------------------------------------------------- auth and validation


def test_auth(emu: AnthropicEmulator) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(emu, api_key="wrong").messages.create(**params())
    assert info.value.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert info.value.request_id and info.value.request_id.startswith("req_")

    status, headers, body = raw(emu, "POST", "/v1/messages", params(), {"anthropic-version": "2026-10-21"})
    assert status == 401 and body["error"]["message"] == "x-api-key header is required"
    assert body["request_id"] == headers["request-id"]

    status, _, body = raw(emu, "POST", "/v1/messages", params(), GOOD_HEADERS)
    assert status == 200 and body["type"] == "message"
    status, _, body = raw(emu, "POST", "/v1/messages", params(), {**GOOD_HEADERS, "x-api-key": "nope"})
    assert status == 401 and body["error"]["message"] == "invalid x-api-key"

    no_version = {k: v for k, v in GOOD_HEADERS.items() if k != "anthropic-version"}
    status, headers, body = raw(emu, "POST", "/v1/messages", params(), no_version)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert headers["x-should-retry"] == "false"
    status, _, _ = raw(emu, "POST", "/v1/messages", params(), {**GOOD_HEADERS, "anthropic-version": "2024-01-01"})
    assert status == 400


def test_body_validation_raw(emu: AnthropicEmulator) -> None:
    status, _, body = raw(emu, "POST", "/v1/messages", b"{not json", GOOD_HEADERS)
    assert status == 400
    for missing in ("model", "max_tokens", "messages"):
        payload = params()
        del payload[missing]
        status, _, body = raw(emu, "POST", "/v1/messages", payload, GOOD_HEADERS)
        assert (status, body["error"]["message"]) == (400, f"{missing}: Field required")
    status, _, body = raw(emu, "POST", "/v1/messages", params(max_tokens="10"), GOOD_HEADERS)
    assert body["error"]["message"] == "max_tokens: Input should be a valid integer"
    emu.max_message_body = 1000
    status, _, body = raw(emu, "POST", "/v1/messages", params(system="x" * 2000), GOOD_HEADERS)
    assert status == 413 and body["error"]["type"] == "request_too_large"
    assert emu.message_requests() == []


def test_unknown_model_is_404(emu: AnthropicEmulator) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client(emu, max_retries=2).messages.create(**params(model="claude-nonexistent-9"))
    assert info.value.body["error"] == {"type": "not_found_error", "message": "model: claude-nonexistent-9"}
    assert len(emu.requests) == 1


def test_max_tokens_bounds(emu: AnthropicEmulator) -> None:
    assert "maximum allowed number of output tokens" in bad_request(emu, max_tokens=128_001)
    assert "greater than or equal to 0" in bad_request(emu, max_tokens=-1)  # 0 is a pre-warm (§3a)
    assert client(emu).messages.create(**params(model="claude-haiku-4-5", max_tokens=64_000))
    assert "64000" in bad_request(emu, model="claude-haiku-4-5-20251001", max_tokens=64_001)


def test_schema_subset(emu: AnthropicEmulator) -> None:
    def with_schema(schema: Dict[str, Any]) -> str:
        return bad_request(emu, output_config={"format": {"type": "json_schema", "schema": schema}})

    no_ap = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert with_schema(no_ap) == (
        "output_config.format.schema: For 'object' type, 'additionalProperties' must be explicitly set to false"
    )
    assert "'additionalProperties: true' is not supported" in with_schema({**no_ap, "additionalProperties": True})
    nested = {"type": "object", "additionalProperties": False,
              "properties": {"n": {"type": "integer", "minimum": 1}}}
    assert "minimum" in with_schema(nested)
    for keyword, value in (("maxLength", 5), ("maxItems", 3), ("multipleOf", 2), ("minItems", 2)):
        node = {"type": "array" if "Items" in keyword else "string", keyword: value}
        assert keyword in with_schema({"type": "object", "additionalProperties": False, "properties": {"x": node}})
    assert "External" in with_schema({"$ref": "https://example.com/s.json"})
    recursive = {
        "$defs": {"Node": {"type": "object", "additionalProperties": False,
                           "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    assert "Recursive" in with_schema(recursive)
    # The SDK's own transform of a bounded pydantic-style schema is accepted.
    accepted = anthropic.transform_schema(
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]}
    )
    emu.responder = lambda body: {"n": 1}
    local = {"$defs": {"P": {"type": "object", "additionalProperties": False,
                             "properties": {"x": {"type": "string", "minItems": 1}}}},
             "type": "object", "additionalProperties": False, "properties": {"p": {"$ref": "#/$defs/P"}}}
    for schema in (accepted, local):
        message = client(emu).messages.create(**params(output_config={"format": {"type": "json_schema", "schema": schema}}))
        assert message.stop_reason == "end_turn"


def test_prefill_and_roles(emu: AnthropicEmulator) -> None:
    prefill = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "{"}]
    assert bad_request(emu, messages=prefill) == (
        "This model does not support assistant message prefill. The conversation must end with a user message."
    )
    assert client(emu).messages.create(**params(model="claude-haiku-4-5", messages=prefill)).content
    assert "first message" in bad_request(emu, messages=[{"role": "assistant", "content": "x"},
                                                          {"role": "user", "content": "y"}])
    assert "role" in bad_request(emu, messages=[{"role": "system", "content": "x"}])
    assert "non-empty" in bad_request(emu, messages=[{"role": "user", "content": ""}])


def test_sampling_parameters_rejected(emu: AnthropicEmulator) -> None:
    for name, value in (("temperature", 0.0), ("top_p", 0.9), ("top_k", 5)):
        with pytest.raises(anthropic.BadRequestError) as info:
            client(emu).messages.create(**params(), extra_body={name: value})
        assert info.value.body["error"]["message"] == f"{name}: Extra inputs are not permitted"
        assert info.value.response.headers["x-should-retry"] == "false"
    # Allowed (on an older model) under the old API version.
    old = {"anthropic-version": "2023-06-01"}
    message = client(emu).messages.create(**params(model="claude-sonnet-4-5"), extra_body={"temperature": 0.2},
                                          extra_headers=old)
    assert message.content
    with pytest.raises(anthropic.BadRequestError):
        client(emu).messages.create(**params(), extra_body={"temperature": 0.2}, extra_headers=old)
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emu).messages.create(**params(), extra_body={"bogus": 1})
    assert info.value.body["error"]["message"] == "bogus: Extra inputs are not permitted"


def test_cache_control_limits(emu: AnthropicEmulator) -> None:
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    assert bad_request(emu, system=blocks) == "A maximum of 4 blocks with cache_control may be provided. Found 5."
    four = blocks[:4]
    assert client(emu).messages.create(**params(system=four)).content
    assert "Found 5" in bad_request(emu, system=four, cache_control={"type": "ephemeral"})
    bad_ttl = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "10m"}}]
    assert "ttl" in bad_request(emu, system=bad_ttl)


# --------------------------------------------------------------------------- faults and retries


def test_529_is_retried_then_succeeds(emu: AnthropicEmulator) -> None:
    emu.enqueue_fault(Fault(529, retry_after=0), count=1)
    message = client(emu, max_retries=2).messages.create(**params())
    assert message.content[0].text == '{"findings": []}'
    attempts = [r for r in emu.requests if r.path == "/v1/messages"]
    assert [r.status for r in attempts] == [529, 200]
    assert [r.headers["x-stainless-retry-count"] for r in attempts] == ["0", "1"]


def test_fault_envelope_and_headers(emu: AnthropicEmulator) -> None:
    emu.enqueue_fault(Fault(429, retry_after=0.01))
    status, headers, body = raw(emu, "POST", "/v1/messages", params(), GOOD_HEADERS)
    assert status == 429
    assert headers["retry-after-ms"] == "10" and float(headers["retry-after"]) == 0.01
    assert body == {"type": "error", "error": {"type": "rate_limit_error", "message": body["error"]["message"]},
                    "request_id": headers["request-id"]}
    emu.enqueue_fault(Fault(529))
    with pytest.raises(anthropic.OverloadedError) as info:
        client(emu).messages.create(**params())
    assert info.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_should_retry_false_stops_retries(emu: AnthropicEmulator) -> None:
    emu.enqueue_fault(Fault(529, should_retry=False), count=3)
    with pytest.raises(anthropic.OverloadedError):
        client(emu, max_retries=3).messages.create(**params())
    assert len([r for r in emu.requests if r.path == "/v1/messages"]) == 1


def test_should_retry_true_retries_a_400(emu: AnthropicEmulator) -> None:
    emu.enqueue_fault(Fault(400, should_retry=True, retry_after=0.01))
    assert client(emu, max_retries=1).messages.create(**params()).content
    assert [r.status for r in emu.requests] == [400, 200]


def test_drop_gives_connection_error_after_retries(emu: AnthropicEmulator) -> None:
    emu.enqueue_fault(Drop(), count=2)
    with pytest.raises(anthropic.APIConnectionError):
        client(emu, max_retries=1).messages.create(**params())
    assert [r.status for r in emu.requests] == [0, 0]
    assert client(emu).messages.create(**params()).content  # the server is fine afterwards


def test_slow_hits_the_client_timeout(emu: AnthropicEmulator) -> None:
    emu.enqueue_fault(Slow(0.5))
    with pytest.raises(anthropic.APITimeoutError):
        client(emu).with_options(timeout=0.2).messages.create(**params())
    emu.responder = lambda body: Slow(0.05, Reply('{"ok": true}'))
    assert client(emu).messages.create(**params()).content[0].text == '{"ok": true}'


def test_responder_exception_is_a_500_and_recorded(emu: AnthropicEmulator) -> None:
    def boom(body: Dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    emu.responder = boom
    with pytest.raises(anthropic.InternalServerError):
        client(emu, max_retries=2).messages.create(**params())
    assert len(emu.requests) == 1 and isinstance(emu.errors[0], RuntimeError)


# --------------------------------------------------------------------------- prompt cache


def test_cache_write_then_read(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    first = sdk.messages.create(**params(system=cached_system()))
    prefix = tokens(json.dumps(SCHEMA, sort_keys=True, separators=(",", ":"))) + tokens(BIG_SYSTEM)
    assert first.usage.cache_creation_input_tokens == prefix
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == prefix
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == tokens("Review this diff.")

    second = sdk.messages.create(**params(system=cached_system(),
                                          messages=[{"role": "user", "content": "Another file."}]))
    assert second.usage.cache_read_input_tokens == prefix
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == tokens("Another file.")

    # Another model or another schema is another prefix.
    other = sdk.messages.create(**params(model="claude-opus-5-5", system=cached_system()))
    assert other.usage.cache_read_input_tokens == 0 and other.usage.cache_creation_input_tokens > 0


def test_cache_expiry_and_ttl(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    sdk.messages.create(**params(system=cached_system()))
    sdk.messages.create(**params(system=cached_system("Hourly. " * 700, ttl="1h")))
    emu.clock_offset = 301
    expired = sdk.messages.create(**params(system=cached_system()))
    assert expired.usage.cache_read_input_tokens == 0 and expired.usage.cache_creation_input_tokens > 0
    hourly = sdk.messages.create(**params(system=cached_system("Hourly. " * 700, ttl="1h")))
    assert hourly.usage.cache_read_input_tokens > 0
    emu.clock_offset = 301 + 3601
    again = sdk.messages.create(**params(system=cached_system("Hourly. " * 700, ttl="1h")))
    assert again.usage.cache_read_input_tokens == 0
    assert again.usage.cache_creation.ephemeral_1h_input_tokens == again.usage.cache_creation_input_tokens > 0


def test_concurrent_requests_both_write(emu: AnthropicEmulator) -> None:
    emu.latency = 0.3
    emu.prefill_factor = 0.5  # both arrive well before the first response begins

    async def main() -> List[anthropic.types.Message]:
        sdk = aclient(emu)
        try:
            return list(await asyncio.gather(*(
                sdk.messages.create(**params(system=cached_system(),
                                             messages=[{"role": "user", "content": f"file {i}"}]))
                for i in range(2)
            )))
        finally:
            await sdk.close()

    both = asyncio.run(main())
    assert all(m.usage.cache_creation_input_tokens > 0 for m in both)
    assert all(m.usage.cache_read_input_tokens == 0 for m in both)
    emu.latency = 0
    later = client(emu).messages.create(**params(system=cached_system()))
    assert later.usage.cache_read_input_tokens == both[0].usage.cache_creation_input_tokens


def test_small_prefix_is_not_cached(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    for _ in range(2):
        message = sdk.messages.create(**params(system=cached_system("short system prompt")))
        assert message.usage.cache_creation_input_tokens == 0
        assert message.usage.cache_read_input_tokens == 0
    assert emu.cache_entries() == 0
    emu.min_cache_tokens = 1
    sdk.messages.create(**params(system=cached_system("short system prompt")))
    assert emu.cache_entries() == 1


def test_automatic_cache_control_and_multiple_breakpoints(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    body = params(system=[{"type": "text", "text": BIG_SYSTEM}],
                  messages=[{"role": "user", "content": "Q" * 8000}], cache_control={"type": "ephemeral"})
    first = sdk.messages.create(**body)
    assert first.usage.input_tokens == 0 and first.usage.cache_creation_input_tokens > 0
    assert sdk.messages.create(**body).usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens

    # Two breakpoints: a changed second part still reads the first.
    def two(tail: str) -> Dict[str, Any]:
        return params(system=[
            {"type": "text", "text": BIG_SYSTEM, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": tail * 5000, "cache_control": {"type": "ephemeral"}},
        ])

    sdk.messages.create(**two("a"))
    partial = sdk.messages.create(**two("b"))
    prefix = tokens(json.dumps(SCHEMA, sort_keys=True, separators=(",", ":"))) + tokens(BIG_SYSTEM)
    assert partial.usage.cache_read_input_tokens == prefix
    assert partial.usage.cache_creation_input_tokens == tokens("b" * 5000)


def test_prewarm_max_tokens_zero(emu: AnthropicEmulator) -> None:
    emu.latency = 5.0
    called: List[Any] = []
    emu.responder = lambda body: called.append(body) or {"findings": []}
    # A pre-warm cannot carry output_config.format (spec §3a), so it warms format-less calls only.
    plain = params(system=cached_system())
    del plain["output_config"]
    warm = client(emu).messages.create(**{**plain, "max_tokens": 0})
    (served,) = emu.requests
    assert served.finished - served.started < emu.latency / 2  # latency x prefill_factor, not the latency
    assert warm.content == [] and warm.stop_reason == "max_tokens" and warm.usage.output_tokens == 0
    assert warm.usage.cache_creation_input_tokens > 0 and called == []
    emu.latency = 0
    hit = client(emu).messages.create(**plain)
    assert hit.usage.cache_read_input_tokens == warm.usage.cache_creation_input_tokens
    assert len(called) == 1


# --------------------------------------------------------------------------- concurrency


def test_max_in_flight_counts_concurrent_requests(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    for _ in range(5):
        sdk.messages.create(**params())
    assert emu.max_in_flight == 1 and emu.in_flight == 0
    emu.reset()
    everyone = threading.Barrier(10, timeout=30)  # no answer until all ten are in flight

    def responder(body: Dict[str, Any]) -> Any:
        everyone.wait()
        return {"ok": True}

    emu.responder = responder

    async def main(n: int) -> None:
        sdk = aclient(emu)
        try:
            await asyncio.gather(*(sdk.messages.create(**params()) for _ in range(n)))
        finally:
            await sdk.close()

    asyncio.run(main(10))
    assert emu.max_in_flight == 10 and not emu.errors
    assert len(emu.message_requests()) == 10


def test_sixty_four_slow_requests_run_in_parallel(emu: AnthropicEmulator) -> None:
    # Every answer waits until all 64 requests are being handled at once: a
    # server that handled them one at a time (or a few) would break the barrier.
    everyone = threading.Barrier(64, timeout=30)

    def responder(body: Dict[str, Any]) -> Any:
        everyone.wait()
        return {"ok": True}

    emu.responder = responder
    results: List[int] = []

    def worker(sdk: anthropic.Anthropic) -> None:
        results.append(sdk.messages.create(**params()).usage.output_tokens)

    sdk = client(emu)
    threads = [threading.Thread(target=worker, args=(sdk,)) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 64 and not emu.errors
    assert emu.max_in_flight == 64


# --------------------------------------------------------------------------- batches


def wait_ended(sdk: anthropic.Anthropic, batch_id: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = sdk.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended" or time.monotonic() > deadline:
            return batch
        time.sleep(0.02)


def batch_request(custom_id: str, **overrides: Any) -> Dict[str, Any]:
    return {"custom_id": custom_id, "params": params(**overrides)}


def test_batch_lifecycle(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    emu.responder = lambda body: {"findings": [{"line": 1, "title": body["messages"][0]["content"]}]}

    def outcome(custom_id: str, _params: Dict[str, Any]) -> Optional[str]:
        return {"r3": "errored", "r4": "expired"}.get(custom_id)

    emu.batch_outcome = outcome
    requests = [
        batch_request("r1", messages=[{"role": "user", "content": "one"}]),
        batch_request("r2", max_tokens=0),  # pre-warm is not allowed in a batch
        batch_request("r3"),
        batch_request("r4"),
        batch_request("r5", model="claude-nope"),
    ]
    created = sdk.messages.batches.create(requests=requests)
    assert created.id.startswith("msgbatch_") and created.processing_status == "in_progress"
    assert created.request_counts.processing == 5 and created.results_url is None
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        sdk.messages.batches.results(created.id)
    status, _, body = raw(emu, "GET", f"/v1/messages/batches/{created.id}/results", headers=GOOD_HEADERS)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.batches.delete(created.id)

    ended = wait_ended(sdk, created.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.expired, counts.canceled) == (0, 1, 3, 1, 0)
    assert ended.results_url == f"{emu.base_url}/v1/messages/batches/{created.id}/results"

    results = {r.custom_id: r.result for r in sdk.messages.batches.results(created.id)}
    assert set(results) == {"r1", "r2", "r3", "r4", "r5"}
    assert results["r1"].type == "succeeded"
    assert json.loads(results["r1"].message.content[0].text)["findings"][0]["title"] == "one"
    assert results["r1"].message.usage.service_tier == "batch"
    assert results["r2"].type == "errored" and results["r2"].error.error.type == "invalid_request_error"
    assert "max_tokens" in results["r2"].error.error.message
    assert results["r3"].type == "errored"
    assert results["r4"].type == "expired"
    assert results["r5"].error.error.type == "not_found_error"

    status, headers, text = raw(emu, "GET", f"/v1/messages/batches/{created.id}/results", headers=GOOD_HEADERS)
    assert status == 200 and isinstance(text, str)
    assert "" not in text.rstrip("\n").split("\n")

    deleted = sdk.messages.batches.delete(created.id)
    assert deleted.id == created.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve(created.id)
    assert emu.custom_id_submissions["r1"] == 1


def test_batch_create_validation(emu: AnthropicEmulator) -> None:
    sdk = client(emu, max_retries=2)
    for requests in ([], [batch_request("a"), batch_request("a")], [batch_request("bad id!")]):
        with pytest.raises(anthropic.BadRequestError):
            sdk.messages.batches.create(requests=requests)
    assert emu.batches == {}
    assert len(emu.requests) == 3


def test_batch_cancel(emu: AnthropicEmulator) -> None:
    emu.batch_processing_seconds = 5
    sdk = client(emu)
    created = sdk.messages.batches.create(requests=[batch_request("a"), batch_request("b")])
    canceling = sdk.messages.batches.cancel(created.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    ended = wait_ended(sdk, created.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 2 and ended.request_counts.processing == 0
    assert {r.result.type for r in sdk.messages.batches.results(created.id)} == {"canceled"}


def test_batch_list_pagination_and_resubmission(emu: AnthropicEmulator) -> None:
    emu.batch_processing_seconds = 5
    sdk = client(emu)
    ids = [sdk.messages.batches.create(requests=[batch_request("same")]).id for _ in range(5)]
    assert emu.custom_id_submissions["same"] == 5
    page = sdk.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in sdk.messages.batches.list(limit=2)] == ids[::-1]  # auto-paging
    older = sdk.messages.batches.list(limit=2, after_id=ids[4])
    assert [b.id for b in older.data] == [ids[3], ids[2]]
    newer = sdk.messages.batches.list(limit=2, before_id=ids[0])
    assert [b.id for b in newer.data] == [ids[2], ids[1]] and newer.has_more
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.batches.list(limit=1001)


def test_batch_async_results(emu: AnthropicEmulator) -> None:
    emu.batch_processing_seconds = 0.05

    async def main() -> List[str]:
        sdk = aclient(emu)
        try:
            created = await sdk.messages.batches.create(requests=[batch_request(f"r{i}") for i in range(20)])
            while (await sdk.messages.batches.retrieve(created.id)).processing_status != "ended":
                await asyncio.sleep(0.02)
            return [r.custom_id async for r in await sdk.messages.batches.results(created.id)]
        finally:
            await sdk.close()

    ids = asyncio.run(main())
    assert sorted(ids) == sorted(f"r{i}" for i in range(20))


# --------------------------------------------------------------------------- pre-warm rules (spec §3a, §9)

FORCING_MODEL = "claude-opus-5"  # accepts forced tool use, so only the pre-warm rule can refuse
TOOL = {"name": "lookup", "description": "Look a symbol up.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}


def plain(**overrides: Any) -> Dict[str, Any]:
    """`params` without output_config.format: what a pre-warm may carry."""
    body = params(model=FORCING_MODEL, system=cached_system(), **overrides)
    del body["output_config"]
    return body


def assert_refused(info: pytest.ExceptionInfo, needle: str) -> None:
    """A 400 in the real envelope (spec §4), x-should-retry false."""
    err = info.value
    assert isinstance(err, anthropic.BadRequestError) and err.status_code == 400
    assert set(err.body) == {"type", "error", "request_id"} and err.body["type"] == "error"
    assert err.body["error"]["type"] == "invalid_request_error"
    assert needle in err.body["error"]["message"]
    assert err.body["request_id"] == err.request_id and err.request_id.startswith("req_")
    assert err.response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("extra, needle", [
    ({"output_config": OUTPUT_CONFIG}, "output_config.format"),
    ({"extra_body": {"output_format": {"type": "json_schema", "schema": SCHEMA}}}, "output_config.format"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking.type: 'enabled'"),
    ({"tools": [TOOL], "tool_choice": {"type": "any"}}, "tool_choice.type: 'any'"),
    ({"tools": [TOOL], "tool_choice": {"type": "tool", "name": "lookup"}}, "tool_choice.type: 'tool'"),
], ids=["format", "legacy-output_format", "thinking-enabled", "tool_choice-any", "tool_choice-tool"])
def test_prewarm_with_what_needs_generation_is_refused(emu: AnthropicEmulator, extra: Dict[str, Any],
                                                        needle: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emu, max_retries=2).messages.create(**{**plain(), "max_tokens": 0, **extra})
    assert_refused(info, needle)
    assert "max_tokens: 0" in info.value.body["error"]["message"]
    assert len(emu.requests) == 1 and emu.cache_entries() == 0  # not retried, nothing written


def test_streamed_prewarm_is_refused(emu: AnthropicEmulator) -> None:
    sdk = client(emu, max_retries=2)
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(**{**plain(), "max_tokens": 0}, stream=True)
    assert_refused(info, "stream: true")
    with pytest.raises(anthropic.BadRequestError) as info:  # the SDK's helper always streams (§3a)
        with sdk.messages.stream(**{**plain(), "max_tokens": 0}):
            pass
    assert_refused(info, "stream: true")
    assert emu.message_requests() == [] and emu.cache_entries() == 0


def test_prewarm_with_what_the_docs_do_not_list_is_served(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    for extra in ({"thinking": {"type": "adaptive"}}, {"tools": [TOOL], "tool_choice": {"type": "auto"}},
                  {"tools": [TOOL], "tool_choice": {"type": "none"}}):
        warm = sdk.messages.create(**{**plain(), "max_tokens": 0, **extra})
        assert warm.content == [] and warm.stop_reason == "max_tokens" and warm.usage.output_tokens == 0


def test_prewarm_and_streaming_in_a_batch_are_errored_results(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    created = sdk.messages.batches.create(requests=[
        {"custom_id": "warm", "params": {**plain(), "max_tokens": 0}},
        {"custom_id": "streamed", "params": {**params(), "stream": True}},
        {"custom_id": "fine", "params": params()},
    ])
    assert wait_ended(sdk, created.id).request_counts.errored == 2
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(created.id)}
    for custom_id, needle in (("warm", "max_tokens"), ("streamed", "stream")):
        assert results[custom_id].type == "errored"
        assert results[custom_id].error.error.type == "invalid_request_error"
        assert needle in results[custom_id].error.error.message
    assert results["fine"].type == "succeeded"


# --------------------------------------------------------------------------- other §9 / §10 rules


def test_forced_tool_choice_rules(emu: AnthropicEmulator) -> None:
    sdk = client(emu, max_retries=2)
    forced = {"tools": [TOOL], "tool_choice": {"type": "any"}}
    for model in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-fable-5-1"):
        with pytest.raises(anthropic.BadRequestError) as info:
            sdk.messages.create(**params(model=model, **forced))
        assert_refused(info, 'tool_choice: type "tool" and "any" are not supported for this model.')
    with pytest.raises(anthropic.BadRequestError) as info:  # count_tokens too on Opus/Sonnet 5.5 (§7)
        sdk.messages.count_tokens(model="claude-sonnet-5-5", messages=[{"role": "user", "content": "hi"}], **forced)
    assert_refused(info, "not supported for this model")
    assert sdk.messages.count_tokens(model="claude-fable-5-1", messages=[{"role": "user", "content": "hi"}],
                                     **forced).input_tokens > 0
    emu.responder = lambda body: ToolCalls([("lookup", {"q": "x"})])  # a forced turn calls a tool
    assert sdk.messages.create(**params(model=FORCING_MODEL, **forced)).stop_reason == "tool_use"
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(**params(model=FORCING_MODEL, max_tokens=4096, **forced,
                                     thinking={"type": "enabled", "budget_tokens": 1024}))
    assert_refused(info, "Thinking may not be enabled when tool_choice forces tool use.")
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(**params(tool_choice={"type": "sometimes"}))
    assert_refused(info, "tool_choice.type")


def test_tool_use_must_be_answered_first_in_the_next_user_message(emu: AnthropicEmulator) -> None:
    sdk = client(emu, max_retries=2)
    asked = {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "a"}},
        {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": "b"}}]}
    result = [{"type": "tool_result", "tool_use_id": i, "content": "ok"} for i in ("toolu_1", "toolu_2")]

    def conversation(answer: List[Dict[str, Any]]) -> Dict[str, Any]:
        return params(tools=[TOOL], messages=[{"role": "user", "content": "go"}, asked,
                                               {"role": "user", "content": answer}])

    assert sdk.messages.create(**conversation(result + [{"type": "text", "text": "and?"}])).content
    for answer in (result[:1], [{"type": "text", "text": "first"}] + result):
        with pytest.raises(anthropic.BadRequestError) as info:
            sdk.messages.create(**conversation(answer))
        assert_refused(info, "`tool_use` ids were found without `tool_result` blocks immediately after")
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(**conversation(result + [{"type": "tool_result", "tool_use_id": "toolu_9"}]))
    assert_refused(info, "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9")


def test_cache_ttl_order_and_automatic_breakpoint_conflict(emu: AnthropicEmulator) -> None:
    sdk = client(emu, max_retries=2)

    def block(text: str, ttl: str) -> Dict[str, Any]:
        return {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": ttl}}

    assert sdk.messages.create(**params(system=[block("a", "1h"), block("b", "5m")])).content
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(**params(system=[block("a", "5m"), block("b", "1h")]))
    assert_refused(info, "ttl '1h' must not come after")
    with pytest.raises(anthropic.BadRequestError) as info:  # tools render before system
        sdk.messages.create(**params(tools=[{**TOOL, "cache_control": {"type": "ephemeral"}}],
                                     system=[block("a", "1h")]))
    assert_refused(info, "ttl '1h' must not come after")
    last = [{"role": "user", "content": [block("q", "5m")]}]
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(**params(messages=last, cache_control={"type": "ephemeral", "ttl": "1h"}))
    assert_refused(info, "conflicts")
    # Same TTL on the last block: the automatic breakpoint is a no-op, so 4 + automatic is fine.
    three = [block(f"s{i}", "5m") for i in range(3)]
    assert sdk.messages.create(**params(system=three, messages=last, cache_control={"type": "ephemeral"})).content


# --------------------------------------------------------------------------- cache keys and timing


def test_output_format_is_part_of_the_cache_key(emu: AnthropicEmulator) -> None:
    """The API renders a system prompt for the format: a change in it invalidates the cache (§2, §3a)."""
    sdk = client(emu)
    bare = plain()
    bare["model"] = MODEL
    written = sdk.messages.create(**bare)
    assert written.usage.cache_creation_input_tokens == tokens(BIG_SYSTEM)
    with_format = sdk.messages.create(**params(system=cached_system()))
    assert with_format.usage.cache_read_input_tokens == 0 and with_format.usage.cache_creation_input_tokens > 0
    assert sdk.messages.create(**params(system=cached_system())).usage.cache_read_input_tokens > 0
    other = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
             "additionalProperties": False}
    other_format = sdk.messages.create(**params(system=cached_system(),
                                                output_config={"format": {"type": "json_schema", "schema": other}}))
    assert other_format.usage.cache_read_input_tokens == 0
    # A pre-warm may not carry the format, so it warms only format-less calls.
    emu.reset()
    sdk.messages.create(**{**bare, "max_tokens": 0})
    assert sdk.messages.create(**params(system=cached_system())).usage.cache_read_input_tokens == 0
    assert sdk.messages.create(**bare).usage.cache_read_input_tokens == tokens(BIG_SYSTEM)


def test_effort_and_tool_choice_invalidate_the_messages_not_the_system(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    turn = [{"role": "user", "content": [{"type": "text", "text": "Q" * 6000, "cache_control": {"type": "ephemeral"}}]}]
    first = sdk.messages.create(**params(system=cached_system(), messages=turn))
    prefix = first.usage.cache_creation_input_tokens - tokens("Q" * 6000)
    changed = sdk.messages.create(**params(system=cached_system(), messages=turn,
                                           output_config={**OUTPUT_CONFIG, "effort": "low"}))
    assert changed.usage.cache_read_input_tokens == prefix
    assert changed.usage.cache_creation_input_tokens == tokens("Q" * 6000)
    same = sdk.messages.create(**params(system=cached_system(), messages=turn))
    assert same.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_read_looks_back_twenty_positions(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    sdk.messages.create(**params(system=cached_system()))  # entry at the system block
    system = [{"type": "text", "text": BIG_SYSTEM}]

    def blocks(n: int, word: str) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = [{"type": "text", "text": f"{word} {i}"} for i in range(n)]
        out[-1]["cache_control"] = {"type": "ephemeral"}
        return out

    near = sdk.messages.create(**params(system=system, messages=[{"role": "user", "content": blocks(19, "near")}]))
    assert near.usage.cache_read_input_tokens == tokens(json.dumps(SCHEMA, sort_keys=True, separators=(",", ":"))) \
        + tokens(BIG_SYSTEM)  # the system block is the 20th position back from the breakpoint
    far = sdk.messages.create(**params(system=system, messages=[{"role": "user", "content": blocks(20, "far")}]))
    assert far.usage.cache_read_input_tokens == 0


def test_entry_is_readable_once_the_writing_response_begins(emu: AnthropicEmulator) -> None:
    emu.latency = 1.0
    emu.prefill_factor = 0.2
    results: Dict[str, anthropic.types.Message] = {}
    first = threading.Thread(target=lambda: results.update(
        first=client(emu).messages.create(**params(system=cached_system()))))
    first.start()
    time.sleep(0.5)  # begun (0.2 s), not finished (1.0 s)
    second = client(emu).messages.create(**params(system=cached_system(),
                                                  messages=[{"role": "user", "content": "other file"}]))
    first.join()
    assert results["first"].usage.cache_creation_input_tokens > 0
    assert second.usage.cache_read_input_tokens == results["first"].usage.cache_creation_input_tokens
    a, b = emu.message_requests()
    assert a.started < a.began < b.started < a.finished


def test_stream_sends_message_start_when_the_response_begins(emu: AnthropicEmulator) -> None:
    emu.latency = 0.6
    emu.prefill_factor = 0.5
    answer = {"findings": [{"line": 3, "title": "streamed " * 20}]}
    emu.responder = lambda body: answer
    sdk = client(emu)
    with sdk.messages.stream(**params(system=cached_system())) as stream:
        # The headers are here; the response has not begun: a request now pays the write too.
        early = client(emu).messages.create(**params(system=cached_system(),
                                                     messages=[{"role": "user", "content": "early"}]))
        events = iter(stream)
        start = next(e for e in events if e.type == "message_start")
        assert start.message.usage.cache_creation_input_tokens > 0  # counters in message_start (§9)
        later = client(emu).messages.create(**params(system=cached_system(),
                                                      messages=[{"role": "user", "content": "later"}]))
        final = stream.get_final_message()
    assert early.usage.cache_read_input_tokens == 0 and early.usage.cache_creation_input_tokens > 0
    assert later.usage.cache_read_input_tokens == start.message.usage.cache_creation_input_tokens
    assert json.loads(final.content[0].text) == answer and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == tokens(json.dumps(answer))
    assert final.usage.cache_creation_input_tokens == start.message.usage.cache_creation_input_tokens
    streamed = next(r for r in emu.message_requests() if r.body.get("stream"))
    assert streamed.started < streamed.began < streamed.finished


def test_stream_carries_refusals_and_async_clients(emu: AnthropicEmulator) -> None:
    emu.responder = lambda body: Refusal("no", category="cyber")

    async def main() -> anthropic.types.Message:
        sdk = aclient(emu)
        try:
            async with sdk.messages.stream(**params()) as stream:
                return await stream.get_final_message()
        finally:
            await sdk.close()

    refused = asyncio.run(main())
    assert refused.stop_reason == "refusal" and refused.stop_details.category == "cyber"
    emu.responder = lambda body: {"findings": []}
    emu.enqueue_fault(Fault(529, retry_after=0.01), count=1)  # an error before the stream: retried by the SDK
    with client(emu, max_retries=1).messages.stream(**params()) as stream:
        assert json.loads(stream.get_final_text()) == {"findings": []}
    assert [r.status for r in emu.requests] == [200, 529, 200]


def test_error_event_mid_stream(emu: AnthropicEmulator) -> None:
    emu.responder = lambda body: MidStream(Fault(529))
    sdk = client(emu, max_retries=2)
    with pytest.raises(anthropic.APIStatusError) as info:
        with sdk.messages.stream(**params(system=cached_system())) as stream:
            stream.get_final_message()
    assert info.value.body["error"]["type"] == "overloaded_error"
    assert [r.status for r in emu.requests] == [200]  # after a 200 the SDK retries nothing (§5)
    assert emu.cache_entries() == 1  # the response had begun: its entry was written
    with pytest.raises(anthropic.APIStatusError) as info:  # unstreamed: the fault itself
        client(emu).messages.create(**params())
    assert info.value.status_code == 529


# --------------------------------------------------------------------------- tool use (spec §10, issue 12)

READ_FILE: Dict[str, Any] = {
    "name": "read_file", "description": "Read a file of the reviewed commit.", "strict": True,
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"],
                     "additionalProperties": False},
}
GREP: Dict[str, Any] = {
    "name": "grep", "description": "Search the tree.",
    "input_schema": {"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]},
}
FILES = {"app.py": "def total(xs):\n    return sum(xs)\n", "util.py": "from app import total\n"}


def tool_params(**overrides: Any) -> Dict[str, Any]:
    """A per-file-like call with tools on Opus 5 (notes come back as text there)."""
    return params(model="claude-opus-5", tools=[READ_FILE, GREP], **overrides)


def two_rounds(body: Dict[str, Any]) -> Any:
    """Round 1 reads app.py and greps; round 2 answers with what the results said."""
    last = body["messages"][-1]["content"]
    if len(body["messages"]) == 1:
        return ToolCalls([("read_file", {"path": "app.py"}), ("grep", {"pattern": "total("})], thinking="Reading.")
    results = [b["content"] for b in last if b["type"] == "tool_result"]
    return {"findings": [{"line": 1, "title": f"saw {len(results)} results: {results[0].splitlines()[0]}"}]}


def run_loop(sdk: anthropic.Anthropic, body: Dict[str, Any], rounds: int = 5) -> Tuple[List[Any], List[Dict[str, Any]]]:
    """The client side of a tool loop: the assistant turn appended as returned, then one user
    message with a tool_result per tool_use. Returns the responses and the final messages."""
    messages = list(body["messages"])
    responses = []
    for _ in range(rounds):
        message = sdk.messages.create(**{**body, "messages": messages})
        responses.append(message)
        if message.stop_reason != "tool_use":
            break
        results = [{"type": "tool_result", "tool_use_id": b.id,
                    "content": FILES.get(b.input.get("path", ""), "util.py:1: from app import total")}
                   for b in message.content if b.type == "tool_use"]
        messages += [{"role": "assistant", "content": message.content}, {"role": "user", "content": results}]
    return responses, messages


def test_two_round_tool_loop_end_to_end(emu: AnthropicEmulator) -> None:
    emu.responder = two_rounds
    responses, messages = run_loop(client(emu), tool_params())
    first, final = responses
    assert first.stop_reason == "tool_use" and final.stop_reason == "end_turn"
    assert [b.type for b in first.content] == ["thinking", "tool_use", "tool_use"]  # no text under a format
    assert first.content[0].thinking == "Reading." and first.content[0].signature
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("read_file", {"path": "app.py"}), ("grep", {"pattern": "total("})]
    assert all(c.id.startswith("toolu_") for c in calls) and calls[0].id != calls[1].id
    assert json.loads(final.content[0].text) == {"findings": [{"line": 1, "title": "saw 2 results: def total(xs):"}]}
    second = emu.message_requests()[1].body
    assert [b["tool_use_id"] for b in second["messages"][2]["content"]] == [c.id for c in calls]
    # Every turn bills its whole input: the second includes the first turn and the results.
    assert final.usage.input_tokens > first.usage.input_tokens
    assert final.usage.input_tokens == client(emu).messages.count_tokens(
        model="claude-opus-5", tools=[READ_FILE, GREP], messages=messages, output_config=OUTPUT_CONFIG).input_tokens
    assert first.usage.output_tokens == tokens("Reading.") + tokens('{"path":"app.py"}') + tokens('{"pattern":"total("}')


def test_tool_loop_async_and_streamed_inputs_are_rebuilt(emu: AnthropicEmulator) -> None:
    big = {"path": "src/" + "deep/" * 30 + "module.py", "note": "ünïcode ✓"}
    schema_tool = {**GREP, "name": "open", "input_schema": {"type": "object"}}
    emu.responder = lambda body: (ToolCalls([("open", big), ("grep", {"pattern": "x"})], text="Opening.")
                                  if len(body["messages"]) == 1 else {"findings": []})
    body = params(model="claude-opus-5", tools=[schema_tool, GREP])
    del body["output_config"]  # a text note in a tool turn: only without a format
    with client(emu).messages.stream(**body) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.type, getattr(b, "input", None)) for b in final.content] == [
        ("text", None), ("tool_use", big), ("tool_use", {"pattern": "x"})]
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert starts[1].type == "tool_use" and starts[1].input == {}  # input arrives as input_json_delta
    pieces = [e.delta.partial_json for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert len(pieces) >= 4 and json.loads("".join(pieces[:3])) == big

    async def main() -> List[anthropic.types.Message]:
        sdk = aclient(emu)
        try:
            turn = await sdk.messages.create(**body)
            async with sdk.messages.stream(**body) as streamed:
                again = await streamed.get_final_message()
            results = [{"type": "tool_result", "tool_use_id": b.id, "content": "ok"}
                       for b in again.content if b.type == "tool_use"]
            done = await sdk.messages.create(**{**body, "messages": body["messages"] + [
                {"role": "assistant", "content": again.content}, {"role": "user", "content": results}]})
            return [turn, again, done]
        finally:
            await sdk.close()

    turn, again, done = asyncio.run(main())
    assert turn.content[1].input == again.content[1].input == big
    assert done.stop_reason == "end_turn"


def test_notes_between_tool_calls_are_thinking_blocks_on_the_5_5_models(emu: AnthropicEmulator) -> None:
    emu.responder = lambda body: ToolCalls([("read_file", {"path": "app.py"})], text="Checking app.py.",
                                           thinking="First, the caller.")
    sdk = client(emu)
    for model in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-fable-5-1"):
        message = sdk.messages.create(**params(model=model, tools=[READ_FILE]))
        assert [b.type for b in message.content] == ["thinking", "thinking", "tool_use"]
        assert [b.thinking for b in message.content[:2]] == ["", ""]  # default display: omitted
        assert all(len(b.signature) > 40 for b in message.content[:2])
    shown = sdk.messages.create(**params(model="claude-opus-5-5", tools=[READ_FILE],
                                         thinking={"type": "adaptive", "display": "summarized"}))
    assert [b.thinking for b in shown.content[:2]] == ["First, the caller.", "Checking app.py."]
    with sdk.messages.stream(**params(model="claude-opus-5-5", tools=[READ_FILE],
                                      thinking={"type": "adaptive", "display": "summarized"})) as stream:
        streamed = stream.get_final_message()
    assert [b.thinking for b in streamed.content[:2]] == ["First, the caller.", "Checking app.py."]
    assert streamed.content[0].signature and streamed.content[0].signature != shown.content[0].signature
    # Models without the change: thinking blocks only for scripted thinking, the note is text.
    older = params(model="claude-opus-5", tools=[READ_FILE])
    without_format = {k: v for k, v in older.items() if k != "output_config"}
    assert [b.type for b in sdk.messages.create(**without_format).content] == ["thinking", "text", "tool_use"]
    with pytest.raises(anthropic.InternalServerError):  # a text note in a tool turn under a format
        sdk.messages.create(**older)
    assert len(emu.errors) == 1 and isinstance(emu.errors[0], ImpossibleAnswer)


@pytest.mark.parametrize("tools, extra, needle", [
    ([{**GREP, "name": "read.file"}], {}, "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ([{**GREP, "name": "x" * 65}], {}, "tools.0.custom.name: String should match pattern"),
    ([READ_FILE, {"name": "grep"}], {}, "tools.1.custom.input_schema: Field required"),
    ([{**GREP, "input_schema": {"type": "array"}}], {}, "tools.0.custom.input_schema.type: Input should be 'object'"),
    ([GREP, {**READ_FILE, "name": "grep"}], {}, "tools: Tool names must be unique."),
    ([{**GREP, "strict": True}], {}, "tools.0.custom.input_schema: For 'object' type, 'additionalProperties' must be "
                                     "explicitly set to false"),
    ([{**READ_FILE, "input_schema": {**READ_FILE["input_schema"], "properties": {
        "path": {"type": "string", "maxLength": 9}}}}], {}, "property 'maxLength' is not supported"),
    ([{**GREP, "parallel": False}], {}, "tools.0.custom.parallel: Extra inputs are not permitted"),
    ([{**READ_FILE, "name": f"t{i}"} for i in range(21)], {}, "at most 20"),
    ([GREP], {"tool_choice": {"type": "tool", "name": "read_file"}}, "tool 'read_file' not found in tools"),
    ([GREP], {"tool_choice": {"type": "sometimes"}}, "tool_choice.type: Input should be"),
    ([GREP], {"tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}},
     "tool_choice.auto.disable_parallel_tool_use: Input should be a valid boolean"),
    ([GREP], {"tool_choice": {"type": "none", "disable_parallel_tool_use": True}}, "Extra inputs are not permitted"),
    ([GREP], {"extra_body": {"disable_parallel_tool_use": True}}, "disable_parallel_tool_use: Extra inputs"),
], ids=["name-dot", "name-65", "no-input_schema", "schema-not-object", "duplicate", "strict-subset",
        "strict-keyword", "extra-field", "21-strict", "choice-unknown-tool", "choice-type", "choice-parallel-type",
        "choice-none-parallel", "parallel-top-level"])
def test_tool_definitions_and_tool_choice_are_validated(emu: AnthropicEmulator, tools: List[Dict[str, Any]],
                                                         extra: Dict[str, Any], needle: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client(emu, max_retries=2).messages.create(**params(model="claude-opus-5", tools=tools, **extra))
    assert_refused(info, needle)
    assert len(emu.requests) == 1


@pytest.mark.parametrize("answer, extra, needle", [
    (ToolCalls([("write_file", {"path": "a"})]), {}, "not among tools"),
    (ToolCalls([("grep", {"pattern": "a"})]), {"tool_choice": {"type": "none"}}, "must answer with text"),
    (ToolCalls([("grep", {"pattern": "a"}), ("grep", {"pattern": "b"})]),
     {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, "at most one call"),
    (ToolCalls([("read_file", {"path": 3})]), {}, "strict tool 'read_file': input.path"),
    (ToolCalls([("read_file", {"path": "a", "mode": "r"})]), {}, "unexpected property 'mode'"),
    (ToolCalls([("grep", {"pattern": "a"})], text="Looking."), {"output_config": OUTPUT_CONFIG}, "carries no text"),
    (ToolCalls([("grep", {"pattern": "a"})]), {"tool_choice": {"type": "tool", "name": "read_file"}}, "forces"),
    (ToolCalls([("grep", {"pattern": "a"})], text="First."), {"tool_choice": {"type": "any"}}, "no text before"),
    ({"findings": []}, {"tool_choice": {"type": "any"}}, "forces a tool call"),
    (ToolCalls([]), {}, "without calls"),
], ids=["unknown-tool", "choice-none", "parallel-off", "strict-type", "strict-extra", "text-under-format",
        "other-than-forced", "text-before-forced", "text-when-forced", "no-calls"])
def test_a_responder_scripting_an_impossible_turn_is_an_emulator_error(
        emu: AnthropicEmulator, answer: Any, extra: Dict[str, Any], needle: str) -> None:
    emu.responder = lambda body: answer
    body = params(model="claude-opus-5", tools=[READ_FILE, GREP])
    del body["output_config"]
    with pytest.raises(anthropic.InternalServerError):
        client(emu, max_retries=2).messages.create(**{**body, **extra})
    assert len(emu.requests) == 1  # x-should-retry: false
    [error] = emu.errors
    assert isinstance(error, ImpossibleAnswer) and needle in str(error)


def test_tool_choice_none_answers_with_text(emu: AnthropicEmulator) -> None:
    emu.responder = lambda body: {"findings": []}
    message = client(emu).messages.create(**tool_params(tool_choice={"type": "none"}))
    assert message.stop_reason == "end_turn" and [b.type for b in message.content] == ["text"]


def test_output_format_binds_only_the_final_answer(emu: AnthropicEmulator) -> None:
    """§10: under output_config.format a tool turn carries thinking and calls, no text; the
    end_turn answer is the JSON; the SDK's parse() gives parsed_output=None on the tool turn."""
    from pydantic import BaseModel

    class Answer(BaseModel):
        findings: List[Dict[str, Any]]

    emu.responder = lambda body: (ToolCalls([("grep", {"pattern": "total("})], thinking="Who calls it?")
                                  if len(body["messages"]) == 1 else {"findings": []})
    sdk = client(emu)
    body = dict(model="claude-opus-5", max_tokens=1000, tools=[GREP],
                messages=[{"role": "user", "content": "Review."}])
    turn = sdk.messages.parse(output_format=Answer, **body)
    assert turn.stop_reason == "tool_use" and turn.parsed_output is None
    assert [b.type for b in turn.content] == ["thinking", "tool_use"]
    messages = body["messages"] + [{"role": "assistant", "content": turn.content}, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": turn.content[1].id, "content": "util.py:1: total(x)"}]}]
    final = sdk.messages.parse(output_format=Answer, **{**body, "messages": messages})
    assert final.stop_reason == "end_turn" and final.parsed_output == Answer(findings=[])


def test_thinking_blocks_are_replayed_unchanged_and_bound_to_their_prefix(emu: AnthropicEmulator) -> None:
    emu.responder = lambda body: (ToolCalls([("read_file", {"path": "app.py"})], text="Reading.")
                                  if len(body["messages"]) in (1, 3) else {"findings": []})
    sdk = client(emu, max_retries=2)
    system = [{"type": "text", "text": "You review code."}]
    body = params(model="claude-opus-5-5", system=system, tools=[READ_FILE])
    turn = sdk.messages.create(**body)
    thinking, call = turn.content
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "x = 1"}]}
    # An SDK model_dump() (null fields included) is the same block to the API.
    history = body["messages"] + [{"role": "assistant", "content": [b.model_dump() for b in turn.content]}, result]
    turn2 = sdk.messages.create(**{**body, "messages": history})  # unchanged: fine
    history2 = history + [{"role": "assistant", "content": turn2.content}, {
        "role": "user", "content": [{"type": "tool_result", "tool_use_id": turn2.content[1].id, "content": "y"}]}]
    assert sdk.messages.create(**{**body, "messages": history2}).stop_reason == "end_turn"

    def refused(needle: str, **changes: Any) -> None:
        with pytest.raises(anthropic.BadRequestError) as info:
            sdk.messages.create(**{**body, "messages": history, **changes})
        assert_refused(info, needle)

    bound = ("messages.1.content.0: Invalid `signature` in `thinking` block. The block is bound to a different "
             "conversation. Remove the block, or set `thinking.block_binding.prefix_mismatch_behavior` to \"drop_block\".")
    refused(bound, system=[{"type": "text", "text": "You review code. Today is Monday."}])
    refused(bound, tools=[READ_FILE, GREP])
    edited = [{"role": "user", "content": "Review this diff, please."}] + history[1:]
    refused(bound, messages=edited)
    dropped = history2[:1] + [{"role": "assistant", "content": [turn.content[1]]}] + history2[2:]
    refused("messages.3.content.0: Invalid `signature` in `thinking` block. The block is bound", messages=dropped)
    modified = {"type": "thinking", "thinking": "I made this up.", "signature": thinking.signature}
    refused("messages.1.content.0: Invalid `signature` in `thinking` block",
            messages=history[:1] + [{"role": "assistant", "content": [modified, call]}] + history[2:])
    forged = {"type": "thinking", "thinking": "", "signature": "Zm9yZ2Vk"}
    refused("Invalid `signature`", messages=history[:1] + [{"role": "assistant", "content": [forged, call]}] + history[2:])
    # cache_control is not part of the prefix; drop_block lets an edited history through.
    marked = [{**system[0], "cache_control": {"type": "ephemeral"}}]
    assert sdk.messages.create(**{**body, "messages": history, "system": marked}).content
    assert sdk.messages.create(**{**body, "messages": edited, "thinking": {
        "type": "adaptive", "block_binding": {"prefix_mismatch_behavior": "drop_block"}}}).content
    # Without the prefix check (Opus 5) an edit is fine; a modified block is not.
    older = params(model="claude-opus-5", system=system, tools=[READ_FILE])
    emu.responder = lambda body: (ToolCalls([("read_file", {"path": "a"})], thinking="Hm.")
                                  if len(body["messages"]) == 1 else {"findings": []})
    turn = sdk.messages.create(**older)
    history = older["messages"] + [{"role": "assistant", "content": turn.content}, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": turn.content[1].id, "content": "x"}]}]
    assert sdk.messages.create(**{**older, "messages": history, "system": "Another system."}).content
    changed = [{**turn.content[0].model_dump(), "thinking": "Hmm."}, turn.content[1]]
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.messages.create(**{**older, "messages": history[:1] + [{"role": "assistant", "content": changed}] + history[2:]})
    assert_refused(info, "Invalid `signature` in `thinking` block")


def test_tool_loop_cache_with_automatic_breakpoint(emu: AnthropicEmulator) -> None:
    """§3/§10: with top-level cache_control each round reads the earlier turns and writes the new one;
    many parallel calls are one position each side, so the read is within the 20-position lookback."""
    calls = [("grep", {"pattern": f"name{i}"}) for i in range(25)]
    emu.responder = lambda body: ToolCalls(calls) if len(body["messages"]) < 5 else {"findings": []}
    body = tool_params(system=[{"type": "text", "text": BIG_SYSTEM}], cache_control={"type": "ephemeral"})
    responses, _ = run_loop(client(emu), body)
    assert [r.stop_reason for r in responses] == ["tool_use", "tool_use", "end_turn"]
    first, second, third = (r.usage for r in responses)
    assert first.cache_read_input_tokens == 0 and first.cache_creation_input_tokens > 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert third.cache_read_input_tokens == second.cache_read_input_tokens + second.cache_creation_input_tokens
    for usage in (second, third):  # the new turn (assistant calls + results) is written, nothing re-billed
        assert usage.cache_creation_input_tokens > 0 and usage.input_tokens == 0


def test_tool_definition_change_misses_everything_tool_choice_change_misses_the_messages(emu: AnthropicEmulator) -> None:
    sdk = client(emu)
    cached_tools = [READ_FILE, {**GREP, "cache_control": {"type": "ephemeral"}}]
    turn = [{"role": "user", "content": [{"type": "text", "text": "Q" * 6000, "cache_control": {"type": "ephemeral"}}]}]
    body = params(model="claude-opus-5", tools=cached_tools, system=cached_system(), messages=turn)
    first = sdk.messages.create(**body)
    assert first.usage.cache_creation_input_tokens == first.usage.input_tokens + first.usage.cache_creation_input_tokens
    everything = first.usage.cache_creation_input_tokens
    again = sdk.messages.create(**body)
    assert again.usage.cache_read_input_tokens == everything
    choice = sdk.messages.create(**{**body, "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}})
    assert choice.usage.cache_read_input_tokens == everything - tokens("Q" * 6000)  # tools + system read
    assert choice.usage.cache_creation_input_tokens == tokens("Q" * 6000)
    renamed = [READ_FILE, {**cached_tools[1], "description": "Search the tree (regex)."}]
    changed = sdk.messages.create(**{**body, "tools": renamed})
    assert changed.usage.cache_read_input_tokens == 0 and changed.usage.cache_creation_input_tokens > 0


def test_a_batch_can_return_tool_use(emu: AnthropicEmulator) -> None:
    emu.responder = lambda body: ToolCalls([("read_file", {"path": "app.py"})], thinking="Look first.")
    sdk = client(emu)
    created = sdk.messages.batches.create(requests=[
        {"custom_id": "calls", "params": params(model="claude-opus-5-5", tools=[READ_FILE])},
        {"custom_id": "impossible", "params": params(model="claude-opus-5", tools=[GREP])},
    ])
    wait_ended(sdk, created.id)
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(created.id)}
    message = results["calls"].message
    assert message.stop_reason == "tool_use" and [b.type for b in message.content] == ["thinking", "tool_use"]
    assert message.content[1].input == {"path": "app.py"} and message.content[0].signature
    assert results["impossible"].type == "errored" and isinstance(emu.errors[0], ImpossibleAnswer)


def test_scripted_model_plays_a_tool_loop_per_file(emu: AnthropicEmulator) -> None:
    from tests.model_script import ScriptedModel, Turns, assistant_turns, tool_results, tool_uses

    seen: List[Tuple[int, List[str]]] = []
    answer = {"findings": [{"line": 1, "title": "total() takes a list"}]}
    model = ScriptedModel(per_file={"util.py": Turns(
        ToolCalls([("read_file", {"path": "app.py"})]),
        answer,
    )})

    def responder(body: Dict[str, Any]) -> Any:
        seen.append((assistant_turns(body), tool_results(body)))
        return model(body)

    emu.responder = responder
    task = "Review one file of a change.\nFile: util.py\n@@ -0,0 +1 @@\n+from app import total"
    responses, _ = run_loop(client(emu), tool_params(messages=[{"role": "user", "content": task}]))
    assert [r.stop_reason for r in responses] == ["tool_use", "end_turn"]
    assert json.loads(responses[-1].content[0].text) == answer
    assert seen == [(0, []), (1, [FILES["app.py"]])]
    assert model.attempts == {"util.py": 1} and model.returned == 1
    assert [u["name"] for u in tool_uses(emu.message_requests()[-1].body)] == ["read_file"]
