"""A workflow run as the web view shows it: every agent of its definition with its
status (settled, running or waiting), the dependency graph, the critical path, and
the snapshot that live updates send. Built from ``HistoryReader`` records only.

A fan-out agent (``for_each``) is one ``AgentState`` whatever its item count: its
items (``writer[2]``, each an agent run of its own in the history) are ``ItemState``s
in its ``FanOutState``, counted by status, their tokens and cost summed. An agent
skipped because its ``when`` was false reads ``routed`` (routed away), apart from
``skipped`` (a dependency failed, or the cost cap).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from agentops.runtime.events import SkipCause, instance_key, split_instance_key, split_run_key
from agentops.store.reader import HistoryReader
from agentops.store.records import (
    AgentOutcome,
    AgentStart,
    WorkflowRunHeader,
    WorkflowRunRecord,
)
from agentops.workflow.graph import WorkflowGraph, dependency_edges, describe_condition

NodeStatus = Literal[
    "succeeded", "failed", "skipped", "routed", "cancelled", "running", "waiting", "approval"
]
_SETTLED: frozenset[str] = frozenset(("succeeded", "failed", "skipped", "routed", "cancelled"))
ROUTED_LABEL = "routed away"
APPROVAL_LABEL = "waiting for approval"


@dataclass(frozen=True)
class Dependency:
    upstream: str
    alternative: bool  # one of alternatives (``any:`` / ``||``): dashed, labelled "or"


@dataclass(frozen=True, eq=False)  # hashed by identity: blueprint_of returns one per definition
class Blueprint:
    """What a run's definition says, independent of what happened: its agents in file
    order, their layers and dependencies. Immutable per run, so it is cached."""

    names: tuple[str, ...]
    layers: dict[str, int]
    dependencies: dict[str, tuple[Dependency, ...]]
    conditions: dict[str, str]  # "a && (b || c)"
    models: dict[str, str]
    graph: WorkflowGraph | None
    fan_outs: dict[str, str] = field(default_factory=dict)  # agent -> its ``for_each``
    whens: dict[str, str] = field(default_factory=dict)  # agent -> its ``when``


@dataclass
class ItemState:
    """One item of a fan-out: its agent run (``writer[2]``), settled, started or waiting."""

    index: int
    name: str
    status: NodeStatus
    outcome: AgentOutcome | None = None
    start: AgentStart | None = None


@dataclass
class FanOutState:
    """A fan-out agent's items as recorded so far; ``item_count`` is None until known."""

    item_count: int | None = None
    items: dict[int, ItemState] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return max(self.item_count or 0, len(self.items))

    def counts(self) -> dict[str, int]:
        """Items by status, those not started yet as ``waiting``."""
        found: dict[str, int] = {}
        for item in self.items.values():
            found[item.status] = found.get(item.status, 0) + 1
        if self.total > len(self.items):
            found["waiting"] = found.get("waiting", 0) + self.total - len(self.items)
        return found

    def outcomes(self) -> list[AgentOutcome]:
        return [item.outcome for item in self.items.values() if item.outcome is not None]


@dataclass
class AgentState:
    name: str
    status: NodeStatus
    model: str | None = None
    provider: str | None = None
    outcome: AgentOutcome | None = None
    start: AgentStart | None = None
    skip_cause: str | None = None
    fan_out: FanOutState | None = None  # a fan-out agent's items
    iterations: list[AgentOutcome] = field(default_factory=list)  # a loop member's, in order

    @property
    def duration(self) -> float | None:
        return self.outcome.duration if self.outcome else None

    @property
    def status_label(self) -> str:
        if self.status == "approval":
            return APPROVAL_LABEL
        return ROUTED_LABEL if self.status == "routed" else self.status


@dataclass
class RunState:
    run: WorkflowRunRecord
    blueprint: Blueprint
    agents: dict[str, AgentState]
    critical_path: list[str] = field(default_factory=list)
    critical_seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for agent in self.agents.values():
            found[agent.status] = found.get(agent.status, 0) + 1
        return found

    @property
    def settled(self) -> int:
        return sum(1 for agent in self.agents.values() if agent.status in _SETTLED)


