"""Recording a run as it happens: an events subscriber that writes the history.

Each write is one short transaction: the workflow run row when the run starts
(with the agents a resume reuses), agent starts (``agent_starts``, what a live
view shows as running), tool calls as they finish, agent runs with their attempts
as they settle (linking their tool calls), the MCP servers with their stderr as
they close, the totals and final status when the run ends. A row in ``runs`` is
only ever a settled agent: a start is a row of its own, deleted when the agent
settles, and the run's end deletes any left, so nothing that reads ``runs``
mistakes a running agent for a finished one.

Agents that start or settle in the same turn of the event loop are committed
together, by a callback queued when the first of them does: one commit instead
of one each, or on wide workflows the history would cost more than the scheduling.
The engine emits ``AgentFinished`` before it starts any dependent, and the loop
runs callbacks in order, so that commit lands before a dependent's first step:
no output reaches a prompt before it is on disk, and a crash loses at most
agents whose results nothing had used yet. The last agents of a run without
tools wait for the run's end (a turn or two later), which writes them in its
own commit.

A write that fails (a read-only, damaged or full file) never escapes into the
engine: the recorder keeps the error as ``failure``, asks its owner to stop the run
(``stop``) while there is still something to stop, and writes nothing more but the
run's end, in case the file came back. ``check_recordable`` makes the same writes
before a run, rolled back, so that most such files stop it before its first call.

Nothing here sees an API key: the events carry outputs, prompts and error
messages, never request headers or provider configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Sequence

from ..errors import StoreError
from ..events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    Event,
    ToolCallFinished,
    ToolCallRecord,
    ToolServerStopped,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
)
from .liveness import this_process
from .sqlite import Store
from .timestamps import to_iso

logger = logging.getLogger(__name__)

# A well-formed str holds no surrogates at all: any here is half of a broken pair.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class RunRecorder:
    """Records one workflow run in ``store``; pass it to the engine as a subscriber.

    ``workflow_run_id`` is set once ``WorkflowStarted`` has been recorded. ``failure`` is
    the first write that failed; after it only the run's end is tried. ``stop`` (if given)
    is called with it while the run can still be stopped, and ``stopped`` says it was;
    without ``stop``, the failure is logged in one line.
    """

    wants_tokens = False  # outputs are recorded whole, when an agent settles

    def __init__(self, store: Store, *, stop: Callable[[StoreError], None] | None = None) -> None:
        self.store = store
        self.stop = stop
        self.workflow_run_id: int | None = None
        self.failure: StoreError | None = None
        self.stopped = False
        self._workflow: str = ""
        self._recorded: set[str] = set()
        self._agents = 0
        self._ends_with_last_agent = False
        self._started: set[str] = set()  # agents whose start row was committed
        # started or settled, to be committed at the end of this loop turn
        self._pending: list[AgentStarted | AgentResult] = []
        self._pending_calls: list[tuple[str, ToolCallRecord]] = []  # finished tool calls, likewise
        self._with_calls: set[str] = (
            set()
        )  # agents with tool calls whose run row does not exist yet

    def __call__(self, event: Event) -> None:
        if self.failure is not None and not isinstance(event, WorkflowFinished):
            return  # the run is stopping; its end still tries to write what it can
        try:
            if isinstance(event, WorkflowStarted):
                self._record_start(event)
            elif isinstance(event, AgentStarted):
                self._record_agent(event)
            elif isinstance(event, AgentFinished):
                self._record_agent(event.result)
            elif isinstance(event, ToolCallFinished):
                self._record_tool_call(event.name, event.call)
            elif isinstance(event, ToolServerStopped):
                self._record_server(event)
            elif isinstance(event, WorkflowFinished):
                self._record_finish(event.result)
        except StoreError as error:
            # Servers stop and the end is written once the run is over: nothing left to stop.
            self._failed(error, stop=not isinstance(event, (ToolServerStopped, WorkflowFinished)))

    def _failed(self, error: StoreError, *, stop: bool) -> None:
        if self.failure is not None:
            return
        self.failure = error
        if self.stop is None:
            logger.error("%s", error)  # one line: no owner reports it
        elif stop:
            self.stopped = True
            self.stop(error)

    # --- the three writes ------------------------------------------------------------

    def _record_start(self, event: WorkflowStarted) -> None:
        workflow = event.workflow
        cap = event.cost_cap if event.cost_cap is not None else workflow.policies.cost_cap
        pid, host, started = this_process()
        name = storable(workflow.name) or ""
        row = (
            name,
            to_iso(event.started_at),
            "running",
            storable(event.source),
            hashlib.sha256(event.source.encode("utf-8", "surrogatepass")).hexdigest(),
            storable(event.source_path),
            json.dumps(dict(event.inputs), sort_keys=True, default=str),
            event.resumed_from,
            cap,
            pid,
            host,
            started,
            event.batch_id,
            event.batch_row,
            event.trace_id,
            event.trace_span_id,
        )

        def work(connection: sqlite3.Connection) -> int:
            workflow_run_id = _insert_workflow_run(connection, row)
            for agent, result in event.reused.items():
                origin = _origin_of(connection, event.resumed_from, storable(agent) or "")
                _insert_agent_run(connection, workflow_run_id, name, result, reused_from=origin)
            return workflow_run_id

        self.workflow_run_id = self.store.write(work)
        self._workflow = name
        self._recorded = set(event.reused)
        # Without tools, the run ends within a loop turn or two of its last agent settling.
        self._agents = len(workflow.agents)
        self._ends_with_last_agent = not workflow.tools

    def _record_agent(self, change: AgentStarted | AgentResult) -> None:
        self._require_started()
        self._pending.append(change)
        if isinstance(change, AgentResult) and self._ends_with_last_agent and self._all_settled():
            # Nothing can depend on the last agents: the run's end, a turn or two away, writes
            # them with the totals. One commit less per run (a 1-agent batch row makes three).
            return
        self._queue_flush()

    def _all_settled(self) -> bool:
        settled = sum(1 for change in self._pending if isinstance(change, AgentResult))
        return len(self._recorded) + settled >= self._agents

    def _record_tool_call(self, agent: str, call: ToolCallRecord) -> None:
        self._require_started()
        self._pending_calls.append((agent, call))
        self._with_calls.add(agent)
        self._queue_flush()

    def _record_server(self, event: ToolServerStopped) -> None:
        workflow_run_id = self._require_started()
        row = (
            workflow_run_id,
            storable(event.server),
            event.transport,
            storable(event.target),
            json.dumps(list(event.tools)),
            storable(event.stderr),
            to_iso(event.started_at),
            to_iso(event.stopped_at),
        )
        self.store.write(lambda connection: _insert_server(connection, row))

    def _queue_flush(self) -> None:
        if len(self._pending) + len(self._pending_calls) > 1:
            return  # the commit is already queued
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop: commit now
            self._flush_pending()
            return
        loop.call_soon(self._flush_safely)

    def _flush_safely(self) -> None:
        try:
            self._flush_pending()
        except StoreError as error:  # what is not written now, the run's end tries again
            self._failed(error, stop=True)

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        calls, self._pending_calls = self._pending_calls, []
        if not pending and not calls:
            return
        workflow_run_id = self._require_started()
        batch = [change for change in pending if isinstance(change, AgentResult)]
        settled = {result.name for result in batch}
        started = [c for c in pending if isinstance(c, AgentStarted) and c.name not in settled]
        starts = [
            (
                workflow_run_id,
                storable(c.name),
                storable(c.model),
                storable(c.provider),
                storable(c.prompt),
                to_iso(c.started_at),
            )
            for c in started
        ]
        # Agents whose start row is on disk: their outcome replaces it.
        ended = [(workflow_run_id, storable(r.name)) for r in batch if r.name in self._started]
        linked = [r.name for r in batch if r.name in self._with_calls]
        called = [r for r in batch if not r.reused]
        totals = (
            sum(r.usage.input_tokens for r in called),
            sum(r.usage.output_tokens for r in called),
            int(any(r.usage.estimated for r in called)),
            sum(r.cost or 0.0 for r in called),
            workflow_run_id,
        )

        def work(connection: sqlite3.Connection) -> None:
            if starts:
                _insert_starts(connection, starts)
            if calls:  # before the agents: a settling agent's last calls get its run id below
                _insert_tool_calls(connection, workflow_run_id, calls)
            if not batch:
                return
            for result in batch:
                run_id = _insert_agent_run(connection, workflow_run_id, self._workflow, result)
                if result.name in linked:
                    connection.execute(
                        "UPDATE tool_calls SET run_id = ? WHERE workflow_run_id = ? AND agent = ? AND run_id IS NULL",
                        (run_id, workflow_run_id, storable(result.name)),
                    )
            if ended:
                connection.executemany(
                    "DELETE FROM agent_starts WHERE workflow_run_id = ? AND agent = ?", ended
                )
            connection.execute(
                """UPDATE workflow_runs SET input_tokens = input_tokens + ?,
                    output_tokens = output_tokens + ?, tokens_estimated = max(tokens_estimated, ?),
                    cost = cost + ? WHERE id = ?""",
                totals,
            )

        self.store.write(work)
        self._recorded.update(settled)
        self._started.difference_update(settled)
        self._started.update(c.name for c in started)
        self._with_calls.difference_update(linked)

    def _record_finish(self, result: WorkflowResult) -> None:
        workflow_run_id = self._require_started()
        # Tool calls not yet written are written now; every agent is in result.agents, and
        # those not yet written are written below.
        if self._pending_calls:
            self._pending = []
            self._flush_pending()
        self._pending = []
        self._started = set()  # the run's end deletes every start row of the run
        # Agents the engine settled without an AgentFinished we recorded (a failed write,
        # say) are recorded now, so the run is complete in the history.
        missing = [r for name, r in result.agents.items() if name not in self._recorded]
        usage = result.usage

        def work(connection: sqlite3.Connection) -> None:
            for agent in missing:
                run_id = _insert_agent_run(connection, workflow_run_id, self._workflow, agent)
                if agent.name in self._with_calls:
                    connection.execute(
                        "UPDATE tool_calls SET run_id = ? WHERE workflow_run_id = ? AND agent = ? AND run_id IS NULL",
                        (run_id, workflow_run_id, storable(agent.name)),
                    )
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
                    result.cost,
                    workflow_run_id,
                ),
            )

        self.store.write(work)
        self._recorded.update(agent.name for agent in missing)
        if result.workflow_run_id is None:
            result.workflow_run_id = workflow_run_id

    def _require_started(self) -> int:
        if self.workflow_run_id is None:
            raise StoreError(
                "the run was not recorded: WorkflowStarted was not received or not written"
            )
        return self.workflow_run_id


# --- before a run --------------------------------------------------------------------------


class _RolledBack(Exception):
    """Ends ``check_recordable``'s transaction: ``Store.write`` rolls back on any exception."""


