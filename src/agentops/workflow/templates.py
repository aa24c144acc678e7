"""Prompt templates: ``{{ agent.output }}``, ``{{ agent.output.field[0].name }}``,
``{{ inputs.name }}`` and, in a fan-out agent, ``{{ item }}`` (``{{ item.field[0] }}``),
``{{ item_index }}``, ``{{ item_number }}`` and ``{{ item_count }}``, and in a loop's member
``{{ NAME.previous.output }}`` (``{{ NAME.previous.output.field }}``), what loop member NAME
answered in the previous iteration (empty on the first); nothing else.

Substitution is plain text replacement: a template cannot execute code, call
methods or filters. A field reference reads the parsed value of an agent with an
output schema (``structured``): strings render plain, anything else as JSON; a
field the answer does not have renders empty. The item renders the same way. The prompt an agent is sent is
assembled from rendered templates in ``agentops.runtime.prompts``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agentops.workflow.expressions import ITEM_NUMBERS, ItemScope, item_value
from agentops.workflow.schemas import FieldPath, as_text, field_value

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_REFERENCE = re.compile(r"^\s*([A-Za-z_][\w\-]*)\.([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[\d+\])*)\s*$")
_ITEM = re.compile(
    r"^\s*(?:(item)((?:\.[A-Za-z_]\w*|\[\d+\])*)|(" + "|".join(ITEM_NUMBERS) + r"))\s*$"
)
_FIELD = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")
PREVIOUS = "previous"  # {{ NAME.previous.output }}: a loop member's answer one iteration back


@dataclass(frozen=True)
class Reference:
    kind: str  # "agent" | "previous" | "input" | "item" | "invalid"
    name: str  # for "item": item, item_index, item_number or item_count
    text: str  # the whole placeholder, braces included
    offset: int  # where it starts in the task text
    fields: FieldPath = ()  # {{ a.output.x[0] }}: ("x", 0)


def _fields(text: str) -> FieldPath:
    return tuple(name if name else int(index) for name, index in _FIELD.findall(text))


@dataclass(frozen=True)
class Template:
    """A template split once: ``literals[0] refs[0] literals[1] … refs[-1] literals[-1]``."""

    literals: tuple[str, ...]
    refs: tuple[Reference, ...]
    agents: frozenset[str]  # the agents whose output it places


@lru_cache(maxsize=4096)
def parse(task: str) -> Template:
    """Every ``{{ ... }}`` placeholder in a template, classified. Cached: a fan-out renders the
    same template once per item, and parsing it costs more than rendering it."""
    literals: list[str] = []
    found: list[Reference] = []
    end = 0
    for match in PLACEHOLDER.finditer(task):
        literals.append(task[end : match.start()])
        end = match.end()
        found.append(_classify(match))
    literals.append(task[end:])
    agents = frozenset(ref.name for ref in found if ref.kind == "agent")
    return Template(tuple(literals), tuple(found), agents)


def _classify(match: re.Match[str]) -> Reference:
    inner_text, text, offset = match.group(1), match.group(0), match.start()
    item = _ITEM.match(inner_text)
    if item:
        name = item.group(1) or item.group(3)
        return Reference("item", name, text, offset, _fields(item.group(2) or ""))
    inner = _REFERENCE.match(inner_text)
    if inner and inner.group(1) == "inputs":
        if inner.group(3):  # {{ inputs.name.field }}: inputs have no fields
            return Reference("invalid", inner_text.strip(), text, offset)
        return Reference("input", inner.group(2), text, offset)
    if inner and inner.group(2) == "output":
        return Reference("agent", inner.group(1), text, offset, _fields(inner.group(3)))
    if inner and inner.group(2) == PREVIOUS and _fields(inner.group(3))[:1] == ("output",):
        return Reference("previous", inner.group(1), text, offset, _fields(inner.group(3))[1:])
    return Reference("invalid", inner_text.strip(), text, offset)


@dataclass(frozen=True)
class Previous:
    """What a loop's members answered in the previous iteration (empty on the first): their
    text, and the parsed values of those with an output schema."""

    outputs: Mapping[str, str]
    values: Mapping[str, Any]


def references(task: str) -> tuple[Reference, ...]:
    """Every ``{{ ... }}`` placeholder in a task, classified."""
    return parse(task).refs


def referenced_agents(task: str) -> frozenset[str]:
    return parse(task).agents


def render(
    task: str,
    outputs: Mapping[str, str],
    inputs: Mapping[str, Any],
    values: Mapping[str, Any] | None = None,
    *,
    item: ItemScope | None = None,
    previous: Previous | None = None,
) -> str:
    """Replace placeholders; an agent that produced nothing (skipped OR branch) renders empty.
    ``values``: the parsed answers of agents with an output schema, for field references.
    ``item``: a fan-out instance's item (outside a fan-out, item placeholders stay as written).
    ``previous``: in a loop, the previous iteration's answers (outside one, previous
    placeholders stay as written)."""
    template = parse(task)
    if not template.refs:
        return task
    literals = template.literals
    pieces = [literals[0]]
    for after, ref in enumerate(template.refs, 1):  # no slice of the literals made per render
        pieces.append(_value(ref, outputs, inputs, values, item, previous))
        pieces.append(literals[after])
    return "".join(pieces)


def _value(
    ref: Reference,
    outputs: Mapping[str, str],
    inputs: Mapping[str, Any],
    values: Mapping[str, Any] | None,
    item: ItemScope | None,
    previous: Previous | None = None,
) -> str:
    if ref.kind == "agent":
        if not ref.fields:
            return outputs.get(ref.name, "")
        return as_text(field_value((values or {}).get(ref.name), ref.fields))
    if ref.kind == "input":
        value = inputs.get(ref.name)
        return "" if value is None else str(value)
    if ref.kind == "previous" and previous is not None:
        if not ref.fields:
            return previous.outputs.get(ref.name, "")
        return as_text(field_value(previous.values.get(ref.name), ref.fields))
    if ref.kind == "item" and item is not None:
        if ref.name == "item" and not ref.fields and isinstance(item.value, str):
            return item.value  # the common ``{{ item }}`` of a list of strings, without a call
        return as_text(item_value(item, ref.name, ref.fields))
    return ref.text  # an invalid placeholder (reported at load), or an item outside a fan-out
