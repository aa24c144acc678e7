"""The recorder, driven by engine events built by hand, checked against the rows it
wrote (read with plain sqlite3); resume state; the dead-process rule."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentops.errors import RunNotFoundError, StoreError, UsageError
from agentops.runtime.events import AgentFinished, AgentStatus, RunStatus
from agentops.store import RunRecorder, effective_status, load_resume_state
from agentops.store.liveness import hostname, process_start
from agentops.store.queries import workflow_runs
from agentops.store.resume import chain_spend
from agentops.store.stores import open_database
from tests.support.store import (
    T0,
    failed,
    finished,
    make_sketch_database,
    not_run,
    record,
    rows,
    source_of,
    started,
    succeeded,
    workflow_of,
)

FLOW = workflow_of("research", ["gather", "check", "write", "review"], cost_cap=1.5)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_run_is_recorded_row_by_row(db: str) -> None:
    results = [
        succeeded("gather", "three sources", failures=2, cost=0.004),
        failed("check", "BadRequestError: 400 prompt too long"),
        not_run("write", AgentStatus.SKIPPED, "needs check (failed)"),
        not_run("review", AgentStatus.CANCELLED, "interrupted by SIGINT"),
    ]
    with open_database(db) as store:
        run_id = record(store, FLOW, results, RunStatus.FAILED, inputs={"topic": "sqlite"})

    (run,) = rows(db, "SELECT * FROM workflow_runs")
    assert run["id"] == run_id and run["workflow"] == "research" and run["status"] == "failed"
    assert run["started_at"] == "2024-05-01T12:00:00.000000+00:00"
    assert run["finished_at"] == "2024-05-01T12:00:10.000000+00:00"
    assert run["definition"] == source_of(FLOW)
    assert run["definition_sha256"] == hashlib.sha256(source_of(FLOW).encode()).hexdigest()
    assert run["source_path"] == "research.yaml"
    assert json.loads(run["inputs"]) == {"topic": "sqlite"}
    assert run["cost_cap"] == 1.5 and run["resumed_from"] is None
    assert (run["pid"], run["hostname"]) == (os.getpid(), hostname())
    assert (run["input_tokens"], run["output_tokens"], run["cost"]) == (
        100,
        50,
        pytest.approx(0.004),
    )

    agents = {r["agent"]: r for r in rows(db, "SELECT * FROM runs ORDER BY id")}
    assert list(agents) == ["gather", "check", "write", "review"]
    gather = agents["gather"]
    assert (gather["status"], gather["retries"], gather["output"], gather["error"]) == (
        "succeeded",
        2,
        "three sources",
        None,
    )
    assert (gather["model"], gather["provider"], gather["prompt"]) == (
        "gpt-4o-mini",
        "openai",
        "[user]\ndo gather",
    )
    assert (gather["input_tokens"], gather["output_tokens"], gather["cost"]) == (
        100,
        50,
        pytest.approx(0.004),
    )
    assert gather["duration"] == pytest.approx(3.0) and gather["workflow_run_id"] == run_id
    assert agents["check"]["status"] == "failed" and agents["check"]["error"].startswith(
        "BadRequestError"
    )
    assert (
        agents["write"]["status"] == "skipped"
        and agents["write"]["error"] == "needs check (failed)"
    )
    assert agents["review"]["status"] == "cancelled" and agents["review"]["started_at"] is None

    attempts = rows(db, "SELECT * FROM attempts WHERE run_id = ? ORDER BY number", gather["id"])
    assert [(a["number"], a["status"], a["http_status"], a["error_type"]) for a in attempts] == [
        (1, "failed", 503, "ServerError"),
        (2, "failed", 503, "ServerError"),
        (3, "succeeded", None, None),
    ]
    assert attempts[2]["input_tokens"] == 100 and attempts[2]["cost"] == pytest.approx(0.004)
    assert [
        a["status"]
        for a in rows(db, "SELECT * FROM attempts WHERE run_id = ?", agents["check"]["id"])
    ] == ["failed"]
    assert (
        rows(
            db,
            "SELECT count(*) FROM attempts WHERE run_id IN (?, ?)",
            agents["write"]["id"],
            agents["review"]["id"],
        )[0][0]
        == 0
    )


def test_each_finished_agent_is_committed_before_the_run_goes_on(db: str) -> None:
    with open_database(db) as store:
        recorder = RunRecorder(store)
        recorder(started(FLOW))
        assert [r["status"] for r in rows(db, "SELECT status FROM workflow_runs")] == ["running"]
        recorder(AgentFinished(succeeded("gather", "found", cost=0.01)))
        # Another connection (another process) sees it already: nothing waits for the run's end.
        (row,) = rows(db, "SELECT agent, status, output FROM runs")
        assert tuple(row) == ("gather", "succeeded", "found")
        assert rows(db, "SELECT cost, input_tokens FROM workflow_runs")[0]["cost"] == pytest.approx(
            0.01
        )
        recorder(AgentFinished(succeeded("check", "fine", cost=0.02)))
        assert rows(db, "SELECT cost FROM workflow_runs")[0]["cost"] == pytest.approx(0.03)


def test_the_finish_records_agents_whose_own_event_was_missed(db: str) -> None:
    results = {"gather": succeeded("gather", "a"), "check": succeeded("check", "b")}
    with open_database(db) as store:
        recorder = RunRecorder(store)
        recorder(started(FLOW))
        recorder(AgentFinished(results["gather"]))
        recorder(finished(FLOW, results, RunStatus.SUCCEEDED))
        assert recorder.workflow_run_id is not None
    assert [r["agent"] for r in rows(db, "SELECT agent FROM runs ORDER BY id")] == [
        "gather",
        "check",
    ]


def test_text_sqlite_cannot_encode_is_stored_not_lost(db: str) -> None:
    with open_database(db) as store:
        record(store, FLOW, [succeeded("gather", "half a pair: \ud83d end")], RunStatus.SUCCEEDED)
    assert rows(db, "SELECT output FROM runs")[0]["output"] == "half a pair: \ufffd end"


def test_resume_state_and_the_reused_rows_of_a_chain(db: str) -> None:
    with open_database(db) as store:
        first = record(
            store,
            FLOW,
            [
                succeeded("gather", "sources", failures=1, cost=0.01),
                failed("check", "400"),
                not_run("write", AgentStatus.SKIPPED, "needs check"),
                not_run("review", AgentStatus.SKIPPED, "needs write"),
            ],
            RunStatus.FAILED,
            inputs={"topic": "wal"},
        )
        state = load_resume_state(store, first)
        assert (state.workflow_run_id, state.workflow, state.status) == (
            first,
            "research",
            "failed",
        )
        assert state.source == source_of(FLOW) and state.source_path == "research.yaml"
        assert state.inputs == {"topic": "wal"} and state.cost_spent == pytest.approx(0.01)
        (gather,) = state.succeeded.values()
        assert (
            gather.reused and gather.status is AgentStatus.SUCCEEDED and gather.output == "sources"
        )
        assert (gather.usage.input_tokens, len(gather.attempts)) == (100, 2)
        assert gather.cost == pytest.approx(0.01)
        assert gather.attempts[0].http_status == 503 and gather.started_at == pytest.approx(T0)

        second = record(
            store,
            FLOW,
            [
                succeeded("check", "ok", cost=0.02),
                failed("write", "400"),
                not_run("review", AgentStatus.SKIPPED, "needs write"),
            ],
            RunStatus.FAILED,
            resumed_from=first,
            reused=state.succeeded,
        )
        state = load_resume_state(store, second)
        assert sorted(state.succeeded) == ["check", "gather"]
        assert state.succeeded["gather"].cost == pytest.approx(
            0.01
        )  # as first paid, not the reused row's 0
        assert state.cost_spent == pytest.approx(0.03)  # the whole chain
        third = record(
            store,
            FLOW,
            [succeeded("write", "w", cost=0.04), succeeded("review", "r", cost=0.04)],
            RunStatus.SUCCEEDED,
            resumed_from=second,
            reused=state.succeeded,
        )
        assert chain_spend(store, third) == pytest.approx(0.11)
        with pytest.raises(
            UsageError,
            match=rf"workflow run {third} already succeeded: nothing to resume; "
            r"to run it again use agentops run research.yaml",
        ):
            load_resume_state(store, third)

    original = rows(
        db, "SELECT id FROM runs WHERE workflow_run_id = ? AND agent = 'gather'", first
    )[0]["id"]
    reused = rows(db, "SELECT * FROM runs WHERE reused = 1 AND agent = 'gather' ORDER BY id")
    assert [
        (r["workflow_run_id"], r["reused_from_run_id"], r["cost"], r["output"]) for r in reused
    ] == [
        (second, original, 0.0, "sources"),
        (third, original, 0.0, "sources"),  # the origin, not the copy
    ]
    assert (
        rows(
            db,
            "SELECT count(*) FROM attempts WHERE run_id IN (SELECT id FROM runs WHERE reused = 1)",
        )[0][0]
        == 0
    )
    chain = rows(db, "SELECT id, resumed_from, status FROM workflow_runs ORDER BY id")
    assert [tuple(r) for r in chain] == [
        (first, None, "failed"),
        (second, first, "failed"),
        (third, second, "succeeded"),
    ]


def test_a_run_whose_process_died_reads_interrupted_and_can_be_resumed(db: str) -> None:
    with open_database(db) as store:
        run_id = record(
            store, FLOW, [succeeded("gather", "kept")], None
        )  # no WorkflowFinished: killed
        assert [r.status for r in workflow_runs(store)] == ["running"]  # this process is alive
        with pytest.raises(StoreError, match=f"workflow run {run_id} is still running"):
            load_resume_state(store, run_id)

        store.connection.execute("UPDATE workflow_runs SET pid = ?", (dead_pid(),))
        assert [r.status for r in workflow_runs(store)] == ["interrupted"]
        state = load_resume_state(store, run_id)
        assert state.status == "interrupted" and list(state.succeeded) == ["gather"]
    assert rows(db, "SELECT status FROM workflow_runs")[0]["status"] == "running"  # as recorded


def test_the_dead_process_rule() -> None:
    me, here, mine = os.getpid(), hostname(), process_start(os.getpid())
    assert effective_status("running", me, here, mine) == "running"
    assert effective_status("running", dead_pid(), here, None) == "interrupted"
    assert effective_status("running", None, here) == "interrupted"
    assert (
        effective_status("running", dead_pid(), "another-host") == "running"
    )  # cannot check there
    assert (
        effective_status("failed", dead_pid(), here) == "failed"
    )  # finished runs are what they were
    if mine is not None:  # where the system tells start times: a pid reused by another process
        assert effective_status("running", me, here, mine + "0") == "interrupted"


def test_unknown_runs_and_runs_that_cannot_be_resumed(db: str) -> None:
    with open_database(db) as store:
        with pytest.raises(RunNotFoundError, match=r"no workflow runs recorded yet in "):
            load_resume_state(store, 1)
        record(store, FLOW, [succeeded("gather", "kept")], RunStatus.FAILED)
        with pytest.raises(RunNotFoundError, match="no workflow run 42; latest is 1"):
            load_resume_state(store, 42)
        store.connection.execute("UPDATE workflow_runs SET definition = NULL")
        with pytest.raises(StoreError, match="without its workflow definition"):
            load_resume_state(store, 1)


def test_a_sketch_era_run_cannot_be_resumed(tmp_path: Path) -> None:
    """SQLite only: the sketch wrote SQLite files, and recorded no workflow definition."""
    db = tmp_path / "sketch.db"
    make_sketch_database(db)
    with open_database(db) as store:
        with pytest.raises(RunNotFoundError, match="no workflow run 42; latest is 2"):
            load_resume_state(store, 42)
        with pytest.raises(StoreError, match="without its workflow definition"):
            load_resume_state(store, 2)


def test_agents_settling_in_one_loop_turn_are_committed_together_before_the_next(
    db: str,
) -> None:
    """Inside an event loop, results wait for the end of the loop turn (one commit for all),
    which comes before any task the engine starts in that turn takes its first step."""
    import asyncio

    async def scenario() -> tuple[int, int, int]:
        with open_database(db) as store:
            recorder = RunRecorder(store)
            recorder(started(FLOW))
            recorder(AgentFinished(succeeded("gather", "three sources")))
            recorder(AgentFinished(succeeded("check", "all true")))
            during_the_turn = len(rows(db, "SELECT id FROM runs"))
            # A task created now (as the engine starts a dependent) sees both committed.
            seen_by_a_new_task = await asyncio.create_task(
                asyncio.to_thread(lambda: len(rows(db, "SELECT id FROM runs")))
            )
            totals = rows(db, "SELECT cost FROM workflow_runs")[0]["cost"]
            return during_the_turn, seen_by_a_new_task, round(totals * 1000)

    assert asyncio.run(scenario()) == (0, 2, 4)


def test_the_last_agents_of_a_run_without_tools_are_written_with_its_end(db: str) -> None:
    """A dependency is on disk as it settles; the last agents, which nothing can use, wait for
    the run's end and share its commit (one commit less per run)."""
    workflow = workflow_of("w", ["first", "last"])
    with open_database(db) as store:
        recorder = RunRecorder(store)
        recorder(started(workflow))
        first, last = succeeded("first", "one"), succeeded("last", "two")
        recorder(AgentFinished(first))
        assert [r["agent"] for r in rows(db, "SELECT agent FROM runs")] == ["first"]
        recorder(AgentFinished(last))
        assert [r["agent"] for r in rows(db, "SELECT agent FROM runs")] == ["first"]
        recorder(finished(workflow, {"first": first, "last": last}, RunStatus.SUCCEEDED))
    assert [
        (r["agent"], r["output"]) for r in rows(db, "SELECT agent, output FROM runs ORDER BY id")
    ] == [
        ("first", "one"),
        ("last", "two"),
    ]
    assert rows(db, "SELECT status FROM workflow_runs")[0]["status"] == "succeeded"
