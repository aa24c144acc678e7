"""The queries behind the web view, over SQLite: keyset pages of workflow runs, a run's
agents (settled and in flight), one agent with its attempts and tool calls, and the
resume chain.

Each is served by an index (migrations 2 and 6), so a page costs the same on a
file of a million runs as on a new one: pages walk ``(status, id)`` or
``(workflow, status, id)`` from a cursor, never ``OFFSET``.
"""

from __future__ import annotations

import sqlite3

from agentops.runtime.events import split_run_key
from agentops.store import records
from agentops.store.liveness import INTERRUPTED, RUNNING
from agentops.store.queries import (
    AGENT_COLUMNS,
    WORKFLOW_COLUMNS,
    attempts_of,
    not_found,
    tool_calls_of,
)
from agentops.store.records import (
    AgentOutcome,
    AgentRunRecord,
    AgentStart,
    RunPage,
    ToolCallRow,
    WorkflowRunHeader,
    WorkflowRunRecord,
    agent_outcome,
    agent_run_record,
    workflow_run_record,
)
from agentops.store.sqlite import Store

# The stored statuses a filter on an effective status reads: a ``running`` row whose
# process died reads ``interrupted`` (see liveness), so both filters look at it.
_STORED_STATUSES = {RUNNING: (RUNNING,), INTERRUPTED: (INTERRUPTED, RUNNING)}
_CHAIN_LIMIT = 100  # a resume chain longer than this is shown cut
_EVERY = 2**63 - 1  # SQLite's largest integer: a bound no count reaches


