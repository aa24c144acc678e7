"""Structured outputs at run time: what an agent's answers are held to.

- ``OutputContract``: one agent's compiled schema; ``check`` parses an answer
  (tolerating a ```json fence) and validates it, or says why it is invalid (not
  JSON, the wrong shape, cut off by max_tokens, a refusal); ``reask_message``
  is what the model is told when it is asked again.
- ``format_name``: the response-format name a schema is sent under.
- ``example_for_schema``: a value that follows a schema, for test doubles.

The checks of a schema itself, at load time, are the workflow's
(``agentops.workflow.schemas``). ``jsonschema`` is imported only when a schema is
compiled: planning a workflow without schemas, and the history commands, never load it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentops.workflow.quick_schema import quick_check
from agentops.workflow.schemas import path_text

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    from agentops.runtime.messages import ChatResponse


MAX_ERRORS_IN_REASK = 5
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n(.*?)\r?\n?```", re.DOTALL)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def format_name(agent: str) -> str:
    """A response-format name OpenAI accepts (``^[a-zA-Z0-9_-]{1,64}$``)."""
    return (_NAME_UNSAFE.sub("_", agent) or "output")[:64]


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
        # Most answers follow the schema: a quick test says so without jsonschema's descent.
        self._quick = quick_check(schema)

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
        if self._quick is not None and self._quick(value):
            return Verdict(value=value, text=text)
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
    "OutputContract",
    "Verdict",
    "example_for_schema",
    "format_name",
    "unfenced",
]
