"""The JSON Schemas in `schemas/`, loaded once, and the answer schemas derived from them.

`schemas/` is the single source of truth. A wheel carries it as `reviewer/schemas`
(see pyproject.toml); a source checkout reads the top-level folder. The model is
sent `anthropic.transform_schema` of a schema derived here, because structured
output accepts only a subset of JSON Schema (no numeric or length bounds); the
answer is then validated against the full schema, bounds included.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

# Fields of a finding that the tool owns: the model never sees or sets them.
TOOL_OWNED = ("pass", "fingerprint", "verification")

NAMES = ("finding", "review", "config", "audit-report", "verdict", "eval-report")


def _schema_dir() -> Path:
    packaged = resources.files("reviewer").joinpath("schemas")
    if packaged.is_dir():
        return Path(str(packaged))
    # Source checkout or editable install: schemas/ sits beside the package.
    return Path(__file__).resolve().parent.parent / "schemas"


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The schema `schemas/<name>.schema.json` as a dict (do not mutate it)."""
    path = _schema_dir() / f"{name}.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def _registry() -> Registry:
    resources_ = []
    for name in NAMES:
        try:
            schema = load(name)
        except FileNotFoundError:
            continue
        resources_.append((schema["$id"], Resource.from_contents(schema)))
        resources_.append((f"{name}.schema.json", Resource.from_contents(schema)))
    return Registry().with_resources(resources_)


@functools.cache
def _validator_for(key: str) -> jsonschema.protocols.Validator:
    schema = json.loads(key)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, registry=_registry())


def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return _validator_for(json.dumps(schema, sort_keys=True))


def first_error(schema: dict[str, Any], instance: Any) -> str | None:
    """The most relevant validation error as one readable line, or None if valid."""
    error = jsonschema.exceptions.best_match(validator(schema).iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def model_finding_schema() -> dict[str, Any]:
    """The finding schema minus the fields the tool owns."""
    finding = copy.deepcopy(load("finding"))
    for key in ("$schema", "$id"):
        finding.pop(key, None)
    for key in TOOL_OWNED:
        finding["properties"].pop(key, None)
    return finding


@functools.cache
def findings_answer_schema() -> dict[str, Any]:
    """Answer of the per-file and cross-file passes: `{"findings": [finding, ...]}` (do not mutate it)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["findings"],
        "properties": {"findings": {"type": "array", "items": model_finding_schema()}},
    }


@functools.cache
def aggregate_answer_schema() -> dict[str, Any]:
    """Answer of the aggregate pass: groups of duplicate findings with a verdict each (do not mutate it)."""
    props = load("finding")["properties"]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["groups"],
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["ids", "severity", "confidence"],
                    "properties": {
                        "ids": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string"},
                            "description": "Ids (F1, F2, ...) of findings that describe the same problem.",
                        },
                        "severity": copy.deepcopy(props["severity"]),
                        "confidence": copy.deepcopy(props["confidence"]),
                        "issue": {
                            "anyOf": [{"type": "string", "minLength": 1}, {"type": "null"}],
                            "description": "One merged wording when several ids are grouped; null keeps the first one's.",
                        },
                    },
                },
            }
        },
    }


@functools.cache
def verify_answer_schema() -> dict[str, Any]:
    """Answer of a verifier call: `schemas/verdict.schema.json`, self-contained (do not mutate it)."""
    verdict = copy.deepcopy(load("verdict"))
    for key in ("$schema", "$id", "title"):
        verdict.pop(key, None)
    evidence = verdict.pop("$defs")["evidence"]
    verdict["properties"]["evidence"]["items"] = evidence
    return verdict


def for_model(schema: dict[str, Any]) -> dict[str, Any]:
    """The subset of `schema` that structured output accepts (bounds move into descriptions)."""
    # Imported here: the SDK takes a second or more to import, and commands that
    # send nothing (--help, --dry-run, schema, audit plan/status) never need it.
    from . import lazy

    lazy.ready("anthropic")
    import anthropic

    return anthropic.transform_schema(copy.deepcopy(schema))


@functools.cache
def findings_model_schema() -> dict[str, Any]:
    """`for_model(findings_answer_schema())`, built once: every audit request carries it (do not mutate it)."""
    return for_model(findings_answer_schema())
