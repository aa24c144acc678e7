"""``HistoryWriter`` over a SQLite file or a PostgreSQL database: the SQL that records
workflow runs and batches, written once (``postgres.translate`` carries it to PostgreSQL).

Each method is one ``Database.write`` transaction (SQLite: ``BEGIN IMMEDIATE``, retried whole
while another process holds the lock). Text goes through ``storable`` first: a lone surrogate
cannot be encoded as UTF-8 and would lose the whole row.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from agentops.errors import StoreError
from agentops.runtime.cache import response_json
from agentops.runtime.events import (
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    FanOutStarted,
    ToolCallRecord,
    ToolServerStopped,
    Usage,
    WorkflowResult,
    WorkflowStarted,
)
from agentops.store.approvals import decide
from agentops.store.batches import LATEST_ROW_RUN, ROW_STATUS
from agentops.store.database import Connection, Cursor, Database, insert_rows
from agentops.store.liveness import this_process
from agentops.store.records import ApprovalRecord, CacheEntry, decision_json
from agentops.store.timestamps import to_iso
from agentops.store.writer import AgentChanges, every_agent_run, is_fan_out

__all__ = ["SqliteHistoryWriter", "storable"]

_DELETE_CHUNK = 500  # agents' start rows deleted per statement (SQLite takes 32,766 values)
# A well-formed str holds no surrogates at all: any here is half of a broken pair.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class SqliteHistoryWriter:
    """Writes the history into ``store`` (open, migrated: see ``stores.open_database``)."""

    def __init__(self, store: Database) -> None:
        self.store = store

    # --- workflow runs ---------------------------------------------------------------

    def check_recordable(self, workflow: str) -> None:
        """Make the writes that recording a run of ``workflow`` makes (its row, an agent's start,
        a tool call, an agent run with an attempt, an MCP server), then roll them all back.

        A file that cannot take them (read-only, damaged where they go, a failing disk) raises
        ``StoreError`` here, before the run calls anything; the file is never changed. It costs
        one transaction touching a few pages per table (0.05 ms), whatever the file's size; a
        full ``PRAGMA quick_check`` reads every page: per 100 MB, 0.08 s cached, 2 s from disk.
        """
        now = time.time()
        at = to_iso(now)
        name = storable(workflow) or ""
        attempt = Attempt(number=1, status="failed", started_at=now, duration=0.0)
        agent = AgentResult("-", AgentStatus.FAILED, "-", "-", started_at=now, attempts=[attempt])
        call = ToolCallRecord(1, "-", "-", "{}", "failed", started_at=now, duration=0.0)

        def work(connection: Connection) -> None:
            run_id = _insert_workflow_run(connection, (name, at, "running", *([None] * 14)))
            _insert_starts(connection, [(run_id, "-", "-", "-", None, at)])
            _insert_tool_calls(connection, run_id, [("-", call)])
            _insert_agent_runs(connection, run_id, name, [agent])
            _insert_server(connection, (run_id, "-", "stdio", None, "[]", None, at, at))

        self.store.check_writable(work)

    def start_workflow_run(self, start: WorkflowStarted) -> int:
        workflow = start.workflow
        cap = start.cost_cap if start.cost_cap is not None else workflow.policies.cost_cap
        pid, host, started = this_process()
        name = storable(workflow.name) or ""
        row = (
            name,
            to_iso(start.started_at),
            "running",
            storable(start.source),
            hashlib.sha256(start.source.encode("utf-8", "surrogatepass")).hexdigest(),
            storable(start.source_path),
            json.dumps(dict(start.inputs), sort_keys=True, default=str),
            start.resumed_from,
            cap,
            pid,
            host,
            started,
            start.batch_id,
            start.batch_row,
            start.trace_id,
            start.trace_span_id,
            to_iso(time.time()),
        )

        def work(connection: Connection) -> int:
            workflow_run_id = _insert_workflow_run(connection, row)
            if start.rerun_from is not None or start.replaying is not None:
                connection.execute(
                    "UPDATE workflow_runs SET rerun_from = ?, replaying = ? WHERE id = ?",
                    (storable(start.rerun_from), start.replaying, workflow_run_id),
                )
            _take_approvals(connection, start, workflow_run_id)
            reused = list(start.reused.values())
            origins = [_origin_of(connection, start.resumed_from, r) for r in reused]
            _insert_agent_runs(connection, workflow_run_id, name, reused, origins)
            return workflow_run_id

        return self.store.write(work)

    def record_agents(self, workflow_run_id: int, workflow: str, changes: AgentChanges) -> None:
        starts = [_start_row(workflow_run_id, c) for c in changes.started]
        settled = changes.settled
        ended = [storable(name) for name in changes.ended]
        usage, cost = _spent(settled)
        totals = (
            usage.input_tokens,
            usage.output_tokens,
            int(usage.estimated),
            cost,
            to_iso(time.time()),
            workflow_run_id,
        )
        calls = list(changes.tool_calls)
        name = storable(workflow) or ""

        def work(connection: Connection) -> None:
            if starts:
                _insert_starts(connection, starts)
            if calls:  # before the agents: a settling agent's last calls get its run id below
                _insert_tool_calls(connection, workflow_run_id, calls)
            if not settled:
                connection.execute(
                    "UPDATE workflow_runs SET heartbeat_at = ? WHERE id = ?", totals[-2:]
                )
                return
            ids = _insert_agent_runs(connection, workflow_run_id, name, settled)
            for result, run_id in zip(settled, ids, strict=True):
                if result.name in changes.linked:
                    _link_tool_calls(connection, workflow_run_id, result.name, run_id)
            # A statement per chunk, not per agent: on PostgreSQL each row of an executemany
            # is a statement of its own for the client to send.
            for first in range(0, len(ended), _DELETE_CHUNK):
                chunk = ended[first : first + _DELETE_CHUNK]
                connection.execute(
                    "DELETE FROM agent_starts WHERE workflow_run_id = ? AND agent IN "
                    f"({', '.join('?' * len(chunk))})",
                    (workflow_run_id, *chunk),
                )
            connection.execute(
                """UPDATE workflow_runs SET input_tokens = input_tokens + ?,
                    output_tokens = output_tokens + ?, tokens_estimated = max(tokens_estimated, ?),
                    cost = cost + ?, heartbeat_at = ? WHERE id = ?""",
                totals,
            )

        self.store.write(work)

    def heartbeat(self, workflow_run_id: int) -> None:
        row = (to_iso(time.time()), workflow_run_id)
        self.store.write(
            lambda connection: connection.execute(
                "UPDATE workflow_runs SET heartbeat_at = ? WHERE id = ?", row
            )
        )

    def record_tool_server(self, workflow_run_id: int, stopped: ToolServerStopped) -> None:
        row = (
            workflow_run_id,
            storable(stopped.server),
            stopped.transport,
            storable(stopped.target),
            json.dumps(list(stopped.tools)),
            storable(stopped.stderr),
            to_iso(stopped.started_at),
            to_iso(stopped.stopped_at),
        )
        self.store.write(lambda connection: _insert_server(connection, row))

    def finish_workflow_run(
        self,
        workflow_run_id: int,
        workflow: str,
        result: WorkflowResult,
        *,
        missing: Sequence[AgentResult] = (),
        linked: Collection[str] = (),
    ) -> None:
        # Counted here, not taken from the result: each instance once, its fan-out agent not again.
        usage, cost = _spent(every_agent_run(result.agents.values()))
        name = storable(workflow) or ""

        def work(connection: Connection) -> None:
            ids = _insert_agent_runs(connection, workflow_run_id, name, missing)
            for agent, run_id in zip(missing, ids, strict=True):
                if agent.name in linked:
                    _link_tool_calls(connection, workflow_run_id, agent.name, run_id)
            connection.execute(
                "DELETE FROM agent_starts WHERE workflow_run_id = ?", (workflow_run_id,)
            )
            connection.execute(
                """UPDATE workflow_runs SET finished_at = ?, status = ?, input_tokens = ?,
                    output_tokens = ?, tokens_estimated = ?, cost = ? WHERE id = ?""",
                (
                    to_iso(result.finished_at),
                    result.status.value,
                    usage.input_tokens,
                    usage.output_tokens,
                    int(usage.estimated),
                    cost,
                    workflow_run_id,
                ),
            )

        self.store.write(work)

    # --- the response cache ----------------------------------------------------------

    def put_cache_entry(self, entry: CacheEntry) -> None:
        response = storable(entry.response) or ""
        row = (
            entry.key,
            storable(entry.workflow) or "",
            storable(entry.agent),
            storable(entry.model),
            response,
            entry.input_tokens,
            entry.output_tokens,
            int(entry.tokens_estimated),
            entry.cost,
            len(response.encode("utf-8")),
            to_iso(entry.created_at),
        )
        self.store.write(
            lambda connection: connection.execute(
                """INSERT INTO response_cache (key, workflow, agent, model, response,
                    input_tokens, output_tokens, tokens_estimated, cost, size, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET
                    workflow = excluded.workflow, agent = excluded.agent, model = excluded.model,
                    response = excluded.response, input_tokens = excluded.input_tokens,
                    output_tokens = excluded.output_tokens,
                    tokens_estimated = excluded.tokens_estimated, cost = excluded.cost,
                    size = excluded.size, created_at = excluded.created_at""",
                row,
            )
        )

    def clear_cache(self, *, workflow: str | None = None, before: float | None = None) -> int:
        where, parameters = [], []
        if workflow is not None:
            where.append("workflow = ?")
            parameters.append(workflow)
        if before is not None:
            where.append("created_at < ?")
            parameters.append(to_iso(before) or "")
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        return self.store.write(
            lambda connection: (
                connection.execute(
                    f"DELETE FROM response_cache{condition}", tuple(parameters)
                ).rowcount
            )
        )

    # --- batches ---------------------------------------------------------------------

    def decide_approval(
        self, workflow_run_id: int, agent: str, verdict: str, *, by: str, text: str | None
    ) -> ApprovalRecord:
        return decide(self.store, workflow_run_id, agent, verdict, by, text)

    def create_batch(
        self,
        *,
        workflow: str,
        definition: str,
        source_path: str | None,
        data_path: str,
        data_sha256: str,
        row_count: int,
        input_map: Mapping[str, str],
        cost_cap: float | None,
        started_at: float,
    ) -> int:
        row = (
            workflow,
            definition,
            source_path,
            data_path,
            data_sha256,
            row_count,
            json.dumps(dict(input_map), sort_keys=True),
            cost_cap,
            "running",
            to_iso(started_at),
            *this_process(),
        )

        def work(connection: Connection) -> int:
            cursor = connection.execute(
                """INSERT INTO batches (workflow, definition, source_path, data_path, data_sha256,
                    row_count, input_map, cost_cap, status, started_at, pid, hostname, process_start)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                row,
            )
            if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
                raise StoreError("the history database did not return the new batch's id")
            return cursor.lastrowid

        return self.store.write(work)

    def take_over_batch(self, batch_id: int, *, cost_cap: float | None) -> None:
        self.store.write(
            lambda connection: connection.execute(
                "UPDATE batches SET status = 'running', finished_at = NULL, cost_cap = ?, pid = ?, "
                "hostname = ?, process_start = ? WHERE id = ?",
                (cost_cap, *this_process(), batch_id),
            )
        )

    def finish_batch(
        self, batch_id: int, *, status: str, finished_at: float, pauses: int, paused: float
    ) -> None:
        def work(connection: Connection) -> None:
            counts = dict(
                connection.execute(
                    f"""SELECT {ROW_STATUS} AS row_status, count(*) FROM workflow_runs w
                    WHERE w.batch_id = ? AND {LATEST_ROW_RUN} GROUP BY row_status""",
                    (batch_id,),
                ).fetchall()
            )
            tokens_in, tokens_out, cost = connection.execute(
                """SELECT coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
                    coalesce(sum(cost), 0) FROM workflow_runs WHERE batch_id = ?""",
                (batch_id,),
            ).fetchone()
            connection.execute(
                """UPDATE batches SET status = ?, finished_at = ?, rows_succeeded = ?, rows_failed = ?,
                    rows_skipped = ?, input_tokens = ?, output_tokens = ?, cost = ?,
                    pauses = pauses + ?, paused_seconds = paused_seconds + ? WHERE id = ?""",
                (
                    status,
                    to_iso(finished_at),
                    counts.get("succeeded", 0),
                    sum(n for s, n in counts.items() if s not in ("succeeded", "skipped")),
                    counts.get("skipped", 0),
                    tokens_in,
                    tokens_out,
                    cost,
                    pauses,
                    paused,
                    batch_id,
                ),
            )

        self.store.write(work)


