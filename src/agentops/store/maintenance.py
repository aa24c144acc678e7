"""Looking after a history: copying a SQLite history into an empty PostgreSQL database
(``agentops db migrate --to``), and pruning old runs (``agentops db prune``), on either store.

Both go through ``Database`` and the SQL both stores read, so they are the same code for
each. A copy keeps every id (and so every link between rows: resumes, reuses, batches, tool
calls) and is one transaction: an interrupted copy leaves the target empty. A prune deletes in
batches of ``PRUNE_BATCH`` workflow runs, one transaction each, and first adds what the
deleted agent runs spent to ``cost_ledger``, so ``agentops costs`` reads the same after it.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from agentops.errors import StoreError, UsageError
from agentops.store.database import Connection, Cursor, Database
from agentops.store.timestamps import to_iso

__all__ = ["PruneReport", "copy_history", "prune"]

# Parents before children, so every reference points at a row already copied.
TABLES = (
    "batches",
    "workflow_runs",
    "approvals",
    "runs",
    "attempts",
    "agent_starts",
    "tool_calls",
    "tool_servers",
    "budgets",
    "budget_holds",
    "cost_ledger",
)
COPY_CHUNK = 1000
PRUNE_BATCH = 500
# Statuses --keep-failed keeps: a run that did not succeed may still be looked into or resumed.
FAILED_STATUSES = ("failed", "interrupted")


def copy_history(source: Database, target: Database) -> dict[str, int]:
    """Every row of ``source`` (a SQLite file) into ``target`` (empty, migrated), ids kept;
    rows copied per table."""
    assert source.dialect == "sqlite", "the columns are read with PRAGMA table_info"
    nonempty = [t for t in TABLES if target.read(f"SELECT 1 FROM {t} LIMIT 1")]
    if nonempty:
        raise UsageError(
            f"{target.path} already holds history (rows in {', '.join(nonempty)}); "
            "db migrate copies into an empty database only"
        )
    copied: dict[str, int] = {}

    def work(connection: Connection) -> None:
        for table in TABLES:
            names = _columns(source, table)
            if not names:
                continue  # (every table exists in a migrated file; kept for safety)
            cursor = source.connection.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY 1")
            insert = (
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            )
            count = 0
            while True:
                chunk = [tuple(row) for row in cursor.fetchmany(COPY_CHUNK)]
                if not chunk:
                    break
                connection.executemany(insert, chunk)
                count += len(chunk)
            copied[table] = count
        _continue_ids(target, connection)

    target.write(work)
    return copied


def _columns(source: Database, table: str) -> list[str]:
    """The columns of ``table`` in ``source`` (a SQLite file), in order."""
    return [row[1] for row in source.read(f"PRAGMA table_info({table})")]


def _continue_ids(target: Database, connection: Connection) -> None:
    """PostgreSQL's identities go on after the copied ids (SQLite's do by themselves)."""
    if target.dialect != "postgresql":
        return
    for table in TABLES:
        connection.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
        )


@dataclass
class PruneReport:
    cutoff: str  # runs that finished before this (stored form) were pruned
    workflow_runs: int = 0
    agent_runs: int = 0
    batches: int = 0
    kept_failed: int = 0
    cost: float = 0.0  # what the pruned agent runs spent, now in the ledger

    def to_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "workflow_runs": self.workflow_runs,
            "agent_runs": self.agent_runs,
            "batches": self.batches,
            "kept_failed": self.kept_failed,
            "cost": round(self.cost, 10),
        }


def prune(
    store: Database, *, older_than: float, keep_failed: bool = False, now: float | None = None
) -> PruneReport:
    """Delete workflow runs that finished more than ``older_than`` seconds ago (with their agent
    runs, attempts, tool calls and servers), a batch's only with the batch; never a running one."""
    if older_than <= 0:
        raise UsageError("--older-than must be more than 0 (e.g. 90d)")
    cutoff = to_iso((time.time() if now is None else now) - older_than) or ""
    report = PruneReport(cutoff)
    kept = "AND w.status NOT IN ('failed', 'interrupted')" if keep_failed else ""
    candidates = f"""SELECT w.id FROM workflow_runs w
        WHERE w.finished_at IS NOT NULL AND w.finished_at < ? AND w.status <> 'running' {kept}
        AND (w.batch_id IS NULL OR w.batch_id IN (
            SELECT b.id FROM batches b WHERE b.finished_at IS NOT NULL AND b.finished_at < ?))
        ORDER BY w.id LIMIT {PRUNE_BATCH}"""
    while True:
        ids = [int(row[0]) for row in store.read(candidates, (cutoff, cutoff))]
        if not ids:
            break
        agents, cost = store.write(functools.partial(_prune_runs, ids=ids))
        report.agent_runs += agents
        report.cost += cost
        report.workflow_runs += len(ids)
    if keep_failed:
        found = store.read(
            "SELECT count(*) FROM workflow_runs WHERE finished_at < ? AND status IN (?, ?)",
            (cutoff, *FAILED_STATUSES),
        )
        report.kept_failed = int(found[0][0])
    report.batches = store.write(
        lambda connection: _count(
            connection.execute(
                """DELETE FROM batches WHERE finished_at IS NOT NULL AND finished_at < ?
                AND NOT EXISTS (SELECT 1 FROM workflow_runs w WHERE w.batch_id = batches.id)""",
                (cutoff,),
            )
        )
    )
    return report


