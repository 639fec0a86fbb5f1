"""Keep secrets out of everything reviewer writes.

Code under review can ask the model to print the environment; the model never
sees it, but a finding could still quote a token that sits in the diff, and
error texts can echo headers. Every text that leaves reviewer (findings, notes,
errors, reports, comments, the step summary, the audit's webhook) passes
through `redact` (or `redact_document` for a whole rendered report).

Two rules, both applied to the text as a reader sees it, that is after the
invisible characters (zero-width space, joiners, word joiner, BOM, soft
hyphen, bidirectional controls, tag characters) are taken out, so a key with a
U+200B inside is still a key (issue 11, item 7). The replacement covers the
original characters, invisible ones included; text that is not a secret keeps
its invisible characters (`publish.safe` relies on U+200B to defuse mentions).

- By value: the value of every environment variable whose name contains
  PASS, PWD, SECRET, TOKEN, KEY or CREDENTIAL (any case; `PWD` and `OLDPWD`,
  the shell's working directory, are not secrets), and the credentials of
  every `scheme://user:password@host` URL anywhere in the environment. Each
  value is also looked for hex-encoded, URL-encoded and base64-encoded
  (standard and URL-safe alphabets, padded or not, and at the three byte
  alignments, so the value inside a longer base64 blob such as a Basic auth
  header is found; the whole blob is redacted).
  A value shorter than `MIN_SECRET_LENGTH` (8) characters, or made only of
  letters or only of digits and shorter than `MIN_PLAIN_LENGTH` (12), is not
  looked for: `PGPASSWORD=postgres` or `API_KEY_ROTATION=1` would otherwise
  shred ordinary words and numbers out of every report.
- By shape: token formats recognised by detect-secrets' detectors (`_DETECTORS`),
  run in-process through their plugin classes, plus two detect-secrets lacks.
  Its entropy detectors stay off: a review is full of git SHAs, fingerprints
  and hashes that must survive.

The environment is read once and its needles computed once; they are computed
again only when the environment changes (one dict comparison per call).
"""

from __future__ import annotations

import base64
import bisect
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

REDACTED = "[redacted]"

MIN_SECRET_LENGTH = 8
"""Environment values shorter than this are not redacted: they are not secrets worth the damage."""

MIN_PLAIN_LENGTH = 12
"""...and values of letters only or digits only need this many (`changeme`, `postgres`, `86400000`)."""

_SECRET_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL", re.I)
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})
# userinfo runs to the last `@` before the host: passwords often hold a raw `@`.
_CREDENTIAL_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://([^\s/?#:@]*):([^\s/?#]*)@")

# Characters a reader does not see: soft hyphen, combining grapheme joiner,
# Arabic letter mark, Hangul fillers, Mongolian vowel separator, zero-width
# space/non-joiner/joiner, LRM/RLM, bidi embeddings, overrides and isolates,
# word joiner and invisible operators, variation selectors, BOM, tag characters.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]+"
)
_BASE64_CHAR = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_BASE64_TAIL = re.compile(r"[A-Za-z0-9+/_\-]*=*")


# ---------------------------------------------------------------------- by shape


