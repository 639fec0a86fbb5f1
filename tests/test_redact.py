"""Redaction by value and by shape (issue 11, item 7): secrets in disguise, and text that must survive.

The environment is set through `monkeypatch.setenv`, as a CI job would set it;
`redact` is called as every publisher calls it.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse

import pytest

from reviewer.redact import MIN_PLAIN_LENGTH, MIN_SECRET_LENGTH, REDACTED, redact, redact_document

PG = "pg/S3cret+v&lue"
KEY = "sk-ant-api03-" + "Abc9_x-Yz" * 5 + "AA"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("PGPASSWORD", PG)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return monkeypatch


@pytest.mark.parametrize("name", ["PGPASSWORD", "DB_PWD", "mysql_pwd", "APP_SECRET_V2", "SecretKey", "X_TOKEN_FILE_CONTENT",
                                  "DEPLOY_KEYS", "GOOGLE_CREDENTIALS", "PASSPHRASE", "ci_password"])
def test_value_of_every_secret_looking_name_is_redacted(monkeypatch, name) -> None:
    monkeypatch.setenv(name, "v4lue-of-" + name.lower())
    assert redact(f"the log shows v4lue-of-{name.lower()} twice: v4lue-of-{name.lower()}.") == \
        f"the log shows {REDACTED} twice: {REDACTED}."


def test_credentials_of_a_url_anywhere_in_the_environment_are_redacted(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://app:p%40ss-w0rd-x@db.internal:5432/prod")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://ci:tok3n-for-pip@pypi.example/simple https://pypi.org/simple")
    text = ("connects to postgres://app:p%40ss-w0rd-x@db.internal:5432/prod with p@ss-w0rd-x; "
            "pip reads https://ci:tok3n-for-pip@pypi.example/simple")
    assert redact(text) == f"connects to {REDACTED} with {REDACTED}; pip reads https://{REDACTED}@pypi.example/simple"
    # An index without credentials is not a secret.
    assert redact("and https://pypi.org/simple") == "and https://pypi.org/simple"


def _base64_disguises(secret: str) -> list[str]:
    data = secret.encode()
    out = []
    for prefix in (b"", b"u", b"us", b"user:"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(prefix + data + b"\n").decode()
            out += [encoded, encoded.rstrip("=")]
    return out


@pytest.mark.parametrize("secret", [PG, KEY])
def test_base64_hex_and_url_encoded_forms_of_a_secret_are_redacted(env, secret) -> None:
    forms = _base64_disguises(secret) + [
        secret.encode().hex(), secret.encode().hex().upper(),
        urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret), urllib.parse.quote_plus(secret),
        re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(secret, safe="")),  # %2f, not %2F
    ]
    for form in forms:
        out = redact(f"Authorization: Basic {form} (from the fixture)")
        assert out == f"Authorization: Basic {REDACTED} (from the fixture)", form


@pytest.mark.parametrize("char", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u2066",
                                  "\u200e", "\U000e0041"])
def test_a_secret_with_invisible_characters_inside_is_redacted(env, char) -> None:
    disguised = KEY[:9] + char + KEY[9:20] + char + char + KEY[20:]
    assert redact(f"key: {disguised}.") == f"key: {REDACTED}."
    pg = PG[:3] + char + PG[3:]
    assert redact(f"psql with {pg}") == f"psql with {REDACTED}"


def test_invisible_characters_outside_a_secret_are_kept(env) -> None:
    # publish.safe defuses a mention with U+200B: redaction must not undo it.
    text = f"ping @\u200boctocat about {KEY}"
    assert redact(text) == f"ping @\u200boctocat about {REDACTED}"


@pytest.mark.parametrize("name, value", [
    ("PGPASSWORD", "postgres"),          # letters only, shorter than MIN_PLAIN_LENGTH
    ("FEATURE_KEY", "true"),
    ("API_KEY_ROTATION", "1"),
    ("TOKEN_TTL", "86400000"),           # digits only
    ("SECRET_NAME", "prod"),
    ("PWD", "/work/main/reviewer"),      # the working directory, not a password
    ("OLDPWD", "/home/runner/work/app"),
])
def test_short_or_trivial_values_do_not_shred_the_text(monkeypatch, name, value) -> None:
    monkeypatch.setenv(name, value)
    text = f"value {value} in /work/main/reviewer/cli.py: true if 1 else postgres, ttl 86400000, prod"
    assert redact(text) == text
    assert MIN_SECRET_LENGTH == 8 and MIN_PLAIN_LENGTH == 12


@pytest.mark.parametrize("token", [
    "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6",      # GitHub classic
    "github_pat_11ABCDEFG0" + "x" * 60,                    # GitHub fine-grained
    "AKIAIOSFODNN7EXAMPLE",                                # AWS access key id
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",  # Slack bot token
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",  # Slack webhook
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",               # Stripe
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "sk-ant-api03-" + "q" * 40,                             # Anthropic (our own detector)
    "SG." + "a" * 22 + "." + "b" * 43,                     # SendGrid
])
def test_token_shapes_are_redacted_without_being_in_the_environment(token) -> None:
    out = redact(f"found `{token}` in config.py")
    assert token not in out and out == f"found `{REDACTED}` in config.py"


def test_password_in_a_url_is_redacted_by_shape() -> None:
    assert redact("clone https://bot:hunter2hunter2@git.example.com/repo.git") == \
        f"clone https://bot:{REDACTED}@git.example.com/repo.git"


def test_a_private_key_block_goes_whole() -> None:
    pem = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
           "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----")
    out = redact(f"the fixture holds\n{pem}\nand nothing else")
    assert "MIIE" not in out and "VTLw" not in out and out.endswith("\nand nothing else")


def test_review_text_hashes_and_code_are_not_mangled(env) -> None:
    """Git SHAs, 16-hex fingerprints, hashes, UUIDs and code survive: the entropy detectors are off."""
    text = (
        "Commit 3b74b81e1f2c3d4e5f60718293a4b5c6d7e8f901 (short 3b74b81) changed `fingerprint = '0123456789abcdef'`;\n"
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, "
        "uuid 123e4567-e89b-12d3-a456-426614174000, integrity 'sha512-dGhpcyBpcyBub3QgYSBzZWNyZXQgYXQgYWxsIGp1c3QgYSBoYXNo'.\n"
        "    token = os.environ['GITHUB_TOKEN']  # password = get_password(user)\n"
        "    return hashlib.md5(b'x').hexdigest() == 'd41d8cd98f00b204e9800998ecf8427e'\n"
        "See https://github.com/acme/shop/pull/7#discussion_r123 and postgres://db.internal:5432/prod.\n"
        "AuthorizationHeaderFactory, APDUHandler, MAX_TOKENS=4096, KEY_PREFIX, @\u200boctocat\n"
    )
    assert redact(text) == text
    assert redact_document(json.dumps({"fingerprint": "0123456789abcdef", "text": text}, indent=2)) == \
        json.dumps({"fingerprint": "0123456789abcdef", "text": text}, indent=2)


def test_a_change_of_the_environment_is_seen(monkeypatch) -> None:
    monkeypatch.delenv("LATE_TOKEN", raising=False)
    assert redact("late-t0ken-value") == "late-t0ken-value"
    monkeypatch.setenv("LATE_TOKEN", "late-t0ken-value")
    assert redact("late-t0ken-value") == REDACTED
    monkeypatch.delenv("LATE_TOKEN")
    assert redact("late-t0ken-value") == "late-t0ken-value"


def test_a_json_report_stays_valid_and_escaped_secrets_are_found(env) -> None:
    # A carriage return before `k_live_…` is written `\rk_live_…`, which reads as a Stripe key: a
    # replacement in the text would leave `\[redacted]`, an invalid escape. The value holds no key.
    doc = {"issue": "line\rk_live_" + "a" * 24, "escaped": KEY[:12] + "\u200b" + KEY[12:], "quoted": f'"{PG}"',
           "fingerprint": "0123456789abcdef", "nested": [{"k": PG}]}
    for ensure_ascii in (True, False):
        text = json.dumps(doc, indent=2, ensure_ascii=ensure_ascii) + "\n"
        out = redact_document(text)
        parsed = json.loads(out)
        assert out.endswith("}\n") and "\n  " in out
        assert parsed["escaped"] == REDACTED and parsed["quoted"] == f'"{REDACTED}"'
        assert parsed["nested"] == [{"k": REDACTED}] and parsed["fingerprint"] == "0123456789abcdef"
        assert parsed["issue"] == doc["issue"]
    compact = json.dumps({"run": {"model": PG}}, sort_keys=True)
    assert redact_document(compact) == json.dumps({"run": {"model": REDACTED}}, sort_keys=True)


def test_text_that_only_looks_like_json_is_redacted_as_text(env) -> None:
    assert redact_document("{not json " + PG) == "{not json " + REDACTED