# --- rows ---------------------------------------------------------------------------------


def storable(text: str | None) -> str | None:
    """``text`` as SQLite can store it: a lone surrogate (JSON can decode one from a model's
    reply) cannot be encoded as UTF-8, so it becomes U+FFFD rather than losing the row."""
    if text is None:
        return None
    return _LONE_SURROGATE.sub("\ufffd", text)


def _row_id(cursor: Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
        raise StoreError("the history database did not return the new row's id")
    return cursor.lastrowid


def _link_tool_calls(connection: Connection, workflow_run_id: int, agent: str, run_id: int) -> None:
    """An agent's tool calls, written before its agent run existed, point at it now."""
    connection.execute(
        "UPDATE tool_calls SET run_id = ? WHERE workflow_run_id = ? AND agent = ? AND run_id IS NULL",
        (run_id, workflow_run_id, storable(agent)),
    )


def _insert_workflow_run(connection: Connection, row: tuple[object, ...]) -> int:
    cursor = connection.execute(
        """INSERT INTO workflow_runs (workflow, started_at, status, definition, definition_sha256,
            source_path, inputs, resumed_from, cost_cap, pid, hostname, process_start,
            batch_id, batch_row, trace_id, trace_span_id, heartbeat_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        row,
    )
    return _row_id(cursor)


def _insert_starts(connection: Connection, starts: Sequence[tuple[object, ...]]) -> None:
    connection.executemany(
        """INSERT INTO agent_starts (workflow_run_id, agent, model, provider, prompt, started_at)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow_run_id, agent) DO UPDATE SET
            model = excluded.model, provider = excluded.provider, prompt = excluded.prompt,
            started_at = excluded.started_at""",
        starts,
    )


def _insert_server(connection: Connection, row: tuple[object, ...]) -> None:
    connection.execute(
        """INSERT INTO tool_servers (workflow_run_id, name, transport, target, tools, stderr, started_at,
            stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        row,
    )


def _origin_of(connection: Connection, resumed_from: int | None, result: AgentResult) -> int | None:
    """The agent run that first produced what ``result`` reuses (following earlier reuses);
    an instance's is the row of its agent with its item index (``runs_by_agent``)."""
    if resumed_from is None:
        return None
    row = connection.execute(
        """SELECT coalesce(reused_from_run_id, id) FROM runs
        WHERE workflow_run_id = ? AND agent = ? AND item_index IS ? AND iteration IS ?
            AND status IN ('succeeded', 'waiting_approval')
        ORDER BY id DESC LIMIT 1""",
        (resumed_from, storable(result.agent_name), result.item_index, _iteration(result)),
    ).fetchone()
    return None if row is None else int(row[0])


def _start_row(workflow_run_id: int, start: AgentStarted | FanOutStarted) -> tuple[object, ...]:
    """An ``agent_starts`` row; a fan-out agent's has no model, provider or prompt of its own."""
    if isinstance(start, FanOutStarted):
        return (workflow_run_id, storable(start.name), None, None, None, to_iso(start.started_at))
    return (
        workflow_run_id,
        storable(start.name),
        storable(start.model),
        storable(start.provider),
        storable(start.prompt),
        to_iso(start.started_at),
    )


def _spent(results: Iterable[AgentResult]) -> tuple[Usage, float]:
    """The tokens and cost of results called in this run: a reused one was paid for by the run
    it came from, and a fan-out agent's spend is its instances' (recorded on them)."""
    usage, cost = Usage(), 0.0
    for result in results:
        if not result.reused and not is_fan_out(result):
            usage = usage + result.usage
            cost += result.cost or 0.0
    return usage, cost


def _json_text(value: Any, *, canonical: bool = False) -> str | None:
    """A value as stored JSON text; ``canonical``: keys sorted, no spaces (an item)."""
    if canonical:
        text = json.dumps(
            value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
        )
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return storable(text)


_INSERT_AGENT_RUN = """INSERT INTO runs (workflow_run_id, workflow, agent, status, cost, output,
    error, retries, model, provider, prompt, input_tokens, output_tokens, tokens_estimated,
    started_at, finished_at, duration, reused, reused_from_run_id, value, item_index, item,
    item_count, skip_cause, decision, iteration, iterations, loop, loop_end, node)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def _insert_agent_runs(
    connection: Connection,
    workflow_run_id: int,
    workflow: str,
    results: Sequence[AgentResult],
    reused_from: Sequence[int | None] = (),
) -> list[int]:
    """``runs`` rows and their attempts, all in two statements' worth of round trips (see
    ``database.insert_rows``); their ids, in order. A reused result costs nothing in this run
    and has no attempts here: both stay with the run it was taken from (``reused_from``: the
    row it came from, per result). A fan-out instance is a row of its agent with its item;
    the fan-out agent's own row has its item count and no spend (its instances' rows have it)."""
    if not results:
        return []
    origins = list(reused_from) or [None] * len(results)
    rows = [
        _agent_run_row(workflow_run_id, workflow, result, origin)
        for result, origin in zip(results, origins, strict=True)
    ]
    ids = insert_rows(connection, _INSERT_AGENT_RUN, rows)
    for result in results:
        if result.status is AgentStatus.WAITING_APPROVAL and result.awaiting is not None:
            _request_approval(connection, workflow_run_id, result)
    attempts = [
        _attempt_row(run_id, attempt)
        for result, origin, run_id in zip(results, origins, ids, strict=True)
        if not (result.reused or origin is not None)
        for attempt in result.attempts
    ]
    if attempts:
        connection.executemany(
            """INSERT INTO attempts (run_id, number, status, http_status, error, error_type, started_at,
                duration, input_tokens, output_tokens, tokens_estimated, cost, turn, validation_error,
                cached, saved_cost, request_key, request_digest, response)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            attempts,
        )
    return ids


