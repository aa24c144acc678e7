"""JSON Schemas in a workflow, checked at load time, and the values answers hold.

- ``schema_problem``: is a schema itself a valid JSON Schema (Draft 2020-12)?
- ``reference_problem``: does every ``$ref`` of a schema resolve inside it (no URL, no
  file, no pointer to nothing), without looping back to itself before descending
  into the answer? Schemas are never fetched or read from elsewhere: the validator
  looks refs up in a registry holding the schema alone.
- ``strict_mode_problem``: the first of OpenAI's strict-mode rules a schema breaks
  (None: it can be sent with ``strict: true``).
- ``field_problem``: does ``{{ NAME.output.a.b[0] }}`` name a field the schema
  has? (load-time checks of downstream references); ``field_schema``, ``schema_types``
  and ``schema_values``: what that field's schema says it holds (checks of ``for_each``
  and of the literals ``when`` compares it with).
- ``field_value`` / ``as_text``: a field of a parsed value, and how a value
  renders in a prompt (strings plain, anything else as JSON).

Holding an answer to its schema (``OutputContract``) is the runtime's, in
``agentops.runtime.structured``. ``jsonschema`` is imported only when a schema is
checked: planning a workflow without schemas, and the history commands, never load it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentops.workflow.suggest import did_you_mean

if TYPE_CHECKING:
    from referencing._core import Resolver  # what Registry.resolver() returns; not re-exported


FieldPath = tuple[str | int, ...]


# Subschemas that apply to the value itself rather than to a part of it (as a ref's target
# does): a $ref loop through only these never gets to the end of an answer.
_IN_PLACE = frozenset({"allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas"})
_NAMED_SCHEMAS = frozenset(
    {"$defs", "definitions", "properties", "patternProperties", "dependentSchemas"}
)
_DATA = frozenset({"const", "enum", "examples", "default"})  # values, never schemas
_REFS = ("$ref", "$dynamicRef")

# OpenAI's structured outputs, strict mode (platform.openai.com/docs/guides/structured-outputs,
# "Supported schemas"): keywords it rejects. Others it accepts are left to it.
_STRICT_UNSUPPORTED = (
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
)


def path_text(path: Iterable[str | int]) -> str:
    """``steps[0].title``; ``$`` for the value itself."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "$"


# --- the schema itself -----------------------------------------------------------------


def schema_problem(schema: Any) -> tuple[FieldPath, str] | None:
    """Why ``schema`` is not a valid JSON Schema (Draft 2020-12): where inside it, and what; None if it is."""
    if not isinstance(schema, (dict, bool)):
        return (), f"a JSON Schema is a mapping (or true/false), not {type(schema).__name__}"
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(
            schema
        )  # raises the best match of the metaschema's errors
    except SchemaError as error:
        where = tuple(error.path)
        return where, f"at {path_text(where)}: {error.message}"
    except RecursionError:
        return (), "it nests too deeply to check"
    return None


def reference_problem(schema: Any) -> tuple[FieldPath, str] | None:
    """The first ``$ref`` (or ``$dynamicRef``) of a valid schema that does not resolve inside it
    (a URL, a file, a pointer to nothing), or that leads back to where it is without descending
    into a property or an item: where (ending at the ref) and why; None when every one is fine.
    Nothing is fetched or read: lookups go to a registry holding this schema alone."""
    if not isinstance(schema, Mapping):
        return None
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    graph = _RefGraph()
    try:
        graph.visit(schema, (), Registry().resolver_with_root(DRAFT202012.create_resource(schema)))
        while graph.pending:
            graph.visit(*graph.pending.pop())
        return graph.loop()
    except _LooseRef as error:
        return error.where, error.message
    except RecursionError:
        return (), "it nests too deeply to check"


class _LooseRef(Exception):
    def __init__(self, where: FieldPath, message: str) -> None:
        super().__init__(message)
        self.where, self.message = where, message


@dataclass(frozen=True)
class _Edge:
    """From a subschema to one applied to the same value: a child (``anyOf``...) or a ref's target."""

    target: Mapping[str, Any]
    where: FieldPath = ()  # of the ref
    ref: str | None = None  # None for a child