@functools.lru_cache(maxsize=64)
def blueprint_of(definition: str | None, recorded: tuple[str, ...]) -> Blueprint:
    """The definition's agents (and graph), or, for a run recorded without a usable
    definition (a first-release file), the recorded agents with no edges."""
    graph = _graph_of(definition)
    if graph is None:
        names = tuple(dict.fromkeys(recorded))
        return Blueprint(
            names,
            dict.fromkeys(names, 0),
            {n: () for n in names},
            dict.fromkeys(names, ""),
            {},
            None,
        )  # no definition: a fan-out shows as the agent its item rows name
    order = {name: index for index, name in enumerate(graph.names)}
    dependencies = {
        name: tuple(
            Dependency(upstream, alternative)
            for upstream, alternative in sorted(
                dependency_edges(condition).items(), key=lambda i: order.get(i[0], 0)
            )
            if upstream in order
        )
        for name, condition in graph.conditions.items()
    }
    extra = tuple(
        name for name in dict.fromkeys(recorded) if name not in order
    )  # renamed since? shown apart
    names = (*graph.names, *extra)
    layers = {**graph.levels(), **dict.fromkeys(extra, 0)}
    return Blueprint(
        names=names,
        layers=layers,
        dependencies={**dependencies, **{n: () for n in extra}},
        conditions={
            **{n: describe_condition(c) for n, c in graph.conditions.items()},
            **dict.fromkeys(extra, ""),
        },
        models={agent.name: agent.model for agent in graph.workflow.agents},
        graph=graph,
        fan_outs={a.name: a.for_each for a in graph.workflow.agents if a.for_each},
        whens={a.name: a.when for a in graph.workflow.agents if a.when},
    )


def _graph_of(definition: str | None) -> WorkflowGraph | None:
    if not definition:
        return None
    from agentops.errors import AgentOpsError
    from agentops.workflow.loader import load_workflow_text

    try:
        return WorkflowGraph(
            load_workflow_text(definition, filename="<recorded definition>").workflow
        )
    except (AgentOpsError, ValueError):  # recorded by a version whose schema differs
        return None


def run_state(reader: HistoryReader, header: WorkflowRunHeader | WorkflowRunRecord) -> RunState:
    """Every agent's status now, read through ``reader``."""
    run = header.run if isinstance(header, WorkflowRunHeader) else header
    definition = header.definition if isinstance(header, WorkflowRunHeader) else None
    outcomes = reader.agent_outcomes(run.id)
    starts = reader.agent_starts(run.id)
    return combine(
        run, blueprint_of(definition, recorded_agents(outcomes, starts)), outcomes, starts
    )


def recorded_agents(outcomes: list[AgentOutcome], starts: list[AgentStart]) -> tuple[str, ...]:
    """The workflow agents a run's records name (an item's, its fan-out agent)."""
    return tuple(o.agent for o in outcomes) + tuple(split_instance_key(s.agent)[0] for s in starts)


