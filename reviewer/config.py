"""Configuration: defaults, then `.reviewer.toml` or `[tool.reviewer]`, then flags.

The file is validated against `schemas/config.schema.json`; an unknown key or a
wrong type raises `ConfigError` naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from . import repo_view, schemas
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found]

DEFAULT_MODEL = "claude-sonnet-5-5"

# Lock files, vendored trees and generated code: reviewing them costs tokens and
# finds nothing a person would act on. Each skip is reported with the glob.
DEFAULT_IGNORE: tuple[str, ...] = (
    "*.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "go.sum",
    "vendor/**",
    "third_party/**",
    "node_modules/**",
    "*.min.js",
    "*.min.css",
    "*.map",
    "*_pb2.py",
    "*_pb2_grpc.py",
    "*.pb.go",
    "*.generated.*",
    "*.snap",
    # Packaging metadata setuptools writes next to the code (`pip install -e .`).
    "*.egg-info/**",
    "PKG-INFO",
)


@dataclass(frozen=True)
class Config:
    model: str = DEFAULT_MODEL
    models: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: int = 8
    ignore: tuple[str, ...] = ()
    default_ignore: bool = True
    max_file_bytes: int = 500_000
    per_file_token_budget: int = 40_000
    audit_context_tokens: int = 1_500
    """Tokens of definitions from other files sent with each audited part of a Python file; 0: none."""
    cross_file_token_budget: int = 120_000
    max_output_tokens: int = 8_192
    context_lines: int = 20
    confidence_threshold: float = 0.5
    max_findings_per_file: int = 25
    max_findings_per_review: int = 200
    guidelines: str = ""
    guidelines_file: str | None = None
    cache_min_tokens: int = 1_024
    prewarm: bool = True
    max_retries: int = 4
    request_timeout: float = 180.0
    """Seconds one attempt of one call may take: a full answer (max_output_tokens) at a slow
    50 tokens/s is under 3 minutes; never more than the time left before `timeout`."""
    timeout: float | None = 600.0
    """`review`'s whole-run deadline in seconds: then the calls in flight are cancelled and what
    is done is reported, marked incomplete. 10 minutes fits a pull-request job (issue 11)."""
    max_cost: float | None = None
    """`review` refuses to send anything when its estimate (`--dry-run`) is above this many USD."""
    tools: bool = True
    """Per-file and cross-file calls may read the repository at the head commit (`reviewer.tools`)."""
    max_tool_rounds: int = 3
    """Tool turns one call may take before it is asked to answer with what it has."""
    max_tool_calls: int = 300
    """Tool calls in a whole review; past it every call gets 'budget spent' and answers."""
    max_tool_result_tokens: int = 300_000
    """Tokens of tool results sent back in a whole review (estimated), past which the same."""
    verify: bool = True
    """Pass 3 sends findings at or above `verify_min_severity` to an independent verifier (needs the tools)."""
    verify_min_severity: str = "warning"
    max_verify_tool_calls: int = 100
    """Tool calls of all verifier calls together, apart from `max_tool_calls`: a review whose per-file
    calls spent their budget must not leave the verifier blind (it confirms only what it read)."""
    max_verify_tool_result_tokens: int = 100_000
    """Tokens of tool results sent back to the verifier calls (estimated), apart from `max_tool_result_tokens`."""
    fail_on: str = "never"
    max_inline_comments: int = 30
    bot_login: str = "github-actions[bot]"
    resolve_threads: bool = True
    source: str | None = None
    """The file this configuration was read from, for messages."""

    def model_for(self, pass_name: str) -> str:
        return self.models.get(pass_name, self.model)

    @property
    def ignore_globs(self) -> tuple[str, ...]:
        return (DEFAULT_IGNORE if self.default_ignore else ()) + self.ignore

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with every non-None override applied (flags win over the file)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        schema = error.schema if isinstance(error.schema, dict) else {}
        instance = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        where = f"{key}." if key else ""
        return "unknown key " + ", ".join(f"'{where}{k}'" for k in extra)
    if error.validator == "type":
        return f"'{key}' must be of type {error.validator_value} (got {error.instance!r})"
    return f"'{key}': {error.message}"


def finite_number(value: object) -> float:
    """`value` (a number, or the text of a flag or an environment variable) as a finite float.

    Raises ValueError with a short reason (no key name: the caller adds it) when
    it is not a number, or is NaN or infinite. Python's `float()` and TOML both
    read `nan` and `inf`, and every comparison with NaN is false, so a NaN
    limit would pass every `value > limit` check: `--max-cost nan` switched the
    audit's cost gate off (issue 11, item 8). Every number reviewer reads from
    a flag, the environment or the configuration goes through here.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        number = value
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {str(value)[:40]!r}") from None
    try:
        if math.isfinite(number):
            return float(number)
    except OverflowError:  # an int too large for a float
        pass
    raise ValueError(f"expected a finite number, got {str(value)[:40]}")