@dataclass
class _RefGraph:
    """Every subschema of a schema (by identity) with its place and its in-place edges."""

    places: dict[int, FieldPath] = field(default_factory=dict)
    edges: dict[int, list[_Edge]] = field(default_factory=dict)
    pending: list[tuple[Any, FieldPath, Resolver[Any]]] = field(
        default_factory=list
    )  # ref targets to visit

    def visit(self, node: Any, where: FieldPath, resolver: Resolver[Any]) -> None:
        if not isinstance(node, Mapping) or id(node) in self.places:
            return
        from referencing.jsonschema import DRAFT202012

        self.places[id(node)] = where
        edges = self.edges[id(node)] = []
        if isinstance(node.get("$id"), str):
            resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
        for key, value in node.items():
            at = (*where, key)
            if key in _DATA:
                continue
            if key in _REFS and isinstance(value, str):
                target, target_resolver = _lookup(resolver, value, at)
                if isinstance(target, Mapping):
                    edges.append(_Edge(target, at, value))
                    self.pending.append((target, at, target_resolver))
                continue
            if key in _NAMED_SCHEMAS and isinstance(value, Mapping):
                children = [((*at, name), child) for name, child in value.items()]
            elif isinstance(value, list):
                children = [((*at, index), child) for index, child in enumerate(value)]
            else:
                children = [(at, value)]
            for child_at, child in children:
                if key in _IN_PLACE and isinstance(child, Mapping):
                    edges.append(_Edge(child))
                self.visit(child, child_at, resolver)

    def loop(self) -> tuple[FieldPath, str] | None:
        """A cycle of in-place edges (it always holds a ref), at its first ref."""
        done: set[int] = set()
        for start in self.places:
            cycle = self._cycle(start, [], done)
            if cycle:
                refs = [edge for edge in cycle if edge.ref is not None]
                where = refs[0].where
                chain = " -> ".join(repr(edge.ref) for edge in refs)
                return where, (
                    f"at {path_text(where[:-1])}: the schema refers to itself through {where[-1]} {chain} without "
                    "descending into a property or an item, so checking an answer would never end; "
                    "refer to it from inside properties or items instead"
                )
        return None

    def _cycle(
        self, node: int, trail: list[tuple[int, _Edge]], done: set[int]
    ) -> list[_Edge] | None:
        if node in done:
            return None
        walked = [visited for visited, _ in trail] + [node]
        for edge in self.edges[node]:
            target, steps = id(edge.target), [*trail, (node, edge)]
            if target in walked:  # back on the path walked: the edges from there on loop
                return [step for _, step in steps[walked.index(target) :]]
            found = self._cycle(target, steps, done)
            if found:
                return found
        done.add(node)
        return None


def _lookup(resolver: Resolver[Any], ref: str, where: FieldPath) -> tuple[Any, Resolver[Any]]:
    """What ``ref`` points at, inside the registry only; raises ``_LooseRef`` saying why not."""
    from referencing.exceptions import NoSuchAnchor, PointerToNowhere, Unresolvable

    at = f"at {path_text(where[:-1])}: {where[-1]} {ref!r}"
    try:
        resolved = resolver.lookup(ref)
    except (Unresolvable, LookupError, ValueError, TypeError) as error:
        if isinstance(error, NoSuchAnchor):
            raise _LooseRef(where, f"{at} names no $anchor in the schema") from None
        if (
            isinstance(error, Unresolvable)
            and not isinstance(error, PointerToNowhere)
            and not ref.startswith("#")
        ):
            raise _LooseRef(
                where,
                (
                    f"{at} is not defined inside the schema, and schemas are never fetched or read from elsewhere; "
                    "copy what it names under $defs and write $ref: '#/$defs/NAME'"
                ),
            ) from None
        raise _LooseRef(
            where, f"{at} points at nothing in the schema{_pointer_hint(resolver, ref)}"
        ) from None
    if not isinstance(resolved.contents, (Mapping, bool)):
        raise _LooseRef(where, f"{at} points at a value that is not a schema")
    return resolved.contents, resolved.resolver


