"""The suite itself: it talks to the emulators on 127.0.0.1 and to nothing else (see conftest.only_loopback)."""

from __future__ import annotations

import socket

import pytest


def test_the_suite_cannot_reach_anything_but_loopback() -> None:
    with pytest.raises(ConnectionRefusedError, match="only connect to 127.0.0.1"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)  # TEST-NET-3, where a real API host would be


def test_an_sdk_left_on_its_default_endpoint_fails_fast(monkeypatch) -> None:
    import anthropic

    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    sdk = anthropic.Anthropic(api_key="k", max_retries=0, timeout=5)
    with pytest.raises(anthropic.APIConnectionError):
        sdk.messages.create(model="claude-haiku-5-5", max_tokens=1, messages=[{"role": "user", "content": "x"}])