def _detectors() -> tuple[Any, ...]:
    """detect-secrets' detectors that recognise a token by its own shape, instantiated once.

    Chosen: AWS access keys, Azure storage keys, credentials in URLs (Basic
    auth), Discord, GitHub, GitLab, JWT, Mailchimp, npm, OpenAI, private keys,
    PyPI, SendGrid, Slack (tokens and webhook URLs), Square, Stripe, Telegram,
    Twilio. Left out: the high-entropy detectors (a git SHA or a fingerprint
    like `0123456789abcdef` is not a secret), KeywordDetector (it flags any
    quoted value after `password =`, which review text quotes all the time, and
    our own secrets are caught by value anyway), Artifactory (matches code
    identifiers such as `APDUHandler`), public IP addresses (not secrets), and
    the IBM/Cloudant/SoftLayer keyword heuristics (`key = <44 characters>`).
    """
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    class AnthropicKeyDetector(RegexBasedDetector):
        """Anthropic API and admin keys (`sk-ant-api03-…`, `sk-ant-admin01-…`).

        NOTE: detect-secrets has no Anthropic detector (checked: 1.5.0 and its
        repository's plugins), so this one is ours, in the library's plugin form.
        """

        secret_type = "Anthropic API Key"
        denylist = (re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),)

    class GitHubFineGrainedTokenDetector(RegexBasedDetector):
        """GitHub fine-grained personal access tokens (`github_pat_…`).

        NOTE: detect-secrets' GitHubTokenDetector (1.5.0) knows only the
        `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` prefixes.
        """

        secret_type = "GitHub Fine-grained Token"
        denylist = (re.compile(r"github_pat_[A-Za-z0-9_]{22,}"),)

    classes = (
        AWSKeyDetector, AzureStorageKeyDetector, BasicAuthDetector, DiscordBotTokenDetector, GitHubTokenDetector,
        GitLabTokenDetector, JwtTokenDetector, MailchimpDetector, NpmDetector, OpenAIDetector, PrivateKeyDetector,
        PypiTokenDetector, SendGridDetector, SlackDetector, SquareOAuthDetector, StripeDetector,
        TelegramBotTokenDetector, TwilioKeyDetector, AnthropicKeyDetector, GitHubFineGrainedTokenDetector,
    )
    return tuple(cls() for cls in classes)


_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-]*")
# A JWT's signature follows its payload; detect-secrets' pattern stops before it.
_JWT_TAIL = re.compile(r"[A-Za-z0-9_\-+/=]*(?:\.[A-Za-z0-9_\-+/=]+)?")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*-----|---- END SSH2 ENCRYPTED PRIVATE KEY ----")
# What may sit between a PEM header and its END line: base64, header fields,
# and the quoting of a Markdown quote, a comment or a string with `\n` escapes.
_PEM_BODY = re.compile(r"[\sA-Za-z0-9+/=:,.\-|>*#\"'\\]*")
_PEM_LINES = re.compile(r"[^\n]*(?:\n[ \t>|*#/]*[A-Za-z0-9+/=]{16,}[ \t]*)*")


def _tail_of(secret_type: str) -> Callable[[str, int], int]:
    """Where a match of this type really ends: a token's last character, not the pattern's."""
    if secret_type == "Private Key":
        return _private_key_end
    tail = _JWT_TAIL if secret_type == "JSON Web Token" else _TOKEN_TAIL
    return lambda text, end: tail.match(text, end).end()  # type: ignore[union-attr]


def _private_key_end(text: str, end: int) -> int:
    """The end of the PEM block whose header ends at `end`: detect-secrets matches the header only."""
    close = _PEM_END.search(text, end)
    if close is not None and _PEM_BODY.fullmatch(text, end, close.start()):
        return close.end()
    return _PEM_LINES.match(text, end).end()  # type: ignore[union-attr]


_detectors_lock = threading.Lock()
_detector_cache: tuple[Any, ...] | None = None


def _loaded_detectors() -> tuple[Any, ...]:
    global _detector_cache
    if _detector_cache is None:
        with _detectors_lock:
            if _detector_cache is None:
                _detector_cache = _detectors()
    return _detector_cache


def _shape_spans(text: str) -> list[tuple[int, int]]:
    """Where the detectors find a token in `text`.

    `RegexBasedDetector.analyze_string` yields the secret of each denylist
    match (its groups when the pattern has groups, else the whole match) but
    not where it is, and looking a yielded value up again would also hit its
    unrelated occurrences (a one-letter password in a URL). So the same
    denylist is run with positions, with the same group rule.
    """
    spans = []
    for detector in _loaded_detectors():
        tail = _tail_of(detector.secret_type)
        for pattern in detector.denylist:
            for m in pattern.finditer(text):
                groups = [g for g in range(1, (pattern.groups or 0) + 1) if m.group(g)] or [0]
                for g in groups:
                    start, end = m.span(g)
                    end = tail(text, end)
                    spans.append((start, end))
    return spans