def _pointer_hint(resolver: Resolver[Any], ref: str) -> str:
    """``; did you mean 'Step'?`` for ``#/$defs/Stpe``, from the names next to where it points."""
    from referencing.exceptions import Unresolvable

    head, _, last = ref.rpartition("/")
    if "#" not in head:
        return ""
    try:
        around = resolver.lookup(head).contents
    except (Unresolvable, LookupError, ValueError, TypeError):
        return ""
    return did_you_mean(last, [str(name) for name in around]) if isinstance(around, Mapping) else ""


def strict_mode_problem(schema: Mapping[str, Any]) -> str | None:
    """The first OpenAI strict-mode rule ``schema`` breaks, in words; None when it meets them all."""
    if schema.get("type") != "object":
        return "the top level must be an object (type: object)"
    try:
        return _strict_walk(schema, "$")
    except RecursionError:
        return "it nests deeper than strict mode allows"


def _strict_walk(schema: Any, where: str) -> str | None:
    if not isinstance(schema, Mapping):
        return None
    for keyword in _STRICT_UNSUPPORTED:
        if keyword in schema:
            return f"{where} uses '{keyword}', which strict mode does not support"
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, Mapping):
        if schema.get("additionalProperties") is not False:
            return f"{where} must set additionalProperties: false"
        if isinstance(properties, Mapping):
            required = schema.get("required") or []
            missing = [name for name in properties if name not in required]
            if missing:
                return f"{where}: every property must be in required (missing: {', '.join(map(str, missing))})"
    children: list[tuple[str, Any]] = []
    if isinstance(properties, Mapping):
        children += [(f"{where}.{name}", value) for name, value in properties.items()]
    if "items" in schema:
        children.append((f"{where}[]", schema["items"]))
    for keyword in ("anyOf", "prefixItems"):
        if isinstance(schema.get(keyword), list):
            children += [
                (f"{where} {keyword}[{i}]", value) for i, value in enumerate(schema[keyword])
            ]
    for keyword in ("$defs", "definitions"):
        if isinstance(schema.get(keyword), Mapping):
            children += [(f"{keyword}.{name}", value) for name, value in schema[keyword].items()]
    for child_where, child in children:
        found = _strict_walk(child, child_where)
        if found:
            return found
    return None


# --- fields, for downstream references --------------------------------------------------


def field_problem(schema: Any, fields: FieldPath, *, root: Any = None) -> str | None:
    """Why ``fields`` does not name something the schema can hold; None when it can (or cannot tell).
    ``root``: where its local ``$ref``s point (default: ``schema`` itself)."""
    return _walk(schema, fields, root)[1]


def field_schema(schema: Any, fields: FieldPath, *, root: Any = None) -> Any:
    """The subschema ``fields`` names, ``$ref``s followed; None when there is none or it cannot tell."""
    node, problem = _walk(schema, fields, root)
    return None if problem is not None else node


def _walk(schema: Any, fields: FieldPath, root: Any) -> tuple[Any, str | None]:
    """(the subschema at ``fields`` or None when it cannot tell, why it is not there or None)."""
    root = schema if root is None else root
    node: Any = schema
    walked: list[str | int] = []
    for part in fields:
        node = _resolved(node, root)
        if not isinstance(node, Mapping):
            return None, None  # true/false or something unreadable: nothing to check against
        branches = [
            _resolved(b, root)
            for b in node.get("anyOf", node.get("oneOf", []))
            if isinstance(b, Mapping)
        ]
        if branches:
            found = [b for b in branches if _holds(b, part)]
            if not found:
                return None, _missing(part, walked, _names([*branches, node]))
            node = _step(found[0], part)
        else:
            if not _holds(node, part):
                return None, _missing(part, walked, _names([node]), _kind(node))
            node = _step(node, part)
        walked.append(part)
    return _resolved(node, root), None


