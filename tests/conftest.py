"""Shared fixtures: the emulators run once per test session; each test scripts them.

Tests reach them only through the real SDKs: ANTHROPIC_BASE_URL for `anthropic`,
GITHUB_API_URL for PyGithub. Nothing here patches reviewer's own code.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.emulators.anthropic import AnthropicEmulator
from tests.emulators.github import GitHubEmulator

API_KEY = "test-key"


def _local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # a unix socket path
    try:
        return ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        return address[0] == "localhost"


@pytest.fixture(scope="session", autouse=True)
def only_loopback() -> Iterator[None]:
    """Tests talk to the emulators on 127.0.0.1 and nothing else: any other connection fails the test.

    The SDKs' default endpoints are also pointed at a port nobody listens on,
    so a test that forgets its emulator fails fast instead of reaching out.
    """
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(address: Any) -> None:
        if not _local(address):
            raise ConnectionRefusedError(f"tests may only connect to 127.0.0.1, not {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        guard(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard(address)
        return real_connect_ex(self, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
        mp.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
        yield


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[AnthropicEmulator]:
    emu = AnthropicEmulator(api_keys=(API_KEY,))
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def anthropic_emu(anthropic_server: AnthropicEmulator, monkeypatch: pytest.MonkeyPatch) -> AnthropicEmulator:
    # A request a previous test abandoned (client timeout) may still be sleeping
    # in the server; let it finish so it cannot count towards this test.
    deadline = time.monotonic() + 10
    while anthropic_server.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    anthropic_server.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    return anthropic_server


@pytest.fixture
def no_anthropic(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key and an endpoint nobody listens on: any request would fail loudly."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository with two commits touching three files."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "app.py").write_text("from util import mean\n\n\ndef report(xs):\n    return f'mean={mean(xs)}'\n")
    (root / "util.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
    (root / "README.md").write_text("# demo\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    (root / "app.py").write_text(
        "from util import mean, median\n\n\ndef report(xs):\n    return f'mean={mean(xs)} median={median(xs)}'\n"
    )
    (root / "util.py").write_text(
        "def mean(xs):\n    return sum(xs) / len(xs)\n\n\ndef median(xs):\n    xs = sorted(xs)\n    return xs[len(xs) // 2]\n"
    )
    (root / "poetry.lock").write_text("# lock\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "second")
    return root


@pytest.fixture(scope="session")
def github_server() -> Iterator[GitHubEmulator]:
    gh = GitHubEmulator()
    gh.start()
    yield gh
    gh.stop()


@pytest.fixture
def github_emu(github_server, monkeypatch: pytest.MonkeyPatch):
    """The GitHub emulator with a PAT for `reviewer-bot`; PyGithub's throttles off.

    After the test, the conservation law (tests/conservation.py) is checked on
    every pull request that has a summary comment: no pull-request test ends
    with a finding neither shown nor counted on the pull request.
    """
    yield _github_emu(github_server, monkeypatch)
    from tests.conservation import check_conservation, markers

    for repo, number in sorted(github_server.commented_pulls()):
        # Our identities only: a person may type a marker too (the test of that is elsewhere).
        logins = {c["user"]["login"] for c in github_server.issue_comments(repo, number)
                  if c["user"]["login"] in ("reviewer-bot", "github-actions[bot]")
                  and any(k == "summary" for k, _ in markers(c["body"]))}
        for login in logins:
            check_conservation(github_server, repo, number, login=login)


def _github_emu(github_server, monkeypatch: pytest.MonkeyPatch):
    github_server.reset()
    github_server.add_token("gh-token", kind="pat", login="reviewer-bot")
    monkeypatch.setenv("GITHUB_API_URL", github_server.base_url)
    monkeypatch.setenv("GITHUB_TOKEN", "gh-token")
    monkeypatch.setenv("REVIEWER_GITHUB_THROTTLE", "0")
    monkeypatch.setenv("REVIEWER_GITHUB_WRITE_THROTTLE", "0")
    monkeypatch.setenv("REVIEWER_GITHUB_SECONDARY_WAIT", "0")
    monkeypatch.setenv("REVIEWER_GITHUB_RETRY_WAIT", "0.01")
    monkeypatch.setenv("REVIEWER_GITHUB_BACKOFF", "0")
    for name in ("GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_REPOSITORY", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "RUNNER_TEMP"):
        monkeypatch.delenv(name, raising=False)
    return github_server
