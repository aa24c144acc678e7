"""Crash safety: ``agentops run`` killed with SIGKILL at random (seeded) moments.

After every kill the database is intact, every agent whose output anything
downstream received is recorded with that output, the dead run shows as
interrupted, and (every few kills) ``agentops resume`` completes it without
calling a recorded agent again. The server's request log is the witness: it
is kept outside the process that dies. Each process passes its own ``--input
tag=...``, which every prompt carries, because requests a killed process had
already sent can reach the server after it died.
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support.reliability import (
    agent_of,
    agent_runs,
    integrity_check,
    json_of,
    layered_agents,
    run_agentops,
    start_agentops,
    task_for,
    wait_until,
    workflow_runs,
    write_workflow,
)

SEED = 7_2024
KILLS = 20
RESUME_EVERY = 4
LAYERS = [["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2"], ["d"]]
AGENTS = [
    {**a, "task": task_for(a["name"], "[{{ inputs.tag }}] do your part.")}
    for a in layered_agents(LAYERS)
]
DEPENDENCIES = {a["name"]: list(a.get("depends_on", [])) for a in AGENTS}


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.08) as running:
        yield running


def sent_by(server: OpenAITestServer, tag: str) -> list[dict[str, Any]]:
    """The bodies of the requests one process sent: its tag opens every task it sends (a
    tag elsewhere in a prompt is an upstream output quoting an earlier run's task)."""
    opening = re.compile(rf"agent [\w\-]+: \[{re.escape(tag)}\]")
    # A request still being read has an empty body.
    return [
        r.body
        for r in server.requests
        if opening.match(str((r.body.get("messages") or [{}])[-1].get("content")))
    ]


def dependencies_are_recorded(db: Path, workflow_run_id: int, sent: list[dict[str, Any]]) -> None:
    """Every request the server saw implies its agent's dependencies had finished: each must be
    recorded as succeeded, with the very output that was passed downstream."""
    recorded = agent_runs(db, workflow_run_id)
    for body in sent:
        agent = agent_of(body)
        assert agent is not None
        prompt = str(body["messages"][-1]["content"])
        for dependency in DEPENDENCIES[agent]:
            row = recorded.get(dependency)
            assert row is not None and row["status"] == "succeeded", (
                agent,
                dependency,
                row and dict(row),
            )
            assert row["output"] and row["output"] in prompt, (dependency, row["output"])
    for name, row in recorded.items():
        if row["status"] == "succeeded":
            assert row["output"], name
            assert any(agent_of(body) == name for body in sent), f"{name} recorded but never called"


def test_sigkill_at_random_moments_loses_nothing_finished(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    rng = random.Random(SEED)
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        AGENTS,
        inputs={"tag": None},
        policies={"max_concurrency": 2, "retries": 0},
    )
    db = tmp_path / "history.db"
    kills = resumed = rounds = 0
    while kills < KILLS:
        rounds += 1
        assert rounds <= 3 * KILLS, "the run kept finishing before it could be killed"
        known_runs = {row["id"] for row in workflow_runs(db)}
        tag = f"kill-{rounds}"
        from_first_call = rounds % 2 == 1
        delay = rng.uniform(0.0, 0.5) if from_first_call else rng.uniform(0.2, 1.2)
        if not run_and_kill(flow, db, tag, server, delay, from_first_call):
            continue  # it finished before the kill: not a kill (and it succeeded)
        kills += 1
        if db.exists():
            assert integrity_check(db) == "ok"
        new_runs = [row for row in workflow_runs(db) if row["id"] not in known_runs]
        assert len(new_runs) <= 1
        sent = sent_by(server, tag)
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
    print(f"kills survived: {kills} (in {rounds} runs), resumed: {resumed}")


def run_and_kill(
    flow: Path, db: Path, tag: str, server: OpenAITestServer, delay: float, from_first_call: bool
) -> bool:
    """Start ``agentops run`` and SIGKILL it ``delay`` seconds later; False if it finished first.

    Half the kills count from the first call (start-up time varies, the run does not),
    half from process start, so start-up and schema creation get killed too.
    """
    process = start_agentops("run", flow, "--db", db, "--input", f"tag={tag}")
    if from_first_call:
        wait_until(lambda: bool(sent_by(server, tag)) or process.poll() is not None)
    time.sleep(delay)
    if process.poll() is not None:
        assert process.wait() == 0, process.communicate()
        return False
    process.send_signal(signal.SIGKILL)
    process.communicate()
    if process.returncode == 0:  # it finished between poll() and the signal: not a kill
        return False
    assert process.returncode == -signal.SIGKILL
    return True


def resume_without_calling_finished_agents(db: Path, run_id: int, server: OpenAITestServer) -> None:
    finished = {
        name for name, row in agent_runs(db, run_id).items() if row["status"] == "succeeded"
    }
    tag = f"resume-{run_id}"
    completed = run_agentops("resume", str(run_id), "--db", db, "--input", f"tag={tag}")
    assert completed.returncode == 0, completed.stderr
    called = [agent_of(body) for body in sent_by(server, tag)]
    assert sorted(called) == sorted(set(DEPENDENCIES) - finished), (finished, called)
    assert integrity_check(db) == "ok"
    latest = workflow_runs(db)[-1]
    assert latest["resumed_from"] == run_id and latest["status"] == "succeeded"
    rows = agent_runs(db, int(latest["id"]))
    assert {name: row["status"] for name, row in rows.items()} == dict.fromkeys(
        DEPENDENCIES, "succeeded"
    )


def test_resume_calls_each_unfinished_agent_exactly_once(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    """Deterministic companion of the kill test: reused agents in several layers (whose
    dependents are themselves reused) must not be queued, and no agent may be queued twice."""
    refused = "agent c1: [first]"  # c1 is refused in the first run only
    server.inject_for(
        lambda body: str(body["messages"][-1]["content"]).startswith(refused),
        kind="status",
        status=400,
    )
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        AGENTS,
        inputs={"tag": None},
        policies={"retries": 0},
    )
    db = tmp_path / "history.db"
    first = run_agentops("run", flow, "--db", db, "--input", "tag=first")
    assert first.returncode == 1, first.stderr
    assert sorted(agent_of(body) or "" for body in sent_by(server, "first")) == sorted(
        set(DEPENDENCIES) - {"d"}
    )
    second = run_agentops("resume", "1", "--db", db, "--input", "tag=second")
    assert second.returncode == 0, second.stderr
    assert sorted(agent_of(body) or "" for body in sent_by(server, "second")) == ["c1", "d"]
