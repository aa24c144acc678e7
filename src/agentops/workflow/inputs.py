"""Workflow inputs: ``--input key=value`` arguments, checked against the workflow's ``inputs:``.

An input declared with nothing (``topic:``), or as a mapping without a
default (``{description: ...}``, ``{required: true}``), is required; a scalar
(``audience: engineers``) or a mapping's ``default`` makes it optional.
``required: false`` without a default makes it optional and empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentops.errors import UsageError
from agentops.workflow.spec import InputSpec, Workflow
from agentops.workflow.suggest import did_you_mean


def parse_input_args(pairs: list[str]) -> dict[str, str]:
    """``["topic=AI chips", "n=3"]`` → ``{"topic": "AI chips", "n": "3"}``; the value may contain '='."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise UsageError(
                f'--input expects KEY=VALUE, got {pair!r}; for example --input topic="AI chips"'
            )
        if key in parsed:
            raise UsageError(f"--input {key}=... is given twice; give each input once")
        parsed[key] = value
    return parsed


def is_required(workflow: Workflow, name: str) -> bool:
    declared = workflow.inputs[name]
    if isinstance(declared, InputSpec):
        if declared.required is not None:
            return declared.required
        return declared.default is None
    return declared is None


def resolve_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared input's value: as given, else its default. Unknown or missing ones → UsageError."""
    declared = list(workflow.inputs)
    for name in given:
        if name not in workflow.inputs:
            hint = did_you_mean(name, declared) or (
                f"; this workflow declares: {', '.join(declared)}"
                if declared
                else "; this workflow declares no inputs"
            )
            raise UsageError(f"unknown input '{name}'{hint}")
    missing = [name for name in declared if name not in given and is_required(workflow, name)]
    if missing:
        flags = " ".join(f"--input {name}=VALUE" for name in missing)
        noun = "input" if len(missing) == 1 else "inputs"
        raise UsageError(
            f"missing required {noun} {', '.join(repr(name) for name in missing)}; pass {flags}"
        )
    return {
        name: given[name] if name in given else workflow.input_default(name) for name in declared
    }
