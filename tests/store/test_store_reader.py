"""The store's read interface (what the history commands and the web view read) and the agent starts the
recorder writes for it: a started agent is never a settled one to any other reader,
pages are keyset-paged and indexed, and a read-only reader never writes nor blocks."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from agentops.errors import RunNotFoundError, StoreError
from agentops.runtime.events import AgentFinished, AgentStarted, AgentStatus, RunStatus
from agentops.store import (
    RunRecorder,
    SqliteHistoryReader,
    load_resume_state,
    open_reader,
)
from agentops.store import sqlite as sqlite_store
from agentops.store.browse import workflow_run_page
from agentops.store.location import locate
from agentops.store.queries import agent_runs, spend, workflow_runs
from agentops.store.records import AgentOutcome, AgentRunRecord
from agentops.store.stores import history_reader, open_database
from tests.support.store import (
    T0,
    execute,
    failed,
    finished,
    record,
    rows,
    started,
    succeeded,
    workflow_of,
)


def start_of(name: str, at: float = T0) -> AgentStarted:
    return AgentStarted(
        name=name,
        model="gpt-4o-mini",
        provider="openai",
        prompt=f"[user]\ndo {name}",
        started_at=at,
    )


def test_starts_are_recorded_apart_from_outcomes_and_go_when_the_run_ends(db: str) -> None:
    workflow = workflow_of("flow", ["a", "b"])

    async def scenario() -> None:
        with open_database(db) as store:
            recorder = RunRecorder(store)
            recorder(started(workflow))
            recorder(start_of("a"))
            recorder(start_of("b"))
            await asyncio.sleep(0)  # the batched commit runs at the end of the loop turn
            await asyncio.sleep(0)
            in_flight = rows(db, "SELECT agent, prompt FROM agent_starts ORDER BY id")
            assert [(r["agent"], r["prompt"]) for r in in_flight] == [
                ("a", "[user]\ndo a"),
                ("b", "[user]\ndo b"),
            ]
            assert rows(db, "SELECT count(*) FROM runs")[0][0] == 0  # nothing settled yet
            with open_database(db, create=False) as other:
                listed = workflow_runs(other)[0]
                assert (listed.status, listed.agents_total, listed.agents_succeeded) == (
                    "running",
                    0,
                    0,
                )
                assert agent_runs(other) == []
                assert spend(other, by=None) == []
                reader = SqliteHistoryReader(other)
                assert [s.agent for s in reader.agent_starts(1)] == ["a", "b"]
                assert reader.agent_run_in(1, "a") is None
                start = reader.agent_start(1, "a")
                assert start is not None and start.prompt == "[user]\ndo a"

            a = succeeded("a", "done")
            recorder(AgentFinished(a))
            await asyncio.sleep(0)
            assert [r["agent"] for r in rows(db, "SELECT agent FROM agent_starts")] == [
                "b"
            ]  # a's outcome replaced it
            assert [r["agent"] for r in rows(db, "SELECT agent FROM runs")] == ["a"]
            b = failed("b", "BadRequestError: no")
            recorder(AgentFinished(b))
            recorder(finished(workflow, {"a": a, "b": b}, RunStatus.FAILED))
        assert rows(db, "SELECT count(*) FROM agent_starts")[0][0] == 0

    asyncio.run(scenario())


def test_a_killed_runs_started_agents_are_not_outcomes_and_resume_reruns_them(
    db: str,
) -> None:
    workflow = workflow_of("flow", ["a", "b"])
    with open_database(db) as store:
        recorder = RunRecorder(store)
        recorder(started(workflow))
        recorder(start_of("a"))
        recorder(start_of("b"))  # outside an event loop each is committed at once
        recorder(AgentFinished(succeeded("a", "done")))
        # the process dies here: b started and never settled; the run never finished
        store.connection.execute("UPDATE workflow_runs SET pid = 0")
    with open_database(db, create=False) as store:
        state = load_resume_state(store, 1)
        assert state.status == "interrupted" and set(state.succeeded) == {"a"}
        assert [run.agent for run in agent_runs(store)] == ["a"]
        reader = SqliteHistoryReader(store)
        assert [s.agent for s in reader.agent_starts(1)] == ["b"]
        assert [o.agent for o in reader.agent_outcomes(1)] == ["a"]


def history_with_runs(db: str | Path) -> None:
    """Runs 1..12 of workflows "alpha" (odd) and "beta" (even); every third failed;
    run 12 resumes 9, run 9 resumed 6."""
    with open_database(db) as store:
        for n in range(1, 13):
            name = "alpha" if n % 2 else "beta"
            status = RunStatus.FAILED if n % 3 == 0 else RunStatus.SUCCEEDED
            agents = [failed("a", "nope")] if status is RunStatus.FAILED else [succeeded("a", "ok")]
            resumed = {12: 9, 9: 6}.get(n)
            record(store, workflow_of(name, ["a"]), agents, status, resumed_from=resumed, at=T0 + n)


def test_pages_are_newest_first_with_keyset_cursors_and_filters(db: str) -> None:
    history_with_runs(db)
    reader = history_reader(db, read_only=True)
    try:
        first = reader.workflow_run_page(limit=5)
        assert (
            [r.id for r in first.runs] == [12, 11, 10, 9, 8]
            and first.newer is None
            and first.older == 8
        )
        second = reader.workflow_run_page(before=first.older, limit=5)
        assert [r.id for r in second.runs] == [7, 6, 5, 4, 3] and (second.newer, second.older) == (
            7,
            3,
        )
        last = reader.workflow_run_page(before=second.older, limit=5)
        assert [r.id for r in last.runs] == [2, 1] and (last.newer, last.older) == (2, None)
        back = reader.workflow_run_page(after=last.newer, limit=5)
        assert [r.id for r in back.runs] == [7, 6, 5, 4, 3] and (back.newer, back.older) == (7, 3)
        top = reader.workflow_run_page(after=8, limit=5)
        assert [r.id for r in top.runs] == [12, 11, 10, 9] and (top.newer, top.older) == (None, 9)

        failed_beta = reader.workflow_run_page(workflow="beta", status="failed", limit=10)
        assert [r.id for r in failed_beta.runs] == [12, 6]
        assert all(r.workflow == "beta" and r.status == "failed" for r in failed_beta.runs)
        assert [r.id for r in reader.workflow_run_page(status="succeeded", limit=3).runs] == [
            11,
            10,
            8,
        ]
        assert reader.workflow_run_page(workflow="gamma").runs == []
        assert reader.workflow_names() == ["alpha", "beta"]
        assert [r.id for r in reader.resume_chain(9)] == [6, 9, 12]
        assert [r.id for r in reader.resume_chain(1)] == [1]
        with pytest.raises(RunNotFoundError, match="no workflow run 99; latest is 12"):
            reader.workflow_run_header(99)
    finally:
        reader.close()


def test_interrupted_and_running_filters_read_the_effective_status(db: str) -> None:
    with open_database(db) as store:
        record(store, workflow_of("w", ["a"]), [], None)  # still running: this process recorded it
        record(store, workflow_of("w", ["a"]), [], None)
        store.connection.execute(
            "UPDATE workflow_runs SET pid = 0 WHERE id = 2"
        )  # its process is gone
    with open_database(db, create=False) as store:
        assert [r.id for r in workflow_run_page(store, status="running").runs] == [1]
        assert [r.id for r in workflow_run_page(store, status="interrupted").runs] == [2]


def test_tool_calls_are_read_in_the_order_they_finished(db: str) -> None:
    with open_database(db) as store:
        record(store, workflow_of("w", ["a"]), [succeeded("a", "ok")], RunStatus.SUCCEEDED)
    reader = history_reader(db, read_only=True)
    assert reader.tool_calls(1) == []
    reader.close()
    execute(
        db,
        """INSERT INTO tool_calls (workflow_run_id, run_id, agent, turn, call_id, tool, arguments, status, result)
        VALUES (1, 1, 'a', ?, ?, ?, ?, ?, ?)""",
        [
            (1, "c1", "kb.search", '{"q": 1}', "succeeded", "hit"),
            (2, "c2", "add", "{}", "failed", None),
        ],
        many=True,
    )
    reader = history_reader(db, read_only=True)
    try:
        first, second = reader.tool_calls(1)
        assert (first.turn, first.tool, first.arguments, first.result, first.status) == (
            1,
            "kb.search",
            '{"q": 1}',
            "hit",
            "succeeded",
        )
        assert (second.turn, second.tool, second.status) == (2, "add", "failed")
    finally:
        reader.close()


def test_the_reader_is_read_only_and_never_blocks_a_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: its read-only connection, WAL snapshot and busy timeout (PostgreSQL's
    read-only reader: test_store_postgres)."""
    db = tmp_path / "agentops.db"
    history_with_runs(db)
    reader = open_reader(db)
    with pytest.raises(StoreError, match="read-only"):
        reader.write(lambda connection: None)
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
        reader.connection.execute("DELETE FROM runs")
    # A read transaction held open (a page being rendered) while another process writes.
    reader.connection.execute("BEGIN")
    assert reader.connection.execute("SELECT count(*) FROM workflow_runs").fetchone()[0] == 12
    # No busy wait and no retry: a writer that had to wait for the reader fails at once.
    monkeypatch.setattr(sqlite_store, "retry_when_locked", lambda action, **_: action())
    with open_database(db) as writer:
        writer.connection.execute("PRAGMA busy_timeout = 0")
        record(writer, workflow_of("w", ["a"]), [succeeded("a", "ok")], RunStatus.SUCCEEDED)
    assert (
        reader.connection.execute("SELECT count(*) FROM workflow_runs").fetchone()[0] == 12
    )  # its snapshot
    reader.connection.execute("COMMIT")
    assert reader.connection.execute("SELECT count(*) FROM workflow_runs").fetchone()[0] == 13
    reader.close()


