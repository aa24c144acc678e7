"""The history's records: plain dataclasses that every reader returns, whatever the
store behind it (SQLite today). ``to_json()`` gives the ``--json`` shape, with the
same keys in the same order every time. A leaf: it imports nothing of the store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


@dataclass
class AttemptRecord:
    number: int
    status: str
    http_status: int | None
    error: str | None
    error_type: str | None
    started_at: str | None
    duration: float | None
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float | None
    turn: int = 1
    validation_error: str | None = None  # structured output: why this answer did not validate

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ToolCallRow:
    """One row of ``tool_calls``."""

    turn: int
    call_id: str | None
    tool: str
    arguments: str | None
    status: str
    result: str | None
    error: str | None
    started_at: str | None
    duration: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ToolServerRow:
    """One row of ``tool_servers``: an MCP server a run started."""

    name: str
    transport: str
    target: str | None
    tools: list[str]
    stderr: str | None
    started_at: str | None
    stopped_at: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AgentRunRecord:
    """One row of ``runs``: an agent's run within a workflow run."""

    id: int
    workflow_run_id: int | None
    workflow: str | None
    agent: str | None
    status: str | None
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float | None
    retries: int | None
    started_at: str | None
    finished_at: str | None
    duration: float | None
    reused: bool
    reused_from_run_id: int | None
    output: str | None
    error: str | None
    prompt: str | None = None  # loaded by agent_run() only
    value: str | None = None  # structured output: the parsed answer as JSON text (None: no schema)
    attempts: list[AttemptRecord] = field(default_factory=list)  # agent_run() / workflow_run()
    tool_calls: list[ToolCallRow] = field(default_factory=list)  # agent_run() / workflow_run()

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not detail:
            del data["prompt"], data["attempts"], data["tool_calls"]
        # --json gives the parsed answer as an object, not a string holding JSON.
        data["value"] = self.parsed_value
        return data

    @property
    def parsed_value(self) -> Any:
        return None if self.value is None else json.loads(self.value)


@dataclass
class WorkflowRunRecord:
    """One row of ``workflow_runs``; ``status`` is the effective one (see liveness)."""

    id: int
    workflow: str | None
    status: str
    started_at: str | None
    finished_at: str | None
    duration: float | None
    agents_total: int
    agents_succeeded: int
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float
    cost_cap: float | None
    resumed_from: int | None
    source_path: str | None
    hostname: str | None
    pid: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorkflowRunDetail:
    run: WorkflowRunRecord
    definition: str | None
    definition_sha256: str | None
    inputs: dict[str, Any]
    agents: list[AgentRunRecord]
    trace_id: str | None = None  # the run's OpenTelemetry trace, when it was traced
    trace_span_id: str | None = None  # its workflow span
    tool_servers: list[ToolServerRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.run.to_json(),
            "definition_sha256": self.definition_sha256,
            "inputs": self.inputs,
            "trace_id": self.trace_id,
            "trace_span_id": self.trace_span_id,
            "definition": self.definition,
            "agents": [agent.to_json(detail=True) for agent in self.agents],
            "tool_servers": [server.to_json() for server in self.tool_servers],
        }


class CostGrouping(StrEnum):
    workflow = "workflow"
    model = "model"
    day = "day"


@dataclass
class CostGroup:
    key: str
    workflow_runs: int
    agent_runs: int
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float
    unpriced_runs: int  # agent runs whose cost is unknown (no price for the model)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- what the web view reads (see reader.HistoryReader) ------------------------------------------


@dataclass
class WorkflowRunHeader:
    """A workflow run without its agents: what a run's page shows above the graph."""

    run: WorkflowRunRecord
    definition: str | None
    definition_sha256: str | None
    inputs: dict[str, Any]


@dataclass
class RunPage:
    """One page of workflow runs, newest first, and the keyset cursors to its neighbours:
    ``older`` is the ``before`` of the next page, ``newer`` the ``after`` of the previous
    (None: there is none)."""

    runs: list[WorkflowRunRecord]
    older: int | None
    newer: int | None


@dataclass
class AgentOutcome:
    """A settled agent in a workflow run, without its prompt and output (a graph node's data)."""

    run_id: int  # its row in runs
    agent: str
    status: str
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float | None
    attempts: int
    started_at: str | None
    finished_at: str | None
    duration: float | None
    reused: bool
    reused_from_run_id: int | None
    error: str | None


@dataclass
class AgentStart:
    """An agent that started and has not settled (or never did: its process died)."""

    agent: str
    model: str | None
    provider: str | None
    started_at: str | None
    prompt: str | None = None  # loaded by agent_start() only