def combine(
    run: WorkflowRunRecord,
    blueprint: Blueprint,
    outcomes: list[AgentOutcome],
    starts: list[AgentStart],
) -> RunState:
    agents = {
        name: AgentState(
            name,
            "waiting",
            model=blueprint.models.get(name),
            fan_out=FanOutState() if name in blueprint.fan_outs else None,
        )
        for name in blueprint.names
    }
    still_running = run.status == "running"
    # A start with no outcome in a run that is over: its process died mid-call.
    started: NodeStatus = "running" if still_running else "cancelled"
    for start in starts:  # an item's start row is named as the item (``writer[2]``)
        name, iteration, index = split_run_key(start.agent)  # an iteration's: ``draft#2``
        state = agents.setdefault(name, AgentState(name, "waiting"))
        if iteration is not None and index is None:
            state.status, state.start = started, start
            continue
        if index is not None:
            item = _item(state, index, instance_key(name, index))
            item.status, item.start = started, start
            continue
        state.status, state.start = started, start
        state.model = start.model or state.model  # a fan-out's own start names no model
        state.provider = start.provider
    for outcome in outcomes:  # the last outcome recorded for a name wins
        name, index = outcome.agent, outcome.item_index
        state = agents.setdefault(name, AgentState(name, "waiting"))
        status = node_status(outcome.status, outcome.skip_cause)
        if outcome.iteration is not None and index is None:  # an iteration of a loop's member
            state.iterations.append(outcome)
            if state.outcome is None:  # the loop goes on until the member's own row
                state.status = "running" if still_running else status
            continue
        if index is not None:
            item = _item(state, index, outcome.name)
            item.status, item.outcome = status, outcome
            continue
        state.status, state.skip_cause = status, outcome.skip_cause
        state.outcome, state.model, state.provider = outcome, outcome.model, outcome.provider
        if state.fan_out is not None or outcome.item_count is not None:
            state.fan_out = state.fan_out or FanOutState()
            state.fan_out.item_count = outcome.item_count
    for state in agents.values():
        if state.fan_out is not None and state.fan_out.items and state.status == "waiting":
            state.status = started  # its items are recorded before it settles
    result = RunState(run=run, blueprint=blueprint, agents=agents)
    if blueprint.graph is not None:
        weights = {name: agent.duration or 0.0 for name, agent in agents.items()}
        result.critical_path, result.critical_seconds = blueprint.graph.critical_path(weights)
        if result.critical_seconds == 0.0:
            result.critical_path = []  # nothing has taken any time yet
    return result


def _item(state: AgentState, index: int, name: str) -> ItemState:
    state.fan_out = state.fan_out or FanOutState()
    item = state.fan_out.items.get(index)
    if item is None:
        item = state.fan_out.items[index] = ItemState(index, name, "waiting")
    return item


def node_status(recorded: str, skip_cause: str | None = None) -> NodeStatus:
    if recorded == "skipped" and skip_cause == SkipCause.ROUTED:
        return "routed"
    if recorded in _SETTLED:
        return recorded  # type: ignore[return-value]
    if recorded == "success":  # a first-release file, before migration 4 rewrote it
        return "succeeded"
    if recorded == "waiting_approval":
        return "approval"
    if recorded == "waiting":  # behind an approval: not started
        return "waiting"
    return "failed" if recorded else "waiting"


def summary_of(state: AgentState) -> dict[str, Any]:
    """One agent's figures as the live updates send them; a fan-out's are its items' summed,
    with its items by status."""
    outcome = state.outcome
    parts = state.fan_out.outcomes() if state.fan_out is not None else []
    if not parts and outcome is not None:
        parts = [outcome]
    figures: dict[str, Any] = {
        "status": state.status,
        "skip_cause": state.skip_cause,
        "attempts": sum(part.attempt_count for part in parts),
        "tokens": _tokens(parts),
        "cost": _cost(parts),
        "duration": outcome.duration if outcome else None,
    }
    if state.fan_out is not None:
        figures["item_count"] = state.fan_out.item_count
        figures["items"] = state.fan_out.counts()
    return figures


def _tokens(parts: list[AgentOutcome]) -> str:
    if not parts:
        return ""
    estimated = "~" if any(part.tokens_estimated for part in parts) else ""
    spent = [part for part in parts if not part.reused] or parts
    return f"{estimated}{sum(p.input_tokens for p in spent)}+{sum(p.output_tokens for p in spent)}"


def _cost(parts: list[AgentOutcome]) -> float | None:
    """What the parts cost this run (reused ones: their own recorded cost, as before)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0].cost
    costs = [part.cost for part in parts if not part.reused]
    return None if None in costs else sum(cost or 0.0 for cost in costs)


__all__ = [
    "ROUTED_LABEL",
    "AgentState",
    "Blueprint",
    "Dependency",
    "FanOutState",
    "ItemState",
    "NodeStatus",
    "RunState",
    "blueprint_of",
    "combine",
    "node_status",
    "recorded_agents",
    "run_state",
    "summary_of",
]
