"""Prompt templates: ``{{ agent.output }}``, ``{{ agent.output.field[0].name }}`` and
``{{ inputs.name }}``, and nothing else.

Substitution is plain text replacement: a template cannot execute code, call
methods or filters. A field reference reads the parsed value of an agent with an
output schema (``structured``): strings render plain, anything else as JSON; a
field the answer does not have renders empty. Agents whose output a task places
explicitly get no automatic context block; the others' outputs are appended in a
labelled block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentops.runtime.messages import Message
from agentops.runtime.structured import FieldPath, as_text, field_value
from agentops.workflow.spec import Agent

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_REFERENCE = re.compile(r"^\s*([A-Za-z_][\w\-]*)\.([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[\d+\])*)\s*$")
_FIELD = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")


@dataclass(frozen=True)
class Reference:
    kind: str  # "agent" | "input" | "invalid"
    name: str
    text: str  # the whole placeholder, braces included
    offset: int  # where it starts in the task text
    fields: FieldPath = ()  # {{ a.output.x[0] }}: ("x", 0)


def _fields(text: str) -> FieldPath:
    return tuple(name if name else int(index) for name, index in _FIELD.findall(text))


def references(task: str) -> list[Reference]:
    """Every ``{{ ... }}`` placeholder in a task, classified."""
    found = []
    for match in PLACEHOLDER.finditer(task):
        inner = _REFERENCE.match(match.group(1))
        if inner and inner.group(1) == "inputs" and not inner.group(3):
            found.append(Reference("input", inner.group(2), match.group(0), match.start()))
        elif inner and inner.group(2) == "output":
            fields = _fields(inner.group(3))
            found.append(Reference("agent", inner.group(1), match.group(0), match.start(), fields))
        else:
            found.append(
                Reference("invalid", match.group(1).strip(), match.group(0), match.start())
            )
    return found


def referenced_agents(task: str) -> set[str]:
    return {ref.name for ref in references(task) if ref.kind == "agent"}


def render(
    task: str,
    outputs: Mapping[str, str],
    inputs: Mapping[str, Any],
    values: Mapping[str, Any] | None = None,
) -> str:
    """Replace placeholders; an agent that produced nothing (skipped OR branch) renders empty.
    ``values``: the parsed answers of agents with an output schema, for field references."""

    def replace(match: re.Match[str]) -> str:
        inner = _REFERENCE.match(match.group(1))
        if not inner:
            return match.group(0)
        owner, attribute, path = inner.groups()
        if owner == "inputs":
            if path:
                return match.group(0)
            value = inputs.get(attribute)
            return "" if value is None else str(value)
        if attribute != "output":
            return match.group(0)
        if not path:
            return outputs.get(owner, "")
        return as_text(field_value((values or {}).get(owner), _fields(path)))

    return PLACEHOLDER.sub(replace, task)


CONTEXT_HEADER = "--- Outputs of upstream agents ---"
CONTEXT_FOOTER = "--- End of upstream outputs ---"


def build_messages(
    agent: Agent,
    upstream_outputs: Mapping[str, str],
    inputs: Mapping[str, Any],
    upstream_values: Mapping[str, Any] | None = None,
) -> tuple[Message, ...]:
    """The messages sent for ``agent``, given its succeeded direct dependencies' outputs
    (and the parsed values of those with an output schema)."""
    text = render(agent.task, upstream_outputs, inputs, upstream_values)
    # An output placed in the system prompt is placed too: do not send it twice.
    placed = referenced_agents(agent.task) | referenced_agents(agent.system or "")
    block = [(name, output) for name, output in upstream_outputs.items() if name not in placed]
    if block:
        sections = "\n\n".join(f"### {name}\n{output}" for name, output in block)
        text = f"{text}\n\n{CONTEXT_HEADER}\n{sections}\n{CONTEXT_FOOTER}"
    messages = []
    if agent.system:
        messages.append(
            Message("system", render(agent.system, upstream_outputs, inputs, upstream_values))
        )
    messages.append(Message("user", text))
    return tuple(messages)


def prompt_text(messages: tuple[Message, ...]) -> str:
    """Messages as one readable text, for the history and the terminal."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)