def check_recordable(store: Store, workflow: str) -> None:
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

    def work(connection: sqlite3.Connection) -> None:
        run_id = _insert_workflow_run(connection, (name, at, "running", *([None] * 13)))
        _insert_starts(connection, [(run_id, "-", "-", "-", None, at)])
        _insert_tool_calls(connection, run_id, [("-", call)])
        _insert_agent_run(connection, run_id, name, agent)
        _insert_server(connection, (run_id, "-", "stdio", None, "[]", None, at, at))
        raise _RolledBack

    with contextlib.suppress(_RolledBack):
        store.write(work)


# --- rows ---------------------------------------------------------------------------------


def storable(text: str | None) -> str | None:
    """``text`` as SQLite can store it: a lone surrogate (JSON can decode one from a model's
    reply) cannot be encoded as UTF-8, so it becomes U+FFFD rather than losing the row."""
    if text is None:
        return None
    return _LONE_SURROGATE.sub("\ufffd", text)


def _row_id(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
        raise StoreError("the history database did not return the new row's id")
    return cursor.lastrowid


def _insert_workflow_run(connection: sqlite3.Connection, row: tuple[object, ...]) -> int:
    cursor = connection.execute(
        """INSERT INTO workflow_runs (workflow, started_at, status, definition, definition_sha256,
            source_path, inputs, resumed_from, cost_cap, pid, hostname, process_start,
            batch_id, batch_row, trace_id, trace_span_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        row,
    )
    return _row_id(cursor)


def _insert_starts(connection: sqlite3.Connection, starts: Sequence[tuple[object, ...]]) -> None:
    connection.executemany(
        """INSERT OR REPLACE INTO agent_starts (workflow_run_id, agent, model, provider, prompt,
            started_at) VALUES (?, ?, ?, ?, ?, ?)""",
        starts,
    )


def _insert_server(connection: sqlite3.Connection, row: tuple[object, ...]) -> None:
    connection.execute(
        """INSERT INTO tool_servers (workflow_run_id, name, transport, target, tools, stderr, started_at,
            stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        row,
    )


def _origin_of(connection: sqlite3.Connection, resumed_from: int | None, agent: str) -> int | None:
    """The agent run that first produced what ``agent`` reuses (following earlier reuses)."""
    if resumed_from is None:
        return None
    row = connection.execute(
        """SELECT coalesce(reused_from_run_id, id) FROM runs
        WHERE workflow_run_id = ? AND agent = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1""",
        (resumed_from, agent),
    ).fetchone()
    return None if row is None else int(row[0])


def _insert_agent_run(
    connection: sqlite3.Connection,
    workflow_run_id: int,
    workflow: str,
    result: AgentResult,
    *,
    reused_from: int | None = None,
) -> int:
    """One ``runs`` row and its attempts. A reused result costs nothing in this run and
    has no attempts here: both stay with the run it was taken from."""
    reused = result.reused or reused_from is not None
    status = AgentStatus.SUCCEEDED.value if reused else result.status.value
    usage = result.usage
    cursor = connection.execute(
        """INSERT INTO runs (workflow_run_id, workflow, agent, status, cost, output, error, retries,
            model, provider, prompt, input_tokens, output_tokens, tokens_estimated,
            started_at, finished_at, duration, reused, reused_from_run_id, value)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            workflow_run_id,
            workflow,
            storable(result.name),
            status,
            0.0 if reused else result.cost,
            storable(result.output),
            storable(result.error),
            0 if reused else result.retries,
            storable(result.model),
            storable(result.provider),
            storable(result.prompt),
            0 if reused else usage.input_tokens,
            0 if reused else usage.output_tokens,
            0 if reused else int(usage.estimated),
            to_iso(result.started_at),
            to_iso(result.finished_at),
            result.duration,
            int(reused),
            reused_from,
            None
            if result.value is None
            else storable(json.dumps(result.value, ensure_ascii=False)),
        ),
    )
    run_id = _row_id(cursor)
    if not reused:
        connection.executemany(
            """INSERT INTO attempts (run_id, number, status, http_status, error, error_type, started_at,
                duration, input_tokens, output_tokens, tokens_estimated, cost, turn, validation_error)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
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
                )
                for attempt in result.attempts
            ],
        )
    return run_id


def _insert_tool_calls(
    connection: sqlite3.Connection, workflow_run_id: int, calls: list[tuple[str, ToolCallRecord]]
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
