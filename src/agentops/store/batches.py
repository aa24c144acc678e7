"""Batches in the history: the ``batches`` row, and each row's workflow runs read back.

Its records (``BatchRecord``, ``RowOutcome``) and their mapping are in ``records``.
A batch's rows are ordinary workflow runs (recorded by ``RunRecorder``) carrying
``batch_id`` and ``batch_row``; the batch row itself is written through the
``HistoryWriter`` (``sqlite_writer`` for SQLite). A row run again by ``resume-batch`` gets a new
workflow run; the latest run of each row is its result, and its cost counts every
run of that row. A row is *skipped* when its run failed before any attempt because
the cost cap had no room for it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentops.errors import RunNotFoundError, StoreError
from agentops.store.database import Database
from agentops.store.liveness import effective_status
from agentops.store.records import BatchRecord, RowOutcome, batch_record
from agentops.store.sqlite import describe

# The row's result: its latest run; "skipped" when that run made no attempt for lack of budget
# (the cost cap, or a named budget: batch.runner.row_status). Rows from before skip_cause
# (migration 11) say so only by their error.
ROW_STATUS = """CASE
    WHEN w.status = 'failed'
     AND NOT EXISTS (SELECT 1 FROM runs r JOIN attempts a ON a.run_id = r.id WHERE r.workflow_run_id = w.id)
     AND EXISTS (SELECT 1 FROM runs r WHERE r.workflow_run_id = w.id
                 AND (r.skip_cause = 'cost_cap' OR r.error = 'cost cap'))
    THEN 'skipped' ELSE w.status END"""
LATEST_ROW_RUN = """w.id = (SELECT max(l.id) FROM workflow_runs l WHERE l.batch_id = w.batch_id AND l.batch_row = w.batch_row)"""


@dataclass(frozen=True)
class RowState:
    """What resume-batch needs of a row already run."""

    workflow_run_id: int
    status: str  # the row status: succeeded, failed, skipped, interrupted, running


_BATCH_COLUMNS = """id, workflow, definition, source_path, data_path, data_sha256, row_count, input_map,
    cost_cap, status, started_at, finished_at, rows_succeeded, rows_failed, rows_skipped, input_tokens,
    output_tokens, cost, pauses, paused_seconds, pid, hostname, process_start"""


def _has_batches(store: Database) -> bool:
    if store.dialect != "sqlite":
        return True  # migrated on open: never older than migration 8
    return bool(store.read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches'"))


def batch(store: Database, batch_id: int) -> BatchRecord:
    found = []
    if _has_batches(store):
        found = store.read(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,))
    if not found:
        latest = list_batches(store, limit=1)
        hint = (
            f"; the latest is {latest[0].id} (agentops list-batches)"
            if latest
            else "; no batch is recorded yet"
        )
        raise RunNotFoundError(f"no batch {batch_id} in {store.path}{hint}")
    return batch_record(found[0])


def list_batches(store: Database, *, limit: int = 20) -> list[BatchRecord]:
    if not _has_batches(store):
        return []
    rows = store.read(f"SELECT {_BATCH_COLUMNS} FROM batches ORDER BY id DESC LIMIT ?", (limit,))
    return [batch_record(row) for row in rows]


def progress(store: Database, batch_id: int) -> dict[str, int]:
    """Row counts by status of the latest run of each row, for a batch still running."""
    rows = store.read(
        f"""SELECT {ROW_STATUS} AS row_status, count(*) FROM workflow_runs w
        WHERE w.batch_id = ? AND {LATEST_ROW_RUN} GROUP BY row_status""",
        (batch_id,),
    )
    return {str(status): int(count) for status, count in rows}


def batch_spend(store: Database, batch_id: int) -> float:
    """What every workflow run of the batch has spent (every run of every row)."""
    rows = store.read(
        "SELECT coalesce(sum(cost), 0) FROM workflow_runs WHERE batch_id = ?", (batch_id,)
    )
    return float(rows[0][0])


def row_states(store: Database, batch_id: int) -> dict[int, RowState]:
    rows = store.read(
        f"""SELECT w.batch_row, w.id, {ROW_STATUS}, w.pid, w.hostname, w.process_start,
            w.heartbeat_at FROM workflow_runs w WHERE w.batch_id = ? AND {LATEST_ROW_RUN}""",
        (batch_id,),
    )
    return {
        int(row): RowState(int(run_id), effective_status(status, pid, host, started, beat))
        for row, run_id, status, pid, host, started, beat in rows
    }


def row_outcomes(store: Database, batch_id: int) -> Iterator[RowOutcome]:
    """Each row's latest run, in row order, with every agent's output; streamed, not loaded whole."""
    try:
        yield from _row_outcomes(store, batch_id)
    except sqlite3.Error as error:  # a damaged page met half-way: one line, like every read
        raise StoreError(describe(error, Path(str(store.path)))) from error


def _row_outcomes(store: Database, batch_id: int) -> Iterator[RowOutcome]:
    cursor = store.connection.execute(
        f"""SELECT w.batch_row, w.id, {ROW_STATUS}, w.inputs,
            (SELECT sum(c.cost) FROM workflow_runs c WHERE c.batch_id = w.batch_id AND c.batch_row = w.batch_row),
            r.agent, r.output, r.status, r.error, r.value, r.skip_cause,
            (SELECT group_concat(DISTINCT n.node) FROM runs n
                WHERE n.workflow_run_id = w.id AND n.node IS NOT NULL)
        FROM workflow_runs w JOIN runs r ON r.workflow_run_id = w.id
        WHERE w.batch_id = ? AND {LATEST_ROW_RUN} AND r.item_index IS NULL
            AND r.iteration IS NULL
        ORDER BY w.batch_row, r.id""",
        (batch_id,),
    )
    current: dict[str, Any] | None = None
    # A fan-out agent's output is its row's (the list of its items'); its instances are left out.
    for (
        row,
        run_id,
        status,
        inputs,
        cost,
        agent,
        output,
        agent_status,
        error,
        value,
        cause,
        nodes,
    ) in cursor:
        if current is None or current["row"] != row:
            if current is not None:
                yield RowOutcome(**current)
            current = {
                "row": row,
                "status": status,
                "inputs": json.loads(inputs or "{}"),
                "outputs": {},
                "cost": round(cost or 0.0, 10),
                "error": None,
                "workflow_run_id": run_id,
                "nodes": sorted(nodes.split(",")) if nodes else [],
            }
        # An agent with an output schema gives its parsed value (an object, not JSON in a string).
        answer = output if value is None else json.loads(value)
        current["outputs"][agent] = answer if agent_status == "succeeded" else None
        if (
            current["error"] is None
            and agent_status in ("failed", "skipped", "cancelled")
            and cause != "routed"  # routed away is no failure: the row may well succeed
            and error
        ):
            current["error"] = f"{agent}: {error}"
    if current is not None:
        yield RowOutcome(**current)


__all__ = [
    "BatchRecord",
    "RowOutcome",
    "RowState",
    "batch",
    "batch_spend",
    "list_batches",
    "progress",
    "row_outcomes",
    "row_states",
]