def _agent_run_row(
    workflow_run_id: int, workflow: str, result: AgentResult, reused_from: int | None
) -> tuple[object, ...]:
    reused = result.reused or reused_from is not None
    waits = result.status is AgentStatus.WAITING_APPROVAL  # an answer reused, waiting again
    status = AgentStatus.SUCCEEDED.value if reused and not waits else result.status.value
    unspent = reused or is_fan_out(result)
    usage = result.usage
    instance = result.item_index is not None
    return (
        workflow_run_id,
        workflow,
        storable(result.agent_name),
        status,
        0.0 if unspent else result.cost,
        storable(result.output),
        storable(result.error),
        0 if unspent else result.retries,
        storable(result.model),
        storable(result.provider),
        storable(result.prompt),
        0 if unspent else usage.input_tokens,
        0 if unspent else usage.output_tokens,
        0 if unspent else int(usage.estimated),
        to_iso(result.started_at),
        to_iso(result.finished_at),
        result.duration,
        int(reused),
        reused_from,
        None if result.value is None else _json_text(result.value),
        result.item_index,
        _json_text(result.item, canonical=True) if instance else None,
        _item_count(result),
        None if result.skip_cause is None else result.skip_cause.value,
        None if result.decision is None else _json_text(decision_json(result.decision)),
        _iteration(result),
        None if result.iterations is None else len(result.iterations),
        storable(result.loop),
        storable(result.loop_end),
        None if reused else storable(result.node),
    )