def test_reading_needs_a_file_and_an_up_to_date_schema(tmp_path: Path) -> None:
    """SQLite only: a missing file and one an older agentops wrote (PostgreSQL's unmigrated
    database read-only: test_store_postgres)."""
    with pytest.raises(StoreError, match="no history database at"):
        open_reader(tmp_path / "missing.db")
    old = tmp_path / "old.db"
    connection = sqlite3.connect(old)
    connection.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    connection.execute("CREATE TABLE workflow_runs (id INTEGER PRIMARY KEY)")
    connection.close()
    with pytest.raises(StoreError, match=r"older agentops.*list-workflow-runs --db"):
        open_reader(old)


def test_every_reader_query_uses_an_index(tmp_path: Path) -> None:
    """SQLite only: it reads SQLite's query plans (the indexes are the same on both stores)."""
    db = tmp_path / "agentops.db"
    history_with_runs(db)
    reader = history_reader(db, read_only=True)
    calls = {
        "page": lambda: reader.workflow_run_page(limit=3),
        "page before": lambda: reader.workflow_run_page(before=5, limit=3),
        "page after": lambda: reader.workflow_run_page(after=5, limit=3),
        "page by workflow": lambda: reader.workflow_run_page(workflow="beta", limit=3),
        "page by status": lambda: reader.workflow_run_page(status="failed", limit=3),
        "page by both": lambda: reader.workflow_run_page(
            workflow="beta", status="failed", before=12, limit=3
        ),
        "names": lambda: reader.workflow_names(),
        "header": lambda: reader.workflow_run_header(3),
        "outcomes": lambda: reader.agent_outcomes(3),
        "starts": lambda: reader.agent_starts(3),
        "agent": lambda: reader.agent_run_in(3, "a"),
        "instance": lambda: reader.agent_run_in(3, "a[1]"),
        "chain": lambda: reader.resume_chain(9),
    }
    try:
        for label, call in calls.items():
            statements: list[str] = []
            reader.store.connection.set_trace_callback(statements.append)
            call()
            reader.store.connection.set_trace_callback(None)
            assert statements, label
            for sql in statements:
                plan = [
                    r["detail"]
                    for r in reader.store.connection.execute(f"EXPLAIN QUERY PLAN {sql}")
                ]
                assert not any("FOR ORDER BY" in step for step in plan), (label, sql, plan)
                scans = [  # a full read of a table (the CTEs' own rows are a few ids)
                    step
                    for step in plan
                    if step.startswith("SCAN")
                    and step.split()[1] not in ("names", "earlier", "later", "CONSTANT")
                ]
                if label not in ("page", "page before", "page after", "chain"):
                    assert not scans, (label, sql, plan)
    finally:
        reader.close()


