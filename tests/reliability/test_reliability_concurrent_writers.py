"""Eight ``agentops run`` processes writing one history database at the same time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support.reliability import (
    agent_of,
    agent_runs,
    attempts_of,
    integrity_check,
    layered_agents,
    start_agentops,
    workflow_runs,
    write_workflow,
)

PROCESSES = 8
AGENTS = layered_agents([["fetch", "scan", "probe"], ["merge"], ["write", "check"]])


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.05) as running:
        yield running


def test_eight_processes_share_one_database(tmp_path: Path, server: OpenAITestServer) -> None:
    db = tmp_path / "shared.db"
    flows = [
        write_workflow(tmp_path / f"flow{n}.yaml", server.base_url, AGENTS, name=f"writer{n}")
        for n in range(PROCESSES)
    ]
    processes = [start_agentops("run", flow, "--db", db) for flow in flows]
    outcomes = [process.communicate(timeout=120) for process in processes]

    for process, (stdout, stderr) in zip(processes, outcomes, strict=True):
        assert b"database is locked" not in stderr + stdout
        assert b"Traceback" not in stderr
        assert process.returncode == 0, stderr.decode(errors="replace")

    assert integrity_check(db) == "ok"
    runs = workflow_runs(db)
    assert sorted(row["workflow"] for row in runs) == sorted(f"writer{n}" for n in range(PROCESSES))
    assert {row["status"] for row in runs} == {"succeeded"}
    # Every call the server answered is one attempt row, in the run of the agent that made it.
    calls = Counter(agent_of(r.body) for r in server.requests)
    assert calls == dict.fromkeys((a["name"] for a in AGENTS), PROCESSES)
    total_attempts = 0
    for run in runs:
        recorded = agent_runs(db, int(run["id"]))
        assert sorted(recorded) == sorted(a["name"] for a in AGENTS)
        for row in recorded.values():
            assert row["status"] == "succeeded" and row["output"]
            attempts = attempts_of(db, int(row["id"]))
            assert [a["status"] for a in attempts] == ["succeeded"]
            total_attempts += len(attempts)
    assert total_attempts == len(server.requests) == PROCESSES * len(AGENTS)