def _attempt_row(run_id: int, attempt: Attempt) -> tuple[object, ...]:
    return (
        run_id,
        attempt.number,
        attempt.status,
        attempt.http_status,
        storable(attempt.error),
        attempt.error_type,
        to_iso(attempt.started_at),
        attempt.duration,
        attempt.usage.input_tokens,
        attempt.usage.output_tokens,
        int(attempt.usage.estimated),
        attempt.cost,
        attempt.turn,
        storable(attempt.validation_error),
        int(attempt.cached),
        attempt.saved,
        attempt.request_key,
        attempt.request_digest,
        None if attempt.response is None else storable(response_json(attempt.response)),
    )


def _request_approval(connection: Connection, workflow_run_id: int, result: AgentResult) -> None:
    """A pending approval of the agent's waiting row (its prompt or answer is on that row)."""
    request = result.awaiting
    assert request is not None
    now = result.finished_at or time.time()
    connection.execute(
        """INSERT INTO approvals (workflow_run_id, agent, mode, status, requested_at, timeout_at,
            on_timeout) VALUES (?, ?, ?, 'pending', ?, ?, ?)""",
        (
            workflow_run_id,
            storable(result.agent_name),
            request.mode,
            to_iso(now),
            None if request.timeout is None else to_iso(now + request.timeout),
            request.on_timeout,
        ),
    )


