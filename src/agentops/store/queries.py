"""The queries behind the history commands (read through ``SqliteHistoryReader``).

Every query here is served by an index (see migrations): listings read the
newest rows first (``ORDER BY id DESC LIMIT n`` walks the primary key or a
``(workflow, id)`` index), details look rows up by id or ``workflow_run_id``.
Rows become records through the mappings of ``records``.
"""

from __future__ import annotations

from agentops.errors import RunNotFoundError
from agentops.store.database import Database
from agentops.store.records import (
    AgentRunRecord,
    AttemptRecord,
    CostGroup,
    CostGrouping,
    ToolCallRow,
    ToolServerRow,
    WorkflowRunDetail,
    WorkflowRunRecord,
    agent_run_record,
    attempt_record,
    cost_group,
    group_instances,
    tool_call_row,
    tool_server_row,
    workflow_run_header,
    workflow_run_record,
)

__all__ = [
    "AgentRunRecord",
    "AttemptRecord",
    "CostGroup",
    "CostGrouping",
    "ToolCallRow",
    "ToolServerRow",
    "WorkflowRunDetail",
    "WorkflowRunRecord",
    "agent_run",
    "agent_runs",
    "attempts_of",
    "spend",
    "tool_calls_of",
    "tool_servers_of",
    "workflow_is_recorded",
    "workflow_run",
    "workflow_runs",
]

# --- agent runs --------------------------------------------------------------------------------

AGENT_COLUMNS = """id, workflow_run_id, workflow, agent, status, model, provider, input_tokens,
    output_tokens, tokens_estimated, cost, retries, started_at, finished_at, duration, reused,
    reused_from_run_id, output, error, value, item_index, item, item_count, skip_cause, decision,
    iteration, iterations, loop, loop_end, node"""


def agent_runs(
    store: Database, *, workflow: str | None = None, limit: int = 20
) -> list[AgentRunRecord]:
    """The newest agent runs, optionally of one workflow (``runs_by_workflow`` index)."""
    if workflow is None:
        rows = store.read(f"SELECT {AGENT_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = store.read(
            f"SELECT {AGENT_COLUMNS} FROM runs WHERE workflow = ? ORDER BY id DESC LIMIT ?",
            (workflow, limit),
        )
    return [agent_run_record(row) for row in rows]


def agent_run(store: Database, run_id: int) -> AgentRunRecord:
    """One agent run with its prompt and attempts; ``RunNotFoundError`` if there is none."""
    rows = store.read(f"SELECT {AGENT_COLUMNS}, prompt FROM runs WHERE id = ?", (run_id,))
    if not rows:
        raise not_found(store, "runs", "agent run", run_id)
    record = agent_run_record(rows[0], with_prompt=True)
    record.attempts = attempts_of(store, [record.id]).get(record.id, [])
    record.tool_calls = tool_calls_of(store, [record.id]).get(record.id, [])
    return record


def attempts_of(store: Database, run_ids: list[int]) -> dict[int, list[AttemptRecord]]:
    """Attempts of the given agent runs, in order, by run id."""
    found: dict[int, list[AttemptRecord]] = {}
    for start in range(0, len(run_ids), 500):  # stay under SQLite's bound-parameter limit
        chunk = run_ids[start : start + 500]
        rows = store.read(
            f"""SELECT run_id, number, status, http_status, error, error_type, started_at, duration,
                input_tokens, output_tokens, tokens_estimated, cost, turn, validation_error, cached FROM attempts
            WHERE run_id IN ({", ".join("?" * len(chunk))}) ORDER BY run_id, number""",
            tuple(chunk),
        )
        for row in rows:
            found.setdefault(row["run_id"], []).append(attempt_record(row))
    return found


