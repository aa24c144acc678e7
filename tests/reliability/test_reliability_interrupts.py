"""Ctrl-C and SIGTERM during a run (a real process, while a call hangs): finished work
is kept, the in-flight agent is recorded cancelled, the run interrupted, exit 130."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support.reliability import (
    agent_of,
    agent_runs,
    attempts_of,
    integrity_check,
    json_of,
    run_agentops,
    start_agentops,
    task_for,
    wait_until,
    workflow_runs,
    write_workflow,
)


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.02) as running:
        running.inject_for(lambda body: agent_of(body) == "stuck", kind="hang", seconds=60)
        yield running


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_and_keeps_what_finished(
    tmp_path: Path, server: OpenAITestServer, signum: signal.Signals
) -> None:
    agents = [
        {"name": "quick"},
        {"name": "stuck", "task": task_for("stuck", "this call hangs")},
        {"name": "after_quick", "depends_on": "quick"},
        {"name": "after_stuck", "depends_on": "stuck"},
    ]
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents, policies={"retries": 0})
    db = tmp_path / "history.db"
    process = start_agentops("run", flow, "--db", db)

    def finished_and_hanging() -> bool:
        runs = workflow_runs(db)
        if not runs or not any(agent_of(r.body) == "stuck" for r in server.requests):
            return False
        recorded = agent_runs(db, int(runs[0]["id"]))
        return all(
            name in recorded and recorded[name]["status"] == "succeeded"
            for name in ("quick", "after_quick")
        )

    wait_until(lambda: finished_and_hanging() or process.poll() is not None)
    assert process.poll() is None, process.communicate()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr + stdout
    assert signal.Signals(signum).name.encode() in stderr

    assert integrity_check(db) == "ok"
    (run,) = workflow_runs(db)
    assert run["status"] == "interrupted"
    recorded = agent_runs(db, int(run["id"]))
    assert {name: row["status"] for name, row in recorded.items()} == {
        "quick": "succeeded",
        "after_quick": "succeeded",
        "stuck": "cancelled",
        "after_stuck": "cancelled",
    }
    assert recorded["quick"]["output"] and recorded["after_quick"]["output"]
    assert signal.Signals(signum).name in (recorded["stuck"]["error"] or "")
    # The call in flight was made (and may be billed): it is recorded as a cancelled attempt.
    assert [a["status"] for a in attempts_of(db, int(recorded["stuck"]["id"]))] == ["cancelled"]
    assert attempts_of(db, int(recorded["after_stuck"]["id"])) == []

    shown = json_of(run_agentops("show-workflow-run", str(run["id"]), "--json", "--db", db))
    assert shown["status"] == "interrupted"
    # Nothing was called again after the signal: one call per agent that started.
    assert sorted(agent_of(r.body) or "" for r in server.requests) == [
        "after_quick",
        "quick",
        "stuck",
    ]
