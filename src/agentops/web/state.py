"""A workflow run as the web view shows it: every agent of its definition with its
status (settled, running or waiting), the dependency graph, the critical path, and
the snapshot that live updates send. Built from ``HistoryReader`` records only."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from agentops.store.reader import HistoryReader
from agentops.store.records import AgentOutcome, AgentStart, WorkflowRunHeader, WorkflowRunRecord
from agentops.workflow.graph import WorkflowGraph, dependency_edges, describe_condition

NodeStatus = Literal["succeeded", "failed", "skipped", "cancelled", "running", "waiting"]
_SETTLED: frozenset[str] = frozenset(("succeeded", "failed", "skipped", "cancelled"))


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


@dataclass
class AgentState:
    name: str
    status: NodeStatus
    model: str | None = None
    provider: str | None = None
    outcome: AgentOutcome | None = None
    start: AgentStart | None = None

    @property
    def duration(self) -> float | None:
        return self.outcome.duration if self.outcome else None


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
        )
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
    blueprint = blueprint_of(
        definition, tuple(o.agent for o in outcomes) + tuple(s.agent for s in starts)
    )
    return combine(run, blueprint, outcomes, starts)


def combine(
    run: WorkflowRunRecord,
    blueprint: Blueprint,
    outcomes: list[AgentOutcome],
    starts: list[AgentStart],
) -> RunState:
    agents = {
        name: AgentState(name, "waiting", model=blueprint.models.get(name))
        for name in blueprint.names
    }
    still_running = run.status == "running"
    for start in starts:
        state = agents.setdefault(start.agent, AgentState(start.agent, "waiting"))
        # A start with no outcome in a run that is over: its process died mid-call.
        state.status = "running" if still_running else "cancelled"
        state.start, state.model, state.provider = start, start.model, start.provider
    for outcome in outcomes:  # the last outcome recorded for a name wins
        state = agents.setdefault(outcome.agent, AgentState(outcome.agent, "waiting"))
        state.status = node_status(outcome.status)
        state.outcome, state.model, state.provider = outcome, outcome.model, outcome.provider
    result = RunState(run=run, blueprint=blueprint, agents=agents)
    if blueprint.graph is not None:
        weights = {name: agent.duration or 0.0 for name, agent in agents.items()}
        result.critical_path, result.critical_seconds = blueprint.graph.critical_path(weights)
        if result.critical_seconds == 0.0:
            result.critical_path = []  # nothing has taken any time yet
    return result


def node_status(recorded: str) -> NodeStatus:
    if recorded in _SETTLED:
        return recorded  # type: ignore[return-value]
    if recorded == "success":  # a first-release file, before migration 4 rewrote it
        return "succeeded"
    return "failed" if recorded else "waiting"


def summary_of(state: AgentState) -> dict[str, Any]:
    """One agent's figures as the live updates send them."""
    outcome = state.outcome
    return {
        "status": state.status,
        "attempts": outcome.attempt_count if outcome else 0,
        "tokens": (
            f"{'~' if outcome.tokens_estimated else ''}{outcome.input_tokens}+{outcome.output_tokens}"
            if outcome
            else ""
        ),
        "cost": outcome.cost if outcome else None,
        "duration": outcome.duration if outcome else None,
    }


__all__ = [
    "AgentState",
    "Blueprint",
    "Dependency",
    "NodeStatus",
    "RunState",
    "blueprint_of",
    "combine",
    "node_status",
    "run_state",
    "summary_of",
]
