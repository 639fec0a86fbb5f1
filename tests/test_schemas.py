"""The schemas: the contract in schemas/, the subset the model is sent, packaging."""

from __future__ import annotations

import json
from importlib import metadata

from reviewer import schemas


def _keywords(node: object) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        found.update(node)
        for value in node.values():
            found |= _keywords(value)
    elif isinstance(node, list):
        for value in node:
            found |= _keywords(value)
    return found


def _objects(node: object) -> list[dict]:
    out = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            out.append(node)
        for value in node.values():
            out += _objects(value)
    elif isinstance(node, list):
        for value in node:
            out += _objects(value)
    return out


def test_model_schemas_use_only_the_structured_output_subset() -> None:
    for full in (schemas.findings_answer_schema(), schemas.aggregate_answer_schema()):
        sent = schemas.for_model(full)
        banned = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "maxItems", "$schema", "$id"}
        assert not (_keywords(sent) & banned)
        assert all(o.get("additionalProperties") is False for o in _objects(sent))


def test_model_is_never_asked_for_tool_owned_fields() -> None:
    item = schemas.findings_answer_schema()["properties"]["findings"]["items"]
    assert "fingerprint" not in item["properties"] and "pass" not in item["properties"]


def test_answer_schema_is_derived_from_the_finding_contract() -> None:
    finding = schemas.load("finding")
    item = schemas.findings_answer_schema()["properties"]["findings"]["items"]
    assert item["properties"]["severity"] == finding["properties"]["severity"]
    assert item["properties"]["confidence"] == finding["properties"]["confidence"]


def test_full_schema_catches_what_the_subset_cannot() -> None:
    answer = {"findings": [{"file": "a.py", "severity": "info", "issue": "x", "confidence": 1.5}]}
    assert "1.5" in schemas.first_error(schemas.findings_answer_schema(), answer)


def test_review_schema_resolves_the_finding_reference() -> None:
    doc = {"version": 1, "findings": [{"file": "a", "severity": "bogus", "issue": "x"}],
           "stats": {"files_reviewed": [], "files_skipped": [], "files_failed": [],
                     "calls": {"per_file": 0, "cross_file": 0, "aggregate": 0},
                     "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
                     "cost_usd": 0}}
    assert "bogus" in schemas.first_error(schemas.load("review"), doc)


def test_installed_distribution_ships_the_schemas_and_prompts() -> None:
    files = {str(f) for f in metadata.files("reviewer") or []}
    if any(f.endswith(".pth") for f in files):  # editable install: the checkout is the package
        return
    assert "reviewer/schemas/finding.schema.json" in files
    assert "reviewer/schemas/review.schema.json" in files
    assert "reviewer/schemas/audit-report.schema.json" in files
    assert "reviewer/prompts/system.txt" in files
    assert "reviewer/prompts/audit.txt" in files


def test_schema_files_are_valid_json_schema() -> None:
    import jsonschema

    for name in ("finding", "review", "config", "audit-report"):
        jsonschema.Draft202012Validator.check_schema(schemas.load(name))
        json.dumps(schemas.load(name))
