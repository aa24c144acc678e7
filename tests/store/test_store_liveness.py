"""Liveness across hosts: a run recorded by a process on another machine cannot have its pid
checked, so its process writes a heartbeat while it runs, and a run whose heartbeat went
stale reads interrupted (and can be resumed); on both stores."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentops.errors import StoreError
from agentops.runtime.events import AgentStarted, RunStatus
from agentops.store import RunRecorder, recorder
from agentops.store.liveness import (
    INTERRUPTED,
    RUNNING,
    STALE_AFTER_SECONDS,
    effective_status,
    hostname,
)
from agentops.store.stores import history_reader, open_database
from agentops.store.timestamps import to_iso
from tests.support.store import T0, execute, record, rows, started, succeeded, workflow_of


def test_a_run_elsewhere_is_alive_while_its_heartbeat_is_fresh() -> None:
    now = time.time()
    fresh, stale = to_iso(now - 10), to_iso(now - STALE_AFTER_SECONDS - 1)
    assert effective_status(RUNNING, 4242, "other-host", None, fresh) == RUNNING
    assert effective_status(RUNNING, 4242, "other-host", None, stale) == INTERRUPTED
    assert effective_status(RUNNING, 4242, "other-host", None, None) == RUNNING  # no heartbeat
    assert effective_status("succeeded", 4242, "other-host", None, stale) == "succeeded"
    # On this host the pid is what counts, whatever the heartbeat says.
    assert effective_status(RUNNING, 2**22 + 7, hostname(), None, fresh) == INTERRUPTED


def test_a_run_recorded_on_another_host_reads_by_its_heartbeat(db: str) -> None:
    with open_database(db) as store:
        run = record(store, workflow_of("w", ["a", "b"]), [succeeded("a", "ok")], None)
    now = time.time()
    execute(
        db,
        "UPDATE workflow_runs SET hostname = 'build-7', heartbeat_at = ? WHERE id = ?",
        to_iso(now - 5),
        run,
    )
    reader = history_reader(db)
    try:
        assert reader.workflow_run_record(run).status == RUNNING
        with pytest.raises(StoreError, match=r"still running \(pid \d+ on build-7\)"):
            reader.resume_state(run)
        execute(
            db, "UPDATE workflow_runs SET heartbeat_at = ?", to_iso(now - STALE_AFTER_SECONDS - 5)
        )
        assert reader.workflow_run_record(run).status == INTERRUPTED
        assert [r.id for r in reader.workflow_run_page(status=INTERRUPTED).runs] == [run]
        assert set(reader.resume_state(run).succeeded) == {"a"}
    finally:
        reader.close()


def test_a_running_process_writes_heartbeats_while_nothing_else_is_written(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "HEARTBEAT_SECONDS", 0.2)
    workflow = workflow_of("w", ["a"])

    async def scenario() -> list[str]:
        beats: list[str] = []
        with open_database(db) as store:
            recording = RunRecorder(store)
            recording(started(workflow, at=T0))
            recording(AgentStarted("a", "gpt-4o-mini", "openai", "[user]", T0))
            for _ in range(4):  # a long call: no agent settles, nothing else is written
                await asyncio.sleep(0.25)
                beats.append(rows(db, "SELECT heartbeat_at FROM workflow_runs")[0][0])
        return beats

    beats = asyncio.run(scenario())
    assert all(beats) and beats == sorted(beats) and len(set(beats)) >= 3
    assert rows(db, "SELECT status FROM workflow_runs")[0][0] == RunStatus.RUNNING.value
