"""Numbered migrations: a blank file, a file the sketch's original program wrote (its
rows kept and upgraded), files that are not history at all, and indexes for every
query the history commands make."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from agentops.errors import RunNotFoundError, StoreError
from agentops.store import Store, open_store
from agentops.store.migrations import MIGRATIONS
from agentops.store.queries import (
    CostGrouping,
    agent_run,
    agent_runs,
    spend,
    workflow_run,
    workflow_runs,
)
from agentops.store.stores import open_database
from tests.support.store import (
    SKETCH_SCHEMA,
    columns,
    execute,
    is_postgres,
    make_sketch_database,
    migrated_to,
    rows,
)

SKETCH_RUNS = [
    "id",
    "workflow_run_id",
    "workflow",
    "agent",
    "status",
    "cost",
    "output",
    "error",
    "retries",
]
SKETCH_WORKFLOW_RUNS = ["id", "workflow", "started_at", "finished_at"]


def test_migration_1_is_exactly_the_sketch_schema(tmp_path: Path) -> None:
    """SQLite only: the sketch wrote SQLite files."""
    sketch = tmp_path / "sketch.db"
    ours = tmp_path / "ours.db"
    connection = sqlite3.connect(sketch)
    for statement in SKETCH_SCHEMA:
        connection.execute(statement)
    connection.close()
    connection = sqlite3.connect(ours)
    for statement in MIGRATIONS[0].statements:
        connection.execute(statement)
    connection.close()
    for table, expected in (("runs", SKETCH_RUNS), ("workflow_runs", SKETCH_WORKFLOW_RUNS)):
        assert columns(sketch, table) == columns(ours, table) == expected
        shape = "SELECT name, type, dflt_value, pk FROM pragma_table_info(?)"
        assert [tuple(r) for r in rows(sketch, shape, table)] == [
            tuple(r) for r in rows(ours, shape, table)
        ]


def test_a_blank_file_gets_every_migration_once(db: str) -> None:
    with open_database(db):
        pass
    applied = rows(db, "SELECT number, name FROM _migrations ORDER BY number")
    assert [(r["number"], r["name"]) for r in applied] == [(m.number, m.name) for m in MIGRATIONS]
    assert columns(db, "runs")[: len(SKETCH_RUNS)] == SKETCH_RUNS  # the sketch's columns come first
    assert {
        "model",
        "provider",
        "prompt",
        "input_tokens",
        "output_tokens",
        "tokens_estimated",
        "started_at",
        "finished_at",
        "duration",
        "reused",
        "reused_from_run_id",
    } <= set(columns(db, "runs"))
    assert {
        "status",
        "definition",
        "definition_sha256",
        "inputs",
        "resumed_from",
        "cost_cap",
        "input_tokens",
        "output_tokens",
        "cost",
        "pid",
        "hostname",
    } <= set(columns(db, "workflow_runs"))
    assert columns(db, "attempts")[:4] == ["id", "run_id", "number", "status"]
    if not is_postgres(db):
        assert rows(db, "PRAGMA journal_mode")[0][0] == "wal"

    with open_database(db):  # opening again changes nothing
        pass
    assert len(rows(db, "SELECT * FROM _migrations")) == len(MIGRATIONS)


def test_a_sketch_era_file_is_upgraded_in_place_with_its_rows(tmp_path: Path) -> None:
    """SQLite only: the sketch wrote SQLite files."""
    db = tmp_path / "agentops.db"
    make_sketch_database(db)
    with open_store(db) as store:
        listed = {run.id: run for run in workflow_runs(store)}
        first = workflow_run(store, 1)
        agents = agent_runs(store, limit=10)

    assert [r["number"] for r in rows(db, "SELECT number FROM _migrations ORDER BY number")] == [
        m.number for m in MIGRATIONS
    ]
    # Every row is still there with its values; the sketch's "success" reads "succeeded".
    kept = rows(
        db,
        "SELECT id, workflow_run_id, agent, status, cost, output, error, retries FROM runs ORDER BY id",
    )
    assert [tuple(r) for r in kept] == [
        (1, 1, "researcher", "succeeded", 0.0125, "three requests", None, 0),
        (2, 1, "summarizer", "failed", 0.0, None, "timeout", 2),
        (3, 2, "researcher", "succeeded", 0.01, "again", None, 1),
    ]
    # New columns: defaults, or what the old rows imply.
    assert (
        listed[1].status == "failed" and listed[2].status == "interrupted"
    )  # never finished: process long gone
    assert listed[1].cost == pytest.approx(0.0125) and listed[1].input_tokens == 0
    assert listed[1].started_at == "2024-04-30T09:15:00.000000+00:00"
    assert listed[1].duration == pytest.approx(70.0)
    assert (listed[1].agents_total, listed[1].agents_succeeded) == (2, 1)
    assert first.definition is None and first.inputs == {}
    assert [a.finished_at for a in first.agents] == ["2024-04-30T09:16:10.000000+00:00"] * 2
    assert [a.id for a in agents] == [3, 2, 1] and agents[0].model is None and not agents[0].reused


def test_a_half_migrated_file_gets_only_what_it_lacks(db: str) -> None:
    migrated_to(db, 3)
    execute(db, "INSERT INTO workflow_runs (workflow, status) VALUES ('w', 'succeeded')")

    with open_database(db):
        pass
    assert [
        (r[0], bool(r[1]))
        for r in rows(db, "SELECT number, applied_at = 'then' FROM _migrations ORDER BY number")
    ] == [(m.number, m.number <= 3) for m in MIGRATIONS]
    assert rows(db, "SELECT workflow, status FROM workflow_runs")[0]["status"] == "succeeded"


def not_found(store: Store, workflow_run_id: int) -> None:
    with pytest.raises(RunNotFoundError):
        workflow_run(store, workflow_run_id)


def test_every_history_query_uses_an_index(tmp_path: Path) -> None:
    """The statements the history commands really run (traced), planned by SQLite: nothing is
    sorted, and no table is read in full except by the unfiltered listings, which walk the
    primary key newest first and stop at their LIMIT. SQLite only: it reads SQLite's plans."""
    db = tmp_path / "agentops.db"
    make_sketch_database(db)
    calls: dict[str, Callable[[Store], object]] = {
        "list-runs": lambda store: agent_runs(store),
        "list-workflow-runs": lambda store: workflow_runs(store),
        "show-runs": lambda store: agent_runs(store, workflow="research_summary"),
        "list-workflow-runs --workflow": lambda store: workflow_runs(
            store, workflow="research_summary"
        ),
        "show-workflow-run": lambda store: workflow_run(store, 1),
        "show-run": lambda store: agent_run(store, 1),
        **{
            f"costs --by {by}": partial(spend, by=by, since="2024-04-01", until="2024-06-01")
            for by in CostGrouping
        },
        "unknown id": lambda store: not_found(store, 99),
    }
    with open_store(db) as store:
        for command, call in calls.items():
            statements: list[str] = []
            store.connection.set_trace_callback(statements.append)
            call(store)
            store.connection.set_trace_callback(None)
            assert statements, command
            for sql in statements:
                plan = [r["detail"] for r in store.connection.execute(f"EXPLAIN QUERY PLAN {sql}")]
                assert not any("FOR ORDER BY" in step for step in plan), (command, sql, plan)
                if command not in ("list-runs", "list-workflow-runs"):
                    # (``spent``: the grouped rows of costs' two parts, live and pruned)
                    scans = [s for s in plan if s.startswith("SCAN") and s.split()[1] != "spent"]
                    assert not scans, (command, sql, plan)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    """SQLite only: a file that is not a database."""
    db = tmp_path / "notes.db"
    db.write_bytes(b"this is not a database\x00" * 100)
    with pytest.raises(
        StoreError, match=r"notes\.db is not a usable agentops history database.*--db"
    ):
        open_store(db)