def _take_approvals(connection: Connection, start: WorkflowStarted, workflow_run_id: int) -> None:
    """A resume takes the approvals of the run it continues, as it read them: each is closed
    here (never decided or applied again). One decided since it was read stops the resume
    before anything runs, so no decision is lost or applied twice."""
    for agent, approval in start.approvals.items():
        if approval.id is None:
            continue
        if approval.timed_out:  # the timeout's verdict is recorded as the decision
            taken = connection.execute(
                """UPDATE approvals SET applied_run_id = ?, status = ?, decided_by = ?,
                    decided_at = ?, text = ?
                WHERE id = ? AND applied_run_id IS NULL AND status = 'pending'""",
                (
                    workflow_run_id,
                    approval.verdict,
                    approval.by,
                    to_iso(approval.at),
                    storable(approval.text),
                    approval.id,
                ),
            ).rowcount
        else:
            taken = connection.execute(
                """UPDATE approvals SET applied_run_id = ? WHERE id = ? AND applied_run_id IS NULL
                    AND status = ?""",
                (workflow_run_id, approval.id, approval.verdict or "pending"),
            ).rowcount
        if taken != 1:
            raise StoreError(
                f"the approval of {agent} in workflow run {start.resumed_from} changed while this "
                "resume started (a decision was recorded, or another resume took it); resume "
                "again to continue with it"
            )


def _iteration(result: AgentResult) -> int | None:
    """The iteration an instance belongs to (a member's own result counts its iterations in
    ``iterations`` instead)."""
    return result.iteration if result.is_instance else None


def _item_count(result: AgentResult) -> int | None:
    if result.item_count is not None:
        return result.item_count
    return None if result.instances is None else len(result.instances)


def _insert_tool_calls(
    connection: Connection, workflow_run_id: int, calls: list[tuple[str, ToolCallRecord]]
) -> None:
    connection.executemany(
        """INSERT INTO tool_calls (workflow_run_id, agent, turn, call_id, tool, arguments, status, result,
            error, started_at, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                workflow_run_id,
                storable(agent),
                call.turn,
                storable(call.call_id),
                storable(call.tool),
                storable(call.arguments),
                call.status,
                storable(call.result),
                storable(call.error),
                to_iso(call.started_at),
                call.duration,
            )
            for agent, call in calls
        ],
    )