def _prune_runs(connection: Connection, *, ids: list[int]) -> tuple[int, float]:
    """One batch pruned: (agent runs deleted, what they spent). It may run again whole (a
    retried transaction), so it changes nothing but the database."""
    marks = ", ".join("?" * len(ids))
    chosen = tuple(ids)
    # What the runs spent, as ``queries.spend`` counts it, into the ledger first.
    connection.execute(
        f"""INSERT INTO cost_ledger (day, workflow, provider, model, workflow_runs, agent_runs,
            input_tokens, output_tokens, tokens_estimated, cost, unpriced_runs, pruned_at)
        SELECT substr(finished_at, 1, 10), workflow, provider, model,
            count(DISTINCT workflow_run_id), count(*), coalesce(sum(input_tokens), 0),
            coalesce(sum(output_tokens), 0), coalesce(max(tokens_estimated), 0),
            coalesce(sum(cost), 0), count(*) - count(cost), ?
        FROM runs WHERE workflow_run_id IN ({marks}) AND reused = 0 AND item_count IS NULL
        GROUP BY substr(finished_at, 1, 10), workflow, provider, model""",
        (to_iso(time.time()), *chosen),
    )
    spent = connection.execute(
        f"""SELECT coalesce(sum(cost), 0) FROM runs
        WHERE workflow_run_id IN ({marks}) AND reused = 0 AND item_count IS NULL""",
        chosen,
    ).fetchone()
    # Children first: a file of the sketch era has no cascading foreign keys.
    connection.execute(
        f"DELETE FROM attempts WHERE run_id IN (SELECT id FROM runs WHERE workflow_run_id IN ({marks}))",
        chosen,
    )
    for table in ("tool_calls", "tool_servers", "agent_starts"):
        connection.execute(f"DELETE FROM {table} WHERE workflow_run_id IN ({marks})", chosen)
    connection.execute(  # (their foreign keys point at the runs)
        f"DELETE FROM approvals WHERE workflow_run_id IN ({marks}) OR applied_run_id IN ({marks})",
        chosen + chosen,
    )
    agents = _count(
        connection.execute(f"DELETE FROM runs WHERE workflow_run_id IN ({marks})", chosen)
    )
    connection.execute(f"DELETE FROM workflow_runs WHERE id IN ({marks})", chosen)
    return agents, float(spent[0] or 0.0)


def _count(cursor: Cursor) -> int:
    if cursor.rowcount < 0:  # pragma: no cover - a DELETE always says
        raise StoreError("the history database did not say how many rows it deleted")
    return cursor.rowcount
