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
from typing import Any

from agentops.workflow.expressions import ITEM, ITEM_NUMBERS, ItemScope, item_value
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


def references(task: str) -> list[Reference]:
    """Every ``{{ ... }}`` placeholder in a task, classified."""
    found = []
    for match in PLACEHOLDER.finditer(task):
        item = _ITEM.match(match.group(1))
        if item:
            name = item.group(1) or item.group(3)
            fields = _fields(item.group(2) or "")
            found.append(Reference("item", name, match.group(0), match.start(), fields))
            continue
        inner = _REFERENCE.match(match.group(1))
        if inner and inner.group(1) == "inputs" and not inner.group(3):
            found.append(Reference("input", inner.group(2), match.group(0), match.start()))
        elif inner and inner.group(2) == "output":
            fields = _fields(inner.group(3))
            found.append(Reference("agent", inner.group(1), match.group(0), match.start(), fields))
        elif inner and inner.group(2) == PREVIOUS and _fields(inner.group(3))[:1] == ("output",):
            fields = _fields(inner.group(3))[1:]
            found.append(
                Reference("previous", inner.group(1), match.group(0), match.start(), fields)
            )
        else:
            found.append(
                Reference("invalid", match.group(1).strip(), match.group(0), match.start())
            )
    return found


@dataclass(frozen=True)
class Previous:
    """What a loop's members answered in the previous iteration (empty on the first): their
    text, and the parsed values of those with an output schema."""

    outputs: Mapping[str, str]
    values: Mapping[str, Any]


def referenced_agents(task: str) -> set[str]:
    return {ref.name for ref in references(task) if ref.kind == "agent"}


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

    def replace(match: re.Match[str]) -> str:
        in_item = _ITEM.match(match.group(1))
        if in_item:
            if item is None:
                return match.group(0)
            kind = in_item.group(3) or ITEM
            return as_text(item_value(item, kind, _fields(in_item.group(2) or "")))
        inner = _REFERENCE.match(match.group(1))
        if not inner:
            return match.group(0)
        owner, attribute, path = inner.groups()
        if owner == "inputs":
            if path:
                return match.group(0)
            value = inputs.get(attribute)
            return "" if value is None else str(value)
        if attribute == PREVIOUS and previous is not None:
            steps = _fields(path)
            if steps[:1] != ("output",):
                return match.group(0)
            if len(steps) == 1:
                return previous.outputs.get(owner, "")
            return as_text(field_value(previous.values.get(owner), steps[1:]))
        if attribute != "output":
            return match.group(0)
        if not path:
            return outputs.get(owner, "")
        return as_text(field_value((values or {}).get(owner), _fields(path)))

    return PLACEHOLDER.sub(replace, task)
