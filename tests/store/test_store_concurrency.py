"""Eight processes recording runs into one new history at the same moment, on SQLite and on
PostgreSQL: every row arrives, ids are unique, none fails with a lock error (SQLite: WAL, busy
timeout and the application-level retry of whole transactions; PostgreSQL: row locks only),
and the migrations that the processes race to apply are applied once."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from agentops.store.migrations import MIGRATIONS
from tests.support.store import is_postgres, rows, write_agent_events

PROCESSES = 8
AGENTS = 250  # per process: one transaction each, plus the run's start and finish


def test_eight_writer_processes_lose_nothing(db: str) -> None:
    # db is new: the processes also race to create and migrate it
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        go = manager.Event()
        futures = [
            pool.submit(write_agent_events, str(db), f"writer{n}", AGENTS, go)
            for n in range(PROCESSES)
        ]
        go.set()  # all start writing together
        run_ids = [future.result(timeout=300) for future in futures]  # re-raises a writer's error

    assert len(set(run_ids)) == PROCESSES
    if not is_postgres(db):
        assert rows(db, "PRAGMA integrity_check")[0][0] == "ok"
    runs = rows(
        db, "SELECT id, workflow, status, input_tokens FROM workflow_runs ORDER BY workflow"
    )
    assert [(r["workflow"], r["status"], r["input_tokens"]) for r in runs] == [
        (f"writer{n}", "succeeded", 100 * AGENTS) for n in range(PROCESSES)
    ]
    for run in runs:
        outputs = rows(
            db, "SELECT output FROM runs WHERE workflow_run_id = ? ORDER BY id", run["id"]
        )
        assert [r["output"] for r in outputs] == [
            f"{run['workflow']} output {n}" for n in range(AGENTS)
        ]
    assert rows(db, "SELECT count(*) FROM attempts")[0][0] == PROCESSES * AGENTS
    assert rows(db, "SELECT count(*) FROM _migrations")[0][0] == len(
        MIGRATIONS
    )  # migrated once, not eight times