# ---------------------------------------------------------------------- by value


@dataclass(frozen=True)
class _Needles:
    literal: tuple[str, ...]
    """Secret values and their hex and URL-encoded forms, longest first."""
    base64: tuple[str, ...]
    """The characters of each value's base64 forms that do not depend on its neighbours."""


def _worth_redacting(value: str) -> bool:
    if len(value) < MIN_SECRET_LENGTH:
        return False
    return not ((value.isalpha() or value.isdigit()) and len(value) < MIN_PLAIN_LENGTH)


def secret_values(environ: Iterable[tuple[str, str]]) -> set[str]:
    """The values in `environ` that are secrets (see the module docstring), before encoding."""
    values: set[str] = set()
    for name, value in environ:
        candidates = []
        if _SECRET_NAME.search(name) and name.upper() not in _NOT_SECRET_NAMES:
            candidates.append(value.strip())
        for m in _CREDENTIAL_URL.finditer(value):
            user, password = m.group(1), m.group(2)
            if not password:
                continue
            # The whole value carries a credential; so do `user:password` and the password alone.
            candidates += [value.strip(), f"{user}:{password}", password, urllib.parse.unquote(password)]
        values.update(v for v in candidates if _worth_redacting(v))
    return values


def _base64_cores(data: bytes) -> set[str]:
    """The base64 characters that encode only `data`, at each of the three byte offsets it may start at.

    With k bytes before it, `data` starts at bit 8k: the characters from
    ceil(8k/6) up to floor(8(k+n)/6) hold its bits and nothing else, whatever
    surrounds it (padding included).
    """
    cores = set()
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + data).decode("ascii")
        core = encoded[-(-8 * k // 6): 8 * (k + len(data)) // 6]
        cores.add(core)
        cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def _needles(values: Iterable[str]) -> _Needles:
    literal: set[str] = set()
    cores: set[str] = set()
    for value in values:
        data = value.encode("utf-8")
        literal.add(value)
        literal.update((data.hex(), data.hex().upper()))
        for encoded in (urllib.parse.quote(value, safe=""), urllib.parse.quote(value), urllib.parse.quote_plus(value)):
            literal.add(encoded)
            literal.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
        cores |= _base64_cores(data)
    return _Needles(tuple(sorted(literal, key=len, reverse=True)), tuple(sorted(cores - literal, key=len, reverse=True)))


class _Environment:
    """The environment's needles, computed again only when the environment changed."""

    def __init__(self) -> None:
        self._seen: dict[Any, Any] | None = None
        self._needles = _Needles((), ())
        self._lock = threading.Lock()

    def needles(self) -> _Needles:
        # os.environ._data is the mapping os.environ writes through (CPython);
        # comparing it with a copy is one C-level dict comparison per call.
        data = getattr(os.environ, "_data", None)
        current = data if isinstance(data, dict) else dict(os.environ)
        if current != self._seen:
            with self._lock:
                if current != self._seen:
                    snapshot = dict(current)
                    self._needles = _needles(secret_values(os.environ.items()))
                    self._seen = snapshot
        return self._needles


_ENVIRONMENT = _Environment()


def _find_all(text: str, needle: str) -> Iterable[int]:
    start = text.find(needle)
    while start >= 0:
        yield start
        start = text.find(needle, start + 1)


def _value_spans(text: str, needles: _Needles) -> list[tuple[int, int]]:
    spans = []
    for needle in needles.literal:
        if needle in text:
            spans += [(s, s + len(needle)) for s in _find_all(text, needle)]
    for core in needles.base64:
        if core in text:
            for s in _find_all(text, core):
                # The blob holding the value goes whole: its edge characters carry bits of the secret too.
                start = s
                while start > 0 and text[start - 1] in _BASE64_CHAR:
                    start -= 1
                spans.append((start, _BASE64_TAIL.match(text, s + len(core)).end()))  # type: ignore[union-attr]
    return spans


# ---------------------------------------------------------------------- redaction


def _visible(text: str) -> tuple[str, list[int], list[int]] | None:
    """`text` without invisible characters, and where each kept run starts in both; None when there are none."""
    if _INVISIBLE.search(text) is None:
        return None
    plain_starts, original_starts, parts = [], [], []
    position = length = 0
    for m in _INVISIBLE.finditer(text):
        if m.start() > position:
            plain_starts.append(length)
            original_starts.append(position)
            parts.append(text[position:m.start()])
            length += m.start() - position
        position = m.end()
    if position < len(text):
        plain_starts.append(length)
        original_starts.append(position)
        parts.append(text[position:])
    return "".join(parts), plain_starts, original_starts


def _to_original(index: int, plain_starts: list[int], original_starts: list[int]) -> int:
    run = bisect.bisect_right(plain_starts, index) - 1
    return original_starts[run] + index - plain_starts[run] if run >= 0 else index


def _spans(text: str) -> tuple[list[tuple[int, int]], tuple[str, list[int], list[int]] | None]:
    visible = _visible(text)
    plain = visible[0] if visible else text
    return _value_spans(plain, _ENVIRONMENT.needles()) + _shape_spans(plain), visible


def redact(text: str) -> str:
    """`text` with every secret (see the module docstring) replaced by `REDACTED`.

    Ordinary text, hashes and fingerprints included, comes back unchanged.
    """
    if not text:
        return text
    spans, visible = _spans(text)
    if not spans:
        return text
    if visible:
        _, plain_starts, original_starts = visible
        spans = [(_to_original(s, plain_starts, original_starts), _to_original(e - 1, plain_starts, original_starts) + 1)
                 for s, e in spans]
    out, position = [], 0
    for start, end in sorted(spans):
        if end <= position:
            continue
        if start < position:
            start = position  # overlaps the previous span: already replaced
        else:
            out.append(text[position:start])
            out.append(REDACTED)
        position = end
    out.append(text[position:])
    return "".join(out)


def _strings(value: Any, into: list[str]) -> list[str]:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, list):
        for v in value:
            _strings(v, into)
    elif isinstance(value, dict):
        for k, v in value.items():
            into.append(k)
            _strings(v, into)
    return into


def _redact_value(value: Any, seen: dict[str, str]) -> Any:
    """`value` with every string redacted; `seen` remembers strings already done (a report repeats many)."""
    if isinstance(value, str):
        if value not in seen:
            seen[value] = redact(value)
        return seen[value]
    if isinstance(value, list):
        return [_redact_value(v, seen) for v in value]
    if isinstance(value, dict):
        return {_redact_value(k, seen): _redact_value(v, seen) for k, v in value.items()}
    return value


def redact_document(text: str) -> str:
    """A rendered report with its secrets redacted; a JSON document stays valid JSON.

    JSON (the json and SARIF reports, the webhook's body) is redacted value by
    value and written again with the same indentation and escaping, so a
    replacement never cuts an escape sequence and a secret written as escapes
    (`\\u200b`, `\\"`) is still found. Any other text goes through `redact`.
    """
    if text.lstrip()[:1] not in ("{", "["):
        return redact(text)
    try:
        document = json.loads(text)
    except ValueError:
        return redact(text)
    # One pass over all the strings at once: a report without secrets (the
    # usual case) costs one scan, not one per field.
    if not _spans("\n".join(_strings(document, [])))[0]:
        return text
    cleaned = _redact_value(document, {})
    if cleaned == document:
        return text
    indent = 2 if "\n" in text.strip() else None
    again = json.dumps(cleaned, indent=indent, ensure_ascii=text.isascii())
    return again + text[len(text.rstrip()):]
