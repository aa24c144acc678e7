"""The history schema, as numbered migrations recorded in the ``_migrations`` table.

Migration 1 creates exactly the two tables of the original AgentOps sketch
(``CREATE TABLE IF NOT EXISTS``), so a file written by that program — those two
tables and no ``_migrations`` table — is upgraded in place by the later
migrations, its rows kept. Never edit a released migration: add the next one.

Every pending migration runs in one ``BEGIN IMMEDIATE`` transaction, so a process
killed half-way leaves the file as it was, and processes opening a new file at
the same moment apply them exactly once. A file with a migration past the last one here
was written by a newer agentops: every command refuses it, naming both numbers.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agentops.errors import StoreError
from agentops.store.sqlite import Store


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: tuple[str, ...]


# First-release timestamps are SQLite's CURRENT_TIMESTAMP ("2024-05-01 12:00:00", UTC);
# ours are ISO-8601 with microseconds and an offset, so text order is time order.
_FIRST_RELEASE_TIMESTAMP = (
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'"
)


def _to_iso(column: str) -> str:
    return (
        f"UPDATE workflow_runs SET {column} = strftime('%Y-%m-%dT%H:%M:%S.000000+00:00', {column}) "
        f"WHERE {column} GLOB {_FIRST_RELEASE_TIMESTAMP}"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sketch_tables",
        (
            """CREATE TABLE IF NOT EXISTS runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                workflow_run_id INTEGER,
                workflow TEXT,
                agent TEXT,
                status TEXT,
                cost REAL,
                output TEXT,
                error TEXT,
                retries INTEGER
            )""",
            """CREATE TABLE IF NOT EXISTS workflow_runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                workflow TEXT,
                started_at DATETIME DEFAULT CURRENT_TIMESTAMP,
                finished_at DATETIME
            )""",
        ),
    ),
    Migration(
        2,
        "history_indexes",
        (
            # show-workflow-run, resume and the per-run counts in list-workflow-runs
            "CREATE INDEX IF NOT EXISTS runs_by_workflow_run ON runs (workflow_run_id, id)",
            # show-runs --workflow NAME: newest first, from the index
            "CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, id)",
            # list-workflow-runs --workflow NAME
            "CREATE INDEX IF NOT EXISTS workflow_runs_by_workflow ON workflow_runs (workflow, id)",
        ),
    ),
    Migration(
        3,
        "workflow_run_details",
        (
            "ALTER TABLE workflow_runs ADD COLUMN status TEXT NOT NULL DEFAULT 'running'",
            "ALTER TABLE workflow_runs ADD COLUMN definition TEXT",
            "ALTER TABLE workflow_runs ADD COLUMN definition_sha256 TEXT",
            "ALTER TABLE workflow_runs ADD COLUMN source_path TEXT",
            "ALTER TABLE workflow_runs ADD COLUMN inputs TEXT",
            "ALTER TABLE workflow_runs ADD COLUMN resumed_from INTEGER",
            "ALTER TABLE workflow_runs ADD COLUMN cost_cap REAL",
            "ALTER TABLE workflow_runs ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE workflow_runs ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE workflow_runs ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE workflow_runs ADD COLUMN cost REAL NOT NULL DEFAULT 0",
            "ALTER TABLE workflow_runs ADD COLUMN pid INTEGER",
            "ALTER TABLE workflow_runs ADD COLUMN hostname TEXT",
            "ALTER TABLE workflow_runs ADD COLUMN process_start TEXT",
            _to_iso("started_at"),
            _to_iso("finished_at"),
            # First-release runs: finished if finish was recorded; failed if any agent did not succeed.
            """UPDATE workflow_runs SET status = CASE
                WHEN finished_at IS NULL THEN 'interrupted'
                WHEN EXISTS (
                    SELECT 1 FROM runs WHERE runs.workflow_run_id = workflow_runs.id
                    AND coalesce(runs.status, '') NOT IN ('succeeded', 'success')
                ) THEN 'failed'
                ELSE 'succeeded' END""",
            """UPDATE workflow_runs SET cost = coalesce(
                (SELECT sum(runs.cost) FROM runs WHERE runs.workflow_run_id = workflow_runs.id), 0)""",
        ),
    ),
    Migration(
        4,
        "agent_run_details",
        (
            "ALTER TABLE runs ADD COLUMN model TEXT",
            "ALTER TABLE runs ADD COLUMN provider TEXT",
            "ALTER TABLE runs ADD COLUMN prompt TEXT",
            "ALTER TABLE runs ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN started_at TEXT",
            "ALTER TABLE runs ADD COLUMN finished_at TEXT",
            "ALTER TABLE runs ADD COLUMN duration REAL",
            # A resumed run's agents taken from an earlier run: recorded, not called (cost 0 here).
            "ALTER TABLE runs ADD COLUMN reused INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN reused_from_run_id INTEGER",
            # The first release wrote "success"; the rest of the product says "succeeded".
            "UPDATE runs SET status = 'succeeded' WHERE status = 'success'",
            """UPDATE runs SET finished_at = (
                SELECT coalesce(w.finished_at, w.started_at) FROM workflow_runs w
                WHERE w.id = runs.workflow_run_id)""",
            # costs --since/--until: agent runs by when they finished
            "CREATE INDEX IF NOT EXISTS runs_by_finished_at ON runs (finished_at)",
        ),
    ),
    Migration(
        5,
        "attempts",
        (
            """CREATE TABLE IF NOT EXISTS attempts (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                status TEXT NOT NULL,
                http_status INTEGER,
                error TEXT,
                error_type TEXT,
                started_at TEXT,
                duration REAL,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                tokens_estimated INTEGER NOT NULL DEFAULT 0,
                cost REAL,
                UNIQUE (run_id, number)
            )""",
        ),
    ),
    Migration(
        6,
        "agent_starts",
        (
            # Agents that started and have not settled yet: the live view's "running". A row
            # in runs is still only ever a settled agent; these rows go when the run ends.
            """CREATE TABLE IF NOT EXISTS agent_starts (
                id INTEGER PRIMARY KEY,
                workflow_run_id INTEGER NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
                agent TEXT NOT NULL,
                model TEXT,
                provider TEXT,
                prompt TEXT,
                started_at TEXT,
                UNIQUE (workflow_run_id, agent)
            )""",
            # the web view's run list filtered by status, with or without a workflow
            "CREATE INDEX IF NOT EXISTS workflow_runs_by_status ON workflow_runs (status, id)",
            "CREATE INDEX IF NOT EXISTS workflow_runs_by_workflow_status ON workflow_runs (workflow, status, id)",
            # the resume chain: the runs that continued this one
            "CREATE INDEX IF NOT EXISTS workflow_runs_by_resumed_from ON workflow_runs (resumed_from)",
        ),
    ),
    Migration(
        7,
        "tool_calls",
        (
            # Which turn (model call) of the agent's loop an attempt made; retries share it.
            "ALTER TABLE attempts ADD COLUMN turn INTEGER NOT NULL DEFAULT 1",
            # One row per tool call, written when it finishes. run_id is set once the agent's
            # run is recorded (when it settles); a process killed mid-loop leaves it NULL, and
            # (workflow_run_id, agent) still says whose call it was.
            """CREATE TABLE IF NOT EXISTS tool_calls (
                id INTEGER PRIMARY KEY,
                workflow_run_id INTEGER NOT NULL,
                run_id INTEGER REFERENCES runs (id) ON DELETE CASCADE,
                agent TEXT NOT NULL,
                turn INTEGER NOT NULL,
                call_id TEXT,
                tool TEXT NOT NULL,
                arguments TEXT,
                status TEXT NOT NULL,
                result TEXT,
                error TEXT,
                started_at TEXT,
                duration REAL
            )""",
            "CREATE INDEX IF NOT EXISTS tool_calls_by_run ON tool_calls (run_id, id)",
            "CREATE INDEX IF NOT EXISTS tool_calls_by_workflow_run ON tool_calls (workflow_run_id, agent, id)",
            # The MCP servers a run started, with the end of their stderr (stdio servers).
            """CREATE TABLE IF NOT EXISTS tool_servers (
                id INTEGER PRIMARY KEY,
                workflow_run_id INTEGER NOT NULL,
                name TEXT NOT NULL,
                transport TEXT NOT NULL,
                target TEXT,
                tools TEXT,
                stderr TEXT,
                started_at TEXT,
                stopped_at TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS tool_servers_by_workflow_run ON tool_servers (workflow_run_id, id)",
        ),
    ),
    Migration(
        8,
        "batches",
        (
            """CREATE TABLE IF NOT EXISTS batches (
                id INTEGER PRIMARY KEY,
                workflow TEXT NOT NULL,
                definition TEXT NOT NULL,
                source_path TEXT,
                data_path TEXT NOT NULL,
                data_sha256 TEXT NOT NULL,
                row_count INTEGER NOT NULL,
                input_map TEXT NOT NULL DEFAULT '{}',
                cost_cap REAL,
                status TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                rows_succeeded INTEGER NOT NULL DEFAULT 0,
                rows_failed INTEGER NOT NULL DEFAULT 0,
                rows_skipped INTEGER NOT NULL DEFAULT 0,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                cost REAL NOT NULL DEFAULT 0,
                pauses INTEGER NOT NULL DEFAULT 0,
                paused_seconds REAL NOT NULL DEFAULT 0,
                pid INTEGER,
                hostname TEXT,
                process_start TEXT
            )""",
            "ALTER TABLE workflow_runs ADD COLUMN batch_id INTEGER REFERENCES batches (id)",
            "ALTER TABLE workflow_runs ADD COLUMN batch_row INTEGER",
            "CREATE INDEX IF NOT EXISTS workflow_runs_by_batch_row ON workflow_runs (batch_id, batch_row, id)",
        ),
    ),
    Migration(
        9,
        "workflow_run_trace",
        (
            # The OpenTelemetry trace and workflow span of a traced run, so a resume can link to it.
            "ALTER TABLE workflow_runs ADD COLUMN trace_id TEXT",
            "ALTER TABLE workflow_runs ADD COLUMN trace_span_id TEXT",
        ),
    ),
    Migration(
        10,
        "structured_outputs",
        (
            # An agent with an output schema: its answer parsed, as canonical JSON (``output`` keeps
            # the JSON text it wrote); NULL for agents without a schema.
            "ALTER TABLE runs ADD COLUMN value TEXT",
            # Why an attempt's answer did not follow the schema (it was then re-asked, or the agent failed).
            "ALTER TABLE attempts ADD COLUMN validation_error TEXT",
        ),
    ),
    Migration(
        11,
        "fan_out_and_routing",
        (
            # A fan-out instance is a runs row of its agent (``agent`` is "writer", shown as
            # "writer[2]") with its 0-based item_index and its item as canonical JSON; NULL both
            # on any other row.
            "ALTER TABLE runs ADD COLUMN item_index INTEGER",
            "ALTER TABLE runs ADD COLUMN item TEXT",
            # The fan-out agent's own row: how many items it had. Its cost and tokens are 0:
            # they are on its instances, so every sum over runs counts each dollar once.
            "ALTER TABLE runs ADD COLUMN item_count INTEGER",
            # A skipped agent: routed (its ``when`` was false), dependency or cost_cap.
            "ALTER TABLE runs ADD COLUMN skip_cause TEXT",
            # Its ``when`` as evaluated: JSON {expression, held, values}.
            "ALTER TABLE runs ADD COLUMN decision TEXT",
            # One agent run of a workflow run by name and item: a resume looks up each reused
            # instance's origin here, and the web view an instance's page.
            "CREATE INDEX IF NOT EXISTS runs_by_agent ON runs (workflow_run_id, agent, item_index)",
        ),
    ),
    Migration(
        12,
        "ray_node",
        (
            # executor ray: the Ray node id (hex) that ran the agent run, the last one if its
            # worker was lost and it moved; NULL when it ran in the driver's process, was
            # reused, or is a fan-out agent's own row (its items have theirs).
            "ALTER TABLE runs ADD COLUMN node TEXT",
        ),
    ),
    Migration(
        14,
        "loops_and_approvals",
        (
            # An iteration of a loop's member is a runs row of its agent (``agent`` is "draft",
            # shown as "draft#2") with its 1-based iteration; a fan-out item inside a loop has
            # both its iteration and its item_index. NULL on any other row.
            "ALTER TABLE runs ADD COLUMN iteration INTEGER",
            # A member's own row: how many iterations ran (its output is the last one's, its
            # spend 0: it is on the iterations' rows) and why its loop ended.
            "ALTER TABLE runs ADD COLUMN iterations INTEGER",
            "ALTER TABLE runs ADD COLUMN loop_end TEXT",
            # The loop, on a member's own row and on its iterations' rows.
            "ALTER TABLE runs ADD COLUMN loop TEXT",
            # ``approval:``: one row each time an agent waits for a person (its runs row, status
            # waiting_approval, holds the prompt or the answer to decide on). status: pending,
            # then approved, rejected or revise (with who, when and the text); applied_run_id:
            # the run that resumed this one and took the decision (or carried a pending one on),
            # after which no decision is taken here: never applied twice.
            """CREATE TABLE IF NOT EXISTS approvals (
                id INTEGER PRIMARY KEY,
                workflow_run_id INTEGER NOT NULL REFERENCES workflow_runs(id),
                agent TEXT NOT NULL,
                mode TEXT NOT NULL,
                status TEXT NOT NULL,
                requested_at TEXT NOT NULL,
                timeout_at TEXT,
                on_timeout TEXT,
                decided_at TEXT,
                decided_by TEXT,
                text TEXT,
                applied_run_id INTEGER REFERENCES workflow_runs(id)
            )""",
            "CREATE INDEX IF NOT EXISTS approvals_open ON approvals (applied_run_id, status)",
            "CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals (workflow_run_id, agent)",
        ),
    ),
    Migration(
        15,
        "response_cache_and_replay",
        (
            # An attempt answered from the response cache (or a replayed recording): no call was
            # made; its tokens are the original's, its cost 0, saved_cost what the original cost.
            "ALTER TABLE attempts ADD COLUMN cached INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE attempts ADD COLUMN saved_cost REAL",
            # The request's key (sha256 of its canonical parts) and its digest (each part's hash,
            # the model and parameters in clear), and the answer of a succeeded attempt as JSON:
            # what a replay answers from, and names the difference with.
            "ALTER TABLE attempts ADD COLUMN request_key TEXT",
            "ALTER TABLE attempts ADD COLUMN request_digest TEXT",
            "ALTER TABLE attempts ADD COLUMN response TEXT",
            # A rerun (agentops rerun RUN --from AGENT): the agent it ran again from; the run it
            # reruns is resumed_from, whose agents upstream of that one it reused.
            "ALTER TABLE workflow_runs ADD COLUMN rerun_from TEXT",
            # A replay (--replay): what its calls were answered from ("workflow run 7", "batch
            # 3"); its cached attempts are not the cache's hits.
            "ALTER TABLE workflow_runs ADD COLUMN replaying TEXT",
            # The response cache: one answer per request key, written when an attempt's answer
            # is accepted, by the workflow that wrote it (clear --workflow), with its tokens and
            # what it cost (what each hit saves).
            """CREATE TABLE IF NOT EXISTS response_cache (
                key TEXT PRIMARY KEY,
                workflow TEXT NOT NULL,
                agent TEXT,
                model TEXT,
                response TEXT NOT NULL,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                tokens_estimated INTEGER NOT NULL DEFAULT 0,
                cost REAL,
                size INTEGER NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS response_cache_by_workflow ON response_cache (workflow, created_at)",
            "CREATE INDEX IF NOT EXISTS response_cache_by_created_at ON response_cache (created_at)",
        ),
    ),
)

_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS _migrations (
    number INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

# Tables a file must have (if it has any) for us to add ours to it.
_OURS = {"_migrations", "runs", "workflow_runs"}


def migrate(store: Store) -> list[int]:
    """Apply every migration the file lacks; return their numbers (empty: up to date)."""
    if not pending_migrations(store.connection, store.path):
        return []  # the common case costs one read and takes no write lock
    return store.write(lambda connection: _apply(connection, store))


def pending_migrations(connection: sqlite3.Connection, path: Path) -> list[Migration]:
    """The migrations the file at ``connection`` lacks, in order.

    A file a newer agentops has migrated further raises ``StoreError``: its schema may mean
    what this version cannot know, so no command reads or writes it.
    """
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    applied: set[int] = set()
    if "_migrations" in tables:
        applied = {row[0] for row in connection.execute("SELECT number FROM _migrations")}
    newest = MIGRATIONS[-1].number
    if applied and max(applied) > newest:
        raise StoreError(
            f"history database {path} was written by a newer agentops (its schema is at migration "
            f"{max(applied)}; this agentops knows migrations up to {newest}); upgrade agentops, "
            "or point --db (or AGENTOPS_DB) at another file"
        )
    return [m for m in MIGRATIONS if m.number not in applied]


def _apply(connection: sqlite3.Connection, store: Store) -> list[int]:
    # Read again under the write lock: another process may have just migrated the file.
    pending = pending_migrations(connection, store.path)
    if not pending:
        return []
    tables = {
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if tables and not tables & _OURS:
        raise StoreError(
            f"{store.path} is a SQLite database of something else (tables: {', '.join(sorted(tables))}), "
            "not agentops history; point --db (or AGENTOPS_DB) at another file"
        )
    connection.execute(_MIGRATIONS_TABLE)
    applied_at = datetime.now(UTC).isoformat(timespec="microseconds")
    for migration in pending:
        for statement in migration.statements:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO _migrations (number, name, applied_at) VALUES (?, ?, ?)",
            (migration.number, migration.name, applied_at),
        )
    return [m.number for m in pending]
