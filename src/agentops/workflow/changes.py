"""What changed in an agent's definition between two versions of a workflow, in the parts that
decide its answer: what ``agentops rerun`` checks before it reuses a recorded output."""

from __future__ import annotations

from typing import Any

from agentops.workflow.spec import Agent, Workflow

# Read off the agent as it runs: defaults from the policies filled in, its provider's endpoint
# and its tools' definitions included. Retries, timeouts and limits do not change an answer.
_PARTS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("provider", "provider"),
    ("system", "system prompt"),
    ("task", "task"),
    ("temperature", "temperature"),
    ("max_tokens", "max_tokens"),
    ("tools", "tools"),
    ("output", "output schema"),
    ("for_each", "for_each"),
    ("when", "when"),
    ("depends_on", "depends_on"),
)


def _answer_parts(workflow: Workflow, agent: Agent) -> dict[str, Any]:
    provider = workflow.providers.get(agent.provider or "")
    return {
        "model": agent.model,
        "provider": [agent.provider, None if provider is None else provider.model_dump()],
        "system": agent.system,
        "task": agent.task,
        "temperature": workflow.effective_temperature(agent),
        "max_tokens": workflow.effective_max_tokens(agent),
        "tools": [[pick, _tool(workflow, pick)] for pick in agent.tools],
        "output": None if agent.output is None else agent.output.model_dump(by_alias=True),
        "for_each": agent.for_each,
        "when": agent.when,
        "depends_on": agent.depends_on,
    }


def _tool(workflow: Workflow, pick: str) -> Any:
    spec = workflow.tools.get(pick.partition(".")[0])
    return None if spec is None else spec.model_dump(exclude={"timeout", "startup_timeout"})


def answer_changes(before: Workflow, after: Workflow, name: str) -> list[str]:
    """The parts of agent ``name`` that differ (``task``, ``model``...); empty when none does,
    or when the agent is missing from either version."""
    try:
        old, new = before.agent(name), after.agent(name)
    except KeyError:
        return []
    parts_before, parts_after = _answer_parts(before, old), _answer_parts(after, new)
    return [label for part, label in _PARTS if parts_before[part] != parts_after[part]]


__all__ = ["answer_changes"]