def schema_types(node: Any, root: Any) -> frozenset[str] | None:
    """The JSON types a subschema allows (``type``, ``enum``/``const`` values, ``anyOf`` branches);
    None when it does not say."""
    node = _resolved(node, root)
    if not isinstance(node, Mapping):
        return None
    kind = node.get("type")
    if isinstance(kind, str):
        return frozenset({kind})
    if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
        return frozenset(kind)
    values = schema_values(node, root)
    if values is not None:
        return frozenset(json_type(value) for value in values)
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list) and branches:
        found: set[str] = set()
        for branch in branches:
            types = schema_types(branch, root)
            if types is None:
                return None
            found |= types
        return frozenset(found)
    return None


def schema_values(node: Any, root: Any) -> list[Any] | None:
    """The only values a subschema allows (``enum``, ``const``, or those of every ``anyOf`` branch);
    None when it allows others."""
    node = _resolved(node, root)
    if not isinstance(node, Mapping):
        return None
    if "const" in node:
        return [node["const"]]
    if isinstance(node.get("enum"), list):
        return list(node["enum"])
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list) and branches:
        values: list[Any] = []
        for branch in branches:
            more = schema_values(branch, root)
            if more is None:
                return None
            values += more
        return values
    return None


def json_type(value: Any) -> str:
    """The JSON Schema type of a value (an integral number is an "integer")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _resolved(node: Any, root: Any) -> Any:
    """Follow a local ``$ref`` (``#/$defs/Step``), as pydantic models write them."""
    for _ in range(32):
        if not (
            isinstance(node, Mapping)
            and isinstance(node.get("$ref"), str)
            and node["$ref"].startswith("#/")
        ):
            return node
        target: Any = root
        for segment in node["$ref"][2:].split("/"):
            segment = segment.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or segment not in target:
                return {}
            target = target[segment]
        node = target
    return node


def _holds(node: Mapping[str, Any], part: str | int) -> bool:
    kind = node.get("type")
    if isinstance(part, int):
        return (
            kind == "array"
            or "items" in node
            or "prefixItems" in node
            or (kind is None and "properties" not in node)
        )
    properties = node.get("properties")
    if isinstance(properties, Mapping) and part in properties:
        return True
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) or node.get("patternProperties"):
        return True
    if isinstance(properties, Mapping):
        return False
    return kind in (None, "object") and extra is not False


def _step(node: Mapping[str, Any], part: str | int) -> Any:
    if isinstance(part, int):
        prefix = node.get("prefixItems")
        if isinstance(prefix, list) and part < len(prefix):
            return prefix[part]
        return node.get("items", True)
    properties = node.get("properties")
    if isinstance(properties, Mapping) and part in properties:
        return properties[part]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else True


def _names(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for node in nodes:
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            names += [str(name) for name in properties if name not in names]
    return names


def _kind(node: Mapping[str, Any]) -> str | None:
    kind = node.get("type")
    return kind if isinstance(kind, str) else None


def _missing(
    part: str | int, walked: list[str | int], names: list[str], kind: str | None = None
) -> str:
    where = f" at {path_text(walked)}" if walked else ""
    if isinstance(part, int):
        return f"has no list{where} to take [{part}] from" + (
            f" (it is {_a(kind)})" if kind else ""
        )
    if not names:
        return f"has no field '{part}'{where}" + (
            f" (it is {_a(kind)}, not an object)" if kind and kind != "object" else ""
        )
    hint = did_you_mean(part, names) or f"; its fields: {', '.join(names[:10])}"
    return f"has no field '{part}'{where}{hint}"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def field_value(value: Any, fields: FieldPath) -> Any:
    """The value at ``fields`` inside ``value``; None when it is not there."""
    for part in fields:
        present = (
            isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value)
        ) or (isinstance(value, dict) and part in value)
        if not present:
            return None
        value = value[part]
    return value


def as_text(value: Any) -> str:
    """A value as a prompt shows it: strings plain, anything else as JSON; nothing as empty."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


__all__ = [
    "FieldPath",
    "as_text",
    "field_problem",
    "field_schema",
    "field_value",
    "json_type",
    "path_text",
    "reference_problem",
    "schema_problem",
    "schema_types",
    "schema_values",
    "strict_mode_problem",
]
