"""The history's records: plain dataclasses that every reader returns, whatever the
store behind it (SQLite today), and the one mapping from a row of each table to its
record. ``to_json()`` gives the ``--json`` shape, with the same keys in the same
order every time.

A mapping takes any row that is read by column name (``sqlite3.Row``; a PostgreSQL
driver's dict rows), so every store and every query of a row kind builds its record
the same way. Of the store it imports only the leaves ``liveness`` and ``timestamps``
(and of the runtime its event records, for a ``Decision`` and the instance names).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol

from agentops.runtime.events import Decision, run_key
from agentops.store.liveness import effective_status
from agentops.store.timestamps import from_iso


class StoredRow(Protocol):
    """A result row read by column name."""

    def __getitem__(self, column: str, /) -> Any: ...


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
    cached: bool = False  # answered from the response cache (or a replay): no call was made

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
    """One row of ``runs``: an agent's run within a workflow run.

    A fan-out instance has ``agent`` (its fan-out agent), ``item_index`` and ``item``, and
    ``name`` reads ``writer[2]``; the fan-out agent's own run has ``item_count`` and, read by
    ``workflow_run()``, its ``instances`` in item order. A loop's member has ``loop``; one of
    its iterations has ``iteration`` (``name`` reads ``draft#2``), its own run ``iterations``
    (how many ran), ``loop_end`` and, read by ``workflow_run()``, its ``iteration_runs`` in
    order. A skipped one has its ``skip_cause`` (routed, dependency, cost_cap); an agent with
    a ``when`` has its ``decision``."""

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
    item_index: int | None = None  # a fan-out instance: its item's 0-based index
    item: str | None = None  # ... and its item, as canonical JSON text
    item_count: int | None = None  # a fan-out agent: how many items it had
    skip_cause: str | None = None  # skipped: routed, dependency or cost_cap
    decision: Decision | None = None  # its ``when`` as evaluated
    iteration: int | None = None  # an iteration of a loop's member (1-based), or an item of one
    iterations: int | None = None  # a loop's member: how many iterations ran
    loop: str | None = None  # the loop, of a member and of its iterations
    loop_end: str | None = None  # a loop's member: why its loop ended
    node: str | None = None  # executor ray: the Ray node id that ran it (None: in the driver)
    attempts: list[AttemptRecord] = field(default_factory=list)  # agent_run() / workflow_run()
    tool_calls: list[ToolCallRow] = field(default_factory=list)  # agent_run() / workflow_run()
    # A fan-out agent's instances in item order (workflow_run() only; None: not a fan-out).
    instances: list[AgentRunRecord] | None = None
    # A loop member's iterations in order (workflow_run() only; None: not in a loop).
    iteration_runs: list[AgentRunRecord] | None = None

    @property
    def name(self) -> str:
        """The name runs show: the agent, ``writer[2]`` for an item, ``draft#2`` for an
        iteration, ``writer#2[0]`` for an item of a fan-out inside a loop."""
        return run_name(self.agent or "", self.item_index, self.iteration)

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for column in fields(self):
            data[column.name] = getattr(self, column.name)
            if column.name == "agent":
                data["name"] = self.name
        # --json gives parsed values as objects, not strings holding JSON.
        data["value"] = self.parsed_value
        data["item"] = self.parsed_item
        data["decision"] = decision_json(self.decision)
        if detail:
            data["attempts"] = [attempt.to_json() for attempt in self.attempts]
            data["tool_calls"] = [call.to_json() for call in self.tool_calls]
            for key in ("instances", "iteration_runs"):
                runs = getattr(self, key)
                data[key] = None if runs is None else [run.to_json(detail=True) for run in runs]
        else:
            for key in ("prompt", "attempts", "tool_calls", "instances", "iteration_runs"):
                del data[key]
        return data

    @property
    def parsed_value(self) -> Any:
        return None if self.value is None else json.loads(self.value)

    @property
    def parsed_item(self) -> Any:
        return None if self.item is None else json.loads(self.item)


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
class WorkflowRunHeader:
    """A workflow run without its agents: what a run's page shows above the graph."""

    run: WorkflowRunRecord
    definition: str | None
    definition_sha256: str | None
    inputs: dict[str, Any]


@dataclass
class WorkflowRunDetail(WorkflowRunHeader):
    """A workflow run's header with every agent run (prompts, attempts, tool calls) and
    its MCP servers: what ``show-workflow-run`` shows."""

    # In the order recorded; a fan-out instance is under its agent's ``instances``, not here
    # (unless its agent's own run was never recorded: a run killed mid-fan-out).
    agents: list[AgentRunRecord] = field(default_factory=list)
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

    def every_agent_run(self) -> Iterator[AgentRunRecord]:
        """Every agent run, a fan-out agent's instances (in item order) before it."""
        for agent in self.agents:
            yield from _with_instances(agent)


def _with_instances(record: AgentRunRecord) -> Iterator[AgentRunRecord]:
    for iteration in record.iteration_runs or ():
        yield from _with_instances(iteration)
    yield from record.instances or ()
    yield record


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


# --- what a run's page in the web view reads ------------------------------------------------


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
    """A settled agent in a workflow run without its prompt, output and attempts: a graph
    node's data, light because a run's page reads one per agent (1,000 on a large run).

    A subset of ``AgentRunRecord``: the same row of ``runs``, the same field names and
    meanings (a test holds them equal), with ``attempt_count`` where the full record
    lists its attempts, and ``agent``/``status`` never None.
    """

    id: int  # its row in runs
    agent: str
    status: str
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float | None
    attempt_count: int
    started_at: str | None
    finished_at: str | None
    duration: float | None
    reused: bool
    reused_from_run_id: int | None
    error: str | None
    item_index: int | None = None
    item_count: int | None = None
    skip_cause: str | None = None
    iteration: int | None = None
    iterations: int | None = None
    loop: str | None = None
    loop_end: str | None = None

    @property
    def name(self) -> str:
        """The name runs show (see ``AgentRunRecord.name``)."""
        return run_name(self.agent, self.item_index, self.iteration)


@dataclass
class AgentStart:
    """An agent that started and has not settled (or never did: its process died)."""

    agent: str
    model: str | None
    provider: str | None
    started_at: str | None
    prompt: str | None = None  # loaded by agent_start() only


# --- batches ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRecord:
    """One row of ``batches``."""

    id: int
    workflow: str
    definition: str
    source_path: str | None
    data_path: str
    data_sha256: str
    row_count: int
    input_map: dict[str, str]
    cost_cap: float | None
    status: str  # effective: "interrupted" when the recording process died
    started_at: str
    finished_at: str | None
    rows_succeeded: int
    rows_failed: int
    rows_skipped: int
    input_tokens: int
    output_tokens: int
    cost: float
    pauses: int
    paused_seconds: float

    @property
    def rows_done(self) -> int:
        return self.rows_succeeded + self.rows_failed + self.rows_skipped

    def to_json(self) -> dict[str, Any]:
        fields = dict(self.__dict__)
        del fields["definition"]
        return fields


@dataclass(frozen=True)
class RowOutcome:
    """One batch row's result as ``--out`` writes it."""

    row: int
    status: str
    inputs: dict[str, Any]
    outputs: dict[
        str, Any
    ]  # text, or the parsed value of an agent with an output schema; None: none
    cost: float
    error: str | None
    workflow_run_id: int
    # executor ray: the Ray nodes its agent runs (a fan-out's items too) ran on; [] in-process.
    nodes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- one mapping per row kind ----------------------------------------------------------------------


@dataclass(frozen=True)
class CacheEntry:
    """One answer of the response cache (``response_cache``): what a hit serves."""

    key: str
    workflow: str  # the workflow whose run wrote it
    agent: str | None
    model: str | None
    response: str  # the answer as JSON (``runtime.cache.response_json``)
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float | None  # what the call cost (None: no known price); each hit saves it
    created_at: float  # unix time


@dataclass
class CacheStat:
    """The response cache of one workflow: its entries, their size, and the hits its runs had."""

    workflow: str
    entries: int
    size: int  # bytes of stored answers
    hits: int  # attempts of its runs answered from the cache
    saved: float  # USD those hits did not spend (what their originals cost)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RecordedAnswer:
    """A succeeded attempt of a recorded run, as a replay answers from it."""

    agent: str  # the workflow agent (a fan-out instance's agent)
    request_key: str
    digest: dict[str, Any]
    response: str  # JSON (``runtime.cache.response_json``)
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost: float | None


def cache_entry(row: StoredRow) -> CacheEntry:
    """A row of ``response_cache``."""
    return CacheEntry(
        key=row["key"],
        workflow=row["workflow"],
        agent=row["agent"],
        model=row["model"],
        response=row["response"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        tokens_estimated=bool(row["tokens_estimated"]),
        cost=row["cost"],
        created_at=from_iso(row["created_at"]) or 0.0,
    )


def cache_stat(row: StoredRow) -> CacheStat:
    return CacheStat(
        workflow=row["workflow"],
        entries=row["entries"] or 0,
        size=row["size"] or 0,
        hits=row["hits"] or 0,
        saved=float(row["saved"] or 0.0),
    )


def recorded_answer(row: StoredRow) -> RecordedAnswer:
    """A succeeded attempt with its request and answer (``attempts`` joined to ``runs``)."""
    try:
        digest = json.loads(row["request_digest"] or "{}")
    except ValueError:
        digest = {}
    return RecordedAnswer(
        agent=row["agent"],
        request_key=row["request_key"],
        digest=digest if isinstance(digest, dict) else {},
        response=row["response"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        tokens_estimated=bool(row["tokens_estimated"]),
        cost=row["cost"] if not row["cached"] else row["saved_cost"],
    )


def attempt_record(row: StoredRow) -> AttemptRecord:
    """A row of ``attempts``."""
    return AttemptRecord(
        number=row["number"],
        status=row["status"],
        http_status=row["http_status"],
        error=row["error"],
        error_type=row["error_type"],
        started_at=row["started_at"],
        duration=row["duration"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        tokens_estimated=bool(row["tokens_estimated"]),
        cost=row["cost"],
        turn=row["turn"],
        validation_error=row["validation_error"],
        cached=bool(row["cached"]),
    )


def tool_call_row(row: StoredRow) -> ToolCallRow:
    """A row of ``tool_calls``."""
    return ToolCallRow(
        turn=row["turn"],
        call_id=row["call_id"],
        tool=row["tool"],
        arguments=row["arguments"],
        status=row["status"],
        result=row["result"],
        error=row["error"],
        started_at=row["started_at"],
        duration=row["duration"],
    )


def tool_server_row(row: StoredRow) -> ToolServerRow:
    """A row of ``tool_servers`` (``tools`` is a JSON list)."""
    return ToolServerRow(
        name=row["name"],
        transport=row["transport"],
        target=row["target"],
        tools=_json_list(row["tools"]),
        stderr=row["stderr"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
    )


def agent_run_record(row: StoredRow, *, with_prompt: bool = False) -> AgentRunRecord:
    """A row of ``runs``, whole (its attempts and tool calls are read apart)."""
    return AgentRunRecord(
        id=row["id"],
        workflow_run_id=row["workflow_run_id"],
        workflow=row["workflow"],
        agent=row["agent"],
        status=row["status"],
        model=row["model"],
        provider=row["provider"],
        input_tokens=row["input_tokens"] or 0,
        output_tokens=row["output_tokens"] or 0,
        tokens_estimated=bool(row["tokens_estimated"]),
        cost=row["cost"],
        retries=row["retries"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration=row["duration"],
        reused=bool(row["reused"]),
        reused_from_run_id=row["reused_from_run_id"],
        output=row["output"],
        error=row["error"],
        value=row["value"],
        item_index=row["item_index"],
        item=row["item"],
        item_count=row["item_count"],
        skip_cause=row["skip_cause"],
        decision=decode_decision(row["decision"]),
        iteration=row["iteration"],
        iterations=row["iterations"],
        loop=row["loop"],
        loop_end=row["loop_end"],
        node=row["node"],
        prompt=row["prompt"] if with_prompt else None,
    )


def agent_outcome(row: StoredRow) -> AgentOutcome:
    """A row of ``runs``, light (see ``AgentOutcome``), with its ``attempt_count``."""
    return AgentOutcome(
        id=row["id"],
        agent=row["agent"] or "",
        status=row["status"] or "",
        model=row["model"],
        provider=row["provider"],
        input_tokens=row["input_tokens"] or 0,
        output_tokens=row["output_tokens"] or 0,
        tokens_estimated=bool(row["tokens_estimated"]),
        cost=row["cost"],
        attempt_count=row["attempt_count"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration=row["duration"],
        reused=bool(row["reused"]),
        reused_from_run_id=row["reused_from_run_id"],
        error=row["error"],
        item_index=row["item_index"],
        item_count=row["item_count"],
        skip_cause=row["skip_cause"],
        iteration=row["iteration"],
        iterations=row["iterations"],
        loop=row["loop"],
        loop_end=row["loop_end"],
    )


def agent_start(row: StoredRow, *, with_prompt: bool = False) -> AgentStart:
    """A row of ``agent_starts``."""
    prompt = row["prompt"] if with_prompt else None
    return AgentStart(row["agent"], row["model"], row["provider"], row["started_at"], prompt)


def workflow_run_record(row: StoredRow) -> WorkflowRunRecord:
    """A row of ``workflow_runs`` with its agent counts; the status is the effective one."""
    return WorkflowRunRecord(
        id=row["id"],
        workflow=row["workflow"],
        status=effective_status(
            row["status"], row["pid"], row["hostname"], row["process_start"], row["heartbeat_at"]
        ),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration=_seconds_between(row["started_at"], row["finished_at"]),
        agents_total=row["agents_total"],
        agents_succeeded=row["agents_succeeded"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        tokens_estimated=bool(row["tokens_estimated"]),
        cost=row["cost"] or 0.0,
        cost_cap=row["cost_cap"],
        resumed_from=row["resumed_from"],
        source_path=row["source_path"],
        hostname=row["hostname"],
        pid=row["pid"],
    )


def workflow_run_header(row: StoredRow) -> WorkflowRunHeader:
    """A row of ``workflow_runs`` with its definition and inputs."""
    return WorkflowRunHeader(
        run=workflow_run_record(row),
        definition=row["definition"],
        definition_sha256=row["definition_sha256"],
        inputs=decode_inputs(row["inputs"]),
    )


def cost_group(row: StoredRow) -> CostGroup:
    """A row of the spend query: ``runs`` summed by one key."""
    return CostGroup(
        key=row["key"],
        workflow_runs=row["workflow_runs"],
        agent_runs=row["agent_runs"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        tokens_estimated=bool(row["tokens_estimated"]),
        cost=row["cost"],
        unpriced_runs=row["unpriced_runs"],
    )


def batch_record(row: StoredRow) -> BatchRecord:
    """A row of ``batches``; the status is the effective one."""
    return BatchRecord(
        id=row["id"],
        workflow=row["workflow"],
        definition=row["definition"],
        source_path=row["source_path"],
        data_path=row["data_path"],
        data_sha256=row["data_sha256"],
        row_count=row["row_count"],
        input_map=json.loads(row["input_map"] or "{}"),
        cost_cap=row["cost_cap"],
        status=effective_status(row["status"], row["pid"], row["hostname"], row["process_start"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        rows_succeeded=row["rows_succeeded"],
        rows_failed=row["rows_failed"],
        rows_skipped=row["rows_skipped"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost=row["cost"],
        pauses=row["pauses"],
        paused_seconds=row["paused_seconds"],
    )


def run_name(agent: str, item_index: int | None, iteration: int | None = None) -> str:
    """An agent run's name as runs show it (``writer``, ``writer[2]``, ``draft#2``,
    ``writer#2[0]``); ``split_run_key`` reverses it."""
    return run_key(agent, iteration, item_index)


def group_instances(agents: list[AgentRunRecord]) -> list[AgentRunRecord]:
    """A run's agent runs (in the order recorded) with each fan-out item moved under its
    fan-out's ``instances`` (in item order), and each loop iteration under its member's
    ``iteration_runs`` (in order). A run whose parent has no row of its own (the process
    died mid-fan-out or mid-loop) stays where it was."""
    fan_outs = {
        (agent.agent, agent.iteration): agent
        for agent in agents
        if agent.item_index is None and agent.item_count is not None
    }
    members = {
        agent.agent: agent
        for agent in agents
        if agent.item_index is None and agent.iteration is None and agent.iterations is not None
    }
    for fan_out in fan_outs.values():
        fan_out.instances = []
    for member in members.values():
        member.iteration_runs = []
    grouped: list[AgentRunRecord] = []
    for agent in agents:
        if agent.item_index is not None:
            parent = fan_outs.get((agent.agent, agent.iteration))
            if parent is not None and parent.instances is not None:
                parent.instances.append(agent)
                continue
        elif agent.iteration is not None:
            owner = members.get(agent.agent)
            if owner is not None and owner.iteration_runs is not None:
                owner.iteration_runs.append(agent)
                continue
        grouped.append(agent)
    for fan_out in fan_outs.values():
        if fan_out.instances:
            fan_out.instances.sort(key=lambda instance: instance.item_index or 0)
    for member in members.values():
        if member.iteration_runs:
            member.iteration_runs.sort(key=lambda iteration: iteration.iteration or 0)
    return grouped


def decision_json(decision: Decision | None) -> dict[str, Any] | None:
    """A decision as ``--json`` and the ``decision`` column hold it."""
    if decision is None:
        return None
    return {
        "expression": decision.expression,
        "held": decision.held,
        "values": dict(decision.values),
    }


def decode_decision(text: str | None) -> Decision | None:
    """The ``decision`` column (None for none or a damaged value)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("expression"), str):
        return None
    values = value.get("values")
    return Decision(
        expression=value["expression"],
        held=bool(value.get("held")),
        values=values if isinstance(values, dict) else {},
    )


def decode_inputs(text: str | None) -> dict[str, Any]:
    """A run's inputs as stored (a JSON object); {} for none or a damaged value."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


def _seconds_between(start: str | None, end: str | None) -> float | None:
    started, finished = from_iso(start), from_iso(end)
    return None if started is None or finished is None else finished - started


@dataclass
class ApprovalRecord:
    """One row of ``approvals``: an agent that waited for a person, with the prompt
    (``before``) or answer (``after``) to decide on, read from its waiting runs row."""

    id: int
    workflow_run_id: int
    workflow: str | None
    agent: str
    mode: str  # before | after
    status: str  # pending | approved | rejected | revise
    requested_at: str | None
    timeout_at: str | None  # pending past this: its on_timeout decides on resume
    on_timeout: str | None
    decided_at: str | None
    decided_by: str | None
    text: str | None  # the comment, reason or feedback
    applied_run_id: int | None  # the run that resumed this one and took it
    prompt: str | None = None
    output: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


APPROVAL_COLUMNS = """a.id, a.workflow_run_id, w.workflow, a.agent, a.mode, a.status,
    a.requested_at, a.timeout_at, a.on_timeout, a.decided_at, a.decided_by, a.text,
    a.applied_run_id,
    (SELECT r.prompt FROM runs r WHERE r.workflow_run_id = a.workflow_run_id
        AND r.agent = a.agent AND r.status = 'waiting_approval' ORDER BY r.id DESC LIMIT 1)
        AS prompt,
    (SELECT r.output FROM runs r WHERE r.workflow_run_id = a.workflow_run_id
        AND r.agent = a.agent AND r.status = 'waiting_approval' ORDER BY r.id DESC LIMIT 1)
        AS output"""


def approval_record(row: StoredRow) -> ApprovalRecord:
    return ApprovalRecord(
        id=row["id"],
        workflow_run_id=row["workflow_run_id"],
        workflow=row["workflow"],
        agent=row["agent"],
        mode=row["mode"],
        status=row["status"],
        requested_at=row["requested_at"],
        timeout_at=row["timeout_at"],
        on_timeout=row["on_timeout"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        text=row["text"],
        applied_run_id=row["applied_run_id"],
        prompt=row["prompt"],
        output=row["output"],
    )