def workflow_run_page(
    store: Store,
    *,
    workflow: str | None = None,
    status: str | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> RunPage:
    """Runs newest first; ``before``/``after`` are keyset cursors (ids), never offsets."""
    newest_first = after is None
    cursor = before if newest_first else after
    found = _matching(store, workflow, status, cursor, newest_first, limit + 1)
    page, beyond = found[:limit], len(found) > limit
    if not newest_first:
        page.reverse()
    if not page:
        return RunPage([], older=None, newer=None)
    top, bottom = page[0].id, page[-1].id
    if newest_first:
        older = bottom if beyond else None
        newer = (
            top
            if before is not None and _matching(store, workflow, status, top, False, 1)
            else None
        )
    else:
        newer = top if beyond else None
        older = bottom if _matching(store, workflow, status, bottom, True, 1) else None
    return RunPage(page, older=older, newer=newer)


def _matching(
    store: Store,
    workflow: str | None,
    status: str | None,
    cursor: int | None,
    newest_first: bool,
    wanted: int,
) -> list[WorkflowRunRecord]:
    """Up to ``wanted`` runs past ``cursor`` whose effective status is ``status``."""
    found: list[WorkflowRunRecord] = []
    while len(found) < wanted:
        rows = _run_rows(store, workflow, status, cursor, newest_first, wanted)
        found.extend(
            record
            for record in map(workflow_run_record, rows)
            if status is None or record.status == status
        )
        if len(rows) < wanted:
            break  # nothing further in this direction
        cursor = rows[-1]["id"]
    return found[:wanted]


def _run_rows(
    store: Store,
    workflow: str | None,
    status: str | None,
    cursor: int | None,
    newest_first: bool,
    limit: int,
) -> list[sqlite3.Row]:
    conditions: list[str] = []
    parameters: list[object] = []
    if workflow is not None:
        conditions.append("w.workflow = ?")
        parameters.append(workflow)
    if status is not None:
        stored = _STORED_STATUSES.get(status, (status,))
        conditions.append(f"w.status IN ({', '.join('?' * len(stored))})")
        parameters.extend(stored)
    if cursor is not None:
        conditions.append("w.id < ?" if newest_first else "w.id > ?")
        parameters.append(cursor)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = "DESC" if newest_first else "ASC"
    parameters.append(limit)
    return store.read(
        f"SELECT {WORKFLOW_COLUMNS} FROM workflow_runs w {where} ORDER BY w.id {order} LIMIT ?",
        tuple(parameters),
    )


def workflow_names(store: Store, limit: int | None = 500) -> list[str]:
    """Distinct workflow names by skipping through the ``(workflow, id)`` index: one
    lookup per name, not a scan of every run (None: every name)."""
    rows = store.read(
        """WITH RECURSIVE names(name, n) AS (
            SELECT min(workflow), 1 FROM workflow_runs
            UNION ALL
            SELECT (SELECT min(workflow) FROM workflow_runs WHERE workflow > names.name), n + 1
            FROM names WHERE names.name IS NOT NULL AND n < ?
        )
        SELECT name FROM names WHERE name IS NOT NULL""",
        (_EVERY if limit is None else limit,),
    )
    return [row[0] for row in rows]


def workflow_run_header(store: Store, workflow_run_id: int) -> WorkflowRunHeader:
    rows = store.read(
        f"""SELECT {WORKFLOW_COLUMNS}, w.definition, w.definition_sha256, w.inputs
        FROM workflow_runs w WHERE w.id = ?""",
        (workflow_run_id,),
    )
    if not rows:
        raise not_found(store, "workflow_runs", "workflow run", workflow_run_id)
    return records.workflow_run_header(rows[0])


def workflow_run_summary(store: Store, workflow_run_id: int) -> WorkflowRunRecord:
    rows = store.read(
        f"SELECT {WORKFLOW_COLUMNS} FROM workflow_runs w WHERE w.id = ?", (workflow_run_id,)
    )
    if not rows:
        raise not_found(store, "workflow_runs", "workflow run", workflow_run_id)
    return workflow_run_record(rows[0])


def agent_outcomes(store: Store, workflow_run_id: int) -> list[AgentOutcome]:
    rows = store.read(
        """SELECT r.id, r.agent, r.status, r.model, r.provider, r.input_tokens, r.output_tokens,
            r.tokens_estimated, r.cost, r.started_at, r.finished_at, r.duration, r.reused,
            r.reused_from_run_id, r.error, r.item_index, r.item_count, r.skip_cause,
            r.iteration, r.iterations, r.loop, r.loop_end,
            (SELECT count(*) FROM attempts a WHERE a.run_id = r.id) AS attempt_count
        FROM runs r WHERE r.workflow_run_id = ? ORDER BY r.id""",
        (workflow_run_id,),
    )
    return [agent_outcome(row) for row in rows]


def agent_starts(store: Store, workflow_run_id: int) -> list[AgentStart]:
    rows = store.read(
        "SELECT agent, model, provider, started_at FROM agent_starts WHERE workflow_run_id = ? ORDER BY agent",
        (workflow_run_id,),
    )
    return [records.agent_start(row) for row in rows]


def agent_start(store: Store, workflow_run_id: int, agent: str) -> AgentStart | None:
    rows = store.read(
        "SELECT agent, model, provider, started_at, prompt FROM agent_starts WHERE workflow_run_id = ? AND agent = ?",
        (workflow_run_id, agent),
    )
    if not rows:
        return None
    return records.agent_start(rows[0], with_prompt=True)


def agent_run_in(store: Store, workflow_run_id: int, agent: str) -> AgentRunRecord | None:
    """``agent`` is a name as runs show it: ``writer`` (the fan-out agent's own run),
    ``writer[2]`` (an instance) or ``draft#2`` (an iteration), looked up in ``runs_by_agent``."""
    name, iteration, item_index = split_run_key(agent)
    rows = store.read(
        f"""SELECT {AGENT_COLUMNS}, prompt FROM runs
        WHERE workflow_run_id = ? AND agent = ? AND item_index IS ? AND iteration IS ?
        ORDER BY id DESC LIMIT 1""",
        (workflow_run_id, name, item_index, iteration),
    )
    if not rows:
        return None
    record = agent_run_record(rows[0], with_prompt=True)
    record.attempts = attempts_of(store, [record.id]).get(record.id, [])
    return record


def resume_chain(store: Store, workflow_run_id: int) -> list[WorkflowRunRecord]:
    rows = store.read(
        f"""WITH RECURSIVE
            earlier(id, n) AS (
                SELECT ?, 0
                UNION
                SELECT w.resumed_from, n + 1 FROM workflow_runs w JOIN earlier ON w.id = earlier.id
                WHERE w.resumed_from IS NOT NULL AND n < {_CHAIN_LIMIT}
            ),
            later(id, n) AS (
                SELECT ?, 0
                UNION
                SELECT w.id, n + 1 FROM workflow_runs w JOIN later ON w.resumed_from = later.id
                WHERE n < {_CHAIN_LIMIT}
            )
        SELECT {WORKFLOW_COLUMNS} FROM workflow_runs w
        WHERE w.id IN (SELECT id FROM earlier UNION SELECT id FROM later) ORDER BY w.id""",
        (workflow_run_id, workflow_run_id),
    )
    return [workflow_run_record(row) for row in rows]


def tool_calls(store: Store, agent_run_id: int) -> list[ToolCallRow]:
    """The agent run's tool calls (migration 7's ``tool_calls``), in the order they finished."""
    return tool_calls_of(store, [agent_run_id]).get(agent_run_id, [])