# The configuration nests two levels (the [models] table); anything much deeper
# is not ours, and a table thousands of levels deep (tomllib reads dotted keys
# without a depth limit) would exhaust the recursion of the validator and of
# repr() in its message.
MAX_DEPTH = 16


def _check_values(data: Mapping[str, Any], source: str) -> None:
    """ConfigError for a table nested deeper than MAX_DEPTH or a number that is NaN or infinite.

    Walked without recursion, so the depth of the input cannot break the walk.
    """
    stack: list[tuple[str, Any, int]] = [(str(k), v, 1) for k, v in data.items()]
    while stack:
        key, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: '{key[:80]}...' is nested more than {MAX_DEPTH} levels deep; "
                              "the configuration is flat keys and the [models] table")
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{key}[{i}]", v, depth + 1) for i, v in enumerate(value))
        elif isinstance(value, float):
            try:
                finite_number(value)
            except ValueError:
                raise ConfigError(f"{source}: '{key}' must be a finite number, not {value}") from None


def from_mapping(data: Mapping[str, Any], source: str) -> Config:
    """Build a Config from a parsed table; raises ConfigError naming the key and `source`."""
    _check_values(data, source)
    error = jsonschema.exceptions.best_match(
        schemas.validator(schemas.load("config")).iter_errors(dict(data))
    )
    if error is not None:
        raise ConfigError(f"{source}: {_describe(error)}")
    values = dict(data)
    if "ignore" in values:
        values["ignore"] = tuple(values["ignore"])
    return Config(**values, source=source)


def find_config(repo_dir: Path) -> Path | None:
    """`.reviewer.toml`, else a `pyproject.toml` that has a [tool.reviewer] table."""
    candidate = repo_dir / ".reviewer.toml"
    if candidate.is_file():
        return candidate
    pyproject = repo_dir / "pyproject.toml"
    if pyproject.is_file() and "reviewer" in _read_toml(pyproject).get("tool", {}):
        return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        # utf-8-sig: editors on Windows save a byte-order mark, which TOML does
        # not allow (tomllib calls it an invalid statement); it carries no meaning.
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or inline tables nested too deeply to read") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def load(path: Path | None, repo_dir: Path) -> Config:
    """The configuration at `path`, or the one found in `repo_dir`, or the defaults."""
    if path is None:
        path = find_config(repo_dir)
        if path is None:
            return Config()
    elif not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("reviewer", {})
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [tool.reviewer] must be a table")
    config = from_mapping(data, str(path))
    if config.guidelines_file:
        text = read_guidelines(config.guidelines_file, repo_dir, str(path))
        config = dataclasses.replace(config, guidelines=(config.guidelines + "\n\n" + text).strip())
    return config


# The guidelines go into the system prompt of every call: a page or two of
# rules, not a document. 64 KiB is about 16,000 tokens, paid (as cache reads)
# on every request.
GUIDELINES_MAX_BYTES = 64 * 1024


def read_guidelines(name: str, repo_dir: Path, source: str) -> str:
    """The text of `guidelines_file` from git at HEAD of `repo_dir` (the commit the configuration comes from).

    Never from the working tree: the name must resolve inside the repository
    (relative to `repo_dir`) to a regular file committed at HEAD, not a link,
    of at most GUIDELINES_MAX_BYTES. Anything else is a ConfigError naming the
    key: the file is pasted into every request, so a link to `/proc/self/environ`
    or a FIFO must never be opened (issue 11).
    """
    key = f"{source}: 'guidelines_file' {repo_view.shown(name)}"
    try:
        view = repo_view.RepoView(repo_dir, "HEAD")
    except repo_view.NotARepository as exc:
        raise ConfigError(f"{key}: needs a git repository at --repo-dir, since the file is read from git at "
                          f"HEAD and never from the working tree ({exc})") from None
    with view:
        try:
            blob = view.read(view.prefix + repo_view.normalize(name), GUIDELINES_MAX_BYTES)
        except repo_view.PathRefused as exc:
            raise ConfigError(f"{key} {exc.reason}"
                              + ("; commit it" if "not in the tree" in exc.reason else "")) from None
    if blob.is_link:
        raise ConfigError(f"{key} is a symbolic link (to {repo_view.shown(blob.text)}), which is not followed; "
                          "name the file itself")
    if blob.truncated:
        raise ConfigError(f"{key} is {blob.size:,} bytes, over the limit of {GUIDELINES_MAX_BYTES:,} bytes (64 KiB)")
    if blob.binary:
        raise ConfigError(f"{key} is binary, not text")
    return blob.text
