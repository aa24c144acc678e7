"""The evaluator-optimizer loop the engine, store and view tests of loops share."""

from __future__ import annotations

from typing import Any

VERDICT = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "feedback": {"type": "string"}},
    "required": ["approved", "feedback"],
    "additionalProperties": False,
}

REJECT = {"approved": False, "feedback": "Say what it costs."}
APPROVE = {"approved": True, "feedback": "Good."}


def refine_agents(**critic: Any) -> list[dict[str, Any]]:
    """draft → critic inside the loop, publish after it."""
    return [
        {
            "name": "draft",
            "task": "Write a blurb. Last feedback: [{{ critic.previous.output.feedback }}]",
        },
        {
            "name": "critic",
            "depends_on": "draft",
            "output": {"schema": VERDICT},
            "task": "Review this draft: {{ draft.output }}",
            **critic,
        },
        {
            "name": "publish",
            "depends_on": ["draft", "critic"],
            "task": "Publish: {{ draft.output }}",
        },
    ]


def refine_loop(**loop: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "refine",
            "agents": ["draft", "critic"],
            "until": "critic.output.approved",
            "max_iterations": 3,
            **loop,
        }
    ]