def tool_calls_of(store: Database, run_ids: list[int]) -> dict[int, list[ToolCallRow]]:
    """Tool calls of the given agent runs, in the order they finished, by run id."""
    found: dict[int, list[ToolCallRow]] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        rows = store.read(
            f"""SELECT run_id, turn, call_id, tool, arguments, status, result, error, started_at, duration
            FROM tool_calls WHERE run_id IN ({", ".join("?" * len(chunk))}) ORDER BY run_id, id""",
            tuple(chunk),
        )
        for row in rows:
            found.setdefault(row["run_id"], []).append(tool_call_row(row))
    return found


def tool_servers_of(store: Database, workflow_run_id: int) -> list[ToolServerRow]:
    rows = store.read(
        """SELECT name, transport, target, tools, stderr, started_at, stopped_at FROM tool_servers
        WHERE workflow_run_id = ? ORDER BY id""",
        (workflow_run_id,),
    )
    return [tool_server_row(row) for row in rows]


# --- workflow runs -------------------------------------------------------------------------------

# The workflow's agents, not a fan-out's items or a loop's iterations: "3/3 agents", however
# many items or iterations.
WORKFLOW_COLUMNS = """w.id, w.workflow, w.status, w.started_at, w.finished_at,
    (SELECT count(*) FROM runs r WHERE r.workflow_run_id = w.id AND r.item_index IS NULL
        AND r.iteration IS NULL) AS agents_total,
    (SELECT count(*) FROM runs r WHERE r.workflow_run_id = w.id AND r.item_index IS NULL
        AND r.iteration IS NULL AND r.status = 'succeeded') AS agents_succeeded,
    w.input_tokens, w.output_tokens, w.tokens_estimated, w.cost, w.cost_cap, w.resumed_from,
    w.source_path, w.hostname, w.pid, w.process_start, w.heartbeat_at"""


def workflow_runs(
    store: Database, *, workflow: str | None = None, limit: int = 20
) -> list[WorkflowRunRecord]:
    """The newest workflow runs, optionally of one workflow (``workflow_runs_by_workflow`` index)."""
    if workflow is None:
        sql = f"SELECT {WORKFLOW_COLUMNS} FROM workflow_runs w ORDER BY w.id DESC LIMIT ?"
        rows = store.read(sql, (limit,))
    else:
        sql = f"SELECT {WORKFLOW_COLUMNS} FROM workflow_runs w WHERE w.workflow = ? ORDER BY w.id DESC LIMIT ?"
        rows = store.read(sql, (workflow, limit))
    return [workflow_run_record(row) for row in rows]


def workflow_run(store: Database, workflow_run_id: int) -> WorkflowRunDetail:
    """A workflow run with every agent run (and their attempts), a fan-out's instances under
    their agent; ``RunNotFoundError`` if none."""
    rows = store.read(
        f"""SELECT {WORKFLOW_COLUMNS}, w.definition, w.definition_sha256, w.inputs,
            w.trace_id, w.trace_span_id
        FROM workflow_runs w WHERE w.id = ?""",
        (workflow_run_id,),
    )
    if not rows:
        raise not_found(store, "workflow_runs", "workflow run", workflow_run_id)
    row = rows[0]
    header = workflow_run_header(row)
    agent_rows = store.read(
        f"SELECT {AGENT_COLUMNS}, prompt FROM runs WHERE workflow_run_id = ? ORDER BY id",
        (workflow_run_id,),
    )
    agents = [agent_run_record(agent_row, with_prompt=True) for agent_row in agent_rows]
    attempts = attempts_of(store, [agent.id for agent in agents])
    calls = tool_calls_of(store, [agent.id for agent in agents])
    for agent in agents:
        agent.attempts = attempts.get(agent.id, [])
        agent.tool_calls = calls.get(agent.id, [])
    return WorkflowRunDetail(
        run=header.run,
        definition=header.definition,
        definition_sha256=header.definition_sha256,
        inputs=header.inputs,
        agents=group_instances(agents),
        trace_id=row["trace_id"],
        trace_span_id=row["trace_span_id"],
        tool_servers=tool_servers_of(store, workflow_run_id),
    )


