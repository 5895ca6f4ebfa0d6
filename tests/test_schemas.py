"""Schema loading (imageprovider._schemas): local references are inlined for speed, never changing a verdict."""

import json
from pathlib import Path

from jsonschema import Draft7Validator

from imageprovider import _schemas

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_local_references_are_inlined_recursively() -> None:
    schema = {
        "properties": {"a": {"$ref": "#/definitions/outer"}},
        "definitions": {"outer": {"properties": {"b": {"$ref": "#/definitions/inner"}}}, "inner": {"type": "integer"}},
    }
    inlined = _schemas.inline_local_refs(schema)
    assert inlined["properties"]["a"] == {"properties": {"b": {"type": "integer"}}}
    assert schema["properties"]["a"] == {"$ref": "#/definitions/outer"}  # the original is left alone


def test_a_reference_back_into_itself_or_nowhere_is_left_in_place() -> None:
    schema = {
        "definitions": {"node": {"properties": {"child": {"$ref": "#/definitions/node"}}}},
        "properties": {"root": {"$ref": "#/definitions/node"}, "lost": {"$ref": "#/definitions/missing"}},
    }
    inlined = _schemas.inline_local_refs(schema)
    assert inlined["properties"]["root"] == {"properties": {"child": {"$ref": "#/definitions/node"}}}
    assert inlined["properties"]["lost"] == {"$ref": "#/definitions/missing"}
    validator = Draft7Validator(inlined)
    assert validator.is_valid({"root": {"child": {"child": {}}}})


def test_every_shipped_schema_gives_the_same_verdicts_inlined() -> None:
    """The instances are the schemas' own fragments: objects, lists, strings and numbers of every shape they hold."""
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        plain, inlined = Draft7Validator(schema), Draft7Validator(_schemas.inline_local_refs(schema))
        samples = [{}, [], "x", 1, None, {"created": 1, "data": [{"b64_json": "eA=="}]}, {"data": [{}]}]
        samples += list(schema.get("definitions", {}).values())
        for sample in samples:
            assert sorted(e.message for e in plain.iter_errors(sample)) == sorted(
                e.message for e in inlined.iter_errors(sample)
            ), (path.name, sample)