def test_a_skipped_agent_has_no_start(db: str) -> None:
    with open_database(db) as store:
        workflow = workflow_of(
            "w", ["a", "b"]
        )  # "a" is not the last agent: it is written as it settles
        recorder = RunRecorder(store)
        recorder(started(workflow))
        from tests.support.store import not_run

        skipped = not_run("a", AgentStatus.SKIPPED, "cost cap")
        recorder(AgentFinished(skipped))
        assert rows(db, "SELECT count(*) FROM agent_starts")[0][0] == 0
        assert rows(db, "SELECT status FROM runs")[0][0] == "skipped"


def test_the_light_agent_outcome_is_the_agent_run_record_without_its_heavy_fields(
    db: str,
) -> None:
    light = {f.name: f.type for f in dataclasses.fields(AgentOutcome)}
    whole = {f.name: f.type for f in dataclasses.fields(AgentRunRecord)}
    # The same names and types, ``agent`` and ``status`` never None, a count for the attempts.
    shared = {name: whole[name] for name in light if name in whole}
    assert light == shared | {"agent": "str", "status": "str", "attempt_count": "int"}
    assert light.keys() - whole.keys() == {"attempt_count"}

    history_with_runs(db)
    reader = history_reader(db, read_only=True)
    try:
        for workflow_run_id in (3, 4):
            outcomes = reader.agent_outcomes(workflow_run_id)
            agents = reader.workflow_run(workflow_run_id).agents
            assert [
                {name: getattr(o, name) for name in light if name != "attempt_count"}
                | {"attempt_count": o.attempt_count}
                for o in outcomes
            ] == [
                {name: getattr(a, name) for name in light if name != "attempt_count"}
                | {"attempt_count": len(a.attempts)}
                for a in agents
            ]
    finally:
        reader.close()


def test_the_history_commands_read_only_through_the_reader_interface() -> None:
    import agentops.cli.history as history

    tree = ast.parse(Path(history.__file__).read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("agentops.store")
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("agentops.store")
    }
    assert imported == {"agentops.store.reader", "agentops.store.records"}


def test_every_workflow_name_is_read_when_no_limit_is_given(db: str) -> None:
    with open_database(db) as store:
        for n in range(7):
            record(
                store, workflow_of(f"flow{n}", ["a"]), [succeeded("a", "ok")], RunStatus.SUCCEEDED
            )
    reader = history_reader(db, read_only=True)
    try:
        assert reader.workflow_names(limit=3) == ["flow0", "flow1", "flow2"]
        assert reader.workflow_names(limit=None) == [f"flow{n}" for n in range(7)]
        assert reader.workflow_is_recorded("flow6") and not reader.workflow_is_recorded("flow7")
        assert reader.location == str(locate(db))
    finally:
        reader.close()
