"""Structured outputs: an agent's JSON Schema, and what its answers are held to.

- ``schema_problem``: is a schema itself a valid JSON Schema (Draft 2020-12)?
- ``reference_problem``: does every ``$ref`` of a schema resolve inside it (no URL, no
  file, no pointer to nothing), without looping back to itself before descending
  into the answer? Schemas are never fetched or read from elsewhere: the validator
  looks refs up in a registry holding the schema alone.
- ``strict_mode_problem``: the first of OpenAI's strict-mode rules a schema breaks
  (None: it can be sent with ``strict: true``).
- ``field_problem``: does ``{{ NAME.output.a.b[0] }}`` name a field the schema
  has? (load-time checks of downstream references).
- ``OutputContract``: one agent's compiled schema; ``check`` parses an answer
  (tolerating a ```json fence) and validates it, or says why it is invalid (not
  JSON, the wrong shape, cut off by max_tokens, a refusal); ``reask_message``
  is what the model is told when it is asked again.
- ``field_value`` / ``as_text``: a field of a parsed value, and how a value
  renders in a prompt (strings plain, anything else as JSON).
- ``example_for_schema``: a value that follows a schema, for test doubles.

``jsonschema`` is imported only when a schema is checked or compiled: planning a
workflow without schemas, and the history commands, never load it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentops.workflow.suggest import did_you_mean

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
    from referencing._core import Resolver  # what Registry.resolver() returns; not re-exported

    from agentops.runtime.messages import ChatResponse

FieldPath = tuple[str | int, ...]

MAX_ERRORS_IN_REASK = 5
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n(.*?)\r?\n?```", re.DOTALL)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

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


def format_name(agent: str) -> str:
    """A response-format name OpenAI accepts (``^[a-zA-Z0-9_-]{1,64}$``)."""
    return (_NAME_UNSAFE.sub("_", agent) or "output")[:64]


# --- fields, for downstream references --------------------------------------------------


def field_problem(schema: Any, fields: FieldPath) -> str | None:
    """Why ``fields`` does not name something the schema can hold; None when it can (or cannot tell)."""
    node: Any = schema
    walked: list[str | int] = []
    for part in fields:
        node = _resolved(node, schema)
        if not isinstance(node, Mapping):
            return None  # true/false or something unreadable: nothing to check against
        branches = [
            _resolved(b, schema)
            for b in node.get("anyOf", node.get("oneOf", []))
            if isinstance(b, Mapping)
        ]
        if branches:
            found = [b for b in branches if _holds(b, part)]
            if not found:
                return _missing(part, walked, _names([*branches, node]))
            node = _step(found[0], part)
        else:
            if not _holds(node, part):
                return _missing(part, walked, _names([node]), _kind(node))
            node = _step(node, part)
        walked.append(part)
    return None


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


_MISSING = object()


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


def example_for_schema(schema: Any, name: str = "value", root: Any = None, depth: int = 0) -> Any:
    """A value that follows ``schema``, for test doubles (the test server, ``FakeProvider``): every
    property, strings named after their property, the first of an enum, one item per list."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 20:
        return name
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for segment in ref[2:].split("/"):
            target = target.get(segment, {}) if isinstance(target, dict) else {}
        return example_for_schema(target, name, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for keyword in ("anyOf", "oneOf"):
        branches = [
            b for b in schema.get(keyword) or [] if isinstance(b, dict) and b.get("type") != "null"
        ]
        if branches:
            return example_for_schema(branches[0], name, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {
            key: example_for_schema(value, str(key), root, depth + 1)
            for key, value in properties.items()
        }
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        prefix = schema.get("prefixItems") or []
        items = [
            example_for_schema(item, f"{name} {i + 1}", root, depth + 1)
            for i, item in enumerate(prefix)
        ]
        items += [
            example_for_schema(schema.get("items", {}), f"{name} {i + 1}", root, depth + 1)
            for i in range(len(items), count)
        ]
        return items
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    minimum = int(schema.get("minLength") or 0)
    return name if len(name) >= minimum else name + "x" * (minimum - len(name))


# --- answers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """An answer checked: ``value`` and its ``text`` when valid, else ``error`` (the first problem)
    and ``errors`` (every one found, for the re-ask)."""

    value: Any = None
    text: str | None = None
    error: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.error is None


def unfenced(text: str) -> str:
    """The JSON inside an answer: a ```json fenced block when there is one, else the text stripped."""
    stripped = text.strip()
    match = _FENCE.search(stripped)
    return match.group(1).strip() if match else stripped


class OutputContract:
    """One agent's output schema, compiled once; ``check`` holds each answer to it."""

    def __init__(self, schema: Mapping[str, Any] | bool, retries: int) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry

        self.schema = schema
        self.retries = retries
        # An empty registry: a $ref resolves inside the schema or not at all, never by a fetch
        # (jsonschema's default retrieves URLs and files, blocking the event loop for good).
        self._validator: Validator = Draft202012Validator(schema, registry=Registry())

    def check(self, response: ChatResponse, max_tokens: int) -> Verdict:
        """The answer's verdict; never raises, whatever the model wrote."""
        from referencing.exceptions import Unresolvable

        try:
            return self._check(response, max_tokens)
        except RecursionError:
            message = "the answer nests too deeply to read"
        except Unresolvable as error:  # a schema the load-time checks never saw (built in Python)
            message = (
                f"the output schema's $ref {error.ref!r} is not defined inside the schema; "
                "nothing is fetched or read to resolve it"
            )
        return Verdict(error=message, errors=(message,))

    def _check(self, response: ChatResponse, max_tokens: int) -> Verdict:
        if response.refusal:
            message = f"the model refused: {response.refusal}"
            return Verdict(error=message, errors=(message,))
        if response.finish_reason == "length":
            message = f"the answer was cut off at max_tokens ({max_tokens}); raise max_tokens or simplify the schema"
            return Verdict(error=message, errors=(message,))
        text = unfenced(response.text)
        try:
            value = json.loads(text)
        except ValueError as error:
            preview = text if len(text) <= 80 else text[:77] + "..."
            message = f"the answer is not JSON ({error}): {preview!r}"
            return Verdict(error=message, errors=(message,))
        problems = sorted(self._validator.iter_errors(value), key=_error_order)
        if problems:
            errors = tuple(
                f"at {path_text(p.absolute_path)}: {p.message}"
                for p in problems[:MAX_ERRORS_IN_REASK]
            )
            return Verdict(error=errors[0], errors=errors)
        return Verdict(value=value, text=text)

    def reask_message(self, verdict: Verdict) -> str:
        problems = "\n".join(f"- {error}" for error in verdict.errors)
        return (
            "Your answer does not follow the required JSON Schema:\n"
            f"{problems}\n\n"
            "Answer again with only a JSON value that follows this schema, nothing else:\n"
            f"{json.dumps(self.schema, ensure_ascii=False)}"
        )


def _error_order(error: ValidationError) -> tuple[int, str]:
    return len(error.absolute_path), path_text(error.absolute_path)


__all__ = [
    "MAX_ERRORS_IN_REASK",
    "FieldPath",
    "OutputContract",
    "Verdict",
    "as_text",
    "example_for_schema",
    "field_problem",
    "field_value",
    "format_name",
    "path_text",
    "reference_problem",
    "schema_problem",
    "strict_mode_problem",
    "unfenced",
]
