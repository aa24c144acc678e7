"""Crash safety: ``agentops run`` killed with SIGKILL at random (seeded) moments.

After every kill the database is intact, every agent whose output anything
downstream received is recorded with that output, the dead run shows as
interrupted, and (every few kills) ``agentops resume`` completes it without
calling a recorded agent again. The server's request log is the witness: it
is kept outside the process that dies.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentops.testing.server import OpenAITestServer

from reliability_helpers import (
    agent_of,
    agent_runs,
    integrity_check,
    json_of,
    layered_agents,
    run_agentops,
    start_agentops,
    wait_until,
    workflow_runs,
    write_workflow,
)

SEED = 7_2024
KILLS = 20
RESUME_EVERY = 4
LAYERS = [["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2"], ["d"]]
AGENTS = layered_agents(LAYERS)
DEPENDENCIES = {a["name"]: list(a.get("depends_on", [])) for a in AGENTS}


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.08) as running:
        yield running


def dependencies_are_recorded(db: Path, workflow_run_id: int, sent: list[dict[str, object]]) -> None:
    """Every request the server saw implies its agent's dependencies had finished: each must be
    recorded as succeeded, with the very output that was passed downstream."""
    recorded = agent_runs(db, workflow_run_id)
    for body in sent:
        agent = agent_of(body)
        assert agent is not None
        prompt = str(body["messages"][-1]["content"])  # type: ignore[index]
        for dependency in DEPENDENCIES[agent]:
            row = recorded.get(dependency)
            assert row is not None and row["status"] == "succeeded", (agent, dependency, row and dict(row))
            assert row["output"] and row["output"] in prompt, (dependency, row["output"])
    for name, row in recorded.items():
        if row["status"] == "succeeded":
            assert row["output"], name
            assert any(agent_of(body) == name for body in sent), f"{name} recorded but never called"


def test_sigkill_at_random_moments_loses_nothing_finished(tmp_path: Path, server: OpenAITestServer) -> None:
    rng = random.Random(SEED)
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, AGENTS, policies={"max_concurrency": 2, "retries": 0})
    db = tmp_path / "history.db"
    kills = resumed = rounds = 0
    while kills < KILLS:
        rounds += 1
        assert rounds <= 3 * KILLS, "the run kept finishing before it could be killed"
        known_runs = {row["id"] for row in workflow_runs(db)}
        before = len(server.requests)
        from_first_call = rounds % 2 == 1
        delay = rng.uniform(0.0, 0.5) if from_first_call else rng.uniform(0.2, 1.2)
        if not run_and_kill(flow, db, server, delay, from_first_call):
            continue  # it finished before the kill: not a kill (and it succeeded)
        kills += 1
        if db.exists():
            assert integrity_check(db) == "ok"
        new_runs = [row for row in workflow_runs(db) if row["id"] not in known_runs]
        assert len(new_runs) <= 1
        sent = [r.body for r in server.requests[before:]]
        if not new_runs:
            assert sent == [], "calls were made for a run that was never recorded"
            continue
        run_id = int(new_runs[0]["id"])
        dependencies_are_recorded(db, run_id, sent)
        listed = json_of(run_agentops("list-workflow-runs", "--json", "--db", db))
        status = {int(entry["id"]): entry["status"] for entry in listed}[run_id]
        assert status in ("interrupted", "succeeded"), status  # killed after the last write: done
        if status == "interrupted" and resumed < kills // RESUME_EVERY:
            resume_without_calling_finished_agents(db, run_id, server)
            resumed += 1
    assert resumed >= KILLS // RESUME_EVERY - 1, f"only {resumed} runs were resumable"


def run_and_kill(flow: Path, db: Path, server: OpenAITestServer, delay: float, from_first_call: bool) -> bool:
    """Start ``agentops run`` and SIGKILL it ``delay`` seconds later; False if it finished first.

    Half the kills count from the first call (start-up time varies, the run does not),
    half from process start, so start-up and schema creation get killed too.
    """
    before = len(server.requests)
    process = start_agentops("run", flow, "--db", db)
    if from_first_call:
        wait_until(lambda: len(server.requests) > before or process.poll() is not None)
    time.sleep(delay)
    if process.poll() is not None:
        assert process.wait() == 0, process.communicate()
        return False
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    return True


def resume_without_calling_finished_agents(db: Path, run_id: int, server: OpenAITestServer) -> None:
    finished = {name for name, row in agent_runs(db, run_id).items() if row["status"] == "succeeded"}
    before = len(server.requests)
    completed = run_agentops("resume", str(run_id), "--db", db)
    assert completed.returncode == 0, completed.stderr
    called = [agent_of(r.body) for r in server.requests[before:]]
    assert sorted(called) == sorted(set(DEPENDENCIES) - finished), (finished, called)
    assert integrity_check(db) == "ok"
    latest = workflow_runs(db)[-1]
    assert latest["resumed_from"] == run_id and latest["status"] == "succeeded"
    rows = agent_runs(db, int(latest["id"]))
    assert {name: row["status"] for name, row in rows.items()} == dict.fromkeys(DEPENDENCIES, "succeeded")
