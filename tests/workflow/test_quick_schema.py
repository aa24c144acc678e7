"""The quick schema test agrees with jsonschema wherever it answers (workflow/quick_schema.py)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agentops.workflow.quick_schema import quick_check

SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -3,
    2.5,
    1.0,
    -0.0,
    float("nan"),
    "",
    "a",
    "bug",
    "feature",
    "ünï",
    "x" * 12,
]


def random_schema(rng: random.Random, depth: int = 0) -> Any:
    """A schema of the keywords the quick test knows, nested a little."""
    if rng.random() < 0.08:
        return rng.choice([True, False])
    schema: dict[str, Any] = {}
    kinds = ["string", "number", "integer", "boolean", "null", "array", "object"]
    if rng.random() < 0.7:
        schema["type"] = (
            rng.choice(kinds) if rng.random() < 0.8 else rng.sample(kinds, rng.randint(1, 3))
        )
    if rng.random() < 0.2:
        schema["enum"] = rng.sample(["bug", "feature", "question", "a", ""], rng.randint(1, 3))
    if rng.random() < 0.25:
        schema["minLength"] = rng.randint(0, 3)
    if rng.random() < 0.15:
        schema["maxLength"] = rng.randint(0, 5)
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if rng.random() < 0.12:
            schema[key] = rng.choice([-1, 0, 1, 2.5])
    if depth < 3 and rng.random() < 0.4:
        schema["items"] = random_schema(rng, depth + 1)
    for key in ("minItems", "maxItems"):
        if rng.random() < 0.15:
            schema[key] = rng.randint(0, 3)
    if depth < 3 and rng.random() < 0.4:
        names = rng.sample(["title", "label", "n", "tags"], rng.randint(0, 3))
        schema["properties"] = {name: random_schema(rng, depth + 1) for name in names}
        if names and rng.random() < 0.6:
            schema["required"] = rng.sample(names, rng.randint(1, len(names)))
        if rng.random() < 0.4:
            schema["additionalProperties"] = (
                rng.random() < 0.5 if rng.random() < 0.7 else random_schema(rng, depth + 1)
            )
    if rng.random() < 0.2:
        schema["description"] = "annotations never fail a value"
    return schema


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.2:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3 and roll < 0.4:
        names = rng.sample(["title", "label", "n", "tags", "other"], rng.randint(0, 4))
        return {name: random_value(rng, depth + 1) for name in names}
    return rng.choice(SCALARS)


def test_it_agrees_with_jsonschema_on_generated_schemas_and_values() -> None:
    rng = random.Random(20261204)
    compared = disagreements = 0
    for _ in range(600):
        schema = random_schema(rng)
        test = quick_check(schema)
        assert test is not None, schema  # every keyword drawn here is one it knows
        validator = Draft202012Validator(schema)
        for _ in range(40):
            value = random_value(rng)
            compared += 1
            if test(value) != validator.is_valid(value):
                disagreements += 1
                # It may only ever be more careful than jsonschema, never less, and only over
                # NaN, which json.loads reads and no bound compares with.
                assert not test(value), (json.dumps(schema), repr(value))
                assert holds_nan(value), (json.dumps(schema), repr(value))
    assert compared == 24_000
    assert disagreements < compared // 100


def holds_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, list):
        return any(holds_nan(item) for item in value)
    return isinstance(value, dict) and any(holds_nan(item) for item in value.values())


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"type": "integer"}, 1.0, True),  # jsonschema takes 1.0 for an integer
        ({"type": "integer"}, True, False),  # a boolean is no number
        ({"type": "number"}, False, False),
        ({"enum": ["bug", "feature"]}, "bgu", False),
        ({"type": "array", "items": {"type": "string"}, "maxItems": 2}, ["a", "b", "c"], False),
        ({"properties": {"n": {"type": "integer"}}}, "not an object", True),
        ({"required": ["title"]}, {"other": 1}, False),
        ({"properties": {"a": True}, "additionalProperties": False}, {"a": 1, "b": 2}, False),
        ({"minLength": 2}, "ü", False),  # code points, as jsonschema counts them
        ({"exclusiveMinimum": 0}, 0, False),
    ],
)
def test_the_rules_jsonschema_has(schema: dict[str, Any], value: Any, expected: bool) -> None:
    test = quick_check(schema)
    assert test is not None
    assert test(value) is expected
    assert Draft202012Validator(schema).is_valid(value) is expected


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"type": "string", "pattern": "^a"},
        {"type": "array", "items": {"type": "array", "uniqueItems": True}},
        {"properties": {"deep": {"properties": {"x": {"oneOf": [True]}}}}},
        {"enum": [1, True]},  # jsonschema sets true apart from 1: left to it
        {"type": "decimal"},
        {"minItems": True},
    ],
)
def test_any_other_keyword_leaves_the_schema_to_jsonschema(schema: dict[str, Any]) -> None:
    assert quick_check(schema) is None
