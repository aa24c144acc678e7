"""A quick test that a JSON value follows a schema, for the schemas most output schemas are.

``jsonschema`` builds a validator object for every array item and property it descends into:
a planner's list of 10,000 sections costs it about 35 ms, a tenth of a millisecond per
item it fans out to. Most output schemas use only the keywords below, which test a value
in plain Python a dozen times faster. ``quick_check(schema)`` compiles such a schema once
into a test; any other keyword (``$ref``, ``anyOf``, ``pattern``, ...) anywhere in it makes
it None, and jsonschema decides alone.

The test answers True only where jsonschema (Draft 2020-12, no format checker: ``format``
is an annotation) finds no error; on False the caller asks jsonschema, which says why. Values
are what ``json.loads`` makes: dict, list, str, int, float, bool, None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Test = Callable[[Any], bool]

# Keywords that never make a value invalid.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "format", "deprecated"}
)
_VALIDATIONS = frozenset(
    {
        "type",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
_TYPES: dict[str, Test] = {
    "string": lambda value: isinstance(value, str),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    # jsonschema takes 1.0 for an integer too
    "integer": lambda value: (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer())
    ),
}


class _Unsupported(Exception):
    """The schema uses something this quick test does not know."""


def quick_check(schema: Mapping[str, Any] | bool) -> Test | None:
    """The quick test of ``schema``, or None when it uses a keyword the test does not know."""
    try:
        return _compile(schema)
    except _Unsupported:
        return None


def _compile(schema: Any) -> Test:
    if schema is True:
        return lambda value: True
    if schema is False:
        return lambda value: False
    if not isinstance(schema, Mapping) or not set(schema) <= _ANNOTATIONS | _VALIDATIONS:
        raise _Unsupported
    tests = [
        test
        for test in (
            _type_test(schema),
            _enum_test(schema),
            _object_test(schema),
            _array_test(schema),
            _length_test(schema),
            _number_test(schema),
        )
        if test is not None
    ]
    if len(tests) == 1:
        return tests[0]
    return lambda value: all(test(value) for test in tests)


def _type_test(schema: Mapping[str, Any]) -> Test | None:
    if "type" not in schema:
        return None
    names = schema["type"]
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names or any(name not in _TYPES for name in names):
        raise _Unsupported
    tests = [_TYPES[name] for name in names]
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _enum_test(schema: Mapping[str, Any]) -> Test | None:
    if "enum" not in schema:
        return None
    members = schema["enum"]
    # Only strings: jsonschema's equality sets true apart from 1 and compares containers.
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise _Unsupported
    allowed = frozenset(members)
    return lambda value: isinstance(value, str) and value in allowed


def _object_test(schema: Mapping[str, Any]) -> Test | None:
    if not {"properties", "required", "additionalProperties"} & set(schema):
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        raise _Unsupported
    if not all(isinstance(name, str) for name in required):
        raise _Unsupported
    named = {name: _compile(sub) for name, sub in properties.items()}
    others = _compile(schema.get("additionalProperties", True))

    def test(value: Any) -> bool:
        if not isinstance(value, dict):
            return True  # object keywords say nothing of other types
        return all(name in value for name in required) and all(
            named.get(name, others)(item) for name, item in value.items()
        )

    return test


def _array_test(schema: Mapping[str, Any]) -> Test | None:
    if not {"items", "minItems", "maxItems"} & set(schema):
        return None
    each = _compile(schema.get("items", True))
    low, high = _bounds(schema, "minItems", "maxItems")

    def test(value: Any) -> bool:
        if not isinstance(value, list):
            return True
        return low <= len(value) <= high and all(each(item) for item in value)

    return test


def _length_test(schema: Mapping[str, Any]) -> Test | None:
    if not {"minLength", "maxLength"} & set(schema):
        return None
    low, high = _bounds(schema, "minLength", "maxLength")
    # Lengths count code points, as Python's len does.
    return lambda value: not isinstance(value, str) or low <= len(value) <= high


def _bounds(schema: Mapping[str, Any], low: str, high: str) -> tuple[int, float]:
    least, most = schema.get(low, 0), schema.get(high, float("inf"))
    for bound in (least, most):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise _Unsupported
    return least, most


def _number_test(schema: Mapping[str, Any]) -> Test | None:
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    bounds = {key: schema[key] for key in keys if key in schema}
    if not bounds:
        return None
    if any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds.values()):
        raise _Unsupported
    low, high = bounds.get("minimum"), bounds.get("maximum")
    above, below = bounds.get("exclusiveMinimum"), bounds.get("exclusiveMaximum")
    is_number = _TYPES["number"]

    def test(value: Any) -> bool:
        if not is_number(value):
            return True
        return (
            (low is None or value >= low)
            and (high is None or value <= high)
            and (above is None or value > above)
            and (below is None or value < below)
        )

    return test


__all__ = ["Test", "quick_check"]