def test_another_programs_database_is_left_alone(tmp_path: Path) -> None:
    """SQLite only: a file is one program's; a PostgreSQL database may hold other tables."""
    db = tmp_path / "other.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    connection.close()
    with pytest.raises(StoreError, match=r"something else \(tables: customers\)"):
        open_store(db)
    assert [r["name"] for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")] == [
        "customers"
    ]


def test_a_directory_or_missing_parent_is_a_clear_error(tmp_path: Path) -> None:
    """SQLite only: paths."""
    with pytest.raises(StoreError, match="is a directory"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "missing" / "agentops.db")


def test_reading_a_missing_file_does_not_create_it(tmp_path: Path) -> None:
    """SQLite only: a file that does not exist."""
    db = tmp_path / "never.db"
    with open_store(db, create=False) as store:
        assert workflow_runs(store) == [] and store.path == db
    assert not db.exists()


def test_default_location_is_agentops_db_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: the default is a file (AGENTOPS_DB as a URL: test_store_postgres)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTOPS_DB")
    with open_store() as store:
        assert store.path == Path("agentops.db")
    assert (tmp_path / "agentops.db").exists()
    monkeypatch.setenv("AGENTOPS_DB", str(tmp_path / "elsewhere.db"))
    with open_store():
        pass
    assert (tmp_path / "elsewhere.db").exists()