def workflow_is_recorded(store: Database, workflow: str) -> bool:
    """Whether any run of ``workflow`` is recorded (``workflow_runs_by_workflow`` index)."""
    return bool(store.read("SELECT 1 FROM workflow_runs WHERE workflow = ? LIMIT 1", (workflow,)))


# --- spend -----------------------------------------------------------------------------------------

_GROUP_KEYS = {
    CostGrouping.workflow: "coalesce(workflow, '(unknown)')",
    CostGrouping.model: "coalesce(provider || ':' || model, model, '(unknown)')",
    CostGrouping.day: "coalesce(substr(finished_at, 1, 10), '(unknown)')",
}
# The same keys over the ledger of pruned runs (kept per day: ``maintenance.prune``).
_LEDGER_KEYS = {**_GROUP_KEYS, CostGrouping.day: "coalesce(day, '(unknown)')"}


def spend(
    store: Database,
    *,
    by: CostGrouping | None = CostGrouping.workflow,
    since: str | None = None,
    until: str | None = None,
) -> list[CostGroup]:
    """Spend and tokens of agent runs grouped ``by`` (None: one "total" group, none
    if nothing matched), for runs finished in [since, until).

    ``since`` / ``until`` are stored-format timestamps or dates (see timestamps).
    Reused results are left out: they were paid for by the run they came from; so are
    fan-out agents' own rows: their spend is on their instances, each an agent run here.
    """
    conditions = ["reused = 0", "item_count IS NULL"]
    ledger = ["1 = 1"]
    parameters: list[object] = []
    if since is not None:
        conditions.append("finished_at >= ?")
        parameters.append(since)
    if until is not None:
        conditions.append("finished_at < ?")
        parameters.append(until)
    ledger_parameters: list[object] = []
    if since is not None:
        ledger.append("day >= ?")
        ledger_parameters.append(since[:10])
    if until is not None:
        ledger.append("day < ?")
        ledger_parameters.append(until)
    key = "'total'" if by is None else _GROUP_KEYS[by]
    ledger_key = "'total'" if by is None else _LEDGER_KEYS[by]
    # GROUP BY 1 (the key's position): PostgreSQL refuses a constant ('total') by name.
    pruned = f"""UNION ALL
            SELECT {ledger_key} AS key, sum(workflow_runs), sum(agent_runs), sum(input_tokens),
                sum(output_tokens), max(tokens_estimated), sum(cost), sum(unpriced_runs)
            FROM cost_ledger WHERE {" AND ".join(ledger)} GROUP BY 1"""
    parameters.extend(ledger_parameters)
    rows = store.read(
        f"""SELECT key, sum(workflow_runs) AS workflow_runs, sum(agent_runs) AS agent_runs,
            sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
            max(tokens_estimated) AS tokens_estimated, sum(cost) AS cost,
            sum(unpriced_runs) AS unpriced_runs
        FROM (
            SELECT {key} AS key, count(DISTINCT workflow_run_id) AS workflow_runs,
                count(*) AS agent_runs, coalesce(sum(input_tokens), 0) AS input_tokens,
                coalesce(sum(output_tokens), 0) AS output_tokens,
                coalesce(max(tokens_estimated), 0) AS tokens_estimated,
                coalesce(sum(cost), 0) AS cost, count(*) - count(cost) AS unpriced_runs
            FROM runs WHERE {" AND ".join(conditions)} GROUP BY 1
            {pruned}
        ) AS spent GROUP BY key ORDER BY key""",
        tuple(parameters),
    )
    return [cost_group(row) for row in rows]


# --- not found -------------------------------------------------------------------------------------


def not_found(store: Database, table: str, what: str, wanted: int) -> RunNotFoundError:
    """ "no workflow run 42; latest is 17", or "no workflow runs recorded yet in agentops.db"."""
    rows = store.read(f"SELECT max(id) FROM {table}")
    latest = rows[0][0] if rows else None
    if latest is None:
        return RunNotFoundError(f"no {what}s recorded yet in {store.path}")
    return RunNotFoundError(f"no {what} {wanted}; latest is {latest} (in {store.path})")
