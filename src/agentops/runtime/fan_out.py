"""What a fan-out (``for_each``) is made of, apart from scheduling its items: the list it runs
over, and the agent's result from its items' results.

The engine decides when each item runs (``Engine._fan_out``); these decide what the list is
and what the items add up to, so the rules read in one place.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from agentops.runtime.budget import COST_CAP_REASON
from agentops.runtime.events import AgentResult, AgentStatus, SkipCause
from agentops.workflow.expressions import Expression, ExpressionError, Scope


def items_of(source: Expression, scope: Scope, limit: int) -> list[Any]:
    """The list ``source`` reads in ``scope``; an ExpressionError says why there is none."""
    items = source.evaluate(scope)
    if not isinstance(items, list):
        kind = "null" if items is None else json_kind(items)
        raise ExpressionError(f"{source.text} is {kind}, not a list")
    if len(items) > limit:
        raise ExpressionError(
            f"{source.text} has {len(items)} items, more than max_items {limit}; "
            "raise max_items if that many are expected"
        )
    return items


def finish_fan_out(
    result: AgentResult,
    slots: list[AgentResult | None],
    *,
    structured: bool,
    on_item_error: Literal["fail", "continue"],
    stop_reason: str | None,
) -> None:
    """The agent's result from its items' (``None``: an item never started): their outputs in
    item order (parsed values when ``structured``), their spend summed, and its status."""
    instances = [instance for instance in slots if instance is not None]
    result.instances = instances
    result.finished_at = time.time()
    result.add_spend_of(instances)
    failed = [i for i in instances if i.status is not AgentStatus.SUCCEEDED]
    not_started = len(slots) - len(instances)
    result.value = [
        None
        if i is None or i.status is not AgentStatus.SUCCEEDED
        else (i.value if structured else i.output or "")
        for i in slots
    ]
    result.output = json.dumps(result.value, ensure_ascii=False)
    count = len(slots)
    if not_started:
        capped = any(i.skip_cause is SkipCause.COST_CAP for i in instances)
        why = COST_CAP_REASON if capped else (stop_reason or "not started")
        result.status = AgentStatus.FAILED
        result.error = f"{why}: {not_started} of {count} items not run" + _first_failure(failed)
    elif failed and on_item_error == "fail":
        result.status = AgentStatus.FAILED
        result.error = f"{len(failed)} of {count} items failed" + _first_failure(failed)
    else:
        result.status = AgentStatus.SUCCEEDED
        if failed:  # on_item_error: continue
            result.error = (
                f"{len(failed)} of {count} items failed and are null in the list"
                + _first_failure(failed)
            )


def json_kind(value: Any) -> str:
    """``a string``, ``an object``…: what a value is, in JSON's words."""
    names = {
        bool: "a boolean",
        str: "a string",
        int: "a number",
        float: "a number",
        dict: "an object",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def _first_failure(failed: list[AgentResult]) -> str:
    if not failed:
        return ""
    first = failed[0]
    return f"; first: {first.name}: {first.error or first.status.value}"


__all__ = ["finish_fan_out", "items_of", "json_kind"]
